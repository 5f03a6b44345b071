#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run a client example against a service started for it.

    with-service.py [--timeout S] SERVICE [ARGS...] -- CLIENT [ARGS...]

The service is started with `@URI@` in its arguments replaced by
`unix:<fresh temporary directory>/service.sock`; its first stdout line must
be `listening on URI` (as `tether serve` and examples/c/desktop-service
print). The client then runs with `@URI@` replaced by that URI. Then the
service gets SIGTERM and must exit 0 (it closed cleanly).

Exit status: the client's, or 1 if the service failed; everything is
bounded by --timeout (default 60 s). Uses only the standard library, so
any python3 runs it.
"""

import os
import select
import signal
import subprocess
import sys
import tempfile
import time


def fail(message):
    print(f"with-service: {message}", file=sys.stderr)
    return 1


def read_first_line(proc, deadline):
    """The service's first stdout line, or None if it did not come in time."""
    buf = b""
    fd = proc.stdout.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
    return buf.split(b"\n", 1)[0].decode()


def stop(proc, grace=10):
    """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


def main(argv):
    timeout = 60.0
    if argv[:1] == ["--timeout"]:
        timeout = float(argv[1])
        argv = argv[2:]
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    service_cmd, client_cmd = argv[:split], argv[split + 1:]
    if not service_cmd or not client_cmd:
        print(__doc__, file=sys.stderr)
        return 2
    deadline = time.monotonic() + timeout

    with tempfile.TemporaryDirectory(prefix="tether-example-") as tmp:
        wanted = "unix:" + os.path.join(tmp, "service.sock")
        service = subprocess.Popen([a.replace("@URI@", wanted) for a in service_cmd],
                                   stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            line = read_first_line(service, min(deadline, time.monotonic() + 20))
            if line is None or not line.startswith("listening on "):
                return fail(f"{service_cmd[0]} did not print 'listening on URI' (got {line!r})")
            uri = line[len("listening on "):]
            print(f"with-service: {os.path.basename(service_cmd[0])} is {line}", flush=True)

            client = subprocess.Popen([a.replace("@URI@", uri) for a in client_cmd],
                                      stdin=subprocess.DEVNULL)
            try:
                status = client.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()
                return fail(f"{client_cmd[0]} did not finish within {timeout:g} s")
            if status != 0:
                return fail(f"{client_cmd[0]} exited with status {status}")
        finally:
            code = stop(service)
        if code != 0:
            return fail(f"{service_cmd[0]} did not exit cleanly on SIGTERM (status {code})")
        if os.path.exists(os.path.join(tmp, "service.sock")):
            return fail("the service left its socket file behind")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
