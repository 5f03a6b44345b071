# SPDX-License-Identifier: LGPL-2.1-or-later
"""Notification flood: batches of notifications that each keep the server
busy for a long time (the demo's `sleep`), sent as fast as the server
takes them.

One connection says hello (tether.v1), then sends batches of --batch
notifications `--method` with `--params`, each batch one WebSocket
message, for --seconds. A batch that cannot be written at once (the
server stopped reading, the kernel's buffers are full) waits.

Says: "ready"; "sent BATCHES NOTIFICATIONS" every second; "blocked MS"
once a batch has waited a second to be written; "answer CODE" for any
error the server answers; "closed CODE MS" when the server cuts the
connection (MS since it opened), or "open BATCHES" at the end; "done".
"""

import argparse
import asyncio
import json

from common import add_common_args, now_ms, run, say, ws_connect


async def main(args):
    ws = await ws_connect(args.target, args.bind)
    opened = now_ms()
    say("ready")
    one = {"jsonrpc": "2.0", "method": args.method, "params": json.loads(args.params)}
    batch = json.dumps([one] * args.batch) if args.batch > 1 else json.dumps(one)
    batches = 0
    said_blocked = False

    async def reader():
        async for text in ws:
            message = json.loads(text)
            if isinstance(message, dict) and "error" in message:
                say("answer", message["error"].get("code"))

    reading = asyncio.ensure_future(reader())
    last_report = now_ms()
    started = now_ms()
    try:
        while now_ms() - opened < args.seconds * 1000:
            started = now_ms()
            await ws.send(batch)
            batches += 1
            if now_ms() - started >= 1000 and not said_blocked:
                say("blocked", int(now_ms() - started))
                said_blocked = True
            if now_ms() - last_report >= 1000:
                say("sent", batches, batches * args.batch)
                last_report = now_ms()
        say("open", batches)
    except Exception:  # noqa: BLE001 - cut off
        # Cut off while a batch waited to be written: it was held back.
        if now_ms() - started >= 1000 and not said_blocked:
            say("blocked", int(now_ms() - started))
        say("closed", ws.close_code, int(now_ms() - opened))
    reading.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--method", default="sleep")
    parser.add_argument("--params", default='{"ms": 600000}')
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    run(main, parser.parse_args())
