# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared helpers for the black-hole attackers.

Every attacker is a separate process, started by test-blackhole (which
drops it to uid/gid 65534 when the tests run as root). It reports what it
saw on stdout, one line per fact, flushed at once, and it always stops by
itself: every loop is bounded in count and in time (--max-seconds).

Only the standard library and python3-websockets (Debian 12: 10.4) are
used; run with Debian's /usr/bin/python3.
"""

import asyncio
import base64
import json
import os
import signal
import socket
import struct
import sys
import time

TEXT = 0x1
BINARY = 0x2
CONT = 0x0
CLOSE = 0x8
PING = 0x9
PONG = 0xA


def say(*words):
    print(*words, flush=True)


def now_ms():
    return time.monotonic() * 1000.0


def add_common_args(parser):
    parser.add_argument("--target", required=True,
                        help="unix:/PATH, tcp:HOST:PORT or tls:HOST:PORT")
    parser.add_argument("--bind", default=None,
                        help="local address to connect from (TCP)")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=30.0,
                        help="the attacker gives up and exits after this long")


def parse_target(target):
    kind, _, rest = target.partition(":")
    if kind == "unix":
        return kind, rest, None
    host, _, port = rest.rpartition(":")
    return kind, host, int(port)


def raw_socket(target, bind=None, rcvbuf=None, timeout=10.0):
    """A connected, blocking socket to @target (no TLS, no WebSocket)."""
    kind, host, port = parse_target(target)
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect(host)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if bind:
            sock.bind((bind, 0))
        sock.settimeout(timeout)
        sock.connect((host, port))
    return sock


async def open_stream(target, bind=None):
    """asyncio (reader, writer) to @target, plain bytes (TLS not spoken)."""
    kind, host, port = parse_target(target)
    if kind == "unix":
        return await asyncio.open_unix_connection(sock=await unix_connect_retrying(host))
    return await asyncio.open_connection(host, port,
                                         local_addr=(bind, 0) if bind else None)


def upgrade_request(protocol=None):
    key = base64.b64encode(os.urandom(16)).decode()
    head = ("GET / HTTP/1.1\r\n"
            "Host: localhost\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n" % key)
    if protocol:
        head += "Sec-WebSocket-Protocol: %s\r\n" % protocol
    return (head + "\r\n").encode()


def ws_upgrade(sock, protocol=None):
    """Sends the upgrade on a blocking socket, reads the answer's head.
    Returns (status line, headers text, bytes read after the head)."""
    sock.sendall(upgrade_request(protocol))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the upgrade")
        data += chunk
        if len(data) > 65536:
            raise ConnectionError("answer head too long")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if " 101 " not in lines[0] + " ":
        raise ConnectionError("upgrade refused: " + lines[0])
    return lines[0], "\r\n".join(lines[1:]), rest


def frame(opcode, payload=b"", fin=True, rsv1=False, mask=True, announced=None):
    """One WebSocket frame. @announced overrides the length in the header
    (to announce more than is sent)."""
    if isinstance(payload, str):
        payload = payload.encode()
    length = len(payload) if announced is None else announced
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    mbit = 0x80 if mask else 0
    if length < 126:
        head = struct.pack("!BB", b0, mbit | length)
    elif length < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, length)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 \
        else _mask_fast(payload, key)
    return head + key + masked


def _mask_fast(payload, key):
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


class FrameReader:
    """Reads the server's (unmasked) frames from a blocking socket."""

    def __init__(self, sock, pending=b""):
        self.sock = sock
        self.buf = pending

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def read(self):
        """Returns (opcode, payload) of the next whole message."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        length = b1 & 0x7F
        pos = 2
        if length == 126:
            self._need(4)
            length = struct.unpack("!H", self.buf[2:4])[0]
            pos = 4
        elif length == 127:
            self._need(10)
            length = struct.unpack("!Q", self.buf[2:10])[0]
            pos = 10
        if b1 & 0x80:
            pos += 4
        self._need(pos + length)
        payload = self.buf[pos:pos + length]
        self.buf = self.buf[pos + length:]
        return b0 & 0x0F, payload

    def read_json(self):
        """The next text message as JSON; pings are answered, other
        control frames skipped."""
        while True:
            opcode, payload = self.read()
            if opcode == TEXT:
                return json.loads(payload)
            if opcode == PING:
                self.sock.sendall(frame(PONG, payload))
            elif opcode == CLOSE:
                raise ConnectionError("close frame")


def wait_closed(sock, limit_s):
    """Reads (and drops) until end of file or reset. Returns True if the
    peer closed within @limit_s seconds."""
    deadline = time.monotonic() + limit_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except OSError:
            return True


def request(req_id, method, params=None):
    message = {"jsonrpc": "2.0", "id": req_id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


HELLO = request(0, "rpc.tether.hello", {"version": 1})


async def unix_connect_retrying(path, limit_s=10.0):
    """A connected non-blocking AF_UNIX socket. A full listen backlog makes
    a non-blocking connect fail with EAGAIN, and asyncio then wrongly takes
    the socket for connected; a client retries instead."""
    deadline = time.monotonic() + limit_s
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(path)
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


async def ws_connect(target, bind=None, protocol="tether.v1", hello=True):
    """A python3-websockets client connection (answers pings by itself),
    with the Tether hello done when @protocol is tether.v1."""
    import websockets

    kind, host, port = parse_target(target)
    options = dict(subprotocols=[protocol] if protocol else None,
                   compression=None, max_size=None, ping_interval=None,
                   open_timeout=10, close_timeout=1)
    if kind == "unix":
        sock = await unix_connect_retrying(host)
        ws = await websockets.unix_connect(None, "ws://localhost/", sock=sock, **options)
    else:
        ws = await websockets.connect("ws://%s:%d/" % (host, port),
                                      local_addr=(bind, 0) if bind else None,
                                      **options)
    if hello and protocol == "tether.v1":
        await ws.send(HELLO)
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if answer.get("id") != 0 or "result" not in answer:
            raise ConnectionError("hello refused: %r" % answer)
    return ws


def run(main, args):
    """Runs @main(args), a coroutine function or a plain one, bounded by
    --max-seconds (a plain one by SIGALRM, which ends the process); says
    "done" at the end."""
    signal.alarm(int(args.max_seconds) + 2)
    if asyncio.iscoroutinefunction(main):
        async def bounded():
            try:
                await asyncio.wait_for(main(args), args.max_seconds)
            except asyncio.TimeoutError:
                say("gave-up")
        asyncio.run(bounded())
    else:
        main(args)
    say("done")
