/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The JSON-RPC 2.0 codec: TetherMessage ⇄ text. Writing is by hand with
 * Tether's writer (one pass, no tree); reading takes the common message's
 * members straight out of the text (_tether_json_read_members()), and
 * parses anything else whole. */

#include <string.h>

#include "tether-error-private.h"
#include "tether-json-private.h"
#include "tether-message-private.h"

/* ---------------------------------------------------------------------- */
/* Writing                                                                */

/* `,"id":ID`; anything but a valid id is written null (an answer to a
 * request whose id could not be read). */
static void
write_id (GString               *out,
          const TetherMessageId *id)
{
  TETHER_APPEND_LITERAL (out, ",\"id\":");
  if (id->kind == TETHER_ID_INT)
    _tether_json_write_int (out, id->num);
  else if (id->kind == TETHER_ID_STRING)
    _tether_json_write_string (out, id->str, strlen (id->str));
  else
    TETHER_APPEND_LITERAL (out, "null");
}

/* JSON-RPC params are structured: a lone value travels as [value]. */
static void
write_params (GString  *out,
              GVariant *params)
{
  gsize start = out->len;

  _tether_json_write_variant (out, params);
  if (out->str[start] != '[' && out->str[start] != '{')
    {
      g_string_insert_c (out, start, '[');
      g_string_append_c (out, ']');
    }
}

char *
_tether_json_encode_params (GVariant *params)
{
  GString *out = g_string_sized_new (128);

  if (params == NULL)
    TETHER_APPEND_LITERAL (out, "null");
  else
    write_params (out, params);
  return g_string_free (out, FALSE);
}

/* `,"name":` after the first member of an object. */
static void
write_key (GString    *out,
           gboolean   *first,
           const char *name)
{
  if (!*first)
    g_string_append_c (out, ',');
  *first = FALSE;
  _tether_json_write_string (out, name, strlen (name));
  g_string_append_c (out, ':');
}

static void
write_string_member (GString    *out,
                     gboolean   *first,
                     const char *name,
                     const char *value)
{
  write_key (out, first, name);
  _tether_json_write_string (out, value, strlen (value));
}

static void
write_int_member (GString    *out,
                  gboolean   *first,
                  const char *name,
                  gint64      value)
{
  write_key (out, first, name);
  _tether_json_write_int (out, value);
}

static void
write_meta (GString          *out,
            const TetherMeta *meta)
{
  gboolean first = TRUE;

  TETHER_APPEND_LITERAL (out, ",\"tether\":{");
  if (meta->timeout_ms >= 0)
    write_int_member (out, &first, "timeout_ms", meta->timeout_ms);
  if (meta->imp >= 0)
    write_string_member (out, &first, "imp", _tether_imp_level_to_string (meta->imp));
  if (meta->act_as != NULL)
    write_string_member (out, &first, "act_as", meta->act_as);
  if (meta->token != NULL)
    write_string_member (out, &first, "token", meta->token);
  if (meta->detached != NULL)
    {
      gboolean inner = TRUE;

      write_key (out, &first, "detached");
      g_string_append_c (out, '{');
      write_string_member (out, &inner, "session", meta->detached->session);
      write_int_member (out, &inner, "seq", meta->detached->seq);
      write_int_member (out, &inner, "expires", meta->detached->expires);
      write_string_member (out, &inner, "sig", meta->detached->sig);
      g_string_append_c (out, '}');
    }
  g_string_append_c (out, '}');
}

void
_tether_json_encode (GString             *out,
                     const TetherMessage *message)
{
  TETHER_APPEND_LITERAL (out, "{\"jsonrpc\":\"2.0\"");
  switch (message->kind)
    {
    case TETHER_MESSAGE_REQUEST:
      if (message->id.kind != TETHER_ID_ABSENT)
        write_id (out, &message->id);
      TETHER_APPEND_LITERAL (out, ",\"method\":");
      _tether_json_write_string (out, message->method, strlen (message->method));
      if (message->value != NULL)
        {
          TETHER_APPEND_LITERAL (out, ",\"params\":");
          write_params (out, message->value);
        }
      if (message->has_meta)
        write_meta (out, &message->meta);
      break;
    case TETHER_MESSAGE_RESULT:
      write_id (out, &message->id);
      TETHER_APPEND_LITERAL (out, ",\"result\":");
      _tether_json_write_variant (out, message->value);
      break;
    case TETHER_MESSAGE_ERROR:
    case TETHER_MESSAGE_INVALID:
    default:
      write_id (out, &message->id);
      TETHER_APPEND_LITERAL (out, ",\"error\":{\"code\":");
      _tether_json_write_int (out, message->code);
      TETHER_APPEND_LITERAL (out, ",\"message\":");
      _tether_json_write_string (out, message->text, strlen (message->text));
      g_string_append_c (out, '}');
      break;
    }
  g_string_append_c (out, '}');
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                */

/* The members Tether reads; anything else sends a message through the
 * full parser (and is ignored there). */
enum { M_JSONRPC, M_ID, M_METHOD, M_PARAMS, M_RESULT, M_ERROR, M_META, N_MEMBERS };

static const char * const members[] = {
  "jsonrpc", "id", "method", "params", "result", "error", "tether", NULL
};

G_STATIC_ASSERT (G_N_ELEMENTS (members) == N_MEMBERS + 1);

static void
invalid (TetherMessage *message,
         int            code,
         const char    *text,
         gboolean       answer)
{
  message->kind = TETHER_MESSAGE_INVALID;
  message->code = code;
  g_free (message->text);
  message->text = g_strdup (text);
  message->answer = answer;
}

static void
read_id (json_t          *id,
         TetherMessageId *out)
{
  if (id == NULL)
    out->kind = TETHER_ID_ABSENT;
  else if (json_is_integer (id))
    {
      out->kind = TETHER_ID_INT;
      out->num = json_integer_value (id);
    }
  else if (json_is_string (id))
    {
      out->kind = TETHER_ID_STRING;
      out->str = g_strdup (json_string_value (id));
    }
  else
    {
      out->kind = TETHER_ID_INVALID;
      out->str = _tether_json_dump (id, NULL);
    }
}

static TetherDetachedClaim *
read_claim (json_t *detached)
{
  TetherDetachedClaim *claim = g_new0 (TetherDetachedClaim, 1);
  json_t *session = json_object_get (detached, "session");
  json_t *seq = json_object_get (detached, "seq");
  json_t *expires = json_object_get (detached, "expires");
  json_t *sig = json_object_get (detached, "sig");

  claim->session = g_strdup (json_string_value (session));
  claim->sig = g_strdup (json_string_value (sig));
  claim->seq = json_is_integer (seq) ? json_integer_value (seq) : 0;
  claim->expires = json_is_integer (expires) ? json_integer_value (expires) : 0;
  claim->valid = json_is_string (session) && json_is_integer (seq) && json_integer_value (seq) >= 1 &&
                 json_is_integer (expires) && json_is_string (sig);
  return claim;
}

/* The "tether" object; members of the wrong type count as absent, except
 * where the engine must refuse them (an unknown level, an "act_as" that
 * is not a token). */
static void
read_meta (json_t     *meta,
           TetherMeta *out)
{
  json_t *timeout = json_object_get (meta, "timeout_ms");
  json_t *imp = json_object_get (meta, "imp");
  json_t *act_as = json_object_get (meta, "act_as");
  json_t *token = json_object_get (meta, "token");
  json_t *detached = json_object_get (meta, "detached");

  if (json_is_integer (timeout) && json_integer_value (timeout) >= 0)
    out->timeout_ms = json_integer_value (timeout);
  if (imp != NULL)
    {
      TetherImpersonationLevel level;

      out->imp = _tether_imp_level_from_string (json_string_value (imp), &level)
                   ? (int) level : TETHER_META_IMP_UNKNOWN;
    }
  if (json_is_string (act_as))
    out->act_as = g_strdup (json_string_value (act_as));
  else if (act_as != NULL)
    out->act_as_invalid = TRUE;
  if (json_is_string (token))
    out->token = g_strdup (json_string_value (token));
  if (json_is_object (detached))
    out->detached = read_claim (detached);
}

/* Takes the values of @v it keeps (setting them NULL). */
static void
decode_members (json_t        **v,
                TetherMessage  *message)
{
  read_id (v[M_ID], &message->id);

  if (!json_is_string (v[M_JSONRPC]) || strcmp (json_string_value (v[M_JSONRPC]), "2.0") != 0)
    {
      /* Never answer what looks like a response: two confused peers
       * would bounce errors at each other for ever. */
      if (v[M_METHOD] == NULL && (v[M_RESULT] != NULL || v[M_ERROR] != NULL))
        invalid (message, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                 "Ignoring a response without \"jsonrpc\": \"2.0\"", FALSE);
      else
        invalid (message, TETHER_REMOTE_ERROR_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"", TRUE);
      return;
    }

  if (v[M_METHOD] != NULL)
    {
      json_t *params = v[M_PARAMS];

      message->was_request = TRUE;
      if (!json_is_string (v[M_METHOD]) ||
          (params != NULL && !json_is_array (params) && !json_is_object (params)))
        {
          invalid (message, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                   !json_is_string (v[M_METHOD]) ? "\"method\" must be a string"
                                                  : "\"params\" must be an array or an object",
                   TRUE);
          return;
        }
      if (message->id.kind == TETHER_ID_INVALID)
        {
          invalid (message, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                   "\"id\" must be a string or an integer", TRUE);
          return;
        }
      message->kind = TETHER_MESSAGE_REQUEST;
      message->method = g_strdup (json_string_value (v[M_METHOD]));
      if (params != NULL)
        {
          message->payload.codec = TETHER_CODEC_JSON;
          message->payload.data = g_steal_pointer (&v[M_PARAMS]);
        }
      if (json_is_object (v[M_META]))
        {
          message->has_meta = TRUE;
          read_meta (v[M_META], &message->meta);
        }
    }
  else if (v[M_RESULT] != NULL && v[M_ERROR] != NULL)
    {
      message->kind = TETHER_MESSAGE_ERROR;
      message->malformed = TRUE;
      message->text = g_strdup ("The peer's response has neither or both of \"result\" and \"error\"");
    }
  else if (v[M_RESULT] != NULL)
    {
      message->kind = TETHER_MESSAGE_RESULT;
      message->payload.codec = TETHER_CODEC_JSON;
      message->payload.data = g_steal_pointer (&v[M_RESULT]);
    }
  else if (v[M_ERROR] != NULL)
    {
      json_t *code = json_object_get (v[M_ERROR], "code");
      json_t *text = json_object_get (v[M_ERROR], "message");

      message->kind = TETHER_MESSAGE_ERROR;
      if (!json_is_integer (code) || json_integer_value (code) < G_MININT ||
          json_integer_value (code) > G_MAXINT)
        {
          message->malformed = TRUE;
          message->text = g_strdup ("The peer's error has no valid integer code");
        }
      else
        {
          message->code = (int) json_integer_value (code);
          message->text = g_strdup (json_is_string (text) ? json_string_value (text) : "(no message)");
        }
    }
  else
    invalid (message, TETHER_REMOTE_ERROR_INVALID_REQUEST, "Neither a request nor a response", TRUE);
}

static void
clear_members (json_t **v)
{
  for (guint i = 0; i < N_MEMBERS; i++)
    g_clear_pointer (&v[i], json_decref);
}

static void
decode_value (json_t        *value,
              TetherMessage *message)
{
  json_t *v[N_MEMBERS] = { NULL, };

  if (!json_is_object (value))
    {
      invalid (message, TETHER_REMOTE_ERROR_INVALID_REQUEST, "A JSON-RPC message must be an object", TRUE);
      return;
    }
  for (guint i = 0; i < N_MEMBERS; i++)
    {
      v[i] = json_object_get (value, members[i]);
      if (v[i] != NULL)
        json_incref (v[i]);
    }
  decode_members (v, message);
  clear_members (v);
}

static void
message_free (TetherMessage *message)
{
  _tether_message_clear (message);
  g_free (message);
}

void
_tether_json_decode (const char     *data,
                     gsize           len,
                     guint           max_depth,
                     guint           max_batch,
                     TetherMessage  *message,
                     GPtrArray     **batch)
{
  g_autoptr(GError) error = NULL;
  json_t *v[N_MEMBERS] = { NULL, };
  json_t *value;

  _tether_message_init (message);
  *batch = NULL;

  /* The common case, one message of known members, without an object. */
  if (_tether_json_read_members (data, len, max_depth > 0 ? max_depth : G_MAXUINT, members, v))
    {
      decode_members (v, message);
      clear_members (v);
      return;
    }

  value = _tether_json_parse (data, len, max_depth, &error);
  if (value == NULL)
    {
      /* Too deep is a well-formed but refused request; bad JSON is -32700. */
      invalid (message,
               g_error_matches (error, TETHER_ERROR, TETHER_ERROR_TOO_DEEP)
                 ? TETHER_REMOTE_ERROR_INVALID_REQUEST : TETHER_REMOTE_ERROR_PARSE_ERROR,
               error->message, TRUE);
      return;
    }

  if (!json_is_array (value))
    decode_value (value, message);
  else if (json_array_size (value) == 0)
    invalid (message, TETHER_REMOTE_ERROR_INVALID_REQUEST, "An empty batch is not a valid request", TRUE);
  else if (max_batch > 0 && json_array_size (value) > max_batch)
    {
      /* A batch is a message: what one message may start is bounded. */
      g_autofree char *text = g_strdup_printf ("A batch of %" G_GSIZE_FORMAT " requests is larger "
                                               "than the limit of %u; nothing in it was run",
                                               json_array_size (value), max_batch);

      invalid (message, TETHER_REMOTE_ERROR_INVALID_REQUEST, text, TRUE);
    }
  else
    {
      *batch = g_ptr_array_new_full (json_array_size (value), (GDestroyNotify) message_free);
      for (gsize i = 0; i < json_array_size (value); i++)
        {
          TetherMessage *element = g_new (TetherMessage, 1);

          _tether_message_init (element);
          decode_value (json_array_get (value, i), element);
          g_ptr_array_add (*batch, element);
        }
    }
  json_decref (value);
}
