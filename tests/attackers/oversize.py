# SPDX-License-Identifier: LGPL-2.1-or-later
"""Oversized and over-deep messages, each on its own connection (a plain
JSON-RPC peer: no subprotocol, no hello).

  big-frame   a text frame whose header announces --announce bytes
              (1 GiB), followed by only 64 KiB of payload;
  fragments   a text message in 1 KiB fragments, up to --fragments of
              them, never finished (FIN never set);
  compressed  a text frame with RSV1 set (permessage-deflate, never
              negotiated);
  deep        100,000 '[' and as many ']' in one small-enough frame, then
              an ordinary echo request on the same connection.

Says, per mode: "closed MODE MS [SENT]" when the server closed the
connection (MS after the offending bytes started; SENT how many fragments
went out), "open MODE" if it was still open --max-open seconds later;
for deep: "deep CODE ID" with the error code and id of the answer, then
"deep-echo ok" if the connection still works; "done".
"""

import argparse
import json
import os
import socket

from common import (CONT, TEXT, FrameReader, add_common_args, frame, now_ms,
                    raw_socket, request, run, say, wait_closed, ws_upgrade)


def connect(args):
    sock = raw_socket(args.target, args.bind)
    _, _, rest = ws_upgrade(sock)
    return sock, rest


def big_frame(args):
    sock, _ = connect(args)
    started = now_ms()
    try:
        sock.sendall(frame(TEXT, b"[" + b" " * 65535, fin=True, announced=args.announce))
    except OSError:
        pass
    if wait_closed(sock, args.max_open):
        say("closed", "big-frame", int(now_ms() - started))
    else:
        say("open", "big-frame")
    sock.close()


def fragments(args):
    sock, _ = connect(args)
    started = now_ms()
    sent = 0
    chunk = b"\"" + b"x" * 1022 + b"\""
    sock.settimeout(args.max_open)
    try:
        sock.sendall(frame(TEXT, b"[" + chunk[1:], fin=False))
        sent = 1
        for _ in range(args.fragments - 1):
            sock.sendall(frame(CONT, b"," + chunk[1:], fin=False))
            sent += 1
    except (socket.timeout, OSError):
        pass
    if wait_closed(sock, args.max_open):
        say("closed", "fragments", int(now_ms() - started), sent)
    else:
        say("open", "fragments", sent)
    sock.close()


def compressed(args):
    sock, _ = connect(args)
    started = now_ms()
    # Raw DEFLATE of '{"jsonrpc":"2.0"}' does not matter: the bit is the offence.
    try:
        sock.sendall(frame(TEXT, os.urandom(32), rsv1=True))
    except OSError:
        pass
    if wait_closed(sock, args.max_open):
        say("closed", "compressed", int(now_ms() - started))
    else:
        say("open", "compressed")
    sock.close()


def deep(args):
    sock, rest = connect(args)
    reader = FrameReader(sock, rest)
    sock.settimeout(args.max_open)
    sock.sendall(frame(TEXT, b"[" * args.depth + b"]" * args.depth))
    try:
        answer = reader.read_json()
        say("deep", answer.get("error", {}).get("code"), json.dumps(answer.get("id")))
        sock.sendall(frame(TEXT, request(7, "echo", ["after the deep one"])))
        answer = reader.read_json()
        say("deep-echo", "ok" if answer.get("id") == 7 and "result" in answer else "bad")
    except (ConnectionError, socket.timeout, OSError) as e:
        say("deep-failed", type(e).__name__)
    sock.close()


MODES = {"big-frame": big_frame, "fragments": fragments, "compressed": compressed, "deep": deep}


def main(args):
    for mode in args.modes.split(","):
        MODES[mode](args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--modes", default="big-frame,fragments,compressed,deep")
    parser.add_argument("--announce", type=int, default=1 << 30)
    parser.add_argument("--fragments", type=int, default=2048)
    parser.add_argument("--depth", type=int, default=100000)
    parser.add_argument("--max-open", type=float, default=5.0)
    args = parser.parse_args()
    run(main, args)
