#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tether behind the real HAProxy (issue #11), as docs/deploying.md runs it.

HAProxy from Debian in TCP mode with `send-proxy-v2` in front of three
`tether serve wss://... --proxy-protocol --trusted-proxy 127.0.0.1`
instances with SCRAM users. HAProxy does not terminate TLS, so:

- SCRAM-SHA-256-PLUS, bound to the TLS channel, succeeds through it;
- each instance sees the client's own address (clients connect from
  127.0.0.2, 127.0.0.3, ... to tell them from HAProxy's 127.0.0.1) and
  limits it: a client over max-connections-per-peer is refused while
  another client behind the same HAProxy is not;
- a connection that bypasses HAProxy to a PROXY-required listener is
  refused (no header; from an untrusted address), and a garbage or half
  header is refused within the handshake deadline;
- under steady load from reconnecting clients (reconnect_load.py, the GI
  bindings), an instance sent SIGTERM drains and its clients move to the
  others behind `retries` and `option redispatch`: no call fails.

Run with Debian's interpreter (python3-websockets, haproxy, gnutls-bin):
/usr/bin/python3 tests/deploy/test_haproxy.py. The `tether` tool is
$TETHER_TOOL. Every wait is bounded.
"""

import asyncio
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import websockets

TETHER_TOOL = os.environ.get("TETHER_TOOL") or "/work/main/_build/tools/tether"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CERTTOOL = shutil.which("certtool") or "/usr/bin/certtool"

STEP_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT_MS = 5000  # SCRAM costs 600,000 PBKDF2 rounds on each side
PASSWORD = "correct horse battery"
PER_PEER = 3            # max-connections-per-peer on each instance


def free_port():
    """A loopback port the kernel picked, for HAProxy's frontend (HAProxy
    cannot report a port 0 back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificates(directory):
    """A CA and a server certificate for 127.0.0.1, made fresh by certtool."""
    def certtool(*args, template=None):
        cmd = [CERTTOOL, *args]
        if template is not None:
            path = os.path.join(directory, "template")
            with open(path, "w") as f:
                f.write(template)
            cmd += ["--template", path]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    ca_key = os.path.join(directory, "ca-key.pem")
    ca = os.path.join(directory, "ca.pem")
    key = os.path.join(directory, "server-key.pem")
    cert = os.path.join(directory, "server.pem")
    certtool("--generate-privkey", "--key-type", "ecdsa", "--outfile", ca_key)
    certtool("--generate-self-signed", "--load-privkey", ca_key, "--outfile", ca,
             template='cn = "Tether test CA"\nca\ncert_signing_key\nexpiration_days = 2\n')
    certtool("--generate-privkey", "--key-type", "ecdsa", "--outfile", key)
    certtool("--generate-certificate", "--load-privkey", key, "--load-ca-certificate", ca,
             "--load-ca-privkey", ca_key, "--outfile", cert,
             template='cn = "127.0.0.1"\nip_address = "127.0.0.1"\ndns_name = "localhost"\n'
                      'tls_www_server\nexpiration_days = 2\n')
    return ca, cert, key


class Process:
    """A subprocess whose stdout lines are queued and stderr kept in a file."""

    def __init__(self, name, args, directory):
        self.name = name
        self.stderr_path = os.path.join(directory, name + ".stderr")
        self.stderr = open(self.stderr_path, "w+b")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def expect_line(self, pattern, timeout=STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no line matching {pattern!r}: {self.log()}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"{self.name} exited: {self.log()}")
            m = re.search(pattern, line)
            if m:
                return m

    def log(self):
        self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout=STEP_TIMEOUT):
        """Waits until stderr holds a line matching @pattern; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log().splitlines():
                if re.search(pattern, line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no log line matching {pattern!r}:\n{self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STEP_TIMEOUT)
        self.stderr.close()


def make_users(directory):
    """A users file with alice, and a file holding her password."""
    users = os.path.join(directory, "users")
    subprocess.run([TETHER_TOOL, "passwd", users, "alice"], input=PASSWORD.encode(),
                   check=True, capture_output=True, timeout=60)
    password_file = os.path.join(directory, "password")
    with open(password_file, "w") as f:
        f.write(PASSWORD)
    return users, password_file


def start_instances(d, count, cert, key, limits, extra=()):
    """@count `tether serve wss://127.0.0.1:0 --proxy-protocol` instances
    trusting 127.0.0.1, appended to d.servers, their ports to d.ports."""
    for i in range(count):
        args = [TETHER_TOOL, "serve", "wss://127.0.0.1:0", "--cert", cert, "--key", key,
                "--users", d.users, "--proxy-protocol", "--trusted-proxy", "127.0.0.1"]
        for limit in limits:
            args += ["--limit", limit]
        args += list(extra)
        server = Process(f"tether-{i}", args, d.dir)
        d.servers.append(server)
        m = server.expect_line(r"listening on wss://127\.0\.0\.1:(\d+)")
        d.ports.append(int(m.group(1)))


class Deployment:
    """Three instances behind HAProxy (balance source: a client address
    sticks to one instance, as a limit per address wants)."""

    INSTANCES = 3
    BALANCE = "source"
    EXTRA_BACKEND = ""
    EXTRA_ARGS = ()

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tether-haproxy-")
        self.ca, cert, key = make_certificates(self.dir)
        self.users, self.password_file = make_users(self.dir)
        self.servers = []
        self.ports = []
        self.haproxy = None
        try:
            start_instances(self, self.INSTANCES, cert, key,
                            [f"handshake-timeout={HANDSHAKE_TIMEOUT_MS}",
                             f"max-connections-per-peer={PER_PEER}"], self.EXTRA_ARGS)
            self.port = free_port()
            self.admin = os.path.join(self.dir, "admin.sock")
            cfg = os.path.join(self.dir, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write(self.haproxy_config())
            subprocess.run([HAPROXY, "-c", "-f", cfg], check=True, capture_output=True, timeout=30)
            self.haproxy = Process("haproxy", [HAPROXY, "-db", "-f", cfg], self.dir)
            self.wait_listening(self.port)
            self.uri = f"wss://127.0.0.1:{self.port}"
            self.wait_states("UP")
        except BaseException:
            self.stop()
            raise

    def haproxy_config(self):
        servers = "\n".join(f"    server tether{i} 127.0.0.1:{port} send-proxy-v2 check "
                            f"check-send-proxy check-ssl verify required ca-file {self.ca} "
                            f"inter 500 fall 2 rise 1"
                            for i, port in enumerate(self.ports))
        return f"""global
    maxconn 1024
    stats socket {self.admin} level admin

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend tether
    bind 127.0.0.1:{self.port}
    default_backend tether

backend tether
    balance {self.BALANCE}
{self.EXTRA_BACKEND}    # Health: /readyz over TLS, with a PROXY header (LOCAL) like every
    # connection to a PROXY protocol listener.
    option httpchk GET /readyz
    http-check expect status 200
{servers}
"""

    def server_states(self):
        """HAProxy's view of each instance: UP, DOWN, ..."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(STEP_TIMEOUT)
            s.connect(self.admin)
            s.sendall(b"show stat\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r["status"] for r in rows if r["pxname"] == "tether"
                and r["svname"].startswith("tether")}

    def wait_states(self, want, timeout=STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.server_states()
            if all(v.startswith(want) for v in states.values()) and len(states) == self.INSTANCES:
                return states
            time.sleep(0.1)
        raise AssertionError(f"HAProxy sees {self.server_states()}, not all {want}")

    @staticmethod
    def wait_listening(port):
        deadline = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nothing listens on port {port}")

    def logs(self):
        return "\n".join(s.log() for s in self.servers)

    def wait_any_log(self, pattern, timeout=STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.logs().splitlines():
                if re.search(pattern, line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no instance logged {pattern!r}:\n{self.logs()}")

    def stop(self):
        if self.haproxy is not None:
            self.haproxy.stop()
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    return ctx


async def tether_session(uri, ca, source):
    """A minimal Tether client over wss:// from @source: the hello (no
    authentication), then whoami; returns whoami's result."""
    host, port = uri.split("//")[1].split(":")
    sock = socket.socket()
    sock.settimeout(STEP_TIMEOUT)
    sock.bind((source, 0))
    sock.connect((host, int(port)))
    sock.setblocking(False)
    async with websockets.connect(uri, sock=sock, ssl=tls_context(ca), server_hostname="127.0.0.1",
                                  subprotocols=["tether.v1"], open_timeout=STEP_TIMEOUT) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.tether.hello",
                                  "params": {"version": 1}}))
        hello = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))
        assert "result" in hello, hello
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "whoami"}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))
        assert "result" in answer, answer
        return answer["result"]


def whoami_from(deployment, source):
    return asyncio.run(asyncio.wait_for(tether_session(deployment.uri, deployment.ca, source),
                                        STEP_TIMEOUT * 2))


def raw_connection(port, source="127.0.0.1"):
    sock = socket.socket()
    sock.settimeout(STEP_TIMEOUT)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def wait_closed(sock, limit_s):
    """True if the peer closes @sock within @limit_s seconds."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if sock.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


class HAProxyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.d = Deployment()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def tether_call(self, uri, method, *params, user=True):
        args = [TETHER_TOOL, "call", uri, method, *params, "--cacert", self.d.ca, "--timeout", "5000"]
        if user:
            args += ["--user", "alice", "--password-file", self.d.password_file]
        return subprocess.run(args, capture_output=True, timeout=30, text=True)

    def test_scram_plus_through_haproxy(self):
        """The balancer passes TLS through: SCRAM bound to the channel
        holds end to end, on every instance."""
        for _ in range(3):
            r = self.tether_call(self.d.uri, "whoami")
            self.assertEqual(r.returncode, 0, r.stderr + self.d.logs())
            who = json.loads(r.stdout)
            self.assertEqual(who["username"], "alice")
            self.assertEqual(who["mechanism"], "SCRAM-SHA-256-PLUS")
            self.assertTrue(who["address"].startswith("127.0.0.1:"), who)
        # Clients from several addresses reach every instance.
        for i in range(2, 14):
            who = whoami_from(self.d, f"127.0.0.{i}")
            self.assertTrue(who["address"].startswith(f"127.0.0.{i}:"), who)
        served = [s for s in self.d.servers
                  if re.search(r"tls 127\.0\.0\.\d+:\d+ .*via 127\.0\.0\.1:\d+ connected", s.log())]
        self.assertGreaterEqual(len(served), 2, "clients spread over the instances, each named "
                                                "with the balancer beside it:\n" + self.d.logs())
        self.d.wait_any_log(r"tls 127\.0\.0\.1:\d+ user=alice \(SCRAM-SHA-256-PLUS\) via "
                            r"127\.0\.0\.1:\d+ connected")

    def test_each_instance_sees_the_client(self):
        """The address is the client's from the header (127.0.0.2, not
        HAProxy's 127.0.0.1), and the balancer is named beside it."""
        who = whoami_from(self.d, "127.0.0.2")
        self.assertRegex(who["address"], r"^127\.0\.0\.2:\d+$")
        who = whoami_from(self.d, "127.0.0.3")
        self.assertRegex(who["address"], r"^127\.0\.0\.3:\d+$")
        self.d.wait_any_log(r"tls 127\.0\.0\.3:\d+ anonymous via 127\.0\.0\.1:\d+ connected")

    def test_limits_count_the_client(self):
        """max-connections-per-peer counts 127.0.0.20, not the balancer:
        its connection over the limit is refused, another client's is not."""
        held = [raw_connection(self.d.port, "127.0.0.20") for _ in range(PER_PEER)]
        try:
            # Both are in: each got past its header (the balancer sends
            # it as it connects), and waits for its TLS ClientHello.
            time.sleep(0.3)
            with self.assertRaises(Exception):
                whoami_from(self.d, "127.0.0.20")
            line = self.d.wait_any_log(r"tls 127\.0\.0\.20:\d+ anonymous via 127\.0\.0\.1:\d+ "
                                       r"misbehaved \(too-many-connections\): more than "
                                       + str(PER_PEER) + " connections")
            self.assertIn("refusing the connection", line)
            who = whoami_from(self.d, "127.0.0.21")
            self.assertTrue(who["address"].startswith("127.0.0.21:"))
        finally:
            for s in held:
                s.close()

    def test_health_checks(self):
        """HAProxy's checks (GET /readyz over TLS, PROXY LOCAL first) find
        every instance up, and leave no log line; /livez answers too."""
        self.assertEqual(set(self.d.wait_states("UP").values()), {"UP"})
        # A check every 500 ms on each instance since the start: none of
        # them left a line (only the start's probe of HAProxy's port may).
        for server in self.d.servers:
            self.assertNotRegex(server.log(), r"readyz|livez")
            self.assertLessEqual(len(re.findall(r"Handshake with .* failed", server.log())), 1,
                                 server.log())
        ctx = tls_context(self.d.ca)
        for path, status in (("/livez", 200), ("/readyz", 200), ("/other", 400)):
            sock = raw_connection(self.d.ports[2])
            sock.sendall(b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")   # PROXY LOCAL
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                tls.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                answer = b""
                while True:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
            self.assertTrue(answer.startswith(f"HTTP/1.1 {status} ".encode()), answer)

    def test_bypass_is_refused(self):
        """Straight to an instance: no header from the trusted address is
        refused at once; any connection from elsewhere is refused as not
        from a trusted proxy."""
        port = self.d.ports[0]
        r = self.tether_call(f"wss://127.0.0.1:{port}", "whoami")
        self.assertNotEqual(r.returncode, 0)
        self.d.servers[0].wait_log(r"Handshake with tls 127\.0\.0\.1:\d+ anonymous failed: "
                                   r"Malformed PROXY protocol header")
        sock = raw_connection(port, "127.0.0.9")
        self.assertTrue(wait_closed(sock, 5))
        sock.close()
        line = self.d.servers[0].wait_log(r"tls 127\.0\.0\.9:\d+ anonymous misbehaved "
                                          r"\(protocol-violation\)")
        self.assertIn("trusted proxies only", line)

    def test_garbage_and_half_headers(self):
        """From the trusted address, garbage is refused at once and half a
        header at the handshake deadline."""
        port = self.d.ports[1]
        sock = raw_connection(port)
        sock.sendall(b"\r\n\r\n\x00\r\nQUIT\n\x99garbage")
        self.assertTrue(wait_closed(sock, 5))
        sock.close()
        self.d.servers[1].wait_log(r"failed: Malformed PROXY protocol header")

        sock = raw_connection(port)
        sock.sendall(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00")
        self.assertTrue(wait_closed(sock, HANDSHAKE_TIMEOUT_MS / 1000 + 5))
        sock.close()
        self.d.servers[1].wait_log(r"no whole PROXY protocol header within 5000 ms")


class DrainDeployment(Deployment):
    """Connections spread over the instances, and a connection that an
    instance refuses (its listeners close as it drains) tried again on
    another: docs/deploying.md, "Draining an instance"."""

    BALANCE = "roundrobin"
    EXTRA_BACKEND = ("    retries 3\n"
                     "    option redispatch 1\n")
    EXTRA_ARGS = ("--drain-timeout", "10000")


class HAProxyDrainTest(unittest.TestCase):
    """Under steady load from reconnecting clients, one instance is sent
    SIGTERM: its clients finish their calls there, move to the others,
    and no call fails."""

    CLIENTS = 6

    @classmethod
    def setUpClass(cls):
        cls.d = DrainDeployment()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_no_call_fails_while_an_instance_drains(self):
        load = Process("load", [sys.executable,
                                os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             "reconnect_load.py"),
                                self.d.uri, self.d.ca, str(self.CLIENTS), "6"], self.d.dir)
        try:
            load.expect_line(r"^ready$", timeout=30)
            # Round robin: each instance holds some of the clients.
            for server in self.d.servers:
                server.wait_log(r"connected")
            time.sleep(1)
            victim = self.d.servers[0]
            victim.proc.send_signal(signal.SIGTERM)
            self.assertEqual(victim.proc.wait(timeout=15), 0, victim.log())
            self.assertIn("server: drained", victim.log())
            m = load.expect_line(r"^\{.*\}$", timeout=40)
            stats = json.loads(m.group(0))
            print(f"load: {stats['ok']} calls, {stats['going_away']} clients sent away, "
                  f"{stats['reconnected']} reconnected, {len(stats['failures'])} failed",
                  file=sys.stderr)
            self.assertEqual(stats["failures"], [], self.d.logs() + load.log())
            self.assertGreaterEqual(stats["going_away"], 1, stats)
            self.assertGreaterEqual(stats["reconnected"], stats["going_away"], stats)
            self.assertGreater(stats["ok"], 100, stats)
            self.assertEqual(load.proc.wait(timeout=STEP_TIMEOUT), 0, load.log())
        finally:
            load.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
