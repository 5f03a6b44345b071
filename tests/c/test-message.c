/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The message model and its two codecs: what each writes, what each
 * reads back, that the same request read from either codec is the same
 * message, and how input that is not valid JSON-RPC comes back (the code
 * to answer with, and whether to answer at all). */

#include <string.h>

#include "tether-error.h"
#include "tether-message-private.h"

static TetherMessage *
request_new (void)
{
  TetherMessage *m = g_new (TetherMessage, 1);

  _tether_message_init (m);
  m->kind = TETHER_MESSAGE_REQUEST;
  m->id.kind = TETHER_ID_INT;
  m->id.num = 42;
  m->method = g_strdup ("subtract");
  m->value = g_variant_ref_sink (g_variant_new ("(sx)", "x", (gint64) 7));
  m->has_meta = TRUE;
  m->meta.timeout_ms = 1500;
  m->meta.imp = TETHER_IMPERSONATION_LEVEL_IDENTIFY;
  return m;
}

static void
message_free (TetherMessage *m)
{
  _tether_message_clear (m);
  g_free (m);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TetherMessage, message_free)

static char *
encode_json (const TetherMessage *m)
{
  GString *out = g_string_new (NULL);

  _tether_json_encode (out, m);
  return g_string_free (out, FALSE);
}

static void
decode_json (const char    *text,
             TetherMessage *m)
{
  g_autoptr(GPtrArray) batch = NULL;

  _tether_json_decode (text, strlen (text), 64, 16, m, &batch);
  g_assert_null (batch);
}

static void
assert_params (TetherMessage *m,
               const char    *signature,
               const char    *expected)
{
  g_autoptr(GError) error = NULL;
  static const char * const names[] = { "a", "b", NULL };
  g_autoptr(GVariant) params = _tether_payload_to_params (&m->payload, signature, names, 64, &error);
  g_autofree char *printed = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (params);
  printed = g_variant_print (params, TRUE);
  g_assert_cmpstr (printed, ==, expected);
}

/* ---------------------------------------------------------------------- */

static void
test_json_request (void)
{
  g_autoptr(TetherMessage) m = request_new ();
  TetherMessage back;
  g_autofree char *text = NULL;

  m->meta.act_as = g_strdup ("a.b.c");
  m->meta.detached = g_new0 (TetherDetachedClaim, 1);
  m->meta.detached->session = g_strdup ("S");
  m->meta.detached->seq = 3;
  m->meta.detached->expires = 99;
  m->meta.detached->sig = g_strdup ("G");
  text = encode_json (m);
  g_assert_cmpstr (text, ==,
                   "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"subtract\",\"params\":[\"x\",7],"
                   "\"tether\":{\"timeout_ms\":1500,\"imp\":\"identify\",\"act_as\":\"a.b.c\","
                   "\"detached\":{\"session\":\"S\",\"seq\":3,\"expires\":99,\"sig\":\"G\"}}}");

  decode_json (text, &back);
  g_assert_cmpint (back.kind, ==, TETHER_MESSAGE_REQUEST);
  g_assert_cmpint (back.id.kind, ==, TETHER_ID_INT);
  g_assert_cmpint (back.id.num, ==, 42);
  g_assert_cmpstr (back.method, ==, "subtract");
  g_assert_true (back.has_meta);
  g_assert_cmpint (back.meta.timeout_ms, ==, 1500);
  g_assert_cmpint (back.meta.imp, ==, TETHER_IMPERSONATION_LEVEL_IDENTIFY);
  g_assert_cmpstr (back.meta.act_as, ==, "a.b.c");
  g_assert_null (back.meta.token);
  g_assert_nonnull (back.meta.detached);
  g_assert_true (back.meta.detached->valid);
  g_assert_cmpstr (back.meta.detached->session, ==, "S");
  g_assert_cmpint (back.meta.detached->seq, ==, 3);
  g_assert_cmpint (back.meta.detached->expires, ==, 99);
  g_assert_cmpstr (back.meta.detached->sig, ==, "G");
  assert_params (&back, "(sx)", "('x', int64 7)");
  assert_params (&back, NULL, "[<'x'>, <int64 7>]");
  /* What a signature covers: the params exactly as they travel. */
  {
    g_autofree char *signed_text = _tether_payload_dup_json (&back.payload);
    g_autofree char *sent_text = _tether_json_encode_params (m->value);

    g_assert_cmpstr (signed_text, ==, "[\"x\",7]");
    g_assert_cmpstr (sent_text, ==, signed_text);
  }
  _tether_message_clear (&back);

  /* A lone value travels as [value]; a notification has no id and, to a
   * plain peer, no metadata. */
  g_clear_pointer (&m->value, g_variant_unref);
  m->value = g_variant_ref_sink (g_variant_new_string ("lone"));
  m->id.kind = TETHER_ID_ABSENT;
  m->has_meta = FALSE;
  g_free (text);
  text = encode_json (m);
  g_assert_cmpstr (text, ==, "{\"jsonrpc\":\"2.0\",\"method\":\"subtract\",\"params\":[\"lone\"]}");
}

static void
test_json_responses (void)
{
  TetherMessage m = TETHER_MESSAGE_INIT;
  g_autofree char *text = NULL;

  m.kind = TETHER_MESSAGE_RESULT;
  m.id.kind = TETHER_ID_STRING;
  m.id.str = g_strdup ("q\"1");
  m.value = g_variant_ref_sink (g_variant_new_int32 (19));
  text = encode_json (&m);
  g_assert_cmpstr (text, ==, "{\"jsonrpc\":\"2.0\",\"id\":\"q\\\"1\",\"result\":19}");
  _tether_message_clear (&m);
  decode_json (text, &m);
  g_assert_cmpint (m.kind, ==, TETHER_MESSAGE_RESULT);
  g_assert_cmpint (m.id.kind, ==, TETHER_ID_STRING);
  g_assert_cmpstr (m.id.str, ==, "q\"1");
  {
    g_autoptr(GVariant) result = _tether_payload_to_result (&m.payload, 64, NULL);

    g_assert_cmpint (g_variant_get_int64 (result), ==, 19);
  }
  _tether_message_clear (&m);

  /* An error to a request whose id could not be read goes to null. */
  m.kind = TETHER_MESSAGE_ERROR;
  m.id.kind = TETHER_ID_INVALID;
  m.id.str = g_strdup ("[1]");
  m.code = TETHER_REMOTE_ERROR_INVALID_REQUEST;
  m.text = g_strdup ("no");
  g_free (text);
  text = encode_json (&m);
  g_assert_cmpstr (text, ==,
                   "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"no\"}}");
  _tether_message_clear (&m);

  decode_json ("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32001,\"message\":\"late\"}}", &m);
  g_assert_cmpint (m.kind, ==, TETHER_MESSAGE_ERROR);
  g_assert_false (m.malformed);
  g_assert_cmpint (m.code, ==, -32001);
  g_assert_cmpstr (m.text, ==, "late");
  _tether_message_clear (&m);

  decode_json ("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":1.5}}", &m);
  g_assert_cmpint (m.kind, ==, TETHER_MESSAGE_ERROR);
  g_assert_true (m.malformed);
  _tether_message_clear (&m);

  decode_json ("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":1},\"result\":1}", &m);
  g_assert_cmpint (m.kind, ==, TETHER_MESSAGE_ERROR);
  g_assert_true (m.malformed);
  _tether_message_clear (&m);
}

/* Everything that is not valid JSON-RPC: the code, whether it is
 * answered, and to which id. */
static void
test_json_invalid (void)
{
  static const struct
  {
    const char  *text;
    int          code;
    gboolean     answer;
    TetherIdKind id;
    const char  *why;
  } cases[] = {
    { "{", TETHER_REMOTE_ERROR_PARSE_ERROR, TRUE, TETHER_ID_ABSENT, NULL },
    { NULL /* nested deeper than the limit */, TETHER_REMOTE_ERROR_INVALID_REQUEST, TRUE,
      TETHER_ID_ABSENT, "deep" },
    { "[]", TETHER_REMOTE_ERROR_INVALID_REQUEST, TRUE, TETHER_ID_ABSENT, "empty batch" },
    { "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]", TETHER_REMOTE_ERROR_INVALID_REQUEST, TRUE,
      TETHER_ID_ABSENT, "larger than the limit of 16" },
    { "5", TETHER_REMOTE_ERROR_INVALID_REQUEST, TRUE, TETHER_ID_ABSENT, "must be an object" },
    { "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"m\"}", TETHER_REMOTE_ERROR_INVALID_REQUEST, TRUE,
      TETHER_ID_INT, "\"2.0\"" },
    { "{\"id\":1,\"result\":1}", TETHER_REMOTE_ERROR_INVALID_REQUEST, FALSE, TETHER_ID_INT, "response" },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", TETHER_REMOTE_ERROR_INVALID_REQUEST, TRUE,
      TETHER_ID_INT, "\"method\" must be a string" },
    { "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"m\",\"params\":1}",
      TETHER_REMOTE_ERROR_INVALID_REQUEST, TRUE, TETHER_ID_STRING, "array or an object" },
    { "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"m\"}", TETHER_REMOTE_ERROR_INVALID_REQUEST, TRUE,
      TETHER_ID_INVALID, "\"id\" must be" },
    { "{\"jsonrpc\":\"2.0\",\"id\":1}", TETHER_REMOTE_ERROR_INVALID_REQUEST, TRUE, TETHER_ID_INT,
      "Neither" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      TetherMessage m;
      g_autoptr(GPtrArray) batch = NULL;
      g_autofree char *deep = NULL;
      const char *text = cases[i].text;

      if (text == NULL)
        {
          g_autofree char *open = g_strnfill (65, '[');
          g_autofree char *close = g_strnfill (65, ']');

          text = deep = g_strconcat (open, "1", close, NULL);
        }
      _tether_json_decode (text, strlen (text), 64, 16, &m, &batch);
      g_test_message ("%s", text);
      g_assert_null (batch);
      g_assert_cmpint (m.kind, ==, TETHER_MESSAGE_INVALID);
      g_assert_cmpint (m.code, ==, cases[i].code);
      g_assert_cmpint (m.answer, ==, cases[i].answer);
      g_assert_cmpint (m.id.kind, ==, cases[i].id);
      if (cases[i].why != NULL)
        g_assert_nonnull (strstr (m.text, cases[i].why));
      _tether_message_clear (&m);
    }
}

static void
test_json_batch (void)
{
  const char *text = "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"},7,"
                     "{\"jsonrpc\":\"2.0\",\"method\":\"b\",\"params\":{\"x\":1},\"other\":true}]";
  TetherMessage m;
  g_autoptr(GPtrArray) batch = NULL;
  TetherMessage *e;

  _tether_json_decode (text, strlen (text), 64, 16, &m, &batch);
  g_assert_nonnull (batch);
  g_assert_cmpuint (batch->len, ==, 3);
  e = batch->pdata[0];
  g_assert_cmpint (e->kind, ==, TETHER_MESSAGE_REQUEST);
  g_assert_cmpstr (e->method, ==, "a");
  e = batch->pdata[1];
  g_assert_cmpint (e->kind, ==, TETHER_MESSAGE_INVALID);
  g_assert_true (e->answer);
  e = batch->pdata[2];
  g_assert_cmpint (e->kind, ==, TETHER_MESSAGE_REQUEST);
  g_assert_cmpint (e->id.kind, ==, TETHER_ID_ABSENT);
  g_assert_false (e->has_meta);
  assert_params (e, NULL, "{'x': <int64 1>}");
  _tether_message_clear (&m);
}

/* Metadata of the wrong type is absent, except what must be refused. */
static void
test_json_meta (void)
{
  TetherMessage m;

  decode_json ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"tether\":{\"timeout_ms\":-5,"
               "\"imp\":\"root\",\"act_as\":7,\"token\":1,\"detached\":{\"session\":\"s\",\"seq\":0}}}", &m);
  g_assert_cmpint (m.kind, ==, TETHER_MESSAGE_REQUEST);
  g_assert_true (m.has_meta);
  g_assert_cmpint (m.meta.timeout_ms, ==, -1);
  g_assert_cmpint (m.meta.imp, ==, TETHER_META_IMP_UNKNOWN);
  g_assert_null (m.meta.act_as);
  g_assert_true (m.meta.act_as_invalid);
  g_assert_null (m.meta.token);
  g_assert_nonnull (m.meta.detached);
  g_assert_false (m.meta.detached->valid);
  g_assert_cmpstr (m.meta.detached->session, ==, "s");
  _tether_message_clear (&m);

  decode_json ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"tether\":5}", &m);
  g_assert_cmpint (m.kind, ==, TETHER_MESSAGE_REQUEST);
  g_assert_false (m.has_meta);
  _tether_message_clear (&m);
}

static GBytes *
frame_of (const TetherMessage *m)
{
  GString *frame = _tether_frame_encode (m);
  gsize len = frame->len;

  return g_bytes_new_take (g_string_free (frame, FALSE), len);
}

/* The same request through either codec is the same message, and its
 * params mean the same. */
static void
test_siblings (void)
{
  g_autoptr(TetherMessage) m = request_new ();
  g_autofree char *text = encode_json (m);
  g_autoptr(GBytes) frame = frame_of (m);
  TetherMessage from_json, from_frame;
  static const char * const signatures[] = { "(sx)", NULL };

  decode_json (text, &from_json);
  _tether_frame_decode (frame, &from_frame);
  g_assert_cmpint (from_frame.kind, ==, TETHER_MESSAGE_REQUEST);
  g_assert_cmpint (from_frame.payload.codec, ==, TETHER_CODEC_BINARY);
  g_assert_cmpint (from_json.payload.codec, ==, TETHER_CODEC_JSON);
  g_assert_cmpint (from_frame.id.kind, ==, from_json.id.kind);
  g_assert_cmpint (from_frame.id.num, ==, from_json.id.num);
  g_assert_cmpstr (from_frame.method, ==, from_json.method);
  g_assert_cmpint (from_frame.has_meta, ==, from_json.has_meta);
  g_assert_cmpint (from_frame.meta.timeout_ms, ==, from_json.meta.timeout_ms);
  g_assert_cmpint (from_frame.meta.imp, ==, from_json.meta.imp);
  for (guint i = 0; i < G_N_ELEMENTS (signatures); i++)
    {
      static const char * const names[] = { "a", "b", NULL };
      g_autoptr(GVariant) a = _tether_payload_to_params (&from_json.payload, signatures[i], names, 64, NULL);
      g_autoptr(GVariant) b = _tether_payload_to_params (&from_frame.payload, signatures[i], names, 64, NULL);

      g_assert_nonnull (a);
      g_assert_nonnull (b);
      g_assert_true (g_variant_equal (a, b));
    }
  /* Only JSON is signed. */
  g_assert_null (_tether_payload_dup_json (&from_frame.payload));
  _tether_message_clear (&from_json);
  _tether_message_clear (&from_frame);
}

static void
test_frame_fits (void)
{
  g_autoptr(TetherMessage) m = request_new ();
  TetherMessage result = TETHER_MESSAGE_INIT;

  g_assert_true (_tether_frame_fits (m));

  m->meta.token = g_strdup ("t");
  g_assert_false (_tether_frame_fits (m));
  g_clear_pointer (&m->meta.token, g_free);
  m->meta.act_as = g_strdup ("t");
  g_assert_false (_tether_frame_fits (m));
  g_clear_pointer (&m->meta.act_as, g_free);
  m->meta.detached = g_new0 (TetherDetachedClaim, 1);
  g_assert_false (_tether_frame_fits (m));
  g_clear_pointer (&m->meta.detached, _tether_detached_claim_free);
  m->meta.imp = TETHER_IMPERSONATION_LEVEL_IMPERSONATE;
  g_assert_false (_tether_frame_fits (m));
  m->meta.imp = -1;
  g_assert_true (_tether_frame_fits (m));

  g_free (m->method);
  m->method = g_strdup ("rpc.cancel");
  g_assert_false (_tether_frame_fits (m));
  g_free (m->method);
  m->method = g_strdup ("bad\xff");
  g_assert_false (_tether_frame_fits (m));
  g_free (m->method);
  m->method = g_strdup ("");
  g_assert_false (_tether_frame_fits (m));
  g_free (m->method);
  m->method = g_strdup ("ok");
  m->id.kind = TETHER_ID_ABSENT;   /* notifications stay JSON */
  g_assert_false (_tether_frame_fits (m));

  result.kind = TETHER_MESSAGE_RESULT;
  result.id.kind = TETHER_ID_STRING;
  result.id.str = g_strdup ("7");
  result.value = g_variant_ref_sink (g_variant_new_boolean (TRUE));
  g_assert_false (_tether_frame_fits (&result));
  g_clear_pointer (&result.id.str, g_free);
  result.id.kind = TETHER_ID_INT;
  result.id.num = 7;
  g_assert_true (_tether_frame_fits (&result));
  {
    g_autoptr(GBytes) frame = frame_of (&result);
    TetherMessage back;
    g_autoptr(GVariant) value = NULL;

    _tether_frame_decode (frame, &back);
    g_assert_cmpint (back.kind, ==, TETHER_MESSAGE_RESULT);
    g_assert_cmpint (back.id.num, ==, 7);
    value = _tether_payload_to_result (&back.payload, 64, NULL);
    g_assert_true (g_variant_get_boolean (value));
    _tether_message_clear (&back);
  }
  _tether_message_clear (&result);
}

/* A malformed frame is answered, unless it claims to be a result. */
static void
test_frame_malformed (void)
{
  static const guchar result_bad[16] = { 'R', 1 };
  static const guchar request_bad[16] = { 'Q', 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 1 };
  g_autoptr(GBytes) a = g_bytes_new_static (result_bad, sizeof result_bad);
  g_autoptr(GBytes) b = g_bytes_new_static (request_bad, sizeof request_bad);
  TetherMessage m;

  _tether_frame_decode (a, &m);
  g_assert_cmpint (m.kind, ==, TETHER_MESSAGE_INVALID);
  g_assert_false (m.answer);
  _tether_message_clear (&m);
  _tether_frame_decode (b, &m);
  g_assert_cmpint (m.kind, ==, TETHER_MESSAGE_INVALID);
  g_assert_true (m.answer);
  g_assert_cmpint (m.code, ==, TETHER_REMOTE_ERROR_INVALID_REQUEST);
  g_assert_nonnull (strstr (m.text, "method length"));
  _tether_message_clear (&m);
}

static void
test_ids (void)
{
  TetherMessageId i = { TETHER_ID_INT, -3, NULL };
  TetherMessageId s = { TETHER_ID_STRING, 0, (char *) "-3" };
  g_autofree char *ki = _tether_message_id_key (&i);
  g_autofree char *ks = _tether_message_id_key (&s);
  g_autofree char *shown = _tether_message_id_to_string (&s);

  /* 3 and "3" are different requests. */
  g_assert_cmpstr (ki, !=, ks);
  g_assert_cmpstr (shown, ==, "\"-3\"");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/message/json/request", test_json_request);
  g_test_add_func ("/message/json/responses", test_json_responses);
  g_test_add_func ("/message/json/invalid", test_json_invalid);
  g_test_add_func ("/message/json/batch", test_json_batch);
  g_test_add_func ("/message/json/meta", test_json_meta);
  g_test_add_func ("/message/siblings", test_siblings);
  g_test_add_func ("/message/frame/fits", test_frame_fits);
  g_test_add_func ("/message/frame/malformed", test_frame_malformed);
  g_test_add_func ("/message/ids", test_ids);

  return g_test_run ();
}
