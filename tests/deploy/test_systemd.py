#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""systemd socket activation (issue #11), with systemd's own tools.

- `systemd-socket-activate` binds a unix socket, or a TCP port, and starts
  `tether serve` (no URI) on the first connection with LISTEN_FDS: the
  service serves that socket — unix:, ws:// on loopback, and wss:// when
  it has a certificate — and a client's call succeeds.
- The example units in docs/systemd/ pass `systemd-analyze verify`.

Run with Debian's interpreter: /usr/bin/python3 tests/deploy/test_systemd.py.
The `tether` tool is $TETHER_TOOL. Every wait is bounded.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_haproxy import STEP_TIMEOUT, TETHER_TOOL, Process, free_port, make_certificates  # noqa: E402

ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
UNITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "systemd")


class SocketActivationTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tether-systemd-")
        self.processes = []

    def tearDown(self):
        for p in self.processes:
            p.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def activate(self, listen, *serve_args):
        p = Process(f"activate-{len(self.processes)}",
                    [ACTIVATE, "-l", listen, TETHER_TOOL, "serve", *serve_args], self.dir)
        self.processes.append(p)
        p.wait_log(r"Listening on ")
        return p

    def call(self, uri, *extra):
        r = subprocess.run([TETHER_TOOL, "call", uri, "whoami", "--timeout", "5000", *extra],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_unix(self):
        path = os.path.join(self.dir, "demo.sock")
        p = self.activate(path)
        who = self.call("unix:" + path)
        self.assertEqual(who["transport"], "unix")
        p.expect_line(r"listening on unix:" + path)
        # It served the socket it was given, and bound nothing itself.
        self.assertIn("Execing", p.log())

    def test_ws_loopback(self):
        port = free_port()
        p = self.activate(f"127.0.0.1:{port}")
        who = self.call(f"ws://127.0.0.1:{port}")
        self.assertEqual(who["transport"], "tcp")
        p.expect_line(rf"listening on ws://127\.0\.0\.1:{port}$")

    def test_wss_with_certificate(self):
        ca, cert, key = make_certificates(self.dir)
        port = free_port()
        p = self.activate(f"127.0.0.1:{port}", "--cert", cert, "--key", key)
        who = self.call(f"wss://127.0.0.1:{port}", "--cacert", ca)
        self.assertEqual(who["transport"], "tls")
        p.expect_line(rf"listening on wss://127\.0\.0\.1:{port}$")

    def test_no_uri_and_no_sockets(self):
        r = subprocess.run([TETHER_TOOL, "serve"], capture_output=True, text=True, timeout=30,
                           env={k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")})
        self.assertEqual(r.returncode, 2)
        self.assertIn("LISTEN_FDS", r.stderr)

    def test_example_units_verify(self):
        # verify checks that ExecStart= exists: point it at this build.
        for name in ("tether-demo.socket", "tether-demo.service"):
            with open(os.path.join(UNITS, name)) as f:
                text = f.read()
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text.replace("/usr/local/bin/tether", TETHER_TOOL))
        r = subprocess.run([ANALYZE, "verify", os.path.join(self.dir, "tether-demo.socket"),
                            os.path.join(self.dir, "tether-demo.service")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "", "no warnings either")


if __name__ == "__main__":
    unittest.main(verbosity=2)
