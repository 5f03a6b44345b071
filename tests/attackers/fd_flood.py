# SPDX-License-Identifier: LGPL-2.1-or-later
"""Descriptor exhaustion: as many bare TCP connections as the server
takes, from many loopback addresses, held open; each one the server
closes is opened again at once (a reconnect loop), until --seconds.

Connects --connections times from each address of --binds (a first and
last address, e.g. 127.0.0.2-127.0.0.126), sends nothing (or, with
--upgrade, a WebSocket upgrade without ever saying hello), and keeps the
sockets open.

Says: "open N" every second (sockets open now), "reconnects N" (closed
by the server and opened again), and "final OPEN RECONNECTS REFUSED" at
the end; "done".
"""

import argparse
import asyncio
import ipaddress

from common import add_common_args, now_ms, parse_target, run, say, upgrade_request


async def hold(host, port, bind, args, stats):
    while now_ms() < stats["until"]:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=(bind, 0)), 5)
        except (OSError, asyncio.TimeoutError):
            stats["refused"] += 1
            await asyncio.sleep(0.05)
            continue
        stats["open"] += 1
        try:
            if args.upgrade:
                writer.write(upgrade_request("tether.v1"))
            while True:
                left = (stats["until"] - now_ms()) / 1000.0
                if not await asyncio.wait_for(reader.read(1 << 16), max(left, 0.01)):
                    break       # closed by the server: open it again
            stats["reconnects"] += 1
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            stats["open"] -= 1
            writer.close()


async def report(stats):
    while now_ms() < stats["until"]:
        await asyncio.sleep(1)
        say("open", stats["open"])
        say("reconnects", stats["reconnects"])


async def main(args):
    _, host, port = parse_target(args.target)
    first, last = (ipaddress.ip_address(a) for a in args.binds.split("-"))
    binds = [str(ipaddress.ip_address(int(first) + k)) for k in range(int(last) - int(first) + 1)]
    stats = {"open": 0, "reconnects": 0, "refused": 0, "until": now_ms() + args.seconds * 1000}
    tasks = [hold(host, port, b, args, stats) for b in binds for _ in range(args.connections)]
    await asyncio.gather(report(stats), *tasks)
    say("final", stats["open"], stats["reconnects"], stats["refused"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--binds", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--upgrade", action="store_true")
    run(main, parser.parse_args())
