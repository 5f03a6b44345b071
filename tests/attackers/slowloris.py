# SPDX-License-Identifier: LGPL-2.1-or-later
"""Slowloris: connections that never finish their handshake.

Modes:
  half-head   sends half an HTTP request head, then one more byte every
              --drip-ms, never the blank line that ends it;
  no-hello    completes the WebSocket upgrade with subprotocol tether.v1
              and never sends rpc.tether.hello;
  plain-idle  completes the upgrade without a subprotocol (a plain
              JSON-RPC peer: no hello is due) and then sends nothing and
              reads nothing, so it never answers a ping;
  tls-silent  opens TCP to a wss:// port and never sends a ClientHello;
  tls-partial sends the first 100 bytes of a TLS record that announces
              512, and nothing more;
  tls-stall   sends a whole, real TLS ClientHello and never anything
              after it (the server's handshake waits for the client's
              next flight).

All --connections are opened at once (from --bind, if given); with
--reconnect each one the server closes is opened again at once.

Says: "connected I" when connection I is open, "upgraded I" once the
upgrade is done (upgrade modes); "closed I MS" when the server closed it (MS since the
connect succeeded); "open I" if it was still open after --max-open seconds;
"failed I WHY" if it could not even start; "done".
"""

import argparse
import asyncio
import os
import ssl
import select

from common import add_common_args, now_ms, open_stream, run, say, upgrade_request

HALF_HEAD = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"


def client_hello():
    """A real, whole TLS ClientHello (the server answers it, and then
    waits for the rest of the handshake, which never comes)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=False)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


async def read_until_head(reader):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await reader.read(4096)
        if not chunk:
            raise ConnectionError("closed during the upgrade")
        data += chunk
    if b" 101 " not in data.split(b"\r\n", 1)[0] + b" ":
        raise ConnectionError("upgrade refused")
    return data


async def wait_eof(reader):
    while True:
        try:
            chunk = await reader.read(65536)
        except (ConnectionError, OSError):
            return
        if not chunk:
            return


async def wait_closed_unread(writer):
    """Waits, without reading a byte, until the server has shut the
    connection down (POLLRDHUP: its end of file is seen beneath unread
    data)."""
    poller = select.poll()
    poller.register(writer.get_extra_info("socket").fileno(),
                    select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    while not poller.poll(0):
        await asyncio.sleep(0.02)


async def drip(writer, args):
    while True:
        await asyncio.sleep(args.drip_ms / 1000.0)
        writer.write(b"X")    # a header line that never ends
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            return


async def one(i, args):
    try:
        reader, writer = await open_stream(args.target, args.bind)
    except OSError as e:
        say("failed", i, type(e).__name__)
        return
    # Times count from the accepted connection (a full listen backlog can
    # delay the connect itself by a SYN retransmission).
    started = now_ms()
    say("connected", i)
    dripper = None
    try:
        if args.mode == "half-head":
            writer.write(HALF_HEAD)
            await writer.drain()
            dripper = asyncio.ensure_future(drip(writer, args))
        elif args.mode in ("no-hello", "plain-idle"):
            writer.write(upgrade_request("tether.v1" if args.mode == "no-hello" else None))
            await writer.drain()
            await asyncio.wait_for(read_until_head(reader), 5)
            say("upgraded", i)
            if args.mode == "plain-idle":
                # Read nothing more: pings stay unanswered, whatever the
                # server sends piles up unread.
                writer.transport.pause_reading()
                try:
                    await asyncio.wait_for(wait_closed_unread(writer), args.max_open)
                    say("closed", i, int(now_ms() - started))
                except asyncio.TimeoutError:
                    say("open", i)
                return
        elif args.mode == "tls-partial":
            record = b"\x16\x03\x01\x02\x00" + os.urandom(95)
            writer.write(record)
            await writer.drain()
        elif args.mode == "tls-stall":
            writer.write(client_hello())
            await writer.drain()
        try:
            await asyncio.wait_for(wait_eof(reader), args.max_open)
            say("closed", i, int(now_ms() - started))
        except asyncio.TimeoutError:
            say("open", i)
    except (ConnectionError, OSError, asyncio.TimeoutError) as e:
        # Refused before the upgrade finished: closed as well.
        say("closed", i, int(now_ms() - started), type(e).__name__)
    finally:
        if dripper:
            dripper.cancel()
        writer.close()


async def again(i, args):
    """--reconnect: every connection the server closes is opened again, in
    the same mode, until --max-seconds ends the run."""
    while True:
        await one(i, args)
        if not args.reconnect:
            return
        await asyncio.sleep(0.01)


async def main(args):
    await asyncio.gather(*(again(i, args) for i in range(args.connections)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--mode", required=True,
                        choices=["half-head", "no-hello", "plain-idle", "tls-silent", "tls-partial",
                                 "tls-stall"])
    parser.add_argument("--drip-ms", type=int, default=50)
    parser.add_argument("--max-open", type=float, default=5.0)
    parser.add_argument("--reconnect", action="store_true")
    args = parser.parse_args()
    run(main, args)
