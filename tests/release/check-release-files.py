#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The files a packager reads first, checked.

    check-release-files.py SOURCE_ROOT VERSION

- COPYING is the GNU LGPL 2.1, byte for byte (the text Debian ships in
  /usr/share/common-licenses/LGPL-2.1), the license the SPDX headers name.
- NEWS opens with the entry for VERSION (meson.build's), "unreleased" or
  dated, and keeps the 0.1.0 entry; each title is underlined to its length.
- tether.doap is well-formed XML in GNOME's DOAP form: a doap:Project with
  a name, a short description, a description, the LGPL-2.1 license, C as
  the programming language, a maintainer with a name, and dated releases,
  0.1.0 among them.

Output is TAP.
"""

import hashlib
import os
import re
import sys
import xml.etree.ElementTree as ET

LGPL_2_1_SHA256 = "dc626520dcd53a22f727af3ee42c770e56c97a64fe3adb063799d8ab032fe551"
DOAP = "{http://usefulinc.com/ns/doap#}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
FOAF = "{http://xmlns.com/foaf/0.1/}"
TITLE = re.compile(r"^Tether (\d+\.\d+\.\d+) \((unreleased|\d{4}-\d\d-\d\d)\)$")


def check_copying(root, version):
    with open(os.path.join(root, "COPYING"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != LGPL_2_1_SHA256:
        return "COPYING is not the LGPL 2.1 text (sha256 " + digest + ")"
    return None


def check_news(root, version):
    with open(os.path.join(root, "NEWS"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    titles = []
    for i, line in enumerate(lines):
        m = TITLE.match(line)
        if m is None:
            continue
        if i + 1 >= len(lines) or lines[i + 1] != "=" * len(line):
            return f"NEWS:{i + 1}: '{line}' is not underlined with " \
                   f"{len(line)} '='"
        titles.append(m.group(1))
    if not titles:
        return "NEWS has no 'Tether X.Y.Z (date)' entry"
    if not lines[0].startswith("Tether ") or titles[0] != version:
        return (f"NEWS opens with {lines[0]!r}, not the entry for {version}, "
                "the version in meson.build")
    if "0.1.0" not in titles:
        return "NEWS lost the 0.1.0 entry"
    return None


def check_doap(root, version):
    try:
        project = ET.parse(os.path.join(root, "tether.doap")).getroot()
    except ET.ParseError as error:
        return f"tether.doap is not well-formed XML: {error}"
    if project.tag != DOAP + "Project":
        return f"tether.doap's root is {project.tag}, not doap:Project"
    for field in ("name", "shortdesc", "description"):
        element = project.find(DOAP + field)
        if element is None or not (element.text or "").strip():
            return f"tether.doap has no {field}"
    license = project.find(DOAP + "license")
    if license is None or "LGPL-2.1" not in license.get(RDF + "resource", ""):
        return "tether.doap does not name the LGPL-2.1"
    languages = [e.text for e in project.findall(DOAP + "programming-language")]
    if "C" not in languages:
        return "tether.doap does not say C"
    names = [e.text for e in project.findall(
        f"{DOAP}maintainer/{FOAF}Person/{FOAF}name") if (e.text or "").strip()]
    if not names:
        return "tether.doap has no maintainer with a name"
    releases = {}
    for v in project.findall(f"{DOAP}release/{DOAP}Version"):
        revision = v.findtext(DOAP + "revision")
        created = v.findtext(DOAP + "created") or ""
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", created):
            return f"tether.doap: release {revision} has no created date"
        releases[revision] = created
    if "0.1.0" not in releases:
        return "tether.doap does not list the 0.1.0 release"
    return None


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root, version = argv
    checks = [("COPYING is the LGPL 2.1", check_copying),
              (f"NEWS opens with {version}", check_news),
              ("tether.doap", check_doap)]
    print(f"1..{len(checks)}")
    failed = 0
    for number, (name, check) in enumerate(checks, 1):
        problem = check(root, version)
        if problem is None:
            print(f"ok {number} - {name}")
        else:
            failed += 1
            print(f"not ok {number} - {name}: {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
