# SPDX-License-Identifier: LGPL-2.1-or-later
"""Stops reading: a plain JSON-RPC peer (no subprotocol, so no hello)
that asks for large answers and never reads one.

After the upgrade (whose answer head is the only thing it ever reads) it
sends --count `echo` requests, each carrying --size bytes the server must
send back, and never reads again, with a tiny receive buffer. A server
that bounds its unsent backlog cuts it off: a send then fails.

Says: "upgraded", then "cut-off N" (N requests had been sent when the
server closed) or "not-cut-off N" (all sent, still open after
--linger seconds) or "blocked N" (a send blocked --send-timeout seconds);
"done".
"""

import argparse
import socket
import time

from common import TEXT, add_common_args, frame, raw_socket, request, run, say, ws_upgrade


def main(args):
    sock = raw_socket(args.target, args.bind, rcvbuf=4096)
    ws_upgrade(sock)
    say("upgraded")
    payload = "x" * args.size
    sock.settimeout(args.send_timeout)
    sent = 0
    try:
        for n in range(args.count):
            sock.sendall(frame(TEXT, request(n + 1, "echo", [payload])))
            sent += 1
        # Everything went out: give the server time to act, still not reading.
        deadline = time.monotonic() + args.linger
        while time.monotonic() < deadline:
            sock.sendall(frame(TEXT, request(0, "echo", ["still here"])))
            time.sleep(0.05)
        say("not-cut-off", sent)
    except socket.timeout:
        say("blocked", sent)
    except OSError:
        say("cut-off", sent)
    sock.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--size", type=int, default=65536)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--linger", type=float, default=3.0)
    parser.add_argument("--send-timeout", type=float, default=10.0)
    args = parser.parse_args()
    run(main, args)
