#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs the build into a DESTDIR under the build tree, then uses only
# what was installed: checks the file list, builds a C program with
# `pkg-config --cflags --libs tether-1` and runs it against the installed
# library, runs a Python script through the installed typelib, and (when
# the vapi is built) compiles a Vala program with the installed vapi and
# .deps, and (with gjs) runs a GJS script through the installed override
# and ES module. Called by tests/install/meson.build with the install paths in the
# environment (TETHER_*); everything here is bounded by the meson timeout.
set -eu

: "${MESON:=meson}"
build=$TETHER_BUILD_ROOT
src=$TETHER_SOURCE_ROOT
destdir=$build/tests/install/destdir
work=$build/tests/install/work
P=$destdir$TETHER_PREFIX
L=$destdir$TETHER_LIBDIR
I=$destdir$TETHER_INCLUDEDIR
D=$destdir$TETHER_DATADIR
B=$destdir$TETHER_BINDIR
step=0

ok() { step=$((step + 1)); echo "ok $step - $*"; }
fail() { echo "not ok - $*"; echo "$step passed, 1 failed"; exit 1; }
have() { [ -e "$1" ] || fail "not installed: ${1#"$destdir"}"; }

rm -rf "$destdir" "$work"
mkdir -p "$work"

# `meson install` from inside `meson test`: --no-rebuild, so it does not
# re-enter ninja (meson test has built everything already).
"$MESON" install -C "$build" --no-rebuild --quiet --destdir "$destdir" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "meson install --destdir"; }
ok "meson install --destdir $destdir"

# -- what is installed, and what is not --------------------------------
have "$L/libtether-1.so.0"
have "$L/libtether-1.so"
have "$I/tether-1/tether.h"
have "$I/tether-1/tether-version.h"
have "$I/tether-1/tether-enum-types.h"
have "$L/pkgconfig/tether-1.pc"
have "$D/gir-1.0/Tether-1.0.gir"
have "$L/girepository-1.0/Tether-1.0.typelib"
have "$B/tether"
have "$D/tether-1/gjs/tether.js"
have "$D/gjs-1.0/overrides/Tether.js"
if [ "$TETHER_HAVE_VAPI" = true ]; then
  have "$D/vala/vapi/tether-1.vapi"
  have "$D/vala/vapi/tether-1.deps"
  grep -qx gio-2.0 "$D/vala/vapi/tether-1.deps" || fail "tether-1.deps does not name gio-2.0"
fi
if [ "$TETHER_HAVE_DOCS" = true ]; then
  have "$D/doc/tether-1/index.html"
fi
private=$(find "$destdir" -name '*-private.h' -o -name 'libtether-internal*' -o -name '*.a')
[ -z "$private" ] || fail "internals installed: $private"
ok "installed files (and no private headers or static archives)"

# -- pkg-config ---------------------------------------------------------
# The .pc file says prefix=$TETHER_PREFIX; a copy says the DESTDIR. (Not
# --define-variable=prefix, which would move glib's prefix too, nor
# --define-prefix, which gets multiarch libdirs wrong.) Its Requires (glib,
# gio) come from the system. Every other path in it must follow ${prefix}.
grep -q "^prefix=$TETHER_PREFIX\$" "$L/pkgconfig/tether-1.pc" ||
  fail "tether-1.pc does not say prefix=$TETHER_PREFIX"
if grep -v '^prefix=' "$L/pkgconfig/tether-1.pc" | grep -q "=$TETHER_PREFIX"; then
  fail "tether-1.pc has paths not relative to \${prefix}"
fi
mkdir -p "$work/pkgconfig"
sed "s|^prefix=.*|prefix=$P|" "$L/pkgconfig/tether-1.pc" >"$work/pkgconfig/tether-1.pc"
pc() { PKG_CONFIG_PATH="$work/pkgconfig" pkg-config "$@"; }
version=$(pc --modversion tether-1)
[ "$version" = "$TETHER_VERSION" ] || fail "pkg-config says $version, the project $TETHER_VERSION"
pc --validate tether-1 || fail "pkg-config --validate tether-1"
case " $(pc --cflags tether-1) " in
  *" -I$I/tether-1 "*) ;;
  *) fail "pkg-config --cflags does not point at $I/tether-1: $(pc --cflags tether-1)" ;;
esac
ok "pkg-config tether-1 $version"

# -- C: headers + pkg-config + library ---------------------------------
# shellcheck disable=SC2046
${CC:-cc} -Wall -Werror -o "$work/installed-c" "$src/tests/install/installed.c" \
  $(pc --cflags --libs tether-1) || fail "building a C program with pkg-config tether-1"
LD_LIBRARY_PATH=$L ldd "$work/installed-c" | grep -q "libtether-1.so.0 => $L/" ||
  fail "the C program does not resolve libtether-1 in $L"
LD_LIBRARY_PATH=$L "$work/installed-c" "$work/c.sock" || fail "the C program against the installed library"
ok "C program built with pkg-config and run against the installed library"

# -- Python: the installed typelib --------------------------------------
GI_TYPELIB_PATH=$L/girepository-1.0 LD_LIBRARY_PATH=$L \
  "$TETHER_PYTHON" "$src/tests/install/installed.py" "$destdir" "$work/py.sock" ||
  fail "Python through the installed typelib"
ok "Python through the installed typelib"

# -- GJS: the installed override and ES module ---------------------------
# GJS searches DATADIR/gjs-1.0 for each XDG data directory: the DESTDIR's
# takes the place of /usr/local/share.
if [ -n "$TETHER_GJS" ]; then
  XDG_DATA_DIRS=$D:/usr/share GI_TYPELIB_PATH=$L/girepository-1.0 LD_LIBRARY_PATH=$L \
    "$TETHER_GJS" -m "$src/tests/install/installed.js" "$D" "$work/gjs.sock" ||
    fail "GJS through the installed override"
  ok "GJS through the installed override and ES module"
fi

# -- Vala: the installed vapi and deps ---------------------------------
if [ "$TETHER_HAVE_VAPI" = true ] && [ -n "$TETHER_VALAC" ]; then
  ( cd "$work" && "$TETHER_VALAC" -C --vapidir="$D/vala/vapi" --pkg tether-1 \
      "$src/tests/install/installed.vala" ) || fail "valac with the installed tether-1.vapi"
  # shellcheck disable=SC2046
  ${CC:-cc} -w -o "$work/installed-vala" "$work/installed.c" \
    $(pc --cflags --libs tether-1) || fail "building the Vala program's C"
  LD_LIBRARY_PATH=$L "$work/installed-vala" "$work/vala.sock" || fail "the Vala program"
  ok "Vala program built with the installed vapi and .deps"
fi

echo "$step passed, 0 failed"
