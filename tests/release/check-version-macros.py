#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Which uses of Tether's version macros warn, compiled for real.

    check-version-macros.py SRC_LIB BUILD_LIB PKG_CONFIG -- CC [ARGS...]

Each case is a small program that sets TETHER_VERSION_MIN_REQUIRED and
TETHER_VERSION_MAX_ALLOWED (or not), includes <tether.h> from the source
and build trees, declares functions, types and enumerators with the
per-version macros and uses them. It is compiled with CC (the build's own
compiler) and must compile silently, or warn with the expected message,
or stop with the expected #error, as GLib's version macros do:

- a symbol added in 0.2 warns when MAX_ALLOWED is 0.1, and not otherwise;
- a symbol deprecated in 0.2 warns only when MIN_REQUIRED is 0.2 or
  later (the default);
- TETHER_DISABLE_DEPRECATION_WARNINGS silences both;
- MAX_ALLOWED below MIN_REQUIRED, or MIN_REQUIRED below 0.1, is an error.

Output is TAP, one line per case.
"""

import re
import shlex
import subprocess
import sys

# Declarations every case can use: one of each kind per version.
DECLS = """
TETHER_AVAILABLE_IN_0_1 int new_in_0_1 (void);
TETHER_AVAILABLE_IN_0_2 int new_in_0_2 (void);
TETHER_DEPRECATED_IN_0_1 int old_in_0_1 (void);
TETHER_DEPRECATED_IN_0_2 int old_in_0_2 (void);
TETHER_DEPRECATED_IN_0_2_FOR (new_in_0_2) int old_in_0_2_for (void);
typedef int NewType TETHER_AVAILABLE_TYPE_IN_0_2;
typedef int OldType TETHER_DEPRECATED_TYPE_IN_0_2;
typedef enum
{
  KIND_ONE,
  KIND_NEW TETHER_AVAILABLE_ENUMERATOR_IN_0_2,
  KIND_OLD TETHER_DEPRECATED_ENUMERATOR_IN_0_2_FOR (KIND_ONE),
} Kind;
"""

UNAVAILABLE = r"Not available before 0\.2"
DEPRECATED = r"is deprecated"

# (name, preamble, body, expected): expected is None (no diagnostic at
# all), ("warning", regex) or ("error", regex).
CASES = [
    ("defaults: 0.2 API is available",
     "", "return new_in_0_2 () + new_in_0_1 ();", None),
    ("defaults: the real 0.1 API compiles without a word",
     "", "return (int) tether_error_quark () + TETHER_ACCESS_ANY;", None),
    ("defaults: deprecated in 0.2 warns (MIN_REQUIRED is 0.2)",
     "", "return old_in_0_2 ();", ("warning", DEPRECATED)),
    ("defaults: deprecated in 0.2 in favour of another names it",
     "", "return old_in_0_2_for ();",
     ("warning", r"Use 'new_in_0_2' instead")),
    ("defaults: deprecated in 0.1 warns",
     "", "return old_in_0_1 ();", ("warning", DEPRECATED)),
    ("MAX_ALLOWED 0.1: 0.2 API warns",
     "#define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_0_1\n"
     "#define TETHER_VERSION_MAX_ALLOWED TETHER_VERSION_0_1\n",
     "return new_in_0_2 ();", ("warning", UNAVAILABLE)),
    ("MAX_ALLOWED 0.1: 0.1 API and the real headers are silent",
     "#define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_0_1\n"
     "#define TETHER_VERSION_MAX_ALLOWED TETHER_VERSION_0_1\n",
     "return new_in_0_1 () + (int) tether_error_quark ();", None),
    ("MAX_ALLOWED 0.1: a 0.2 type warns",
     "#define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_0_1\n"
     "#define TETHER_VERSION_MAX_ALLOWED TETHER_VERSION_0_1\n",
     "NewType x = 1; return x;", ("warning", UNAVAILABLE)),
    ("MAX_ALLOWED 0.1: a 0.2 enumerator warns",
     "#define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_0_1\n"
     "#define TETHER_VERSION_MAX_ALLOWED TETHER_VERSION_0_1\n",
     "return KIND_NEW;", ("warning", UNAVAILABLE)),
    ("MIN_REQUIRED 0.1: deprecated in 0.2 is silent",
     "#define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_0_1\n",
     "OldType x = KIND_OLD; return old_in_0_2 () + old_in_0_2_for () + x;",
     None),
    ("MIN_REQUIRED 0.1: deprecated in 0.1 still warns",
     "#define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_0_1\n",
     "return old_in_0_1 ();", ("warning", DEPRECATED)),
    ("MIN_REQUIRED 0.1, MAX_ALLOWED 0.2: 0.2 API is available",
     "#define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_0_1\n"
     "#define TETHER_VERSION_MAX_ALLOWED TETHER_VERSION_0_2\n",
     "return new_in_0_2 ();", None),
    ("MIN_REQUIRED 0.2: a deprecated type and enumerator warn",
     "#define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_0_2\n",
     "OldType x = KIND_OLD; return x;", ("warning", DEPRECATED)),
    ("TETHER_DISABLE_DEPRECATION_WARNINGS silences both kinds",
     "#define TETHER_DISABLE_DEPRECATION_WARNINGS\n"
     "#define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_0_1\n"
     "#define TETHER_VERSION_MAX_ALLOWED TETHER_VERSION_0_1\n",
     "return new_in_0_2 () + old_in_0_1 () + old_in_0_2 ();", None),
    ("a later MIN_REQUIRED than this header knows deprecates 0.2 too",
     "#define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_9_9\n",
     "return new_in_0_2 () + old_in_0_2 ();", ("warning", DEPRECATED)),
    ("MAX_ALLOWED below MIN_REQUIRED is an error",
     "#define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_0_2\n"
     "#define TETHER_VERSION_MAX_ALLOWED TETHER_VERSION_0_1\n",
     "return 0;",
     ("error", r"TETHER_VERSION_MAX_ALLOWED must be >= "
               r"TETHER_VERSION_MIN_REQUIRED")),
    ("MIN_REQUIRED below the first release is an error",
     # (0 itself would be "a version this header does not know".)
     "#define TETHER_VERSION_MIN_REQUIRED 1\n",
     "return 0;",
     ("error", r"TETHER_VERSION_MIN_REQUIRED must be >= TETHER_VERSION_0_1")),
]


def program(preamble, body):
    return (preamble + "#include <tether.h>\n" + DECLS +
            "int use (void);\nint\nuse (void)\n{\n  " + body + "\n}\n")


def main(argv):
    if "--" not in argv or argv.index("--") != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src_lib, build_lib, pkg_config = argv[:3]
    cc = argv[4:]
    cflags = subprocess.run([pkg_config, "--cflags", "gio-2.0", "gio-unix-2.0"],
                            check=True, capture_output=True,
                            text=True).stdout.split()
    command = cc + ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                    "-Wdeprecated-declarations", "-I" + build_lib,
                    "-I" + src_lib] + cflags + ["-x", "c", "-c", "-o",
                                                "/dev/null", "-"]
    print(f"1..{len(CASES)}")
    print("# " + shlex.join(command))
    failed = 0
    for number, (name, preamble, body, expected) in enumerate(CASES, 1):
        text = program(preamble, body)
        result = subprocess.run(command, input=text, capture_output=True,
                                text=True)
        diagnostics = result.stderr.strip()
        problem = None
        if expected is None:
            if result.returncode != 0 or diagnostics:
                problem = "expected no diagnostic"
        else:
            kind, pattern = expected
            if kind == "error" and result.returncode == 0:
                problem = "expected an error, it compiled"
            elif kind == "warning" and result.returncode != 0:
                problem = "expected a warning, it did not compile"
            elif kind == "warning" and "warning:" not in diagnostics:
                problem = "expected a warning, got none"
            elif not re.search(pattern, diagnostics):
                problem = f"expected a diagnostic matching /{pattern}/"
        if problem is None:
            print(f"ok {number} - {name}")
        else:
            failed += 1
            print(f"not ok {number} - {name}: {problem}")
            for line in (text + "\n--- compiler said:\n" +
                         (diagnostics or "(nothing)")).splitlines():
                print("# " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
