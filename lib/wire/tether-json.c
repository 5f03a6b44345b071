/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-json-private.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "tether-error.h"

/* Strict JSON: the parser and the writer (the contract is in
 * tether-json-private.h, the reasons for jansson in docs/json.md). The
 * GVariant ⇄ JSON mapping is in tether-json-variant.c. */

/* ------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------ */

static void
set_parse_error (GError             **error,
                 const json_error_t  *jerror)
{
  g_autofree char *text = NULL;
  TetherError code = TETHER_ERROR_INVALID_MESSAGE;
  const char *what = "Invalid JSON";

  /* jansson quotes the offending input after "near"; keep it UTF-8. */
  if (!g_utf8_validate (jerror->text, -1, NULL))
    text = g_utf8_make_valid (jerror->text, -1);
  else
    text = g_strdup (jerror->text);

  switch (json_error_code (jerror))
    {
    case json_error_stack_overflow:
      /* jansson's own cap (2048), reached before Tether's walk can run. */
      code = TETHER_ERROR_TOO_DEEP;
      what = "JSON nested too deeply";
      break;
    case json_error_out_of_memory:
      code = TETHER_ERROR_FAILED;
      what = "Out of memory parsing JSON";
      break;
    default:
      break;
    }

  g_set_error (error, TETHER_ERROR, code, "%s at line %d, column %d: %s",
               what, jerror->line, jerror->column, text);
}

/* Tether reads JSON itself: one pass over the bytes, building jansson
 * values directly. jansson's reader goes through a character stream with a
 * function call and a UTF-8 check per byte and a growing buffer per token;
 * on a typical request it cost ~25k instructions where this costs a tenth
 * (docs/performance.md). It accepts nothing that jansson with
 * JSON_DECODE_ANY | JSON_REJECT_DUPLICATES refuses, and builds equal
 * values; anything it does not accept (errors, but also numbers of 64
 * characters or more and nesting past FAST_MAX_DEPTH) goes to jansson,
 * whose verdict and error message stand. tests/c/test-json.c compares both on the conformance
 * corpus and tests/fuzz/fuzz-json.c on whatever the fuzzer makes. */

typedef struct
{
  const char *p;
  const char *end;
  guint       depth;
  guint       max_depth;
  GString    *scratch;  /* unescaped strings; only when they have escapes */
} Reader;

static json_t *read_value (Reader *r);

static inline void
skip_space (Reader *r)
{
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
    r->p++;
}

static int
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static gboolean
read_hex4 (Reader   *r,
           gunichar *out)
{
  gunichar value = 0;

  if (r->end - r->p < 4)
    return FALSE;
  for (int i = 0; i < 4; i++)
    {
      int h = hex_value (r->p[i]);

      if (h < 0)
        return FALSE;
      value = value * 16 + (gunichar) h;
    }
  r->p += 4;
  *out = value;
  return TRUE;
}

/* After the opening quote. Sets *str, *len to the string's bytes: in the
 * input when it has no escapes, else in r->scratch. */
static gboolean
read_string (Reader      *r,
             const char **str,
             gsize       *len)
{
  const char *start = r->p;
  gboolean escaped = FALSE;

  for (;;)
    {
      const char *run = r->p;

      while (r->p < r->end && (guchar) *r->p >= 0x20 && *r->p != '"' && *r->p != '\\')
        r->p++;
      if (r->p >= r->end || (guchar) *r->p < 0x20)
        return FALSE;
      /* Raw bytes must be UTF-8 as they stand (no overlong forms, no
         * surrogates, nothing past U+10FFFF), as jansson requires. */
      if (!g_utf8_validate_len (run, r->p - run, NULL))
        return FALSE;
      if (escaped)
        g_string_append_len (r->scratch, run, r->p - run);
      if (*r->p == '"')
        break;

      /* A backslash. */
      if (!escaped)
        {
          escaped = TRUE;
          if (r->scratch == NULL)
            r->scratch = g_string_sized_new (64);
          g_string_truncate (r->scratch, 0);
          g_string_append_len (r->scratch, start, r->p - start);
        }
      if (++r->p >= r->end)
        return FALSE;
      switch (*r->p++)
        {
        case '"': g_string_append_c (r->scratch, '"'); break;
        case '\\': g_string_append_c (r->scratch, '\\'); break;
        case '/': g_string_append_c (r->scratch, '/'); break;
        case 'b': g_string_append_c (r->scratch, '\b'); break;
        case 'f': g_string_append_c (r->scratch, '\f'); break;
        case 'n': g_string_append_c (r->scratch, '\n'); break;
        case 'r': g_string_append_c (r->scratch, '\r'); break;
        case 't': g_string_append_c (r->scratch, '\t'); break;
        case 'u':
          {
            gunichar c;

            if (!read_hex4 (r, &c))
              return FALSE;
            /* No NUL (GVariant strings cannot hold one), surrogates only
             * as a high-low pair. */
            if (c == 0 || (c >= 0xDC00 && c <= 0xDFFF))
              return FALSE;
            if (c >= 0xD800 && c <= 0xDBFF)
              {
                gunichar low;

                if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
                  return FALSE;
                r->p += 2;
                if (!read_hex4 (r, &low) || low < 0xDC00 || low > 0xDFFF)
                  return FALSE;
                c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
              }
            g_string_append_unichar (r->scratch, c);
          }
          break;
        default:
          return FALSE;
        }
    }

  if (escaped)
    {
      *str = r->scratch->str;
      *len = r->scratch->len;
    }
  else
    {
      *str = start;
      *len = r->p - start;
    }
  r->p++; /* the closing quote */
  return TRUE;
}

static json_t *
read_number (Reader *r)
{
  const char *start = r->p;
  gboolean integer = TRUE;
  char buf[64];
  gsize n;
  char *endptr;

  if (r->p < r->end && *r->p == '-')
    r->p++;
  if (r->p >= r->end || !g_ascii_isdigit (*r->p))
    return NULL;
  if (*r->p == '0')
    {
      r->p++;
      if (r->p < r->end && g_ascii_isdigit (*r->p))
        return NULL;
    }
  else
    while (r->p < r->end && g_ascii_isdigit (*r->p))
      r->p++;
  if (r->p < r->end && *r->p == '.')
    {
      integer = FALSE;
      r->p++;
      if (r->p >= r->end || !g_ascii_isdigit (*r->p))
        return NULL;
      while (r->p < r->end && g_ascii_isdigit (*r->p))
        r->p++;
    }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E'))
    {
      integer = FALSE;
      r->p++;
      if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
        r->p++;
      if (r->p >= r->end || !g_ascii_isdigit (*r->p))
        return NULL;
      while (r->p < r->end && g_ascii_isdigit (*r->p))
        r->p++;
    }

  /* The input need not be terminated: convert from a copy. Longer
   * numbers are rare enough to leave to jansson. */
  n = r->p - start;
  if (n >= sizeof buf)
    return NULL;
  memcpy (buf, start, n);
  buf[n] = '\0';

  errno = 0;
  if (integer)
    {
      gint64 value = g_ascii_strtoll (buf, &endptr, 10);

      if (errno != 0 || *endptr != '\0')
        return NULL;
      return json_integer (value);
    }
  else
    {
      double value = g_ascii_strtod (buf, &endptr);

      /* Overflow is an error for jansson; underflow is not. */
      if (*endptr != '\0' || !isfinite (value))
        return NULL;
      return json_real (value);
    }
}

static gboolean
read_literal (Reader     *r,
              const char *word,
              gsize       len)
{
  if ((gsize) (r->end - r->p) < len || memcmp (r->p, word, len) != 0)
    return FALSE;
  r->p += len;
  return TRUE;
}

/* Just after an opening bracket: TRUE, past it, if @close follows. */
static gboolean
read_empty (Reader *r,
            char    close)
{
  skip_space (r);
  if (r->p < r->end && *r->p == close)
    {
      r->p++;
      return TRUE;
    }
  return FALSE;
}

/* After a member or an element: TRUE at a comma, or at @close with *done
 * set (past either); FALSE for anything else. */
static gboolean
read_next (Reader   *r,
           char      close,
           gboolean *done)
{
  skip_space (r);
  if (r->p >= r->end)
    return FALSE;
  *done = *r->p == close;
  return *r->p++ == (*done ? close : ',');
}

/* `"key":`. The key may be in r->scratch, which the next string reuses. */
static gboolean
read_key (Reader      *r,
          const char **key,
          gsize       *key_len)
{
  skip_space (r);
  if (r->p >= r->end || *r->p != '"')
    return FALSE;
  r->p++;
  if (!read_string (r, key, key_len))
    return FALSE;
  skip_space (r);
  if (r->p >= r->end || *r->p != ':')
    return FALSE;
  r->p++;
  return TRUE;
}

static json_t *
read_object (Reader *r)
{
  json_t *object = json_object ();
  gboolean done = read_empty (r, '}');

  while (!done)
    {
      const char *key;
      gsize key_len;
      g_autofree char *key_copy = NULL;
      json_t *member;

      if (!read_key (r, &key, &key_len))
        goto fail;
      if (r->scratch != NULL && key == r->scratch->str)
        key = key_copy = g_strndup (key, key_len);
      if (json_object_getn (object, key, key_len) != NULL)
        goto fail;
      member = read_value (r);
      if (member == NULL)
        goto fail;
      json_object_setn_new_nocheck (object, key, key_len, member);
      if (!read_next (r, '}', &done))
        goto fail;
    }
  return object;

fail:
  json_decref (object);
  return NULL;
}

static json_t *
read_array (Reader *r)
{
  json_t *array = json_array ();
  gboolean done = read_empty (r, ']');

  while (!done)
    {
      json_t *element = read_value (r);

      if (element == NULL)
        goto fail;
      json_array_append_new (array, element);
      if (!read_next (r, ']', &done))
        goto fail;
    }
  return array;

fail:
  json_decref (array);
  return NULL;
}

static json_t *
read_value (Reader *r)
{
  json_t *value = NULL;

  skip_space (r);
  if (r->p >= r->end)
    return NULL;

  switch (*r->p)
    {
    case '{':
    case '[':
      if (++r->depth > r->max_depth)
        return NULL;
      r->p++;
      value = *(r->p - 1) == '{' ? read_object (r) : read_array (r);
      r->depth--;
      return value;
    case '"':
      {
        const char *str;
        gsize len;

        r->p++;
        if (!read_string (r, &str, &len))
          return NULL;
        return json_stringn_nocheck (str, len);
      }
    case 't':
      return read_literal (r, "true", 4) ? json_true () : NULL;
    case 'f':
      return read_literal (r, "false", 5) ? json_false () : NULL;
    case 'n':
      return read_literal (r, "null", 4) ? json_null () : NULL;
    default:
      return read_number (r);
    }
}

/* Recursion here is bounded by this (two small frames a level); deeper
 * input, allowed only where Tether's own limit is higher, is jansson's. */
#define FAST_MAX_DEPTH 512

json_t *
_tether_json_read (const char *data,
            gsize       len,
            guint       max_depth)
{
  Reader r = { data, data + len, 0, MIN (max_depth, FAST_MAX_DEPTH), NULL };
  json_t *value = read_value (&r);

  if (value != NULL)
    {
      skip_space (&r);
      if (r.p != r.end)
        g_clear_pointer (&value, json_decref);
    }
  if (r.scratch != NULL)
    g_string_free (r.scratch, TRUE);
  return value;
}

gboolean
_tether_json_read_members (const char         *data,
                           gsize               len,
                           guint               max_depth,
                           const char * const *names,
                           json_t            **values)
{
  Reader r = { data, data + len, 1, MIN (max_depth, FAST_MAX_DEPTH), NULL };
  guint n = g_strv_length ((char **) names);
  gboolean ok = FALSE;

  gboolean done;

  memset (values, 0, n * sizeof *values);
  skip_space (&r);
  if (r.p >= r.end || *r.p != '{' || max_depth < 1)
    goto out;
  r.p++;
  done = read_empty (&r, '}');
  while (!done)
    {
      const char *key;
      gsize key_len;
      guint i;

      if (!read_key (&r, &key, &key_len))
        goto out;
      for (i = 0; i < n; i++)
        if (strlen (names[i]) == key_len && memcmp (names[i], key, key_len) == 0)
          break;
      /* Another member, or one given twice: not ours to judge. */
      if (i == n || values[i] != NULL)
        goto out;
      values[i] = read_value (&r);
      if (values[i] == NULL || !read_next (&r, '}', &done))
        goto out;
    }
  skip_space (&r);
  ok = r.p == r.end;

out:
  if (!ok)
    for (guint i = 0; i < n; i++)
      g_clear_pointer (&values[i], json_decref);
  if (r.scratch != NULL)
    g_string_free (r.scratch, TRUE);
  return ok;
}

typedef struct
{
  json_t *container;
  void   *iter;    /* next member, for objects */
  size_t  index;   /* next element, for arrays */
} DepthFrame;

static void
depth_frame_init (DepthFrame *frame,
                  json_t     *container)
{
  frame->container = container;
  frame->index = 0;
  frame->iter = json_is_object (container) ? json_object_iter (container) : NULL;
}

static json_t *
depth_frame_next (DepthFrame *frame)
{
  json_t *child;

  if (json_is_array (frame->container))
    return json_array_get (frame->container, frame->index++);

  if (frame->iter == NULL)
    return NULL;
  child = json_object_iter_value (frame->iter);
  frame->iter = json_object_iter_next (frame->container, frame->iter);
  return child;
}

/* Depth of @value, or any value above @limit as soon as that is known.
 * Iterative, so that a value built in code rather than parsed (jansson
 * stops parsing at 2048) cannot exhaust the C stack. */
static guint
json_depth_bounded (json_t *value,
                    guint   limit)
{
  DepthFrame local[32];
  g_autofree DepthFrame *heap = NULL;
  DepthFrame *stack = local;
  gsize capacity = G_N_ELEMENTS (local);
  gsize n = 1;
  guint depth = 1;

  if (!json_is_array (value) && !json_is_object (value))
    return 0;

  depth_frame_init (&stack[0], value);
  while (n > 0 && depth <= limit)
    {
      json_t *child = depth_frame_next (&stack[n - 1]);

      if (child == NULL)
        {
          n--;
          continue;
        }
      if (!json_is_array (child) && !json_is_object (child))
        continue;

      if (n == capacity)
        {
          if (heap == NULL)
            {
              heap = g_new (DepthFrame, capacity * 2);
              memcpy (heap, local, sizeof local);
            }
          else
            {
              heap = g_renew (DepthFrame, heap, capacity * 2);
            }
          stack = heap;
          capacity *= 2;
        }
      depth_frame_init (&stack[n++], child);
      depth = MAX (depth, (guint) n);
    }

  return depth;
}

guint
_tether_json_depth (json_t *value)
{
  g_return_val_if_fail (value != NULL, 0);

  return json_depth_bounded (value, G_MAXUINT);
}

json_t *
_tether_json_parse (const char  *data,
                    gsize        len,
                    guint        max_depth,
                    GError     **error)
{
  json_error_t jerror;
  json_t *value;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  value = _tether_json_read (data != NULL ? data : "", len, max_depth > 0 ? max_depth : G_MAXUINT);
  if (value != NULL)
    return value;

  /* Not accepted above: jansson's verdict, with its message. No
   * JSON_ALLOW_NUL: GVariant strings cannot hold NUL, and the rest of
   * Tether reads strings with json_string_value(), which would silently
   * truncate at one. So "\u0000" is refused here, with everything else
   * that is not valid (docs/json.md). */
  value = json_loadb (data != NULL ? data : "", len,
                      JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerror);
  if (value == NULL)
    {
      set_parse_error (error, &jerror);
      return NULL;
    }

  if (max_depth > 0 && json_depth_bounded (value, max_depth) > max_depth)
    {
      json_decref (value);
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_TOO_DEEP,
                   "JSON is nested deeper than %u levels", max_depth);
      return NULL;
    }

  return value;
}

/* ------------------------------------------------------------------------
 * Serialising
 * ------------------------------------------------------------------------ */

/* Tether writes JSON itself, from jansson values and straight from
 * GVariant, into the caller's GString: no intermediate tree, no callback
 * per token. Measured with callgrind (docs/performance.md), a typical
 * request cost 15.5k instructions through json_pack() + json_dump_callback()
 * and about 1.5k this way. The output is byte for byte what jansson writes
 * with JSON_COMPACT | JSON_REAL_PRECISION (17), which tests/c/test-json.c
 * checks by round trips through jansson. */

/* Deeper than anything parsing produces (jansson stops at 2048) or GVariant
 * can hold (128): only a reference loop built in code gets here. */
#define MAX_WRITE_DEPTH 2100

static const char hex_digits[] = "0123456789ABCDEF";

void
_tether_json_write_string (GString    *out,
                           const char *str,
                           gsize       len)
{
  const char *p = str;
  const char *end = str + len;
  const char *run = p;
  g_autofree char *valid = NULL;

  /* Strings reach here from jansson (valid) or GVariant (valid unless
   * bad data was passed as trusted); keep to JSON whatever happens. */
  if (G_UNLIKELY (!g_utf8_validate_len (str, len, NULL)))
    {
      valid = g_utf8_make_valid (str, len);
      p = run = valid;
      end = valid + strlen (valid);
    }

  g_string_append_c (out, '"');
  for (; p < end; p++)
    {
      guchar c = (guchar) *p;
      const char *escape;
      char seq[6];

      if (G_LIKELY (c >= 0x20 && c != '"' && c != '\\'))
        continue;

      g_string_append_len (out, run, p - run);
      run = p + 1;
      switch (c)
        {
        case '"': escape = "\\\""; break;
        case '\\': escape = "\\\\"; break;
        case '\b': escape = "\\b"; break;
        case '\f': escape = "\\f"; break;
        case '\n': escape = "\\n"; break;
        case '\r': escape = "\\r"; break;
        case '\t': escape = "\\t"; break;
        default:
          seq[0] = '\\'; seq[1] = 'u'; seq[2] = '0'; seq[3] = '0';
          seq[4] = hex_digits[c >> 4]; seq[5] = hex_digits[c & 0xF];
          g_string_append_len (out, seq, sizeof seq);
          continue;
        }
      g_string_append_len (out, escape, 2);
    }
  g_string_append_len (out, run, end - run);
  g_string_append_c (out, '"');
}

void
_tether_json_write_int (GString *out,
                        gint64   value)
{
  char buf[24];
  char *p = buf + sizeof buf;
  guint64 u = value < 0 ? -(guint64) value : (guint64) value;

  do
    *--p = (char) ('0' + u % 10);
  while ((u /= 10) != 0);
  if (value < 0)
    *--p = '-';
  g_string_append_len (out, p, buf + sizeof buf - p);
}

/* As jansson's jsonp_dtostr(): "%.17g", then a ".0" where nothing says it
 * is a real, and the exponent without '+' or leading zeros. Non-finite
 * values have no JSON form: the caller writes null. */
void
_tether_json_write_real (GString *out,
                         double   value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE + 4];
  char *e;

  g_ascii_formatd (buf, G_ASCII_DTOSTR_BUF_SIZE, "%.17g", value);
  e = strchr (buf, 'e');
  if (e == NULL)
    {
      g_string_append (out, buf);
      if (strchr (buf, '.') == NULL)
        TETHER_APPEND_LITERAL (out, ".0");
      return;
    }
  g_string_append_len (out, buf, e + 1 - buf);
  e++;
  if (*e == '-')
    g_string_append_c (out, *e++);
  else if (*e == '+')
    e++;
  while (*e == '0' && e[1] != '\0')
    e++;
  g_string_append (out, e);
}

static gboolean
write_json (GString *out,
            json_t  *value,
            guint    depth)
{
  if (depth > MAX_WRITE_DEPTH)
    return FALSE;

  switch (json_typeof (value))
    {
    case JSON_OBJECT:
      {
        const char *key;
        json_t *member;
        gboolean first = TRUE;

        g_string_append_c (out, '{');
        json_object_foreach (value, key, member)
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            _tether_json_write_string (out, key, strlen (key));
            g_string_append_c (out, ':');
            if (!write_json (out, member, depth + 1))
              return FALSE;
          }
        g_string_append_c (out, '}');
        return TRUE;
      }
    case JSON_ARRAY:
      {
        gsize i;
        json_t *element;

        g_string_append_c (out, '[');
        json_array_foreach (value, i, element)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            if (!write_json (out, element, depth + 1))
              return FALSE;
          }
        g_string_append_c (out, ']');
        return TRUE;
      }
    case JSON_STRING:
      _tether_json_write_string (out, json_string_value (value), json_string_length (value));
      return TRUE;
    case JSON_INTEGER:
      _tether_json_write_int (out, json_integer_value (value));
      return TRUE;
    case JSON_REAL:
      _tether_json_write_real (out, json_real_value (value));
      return TRUE;
    case JSON_TRUE:
      TETHER_APPEND_LITERAL (out, "true");
      return TRUE;
    case JSON_FALSE:
      TETHER_APPEND_LITERAL (out, "false");
      return TRUE;
    case JSON_NULL:
    default:
      TETHER_APPEND_LITERAL (out, "null");
      return TRUE;
    }
}

gboolean
_tether_json_write (GString *out,
                    json_t  *value)
{
  gsize start = out->len;

  g_return_val_if_fail (value != NULL, FALSE);

  if (!write_json (out, value, 0))
    {
      g_string_truncate (out, start);
      return FALSE;
    }
  return TRUE;
}

char *
_tether_json_dump (json_t *value,
                   gsize  *len_out)
{
  GString *out = g_string_sized_new (128);

  g_return_val_if_fail (value != NULL, NULL);

  if (!_tether_json_write (out, value))
    {
      g_string_free (out, TRUE);
      if (len_out != NULL)
        *len_out = 0;
      return NULL;
    }
  if (len_out != NULL)
    *len_out = out->len;
  return g_string_free (out, FALSE);
}

