/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-json-private.h"

#include <math.h>
#include <string.h>

/* The GVariant → JSON direction of the mapping (the contract is in
 * tether-json-private.h; JSON → GVariant is in tether-json-variant.c).
 * It writes text straight from the GVariant, with tether-json.c's
 * writers: no intermediate tree. */

/* ------------------------------------------------------------------------
 * GVariant → JSON
 * ------------------------------------------------------------------------ */

static void write_variant (GString *out, GVariant *value);

static void
write_fixed_array (GString  *out,
                   GVariant *value,
                   char      elem)
{
  gsize size;
  gsize n, i;
  const guint8 *data;

  switch (elem)
    {
    case 'b': case 'y': size = 1; break;
    case 'n': case 'q': size = 2; break;
    case 'i': case 'u': case 'h': size = 4; break;
    default: size = 8; break;
    }

  data = g_variant_get_fixed_array (value, &n, size);
  g_string_append_c (out, '[');
  for (i = 0; i < n; i++)
    {
      const guint8 *p = data + i * size;

      if (i > 0)
        g_string_append_c (out, ',');
      switch (elem)
        {
        case 'b':
          if (*p != 0)
            TETHER_APPEND_LITERAL (out, "true");
          else
            TETHER_APPEND_LITERAL (out, "false");
          break;
        case 'y': _tether_json_write_int (out, *p); break;
        case 'n': { gint16 w; memcpy (&w, p, 2); _tether_json_write_int (out, w); } break;
        case 'q': { guint16 w; memcpy (&w, p, 2); _tether_json_write_int (out, w); } break;
        case 'i': case 'h': { gint32 w; memcpy (&w, p, 4); _tether_json_write_int (out, w); } break;
        case 'u': { guint32 w; memcpy (&w, p, 4); _tether_json_write_int (out, w); } break;
        case 'x': { gint64 w; memcpy (&w, p, 8); _tether_json_write_int (out, w); } break;
        case 't':
          {
            guint64 w;

            memcpy (&w, p, 8);
            if (w <= G_MAXINT64)
              _tether_json_write_int (out, (gint64) w);
            else
              _tether_json_write_real (out, (double) w);
          }
          break;
        default:
          {
            double d;

            memcpy (&d, p, 8);
            if (isfinite (d))
              _tether_json_write_real (out, d);
            else
              TETHER_APPEND_LITERAL (out, "null");
          }
          break;
        }
    }
  g_string_append_c (out, ']');
}

/* A dict's key, or NULL for one that a later entry repeats (the last one
 * wins, as in GVariantDict). Small dicts are scanned; big ones hashed. */
static gboolean
dict_key_repeated (GVariant    *value,
                   gsize        i,
                   gsize        n,
                   const char  *key,
                   GHashTable **last_index)
{
  gsize j;

  if (n <= 16)
    {
      for (j = i + 1; j < n; j++)
        {
          g_autoptr(GVariant) entry = g_variant_get_child_value (value, j);
          g_autoptr(GVariant) other = g_variant_get_child_value (entry, 0);

          if (strcmp (g_variant_get_string (other, NULL), key) == 0)
            return TRUE;
        }
      return FALSE;
    }

  if (*last_index == NULL)
    {
      *last_index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      for (j = 0; j < n; j++)
        {
          g_autoptr(GVariant) entry = g_variant_get_child_value (value, j);
          g_autoptr(GVariant) other = g_variant_get_child_value (entry, 0);

          g_hash_table_insert (*last_index, g_variant_dup_string (other, NULL),
                               GSIZE_TO_POINTER (j));
        }
    }
  return GPOINTER_TO_SIZE (g_hash_table_lookup (*last_index, key)) != i;
}

static void
write_array (GString  *out,
             GVariant *value)
{
  const GVariantType *elem_type = g_variant_type_element (g_variant_get_type (value));
  const char *elem = g_variant_type_peek_string (elem_type);
  gsize n = g_variant_n_children (value);
  gsize i;

  if (elem[0] == '{' && strchr ("sog", elem[1]) != NULL)
    {
      g_autoptr(GHashTable) last_index = NULL;
      gboolean first = TRUE;

      g_string_append_c (out, '{');
      for (i = 0; i < n; i++)
        {
          g_autoptr(GVariant) entry = g_variant_get_child_value (value, i);
          g_autoptr(GVariant) key = g_variant_get_child_value (entry, 0);
          g_autoptr(GVariant) member = NULL;
          gsize key_len;
          const char *key_str = g_variant_get_string (key, &key_len);

          if (dict_key_repeated (value, i, n, key_str, &last_index))
            continue;
          if (!first)
            g_string_append_c (out, ',');
          first = FALSE;
          _tether_json_write_string (out, key_str, key_len);
          g_string_append_c (out, ':');
          member = g_variant_get_child_value (entry, 1);
          write_variant (out, member);
        }
      g_string_append_c (out, '}');
      return;
    }

  /* peek_string() is not terminated after the element: test elem[0] only. */
  if (strchr ("bynqiuxthd", elem[0]) != NULL)
    {
      write_fixed_array (out, value, elem[0]);
      return;
    }

  /* Everything else, dicts with non-string keys included (as [key, value]
   * pairs), is an array. */
  g_string_append_c (out, '[');
  for (i = 0; i < n; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

      if (i > 0)
        g_string_append_c (out, ',');
      write_variant (out, child);
    }
  g_string_append_c (out, ']');
}

static void
write_variant (GString  *out,
               GVariant *value)
{
  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      if (g_variant_get_boolean (value))
        TETHER_APPEND_LITERAL (out, "true");
      else
        TETHER_APPEND_LITERAL (out, "false");
      return;
    case G_VARIANT_CLASS_BYTE:
      _tether_json_write_int (out, g_variant_get_byte (value));
      return;
    case G_VARIANT_CLASS_INT16:
      _tether_json_write_int (out, g_variant_get_int16 (value));
      return;
    case G_VARIANT_CLASS_UINT16:
      _tether_json_write_int (out, g_variant_get_uint16 (value));
      return;
    case G_VARIANT_CLASS_INT32:
      _tether_json_write_int (out, g_variant_get_int32 (value));
      return;
    case G_VARIANT_CLASS_UINT32:
      _tether_json_write_int (out, g_variant_get_uint32 (value));
      return;
    case G_VARIANT_CLASS_INT64:
      _tether_json_write_int (out, g_variant_get_int64 (value));
      return;
    case G_VARIANT_CLASS_HANDLE:
      _tether_json_write_int (out, g_variant_get_handle (value));
      return;

    case G_VARIANT_CLASS_UINT64:
      {
        guint64 u = g_variant_get_uint64 (value);

        /* Above INT64_MAX a JSON integer would not survive jansson or most
         * peers; a real keeps the magnitude (documented). */
        if (u <= G_MAXINT64)
          _tether_json_write_int (out, (gint64) u);
        else
          _tether_json_write_real (out, (double) u);
        return;
      }

    case G_VARIANT_CLASS_DOUBLE:
      {
        double d = g_variant_get_double (value);

        if (isfinite (d))
          _tether_json_write_real (out, d);
        else
          TETHER_APPEND_LITERAL (out, "null");
        return;
      }

    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
      {
        gsize len;
        const char *str = g_variant_get_string (value, &len);

        _tether_json_write_string (out, str, len);
        return;
      }

    case G_VARIANT_CLASS_VARIANT:
      {
        g_autoptr(GVariant) inner = g_variant_get_variant (value);

        write_variant (out, inner);
        return;
      }

    case G_VARIANT_CLASS_MAYBE:
      {
        g_autoptr(GVariant) inner = g_variant_get_maybe (value);

        if (inner != NULL)
          write_variant (out, inner);
        else
          TETHER_APPEND_LITERAL (out, "null");
        return;
      }

    case G_VARIANT_CLASS_ARRAY:
      write_array (out, value);
      return;

    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
    default:
      {
        gsize n = g_variant_n_children (value);
        gsize i;

        g_string_append_c (out, '[');
        for (i = 0; i < n; i++)
          {
            g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

            if (i > 0)
              g_string_append_c (out, ',');
            write_variant (out, child);
          }
        g_string_append_c (out, ']');
        return;
      }
    }
}

void
_tether_json_write_variant (GString  *out,
                            GVariant *value)
{
  g_return_if_fail (value != NULL);

  g_variant_ref_sink (value);
  write_variant (out, value);
  g_variant_unref (value);
}

json_t *
_tether_variant_to_json (GVariant *value)
{
  g_autoptr(GString) text = g_string_sized_new (128);
  json_t *result;

  g_return_val_if_fail (value != NULL, NULL);

  /* One mapping, the writer's; this direction is off the hot path. */
  _tether_json_write_variant (text, value);
  result = _tether_json_parse (text->str, text->len, 0, NULL);
  g_assert (result != NULL);
  return result;
}
