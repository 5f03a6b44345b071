#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Check that a page's code blocks are byte-identical to tested files.

    check-doc-snippets.py SOURCE_ROOT PAGE [REQUIRED_FILE...]

Every fenced code block of PAGE (a path under SOURCE_ROOT) that holds a
program is preceded by a marker line naming the file it must equal:

    <!-- example: examples/c/getting-started.c -->
    ```c
    ...the whole file...
    ```

The block's text, each line ending in a newline, must be the file's bytes
exactly; the file is compiled or run by the examples tests, so the page
cannot drift from tested code.

A marker may name a region of the file instead, `FILE#NAME`. The region
is the lines between two comment lines in the file,

    # snippet: NAME            // snippet: NAME       /* snippet: NAME */
    ...                        ...                    ...
    # end snippet: NAME        // end snippet: NAME   /* end snippet: NAME */

without any marker lines nested in it, and with the indentation its
lines share removed; the block must equal that text. Blocks in a shell language (sh, console,
shell, bash) or without a language are instructions or output and are not
compared; any other block without a marker is an error. Each
REQUIRED_FILE must be the subject of some block, so a language cannot
silently drop out of the page.
"""

import os
import re
import sys
import textwrap

MARKER = re.compile(r"^<!--\s*example:\s*(\S+)\s*-->\s*$")
REGION = re.compile(r"^\s*(?:#|//|/\*)\s*(end )?snippet:\s*([\w-]+)\s*(?:\*/)?\s*$")
FENCE = re.compile(r"^(```+|~~~+)\s*([^\s`]*)")
UNCHECKED = {"", "sh", "console", "shell", "bash", "text"}


def blocks(lines):
    """(line number, language, marker or None, text) for each fenced block."""
    marker = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        if m:
            fence, lang, start = m.group(1), m.group(2).lower(), i
            body = []
            i += 1
            while i < len(lines) and not lines[i].rstrip("\n").startswith(fence):
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise SystemExit(f"line {start + 1}: code block never closed")
            yield start + 1, lang, marker, "".join(body)
            marker = None
        elif line.strip():
            mm = MARKER.match(line)
            marker = mm.group(1) if mm else None
        i += 1


def region(text, name):
    """The text of region `name` of a file's text (see the module doc)."""
    lines, inside, found, closed = [], False, False, False
    for line in text.splitlines(keepends=True):
        m = REGION.match(line)
        if m:
            if m.group(2) == name:
                if m.group(1) is None:
                    if found:
                        raise ValueError(f"region {name} opens twice")
                    inside = found = True
                else:
                    if not inside:
                        raise ValueError(f"region {name} ends before it starts")
                    inside, closed = False, True
            continue
        if inside:
            lines.append(line)
    if not found:
        raise ValueError(f"no region {name}")
    if not closed:
        raise ValueError(f"region {name} never ends")
    return textwrap.dedent("".join(lines))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    root, page = argv[0], argv[1]
    required = set(argv[2:])
    with open(os.path.join(root, page), encoding="utf-8") as f:
        lines = f.readlines()

    failures = []
    checked = 0
    seen = set()
    for lineno, lang, marker, text in blocks(lines):
        where = f"{page}:{lineno}"
        if marker is None:
            if lang not in UNCHECKED:
                failures.append(f"{where}: a ```{lang} block without an "
                                "'<!-- example: FILE -->' line before it")
            continue
        seen.add(marker)
        filename, _, name = marker.partition("#")
        path = os.path.join(root, filename)
        try:
            with open(path, "rb") as f:
                want = f.read()
        except OSError as e:
            failures.append(f"{where}: {marker}: {e.strerror}")
            continue
        if name:
            try:
                want = region(want.decode("utf-8"), name).encode("utf-8")
            except ValueError as e:
                failures.append(f"{where}: {filename}: {e}")
                continue
        got = text.encode("utf-8")
        if got != want:
            got_lines = got.decode().splitlines(keepends=True)
            want_lines = want.decode(errors="replace").splitlines(keepends=True)
            first = next((n for n, (a, b) in enumerate(zip(got_lines, want_lines)) if a != b),
                         min(len(got_lines), len(want_lines)))
            failures.append(f"{where}: differs from {marker} from its line {first + 1} on "
                            f"(page: {got_lines[first:first + 1]!r}, "
                            f"file: {want_lines[first:first + 1]!r})")
            continue
        checked += 1
        print(f"ok {checked} - {where} is {marker}")

    for path in sorted(required - seen):
        failures.append(f"{page}: no block shows {path}")

    for failure in failures:
        print(f"FAIL {failure}")
    print(f"{checked} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
