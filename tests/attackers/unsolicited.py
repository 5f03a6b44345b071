# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unsolicited responses: answers for ids the server never sent, and a
callback answered twice.

On one Tether connection: sends a result for id 99999 and an error for
id "made-up" (the server never sent either), checks that nothing comes
back for them; calls `work` with one step and answers its `progress`
callback twice; then calls `echo`.

Says: "silent" (nothing came back for the invented responses) or "noisy
MESSAGE"; "answered-twice"; "work ok|failed"; "echo ok|failed"; "done".
"""

import argparse
import asyncio
import json

from common import add_common_args, request, run, say, ws_connect


async def main(args):
    ws = await ws_connect(args.target, args.bind)
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": 99999, "result": "nobody asked"}))
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": "made-up",
                              "error": {"code": 1, "message": "nobody asked either"}}))
    try:
        noise = await asyncio.wait_for(ws.recv(), 0.5)
        say("noisy", noise)
    except asyncio.TimeoutError:
        say("silent")

    await ws.send(request(1, "work", {"steps": 1, "delay_ms": 0}))
    work_ok = False
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message.get("method") == "progress":
            answer = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {}})
            await ws.send(answer)
            await ws.send(answer)
            say("answered-twice")
        elif message.get("id") == 1:
            work_ok = "result" in message
            break
    say("work", "ok" if work_ok else "failed")

    await ws.send(request(2, "echo", ["still here"]))
    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
    say("echo", "ok" if message.get("id") == 2 and "result" in message else "failed")
    await ws.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    args = parser.parse_args()
    run(main, args)
