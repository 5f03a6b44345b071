# SPDX-License-Identifier: LGPL-2.1-or-later
"""Slow drip: calls that make the server call us back, every callback
answered — but only at the last moment.

Each of --connections connections says hello (tether.v1), keeps --calls
calls to `--method` in flight (the demo's `work` calls the client's
`progress` back and waits for the answer), and answers every callback
after --answer-at of the time the server gave it (the "timeout_ms" of
its "tether" member): early enough never to time out, late enough to
hold the server's callback slots nearly all the time. Each answered call
is followed by another, until the server cuts the connection.

Says: "ready I" once connection I is open; "answer I ID CODE MS" for
each answer to its own calls; "late I COUNT" every 50 callbacks answered
late; "closed I CODE LATE MS" when connection I ends (MS since it
opened); "refused I WHY" when it could not connect; "done" at the end.
"""

import argparse
import asyncio
import json

from common import add_common_args, now_ms, request, run, say, ws_connect


async def attack(i, args):
    try:
        ws = await ws_connect(args.target, args.bind)
    except Exception as e:  # noqa: BLE001 - any failure is a refusal
        say("refused", i, type(e).__name__)
        return
    opened = now_ms()
    say("ready", i)
    next_id = 1
    sent_at = {}
    late = 0

    async def call():
        nonlocal next_id
        sent_at[next_id] = now_ms()
        await ws.send(request(next_id, args.method, json.loads(args.params)))
        next_id += 1

    async def answer_late(message):
        nonlocal late
        budget = message.get("tether", {}).get("timeout_ms", 10000)
        await asyncio.sleep(budget * args.answer_at / 1000.0)
        try:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": True}))
        except Exception:  # noqa: BLE001 - the server may have cut us already
            return
        late += 1
        if late % 50 == 0:
            say("late", i, late)

    try:
        for _ in range(args.calls):
            await call()
        async for text in ws:
            message = json.loads(text)
            if "method" in message and "id" in message:
                asyncio.ensure_future(answer_late(message))
                continue
            if "method" in message:
                continue
            started = sent_at.pop(message.get("id"), now_ms())
            code = "ok" if "result" in message else message.get("error", {}).get("code")
            say("answer", i, message.get("id"), code, int(now_ms() - started))
            await call()
    except Exception:  # noqa: BLE001 - closed under us
        pass
    say("closed", i, ws.close_code, late, int(now_ms() - opened))


async def main(args):
    await asyncio.gather(*(attack(i, args) for i in range(args.connections)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--method", default="work")
    parser.add_argument("--params", default='{"steps": 1000, "delay_ms": 0}')
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--answer-at", type=float, default=0.85)
    run(main, parser.parse_args())
