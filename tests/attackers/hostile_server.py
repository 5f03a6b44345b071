# SPDX-License-Identifier: LGPL-2.1-or-later
"""A hostile SERVER, for the client's side of the black-hole defence.

A python3-websockets server on 127.0.0.1 (a free port) offering
subprotocol tether.v1. It answers the client's hello properly, then
treats the k-th connection according to the k-th of --modes (the last
mode repeats):

  silent     never answers anything the client calls;
  flood      sends --flood callback requests to the client's `hold`
             method at once, each asking for an enormous budget, and
             reports every answer;
  oversize   on the client's first call, sends one --size byte message;
  fragments  on the client's first call, sends a message in 1 KiB
             fragments adding up to --size bytes;
  announce   on the client's first call, sends a frame header announcing
             1 GiB and only 64 KiB of payload.

Says: "port N" once listening; per connection "hello K MODE", "request K
METHOD", "response K ID CODE MS" (CODE "ok" or the error code), "sent K
WHAT", "closed K CODE"; "done" when --max-seconds have passed.
"""

import argparse
import asyncio
import json
import struct

import websockets

from common import now_ms, run, say

connections = 0


async def handler(ws, path=None):
    global connections
    k = connections
    connections += 1
    modes = ARGS.modes.split(",")
    mode = modes[min(k, len(modes) - 1)]
    sent_at = {}
    try:
        hello = json.loads(await ws.recv())
        if hello.get("method") != "rpc.tether.hello":
            say("no-hello", k)
            return
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": hello["id"],
                                  "result": {"version": 1}}))
        say("hello", k, mode)

        if mode == "flood":
            for n in range(1, ARGS.flood + 1):
                sent_at[n] = now_ms()
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": n, "method": "hold",
                                          "params": {"n": n},
                                          "tether": {"timeout_ms": 10 ** 9}}))
            say("sent", k, "flood", ARGS.flood)

        async for text in ws:
            message = json.loads(text)
            if "method" in message:
                say("request", k, message["method"])
                if mode in ("oversize", "fragments", "announce"):
                    await attack(ws, k, mode)
                continue            # never answered, in every mode
            started = sent_at.pop(message.get("id"), now_ms())
            code = "ok" if "result" in message else message.get("error", {}).get("code")
            say("response", k, message.get("id"), code, int(now_ms() - started))
    except websockets.ConnectionClosed:
        pass
    say("closed", k, ws.close_code)


async def attack(ws, k, mode):
    try:
        if mode == "oversize":
            await ws.send(json.dumps({"jsonrpc": "2.0", "method": "big",
                                      "params": ["x" * ARGS.size]}))
        elif mode == "fragments":
            head = '{"jsonrpc":"2.0","method":"big","params":["'
            chunks = [head] + ["y" * 1024] * (ARGS.size // 1024) + ['"]}']
            await ws.send(iter(chunks))
        elif mode == "announce":
            header = struct.pack("!BBQ", 0x81, 127, 1 << 30)
            ws.transport.write(header + b"[" + b" " * 65535)
        say("sent", k, mode)
    except (websockets.ConnectionClosed, OSError):
        say("sent", k, mode, "interrupted")


async def main(args):
    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["tether.v1"],
                                compression=None, max_size=None, ping_interval=None,
                                close_timeout=1) as server:
        say("port", server.sockets[0].getsockname()[1])
        await asyncio.sleep(args.max_seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modes", default="silent")
    parser.add_argument("--flood", type=int, default=100)
    parser.add_argument("--size", type=int, default=200 * 1024)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    ARGS = parser.parse_args()
    # The server runs until --max-seconds; run()'s own bound is a bit later.
    ARGS_RUN = argparse.Namespace(max_seconds=ARGS.max_seconds + 1)

    async def serve(_):
        await main(ARGS)
    run(serve, ARGS_RUN)
