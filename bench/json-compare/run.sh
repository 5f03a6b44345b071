#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Compares json-glib and jansson on Tether's conformance corpus and on the
# cost of a typical JSON-RPC message (docs/json.md has the results).
#
#   bench/json-compare/run.sh [CORPUS_DIR]
#
# Needs gcc, pkg-config, json-glib-1.0, jansson and valgrind, and a
# configured _build (for Tether's generated headers; BUILD_DIR overrides
# it). Each parser is built into its own executable: the libraries share
# symbol names.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
corpus=${1:-$top/tests/json-corpus}
max_depth=64
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

cflags="-O2 -g -Wall"
# shellcheck disable=SC2046,SC2086
gcc $cflags -o "$tmp/parse-jsonglib" "$here/parse-jsonglib.c" \
  $(pkg-config --cflags --libs json-glib-1.0)
# shellcheck disable=SC2046,SC2086
gcc $cflags -DTETHER_COMPILATION -I"$top/lib" -I"$top/lib/wire" -I"${BUILD_DIR:-$top/_build}/lib" \
  -o "$tmp/parse-jansson" \
  "$here/parse-jansson.c" "$top/lib/wire/tether-json.c" "$top/lib/wire/tether-json-variant.c" \
  "$top/lib/wire/tether-variant-json.c" "$top/lib/tether-error.c" \
  $(pkg-config --cflags --libs jansson gio-2.0) -lm

# Inputs too big to commit.
mkdir "$tmp/extra"
head -c 100000 /dev/zero | tr '\0' '[' > "$tmp/extra/n_structure_100000_open_brackets.json"
{ head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero | tr '\0' ']'; } \
  > "$tmp/extra/n_structure_100000_nested_arrays.json"

# Prints "accept", "reject" or "crash:SIGNAME"; details go to $tmp/detail.
run_one ()
{
  rc=0
  timeout 20 "$@" > "$tmp/out" 2>/dev/null || rc=$?
  if [ "$rc" -ge 124 ]; then
    if [ "$rc" -eq 124 ]; then
      echo "timeout"
    else
      echo "crash:SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $rc)"
    fi
    : > "$tmp/detail"
  else
    cut -f1 "$tmp/out" | head -n 1
    cut -f2- "$tmp/out" | head -n 1 | cut -c1-38 | tr -d '\r' > "$tmp/detail"
  fi
}

verdict ()
{
  case "$1" in
    "$2") echo "$1" ;;
    *) echo "$1 !" ;;
  esac
}

echo "== Conformance: $(find "$corpus" -name "*.json" | wc -l) corpus files + 2 generated, max depth $max_depth"
echo "   (only files where some parser disagrees with the y_/n_ expectation; '!' marks the disagreement)"
echo
printf '%-40s %-7s %-16s %-16s %-16s %s\n' "file" "expect" "json-glib" "jansson-default" "jansson-tether" "json-glib output"
dis_glib=0 dis_jdef=0 dis_jtether=0 total=0
for f in "$corpus"/*.json "$tmp"/extra/*.json; do
  name=$(basename "$f" .json)
  case "$name" in
    y_*) expect=accept ;;
    *) expect=reject ;;
  esac
  total=$((total + 1))
  glib=$(run_one "$tmp/parse-jsonglib" --max-depth $max_depth "$f")
  glib_detail=$(cat "$tmp/detail")
  jdef=$(run_one "$tmp/parse-jansson" --default-flags --max-depth $max_depth "$f")
  jtether=$(run_one "$tmp/parse-jansson" --max-depth $max_depth "$f")
  [ "$glib" = "$expect" ] || dis_glib=$((dis_glib + 1))
  [ "$jdef" = "$expect" ] || dis_jdef=$((dis_jdef + 1))
  [ "$jtether" = "$expect" ] || dis_jtether=$((dis_jtether + 1))
  if [ "$glib" != "$expect" ] || [ "$jdef" != "$expect" ] || [ "$jtether" != "$expect" ]; then
    [ "$glib" = accept ] || glib_detail=""
    printf '%-40s %-7s %-16s %-16s %-16s %s\n' "$name" "$expect" \
      "$(verdict "$glib" "$expect")" "$(verdict "$jdef" "$expect")" \
      "$(verdict "$jtether" "$expect")" "$glib_detail"
  fi
done
echo
echo "Disagreements out of $total: json-glib $dis_glib, jansson (default flags) $dis_jdef," \
     "jansson (JSON_REJECT_DUPLICATES + depth limit, as Tether) $dis_jtether"

# A typical request: named params, an array, a boolean and Tether metadata.
cat > "$tmp/message.json" <<'JSON'
{"jsonrpc":"2.0","id":17,"method":"example.lookup","params":{"name":"Ada Lovelace","limit":25,"tags":["math","history"],"exact":true},"tether":{"timeout_ms":9500}}
JSON

instructions ()
{
  valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out" "$@" 2>&1 \
    | sed -n 's/.*Collected : *//p'
}

# Instructions for 1001 runs minus 1 run, over 1000: start-up cancels out.
per_message ()
{
  one=$(instructions "$@" 1 "$tmp/message.json")
  many=$(instructions "$@" 1001 "$tmp/message.json")
  echo $(((many - one) / 1000))
}

echo
echo "== Instructions per message ($(wc -c < "$tmp/message.json") bytes), valgrind --tool=callgrind"
printf '%-12s %22s %36s\n' "" "parse + serialize" "parse + GVariant and back + serialize"
printf '%-12s %22s %36s\n' "json-glib" \
  "$(per_message "$tmp/parse-jsonglib" --bench)" \
  "$(per_message "$tmp/parse-jsonglib" --bench-gvariant)"
printf '%-12s %22s %36s\n' "jansson" \
  "$(per_message "$tmp/parse-jansson" --bench)" \
  "$(per_message "$tmp/parse-jansson" --bench-gvariant)"
printf '%-12s %22s\n' "jansson (1)" \
  "$(per_message "$tmp/parse-jansson" --default-flags --bench)"
echo
echo "json-glib: json_parser_load_from_data + json_generator_to_data (parser and generator reused),"
echo "           json_gvariant_deserialize/serialize for the GVariant column."
echo "jansson:   json_loadb (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES) + _tether_json_dump,"
echo "           _tether_json_to_variant/_tether_variant_to_json for the GVariant column."
echo "(1)        the same without JSON_REJECT_DUPLICATES."
