#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A hostile server for the downgrade test: it speaks tether.v1 over TLS
with a certificate the client trusts, but answers the hello as if it did
not support channel binding, ignoring the client's SCRAM-SHA-256-PLUS
step. A client that requires channel binding must refuse it.

usage: no-binding-server.py CERT KEY  -- prints "listening on PORT"."""

import asyncio
import json
import ssl
import sys

import websockets


async def handler(ws, path=None):
    async for message in ws:
        request = json.loads(message)
        if request.get("method") == "rpc.tether.hello":
            await ws.send(json.dumps({
                "jsonrpc": "2.0", "id": request["id"],
                "result": {"version": 1, "features": [],
                           "mechanisms": ["SCRAM-SHA-256"],
                           "channel_binding": []}}))
        elif "id" in request and "method" in request:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                      "result": "gotcha"}))


async def main(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    async with websockets.serve(handler, "127.0.0.1", 0, ssl=context,
                                subprotocols=["tether.v1"]) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on {port}", flush=True)
        await asyncio.sleep(60)


asyncio.run(main(sys.argv[1], sys.argv[2]))
