# SPDX-License-Identifier: LGPL-2.1-or-later
"""More connections than one peer may have.

Opens --connections connections one after the other (from --bind, if
given), each with the Tether hello and one `echo`; then echoes once more
on every connection that worked, and keeps them open until --hold seconds
have passed (or the test kills it).

Says: "ok I" or "refused I WHY" per connection, "recheck I ok|failed",
"holding", "done".
"""

import argparse
import asyncio
import json

from common import add_common_args, request, run, say, ws_connect


async def echo(ws, req_id):
    await ws.send(request(req_id, "echo", ["hi"]))
    answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return answer.get("id") == req_id and "result" in answer


async def main(args):
    open_ones = {}
    for i in range(args.connections):
        try:
            ws = await ws_connect(args.target, args.bind)
            if not await echo(ws, 1):
                raise ConnectionError("echo failed")
            open_ones[i] = ws
            say("ok", i)
        except Exception as e:  # noqa: BLE001 - any failure is a refusal
            say("refused", i, type(e).__name__)
    for i, ws in open_ones.items():
        try:
            say("recheck", i, "ok" if await echo(ws, 2) else "failed")
        except Exception:  # noqa: BLE001
            say("recheck", i, "failed")
    say("holding")
    await asyncio.sleep(args.hold)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--hold", type=float, default=20.0)
    args = parser.parse_args()
    run(main, args)
