#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Follow docs/getting-started.md to the letter, in `meson devenv`.

    follow-getting-started.py SOURCE_ROOT BUILD_ROOT MESON

What a newcomer does with the page, from the build tree, in every
language: open `meson devenv -C _build`, start the service with the
page's `tether serve` line, try the page's `tether call` line, then for
each of C, Python, GJS and Vala save the program shown (under its own
name, in a fresh directory of its own, outside the source and build
trees) and run the shell block that follows it, as written.

Two things differ from a reader's session, and nothing else:
- the build is this build tree, not a fresh one: a second full build
  is too slow for the test suite, and the devenv is made from this
  tree's meson.build files exactly as a fresh one's would be. The page
  must still say to build with `./run build` and to use
  `meson devenv -C _build`, which is checked;
- /tmp/tether-demo.sock becomes a socket in a private directory, so
  that tests running at once, or a reader's own service, do not meet.

Each command gets a bounded time; prints TAP.
"""

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile

MARKER = re.compile(r"^<!--\s*example:\s*(\S+)\s*-->\s*$")
FENCE = re.compile(r"^(```+)\s*([^\s`]*)")
HEADING = re.compile(r"^(#{2,3}) (.*)$")
SHELL = {"sh", "shell", "bash", "console"}
LANGUAGES = ["C", "Python", "GJS", "Vala"]
PAGE_SOCKET = "/tmp/tether-demo.sock"
STEP_TIMEOUT = 120

step = 0


def ok(what):
    global step
    step += 1
    print(f"ok {step} - {what}", flush=True)


def bail(what):
    print(f"not ok {step + 1} - {what}", flush=True)
    print(f"1..{step + 1}")
    sys.exit(1)


def parse(path):
    """[(section, subsection, language, marker, text)] for each fenced block."""
    blocks, section, subsection, marker = [], "", "", None
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        heading = HEADING.match(line)
        if fence:
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith(fence.group(1)):
                body.append(lines[i])
                i += 1
            blocks.append((section, subsection, fence.group(2).lower(), marker, "".join(body)))
            marker = None
        elif heading:
            if heading.group(1) == "##":
                section, subsection = heading.group(2), ""
            else:
                subsection = heading.group(2)
        elif line.strip():
            m = MARKER.match(line)
            marker = m.group(1) if m else None
        i += 1
    return blocks


def main(argv):
    source_root, build_root, meson = argv
    blocks = parse(os.path.join(source_root, "docs", "getting-started.md"))
    shell_text = "".join(text for _, _, lang, _, text in blocks if lang in SHELL)

    for line in ("./run build", "meson devenv -C _build"):
        if not re.search(r"^" + re.escape(line) + r"(\s|$)", shell_text, re.M):
            bail(f"the page no longer says `{line}`")
    ok("the page builds with ./run build and works in meson devenv -C _build")

    work = tempfile.mkdtemp(prefix="tether-gs-")
    socket = os.path.join(work, "demo.sock")

    def devenv(text, cwd):
        """argv that runs shell text `text` in the devenv, from `cwd`."""
        text = text.replace(PAGE_SOCKET, socket)
        return [meson, "devenv", "-C", build_root, "-w", cwd, "sh", "-ec", text]

    service = None
    try:
        start = [b for b in blocks if b[0] == "Start a service" and b[2] in SHELL]
        serve = [t for b in start for t in b[4].splitlines() if t.startswith("tether serve ")]
        calls = [t for b in start for t in b[4].splitlines() if t.startswith("tether call ")]
        if len(serve) != 1 or len(calls) != 1:
            bail("'Start a service' has one `tether serve` line and one `tether call` line")

        # Its own process group: meson devenv runs the command as a child,
        # so the group is what SIGTERM must reach.
        service = subprocess.Popen(devenv("exec " + serve[0], work), stdout=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, start_new_session=True, text=True)
        ready, _, _ = select.select([service.stdout], [], [], 30)
        first = service.stdout.readline() if ready else ""
        if not first.startswith("listening on "):
            bail(f"`{serve[0]}` printed {first!r}, not 'listening on URI'")
        ok(f"`{serve[0]}`: {first.strip()}")

        out = subprocess.run(devenv(calls[0], work), capture_output=True, text=True,
                             timeout=STEP_TIMEOUT)
        if out.returncode != 0 or '"done"' not in out.stdout:
            bail(f"`{calls[0]}` failed: {out.stdout}{out.stderr}")
        ok(f"`{calls[0]}`")

        for language in LANGUAGES:
            mine = [b for b in blocks if b[0] == "The program" and b[1] == language]
            programs = [b for b in mine if b[3] is not None]
            commands = [b for b in mine if b[2] in SHELL]
            if len(programs) != 1 or not commands:
                bail(f"{language}: one program and its commands under 'The program'")
            example = programs[0][3]
            here = os.path.join(work, language.lower())
            os.mkdir(here)
            shutil.copy(os.path.join(source_root, example),
                        os.path.join(here, os.path.basename(example)))
            for _, _, _, _, text in commands:
                out = subprocess.run(devenv(text, here), capture_output=True, text=True,
                                     timeout=STEP_TIMEOUT)
                if out.returncode != 0:
                    bail(f"{language}: `{text.strip()}` failed "
                         f"({out.returncode}):\n{out.stdout}{out.stderr}")
            if "progress: 3 of 3" not in out.stdout or "result:" not in out.stdout:
                bail(f"{language}: the program printed {out.stdout!r}")
            ok(f"{language}: {os.path.basename(example)}, as the page says: "
               + out.stdout.strip().splitlines()[-1])
    finally:
        if service is not None:
            if service.poll() is None:
                os.killpg(service.pid, signal.SIGTERM)
            try:
                service.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(service.pid, signal.SIGKILL)
                service.wait()
        shutil.rmtree(work, ignore_errors=True)

    print(f"1..{step}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
