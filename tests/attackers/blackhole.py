# SPDX-License-Identifier: LGPL-2.1-or-later
"""Black hole: calls that make the server call us back, and callbacks
never answered.

Each of --connections connections says hello (subprotocol tether.v1),
keeps --calls calls to `--method` in flight (the demo's `work` calls the
client's `progress` back and waits for the answer) and reads every
callback request without ever answering it. With --repeat, every answer
to one of its calls (an error, once the callback timed out) is followed by
another call, until the server cuts the connection.

Says: "ready I" once connection I is open; "answer I ID CODE MS" for each
answer to its own calls (CODE "ok" or the error code, MS since the call);
"closed I CODE CALLBACKS MS" when connection I ends (MS since it opened);
"refused I WHY" when it could not connect; "done" at the end.
"""

import argparse
import asyncio
import json

import websockets

from common import add_common_args, now_ms, request, run, say, ws_connect


async def attack(i, args):
    try:
        ws = await ws_connect(args.target, args.bind)
    except Exception as e:  # noqa: BLE001 - any failure is a refusal
        say("refused", i, type(e).__name__, str(e).replace("\n", " "),
            repr(e.__cause__) if e.__cause__ else "")
        return
    opened = now_ms()
    say("ready", i)
    next_id = 1
    sent_at = {}
    callbacks = 0
    calls = 0

    async def call():
        nonlocal next_id, calls
        if calls >= args.max_calls:
            return
        calls += 1
        sent_at[next_id] = now_ms()
        await ws.send(request(next_id, args.method, json.loads(args.params)))
        next_id += 1

    try:
        for _ in range(args.calls):
            await call()
        async for text in ws:
            message = json.loads(text)
            if "method" in message:
                callbacks += 1          # the black hole: never answered
                continue
            started = sent_at.pop(message.get("id"), now_ms())
            code = "ok" if "result" in message else message.get("error", {}).get("code")
            say("answer", i, message.get("id"), code, int(now_ms() - started))
            if args.repeat:
                await call()
    except websockets.ConnectionClosed:
        pass
    say("closed", i, ws.close_code, callbacks, int(now_ms() - opened))


async def main(args):
    await asyncio.gather(*(attack(i, args) for i in range(args.connections)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--calls", type=int, default=4, help="calls in flight per connection")
    parser.add_argument("--repeat", action="store_true")
    parser.add_argument("--max-calls", type=int, default=200, help="calls per connection, at most")
    parser.add_argument("--method", default="work")
    parser.add_argument("--params", default='{"steps": 1000, "delay_ms": 0}')
    args = parser.parse_args()
    run(main, args)
