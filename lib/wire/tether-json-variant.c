/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-json-private.h"
#include "tether-json-schema-private.h"

#include <math.h>
#include <string.h>

#include "tether-error.h"

/* The JSON → GVariant direction of the mapping (the contract is in
 * tether-json-private.h; the other direction is in tether-variant-json.c,
 * the parser and the writer in tether-json.c).
 *
 * Both directions walk the source once and build the target directly:
 * JSON → GVariant gathers children in an array (on the stack when small)
 * and hands them to g_variant_new_array()/_tuple(), and arrays of
 * fixed-size numbers are serialised straight into one buffer. Error paths
 * are the only ones that format text, so element paths are kept as a
 * chain of stack frames and rendered only when something fails. */

/* Children gathered on the stack before falling back to the heap. */
#define N_STACK_CHILDREN 16

/* Longest member name quoted verbatim in an error message, in bytes. */
#define MAX_QUOTED_KEY 64

/* ------------------------------------------------------------------------
 * Error messages
 * ------------------------------------------------------------------------ */

/* Names come from the peer: keep the message valid UTF-8, printable and
 * short, whatever the bytes. */
static void
append_quoted (GString    *out,
               const char *str,
               gsize       len,
               char        quote)
{
  const char *p = str;
  const char *end = str + len;

  g_string_append_c (out, quote);
  while (p < end)
    {
      guchar c = (guchar) *p;

      if ((gsize) (p - str) >= MAX_QUOTED_KEY)
        {
          g_string_append (out, "…");
          break;
        }
      if (c == (guchar) quote || c == '\\')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, (char) c);
          p++;
        }
      else if (c < 0x20 || c == 0x7F)
        {
          g_string_append_printf (out, "\\u%04x", c);
          p++;
        }
      else if (c < 0x80)
        {
          g_string_append_c (out, (char) c);
          p++;
        }
      else
        {
          gunichar ch = g_utf8_get_char_validated (p, end - p);

          if (ch == (gunichar) -1 || ch == (gunichar) -2)
            {
              g_string_append_printf (out, "\\x%02x", c);
              p++;
            }
          else
            {
              g_string_append_unichar (out, ch);
              p = g_utf8_next_char (p);
            }
        }
    }
  g_string_append_c (out, quote);
}

static gboolean
is_identifier (const char *str,
               gsize       len)
{
  gsize i;

  if (len == 0 || len > MAX_QUOTED_KEY || g_ascii_isdigit (str[0]))
    return FALSE;
  for (i = 0; i < len; i++)
    if (!g_ascii_isalnum (str[i]) && str[i] != '_')
      return FALSE;
  return TRUE;
}

typedef enum
{
  PATH_ROOT,      /* label, e.g. "params" */
  PATH_PARAM,     /* a tuple member: name (may be NULL) and 0-based index */
  PATH_MEMBER,    /* an object member: name */
  PATH_INDEX,     /* an array element: index */
} PathKind;

/* Where the converter is, as a chain of frames on the C stack; rendered
 * only when reporting an error. */
typedef struct _Path Path;
struct _Path
{
  const Path *parent;
  PathKind    kind;
  const char *name;
  gsize       name_len;
  gsize       index;
};

static void
append_path_segments (GString    *out,
                      const Path *path)
{
  if (path->parent == NULL)
    return;
  append_path_segments (out, path->parent);

  if (path->kind == PATH_INDEX)
    {
      g_string_append_printf (out, "[%" G_GSIZE_FORMAT "]", path->index);
    }
  else if (is_identifier (path->name, path->name_len))
    {
      g_string_append_c (out, '.');
      g_string_append_len (out, path->name, path->name_len);
    }
  else
    {
      g_string_append_c (out, '[');
      append_quoted (out, path->name, path->name_len, '"');
      g_string_append_c (out, ']');
    }
}

/* "params[1].x" or "parameter 'opts' (#1) at [1].x" */
static void
append_path (GString    *out,
             const Path *path)
{
  const Path *root = path;

  while (root->parent != NULL)
    root = root->parent;

  if (root->kind == PATH_PARAM)
    {
      if (root->name != NULL)
        g_string_append_printf (out, "parameter '%s' (#%" G_GSIZE_FORMAT ")",
                                root->name, root->index + 1);
      else
        g_string_append_printf (out, "parameter #%" G_GSIZE_FORMAT,
                                root->index + 1);
      if (path != root)
        g_string_append (out, " at ");
    }
  else
    {
      g_string_append (out, root->name);
    }
  append_path_segments (out, path);
}

static void set_params_error (GError    **error,
                              const Path *path,
                              const char *format,
                              ...) G_GNUC_PRINTF (3, 4);

static void
set_params_error (GError    **error,
                  const Path *path,
                  const char *format,
                  ...)
{
  g_autoptr(GString) message = g_string_new (NULL);
  va_list args;

  if (error == NULL)
    return;

  append_path (message, path);
  g_string_append (message, ": ");
  va_start (args, format);
  g_string_append_vprintf (message, format, args);
  va_end (args);

  g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS,
                       message->str);
}

static const char *
describe_json (json_t *value)
{
  switch (json_typeof (value))
    {
    case JSON_OBJECT:
      return "an object";
    case JSON_ARRAY:
      return "an array";
    case JSON_STRING:
      return "a string";
    case JSON_INTEGER:
      return "an integer";
    case JSON_REAL:
      return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
      return "a boolean";
    case JSON_NULL:
    default:
      return "null";
    }
}

static void
set_mismatch_error (GError    **error,
                    const Path *path,
                    const char *expected,
                    json_t     *value)
{
  set_params_error (error, path, "expected %s, got %s",
                    expected, describe_json (value));
}

/* ------------------------------------------------------------------------
 * JSON → GVariant
 * ------------------------------------------------------------------------ */

static GVariant *json_to_variant_undeclared (json_t        *value,
                                             const Path    *path,
                                             GError       **error);
static GVariant *json_to_variant_any   (json_t             *value,
                                        const Path         *path,
                                        GError            **error);
static GVariant *json_to_variant_typed (json_t             *value,
                                        const GVariantType *type,
                                        const Path         *path,
                                        GError            **error);

/* Children of a container under construction: on the stack when few. */
typedef struct
{
  GVariant  *local[N_STACK_CHILDREN];
  GVariant **children;
  gsize      n;
} Children;

static void
children_init (Children *c,
               gsize     n_max)
{
  c->children = n_max <= N_STACK_CHILDREN ? c->local : g_new (GVariant *, n_max);
  c->n = 0;
}

static void
children_clear (Children *c)
{
  gsize i;

  /* The children are floating: unref frees them. */
  for (i = 0; i < c->n; i++)
    g_variant_unref (c->children[i]);
  if (c->children != c->local)
    g_free (c->children);
  c->children = NULL;
  c->n = 0;
}

/* Drops the scratch array once the children have been handed over. */
static void
children_release (Children *c)
{
  if (c->children != c->local)
    g_free (c->children);
  c->children = NULL;
  c->n = 0;
}

static gboolean
check_string (const char *str,
              gsize       len,
              const Path *path,
              GError    **error)
{
  /* Parsed strings always pass; only values built in code with
   * json_stringn() or a _nocheck constructor can fail. */
  if (G_UNLIKELY (!g_utf8_validate_len (str, len, NULL)))
    {
      set_params_error (error, path,
                        "string contains a NUL character or invalid UTF-8");
      return FALSE;
    }
  return TRUE;
}

/* @str has been through check_string(): building from trusted bytes
 * spares the second UTF-8 pass of g_variant_new_string(). */
static GVariant *
new_checked_string (const char *str,
                    gsize       len)
{
  g_autoptr(GBytes) bytes = g_bytes_new (str, len + 1);

  return g_variant_new_from_bytes (G_VARIANT_TYPE_STRING, bytes, TRUE);
}

static GVariant *
object_to_dict (json_t             *object,
                const GVariantType *entry_type,
                const Path         *path,
                GError            **error)
{
  const GVariantType *value_type = NULL;
  gboolean boxed = g_variant_type_equal (entry_type, G_VARIANT_TYPE ("{sv}"));
  Children c;
  void *iter;
  GVariant *result;

  if (!boxed)
    value_type = g_variant_type_value (entry_type);

  children_init (&c, json_object_size (object));
  for (iter = json_object_iter (object);
       iter != NULL;
       iter = json_object_iter_next (object, iter))
    {
      const char *key = json_object_iter_key (iter);
      gsize key_len = json_object_iter_key_len (iter);
      json_t *member = json_object_iter_value (iter);
      Path here = { path, PATH_MEMBER, key, key_len, 0 };
      GVariant *v;

      if (!check_string (key, key_len, &here, error))
        goto fail;
      if (boxed)
        {
          v = json_to_variant_any (member, &here, error);
          if (v != NULL)
            v = g_variant_new_variant (v);
        }
      else
        {
          v = json_to_variant_typed (member, value_type, &here, error);
        }
      if (v == NULL)
        goto fail;
      c.children[c.n++] = g_variant_new_dict_entry (new_checked_string (key, key_len), v);
    }

  result = g_variant_new_array (entry_type, c.children, c.n);
  children_release (&c);
  return result;

fail:
  children_clear (&c);
  return NULL;
}

static void
integer_range (char    type_char,
               gint64 *min,
               gint64 *max)
{
  switch (type_char)
    {
    case 'y':
      *min = 0, *max = G_MAXUINT8;
      break;
    case 'n':
      *min = G_MININT16, *max = G_MAXINT16;
      break;
    case 'q':
      *min = 0, *max = G_MAXUINT16;
      break;
    case 'i':
    case 'h':
      *min = G_MININT32, *max = G_MAXINT32;
      break;
    case 'u':
      *min = 0, *max = G_MAXUINT32;
      break;
    case 'x':
      *min = G_MININT64, *max = G_MAXINT64;
      break;
    case 't':
      /* jansson has no integers above INT64_MAX to offer. */
      *min = 0, *max = G_MAXINT64;
      break;
    default:
      g_assert_not_reached ();
    }
}

static gboolean
check_integer (json_t     *value,
               char        type_char,
               gint64     *out,
               const Path *path,
               GError    **error)
{
  gint64 min = 0, max = 0, n;

  integer_range (type_char, &min, &max);
  if (!json_is_integer (value))
    {
      set_mismatch_error (error, path, "an integer", value);
      return FALSE;
    }
  n = json_integer_value (value);
  if (n < min || n > max)
    {
      set_params_error (error, path,
                        "expected an integer from %" G_GINT64_FORMAT
                        " to %" G_GINT64_FORMAT ", got %" G_GINT64_FORMAT,
                        min, max, n);
      return FALSE;
    }
  *out = n;
  return TRUE;
}

static GVariant *
new_integer (char   type_char,
             gint64 n)
{
  switch (type_char)
    {
    case 'y':
      return g_variant_new_byte ((guint8) n);
    case 'n':
      return g_variant_new_int16 ((gint16) n);
    case 'q':
      return g_variant_new_uint16 ((guint16) n);
    case 'i':
      return g_variant_new_int32 ((gint32) n);
    case 'u':
      return g_variant_new_uint32 ((guint32) n);
    case 'x':
      return g_variant_new_int64 (n);
    case 't':
      return g_variant_new_uint64 ((guint64) n);
    case 'h':
      return g_variant_new_handle ((gint32) n);
    default:
      g_assert_not_reached ();
    }
}

/* Arrays of b, d and integers: one serialised buffer instead of a
 * GVariant per element (GVariant's in-memory form is native-endian and
 * packed for fixed-size elements). */
static GVariant *
array_to_fixed (json_t             *array,
                const GVariantType *array_type,
                char                elem,
                const Path         *path,
                GError            **error)
{
  gsize n = json_array_size (array);
  gsize size = 0;
  guint8 *data;
  gsize i;

  switch (elem)
    {
    case 'b': case 'y': size = 1; break;
    case 'n': case 'q': size = 2; break;
    case 'i': case 'u': case 'h': size = 4; break;
    case 'x': case 't': case 'd': size = 8; break;
    default: g_assert_not_reached ();
    }

  data = g_malloc (MAX (n * size, 1));
  for (i = 0; i < n; i++)
    {
      json_t *member = json_array_get (array, i);
      Path here = { path, PATH_INDEX, NULL, 0, i };
      guint8 *p = data + i * size;
      gint64 v;

      if (elem == 'b')
        {
          if (!json_is_boolean (member))
            {
              set_mismatch_error (error, &here, "a boolean", member);
              goto fail;
            }
          *p = json_is_true (member);
          continue;
        }
      if (elem == 'd')
        {
          double d;

          if (json_is_integer (member))
            d = (double) json_integer_value (member);
          else if (json_is_real (member))
            d = json_real_value (member);
          else
            {
              set_mismatch_error (error, &here, "a number", member);
              goto fail;
            }
          memcpy (p, &d, sizeof d);
          continue;
        }

      if (!check_integer (member, elem, &v, &here, error))
        goto fail;
      switch (size)
        {
        case 1: *p = (guint8) v; break;
        case 2: { guint16 w = (guint16) v; memcpy (p, &w, 2); } break;
        case 4: { guint32 w = (guint32) v; memcpy (p, &w, 4); } break;
        default: memcpy (p, &v, 8); break;
        }
    }

  {
    g_autoptr(GBytes) bytes = g_bytes_new_take (data, n * size);

    return g_variant_new_from_bytes (array_type, bytes, TRUE);
  }

fail:
  g_free (data);
  return NULL;
}

static GVariant *
array_to_array (json_t             *array,
                const GVariantType *array_type,
                const Path         *path,
                GError            **error)
{
  const GVariantType *elem_type = g_variant_type_element (array_type);
  const char *elem = g_variant_type_peek_string (elem_type);
  gsize n = json_array_size (array);
  Children c;
  GVariant *result;
  gsize i;

  if (strchr ("bynqiuxthd", elem[0]) != NULL)
    return array_to_fixed (array, array_type, elem[0], path, error);

  children_init (&c, n);
  for (i = 0; i < n; i++)
    {
      Path here = { path, PATH_INDEX, NULL, 0, i };
      GVariant *v = json_to_variant_typed (json_array_get (array, i), elem_type,
                                           &here, error);

      if (v == NULL)
        {
          children_clear (&c);
          return NULL;
        }
      c.children[c.n++] = v;
    }

  result = g_variant_new_array (elem_type, c.children, c.n);
  children_release (&c);
  return result;
}

static GVariant *
array_to_tuple (json_t             *array,
                const GVariantType *tuple_type,
                const Path         *path,
                GError            **error)
{
  gsize n_items = g_variant_type_n_items (tuple_type);
  gsize n = json_array_size (array);
  const GVariantType *item;
  Children c;
  GVariant *result;

  if (n != n_items)
    {
      set_params_error (error, path,
                        "expected an array of %" G_GSIZE_FORMAT " element%s, "
                        "got %" G_GSIZE_FORMAT,
                        n_items, n_items == 1 ? "" : "s", n);
      return NULL;
    }

  children_init (&c, n);
  for (item = g_variant_type_first (tuple_type);
       item != NULL;
       item = g_variant_type_next (item))
    {
      Path here = { path, PATH_INDEX, NULL, 0, c.n };
      GVariant *v = json_to_variant_typed (json_array_get (array, c.n), item,
                                           &here, error);

      if (v == NULL)
        {
          children_clear (&c);
          return NULL;
        }
      c.children[c.n++] = v;
    }

  result = g_variant_new_tuple (c.children, c.n);
  children_release (&c);
  return result;
}

static GVariant *
json_to_variant_typed (json_t             *value,
                       const GVariantType *type,
                       const Path         *path,
                       GError            **error)
{
  const char *t = g_variant_type_peek_string (type);

  /* An object as a{sv} is the undeclared mapping: the fast way. */
  if (json_is_object (value) && g_variant_type_equal (type, G_VARIANT_TYPE_VARDICT))
    return json_to_variant_undeclared (value, path, error);

  switch (t[0])
    {
    case 'b':
      if (!json_is_boolean (value))
        break;
      return g_variant_new_boolean (json_is_true (value));

    case 'y': case 'n': case 'q': case 'i': case 'u':
    case 'x': case 't': case 'h':
      {
        gint64 n;

        if (!check_integer (value, t[0], &n, path, error))
          return NULL;
        return new_integer (t[0], n);
      }

    case 'd':
      if (json_is_integer (value))
        return g_variant_new_double ((double) json_integer_value (value));
      if (json_is_real (value))
        return g_variant_new_double (json_real_value (value));
      break;

    case 's': case 'o': case 'g':
      {
        const char *str = json_string_value (value);
        gsize len;

        if (str == NULL)
          break;
        len = json_string_length (value);
        if (!check_string (str, len, path, error))
          return NULL;
        if (t[0] == 's')
          return new_checked_string (str, len);
        if (t[0] == 'o')
          {
            if (!g_variant_is_object_path (str))
              {
                set_params_error (error, path, "expected an object path, "
                                  "got a string that is not one");
                return NULL;
              }
            return g_variant_new_object_path (str);
          }
        if (!g_variant_is_signature (str))
          {
            set_params_error (error, path, "expected a type signature, "
                              "got a string that is not one");
            return NULL;
          }
        return g_variant_new_signature (str);
      }

    case 'v':
      {
        GVariant *inner = json_to_variant_undeclared (value, path, error);

        return inner != NULL ? g_variant_new_variant (inner) : NULL;
      }

    case 'm':
      {
        const GVariantType *elem_type = g_variant_type_element (type);
        GVariant *inner;

        if (json_is_null (value))
          return g_variant_new_maybe (elem_type, NULL);
        inner = json_to_variant_typed (value, elem_type, path, error);
        return inner != NULL ? g_variant_new_maybe (NULL, inner) : NULL;
      }

    case 'a':
      if (t[1] == '{')
        {
          const GVariantType *entry_type = g_variant_type_element (type);

          if (t[2] != 's')
            goto unsupported;
          if (!json_is_object (value))
            {
              set_mismatch_error (error, path, "an object", value);
              return NULL;
            }
          return object_to_dict (value, entry_type, path, error);
        }
      if (!json_is_array (value))
        {
          set_mismatch_error (error, path, "an array", value);
          return NULL;
        }
      return array_to_array (value, type, path, error);

    case '(':
      if (!json_is_array (value))
        {
          set_mismatch_error (error, path, "an array", value);
          return NULL;
        }
      return array_to_tuple (value, type, path, error);

    default:
      goto unsupported;
    }

  switch (t[0])
    {
    case 'b':
      set_mismatch_error (error, path, "a boolean", value);
      break;
    case 'd':
      set_mismatch_error (error, path, "a number", value);
      break;
    case 's':
      set_mismatch_error (error, path, "a string", value);
      break;
    case 'o':
      set_mismatch_error (error, path, "an object path", value);
      break;
    default:
      set_mismatch_error (error, path, "a type signature", value);
      break;
    }
  return NULL;

unsupported:
  set_params_error (error, path, "type '%.*s' has no JSON mapping",
                    (int) g_variant_type_get_string_length (type), t);
  return NULL;
}

/* The undeclared mapping. */
static GVariant *
json_to_variant_any (json_t     *value,
                     const Path *path,
                     GError    **error)
{
  switch (json_typeof (value))
    {
    case JSON_OBJECT:
      return object_to_dict (value, G_VARIANT_TYPE ("{sv}"), path, error);

    case JSON_ARRAY:
      {
        gsize n = json_array_size (value);
        Children c;
        GVariant *result;
        gsize i;

        children_init (&c, n);
        for (i = 0; i < n; i++)
          {
            Path here = { path, PATH_INDEX, NULL, 0, i };
            GVariant *v = json_to_variant_any (json_array_get (value, i),
                                               &here, error);

            if (v == NULL)
              {
                children_clear (&c);
                return NULL;
              }
            c.children[c.n++] = g_variant_new_variant (v);
          }
        result = g_variant_new_array (G_VARIANT_TYPE_VARIANT, c.children, c.n);
        children_release (&c);
        return result;
      }

    case JSON_STRING:
      {
        const char *str = json_string_value (value);
        gsize len = json_string_length (value);

        if (!check_string (str, len, path, error))
          return NULL;
        return new_checked_string (str, len);
      }

    case JSON_INTEGER:
      return g_variant_new_int64 (json_integer_value (value));

    case JSON_REAL:
      return g_variant_new_double (json_real_value (value));

    case JSON_TRUE:
      return g_variant_new_boolean (TRUE);

    case JSON_FALSE:
      return g_variant_new_boolean (FALSE);

    case JSON_NULL:
    default:
      return g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL);
    }
}

/* The undeclared mapping written straight in GVariant's serialised form:
 * one buffer and one GVariant, where building it as a tree costs a
 * GVariant, a type lookup and an allocation per node (measured: 8.7k
 * instructions for {"seq": 1} as a tree; docs/performance.md). It is the
 * normal form of what json_to_variant_any() builds, byte for byte
 * (tests/c/test-json.c and tests/fuzz/fuzz-json.c compare them), so the
 * GVariant can be made trusted. Anything unusual (a string that is not
 * valid UTF-8 or holds NUL, which only code can make; deep nesting) is
 * left to the tree, which reports it. */

/* Well inside GVariant's own nesting limit (128): a JSON level is three
 * GVariant levels (a{sv} → {sv} → v). */
#define SERIALISE_MAX_DEPTH 32

static void
ser_pad8 (GByteArray *out)
{
  static const guint8 zeros[8] = { 0 };

  if (out->len % 8 != 0)
    g_byte_array_append (out, zeros, 8 - out->len % 8);
}

/* GVariant's framing: the smallest offset size that can address the
 * container with @n_offsets offsets of that size added to @body. */
static guint
ser_offset_size (gsize body,
                 gsize n_offsets)
{
  if (body + n_offsets <= G_MAXUINT8)
    return 1;
  if (body + 2 * n_offsets <= G_MAXUINT16)
    return 2;
  if (body + 4 * n_offsets <= G_MAXUINT32)
    return 4;
  return 8;
}

/* Framing offsets are little-endian whatever the host. */
static void
ser_put_offset (GByteArray *out,
                guint64     value,
                guint       size)
{
  guint8 bytes[8];

  for (guint i = 0; i < size; i++)
    bytes[i] = (guint8) (value >> (8 * i));
  g_byte_array_append (out, bytes, size);
}

static const char *ser_any (GByteArray *out, json_t *value, guint depth);

/* A 'v': the value, a NUL, its type string. */
static gboolean
ser_variant (GByteArray *out,
             json_t     *value,
             guint       depth)
{
  const char *type = ser_any (out, value, depth);

  if (type == NULL)
    return FALSE;
  g_byte_array_append (out, (const guint8 *) "", 1);
  g_byte_array_append (out, (const guint8 *) type, strlen (type));
  return TRUE;
}

/* Ends of the elements of an array being written, for its framing. */
typedef struct
{
  gsize  n;
  gsize *ends;
  gsize  local[16];
} Ends;

static void
ends_init (Ends  *e,
           gsize  n)
{
  e->n = 0;
  e->ends = n <= G_N_ELEMENTS (e->local) ? e->local : g_new (gsize, n);
}

static void
ends_clear (Ends *e)
{
  if (e->ends != e->local)
    g_free (e->ends);
}

static void
ser_array_end (GByteArray *out,
               gsize       start,
               Ends       *e)
{
  guint size = ser_offset_size (out->len - start, e->n);

  for (gsize i = 0; i < e->n; i++)
    ser_put_offset (out, e->ends[i], size);
  ends_clear (e);
}

/* Writes @value, returns its type string, or NULL to leave it to the
 * tree (the output is then garbage and dropped). */
static const char *
ser_any (GByteArray *out,
         json_t     *value,
         guint       depth)
{
  switch (json_typeof (value))
    {
    case JSON_OBJECT:
      {
        gsize start = out->len;
        Ends e;
        void *iter;

        if (depth >= SERIALISE_MAX_DEPTH)
          return NULL;
        ends_init (&e, json_object_size (value));
        for (iter = json_object_iter (value); iter != NULL; iter = json_object_iter_next (value, iter))
          {
            const char *key = json_object_iter_key (iter);
            gsize key_len = json_object_iter_key_len (iter);
            gsize entry, key_end;
            guint size;

            if (memchr (key, '\0', key_len) != NULL || !g_utf8_validate_len (key, key_len, NULL))
              goto object_fail;
            /* A {sv}: the key and its NUL, padding, the variant, then the
             * key's end as the tuple's one framing offset. */
            ser_pad8 (out);
            entry = out->len;
            g_byte_array_append (out, (const guint8 *) key, key_len + 1);
            key_end = out->len - entry;
            ser_pad8 (out);
            if (!ser_variant (out, json_object_iter_value (iter), depth + 1))
              goto object_fail;
            size = ser_offset_size (out->len - entry, 1);
            ser_put_offset (out, key_end, size);
            e.ends[e.n++] = out->len - start;
          }
        ser_array_end (out, start, &e);
        return "a{sv}";

      object_fail:
        ends_clear (&e);
        return NULL;
      }

    case JSON_ARRAY:
      {
        gsize start = out->len;
        gsize n = json_array_size (value);
        Ends e;

        if (depth >= SERIALISE_MAX_DEPTH)
          return NULL;
        ends_init (&e, n);
        for (gsize i = 0; i < n; i++)
          {
            ser_pad8 (out);
            if (!ser_variant (out, json_array_get (value, i), depth + 1))
              {
                ends_clear (&e);
                return NULL;
              }
            e.ends[e.n++] = out->len - start;
          }
        ser_array_end (out, start, &e);
        return "av";
      }

    case JSON_STRING:
      {
        const char *str = json_string_value (value);
        gsize len = json_string_length (value);

        if (memchr (str, '\0', len) != NULL || !g_utf8_validate_len (str, len, NULL))
          return NULL;
        g_byte_array_append (out, (const guint8 *) str, len + 1);
        return "s";
      }

    case JSON_INTEGER:
      {
        gint64 v = json_integer_value (value);

        ser_pad8 (out);
        g_byte_array_append (out, (const guint8 *) &v, sizeof v);
        return "x";
      }

    case JSON_REAL:
      {
        double d = json_real_value (value);

        ser_pad8 (out);
        g_byte_array_append (out, (const guint8 *) &d, sizeof d);
        return "d";
      }

    case JSON_TRUE:
    case JSON_FALSE:
      {
        guint8 b = json_is_true (value);

        g_byte_array_append (out, &b, 1);
        return "b";
      }

    case JSON_NULL:
    default:
      /* Nothing, of a maybe: no bytes at all. */
      return "mv";
    }
}

GVariant *
_tether_variant_type_anchor (const GVariantType *type)
{
  g_autoptr(GBytes) empty = g_bytes_new_static ("", 0);

  return g_variant_ref_sink (g_variant_new_from_bytes (type, empty, FALSE));
}

/* Held for the life of the process (see the header). Never read, so
 * volatile: otherwise the stores go, and leak checkers see a leak. */
static GVariant *volatile undeclared_anchors[3];

void
_tether_json_anchor_undeclared_types (void)
{
  static gsize anchored;

  if (g_once_init_enter (&anchored))
    {
      undeclared_anchors[0] = _tether_variant_type_anchor (G_VARIANT_TYPE_VARDICT);
      undeclared_anchors[1] = _tether_variant_type_anchor (G_VARIANT_TYPE ("av"));
      undeclared_anchors[2] = _tether_variant_type_anchor (G_VARIANT_TYPE ("mv"));
      g_once_init_leave (&anchored, 1);
    }
}

/* The undeclared mapping: serialised when it can be, else the tree. */
static GVariant *
json_to_variant_undeclared (json_t     *value,
                            const Path *path,
                            GError    **error)
{
  GByteArray *out;
  const char *type;
  GBytes *bytes;
  GVariant *result;

  _tether_json_anchor_undeclared_types ();
  out = g_byte_array_sized_new (128);
  type = ser_any (out, value, 0);

  if (type == NULL)
    {
      g_byte_array_unref (out);
      return json_to_variant_any (value, path, error);
    }
  bytes = g_byte_array_free_to_bytes (out);
  result = g_variant_new_from_bytes (G_VARIANT_TYPE (type), bytes, TRUE);
  g_bytes_unref (bytes);
  return result;
}

GVariant *
_tether_json_to_variant_built (json_t *value)
{
  Path root = { NULL, PATH_ROOT, "params", 6, 0 };
  GVariant *result = json_to_variant_any (value, &root, NULL);

  return result != NULL ? g_variant_ref_sink (result) : NULL;
}

GVariant *
_tether_json_to_variant (json_t              *value,
                         const GVariantType  *type,
                         GError             **error)
{
  Path root = { NULL, PATH_ROOT, "params", 6, 0 };
  GVariant *result;

  g_return_val_if_fail (value != NULL, NULL);
  g_return_val_if_fail (type == NULL || g_variant_type_is_definite (type), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (type == NULL)
    result = json_to_variant_undeclared (value, &root, error);
  else
    result = json_to_variant_typed (value, type, &root, error);

  return result != NULL ? g_variant_ref_sink (result) : NULL;
}

/* @got: -1 for none. @at_least: the members before the optional ones. */
static void
set_count_error (GError **error,
                 gsize    at_least,
                 gsize    expected,
                 gssize   got)
{
  g_autofree char *got_text = got < 0 ? g_strdup ("none")
                                      : g_strdup_printf ("%" G_GSSIZE_FORMAT, got);

  if (at_least == expected)
    g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS,
                 "expected %" G_GSIZE_FORMAT " parameter%s, got %s",
                 expected, expected == 1 ? "" : "s", got_text);
  else
    g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS,
                 "expected %" G_GSIZE_FORMAT " to %" G_GSIZE_FORMAT " parameters, got %s",
                 at_least, expected, got_text);
}

gsize
_tether_json_params_n_required (const GVariantType *tuple_type)
{
  const GVariantType *item;
  gsize n = 0, i = 0;

  for (item = g_variant_type_first (tuple_type); item != NULL; item = g_variant_type_next (item))
    {
      i++;
      if (!g_variant_type_is_maybe (item))
        n = i;
    }
  return n;
}

static gboolean
is_param_name (const char * const *names,
               gsize               n_names,
               const char         *key,
               gsize               key_len)
{
  gsize i;

  for (i = 0; i < n_names; i++)
    if (strlen (names[i]) == key_len && memcmp (names[i], key, key_len) == 0)
      return TRUE;
  return FALSE;
}

static GVariant *
params_to_tuple (json_t              *params,
                 const GVariantType  *tuple_type,
                 const char * const  *names,
                 GError             **error)
{
  gsize n_items = g_variant_type_n_items (tuple_type);
  json_t *local[N_STACK_CHILDREN];
  g_autofree json_t **heap = NULL;
  json_t **members = local;
  const GVariantType *item;
  Children c;
  GVariant *result;
  gsize n_required = _tether_json_params_n_required (tuple_type);
  gsize i;

  if (params == NULL && n_required > 0)
    {
      set_count_error (error, n_required, n_items, -1);
      return NULL;
    }

  if (n_items > N_STACK_CHILDREN)
    members = heap = g_new (json_t *, n_items);

  if (params == NULL)
    {
      for (i = 0; i < n_items; i++)
        members[i] = NULL;
    }
  else if (json_is_array (params))
    {
      gsize n = json_array_size (params);

      if (n < n_required || n > n_items)
        {
          set_count_error (error, n_required, n_items, n);
          return NULL;
        }
      for (i = 0; i < n_items; i++)
        members[i] = i < n ? json_array_get (params, i) : NULL;
    }
  else if (json_is_object (params))
    {
      gsize found = 0;

      /* "()" needs no names to take "{}". */
      if (names == NULL && n_items > 0)
        {
          g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS,
                               "this method takes positional parameters only");
          return NULL;
        }

      for (i = 0; i < n_items; i++)
        {
          members[i] = json_object_get (params, names[i]);
          found += members[i] != NULL;
        }

      /* Unknown names first: a misspelt name also leaves one missing, and
       * the unknown one is what the caller has to fix. */
      if (found != json_object_size (params))
        {
          void *iter;

          for (iter = json_object_iter (params);
               iter != NULL;
               iter = json_object_iter_next (params, iter))
            {
              const char *key = json_object_iter_key (iter);
              gsize key_len = json_object_iter_key_len (iter);

              if (!is_param_name (names, n_items, key, key_len))
                {
                  g_autoptr(GString) message = g_string_new ("unknown parameter ");

                  append_quoted (message, key, key_len, '\'');
                  g_set_error_literal (error, TETHER_ERROR,
                                       TETHER_ERROR_INVALID_PARAMS,
                                       message->str);
                  return NULL;
                }
            }
        }
      for (i = 0; i < n_required; i++)
        {
          if (members[i] == NULL)
            {
              g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS,
                           "missing parameter '%s'", names[i]);
              return NULL;
            }
        }
    }
  else
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS,
                   "params must be an array or an object, got %s",
                   describe_json (params));
      return NULL;
    }

  children_init (&c, n_items);
  for (item = g_variant_type_first (tuple_type);
       item != NULL;
       item = g_variant_type_next (item))
    {
      Path here = { NULL, PATH_PARAM, names != NULL ? names[c.n] : NULL, 0, c.n };
      GVariant *v;

      /* Left out: an optional member is Nothing, as null would be. */
      if (members[c.n] == NULL)
        v = g_variant_new_maybe (g_variant_type_element (item), NULL);
      else
        v = json_to_variant_typed (members[c.n], item, &here, error);

      if (v == NULL)
        {
          children_clear (&c);
          return NULL;
        }
      c.children[c.n++] = v;
    }

  result = g_variant_new_tuple (c.children, c.n);
  children_release (&c);
  return result;
}

GVariant *
_tether_json_params_to_variant (json_t             *params,
                                const char         *signature,
                                const char * const *param_names,
                                GError            **error)
{
  Path root = { NULL, PATH_ROOT, "params", 6, 0 };
  const GVariantType *type;
  GVariant *result;

  g_return_val_if_fail (signature == NULL ||
                        g_variant_type_string_is_valid (signature), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (signature == NULL)
    {
      if (params == NULL)
        return NULL;
      if (!json_is_array (params) && !json_is_object (params))
        {
          g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS,
                       "params must be an array or an object, got %s",
                       describe_json (params));
          return NULL;
        }
      result = json_to_variant_undeclared (params, &root, error);
    }
  else
    {
      type = G_VARIANT_TYPE (signature);
      g_return_val_if_fail (g_variant_type_is_definite (type), NULL);

      if (g_variant_type_is_tuple (type))
        {
          g_return_val_if_fail (param_names == NULL ||
                                g_strv_length ((char **) param_names) ==
                                g_variant_type_n_items (type), NULL);
          result = params_to_tuple (params, type, param_names, error);
        }
      else if (params == NULL)
        {
          g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS,
                               "missing params");
          return NULL;
        }
      else
        {
          result = json_to_variant_typed (params, type, &root, error);
        }
    }

  return result != NULL ? g_variant_ref_sink (result) : NULL;
}
