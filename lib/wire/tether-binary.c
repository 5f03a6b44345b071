/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Binary frames (see tether-binary-private.h and docs/protocol.md).
 *
 * Header, 16 bytes, little-endian:
 *   0      kind, 'Q' (request) or 'R' (result)
 *   1      Q: impersonation level granted, 0xff when it does not say; R: 0
 *   2..3   Q: length of the method name; R: 0
 *   4..7   Q: timeout in ms, 0xffffffff when it does not say; R: 0
 *   8..15  id, > 0
 * then the method name (Q), zero padding to a multiple of 8, and the value
 * serialised as a GVariant of type "v" (its data, a 0 byte, its type
 * string), little-endian like the header. A request without params ends
 * after the method name. */

#include <math.h>
#include <string.h>

#include "tether-binary-private.h"
#include "tether-error.h"
#include "tether-json-private.h"
#include "tether-message-private.h"

#define HEADER_SIZE 16
#define ALIGN8(n)   (((n) + 7) & ~(gsize) 7)

static void
put_le (guchar *p,
        guint64 v,
        guint   n)
{
  for (guint i = 0; i < n; i++)
    p[i] = (v >> (8 * i)) & 0xff;
}

static guint64
get_le (const guchar *p,
        guint         n)
{
  guint64 v = 0;

  for (guint i = 0; i < n; i++)
    v |= (guint64) p[i] << (8 * i);
  return v;
}

static GString *
frame_new (TetherFrameKind kind,
           gint64          id,
           guint           imp,
           gsize           method_len,
           guint32         timeout)
{
  GString *frame = g_string_sized_new (128);
  guchar *h;

  g_string_set_size (frame, HEADER_SIZE);
  h = (guchar *) frame->str;
  h[0] = kind;
  h[1] = imp;
  put_le (h + 2, method_len, 2);
  put_le (h + 4, timeout, 4);
  put_le (h + 8, (guint64) id, 8);
  return frame;
}

GString *
_tether_frame_new_request (gint64      id,
                           const char *method,
                           gint64      timeout_ms,
                           int         imp)
{
  gsize len = strlen (method);
  GString *frame;

  g_return_val_if_fail (len > 0 && len <= G_MAXUINT16, NULL);
  frame = frame_new (TETHER_FRAME_REQUEST, id, imp < 0 ? TETHER_FRAME_IMP_ABSENT : (guint) imp, len,
                     timeout_ms < 0 ? TETHER_FRAME_TIMEOUT_ABSENT
                                    : (guint32) MIN (timeout_ms, (gint64) G_MAXUINT32 - 1));
  g_string_append_len (frame, method, len);
  return frame;
}

GString *
_tether_frame_new_result (gint64 id)
{
  return frame_new (TETHER_FRAME_RESULT, id, 0, 0, 0);
}

void
_tether_frame_append_value (GString  *frame,
                            GVariant *value)
{
  g_autoptr(GVariant) sunk = g_variant_ref_sink (value);
  const char *type = g_variant_get_type_string (value);
  gsize size;
  gsize start = ALIGN8 (frame->len);

#if G_BYTE_ORDER == G_BIG_ENDIAN
  g_autoptr(GVariant) swapped = g_variant_byteswap (value);

  value = swapped;
#endif
  size = g_variant_get_size (value);

  /* Zero padding (g_string_set_size leaves it undefined). */
  while (frame->len < start)
    g_string_append_c (frame, '\0');
  g_string_set_size (frame, start + size);
  if (size > 0)
    g_variant_store (value, frame->str + start);
  g_string_append_c (frame, '\0');
  g_string_append (frame, type);
}

static gboolean
frame_error (GError    **error,
             const char *what)
{
  g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE, "Malformed binary frame: %s", what);
  return FALSE;
}

gboolean
_tether_frame_parse (GBytes       *bytes,
                     TetherFrame  *frame,
                     GError      **error)
{
  gsize len;
  const guchar *data = g_bytes_get_data (bytes, &len);
  gsize method_len, value_start, zero;
  guint32 timeout;
  const char *type_end;
  char type_buf[64];
  g_autofree char *type_heap = NULL;
  char *type;
  gsize type_len;
  g_autoptr(GBytes) value_bytes = NULL;

  memset (frame, 0, sizeof *frame);
  frame->timeout_ms = -1;
  frame->imp = -1;

  if (len < HEADER_SIZE)
    return frame_error (error, "shorter than its header");
  frame->kind = data[0];
  method_len = get_le (data + 2, 2);
  timeout = get_le (data + 4, 4);
  frame->id = (gint64) get_le (data + 8, 8);
  if (frame->id <= 0)
    return frame_error (error, "the id must be a positive integer");

  switch (frame->kind)
    {
    case TETHER_FRAME_REQUEST:
      if (data[1] != TETHER_FRAME_IMP_ABSENT)
        {
          /* A level that needs a token is sent as JSON, with the token. */
          if (data[1] > 1)
            return frame_error (error, "unknown impersonation level");
          frame->imp = data[1];
        }
      if (timeout != TETHER_FRAME_TIMEOUT_ABSENT)
        frame->timeout_ms = timeout;
      if (method_len == 0 || method_len > len - HEADER_SIZE)
        return frame_error (error, "bad method length");
      if (memchr (data + HEADER_SIZE, '\0', method_len) != NULL ||
          !g_utf8_validate ((const char *) data + HEADER_SIZE, method_len, NULL))
        return frame_error (error, "the method name is not valid UTF-8");
      break;
    case TETHER_FRAME_RESULT:
      if (data[1] != 0 || method_len != 0 || timeout != 0)
        return frame_error (error, "reserved header bytes are not zero");
      break;
    default:
      return frame_error (error, "unknown kind");
    }

  value_start = ALIGN8 (HEADER_SIZE + method_len);
  if (len == HEADER_SIZE + method_len && frame->kind == TETHER_FRAME_REQUEST)
    goto done;   /* no params */
  if (len <= value_start)
    return frame_error (error, "no value");
  for (gsize i = HEADER_SIZE + method_len; i < value_start; i++)
    if (data[i] != 0)
      return frame_error (error, "padding is not zero");

  /* "v": the value's data, a 0 byte, its type string (no 0 in it). */
  zero = len;
  while (zero > value_start && data[zero - 1] != '\0')
    zero--;
  if (zero == value_start)
    return frame_error (error, "the value has no type");
  zero--;
  type_len = len - zero - 1;
  type = type_len < sizeof type_buf ? type_buf : (type_heap = g_malloc (type_len + 1));
  memcpy (type, data + zero + 1, type_len);
  type[type_len] = '\0';
  if (type_len == 0 || !g_variant_type_string_scan (type, type + type_len, &type_end) ||
      type_end != type + type_len || !g_variant_type_is_definite ((const GVariantType *) type))
    return frame_error (error, "the value's type is not a valid definite type");

  /* The common types' information stays (see tether-json-private.h). */
  _tether_json_anchor_undeclared_types ();
  value_bytes = g_bytes_new_from_bytes (bytes, value_start, zero - value_start);
  frame->value = g_variant_ref_sink (g_variant_new_from_bytes ((const GVariantType *) type, value_bytes,
                                                               FALSE));
#if G_BYTE_ORDER == G_BIG_ENDIAN
  {
    GVariant *swapped = g_variant_byteswap (frame->value);

    g_variant_unref (frame->value);
    frame->value = swapped;
  }
#endif

done:
  if (frame->kind == TETHER_FRAME_REQUEST)
    frame->method = g_strndup ((const char *) data + HEADER_SIZE, method_len);
  return TRUE;
}

void
_tether_frame_clear (TetherFrame *frame)
{
  g_clear_pointer (&frame->method, g_free);
  g_clear_pointer (&frame->value, g_variant_unref);
}

/* ------------------------------------------------------------------------
 * The codec: TetherMessage ⇄ frame
 * ------------------------------------------------------------------------ */

gboolean
_tether_frame_fits (const TetherMessage *message)
{
  const char *method = message->method;

  if (message->id.kind != TETHER_ID_INT || message->id.num <= 0)
    return FALSE;
  if (message->kind == TETHER_MESSAGE_RESULT)
    return message->value != NULL;
  /* A frame carries a level that needs no token, and a name that is
   * UTF-8, not empty and at most 64 KiB (JSON repairs a name that is not
   * UTF-8; the frame's reader refuses it). */
  return message->kind == TETHER_MESSAGE_REQUEST && message->meta.token == NULL &&
         message->meta.act_as == NULL && message->meta.detached == NULL &&
         message->meta.imp < TETHER_IMPERSONATION_LEVEL_IMPERSONATE &&
         !g_str_has_prefix (method, "rpc.") && method[0] != '\0' &&
         strlen (method) <= G_MAXUINT16 && g_utf8_validate (method, -1, NULL);
}

GString *
_tether_frame_encode (const TetherMessage *message)
{
  GString *frame;

  g_return_val_if_fail (_tether_frame_fits (message), NULL);

  if (message->kind == TETHER_MESSAGE_RESULT)
    frame = _tether_frame_new_result (message->id.num);
  else
    frame = _tether_frame_new_request (message->id.num, message->method, message->meta.timeout_ms,
                                       message->meta.imp);
  if (message->value != NULL)
    _tether_frame_append_value (frame, message->value);
  return frame;
}

void
_tether_frame_decode (GBytes        *bytes,
                      TetherMessage *message)
{
  TetherFrame frame;
  g_autoptr(GError) error = NULL;

  _tether_message_init (message);
  if (!_tether_frame_parse (bytes, &frame, &error))
    {
      message->kind = TETHER_MESSAGE_INVALID;
      message->code = TETHER_REMOTE_ERROR_INVALID_REQUEST;
      message->text = g_strdup (error->message);
      /* As for JSON: never answer what looks like a response. */
      message->answer = frame.kind != TETHER_FRAME_RESULT;
      _tether_frame_clear (&frame);
      return;
    }

  message->id.kind = TETHER_ID_INT;
  message->id.num = frame.id;
  if (frame.value != NULL)
    {
      message->payload.codec = TETHER_CODEC_BINARY;
      message->payload.data = g_steal_pointer (&frame.value);
    }
  if (frame.kind == TETHER_FRAME_REQUEST)
    {
      message->kind = TETHER_MESSAGE_REQUEST;
      message->method = g_steal_pointer (&frame.method);
      message->has_meta = TRUE;
      message->meta.timeout_ms = frame.timeout_ms;
      message->meta.imp = frame.imp;
    }
  else
    message->kind = TETHER_MESSAGE_RESULT;
  _tether_frame_clear (&frame);
}

/* ------------------------------------------------------------------------
 * What a value means
 * ------------------------------------------------------------------------ */

/* GVariant's framing offsets are as wide as the container needs. */
static guint
offset_size (gsize size)
{
  return size > G_MAXUINT32 ? 8 : size > G_MAXUINT16 ? 4 : size > G_MAXUINT8 ? 2 : size > 0 ? 1 : 0;
}

static gboolean plain_value (const guchar *data, gsize size, const char *type, gsize type_len,
                             guint depth, guint max_depth);

static gboolean
zeros (const guchar *data,
       gsize         from,
       gsize         to)
{
  for (gsize i = from; i < to; i++)
    if (data[i] != 0)
      return FALSE;
  return TRUE;
}

/* An "s" in normal form: UTF-8, one 0 byte, at the end. */
static gboolean
plain_string (const guchar *data,
              gsize         size)
{
  return size > 0 && data[size - 1] == '\0' && memchr (data, '\0', size - 1) == NULL &&
         g_utf8_validate_len ((const char *) data, size - 1, NULL);
}

/* A "v" whose content is plain. */
static gboolean
plain_variant (const guchar *data,
               gsize         size,
               guint         depth,
               guint         max_depth)
{
  gsize zero = size;

  while (zero > 0 && data[zero - 1] != '\0')
    zero--;
  if (zero == 0)
    return FALSE;
  return plain_value (data, zero - 1, (const char *) data + zero, size - zero, depth, max_depth);
}

static gboolean
key_seen (const guchar **keys,
          guint          n,
          const guchar  *key)
{
  for (guint i = 0; i < n; i++)
    if (strcmp ((const char *) keys[i], (const char *) key) == 0)
      return TRUE;
  return FALSE;
}

/* av or a{sv}: variable-size elements aligned to 8, then one framing
 * offset (the element's end) each, as wide as the array needs. Normal
 * form: zero padding, the table right after the last element, every
 * element plain; keys distinct (JSON refuses duplicates; larger dicts
 * are left to the JSON mapping rather than checked here). */
static gboolean
plain_array (const guchar *data,
             gsize         size,
             gboolean      dict,
             guint         depth,
             guint         max_depth)
{
  const guchar *keys[16];
  guint osz = offset_size (size);
  gsize table, n, start = 0, end = 0;

  if (++depth > max_depth)
    return FALSE;
  if (size == 0)
    return TRUE;
  table = get_le (data + size - osz, osz);
  if (table == 0 || table > size || (size - table) % osz != 0)
    return FALSE;
  n = (size - table) / osz;
  if (dict && n > G_N_ELEMENTS (keys))
    return FALSE;

  for (gsize i = 0; i < n; i++)
    {
      end = get_le (data + table + i * osz, osz);
      if (end < start || end > table)
        return FALSE;
      if (dict)
        {
          /* {sv}: the key, zero padding, the variant, the key's end. */
          const guchar *entry = data + start;
          gsize esize = end - start;
          guint eosz = offset_size (esize);
          gsize key_end, value_start;

          if (esize <= eosz)
            return FALSE;
          key_end = get_le (entry + esize - eosz, eosz);
          value_start = ALIGN8 (key_end);
          if (key_end == 0 || value_start > esize - eosz || !plain_string (entry, key_end) ||
              !zeros (entry, key_end, value_start) || key_seen (keys, i, entry))
            return FALSE;
          keys[i] = entry;
          if (!plain_variant (entry + value_start, esize - eosz - value_start, depth, max_depth))
            return FALSE;
        }
      else if (!plain_variant (data + start, end - start, depth, max_depth))
        return FALSE;
      if (i + 1 < n)
        {
          gsize next = ALIGN8 (end);

          if (next > table || !zeros (data, end, next))
            return FALSE;
          start = next;
        }
    }
  return end == table;
}

#define TYPE_IS(t, len, lit) ((len) == sizeof (lit) - 1 && memcmp ((t), lit, sizeof (lit) - 1) == 0)

/* Plain: a value of the undeclared mapping's own types (a{sv}, av, s, x,
 * finite d, b, and mv only as nothing) in GVariant's normal form, so
 * that JSON would give it back as it is. */
static gboolean
plain_value (const guchar *data,
             gsize         size,
             const char   *type,
             gsize         type_len,
             guint         depth,
             guint         max_depth)
{
  if (type_len == 1)
    switch (type[0])
      {
      case 's':
        return plain_string (data, size);
      case 'x':
        return size == 8;
      case 'd':
        {
          double d;

          /* JSON has no NaN or infinities: they would come back null. */
          if (size != 8)
            return FALSE;
          memcpy (&d, data, sizeof d);
          return isfinite (d);
        }
      case 'b':
        return size == 1 && data[0] <= 1;
      default:
        return FALSE;
      }
  if (TYPE_IS (type, type_len, "mv"))
    return size == 0;
  if (TYPE_IS (type, type_len, "av"))
    return plain_array (data, size, FALSE, depth, max_depth);
  if (TYPE_IS (type, type_len, "a{sv}"))
    return plain_array (data, size, TRUE, depth, max_depth);
  return FALSE;
}

/* Tether's serialiser and the tree agree up to 32 levels (tether-json.c). */
#define PLAIN_MAX_DEPTH 32

static gboolean
is_plain (GVariant *value,
          guint     max_depth)
{
  const char *type = g_variant_get_type_string (value);
  const guchar *data = g_variant_get_data (value);
  gsize size = g_variant_get_size (value);

  /* GLib keeps no data for a fixed-size value that came with the wrong
   * size (it reads as zeros): left to the mapping, which reads it so. */
  if (data == NULL && size > 0)
    return FALSE;
  /* A message's member is one level below the message. */
  max_depth = max_depth == 0 ? PLAIN_MAX_DEPTH : MIN (max_depth - 1, PLAIN_MAX_DEPTH);
  return plain_value (data, size, type, strlen (type), 0, max_depth);
}

/* The value sent as JSON and read back, as a message's member: @params
 * wraps a lone value as JSON-RPC requires (as the JSON sender does). */
static json_t *
through_json (GVariant  *value,
              gboolean   params,
              guint      max_depth,
              GError   **error)
{
  g_autoptr(GString) text = g_string_new ("[");
  json_t *wrapper, *member;
  gsize start = text->len;

  _tether_json_write_variant (text, value);
  if (params && text->str[start] != '[' && text->str[start] != '{')
    {
      g_string_insert_c (text, start, '[');
      g_string_append_c (text, ']');
    }
  g_string_append_c (text, ']');
  /* The array stands for the message, so depth counts as it would. */
  wrapper = _tether_json_parse (text->str, text->len, max_depth, error);
  if (wrapper == NULL)
    return NULL;
  member = json_incref (json_array_get (wrapper, 0));
  json_decref (wrapper);
  return member;
}

GVariant *
_tether_binary_params_to_variant (GVariant           *value,
                                  const char         *signature,
                                  const char * const *param_names,
                                  guint               max_depth,
                                  GError            **error)
{
  json_t *json;
  GVariant *result;

  if (value == NULL)
    return _tether_json_params_to_variant (NULL, signature, param_names, error);

  if (signature == NULL)
    {
      if ((g_variant_is_of_type (value, G_VARIANT_TYPE_VARDICT) ||
           g_variant_is_of_type (value, G_VARIANT_TYPE ("av"))) && is_plain (value, max_depth))
        return g_variant_ref (value);
    }
  /* Declared: the same type means the same value, unless variants, maybes
   * or dicts are in it, whose JSON mapping has its own rules, or doubles
   * (NaN) or uint64 (above INT64_MAX), which JSON cannot carry as they are. */
  else if (strcmp (g_variant_get_type_string (value), signature) == 0 &&
           strpbrk (signature, "vm{dt") == NULL && g_variant_is_normal_form (value))
    return g_variant_ref (value);

  json = through_json (value, TRUE, max_depth, error);
  if (json == NULL)
    return NULL;
  result = _tether_json_params_to_variant (json, signature, param_names, error);
  json_decref (json);
  return result;
}

GVariant *
_tether_binary_result_to_variant (GVariant  *value,
                                  guint      max_depth,
                                  GError   **error)
{
  json_t *json;
  GVariant *result;

  if (is_plain (value, max_depth))
    return g_variant_ref (value);

  json = through_json (value, FALSE, max_depth, error);
  if (json == NULL)
    return NULL;
  result = _tether_json_to_variant (json, NULL, error);
  json_decref (json);
  return result;
}
