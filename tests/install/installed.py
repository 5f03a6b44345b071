# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run by test-installed.sh with GI_TYPELIB_PATH and LD_LIBRARY_PATH pointing
into the DESTDIR: loads Tether through the installed typelib, makes one call
and one refused call over a Unix socket, and checks that the typelib and the
library it used are the installed ones.

    installed.py DESTDIR SOCKET-PATH
"""

import os
import sys

import gi
gi.require_version("Tether", "1.0")
from gi.repository import GLib, Tether  # noqa: E402

destdir, path = sys.argv[1], sys.argv[2]
uri = "unix:" + path
loop = GLib.MainLoop()
outcome = {}


def echo(invocation):
    invocation.return_value(invocation.get_parameters())


def done(key, finish):
    def callback(source, result):
        try:
            outcome[key] = finish(result)
        except GLib.Error as e:
            outcome[key] = e
        loop.quit()
    return callback


def timed_out(key):
    print(f"python: {key} timed out", file=sys.stderr, flush=True)
    os._exit(1)


def run(start, key):
    timer = GLib.timeout_add_seconds(10, timed_out, key)
    start()
    loop.run()
    GLib.source_remove(timer)
    return outcome[key]


server = Tether.Server.new()
server.add_method("echo", Tether.Access.AUTHENTICATED, echo)
server.listen(uri)

client = Tether.Client.new(uri)
connected = run(lambda: client.connect_async(None, done("connect", client.connect_finish)),
                "connect")
assert connected is True, connected

params = GLib.Variant("a{sv}", {"n": GLib.Variant("x", 42)})
answer = run(lambda: client.call_async("echo", params, 5000, None,
                                       done("echo", client.call_finish)), "echo")
assert answer.unpack() == {"n": 42}, answer

refused = run(lambda: client.call_async("missing", None, 5000, None,
                                        done("missing", client.call_finish)), "missing")
assert isinstance(refused, GLib.Error), refused
assert refused.matches(Tether.remote_error_quark(), Tether.RemoteError.METHOD_NOT_FOUND), refused
assert GLib.quark_to_string(Tether.error_quark()) == "tether-error-quark"

client.close()
server.close()

with open("/proc/self/maps") as f:
    mapped = {line.split()[-1] for line in f if "/" in line}
used = []
for name in ("libtether-1.so", "Tether-1.0.typelib"):
    files = [m for m in mapped if m.split("/")[-1].startswith(name)]
    assert files and all(m.startswith(destdir) for m in files), (name, files)
    used += files
print(f"Python: Tether {Tether.MAJOR_VERSION}.{Tether.MINOR_VERSION}.{Tether.MICRO_VERSION} "
      f"from {', '.join(sorted(m[len(destdir):] for m in used))} in the DESTDIR")
