#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tether behind nginx's `stream` module (issue #11), as docs/deploying.md
configures it: TCP passed through (TLS is not terminated), `proxy_protocol
on` (nginx sends version 1 of the header), two `tether serve wss://...
--proxy-protocol` instances with SCRAM users.

- SCRAM-SHA-256-PLUS succeeds through it (the channel binding holds);
- each instance sees the client's own address (127.0.0.2, 127.0.0.3, not
  nginx's 127.0.0.1).

Run with Debian's interpreter (nginx, libnginx-mod-stream):
/usr/bin/python3 tests/deploy/test_nginx.py. The `tether` tool is
$TETHER_TOOL. Every wait is bounded.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_haproxy import (STEP_TIMEOUT, TETHER_TOOL, Deployment, Process, free_port,  # noqa: E402
                          make_certificates, make_users, start_instances, tether_session)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


class Nginx:
    INSTANCES = 2

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tether-nginx-")
        self.ca, cert, key = make_certificates(self.dir)
        self.users, self.password_file = make_users(self.dir)
        self.servers = []
        self.ports = []
        self.nginx = None
        try:
            start_instances(self, self.INSTANCES, cert, key, ["handshake-timeout=5000"])
            self.port = free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(self.config())
            subprocess.run([NGINX, "-t", "-p", self.dir, "-c", conf], check=True,
                           capture_output=True, timeout=30)
            self.nginx = Process("nginx", [NGINX, "-p", self.dir, "-c", conf], self.dir)
            Deployment.wait_listening(self.port)
            self.uri = f"wss://127.0.0.1:{self.port}"
        except BaseException:
            self.stop()
            raise

    def config(self):
        upstream = "\n".join(f"        server 127.0.0.1:{port};" for port in self.ports)
        return f"""load_module {STREAM_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/nginx-error.log info;

events {{
    worker_connections 256;
}}

stream {{
    upstream tether {{
        hash $remote_addr consistent;
{upstream}
    }}
    server {{
        listen 127.0.0.1:{self.port};
        proxy_pass tether;
        proxy_protocol on;
        proxy_connect_timeout 5s;
        proxy_timeout 60s;
    }}
}}
"""

    def logs(self):
        return "\n".join(s.log() for s in self.servers)

    def stop(self):
        if self.nginx is not None:
            self.nginx.stop()
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class NginxTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.d = Nginx()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_scram_plus_through_nginx(self):
        r = subprocess.run([TETHER_TOOL, "call", self.d.uri, "whoami", "--cacert", self.d.ca,
                            "--timeout", "5000", "--user", "alice", "--password-file",
                            self.d.password_file], capture_output=True, timeout=30, text=True)
        self.assertEqual(r.returncode, 0, r.stderr + self.d.logs())
        who = json.loads(r.stdout)
        self.assertEqual(who["mechanism"], "SCRAM-SHA-256-PLUS")
        self.assertEqual(who["username"], "alice")

    def test_each_instance_sees_the_client(self):
        for source in ("127.0.0.2", "127.0.0.3"):
            who = asyncio.run(asyncio.wait_for(tether_session(self.d.uri, self.d.ca, source),
                                               STEP_TIMEOUT * 2))
            self.assertTrue(who["address"].startswith(source + ":"), who)
        self.assertRegex(self.d.logs(), r"tls 127\.0\.0\.2:\d+ anonymous via 127\.0\.0\.1:\d+ connected")


if __name__ == "__main__":
    unittest.main(verbosity=2)
