#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The public ABI and GIR of a release only grow.

    abi-check.py abi       --library SO --header H... [common options]
    abi-check.py abi-probe --library SO --header H... --probe-map MAP [...]
    abi-check.py gir       --gir GIR [common options]
    abi-check.py gir-probe [common options]

Common options: --source-root DIR (a git clone with history), --commit C
and --version V (the release to compare against), --cache DIR (where its
build is kept), --suppressions FILE (libabigail's), --with-gir (build
its GIR too).

The baseline is release V, built from commit C of the source root's
history with its own headers (`git archive`, `meson setup`, only the
library and the GIR compiled, `meson install --tags devel` for its
public headers) into --cache, once: later runs reuse it. A clone without
that commit fails with what to do about it.

abi: libabigail's abidiff compares the baseline library with --library,
each with its own public headers (--header: the current ones, copied to
a directory of their own as they are installed), so only public types
count. Any removed or changed public symbol, and any change to the
layout of a public type, fails; added symbols and enumerators appended
to an enum pass.

abi-probe: the same comparison against a library that hides one public
symbol of the baseline (the one the linker version script --probe-map
makes local) must fail, naming that symbol: the check can fail.

gir: every function, method and constructor (by C identifier), property,
signal, type, enumeration member and constant of the baseline's
Tether-1.0.gir is still in --gir, and still introspectable; no property
stopped being writable.

gir-probe: the comparison finds each kind of removal in a copy of the
baseline GIR with one of each taken out, and nothing in the baseline
compared with itself.

Output is plain text for the test log; the exit status is the verdict.
"""

import argparse
import fcntl
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

# abidiff's exit status is a bit field (abidiff(1), "Return values").
ABIDIFF_ERROR = 1
ABIDIFF_USAGE_ERROR = 2
ABIDIFF_ABI_CHANGE = 4
ABIDIFF_ABI_INCOMPATIBLE_CHANGE = 8

# Bump when the way the baseline is built changes, so caches are redone.
RECIPE = 1


class Failure(Exception):
    pass


def log(*lines):
    for line in lines:
        print(line, flush=True)


# -- the baseline --------------------------------------------------------

def clean_env():
    """The environment for building the baseline: this test's own (run by
    meson test) without what would point the build at the current tree."""
    env = dict(os.environ)
    for key in list(env):
        if (key.startswith(("MESON", "G_", "GI_", "ASAN_", "UBSAN_", "LSAN_",
                            "MALLOC_"))
                or key in ("LD_LIBRARY_PATH", "PYTHONPATH", "DESTDIR")):
            del env[key]
    return env


def run_logged(command, logfile, **kwargs):
    logfile.write("$ " + " ".join(str(c) for c in command) + "\n")
    logfile.flush()
    result = subprocess.run([str(c) for c in command], stdout=logfile,
                            stderr=subprocess.STDOUT, env=clean_env(),
                            **kwargs)
    if result.returncode != 0:
        raise Failure(f"`{' '.join(str(c) for c in command)}` failed "
                      f"(exit status {result.returncode})")


def find_tool(name, why):
    path = shutil.which(name)
    if path is None:
        raise Failure(f"{name} is not installed: {why} "
                      "(./run installs it)")
    return path


def build_baseline(args, cache, logfile):
    git = find_tool("git", f"the baseline is Tether {args.version} from "
                    "the history")
    root = os.path.abspath(args.source_root)
    gitc = [git, "-c", f"safe.directory={root}", "-C", root]
    found = subprocess.run(gitc + ["rev-parse", "--verify", "--quiet",
                                   args.commit + "^{commit}"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        shallow = subprocess.run(gitc + ["rev-parse", "--is-shallow-repository"],
                                 capture_output=True, text=True).stdout.strip()
        raise Failure(
            f"Tether {args.version} (commit {args.commit}) is not in the "
            f"history of {root}"
            + (" (a shallow clone)" if shallow == "true" else "")
            + ". The ABI and GIR checks build it from there: clone with "
            "the full history (no --depth), or `git fetch --unshallow`.")
    commit = found.stdout.strip()

    src, build, inst = cache / "src", cache / "build", cache / "install"
    for d in (src, build, inst):
        shutil.rmtree(d, ignore_errors=True)
    src.mkdir(parents=True)
    archive = subprocess.run(gitc + ["archive", "--format=tar", commit],
                             capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(src)

    meson = os.environ.get("MESON") or find_tool("meson", "it builds the "
                                                 "baseline")
    run_logged([meson, "setup", build, src, "--prefix=/usr", "--libdir=lib",
                "-Dbuildtype=debugoptimized", "-Dwerror=false",
                "-Dtests=false", "-Ddocumentation=disabled", "-Dvapi=disabled",
                "-Dintrospection=" + ("enabled" if args.with_gir else
                                      "disabled")], logfile)
    targets = ["tether-1"] + (["Tether-1.0.gir"] if args.with_gir else [])
    run_logged([meson, "compile", "-C", build] + targets, logfile)
    run_logged([meson, "install", "-C", build, "--no-rebuild", "--quiet",
                "--tags", "devel", "--destdir", inst], logfile)

    libraries = [p for p in (build / "lib").glob("libtether-1.so.*")
                 if p.is_file() and not p.is_symlink()]
    headers = inst / "usr" / "include" / "tether-1"
    gir = inst / "usr" / "share" / "gir-1.0" / "Tether-1.0.gir"
    if len(libraries) != 1 or not (headers / "tether.h").is_file():
        raise Failure(f"the baseline build in {build} has no library or no "
                      "installed tether.h")
    if args.with_gir and not gir.is_file():
        raise Failure(f"the baseline build installed no {gir.name}")
    return {"commit": commit, "library": str(libraries[0]),
            "headers": str(headers), "gir": str(gir) if args.with_gir else None}


def baseline(args):
    """Tether VERSION's library, headers and GIR, built once per cache."""
    cache = Path(args.cache).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    key = {"recipe": RECIPE, "commit": args.commit, "gir": args.with_gir}
    stamp = cache / "stamp.json"
    # The ABI and GIR tests run side by side: one builds, the other waits.
    with open(cache / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            saved = json.loads(stamp.read_text())
            if saved["key"] == key and Path(saved["library"]).is_file():
                log(f"# Tether {args.version} ({saved['commit'][:12]}): "
                    f"built before, in {cache}")
                return saved
        except (OSError, ValueError, KeyError):
            pass
        stamp.unlink(missing_ok=True)
        log(f"# building Tether {args.version} ({args.commit}) in {cache}")
        with open(cache / "build.log", "w") as logfile:
            try:
                result = build_baseline(args, cache, logfile)
            except Failure:
                logfile.flush()
                tail = (cache / "build.log").read_text().splitlines()[-30:]
                log(*("# " + line for line in tail))
                raise
        result["key"] = key
        stamp.write_text(json.dumps(result, indent=2) + "\n")
        return result


# -- abidiff --------------------------------------------------------------

def current_headers(args, tmp):
    """The current public headers in a directory of their own, as they are
    installed (flat), so abidiff can tell public types from private."""
    headers = Path(tmp) / "tether-1"
    headers.mkdir()
    for header in args.header:
        shutil.copy(header, headers / Path(header).name)
    if not (headers / "tether.h").is_file():
        raise Failure("tether.h is not among the --header files")
    return headers


def abidiff(base, library, headers, suppressions, extra):
    abidiff_bin = find_tool("abidiff", "Debian's abigail-tools compares "
                            "the library with the last release")
    command = [abidiff_bin, "--fail-no-debug-info",
               "--suppressions", suppressions,
               "--headers-dir1", base["headers"],
               "--headers-dir2", str(headers)] + extra + [
               base["library"], str(library)]
    result = subprocess.run(command, capture_output=True, text=True)
    log("$ " + " ".join(command))
    return result.returncode, (result.stdout + result.stderr).strip()


def explain(status):
    if status & (ABIDIFF_ERROR | ABIDIFF_USAGE_ERROR):
        return "abidiff could not compare the libraries"
    if status & ABIDIFF_ABI_INCOMPATIBLE_CHANGE:
        return "incompatible ABI change (a public symbol removed or changed)"
    if status & ABIDIFF_ABI_CHANGE:
        return "ABI change (a public symbol or type changed)"
    return "no ABI change"


def check_abi(args):
    base = baseline(args)
    with tempfile.TemporaryDirectory() as tmp:
        compare_abi(args, base, current_headers(args, tmp))


def compare_abi(args, base, headers):
    # Additions are fine: the verdict leaves them out. The report of
    # everything, additions included, follows for the log.
    status, report = abidiff(base, args.library, headers, args.suppressions,
                             ["--no-added-syms"])
    log(report or "(no difference)")
    if status != 0:
        raise Failure(f"abidiff exit status {status}: {explain(status)} "
                      f"against Tether {args.version}. Public symbols and "
                      "the layout of public types are frozen once released; "
                      "see CONTRIBUTING.md.")
    _, everything = abidiff(base, args.library, headers, args.suppressions, [])
    log("# everything, additions included:", everything or "(no difference)")
    log(f"# no public symbol or type of Tether {args.version} removed or "
        "changed")


def probe_symbol(path):
    """The one symbol the probe's linker version script makes local."""
    text = Path(path).read_text()
    names = re.findall(r"local:\s*([A-Za-z_][A-Za-z0-9_]*)\s*;", text)
    if len(names) != 1:
        raise Failure(f"{path} must make exactly one symbol local")
    return names[0]


def check_abi_probe(args):
    symbol = probe_symbol(args.probe_map)
    base = baseline(args)
    with tempfile.TemporaryDirectory() as tmp:
        status, report = abidiff(base, args.library, current_headers(args, tmp),
                                 args.suppressions, ["--no-added-syms"])
    log(report)
    if not status & ABIDIFF_ABI_INCOMPATIBLE_CHANGE:
        raise Failure(f"abidiff exit status {status} ({explain(status)}) "
                      f"for a library without {symbol}: the ABI check would "
                      "let a removed symbol through")
    # abidiff lists a removed ("deleted") function as
    #   [D] 'function GQuark tether_error_quark()'    {tether_error_quark}
    if not re.search(r"^\s*\[D\] .*\{" + re.escape(symbol) + r"\}\s*$",
                     report, re.M):
        raise Failure(f"abidiff failed, but its report does not name {symbol} "
                      "as removed")
    log(f"# abidiff exit status {status}: {explain(status)}, naming "
        f"{symbol}: the check fails on a removed symbol")


# -- the GIR --------------------------------------------------------------

CORE = "{http://www.gtk.org/introspection/core/1.0}"
C = "{http://www.gtk.org/introspection/c/1.0}"
GLIB = "{http://www.gtk.org/introspection/glib/1.0}"
TYPES = ("class", "interface", "record", "union", "enumeration", "bitfield",
         "callback", "alias")
CALLABLES = ("function", "method", "constructor")


def introspectable(element):
    return element.get("introspectable", "1") != "0"


def inventory(path):
    """What a binding can reach in a GIR: name → introspectable, and the
    writable properties."""
    namespace = ET.parse(path).getroot().find(CORE + "namespace")
    if namespace is None:
        raise Failure(f"{path}: no <namespace>")
    items, writable = {}, set()

    def add(key, element, parent_ok=True):
        items[key] = parent_ok and introspectable(element)

    for tag in TYPES:
        for element in namespace.findall(CORE + tag):
            add(f"{tag} {element.get('name')}", element)
    for element in namespace.findall(GLIB + "boxed"):
        add(f"boxed {element.get(GLIB + 'name')}", element)
    for element in namespace.findall(CORE + "constant"):
        add(f"constant {element.get('name')}", element)
    # By C identifier, and where it is: the scanner also lists a
    # function under the type its name starts with (tether_error_quark is
    # Tether.error_quark and Tether.Error.quark), and bindings reach each.
    for tag in CALLABLES:
        for element in namespace.findall(CORE + tag):
            add(f"{tag} {element.get(C + 'identifier')}", element)
        for owner in namespace:
            for element in owner.findall(CORE + tag):
                add(f"{tag} {element.get(C + 'identifier')} "
                    f"(in {owner.get('name')})", element)
    for tag in ("enumeration", "bitfield"):
        for owner in namespace.findall(CORE + tag):
            for member in owner.findall(CORE + "member"):
                add(f"member {owner.get('name')}.{member.get(C + 'identifier')}",
                    member)
    for tag in ("class", "interface"):
        for owner in namespace.findall(CORE + tag):
            name = owner.get("name")
            for prop in owner.findall(CORE + "property"):
                key = f"property {name}:{prop.get('name')}"
                add(key, prop)
                if prop.get("writable") == "1":
                    writable.add(key)
            for signal in owner.findall(GLIB + "signal"):
                add(f"signal {name}::{signal.get('name')}", signal)
    return items, writable


def compare_girs(old_path, new_path):
    """Everything of OLD that NEW lost, as sorted lines."""
    old, old_writable = inventory(old_path)
    new, new_writable = inventory(new_path)
    problems = []
    for key, was_introspectable in sorted(old.items()):
        if key not in new:
            problems.append(f"removed: {key}")
        elif was_introspectable and not new[key]:
            problems.append(f"no longer introspectable: {key}")
    for key in sorted(old_writable - new_writable):
        if key in new:
            problems.append(f"no longer writable: {key}")
    return problems


def check_gir(args):
    base = baseline(args)
    if not base["gir"]:
        raise Failure("the baseline was built without its GIR (--with-gir)")
    problems = compare_girs(base["gir"], args.gir)
    counts = inventory(base["gir"])[0]
    log(f"# {len(counts)} items of Tether {args.version}'s GIR checked "
        f"against {args.gir}")
    if problems:
        log(*problems)
        raise Failure(f"{len(problems)} items of Tether {args.version}'s "
                      "Tether-1.0.gir are gone or reduced: bindings using "
                      "them would break")
    log(f"# every function, property and signal of Tether {args.version} "
        "is still there")


def check_gir_probe(args):
    base = baseline(args)
    if not base["gir"]:
        raise Failure("the baseline was built without its GIR (--with-gir)")
    if compare_girs(base["gir"], base["gir"]):
        raise Failure("the baseline GIR differs from itself")

    tree = ET.parse(base["gir"])
    namespace = tree.getroot().find(CORE + "namespace")
    expected = []

    def take(parent_tag, child_tag, describe):
        for parent in namespace.iter(CORE + parent_tag):
            for child in parent.findall(child_tag):
                parent.remove(child)
                expected.append(describe(parent, child))
                return
        raise Failure(f"the baseline GIR has no <{child_tag}> in a "
                      f"<{parent_tag}> to take out")

    take("namespace", CORE + "function",
         lambda p, c: f"removed: function {c.get(C + 'identifier')}")
    take("class", CORE + "constructor",
         lambda p, c: f"removed: constructor {c.get(C + 'identifier')} "
                      f"(in {p.get('name')})")
    take("class", CORE + "method",
         lambda p, c: f"removed: method {c.get(C + 'identifier')} "
                      f"(in {p.get('name')})")
    take("enumeration", CORE + "function",
         lambda p, c: f"removed: function {c.get(C + 'identifier')} "
                      f"(in {p.get('name')})")
    take("class", CORE + "property",
         lambda p, c: f"removed: property {p.get('name')}:{c.get('name')}")
    take("class", GLIB + "signal",
         lambda p, c: f"removed: signal {p.get('name')}::{c.get('name')}")
    take("enumeration", CORE + "member",
         lambda p, c: f"removed: member {p.get('name')}."
                      f"{c.get(C + 'identifier')}")
    # One more method, kept but hidden from bindings, and a property made
    # read-only.
    for owner in namespace.findall(CORE + "class"):
        method = next((m for m in owner.findall(CORE + "method")
                       if introspectable(m)), None)
        if method is not None:
            method.set("introspectable", "0")
            expected.append("no longer introspectable: method "
                            f"{method.get(C + 'identifier')} "
                            f"(in {owner.get('name')})")
            break
    for owner in namespace.iter(CORE + "class"):
        prop = next((p for p in owner.findall(CORE + "property")
                     if p.get("writable") == "1"), None)
        if prop is not None:
            prop.set("writable", "0")
            expected.append(f"no longer writable: property "
                            f"{owner.get('name')}:{prop.get('name')}")
            break

    with tempfile.TemporaryDirectory() as tmp:
        doctored = Path(tmp) / "Tether-1.0.gir"
        tree.write(doctored, xml_declaration=True, encoding="utf-8")
        found = compare_girs(base["gir"], doctored)
    log(*found)
    if sorted(found) != sorted(expected):
        raise Failure("the GIR comparison found "
                      f"{found} instead of {sorted(expected)}")
    log(f"# all {len(expected)} doctored changes found, and nothing else")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command",
                        choices=["abi", "abi-probe", "gir", "gir-probe"])
    parser.add_argument("--source-root", required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--suppressions")
    parser.add_argument("--with-gir", action="store_true")
    parser.add_argument("--library")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--probe-map")
    parser.add_argument("--gir")
    args = parser.parse_args(argv)
    checks = {"abi": check_abi, "abi-probe": check_abi_probe,
              "gir": check_gir, "gir-probe": check_gir_probe}
    needs = {"abi": ("library", "suppressions"),
             "abi-probe": ("library", "suppressions", "probe_map"),
             "gir": ("gir",), "gir-probe": ()}
    for option in needs[args.command]:
        if getattr(args, option) is None:
            parser.error(f"{args.command} needs --{option.replace('_', '-')}")
    try:
        checks[args.command](args)
    except Failure as failure:
        log(f"FAIL: {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
