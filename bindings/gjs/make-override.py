#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Write the GJS override for `gi://Tether` from the ES module tether.js.

    make-override.py tether.js OUTPUT

GJS applies an override from `overrides/NAMESPACE.js` on its search path
(GJS_PATH, then DATADIR/gjs-1.0 for each XDG data dir) whenever the
namespace is imported, `import Tether from 'gi://Tether?version=1.0'`
included: a legacy script whose `_init()` runs with `this` set to the
namespace. tether.js stays the one source: this wraps its body in
`_init()`, takes GLib from `imports.gi`, and drops its two imports and
its `export` keywords. Anything else module-only in it (another import,
an `export {…}` list, `import.meta`) fails the build here, rather than
making an override that fails at run time.
"""

import re
import sys

IMPORTS = {
    "import GLib from 'gi://GLib';": "const GLib = imports.gi.GLib;",
    "import Tether from 'gi://Tether?version=1.0';": "const Tether = this;",
}


def main(source, output):
    with open(source, encoding="utf-8") as f:
        lines = f.read().splitlines()
    body, seen = [], set()
    for number, line in enumerate(lines, 1):
        if number == 1 and line.startswith("// SPDX-License-Identifier:"):
            continue
        where = f"{source}:{number}"
        if line in IMPORTS:
            seen.add(line)
            body.append(IMPORTS[line])
            continue
        if line == "export default Tether;":
            continue
        if re.match(r"\s*import\b(?!\()", line) or "import.meta" in line:
            sys.exit(f"{where}: an import the override cannot make: {line.strip()}")
        m = re.match(r"export (function|const|let|class|async function) ", line)
        if m:
            line = line[len("export "):]
        elif re.match(r"\s*export\b", line):
            sys.exit(f"{where}: an export the override cannot make: {line.strip()}")
        # Not indented: a template literal may span lines.
        body.append(line)
    missing = set(IMPORTS) - seen
    if missing:
        sys.exit(f"{source}: expected the imports {sorted(missing)}")
    head = [
        "// SPDX-License-Identifier: LGPL-2.1-or-later",
        "//",
        "// Generated from bindings/gjs/tether.js by make-override.py: edit that.",
        "// GJS runs _init() with `this` set to the Tether namespace whenever",
        "// `gi://Tether` (or imports.gi.Tether) is imported.",
        "",
        "/* exported _init */",
        "function _init() {",
    ]
    with open(output, "w", encoding="utf-8") as f:
        f.write("\n".join(head + body + ["}", ""]))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
