/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Strict JSON for the wire, and the GVariant ⇄ JSON mapping.
 *
 * Parsing is jansson's (strict RFC 8259; see docs/json.md for why it was
 * chosen over json-glib), with Tether's own depth limit on top. The
 * mapping goes straight between jansson values and GVariant (through a
 * GVariantBuilder where it builds), never through a third tree. */

#include <glib.h>
#include <jansson.h>

#include "tether-message-private.h"

G_BEGIN_DECLS

/* Appends a string literal without measuring it at run time. */
#define TETHER_APPEND_LITERAL(out, literal) \
  g_string_append_len ((out), "" literal "", sizeof (literal) - 1)

/* Parses one message (an object, an array, or any other JSON value, which
 * the caller will then answer with -32600). Rejects, with a TETHER_ERROR:
 * malformed or non-UTF-8 input, trailing garbage, duplicate object keys,
 * integers outside int64, numbers that overflow a double, empty input, a
 * byte-order mark, and "\u0000" (GVariant strings cannot hold NUL)
 * (all TETHER_ERROR_INVALID_MESSAGE, with jansson's text, line and
 * column); nesting deeper than @max_depth (TETHER_ERROR_TOO_DEEP).
 * @max_depth counts containers: `[]` is 1, `[[]]` is 2; 0 means no limit
 * of Tether's, leaving jansson's own cap of 2048, which is also reported
 * as TETHER_ERROR_TOO_DEEP. @data need not be NUL-terminated. Returns a
 * new reference. */
json_t    *_tether_json_parse            (const char          *data,
                                          gsize                len,
                                          guint                max_depth,
                                          GError             **error);

/* Tether's own reader, which _tether_json_parse() tries first: NULL where
 * it does not accept the input (then jansson decides), or where it is
 * nested deeper than @max_depth or 512. What it accepts, jansson accepts,
 * as an equal value (tested on the corpus, fuzzed). For tests. */
json_t    *_tether_json_read             (const char          *data,
                                          gsize                len,
                                          guint                max_depth);

/* For the common message, an object whose members are all among @names
 * (NULL-terminated), each at most once: reads their values into @values
 * (one slot per name, NULL where absent; new references) without making
 * the object itself. FALSE, with every slot NULL, for anything else
 * (another member, a repeated one, not an object, invalid, deeper than
 * @max_depth counting the object as 1, which then goes through
 * _tether_json_parse()). Values read are what _tether_json_parse() would
 * give (tested with it). */
gboolean   _tether_json_read_members     (const char          *data,
                                          gsize                len,
                                          guint                max_depth,
                                          const char * const  *names,
                                          json_t             **values);

/* Tether's JSON writer, used for everything it sends. Compact (no
 * spaces), UTF-8 with non-ASCII kept literal, byte for byte what jansson's
 * json_dumps() writes with JSON_COMPACT | JSON_REAL_PRECISION (17): reals
 * with 17 significant digits so they read back exactly (0.1 is written
 * 0.10000000000000001, 1.0 as 1.0). All append to @out. */

/* Appends @value. Returns FALSE (and appends nothing) only for a value
 * that parsing never produces: a reference loop. */
gboolean   _tether_json_write            (GString             *out,
                                          json_t              *value);
/* Appends @str (@len bytes) as a JSON string; invalid UTF-8 is replaced
 * (U+FFFD), so the output is always valid JSON. */
void       _tether_json_write_string     (GString             *out,
                                          const char          *str,
                                          gsize                len);
void       _tether_json_write_int        (GString             *out,
                                          gint64               value);
/* Appends a finite @value with 17 significant digits, always as a real
 * (1.0, not 1); the caller writes null for what is not finite. */
void       _tether_json_write_real       (GString             *out,
                                          double               value);
/* Appends @value by the GVariant → JSON mapping of _tether_variant_to_json().
 * @value may be floating (it is sunk and released). */
void       _tether_json_write_variant    (GString             *out,
                                          GVariant            *value);

/* _tether_json_write() into a new string (free with g_free()); @len_out
 * (optional) gets its length. NULL (and 0) for a reference loop. */
char      *_tether_json_dump             (json_t              *value,
                                          gsize               *len_out);

/* JSON → GVariant. With @type NULL the mapping is the undeclared one:
 * object → a{sv}, array → av, string → s, integer → x, real → d,
 * true/false → b, null → mv (Nothing). With a definite @type, the value
 * must fit it: s/o/g from strings (o and g must be valid object paths and
 * signatures), b from booleans, y/n/q/i/u/x/t/h from integers in range
 * (never from reals, even 1.0; t only up to INT64_MAX, as jansson has no
 * more), d from any number, v from anything (undeclared mapping inside),
 * m* from null (Nothing) or the element, a{s*} from objects, a* from
 * arrays, tuples from arrays of the right length; dict entries are not
 * allowed outside a{s*} (a{o*}, a{x*}, {sv}: "type '…' has no JSON
 * mapping"). Strings holding NUL or invalid UTF-8 (only values built in
 * code can) are refused. Returns a new, non-floating reference, or NULL
 * with TETHER_ERROR_INVALID_PARAMS and a message that names the path of
 * the offending element from the root "params" (e.g. "params[1]: expected
 * an integer, got a string", "params.opts[\"a b\"]: …"). */
GVariant  *_tether_json_to_variant       (json_t              *value,
                                          const GVariantType  *type,
                                          GError             **error);

/* Anchors the undeclared mapping's container types (a{sv}, av, mv) for
 * the life of the process. */
void       _tether_json_anchor_undeclared_types (void);

/* The undeclared mapping built as a tree of GVariants, as it was before
 * it was serialised directly; NULL where it fails. For tests, which check
 * that both give the same bytes. */
GVariant  *_tether_json_to_variant_built (json_t              *value);

/* Params of a request → GVariant.
 * - @signature NULL: params as given by the undeclared mapping (object →
 *   a{sv}, array → av); absent params (@params NULL) → NULL (no error).
 * - @signature a tuple type such as "(si)": positional params (array) fill
 *   the tuple by position (length must match); named params (object) fill
 *   it by the names in @param_names (NULL-terminated, one name per tuple
 *   member; every name must be present, no unknown names allowed); absent
 *   params are allowed only for "()", which also takes [] and {}. With
 *   @param_names NULL only positional params are taken. Any mismatch →
 *   NULL and TETHER_ERROR_INVALID_PARAMS whose message names the
 *   parameter, e.g.
 *   "parameter 'subtrahend' (#2): expected an integer, got a string" or
 *   "parameter 'opts' (#2) at .n[1]: expected …" or
 *   "parameter #2: …" (no names) or
 *   "missing parameter 'minuend'" or "unknown parameter 'foo'" (reported
 *   before missing ones: a misspelt name is both) or
 *   "expected 2 parameters, got 3".
 * - @signature any other definite type: @params is converted as a whole
 *   (absent params: "missing params").
 * Params that are neither an array nor an object (null included) are
 * refused whenever present. @signature must be a valid definite type
 * string (checked with g_return_val_if_fail()). Returns a new
 * non-floating reference. */
GVariant  *_tether_json_params_to_variant (json_t             *params,
                                           const char         *signature,
                                           const char * const *param_names,
                                           GError            **error);

/* GVariant → JSON: a{s*} and other dicts with string-like keys (s, o, g)
 * → object (a repeated key: the last one wins, as in GVariantDict);
 * dicts with other keys → arrays of [key, value] pairs, and a lone dict
 * entry → [key, value]; arrays and tuples → arrays; s/o/g → string;
 * integer types → integer (t above INT64_MAX → real, so it cannot come
 * back as a t); d → real (NaN and infinities → null, since JSON has none);
 * b → true/false; v → its content; m* → null or the element; ay → array
 * of integers; () → []; h → integer. @value may be floating (it is sunk
 * and released). Never fails. Returns a new reference. */
json_t    *_tether_variant_to_json       (GVariant            *value);

/* Depth of a value in the same unit as _tether_json_parse. Iterative, so
 * safe on values built in code, however deep. */
guint      _tether_json_depth            (json_t              *value);

G_END_DECLS
