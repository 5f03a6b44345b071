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

G_BEGIN_DECLS

/* Parses one message (an object, an array, or any other JSON value, which
 * the caller will then answer with -32600). Rejects, with a TETHER_ERROR:
 * malformed or non-UTF-8 input, trailing garbage, duplicate object keys,
 * integers outside int64, numbers that overflow a double
 * (all TETHER_ERROR_INVALID_MESSAGE); nesting deeper than @max_depth
 * (TETHER_ERROR_TOO_DEEP). @max_depth counts containers: `[]` is 1, `[[]]`
 * is 2. Returns a new reference. */
json_t    *_tether_json_parse            (const char          *data,
                                          gsize                len,
                                          guint                max_depth,
                                          GError             **error);

/* Serializes compactly (no spaces, no trailing newline), as UTF-8 with
 * non-ASCII kept literal. Returns a newly allocated NUL-terminated string;
 * @len_out (optional) gets its length. */
char      *_tether_json_dump             (json_t              *value,
                                          gsize               *len_out);

/* JSON → GVariant. With @type NULL the mapping is the undeclared one:
 * object → a{sv}, array → av, string → s, integer → x, real → d,
 * true/false → b, null → mv (Nothing). With a definite @type, the value
 * must fit it: s/o/g from strings, b from booleans, y/n/q/i/u/x/t/h from
 * integers in range, d from any number, v from anything (undeclared
 * mapping inside), m* from null (Nothing) or the element, a{s*} from
 * objects, a* from arrays, tuples from arrays of the right length,
 * dict entries are not allowed outside a{s*}. Returns a new, non-floating
 * reference, or NULL with TETHER_ERROR_INVALID_PARAMS and a message that
 * names the path of the offending element (e.g. "params[1]: expected an
 * integer, got a string"). */
GVariant  *_tether_json_to_variant       (json_t              *value,
                                          const GVariantType  *type,
                                          GError             **error);

/* Params of a request → GVariant.
 * - @signature NULL: params as given by the undeclared mapping (object →
 *   a{sv}, array → av); absent params (@params NULL) → NULL (no error).
 * - @signature a tuple type such as "(si)": positional params (array) fill
 *   the tuple by position (length must match); named params (object) fill
 *   it by the names in @param_names (which has one name per tuple member;
 *   every name must be present, no unknown names allowed); absent params
 *   are allowed only for "()". Any mismatch → NULL and
 *   TETHER_ERROR_INVALID_PARAMS whose message names the parameter, e.g.
 *   "parameter 'subtrahend' (#2): expected an integer, got a string" or
 *   "missing parameter 'minuend'" or "unknown parameter 'foo'" or
 *   "expected 2 parameters, got 3".
 * - @signature any other definite type: @params is converted as a whole.
 * Returns a new non-floating reference. */
GVariant  *_tether_json_params_to_variant (json_t             *params,
                                           const char         *signature,
                                           const char * const *param_names,
                                           GError            **error);

/* GVariant → JSON: a{s*} and other dicts with string-like keys → object;
 * arrays and tuples → arrays; s/o/g → string; integer types → integer
 * (t above INT64_MAX → real, documented); d → real (NaN and infinities
 * → null, since JSON has none); b → true/false; v → its content;
 * m* → null or the element; ay → array of integers; () → [];
 * h → integer. @value may be floating (it is sunk and released). Never
 * fails. Returns a new reference. */
json_t    *_tether_variant_to_json       (GVariant            *value);

/* Depth of a parsed value in the same unit as _tether_json_parse. */
guint      _tether_json_depth            (json_t              *value);

G_END_DECLS
