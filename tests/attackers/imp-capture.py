#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A tether.v1 client that shows exactly what crossed the wire: for the
impersonation tests (tests/c/test-impersonation.c).

usage: imp-capture.py unix:/PATH METHOD

Says hello, calls METHOD, and prints every request the server sends back
(callbacks) as "request JSON" on one line, exactly as received, answering
each with null; prints "done" when METHOD is answered."""

import asyncio
import json
import sys

import websockets


async def main():
    uri, method = sys.argv[1], sys.argv[2]
    path = uri[len("unix:"):]
    async with websockets.unix_connect(path, "ws://localhost/",
                                       subprotocols=["tether.v1"],
                                       compression=None) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.tether.hello",
                                  "params": {"version": 1}}))
        json.loads(await ws.recv())
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": method}))
        while True:
            text = await ws.recv()
            msg = json.loads(text)
            if "method" in msg:
                print("request " + text, flush=True)
                if "id" in msg:
                    await ws.send(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": None}))
            elif msg.get("id") == 2:
                print("done", flush=True)
                return


asyncio.run(main())
