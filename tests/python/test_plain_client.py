#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A plain JSON-RPC 2.0 WebSocket client against `tether serve`.

This client knows nothing of Tether: it offers no WebSocket subprotocol,
sends no rpc.tether.hello, no "tether" member and no rpc.cancel. It checks
that such a peer gets full JSON-RPC 2.0 (every applicable example of the
specification's section 7), exact ids, server-to-client callbacks it can
answer, and a connection that survives bad input -- over ws:// and unix:.

Run with Debian's interpreter: /usr/bin/python3 tests/python/test_plain_client.py
(needs python3-websockets, Debian 12: websockets 10.4). The server is the
`tether` tool named by $TETHER_TOOL (default: /work/main/_build/tools/tether).
"""

import asyncio
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import websockets

TETHER_TOOL = os.environ.get("TETHER_TOOL") or "/work/main/_build/tools/tether"

STEP_TIMEOUT = 10.0     # every single await
TEST_TIMEOUT = 30.0     # one whole test coroutine
QUIET_PERIOD = 0.3      # "no frame arrives" is checked over this long

INT64_MIN = -9223372036854775808
INT64_MAX = 9223372036854775807


# -- the server under test ---------------------------------------------------

class Server:
    """`tether serve ws://127.0.0.1:0 unix:DIR/x.sock` as a subprocess."""

    def __init__(self):
        self.tmpdir = tempfile.mkdtemp(prefix="tether-plain-")
        self.sock_path = os.path.join(self.tmpdir, "x.sock")
        self.stderr = open(os.path.join(self.tmpdir, "stderr.log"), "w+b")
        self.proc = subprocess.Popen(
            [TETHER_TOOL, "serve", "ws://127.0.0.1:0", "unix:" + self.sock_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr)
        self.lines = queue.Queue()
        # Drain stdout for the whole life of the process, so it can never
        # block on a full pipe.
        self.reader = threading.Thread(target=self._read_stdout, daemon=True)
        self.reader.start()
        self.ws_uri = None
        self.unix_path = None
        try:
            self._wait_listening()
        except BaseException:
            self.kill()
            raise

    def _read_stdout(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def _wait_listening(self):
        deadline = time.monotonic() + STEP_TIMEOUT
        while self.ws_uri is None or self.unix_path is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError("tether serve did not report both listening URIs in time;"
                                   " stderr: " + self.stderr_text())
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("tether serve exited before listening (status %r); stderr: %s"
                                   % (self.proc.poll(), self.stderr_text()))
            if not line.startswith("listening on "):
                continue
            uri = line[len("listening on "):]
            if uri.startswith("ws://"):
                self.ws_uri = uri
            elif uri.startswith("unix:"):
                self.unix_path = uri[len("unix:"):]
        if not self.ws_uri.startswith("ws://127.0.0.1:") or self.ws_uri.endswith(":0"):
            raise RuntimeError("unexpected ws:// URI (no real port?): " + self.ws_uri)

    def stderr_text(self):
        try:
            self.stderr.flush()
            self.stderr.seek(0)
            return self.stderr.read().decode("utf-8", "replace")[-4000:]
        except (OSError, ValueError):
            return "<unavailable>"

    def terminate(self):
        """SIGTERM, bounded wait; returns the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass

    def cleanup(self):
        self.kill()
        self.reader.join(timeout=STEP_TIMEOUT)
        self.stderr.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


SERVER = None


def setUpModule():
    global SERVER
    if not os.access(TETHER_TOOL, os.X_OK):
        raise RuntimeError("tether tool not found or not executable: " + TETHER_TOOL)
    SERVER = Server()


def tearDownModule():
    if SERVER is not None:
        SERVER.cleanup()


# -- a plain JSON-RPC client connection ---------------------------------------

async def bounded(awaitable, what="operation"):
    try:
        return await asyncio.wait_for(awaitable, STEP_TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError("timed out after %.0f s waiting for %s" % (STEP_TIMEOUT, what))


class Conn:
    """One WebSocket, no subprotocol offered: a plain JSON-RPC 2.0 peer."""

    def __init__(self, ws, test):
        self.ws = ws
        self.t = test
        self.next_id = 1000

    def new_id(self):
        self.next_id += 1
        return self.next_id

    async def send_raw(self, text):
        await bounded(self.ws.send(text), "send")

    async def send(self, obj):
        await self.send_raw(json.dumps(obj, ensure_ascii=False))

    async def recv_raw(self, what="a frame"):
        frame = await bounded(self.ws.recv(), what)
        self.t.assertIsInstance(frame, str, "JSON-RPC must travel in text frames")
        return frame

    async def recv(self, what="a frame"):
        frame = await self.recv_raw(what)
        try:
            return json.loads(frame)
        except ValueError as e:
            raise AssertionError("server sent invalid JSON (%s): %r" % (e, frame))

    async def request(self, method, params=None, id=None):
        """Send a request; the very next frame must be its response."""
        if id is None:
            id = self.new_id()
        msg = {"jsonrpc": "2.0", "method": method, "id": id}
        if params is not None:
            msg["params"] = params
        await self.send(msg)
        resp = await self.recv("the response to " + method)
        self.t.assertIsInstance(resp, dict, "response to %s: %r" % (method, resp))
        self.t.assertEqual(resp.get("id"), id, "response to %s: %r" % (method, resp))
        return resp

    async def call(self, method, params=None):
        """A request that must succeed; returns its result."""
        resp = await self.request(method, params)
        self.t.assert_result(resp, resp.get("id"))
        return resp["result"]

    async def assert_alive(self, after="the previous message"):
        """A valid request on this connection still succeeds."""
        id = self.new_id()
        resp = await self.request("subtract", [42, 23], id)
        self.t.assertEqual(resp, {"jsonrpc": "2.0", "result": 19, "id": id},
                           "connection unusable after " + after)

    async def exchange(self, raw, what=None):
        """Send raw text, then a probe request; return every frame (parsed)
        that arrived before the probe's response. The probe succeeding is
        also the proof that the connection survived."""
        what = what or repr(raw)
        id = "probe-%d" % self.new_id()
        await self.send_raw(raw)
        await self.send({"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": id})
        before = []
        for _ in range(8):
            msg = await self.recv("the answer to " + what)
            if isinstance(msg, dict) and msg.get("id") == id:
                self.t.assertEqual(msg, {"jsonrpc": "2.0", "result": 19, "id": id},
                                   "connection unusable after " + what)
                return before
            before.append(msg)
        self.t.fail("too many frames after %s: %r" % (what, before))

    async def assert_quiet(self, what="nothing"):
        """No frame arrives within QUIET_PERIOD."""
        try:
            frame = await asyncio.wait_for(self.ws.recv(), QUIET_PERIOD)
        except asyncio.TimeoutError:
            return
        self.t.fail("unexpected frame (expected %s): %r" % (what, frame))


class PlainClientMixin:
    """Tests shared by both transports; subclasses provide open_ws()."""

    transport = None

    # -- plumbing

    def run_async(self, coro_fn):
        async def body():
            ws = await bounded(self.open_ws(), "the WebSocket handshake")
            try:
                # We offered no subprotocol, so none may be selected.
                self.assertIsNone(ws.subprotocol)
                await coro_fn(Conn(ws, self))
            finally:
                await bounded(ws.close(), "the WebSocket close")

        async def whole():
            try:
                await asyncio.wait_for(body(), TEST_TIMEOUT)
            except asyncio.TimeoutError:
                raise AssertionError("test exceeded %.0f s" % TEST_TIMEOUT)

        asyncio.run(whole())

    def assert_result(self, resp, id, result=None, check_value=False):
        self.assertIsInstance(resp, dict, repr(resp))
        self.assertEqual(set(resp), {"jsonrpc", "result", "id"}, repr(resp))
        self.assertEqual(resp["jsonrpc"], "2.0", repr(resp))
        self.assertEqual(resp["id"], id, repr(resp))
        if check_value:
            self.assertEqual(resp["result"], result, repr(resp))

    def assert_error(self, resp, code, id, message=None):
        """A JSON-RPC error response with this code and id."""
        self.assertIsInstance(resp, dict, repr(resp))
        self.assertEqual(set(resp), {"jsonrpc", "error", "id"}, repr(resp))
        self.assertEqual(resp["jsonrpc"], "2.0", repr(resp))
        self.assertEqual(resp["id"], id, repr(resp))
        if id is not None:
            self.assertIs(type(resp["id"]), type(id), repr(resp))
        err = resp["error"]
        self.assertIsInstance(err, dict, repr(resp))
        self.assertTrue({"code", "message"} <= set(err) <= {"code", "message", "data"}, repr(resp))
        self.assertIs(type(err["code"]), int, repr(resp))
        self.assertEqual(err["code"], code, repr(resp))
        self.assertIsInstance(err["message"], str, repr(resp))
        self.assertNotEqual(err["message"], "", repr(resp))
        if message is not None:
            self.assertEqual(err["message"], message, repr(resp))
        return err

    # -- 1. the JSON-RPC 2.0 specification, section 7

    def test_spec_positional_params(self):
        async def t(c):
            await c.send_raw('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}')
            self.assertEqual(await c.recv(), {"jsonrpc": "2.0", "result": 19, "id": 1})
            await c.send_raw('{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}')
            self.assertEqual(await c.recv(), {"jsonrpc": "2.0", "result": -19, "id": 2})
        self.run_async(t)

    def test_spec_named_params(self):
        async def t(c):
            await c.send_raw('{"jsonrpc": "2.0", "method": "subtract", '
                             '"params": {"subtrahend": 23, "minuend": 42}, "id": 3}')
            self.assertEqual(await c.recv(), {"jsonrpc": "2.0", "result": 19, "id": 3})
            await c.send_raw('{"jsonrpc": "2.0", "method": "subtract", '
                             '"params": {"minuend": 42, "subtrahend": 23}, "id": 4}')
            self.assertEqual(await c.recv(), {"jsonrpc": "2.0", "result": 19, "id": 4})
        self.run_async(t)

    def test_subtract_bad_params(self):
        async def t(c):
            # Wrong type, named: the message names the parameter.
            resp = await c.request("subtract", {"minuend": "forty-two", "subtrahend": 23}, 10)
            err = self.assert_error(resp, -32602, 10)
            self.assertIn("minuend", err["message"])
            await c.assert_alive("a wrongly typed named param")
            resp = await c.request("subtract", {"minuend": 42, "subtrahend": 2.5}, 11)
            err = self.assert_error(resp, -32602, 11)
            self.assertIn("subtrahend", err["message"])
            await c.assert_alive("a wrongly typed named param")
            # Wrong type, positional.
            resp = await c.request("subtract", [42, "23"], 12)
            err = self.assert_error(resp, -32602, 12)
            self.assertIn("subtrahend", err["message"])
            await c.assert_alive("a wrongly typed positional param")
            # Missing parameters.
            resp = await c.request("subtract", {"minuend": 42}, 13)
            err = self.assert_error(resp, -32602, 13)
            self.assertIn("subtrahend", err["message"])
            await c.assert_alive("a missing named param")
            resp = await c.request("subtract", [42], 14)
            self.assert_error(resp, -32602, 14)
            await c.assert_alive("a missing positional param")
            resp = await c.request("subtract", None, 15)
            self.assert_error(resp, -32602, 15)
            await c.assert_alive("no params at all")
            # Too many.
            resp = await c.request("subtract", [42, 23, 1], 16)
            self.assert_error(resp, -32602, 16)
            await c.assert_alive("too many positional params")
        self.run_async(t)

    def test_echo(self):
        async def t(c):
            obj = {"a": 1, "b": [True, False, None], "c": {"d": "é☃"}, "e": -2.5, "f": ""}
            self.assert_result(await c.request("echo", obj, 20), 20, obj, True)
            arr = [1, "two", [3], {"four": 4}, None, True, 0.5]
            self.assert_result(await c.request("echo", arr, 21), 21, arr, True)
            self.assert_result(await c.request("echo", [], 22), 22, [], True)
            self.assert_result(await c.request("echo", {}, 23), 23, {}, True)
        self.run_async(t)

    def test_spec_sum_and_get_data(self):
        async def t(c):
            self.assert_result(await c.request("sum", [1, 2, 4], "1"), "1", 7, True)
            self.assert_result(await c.request("get_data", None, "9"), "9", ["hello", 5], True)
        self.run_async(t)

    def test_spec_notification(self):
        async def t(c):
            # The spec's two notifications (foobar does not exist: still silent).
            await c.send_raw('{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}')
            await c.send_raw('{"jsonrpc": "2.0", "method": "foobar"}')
            await c.send_raw('{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}')
            # The next frame is the response to this request, nothing else.
            await c.send_raw('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}')
            self.assertEqual(await c.recv(), {"jsonrpc": "2.0", "result": 19, "id": 1})
            await c.assert_quiet("no response to notifications")
        self.run_async(t)

    def test_spec_method_not_found(self):
        async def t(c):
            await c.send_raw('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}')
            self.assert_error(await c.recv(), -32601, "1")
            await c.assert_alive("a call to a missing method")
            await c.send_raw('{"jsonrpc": "2.0", "method": "foobar", "id": 77}')
            self.assert_error(await c.recv(), -32601, 77)
            await c.assert_alive("a call to a missing method")
        self.run_async(t)

    def test_spec_parse_error(self):
        async def t(c):
            await c.send_raw('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')
            self.assert_error(await c.recv(), -32700, None)
            await c.assert_alive("invalid JSON")
        self.run_async(t)

    def test_spec_invalid_request(self):
        async def t(c):
            await c.send_raw('{"jsonrpc": "2.0", "method": 1, "params": "bar"}')
            self.assert_error(await c.recv(), -32600, None)
            await c.assert_alive("an invalid Request object")
        self.run_async(t)

    def test_spec_batch_invalid_json(self):
        async def t(c):
            await c.send_raw('[\n  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n'
                             '  {"jsonrpc": "2.0", "method"\n]')
            resp = await c.recv()
            self.assertIsInstance(resp, dict, "a batch that is invalid JSON gets a single response")
            self.assert_error(resp, -32700, None)
            await c.assert_alive("a batch that is invalid JSON")
            await c.assert_quiet()
        self.run_async(t)

    def test_spec_batch_empty(self):
        async def t(c):
            await c.send_raw('[]')
            resp = await c.recv()
            self.assertIsInstance(resp, dict, "an empty batch gets a single (non-array) response")
            self.assert_error(resp, -32600, None)
            await c.assert_alive("an empty batch")
            await c.assert_quiet()
        self.run_async(t)

    def test_spec_batch_one_invalid(self):
        async def t(c):
            await c.send_raw('[1]')
            resp = await c.recv()
            self.assertIsInstance(resp, list, repr(resp))
            self.assertEqual(len(resp), 1, repr(resp))
            self.assert_error(resp[0], -32600, None)
            await c.assert_alive("[1]")
            await c.assert_quiet()
        self.run_async(t)

    def test_spec_batch_three_invalid(self):
        async def t(c):
            await c.send_raw('[1,2,3]')
            resp = await c.recv()
            self.assertIsInstance(resp, list, repr(resp))
            self.assertEqual(len(resp), 3, repr(resp))
            for r in resp:
                self.assert_error(r, -32600, None)
            await c.assert_alive("[1,2,3]")
            await c.assert_quiet()
        self.run_async(t)

    def test_spec_batch_mixed(self):
        async def t(c):
            await c.send_raw('''[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]''')
            resp = await c.recv()
            self.assertIsInstance(resp, list, repr(resp))
            self.assertEqual(len(resp), 5, repr(resp))
            by_id = {}
            nulls = []
            for r in resp:
                self.assertIsInstance(r, dict, repr(resp))
                if r.get("id") is None:
                    nulls.append(r)
                else:
                    self.assertNotIn(r["id"], by_id, "duplicate id in " + repr(resp))
                    by_id[r["id"]] = r
            self.assertEqual(sorted(by_id), ["1", "2", "5", "9"], repr(resp))
            self.assertEqual(by_id["1"], {"jsonrpc": "2.0", "result": 7, "id": "1"})
            self.assertEqual(by_id["2"], {"jsonrpc": "2.0", "result": 19, "id": "2"})
            self.assert_error(by_id["5"], -32601, "5")
            self.assertEqual(by_id["9"], {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"})
            self.assertEqual(len(nulls), 1, repr(resp))
            self.assert_error(nulls[0], -32600, None)
            await c.assert_alive("the mixed batch")
            await c.assert_quiet()
        self.run_async(t)

    def test_spec_batch_all_notifications(self):
        async def t(c):
            await c.send_raw('''[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]''')
            # Nothing comes back for it: the next frame answers this request.
            await c.send_raw('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 5}')
            self.assertEqual(await c.recv(), {"jsonrpc": "2.0", "result": 19, "id": 5})
            await c.assert_quiet("no response to a batch of notifications")
        self.run_async(t)

    # -- 2. ids

    def test_string_ids(self):
        async def t(c):
            for id in ["abc", "1", "", " ", "ünïcödé ☃ 𝄞 🎉", "quote\" back\\slash\nnewline\ttab",
                       "\u007f\u001f", "x" * 200]:
                resp = await c.request("subtract", [42, 23], id)
                self.assertEqual(resp, {"jsonrpc": "2.0", "result": 19, "id": id})
                self.assertIs(type(resp["id"]), str)
            # Also with \u escapes on the way in: the decoded string comes back.
            await c.send_raw('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], '
                             '"id": "\\u00e9\\ud83c\\udf89"}')
            self.assertEqual(await c.recv(), {"jsonrpc": "2.0", "result": 19, "id": "é🎉"})
        self.run_async(t)

    def test_string_id_with_nul(self):
        # Valid RFC 8259, but Tether refuses "\u0000" anywhere on purpose
        # (lib/wire/tether-json.c: GVariant strings cannot hold NUL). Whatever the
        # code, the answer carries id null and the connection lives on.
        async def t(c):
            raw = '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": "a\\u0000b"}'
            got = await c.exchange(raw)
            self.assertEqual(len(got), 1, repr(got))
            code = got[0].get("error", {}).get("code") if isinstance(got[0], dict) else None
            self.assertIn(code, (-32700, -32600), repr(got))
            self.assert_error(got[0], code, None)
            OBSERVED["a string id containing \\u0000"] = code
        self.run_async(t)

    def test_integer_ids(self):
        async def t(c):
            for id in [0, 1, -1, 2**31, 2**32 + 1, 9007199254740993, -9007199254740993,
                       INT64_MIN, INT64_MAX]:
                await c.send_raw('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], '
                                 '"id": %d}' % id)
                raw = await c.recv_raw()
                resp = json.loads(raw)
                self.assertEqual(resp, {"jsonrpc": "2.0", "result": 19, "id": id}, raw)
                self.assertIs(type(resp["id"]), int, "id %d came back as %r" % (id, raw))
        self.run_async(t)

    def test_invalid_ids(self):
        async def t(c):
            cases = [
                ("1.5", "a fractional id", (-32600,)),
                ("9223372036854775808", "an id of 2^63 (out of int64)", (-32700, -32600)),
                ("-9223372036854775809", "an id below int64", (-32700, -32600)),
                ('{"a": 1}', "an object id", (-32600,)),
                ("[1]", "an array id", (-32600,)),
                ("true", "a boolean id", (-32600,)),
                ("null", "a null id", (-32600,)),
            ]
            for text, what, codes in cases:
                with self.subTest(id=text):
                    got = await c.exchange('{"jsonrpc": "2.0", "method": "subtract", '
                                           '"params": [42, 23], "id": %s}' % text, what)
                    self.assertEqual(len(got), 1, "%s: %r" % (what, got))
                    resp = got[0]
                    self.assertIsInstance(resp, dict, "%s: %r" % (what, resp))
                    err = resp.get("error")
                    code = err.get("code") if isinstance(err, dict) else None
                    self.assertIn(code, codes, "%s: %r" % (what, resp))
                    self.assert_error(resp, code, None)
                    if text.startswith(("9223", "-9223")):
                        OBSERVED[what] = code
            await c.assert_quiet()
        self.run_async(t)

    # -- 3./4. callbacks from the server to this plain client

    def assert_callback(self, msg, method, params):
        """A server-initiated request, exactly as a plain peer must see it."""
        self.assertIsInstance(msg, dict, repr(msg))
        # No "tether" member (nor anything else) for a plain peer.
        self.assertEqual(set(msg), {"jsonrpc", "id", "method", "params"}, repr(msg))
        self.assertEqual(msg["jsonrpc"], "2.0", repr(msg))
        self.assertEqual(msg["method"], method, repr(msg))
        self.assertIs(type(msg["id"]), int, "Tether's own ids are integers: %r" % (msg,))
        self.assertEqual(msg["params"], params, repr(msg))

    def test_callback_work_progress(self):
        async def t(c):
            await c.send({"jsonrpc": "2.0", "method": "work",
                          "params": {"steps": 3, "delay_ms": 10}, "id": "w1"})
            seen = set()
            for i in range(1, 4):
                msg = await c.recv("progress callback %d" % i)
                self.assert_callback(msg, "progress", {"step": i, "of": 3})
                for v in msg["params"].values():
                    self.assertIs(type(v), int, repr(msg))
                self.assertNotIn(msg["id"], seen, "callback ids must be distinct")
                seen.add(msg["id"])
                await c.send({"jsonrpc": "2.0", "result": True, "id": msg["id"]})
            self.assertEqual(await c.recv("work's response"),
                             {"jsonrpc": "2.0", "result": {"done": 3}, "id": "w1"})
            await c.assert_alive("work")
            await c.assert_quiet()
        self.run_async(t)

    def test_callback_work_positional_and_integer_id(self):
        async def t(c):
            # Same thing, positional params and an integer id of ours that
            # could collide with the server's own callback ids.
            await c.send({"jsonrpc": "2.0", "method": "work", "params": [2, 0], "id": 1})
            for i in range(1, 3):
                msg = await c.recv("progress callback %d" % i)
                self.assert_callback(msg, "progress", {"step": i, "of": 2})
                await c.send({"jsonrpc": "2.0", "result": None, "id": msg["id"]})
            self.assertEqual(await c.recv("work's response"),
                             {"jsonrpc": "2.0", "result": {"done": 2}, "id": 1})
            await c.assert_quiet()
        self.run_async(t)

    def test_callback_work_error(self):
        async def t(c):
            await c.send({"jsonrpc": "2.0", "method": "work",
                          "params": {"steps": 3, "delay_ms": 10}, "id": "w2"})
            msg = await c.recv("progress callback 1")
            self.assert_callback(msg, "progress", {"step": 1, "of": 3})
            await c.send({"jsonrpc": "2.0", "result": True, "id": msg["id"]})
            msg = await c.recv("progress callback 2")
            self.assert_callback(msg, "progress", {"step": 2, "of": 3})
            await c.send({"jsonrpc": "2.0", "id": msg["id"],
                          "error": {"code": 4001, "message": "user said no"}})
            resp = await c.recv("work's response")
            self.assert_error(resp, 4001, "w2", "user said no")
            # No third progress callback after the failure.
            await c.assert_alive("a callback answered with an error")
            await c.assert_quiet("no further progress callbacks")
        self.run_async(t)

    def test_callback_ask(self):
        async def t(c):
            await c.send({"jsonrpc": "2.0", "method": "ask", "params": {"question": "ok?"}, "id": 7})
            msg = await c.recv("the confirm callback")
            self.assert_callback(msg, "confirm", {"question": "ok?"})
            await c.send({"jsonrpc": "2.0", "result": "yes", "id": msg["id"]})
            self.assertEqual(await c.recv("ask's response"),
                             {"jsonrpc": "2.0", "result": "yes", "id": 7})
            await c.assert_quiet()
        self.run_async(t)

    # -- 5. whoami (per transport, see subclasses)

    # -- 6. bad input never kills the connection

    def test_malformed_messages_keep_connection(self):
        async def t(c):
            cases = [
                # (raw text, acceptable error codes[, length of the batch answer])
                ('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]', (-32700,)),
                ('', (-32700,)),
                ('   ', (-32700,)),
                ('{', (-32700,)),
                ('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1', (-32700,)),
                ('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}}', (-32700,)),
                ("{'jsonrpc': '2.0', 'method': 'subtract', 'id': 1}", (-32700,)),
                ('{"jsonrpc": "2.0", "method": "subtract", "params": [0x2a, 23], "id": 1}', (-32700,)),
                ('{"jsonrpc": "2.0", /* c */ "method": "subtract", "params": [42, 23], "id": 1}',
                 (-32700,)),
                ('{"jsonrpc": "2.0", "method": "subtract", "params": [1e999, 23], "id": 1}',
                 (-32700, -32600, -32602)),
                ('{"jsonrpc": "2.0", "method": "echo", "params": ["\\x41"], "id": 1}', (-32700,)),
                # Too deep: Tether answers -32600 (its depth limit) before or
                # instead of noticing the text is also unterminated.
                ('[' * 100000, (-32700, -32600)),
                ('[' * 10000 + ']' * 10000, (-32700, -32600)),
                ('"just a string"', (-32600,)),
                ('42', (-32600,)),
                ('null', (-32600,)),
                ('true', (-32600,)),
                ('{}', (-32600,)),
                ('{"foo": "boo"}', (-32600,)),
                ('{"jsonrpc": "2.0"}', (-32600,)),
                ('[{}]', (), 1),
                ('[{"foo": "boo"}]', (), 1),
                ('[{"foo": "boo"}, 2]', (), 2),
                ('{"jsonrpc": "2.0", "method": 1, "params": "bar"}', (-32600,)),
                ('{"jsonrpc": "1.0", "method": "subtract", "params": [42, 23], "id": 1}', (-32600,)),
                ('{"method": "subtract", "params": [42, 23], "id": 1}', (-32600,)),
                ('{"jsonrpc": 2.0, "method": "subtract", "params": [42, 23], "id": 1}', (-32600,)),
                ('{"jsonrpc": "2.0", "params": [42, 23], "id": 1}', (-32600,)),
                ('{"jsonrpc": "2.0", "method": "subtract", "params": "bar", "id": 1}', (-32600,)),
                ('{"jsonrpc": "2.0", "method": "subtract", "params": 5, "id": 1}', (-32600,)),
                ('{"jsonrpc": "2.0", "method": null, "id": 1}', (-32600,)),
            ]
            for case in cases:
                raw, codes = case[0], case[1]
                batch_len = case[2] if len(case) > 2 else None
                label = repr(raw if len(raw) < 80 else raw[:40] + "..." + raw[-10:])
                with self.subTest(message=label):
                    got = await c.exchange(raw, label)
                    self.assertEqual(len(got), 1, "%s: expected one answer, got %r" % (label, got))
                    resp = got[0]
                    if batch_len is not None:
                        self.assertIsInstance(resp, list, "%s -> %r" % (label, resp))
                        self.assertEqual(len(resp), batch_len, "%s -> %r" % (label, resp))
                        for r in resp:
                            self.assert_error(r, -32600, None)
                        continue
                    self.assertIsInstance(resp, dict, "%s: %r" % (label, resp))
                    err = resp.get("error")
                    code = err.get("code") if isinstance(err, dict) else None
                    self.assertIn(code, codes, "%s -> %r" % (label, resp))
                    # The spec wants id null when the id could not be
                    # detected; echoing an id that is itself valid is fine.
                    ids = (None, 1) if '"id": 1' in raw and code != -32700 else (None,)
                    self.assertIn(resp.get("id"), ids, "%s -> %r" % (label, resp))
                    self.assert_error(resp, code, resp.get("id"))
            # A stray response (to no request of the server's) must not
            # kill the connection either.
            await c.send_raw('{"jsonrpc": "2.0", "result": 1, "id": 123456789}')
            await c.send_raw('{"jsonrpc": "2.0", "error": {"code": 1, "message": "x"}, "id": "zz"}')
            await c.assert_alive("unsolicited responses")
            await c.assert_quiet()
        self.run_async(t)


OBSERVED = {}


class WebSocketTcp(PlainClientMixin, unittest.TestCase):
    transport = "ws"

    def open_ws(self):
        return websockets.connect(SERVER.ws_uri, open_timeout=STEP_TIMEOUT,
                                  close_timeout=STEP_TIMEOUT, max_size=2**24)

    def test_whoami(self):
        async def t(c):
            who = await c.call("whoami")
            self.assertIsInstance(who, dict, repr(who))
            self.assertEqual(who.get("transport"), "tcp", repr(who))
            self.assertIs(who.get("authenticated"), False, repr(who))
            self.assertIs(who.get("tether"), False, repr(who))
            for key in ("uid", "gid", "pid", "certificate_sha256"):
                self.assertNotIn(key, who, repr(who))
            self.assertTrue(set(who) <= {"transport", "authenticated", "tether", "address"},
                            repr(who))
            if "address" in who:
                self.assertIn("127.0.0.1", who["address"], repr(who))
        self.run_async(t)


class WebSocketUnix(PlainClientMixin, unittest.TestCase):
    transport = "unix"

    def open_ws(self):
        return websockets.unix_connect(SERVER.unix_path, "ws://localhost/",
                                       open_timeout=STEP_TIMEOUT,
                                       close_timeout=STEP_TIMEOUT, max_size=2**24)

    def test_whoami(self):
        async def t(c):
            who = await c.call("whoami")
            self.assertIsInstance(who, dict, repr(who))
            self.assertEqual(who.get("transport"), "unix", repr(who))
            self.assertIs(who.get("authenticated"), True, repr(who))
            self.assertIs(who.get("tether"), False, repr(who))
            self.assertEqual(who.get("uid"), os.getuid(), repr(who))
            self.assertEqual(who.get("gid"), os.getgid(), repr(who))
            self.assertEqual(who.get("pid"), os.getpid(), repr(who))
            self.assertNotIn("certificate_sha256", who, repr(who))
        self.run_async(t)


class ZzServerLifecycle(unittest.TestCase):
    """Runs last (alphabetical order): the server survived everything above
    and, on SIGTERM, drains: a plain peer's call in progress is answered,
    the peer gets no rpc.tether.goaway (it would not know it), only the
    close with 1001 (going away) at the end, and the server exits 0."""

    def test_alive_then_sigterm_drains(self):
        self.assertIsNone(SERVER.proc.poll(),
                          "tether serve died during the tests; stderr: " + SERVER.stderr_text())

        async def body():
            async with websockets.connect(SERVER.ws_uri, open_timeout=STEP_TIMEOUT,
                                          close_timeout=STEP_TIMEOUT) as ws:
                await bounded(ws.send(json.dumps({"jsonrpc": "2.0", "method": "sleep",
                                                  "params": {"ms": 800}, "id": 1})), "send")
                # The call is in progress when the drain starts.
                await asyncio.sleep(0.2)
                SERVER.proc.send_signal(signal.SIGTERM)
                answer = json.loads(await bounded(ws.recv(), "the answer to sleep"))
                self.assertEqual(answer, {"jsonrpc": "2.0", "result": {"slept_ms": 800}, "id": 1},
                                 "the first frame after the drain began must be the answer "
                                 "(no goaway for a plain peer)")
                await bounded(ws.wait_closed(), "the server's close")
                self.assertEqual(ws.close_code, 1001, "closed with going away")

        asyncio.run(asyncio.wait_for(body(), TEST_TIMEOUT))
        try:
            status = SERVER.proc.wait(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            SERVER.kill()
            raise
        self.assertEqual(status, 0, "exit status after the drain; stderr: " + SERVER.stderr_text())


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    for what, code in sorted(OBSERVED.items()):
        print("observed: %s -> error %d with id null" % (what, code), file=sys.stderr)
    ok = prog.result.wasSuccessful()
    sys.exit(0 if ok else 1)
