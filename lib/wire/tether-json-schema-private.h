/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The JSON Schema of what the GVariant ⇄ JSON mapping accepts or writes
 * for a GVariant type (issue #12, rpc.discover). It lives beside the
 * mapping (tether-json-variant.c, tether-variant-json.c) and follows it
 * rule for rule; docs/json.md has the table. Schemas are JSON Schema
 * draft-07, the dialect OpenRPC 1.x documents use (tuples as an "items"
 * array with "additionalItems": false, not 2020-12's "prefixItems"),
 * built as a{sv} values that the GVariant → JSON mapping writes as the
 * schema's JSON (integers as x, reals as d, lists as av). */

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  /* What a receiver accepts for a declared type (JSON → GVariant,
   * declared): params, and a callback's params on the client. */
  TETHER_SCHEMA_ACCEPTED,
  /* What a sender writes for a value of the type (GVariant → JSON):
   * results, and the params of callbacks the server makes. */
  TETHER_SCHEMA_WRITTEN,
} TetherSchemaDirection;

/* How many members of a declared params tuple are required: those up to
 * the last that is not of a maybe type. The ones after it are optional
 * (OpenRPC's optional params, which come last): named params may leave
 * them out, positional ones may stop before them, and the handler sees
 * Nothing. The codec (tether-json-variant.c) and the schemas both follow
 * this. */
gsize     _tether_json_params_n_required (const GVariantType    *tuple_type);

/* The schema of one value of @type (definite). Returns a floating a{sv}. */
GVariant *_tether_json_schema_for_type   (const GVariantType    *type,
                                          TetherSchemaDirection  direction);

/* Whether @schema (from the function above) accepts any JSON value. */
gboolean  _tether_json_schema_is_any     (GVariant              *schema);

/* The schema of a whole "params" member for a method declared with
 * @signature and @param_names (NULL: undeclared), as the receiver checks
 * it: an array, or with names an object, or either; an absent "params" is
 * not something a schema can say (see docs/json.md). Floating a{sv}. */
GVariant *_tether_json_schema_for_params (const char            *signature,
                                          const char * const    *param_names);

G_END_DECLS
