/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* GVariant type → JSON Schema, following the mapping in both directions
 * (see tether-json-schema-private.h, and docs/json.md for the table).
 * The tests hold the schemas to the codec: values the codec accepts
 * validate, values it refuses do not (tests/python/test_discover.py). */

#include "tether-json-schema-private.h"

/* D-Bus object paths, as g_variant_is_object_path() checks them. */
#define OBJECT_PATH_PATTERN "^/([A-Za-z0-9_]+(/[A-Za-z0-9_]+)*)?$"
/* Signatures: the characters g_variant_is_signature() allows (which also
 * wants the brackets to pair up, beyond what a pattern can say). */
#define SIGNATURE_PATTERN "^[ybnqiuxthdvasog(){}]*$"

static GVariant *
schema_any (void)
{
  return g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
}

/* Matches nothing: a type the mapping cannot read. */
static GVariant *
schema_nothing (void)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "not", schema_any ());
  return g_variant_builder_end (&b);
}

static GVariant *
schema_type (const char *type)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "type", g_variant_new_string (type));
  return g_variant_builder_end (&b);
}

static GVariant *
schema_integer (gint64 min,
                gint64 max)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "type", g_variant_new_string ("integer"));
  g_variant_builder_add (&b, "{sv}", "minimum", g_variant_new_int64 (min));
  g_variant_builder_add (&b, "{sv}", "maximum", g_variant_new_int64 (max));
  return g_variant_builder_end (&b);
}

static GVariant *
schema_string (const char *pattern)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "type", g_variant_new_string ("string"));
  if (pattern != NULL)
    g_variant_builder_add (&b, "{sv}", "pattern", g_variant_new_string (pattern));
  return g_variant_builder_end (&b);
}

gboolean
_tether_json_schema_is_any (GVariant *schema)
{
  return g_variant_is_of_type (schema, G_VARIANT_TYPE_VARDICT) &&
         g_variant_n_children (schema) == 0;
}

static GVariant *
schema_array (GVariant *items)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "type", g_variant_new_string ("array"));
  g_variant_ref_sink (items);
  if (!_tether_json_schema_is_any (items))
    g_variant_builder_add (&b, "{sv}", "items", items);
  g_variant_unref (items);
  return g_variant_builder_end (&b);
}

/* An array of one element per member (tuples, and dict entries written
 * as [key, value]), of which the first @min_items must be there. Takes
 * the floating @members. */
static GVariant *
schema_tuple (GVariant **members,
              gsize      n,
              gsize      min_items)
{
  GVariantBuilder b, items;
  gsize i;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "type", g_variant_new_string ("array"));
  if (n == 0)
    {
      g_variant_builder_add (&b, "{sv}", "maxItems", g_variant_new_int64 (0));
      return g_variant_builder_end (&b);
    }
  g_variant_builder_init (&items, G_VARIANT_TYPE ("av"));
  for (i = 0; i < n; i++)
    g_variant_builder_add (&items, "v", members[i]);
  g_variant_builder_add (&b, "{sv}", "items", g_variant_builder_end (&items));
  g_variant_builder_add (&b, "{sv}", "additionalItems", g_variant_new_boolean (FALSE));
  g_variant_builder_add (&b, "{sv}", "minItems", g_variant_new_int64 (min_items));
  g_variant_builder_add (&b, "{sv}", "maxItems", g_variant_new_int64 (n));
  return g_variant_builder_end (&b);
}

static GVariant *
schema_object (const char *key_pattern,
               GVariant   *values)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "type", g_variant_new_string ("object"));
  if (key_pattern != NULL)
    g_variant_builder_add (&b, "{sv}", "propertyNames", schema_string (key_pattern));
  g_variant_ref_sink (values);
  if (!_tether_json_schema_is_any (values))
    g_variant_builder_add (&b, "{sv}", "additionalProperties", values);
  g_variant_unref (values);
  return g_variant_builder_end (&b);
}

/* null, or what @inner allows. */
static GVariant *
schema_maybe (GVariant *inner)
{
  GVariantBuilder b, any_of;
  GVariant *result;

  g_variant_ref_sink (inner);
  if (_tether_json_schema_is_any (inner))
    {
      result = schema_any ();
      g_variant_unref (inner);
      return result;
    }
  g_variant_builder_init (&any_of, G_VARIANT_TYPE ("av"));
  g_variant_builder_add (&any_of, "v", schema_type ("null"));
  g_variant_builder_add (&any_of, "v", inner);
  g_variant_unref (inner);
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "anyOf", g_variant_builder_end (&any_of));
  return g_variant_builder_end (&b);
}

static GVariant *schema_for (const GVariantType    *type,
                             TetherSchemaDirection  direction);

/* A tuple's members, of which the first @min_items must be there. */
static GVariant *
schema_members (const GVariantType    *type,
                TetherSchemaDirection  direction,
                gsize                  min_items)
{
  gsize n = g_variant_type_n_items (type);
  g_autofree GVariant **members = g_new (GVariant *, MAX (n, 1));
  const GVariantType *item;
  gsize i = 0;

  for (item = g_variant_type_first (type); item != NULL; item = g_variant_type_next (item))
    members[i++] = schema_for (item, direction);
  return schema_tuple (members, n, min_items);
}

static GVariant *
schema_for (const GVariantType    *type,
            TetherSchemaDirection  direction)
{
  const char *t = g_variant_type_peek_string (type);
  gboolean accepted = direction == TETHER_SCHEMA_ACCEPTED;

  switch (t[0])
    {
    case 'b':
      return schema_type ("boolean");
    case 'y':
      return schema_integer (0, G_MAXUINT8);
    case 'n':
      return schema_integer (G_MININT16, G_MAXINT16);
    case 'q':
      return schema_integer (0, G_MAXUINT16);
    case 'i':
    case 'h':
      return schema_integer (G_MININT32, G_MAXINT32);
    case 'u':
      return schema_integer (0, G_MAXUINT32);
    case 'x':
      return schema_integer (G_MININT64, G_MAXINT64);
    case 't':
      if (accepted)
        /* The parser has no integers above INT64_MAX to offer. */
        return schema_integer (0, G_MAXINT64);
      else
        {
          /* Written as a real above INT64_MAX: still a whole number,
           * which JSON Schema counts as an integer. */
          GVariantBuilder b;

          g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
          g_variant_builder_add (&b, "{sv}", "type", g_variant_new_string ("integer"));
          g_variant_builder_add (&b, "{sv}", "minimum", g_variant_new_int64 (0));
          g_variant_builder_add (&b, "{sv}", "maximum",
                                 g_variant_new_double ((double) G_MAXUINT64));
          return g_variant_builder_end (&b);
        }
    case 'd':
      if (accepted)
        return schema_type ("number");
      else
        {
          /* NaN and the infinities are written as null. */
          GVariantBuilder b;
          const char *types[] = { "number", "null" };

          g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
          g_variant_builder_add (&b, "{sv}", "type", g_variant_new_strv (types, 2));
          return g_variant_builder_end (&b);
        }
    case 's':
      return schema_string (NULL);
    case 'o':
      return schema_string (OBJECT_PATH_PATTERN);
    case 'g':
      return schema_string (SIGNATURE_PATTERN);
    case 'v':
      return schema_any ();
    case 'm':
      return schema_maybe (schema_for (g_variant_type_element (type), direction));
    case 'a':
      if (t[1] == '{')
        {
          const GVariantType *entry = g_variant_type_element (type);
          const GVariantType *key = g_variant_type_key (entry);
          const GVariantType *value = g_variant_type_value (entry);
          char k = g_variant_type_peek_string (key)[0];

          if (k == 's')
            return schema_object (NULL, schema_for (value, direction));
          /* Only string keys are read; o and g keys are written as
           * object keys, other keys as [key, value] pairs. */
          if (accepted)
            return schema_nothing ();
          if (k == 'o' || k == 'g')
            return schema_object (k == 'o' ? OBJECT_PATH_PATTERN : SIGNATURE_PATTERN,
                                  schema_for (value, direction));
          return schema_array (schema_for (entry, direction));
        }
      return schema_array (schema_for (g_variant_type_element (type), direction));
    case '{':
      {
        GVariant *members[2];

        /* A lone dict entry: written as [key, value], never read. */
        if (accepted)
          return schema_nothing ();
        members[0] = schema_for (g_variant_type_key (type), direction);
        members[1] = schema_for (g_variant_type_value (type), direction);
        return schema_tuple (members, 2, 2);
      }
    case '(':
      return schema_members (type, direction, g_variant_type_n_items (type));
    default:
      return schema_nothing ();
    }
}

GVariant *
_tether_json_schema_for_type (const GVariantType    *type,
                              TetherSchemaDirection  direction)
{
  g_return_val_if_fail (type != NULL && g_variant_type_is_definite (type), NULL);
  return schema_for (type, direction);
}

GVariant *
_tether_json_schema_for_params (const char         *signature,
                                const char * const *param_names)
{
  g_autoptr(GVariantType) type = NULL;
  GVariantBuilder b, any_of, properties;
  const char *types[] = { "array", "object" };
  const GVariantType *item;
  GVariant *by_position;
  gsize n_required;
  guint i;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  if (signature == NULL)
    {
      /* Undeclared: any array or object (params are never a scalar). */
      g_variant_builder_add (&b, "{sv}", "type", g_variant_new_strv (types, 2));
      return g_variant_builder_end (&b);
    }

  type = g_variant_type_new (signature);
  if (!g_variant_type_is_tuple (type))
    {
      /* Converted as a whole. */
      g_variant_builder_clear (&b);
      return schema_for (type, TETHER_SCHEMA_ACCEPTED);
    }
  n_required = _tether_json_params_n_required (type);

  /* By position: trailing optional members may be left out. */
  by_position = schema_members (type, TETHER_SCHEMA_ACCEPTED, n_required);
  if (param_names == NULL)
    {
      g_variant_builder_clear (&b);
      return by_position;
    }

  /* By name: every name once, optional ones may be left out. */
  {
    GVariantBuilder by_name, required;
    gboolean any_required = FALSE;

    g_variant_builder_init (&properties, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_init (&required, G_VARIANT_TYPE_STRING_ARRAY);
    i = 0;
    for (item = g_variant_type_first (type); item != NULL; item = g_variant_type_next (item), i++)
      {
        g_variant_builder_add (&properties, "{sv}", param_names[i],
                               schema_for (item, TETHER_SCHEMA_ACCEPTED));
        if (i < n_required)
          {
            g_variant_builder_add (&required, "s", param_names[i]);
            any_required = TRUE;
          }
      }
    g_variant_builder_init (&by_name, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add (&by_name, "{sv}", "type", g_variant_new_string ("object"));
    g_variant_builder_add (&by_name, "{sv}", "properties", g_variant_builder_end (&properties));
    if (any_required)
      g_variant_builder_add (&by_name, "{sv}", "required", g_variant_builder_end (&required));
    else
      g_variant_builder_clear (&required);
    g_variant_builder_add (&by_name, "{sv}", "additionalProperties", g_variant_new_boolean (FALSE));

    g_variant_builder_init (&any_of, G_VARIANT_TYPE ("av"));
    g_variant_builder_add (&any_of, "v", by_position);
    g_variant_builder_add (&any_of, "v", g_variant_builder_end (&by_name));
  }
  g_variant_builder_add (&b, "{sv}", "anyOf", g_variant_builder_end (&any_of));
  return g_variant_builder_end (&b);
}
