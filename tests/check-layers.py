#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The layers of lib/ (docs/architecture.md), checked: which folder may
include which private headers, which folder alone may use jansson,
libsoup and GNU SASL, and that the public objects do not include each
other's private headers in a circle.

    check-layers.py LIBDIR

Prints TAP. A file outside the rules fails with the include (or the first
use of the library) and the rule it breaks. DEBT lists what is known to be
outside them still, each with the change that removes it; an entry that no
longer applies fails too, so the list only shrinks.
"""

import re
import sys
from pathlib import Path

# Folder → the folders whose private headers it may include (its own and
# the installed public headers always). The top (lib/ itself) holds the
# public objects and may include anything; base/ (the scheduler, the log
# limiter, the pools) is for everyone and includes nothing else.
MAY_INCLUDE = {
    "base": set(),
    "wire": {"base"},
    "security": {"base", "wire"},
    "transport": {"base"},
    "core": {"base", "wire", "security", "transport"},
}

# Single private headers a lower folder may include from elsewhere: the
# error mapping (the companion of the public error header); the identity
# the transport and the handshake make, the invocation the engine makes
# (both public objects at the top); the protocol's constants.
SHARED = {
    "tether-error-private.h": {"base", "wire", "security", "transport", "core"},
    "tether-identity-private.h": {"core", "security", "transport"},
    "tether-invocation-private.h": {"core"},
    "tether-protocol-private.h": {"transport"},
}

# Which folder owns each third-party library; nobody else uses it.
LIBRARIES = {
    "jansson": ("wire", re.compile(r"<jansson\.h>|\bjson_[a-z_]+\b")),
    "libsoup": ("transport", re.compile(r"<libsoup/|\bsoup_[a-z_]+\b|\bSoup[A-Z]\w*")),
    "gsasl": ("security", re.compile(r"<gsasl\.h>|\bgsasl_[a-z_]+\b|\bGSASL_[A-Z_]+\b")),
}

# Headers for their own folder only: the codecs' (jansson and the frame
# layout stay inside wire/; everyone else speaks the message model,
# tether-message-private.h) and the engine's insides (the rest of the
# library has tether-connection-private.h).
OWN_FOLDER_ONLY = {
    "tether-json-private.h": "wire",
    "tether-binary-private.h": "wire",
    "tether-engine-private.h": "core",
}

# Known to break the rules, each with the change that removes it (an
# entry that no longer applies fails). Empty since the message model
# landed; keep it that way.
DEBT = {
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def folder_of(path, libdir):
    rel = path.relative_to(libdir)
    return rel.parts[0] if len(rel.parts) > 1 else "top"


def find_circle(files, libdir):
    """The public objects (lib/tether-X.c) as a graph: X -> Y when X's
    source includes Y's private header. Returns a circle, or None."""
    top = {p.stem: p for p in files if p.suffix == ".c" and p.parent == libdir}

    def owners(header):
        # tether-X-private.h belongs to tether-X.c, or to the objects
        # whose names begin with tether-X (a header shared by a feature).
        base = header[: -len("-private.h")]
        if base in top:
            return [base]
        return [stem for stem in top if stem.startswith(base + "-")]

    edges = {}
    for stem, path in top.items():
        code = COMMENT.sub("", path.read_text())
        edges[stem] = sorted({owner for name in INCLUDE.findall(code)
                              if name.endswith("-private.h")
                              for owner in owners(name) if owner != stem})
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(top):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def main():
    libdir = Path(sys.argv[1]).resolve()
    files = sorted(p for p in libdir.rglob("*") if p.suffix in (".c", ".h"))
    where = {p.name: folder_of(p, libdir) for p in files}
    results = []
    debt_seen = set()

    for path in files:
        rel = str(path.relative_to(libdir))
        folder = folder_of(path, libdir)
        text = path.read_text()
        code = COMMENT.sub("", text)
        problems = []

        for name in INCLUDE.findall(code):
            only = OWN_FOLDER_ONLY.get(name)
            if only is not None and folder != only:
                problems.append(f'includes "{name}", which only {only}/ may')

        if folder != "top":
            for name in INCLUDE.findall(code):
                owner = where.get(name)
                # Installed headers (public or generated) are for everyone.
                if owner is None or not name.endswith("-private.h"):
                    continue
                if owner == folder:
                    continue
                if owner in MAY_INCLUDE.get(folder, set()):
                    continue
                if folder in SHARED.get(name, set()):
                    continue
                problems.append(f'includes "{name}" ({owner}/), '
                                f"which {folder}/ may not")

        for lib, (owner, pattern) in LIBRARIES.items():
            if folder == owner:
                continue
            m = pattern.search(code)
            if m is None:
                continue
            if (rel, lib) in DEBT:
                debt_seen.add((rel, lib))
                continue
            line = code.count("\n", 0, m.start()) + 1
            problems.append(f"uses {lib} ({m.group(0)}, line {line}), "
                            f"which only {owner}/ may")

        results.append((rel, problems))

    circle = find_circle(files, libdir)

    n = len(results) + 2
    print(f"1..{n}")
    failed = False
    for i, (rel, problems) in enumerate(results, 1):
        if problems:
            failed = True
            print(f"not ok {i} - lib/{rel}")
            for p in problems:
                print(f"# {p}")
        else:
            print(f"ok {i} - lib/{rel}")

    if circle:
        failed = True
        print(f"not ok {n - 1} - the public objects include each other in a circle")
        print("# " + " -> ".join(circle))
    else:
        print(f"ok {n - 1} - no circle among the public objects")

    stale = sorted(set(DEBT) - debt_seen)
    if stale:
        failed = True
        print(f"not ok {n} - known exceptions still apply")
        for rel, lib in stale:
            print(f"# lib/{rel} no longer uses {lib}: remove it from DEBT")
    else:
        print(f"ok {n} - known exceptions still apply ({len(DEBT)} left)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
