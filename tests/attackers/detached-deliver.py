#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Someone who knows where a client's callback listener is, and delivers
to it without being the server that holds the session's key: for the
detached-callback tests (tests/c/test-detached.c).

usage: detached-deliver.py [--uid UID] [--forge SESSION METHOD] URI [MESSAGE...]

Connects to the listener at URI (unix:/PATH, ws://HOST:PORT or
wss://HOST:PORT; over TLS it verifies nothing: an attacker does not care
whom it talks to), says hello as a Tether server's dialler would, then:

  --forge SESSION METHOD  sends three forgeries of its own making, calling
                          METHOD: one unsigned, one claiming SESSION signed
                          with a key of its own, one for a session it
                          invented (signed likewise);
  MESSAGE...              sends each raw JSON-RPC text as given (a replay
                          of a captured delivery, say).

Prints one line per answer, in order: "error CODE MESSAGE" or
"result JSON". With --uid it drops to that uid (and gid) first, so that
the listener sees another user deliver."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import ssl
import sys
import time

import websockets


def sign(key, session, seq, expires, method, params):
    text = "tether-detached-v1\n%s\n%d\n%d\n%s\n%s" % (
        session, seq, expires, method,
        json.dumps(params, separators=(",", ":")))
    return base64.b64encode(hmac.new(key, text.encode(), hashlib.sha256).digest()).decode()


def forgeries(session, method):
    expires = int(time.time() * 1000) + 30000
    params = ["forged", 1]
    unsigned = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    yield json.dumps(unsigned)
    invented = base64.b64encode(secrets.token_bytes(16)).decode()
    for n, claimed in enumerate((session, invented), start=2):
        key = secrets.token_bytes(32)
        signed = dict(unsigned, id=n, tether={"detached": {
            "session": claimed, "seq": 1, "expires": expires,
            "sig": sign(key, claimed, 1, expires, method, params)}})
        yield json.dumps(signed)


def describe(reply):
    if "error" in reply:
        return "error %d %s" % (reply["error"]["code"], reply["error"]["message"])
    return "result " + json.dumps(reply.get("result"), separators=(",", ":"))


async def connect(uri):
    if uri.startswith("unix:"):
        return await websockets.unix_connect(uri[len("unix:"):], "ws://localhost/",
                                             subprotocols=["tether.v1"])
    context = None
    if uri.startswith("wss:"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return await websockets.connect(uri, ssl=context, subprotocols=["tether.v1"])


async def exchange(ws, text):
    request = json.loads(text)
    await ws.send(text)
    while True:
        reply = json.loads(await ws.recv())
        if reply.get("id") == request.get("id") and "method" not in reply:
            return reply


async def main(argv):
    uid = None
    forge = None
    while argv and argv[0].startswith("--"):
        if argv[0] == "--uid":
            uid, argv = int(argv[1]), argv[2:]
        elif argv[0] == "--forge":
            forge, argv = (argv[1], argv[2]), argv[3:]
        else:
            sys.exit("unknown option " + argv[0])
    uri, messages = argv[0], argv[1:]

    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    if forge is not None:
        messages = list(forgeries(*forge)) + messages

    ws = await connect(uri)
    try:
        hello = await exchange(ws, json.dumps({
            "jsonrpc": "2.0", "id": 0, "method": "rpc.tether.hello",
            "params": {"version": 1}}))
        if "result" not in hello:
            sys.exit("hello refused: " + describe(hello))
        for text in messages:
            print(describe(await exchange(ws, text)), flush=True)
    finally:
        await ws.close()


asyncio.run(main(sys.argv[1:]))
