/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Binary frames: the layout byte by byte, malformed frames, the promise
 * that a value means what it would have meant as JSON, and both ends seen
 * from the other side: a Tether server talking to libsoup's own WebSocket
 * client, and a Tether client talking to libsoup's own WebSocket server,
 * each writing and checking frames by hand. */

#include <jansson.h>
#include <libsoup/soup.h>
#include <math.h>
#include <string.h>

#include "tether-binary-private.h"
#include "tether-error.h"
#include "tether-json-private.h"
#include "tether-scheduler-private.h"
#include "tether-test-common.h"

/* ---------------------------------------------------------------------- */
/* Frames                                                                 */

static GBytes *
frame_bytes (GString *frame)
{
  gsize len = frame->len;

  return g_bytes_new_take (g_string_free (frame, FALSE), len);
}

/* The header and value of a request, byte by byte as docs/protocol.md
 * says, built here without the library's writer. */
static GBytes *
hand_request (gint64      id,
              const char *method,
              guint32     timeout,
              guint8      imp,
              GVariant   *params)
{
  GByteArray *b = g_byte_array_new ();
  guint8 header[16] = { 'Q', imp, strlen (method) & 0xff, strlen (method) >> 8 };

  for (guint i = 0; i < 4; i++)
    header[4 + i] = (timeout >> (8 * i)) & 0xff;
  for (guint i = 0; i < 8; i++)
    header[8 + i] = ((guint64) id >> (8 * i)) & 0xff;
  g_byte_array_append (b, header, sizeof header);
  g_byte_array_append (b, (const guint8 *) method, strlen (method));
  if (params != NULL)
    {
      g_autoptr(GVariant) sunk = g_variant_ref_sink (params);

      while (b->len % 8 != 0)
        g_byte_array_append (b, (const guint8 *) "", 1);
      g_byte_array_append (b, g_variant_get_data (sunk), g_variant_get_size (sunk));
      g_byte_array_append (b, (const guint8 *) "", 1);
      g_byte_array_append (b, (const guint8 *) g_variant_get_type_string (sunk),
                           strlen (g_variant_get_type_string (sunk)));
    }
  return g_byte_array_free_to_bytes (b);
}

static GVariant *
seq_dict (gint64 seq)
{
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "seq", "x", seq);
  return g_variant_dict_end (&d);
}

static void
test_frame_layout (void)
{
  g_autoptr(GString) written = NULL;
  g_autoptr(GBytes) by_hand = hand_request (7, "ping", 1000, TETHER_FRAME_IMP_ABSENT, seq_dict (3));
  g_autoptr(GBytes) by_lib = NULL;
  TetherFrame frame;
  g_autoptr(GError) error = NULL;

  written = _tether_frame_new_request (7, "ping", 1000, -1);
  _tether_frame_append_value (written, seq_dict (3));
  by_lib = frame_bytes (g_steal_pointer (&written));
  g_assert_true (g_bytes_equal (by_hand, by_lib));

  g_assert_true (_tether_frame_parse (by_hand, &frame, &error));
  g_assert_no_error (error);
  g_assert_cmpint (frame.kind, ==, TETHER_FRAME_REQUEST);
  g_assert_cmpint (frame.id, ==, 7);
  g_assert_cmpstr (frame.method, ==, "ping");
  g_assert_cmpint (frame.timeout_ms, ==, 1000);
  g_assert_cmpint (frame.imp, ==, -1);
  {
    g_autoptr(GVariant) expected = g_variant_ref_sink (seq_dict (3));

    g_assert_true (g_variant_equal (frame.value, expected));
  }
  _tether_frame_clear (&frame);
}

static void
test_frame_round_trip (void)
{
  const char *values[] = {
    "@a{sv} {}", "{'seq': <int64 1>, 'list': <[<'a'>, <true>, <2.5>]>}", "(int64 1, 'two')",
    "uint32 7", "@mv nothing", "@av []", "'snow \u2603 man'", "[byte 0x01, 0x02]",
    "{'deep': <{'er': <{'est': <@mv nothing>}>}>}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    for (int kind = 0; kind < 2; kind++)
      {
        g_autoptr(GVariant) value = g_variant_ref_sink (g_variant_new_parsed (values[i]));
        GString *written = kind == 0 ? _tether_frame_new_request (G_MAXINT64, "m", 0, 1)
                                     : _tether_frame_new_result (1);
        g_autoptr(GBytes) bytes = NULL;
        TetherFrame frame;
        g_autoptr(GError) error = NULL;

        _tether_frame_append_value (written, value);
        bytes = frame_bytes (written);
        g_assert_true (_tether_frame_parse (bytes, &frame, &error));
        g_assert_no_error (error);
        g_assert_cmpint (frame.kind, ==, kind == 0 ? TETHER_FRAME_REQUEST : TETHER_FRAME_RESULT);
        g_assert_cmpint (frame.id, ==, kind == 0 ? G_MAXINT64 : 1);
        g_assert_cmpstr (frame.method, ==, kind == 0 ? "m" : NULL);
        g_assert_cmpint (frame.timeout_ms, ==, kind == 0 ? 0 : -1);
        g_assert_cmpint (frame.imp, ==, kind == 0 ? 1 : -1);
        g_assert_true (g_variant_equal (frame.value, value));
        _tether_frame_clear (&frame);
      }

  /* A request without params. */
  {
    g_autoptr(GBytes) bytes = frame_bytes (_tether_frame_new_request (2, "nothing", -1, 0));
    TetherFrame frame;

    g_assert_true (_tether_frame_parse (bytes, &frame, NULL));
    g_assert_null (frame.value);
    g_assert_cmpint (frame.timeout_ms, ==, -1);
    g_assert_cmpint (frame.imp, ==, 0);
    _tether_frame_clear (&frame);
  }
}

static void
test_frame_malformed (void)
{
  static const struct
  {
    const char *what;
    gsize       len;
    const char *bytes;
  } cases[] = {
    { "empty", 0, "" },
    { "short header", 15, "Q\377\1\0\0\0\0\0\1\0\0\0\0\0\0" },
    { "unknown kind", 17, "X\377\1\0\0\0\0\0\1\0\0\0\0\0\0\0m" },
    { "id 0", 17, "Q\377\1\0\0\0\0\0\0\0\0\0\0\0\0\0m" },
    { "negative id", 17, "Q\377\1\0\0\0\0\0\377\377\377\377\377\377\377\377m" },
    { "method past the end", 17, "Q\377\2\0\0\0\0\0\1\0\0\0\0\0\0\0m" },
    { "empty method", 16, "Q\377\0\0\0\0\0\0\1\0\0\0\0\0\0\0" },
    { "NUL in method", 18, "Q\377\2\0\0\0\0\0\1\0\0\0\0\0\0\0m\0" },
    { "bad UTF-8 method", 17, "Q\377\1\0\0\0\0\0\1\0\0\0\0\0\0\0\377" },
    { "token level", 17, "Q\2\1\0\0\0\0\0\1\0\0\0\0\0\0\0m" },
    { "padding not zero", 26, "Q\377\1\0\0\0\0\0\1\0\0\0\0\0\0\0m\0\0\0\0\1\0\0\1s" },
    { "value without type", 25, "Q\377\1\0\0\0\0\0\1\0\0\0\0\0\0\0m\0\0\0\0\0\0\0x" },
    { "empty type", 25, "Q\377\1\0\0\0\0\0\1\0\0\0\0\0\0\0m\0\0\0\0\0\0\0\0" },
    { "invalid type", 27, "Q\377\1\0\0\0\0\0\1\0\0\0\0\0\0\0m\0\0\0\0\0\0\0\0a{" },
    { "two types", 27, "Q\377\1\0\0\0\0\0\1\0\0\0\0\0\0\0m\0\0\0\0\0\0\0\0ss" },
    { "indefinite type", 26, "Q\377\1\0\0\0\0\0\1\0\0\0\0\0\0\0m\0\0\0\0\0\0\0\0*" },
    { "padding only", 24, "Q\377\1\0\0\0\0\0\1\0\0\0\0\0\0\0m\0\0\0\0\0\0\0" },
    { "result without value", 16, "R\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0" },
    { "result with a method", 26, "R\0\1\0\0\0\0\0\1\0\0\0\0\0\0\0m\0\0\0\0\0\0\0\0b" },
    { "result with a timeout", 26, "R\0\0\0\1\0\0\0\1\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\0b" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) bytes = g_bytes_new_static (cases[i].bytes, cases[i].len);
      TetherFrame frame;
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", cases[i].what);
      g_assert_false (_tether_frame_parse (bytes, &frame, &error));
      g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE);
      g_assert_null (frame.value);
      g_assert_null (frame.method);
    }
}

/* ---------------------------------------------------------------------- */
/* Meaning: binary gives what JSON would have                             */

/* What @value means sent as JSON: params as the JSON sender writes them
 * (a lone value wrapped), read back within @max_depth. */
static GVariant *
as_json (GVariant           *value,
         gboolean            params,
         const char         *signature,
         const char * const *names,
         guint               max_depth,
         GError            **error)
{
  g_autoptr(GString) text = g_string_new ("{\"params\":");
  gsize start = text->len;
  json_t *message, *member;
  GVariant *result;

  _tether_json_write_variant (text, value);
  if (params && text->str[start] != '[' && text->str[start] != '{')
    {
      g_string_insert_c (text, start, '[');
      g_string_append_c (text, ']');
    }
  g_string_append_c (text, '}');
  message = _tether_json_parse (text->str, text->len, max_depth, error);
  if (message == NULL)
    return NULL;
  member = json_object_get (message, "params");
  result = params ? _tether_json_params_to_variant (member, signature, names, error)
                  : _tether_json_to_variant (member, NULL, error);
  json_decref (message);
  return result;
}

static void
assert_same_meaning (GVariant           *value,
                     gboolean            params,
                     const char         *signature,
                     const char * const *names,
                     guint               max_depth)
{
  g_autoptr(GError) json_error = NULL;
  g_autoptr(GError) binary_error = NULL;
  g_autoptr(GVariant) via_json = as_json (value, params, signature, names, max_depth, &json_error);
  g_autoptr(GVariant) via_binary =
    params ? _tether_binary_params_to_variant (value, signature, names, max_depth, &binary_error)
           : _tether_binary_result_to_variant (value, max_depth, &binary_error);
  g_autofree char *text = g_variant_print (value, TRUE);

  g_test_message ("%s %s (%s)", params ? "params" : "result", text, signature ? signature : "undeclared");
  /* Used as it arrived only if its bytes are in normal form (GLib's
   * verdict; GLib itself replaces a fixed-size value of the wrong size). */
  if (via_binary == value)
    {
      g_autoptr(GBytes) data = g_bytes_new (g_variant_get_data (value), g_variant_get_size (value));
      g_autoptr(GVariant) fresh =
        g_variant_ref_sink (g_variant_new_from_bytes (g_variant_get_type (value), data, FALSE));

      g_assert_true (g_variant_is_normal_form (fresh));
    }
  if (via_json == NULL)
    {
      g_assert_nonnull (json_error);
      g_assert_null (via_binary);
      g_assert_error (binary_error, json_error->domain, json_error->code);
      return;
    }
  g_assert_no_error (binary_error);
  g_assert_nonnull (via_binary);
  g_assert_cmpstr (g_variant_get_type_string (via_binary), ==, g_variant_get_type_string (via_json));
  /* NaN is not equal to itself: compare the printed forms. */
  {
    g_autofree char *a = g_variant_print (via_binary, TRUE);
    g_autofree char *b = g_variant_print (via_json, TRUE);

    g_assert_cmpstr (a, ==, b);
  }
}

static GVariant *
parse_value (const char *text)
{
  return g_variant_ref_sink (g_variant_new_parsed (text));
}

static GVariant *
nested (guint levels)
{
  GVariant *v = g_variant_new_int64 (1);

  for (guint i = 0; i < levels; i++)
    v = g_variant_new_array (G_VARIANT_TYPE_VARIANT, (GVariant *[]) { g_variant_new_variant (v) }, 1);
  return g_variant_ref_sink (v);
}

static void
test_meaning (void)
{
  const char *values[] = {
    "{'seq': <int64 1>}", "@a{sv} {}", "@av []", "[<int64 1>, <'two'>, <true>, <@mv nothing>]",
    "{'a': <{'b': <[<1.5>, <int64 -2>]>}>}",
    "(int64 1, int64 2)", "(1, 2)", "uint32 7", "'lone'", "{'k': <uint32 1>}", "{'k': <<int64 1>>}",
    "{'k': <@mv <int64 1>>}", "{'k': <@ms 'x'>}", "{'a': 's', 'b': 't'}", "{1: 'x'}",
    "[int64 1, 2, 3]", "{'n': <nan>}", "{'n': <inf>}", "(nan,)", "(uint64 18446744073709551615,)",
    "{'x': <int64 1>, 'x': <int64 2>}", "[byte 1, 2]", "(int64 1, 'two', [<int64 3>])",
    "{'minuend': <int64 42>, 'subtrahend': <int64 23>}", "{'minuend': <int64 42>}", "@a{sv} {}",
  };
  const char *signatures[] = { NULL, "(xx)", "(x)", "(d)", "(t)", "ax", "(xsav)" };
  const char *xx_names[] = { "minuend", "subtrahend", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(GVariant) value = parse_value (values[i]);

      assert_same_meaning (value, FALSE, NULL, NULL, 64);
      for (guint s = 0; s < G_N_ELEMENTS (signatures); s++)
        assert_same_meaning (value, TRUE, signatures[s],
                             g_strcmp0 (signatures[s], "(xx)") == 0 ? xx_names : NULL, 64);
    }

  /* Depth: as a message's member, one level below the message's own. */
  for (guint levels = 1; levels <= 40; levels++)
    {
      g_autoptr(GVariant) value = nested (levels);

      assert_same_meaning (value, FALSE, NULL, NULL, 8);
      assert_same_meaning (value, TRUE, NULL, NULL, 8);
      assert_same_meaning (value, TRUE, NULL, NULL, 0);
    }
}

/* Values a peer can send that are not in GLib's normal form: GLib reads
 * them its own safe way, and they mean what that reading says. */
static void
test_meaning_untrusted (void)
{
  static const struct
  {
    const char *type;
    gsize       len;
    const char *bytes;
  } cases[] = {
    { "a{sv}", 4, "\377\377\377\377" },
    { "a{sv}", 8, "k\0\0\0\0\0\0\0" },
    { "av", 3, "x\0\7" },
    { "s", 3, "abc" },
    { "b", 1, "\2" },
    { "x", 3, "\1\2\3" },
    { "d", 3, "\1\2\3" },
    { "(d)", 3, "\1\2\3" },
    { "mv", 2, "\0\0" },
    { "a{sv}", 13, "k\0\0\0\0\0\0\0\1\0a{\0\2" },
    /* {"k": <int64 1>} in normal form, then spoilt one way at a time. */
    { "a{sv}", 21, "k\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\0x\2\23\23" },
    { "a{sv}", 21, "k\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\0x\2\24\23" },
    { "a{sv}", 21, "k\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\0x\2\23\22" },
    { "a{sv}", 21, "k\0\0\0\1\0\0\0\1\0\0\0\0\0\0\0\0x\2\23\23" },
    { "a{sv}", 21, "k\1\0\0\0\0\0\0\1\0\0\0\0\0\0\0\0x\2\23\23" },
    { "a{sv}", 21, "k\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\0u\2\23\23" },
    { "a{sv}", 21, "\377\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\0x\2\23\23" },
    { "a{sv}", 22, "k\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\0x\2\23\0\23" },
    { "a{sv}", 20, "k\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\0x\2\22" },
    /* [<true>, <'a'>], then spoilt. */
    { "av", 9, "\1\0b\0\0\0\0\0a\0\0s\3\14" },
    { "av", 14, "\1\0b\0\0\0\0\0a\0\0s\3\14" },
    { "av", 14, "\2\0b\0\0\0\0\0a\0\0s\3\14" },
    { "av", 14, "\1\0b\0\0\1\0\0a\0\0s\3\14" },
    { "av", 14, "\1\0b\0\0\0\0\0a\0\0s\14\3" },
    { "av", 14, "\1\0b\0\0\0\0\0a\1\0s\3\14" },
    { "av", 14, "\1\0b\0\0\0\0\0a\0\0s\3\13" },
    { "av", 15, "\1\0b\0\0\0\0\0a\0\0s\3\14\0" },
    { "av", 2, "\0\2" },
    { "mv", 3, "\1\0b" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) bytes = g_bytes_new_static (cases[i].bytes, cases[i].len);
      g_autoptr(GVariant) value =
        g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (cases[i].type), bytes, FALSE));

      assert_same_meaning (value, FALSE, NULL, NULL, 64);
      assert_same_meaning (value, TRUE, NULL, NULL, 64);
    }
}

/* ---------------------------------------------------------------------- */
/* A Tether server, seen by libsoup's WebSocket client                    */

typedef struct
{
  GMainContext            *context;
  TetherServer            *server;
  SoupSession             *session;
  SoupWebsocketConnection *ws;
  GQueue                   received;   /* GBytes*, text frames end in a 0 byte */
  GQueue                   types;      /* GINT_TO_POINTER (SoupWebsocketDataType) */
} ServerFixture;

static void
srv_budget (TetherInvocation *invocation,
            gpointer          user_data)
{
  gint64 left_ms = (tether_invocation_get_deadline (invocation) - g_get_monotonic_time ()) / 1000;

  tether_invocation_return_value (invocation, g_variant_new_int64 (left_ms));
}

static void
srv_message_cb (SoupWebsocketConnection *ws,
                int                      type,
                GBytes                  *bytes,
                ServerFixture           *f)
{
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  /* Text frames get a 0 byte, to be read as strings. */
  if (type == SOUP_WEBSOCKET_DATA_TEXT)
    g_queue_push_tail (&f->received, g_bytes_new_take (g_strndup (data, len), len + 1));
  else
    g_queue_push_tail (&f->received, g_bytes_ref (bytes));
  g_queue_push_tail (&f->types, GINT_TO_POINTER (type));
}

static void
srv_ws_connect_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  ServerFixture *f = user_data;
  g_autoptr(GError) error = NULL;

  f->ws = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &error);
  g_assert_no_error (error);
}

/* Waits for the next frame; returns it and its type. */
static GBytes *
next_frame (ServerFixture *f,
            int           *type)
{
  TETHER_TEST_WAIT_UNTIL (!g_queue_is_empty (&f->received));
  *type = GPOINTER_TO_INT (g_queue_pop_head (&f->types));
  return g_queue_pop_head (&f->received);
}

static json_t *
next_json (ServerFixture *f)
{
  int type;
  g_autoptr(GBytes) bytes = next_frame (f, &type);
  json_t *value;

  g_assert_cmpint (type, ==, SOUP_WEBSOCKET_DATA_TEXT);
  value = json_loads (g_bytes_get_data (bytes, NULL), 0, NULL);
  g_assert_nonnull (value);
  return value;
}

static void
server_fixture_set_up (ServerFixture *f,
                       gconstpointer  user_data)
{
  gboolean offer_binary = GPOINTER_TO_INT (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autofree char *http = NULL;
  const char *protocols[] = { "tether.v1", NULL };
  const char *names[] = { "minuend", "subtrahend", NULL };
  json_t *reply, *features, *feature;
  gboolean accepted = FALSE;
  gsize i;

  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);
  g_queue_init (&f->received);
  g_queue_init (&f->types);

  f->server = tether_server_new ();
  tether_server_add_method (f->server, "echo", TETHER_ACCESS_ANY, tether_test_echo, NULL, NULL);
  tether_server_add_method (f->server, "budget", TETHER_ACCESS_ANY, srv_budget, NULL, NULL);
  tether_server_add_method_full (f->server, "subtract", "(xx)", names, TETHER_ACCESS_ANY,
                                 tether_test_subtract, NULL, NULL);
  tether_server_listen (f->server, "ws://127.0.0.1:0", &error);
  g_assert_no_error (error);

  http = g_strconcat ("http", tether_server_get_uris (f->server)[0] + 2, "/", NULL);
  f->session = soup_session_new ();
  msg = soup_message_new ("GET", http);
  soup_session_websocket_connect_async (f->session, msg, NULL, (char **) protocols, G_PRIORITY_DEFAULT,
                                        NULL, srv_ws_connect_cb, f);
  TETHER_TEST_WAIT_UNTIL (f->ws != NULL);
  g_assert_cmpstr (soup_websocket_connection_get_protocol (f->ws), ==, "tether.v1");
  g_signal_connect (f->ws, "message", G_CALLBACK (srv_message_cb), f);

  soup_websocket_connection_send_text (f->ws, offer_binary
    ? "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rpc.tether.hello\","
      "\"params\":{\"version\":1,\"features\":[\"cancel\",\"binary\"]}}"
    : "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rpc.tether.hello\","
      "\"params\":{\"version\":1,\"features\":[\"cancel\"]}}");
  reply = next_json (f);
  features = json_object_get (json_object_get (reply, "result"), "features");
  g_assert_true (json_is_array (features));
  json_array_foreach (features, i, feature)
    accepted = accepted || g_strcmp0 (json_string_value (feature), "binary") == 0;
  g_assert_cmpint (accepted, ==, offer_binary);
  json_decref (reply);
}

static void
server_fixture_tear_down (ServerFixture *f,
                          gconstpointer  user_data)
{
  soup_websocket_connection_close (f->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  TETHER_TEST_WAIT_UNTIL (soup_websocket_connection_get_state (f->ws) == SOUP_WEBSOCKET_STATE_CLOSED);
  g_clear_object (&f->ws);
  g_clear_object (&f->session);
  tether_server_close (f->server);
  g_assert_finalize_object (g_steal_pointer (&f->server));
  TETHER_TEST_WAIT_UNTIL (_tether_debug_get_attached_sources () == 0);
  g_queue_clear_full (&f->received, (GDestroyNotify) g_bytes_unref);
  g_queue_clear (&f->types);
  g_main_context_pop_thread_default (f->context);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_unref (f->context);
}

static void
send_bytes (ServerFixture *f,
            GBytes        *bytes)
{
  soup_websocket_connection_send_binary (f->ws, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}

/* The result frame for @id, checked byte by byte; returns its value. */
static GVariant *
expect_result (ServerFixture *f,
               gint64         id)
{
  int type;
  g_autoptr(GBytes) bytes = next_frame (f, &type);
  gsize len;
  const guint8 *d = g_bytes_get_data (bytes, &len);
  static const guint8 zeros[7];
  TetherFrame frame;
  GVariant *value;

  g_assert_cmpint (type, ==, SOUP_WEBSOCKET_DATA_BINARY);
  g_assert_cmpuint (len, >, 16);
  g_assert_cmpint (d[0], ==, 'R');
  g_assert_cmpmem (d + 1, 7, zeros, 7);
  for (guint i = 0; i < 8; i++)
    g_assert_cmpint (d[8 + i], ==, ((guint64) id >> (8 * i)) & 0xff);
  g_assert_true (_tether_frame_parse (bytes, &frame, NULL));
  value = g_steal_pointer (&frame.value);
  _tether_frame_clear (&frame);
  return value;
}

static void
test_server_binary (ServerFixture *f,
                    gconstpointer  user_data)
{
  g_autoptr(GBytes) echo = hand_request (5, "echo", 10000, TETHER_FRAME_IMP_ABSENT, seq_dict (41));
  g_autoptr(GVariant) answer = NULL;
  g_autoptr(GVariant) expected = g_variant_ref_sink (seq_dict (41));

  send_bytes (f, echo);
  answer = expect_result (f, 5);
  g_assert_true (g_variant_equal (answer, expected));
  g_clear_pointer (&answer, g_variant_unref);

  /* Named params by the method's declared names, as in JSON. */
  {
    g_autoptr(GBytes) sub = hand_request (6, "subtract", TETHER_FRAME_TIMEOUT_ABSENT, 1,
                                          g_variant_new_parsed ("{'subtrahend': <int64 23>, "
                                                                "'minuend': <int64 42>}"));

    send_bytes (f, sub);
    answer = expect_result (f, 6);
    g_assert_cmpint (g_variant_get_int64 (answer), ==, 19);
    g_clear_pointer (&answer, g_variant_unref);
  }

  /* The timeout in the header is the callee's deadline. */
  {
    g_autoptr(GBytes) budget = hand_request (7, "budget", 2500, 1, NULL);

    send_bytes (f, budget);
    answer = expect_result (f, 7);
    g_assert_cmpint (g_variant_get_int64 (answer), >, 1000);
    g_assert_cmpint (g_variant_get_int64 (answer), <=, 2500);
    g_clear_pointer (&answer, g_variant_unref);
  }

  /* Errors are JSON, as they always are. */
  {
    g_autoptr(GBytes) missing = hand_request (8, "no.such.method", 1000, 1, NULL);
    json_t *error;

    send_bytes (f, missing);
    error = next_json (f);
    g_assert_cmpint (json_integer_value (json_object_get (error, "id")), ==, 8);
    g_assert_cmpint (json_integer_value (json_object_get (json_object_get (error, "error"), "code")), ==,
                     TETHER_REMOTE_ERROR_METHOD_NOT_FOUND);
    json_decref (error);
  }
}

static void
test_server_binary_malformed (ServerFixture *f,
                              gconstpointer  user_data)
{
  g_autoptr(GBytes) echo = hand_request (9, "echo", 1000, TETHER_FRAME_IMP_ABSENT, seq_dict (1));
  g_autoptr(GVariant) answer = NULL;
  static const char bad[] = "Q\377\1\0\0\0\0\0\1\0\0\0\0\0\0\0m\0\0\0\0\1\0\0\1s";
  static const char bad_result[] = "R\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0";
  json_t *error;
  g_autoptr(TetherStatistics) stats = NULL;

  /* A malformed request is answered -32600 with id null and costs
   * nothing else; a malformed response is never answered. */
  soup_websocket_connection_send_binary (f->ws, bad_result, sizeof bad_result - 1);
  soup_websocket_connection_send_binary (f->ws, bad, sizeof bad - 1);
  error = next_json (f);
  g_assert_true (json_is_null (json_object_get (error, "id")));
  g_assert_cmpint (json_integer_value (json_object_get (json_object_get (error, "error"), "code")), ==,
                   TETHER_REMOTE_ERROR_INVALID_REQUEST);
  json_decref (error);

  send_bytes (f, echo);
  answer = expect_result (f, 9);
  g_assert_true (g_queue_is_empty (&f->received));
  stats = tether_server_get_statistics (f->server);
  g_assert_cmpuint (stats->invalid_messages, ==, 2);
}

static void
test_server_no_binary (ServerFixture *f,
                       gconstpointer  user_data)
{
  g_autoptr(GBytes) echo = hand_request (5, "echo", 1000, TETHER_FRAME_IMP_ABSENT, seq_dict (41));
  json_t *answer;

  /* Not negotiated: refused, and answers stay text. */
  send_bytes (f, echo);
  answer = next_json (f);
  g_assert_cmpint (json_integer_value (json_object_get (json_object_get (answer, "error"), "code")), ==,
                   TETHER_REMOTE_ERROR_INVALID_REQUEST);
  json_decref (answer);

  soup_websocket_connection_send_text (f->ws, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\","
                                              "\"params\":{\"seq\":41}}");
  answer = next_json (f);
  g_assert_cmpint (json_integer_value (json_object_get (json_object_get (answer, "result"), "seq")), ==, 41);
  json_decref (answer);
}

/* ---------------------------------------------------------------------- */
/* A Tether client, seen by libsoup's WebSocket server                    */

typedef struct
{
  GMainContext            *context;
  SoupServer              *soup;
  GSocketListener         *listener;
  GSocketConnection       *conn;
  SoupWebsocketConnection *ws;
  GQueue                   received;   /* GBytes* */
  GQueue                   types;
  char                    *uri;
} ClientFixture;

static void
cli_message_cb (SoupWebsocketConnection *ws,
                int                      type,
                GBytes                  *bytes,
                ClientFixture           *f)
{
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  json_t *hello;

  if (type == SOUP_WEBSOCKET_DATA_TEXT && (hello = json_loadb (data, len, 0, NULL)) != NULL &&
      g_strcmp0 (json_string_value (json_object_get (hello, "method")), "rpc.tether.hello") == 0)
    {
      json_t *offered = json_object_get (json_object_get (hello, "params"), "features");
      json_t *reply = json_pack ("{s:s, s:O, s:{s:i, s:[]}}", "jsonrpc", "2.0",
                                 "id", json_object_get (hello, "id"),
                                 "result", "version", 1, "features");
      g_autofree char *text = NULL;

      /* Accept every feature offered. */
      json_object_set (json_object_get (reply, "result"), "features", offered);
      text = json_dumps (reply, JSON_COMPACT);
      soup_websocket_connection_send_text (ws, text);
      json_decref (reply);
      json_decref (hello);
      return;
    }
  if (type == SOUP_WEBSOCKET_DATA_TEXT)
    {
      if (hello != NULL)
        json_decref (hello);
      g_queue_push_tail (&f->received, g_bytes_new_take (g_strndup (data, len), len + 1));
    }
  else
    g_queue_push_tail (&f->received, g_bytes_ref (bytes));
  g_queue_push_tail (&f->types, GINT_TO_POINTER (type));
}

static void
websocket_cb (SoupServer              *server,
              SoupServerMessage       *msg,
              const char              *path,
              SoupWebsocketConnection *ws,
              gpointer                 user_data)
{
  ClientFixture *f = user_data;

  f->ws = g_object_ref (ws);
  g_signal_connect (ws, "message", G_CALLBACK (cli_message_cb), f);
}

/* Accepted by hand and handed to libsoup's server, so that the test owns
 * the socket (libsoup's own listener keeps the accepted socket). */
static void
accept_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  ClientFixture *f = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GSocketAddress) remote = NULL;

  f->conn = g_socket_listener_accept_finish (G_SOCKET_LISTENER (source), result, NULL, &error);
  g_assert_no_error (error);
  local = g_socket_connection_get_local_address (f->conn, &error);
  g_assert_no_error (error);
  remote = g_socket_connection_get_remote_address (f->conn, &error);
  g_assert_no_error (error);
  g_assert_true (soup_server_accept_iostream (f->soup, G_IO_STREAM (f->conn), local, remote, &error));
  g_assert_no_error (error);
}

static void
client_fixture_set_up (ClientFixture *f,
                       gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  const char *protocols[] = { "tether.v1", NULL };
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);
  g_queue_init (&f->received);
  g_queue_init (&f->types);
  f->soup = soup_server_new (NULL, NULL);
  soup_server_add_websocket_handler (f->soup, NULL, NULL, (char **) protocols, websocket_cb, f, NULL);
  f->listener = g_socket_listener_new ();
  g_socket_listener_add_address (f->listener, any_port, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                 NULL, &bound, &error);
  g_assert_no_error (error);
  f->uri = g_strdup_printf ("ws://127.0.0.1:%u",
                            g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  g_socket_listener_accept_async (f->listener, NULL, accept_cb, f);
}

static void
client_fixture_tear_down (ClientFixture *f,
                          gconstpointer  user_data)
{
  /* The client closed; wait for libsoup's side to finish closing too. */
  TETHER_TEST_WAIT_UNTIL (f->ws != NULL &&
                          soup_websocket_connection_get_state (f->ws) == SOUP_WEBSOCKET_STATE_CLOSED);
  g_assert_finalize_object (g_steal_pointer (&f->ws));
  g_clear_object (&f->conn);
  g_socket_listener_close (f->listener);
  g_clear_object (&f->listener);
  soup_server_disconnect (f->soup);
  g_assert_finalize_object (g_steal_pointer (&f->soup));
  g_queue_clear_full (&f->received, (GDestroyNotify) g_bytes_unref);
  g_queue_clear (&f->types);
  g_free (f->uri);
  TETHER_TEST_WAIT_UNTIL (_tether_debug_get_attached_sources () == 0);
  g_main_context_pop_thread_default (f->context);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_unref (f->context);
}

static void
call_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  GVariant **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = tether_client_call_finish (TETHER_CLIENT (source), result, &error);
  g_assert_no_error (error);
}

static void
run_client (ClientFixture *f,
            gboolean       binary)
{
  g_autoptr(TetherClient) client = tether_client_new (f->uri);
  g_autoptr(GVariant) answer = NULL;
  g_autoptr(GBytes) request = NULL;
  int type;
  GError *error;

  g_object_set (client, "binary-frames", binary, NULL);
  error = tether_test_client_connect (client);
  g_assert_no_error (error);

  tether_client_call_async (client, "ping", seq_dict (12), 5000, NULL, call_cb, &answer);
  TETHER_TEST_WAIT_UNTIL (!g_queue_is_empty (&f->received));
  type = GPOINTER_TO_INT (g_queue_pop_head (&f->types));
  request = g_queue_pop_head (&f->received);

  if (binary)
    {
      gsize len;
      const guint8 *d = g_bytes_get_data (request, &len);
      TetherFrame frame;
      g_autoptr(GVariant) expected = g_variant_ref_sink (seq_dict (12));
      GString *result;

      /* The request, byte by byte. */
      g_assert_cmpint (type, ==, SOUP_WEBSOCKET_DATA_BINARY);
      g_assert_cmpint (d[0], ==, 'Q');
      g_assert_cmpint (d[2] | d[3] << 8, ==, 4);
      g_assert_cmpmem (d + 16, 4, "ping", 4);
      g_assert_true (_tether_frame_parse (request, &frame, NULL));
      g_assert_cmpint (frame.timeout_ms, >, 4000);
      g_assert_cmpint (frame.timeout_ms, <=, 5000);
      g_assert_true (g_variant_equal (frame.value, expected));

      /* A result JSON would carry as {"n": 1}: an a{sv}, as in JSON. */
      result = _tether_frame_new_result (frame.id);
      _tether_frame_append_value (result, g_variant_new_parsed ("{'n': <uint32 1>}"));
      soup_websocket_connection_send_binary (f->ws, result->str, result->len);
      g_string_free (result, TRUE);
      _tether_frame_clear (&frame);
    }
  else
    {
      json_t *message;
      g_autofree char *reply = NULL;

      g_assert_cmpint (type, ==, SOUP_WEBSOCKET_DATA_TEXT);
      message = json_loads (g_bytes_get_data (request, NULL), 0, NULL);
      g_assert_cmpint (json_integer_value (json_object_get (json_object_get (message, "params"), "seq")), ==, 12);
      reply = g_strdup_printf ("{\"jsonrpc\":\"2.0\",\"id\":%" G_GINT64_FORMAT ",\"result\":{\"n\":1}}",
                               (gint64) json_integer_value (json_object_get (message, "id")));
      soup_websocket_connection_send_text (f->ws, reply);
      json_decref (message);
    }

  TETHER_TEST_WAIT_UNTIL (answer != NULL);
  {
    g_autoptr(GVariant) expected = g_variant_ref_sink (g_variant_new_parsed ("{'n': <int64 1>}"));

    g_assert_true (g_variant_equal (answer, expected));
  }
  tether_client_close (client);
  g_assert_finalize_object (g_steal_pointer (&client));
}

static void
test_client_binary (ClientFixture *f,
                    gconstpointer  user_data)
{
  run_client (f, TRUE);
}

static void
test_client_json (ClientFixture *f,
                  gconstpointer  user_data)
{
  run_client (f, FALSE);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tether/binary/frame/layout", test_frame_layout);
  g_test_add_func ("/tether/binary/frame/round-trip", test_frame_round_trip);
  g_test_add_func ("/tether/binary/frame/malformed", test_frame_malformed);
  g_test_add_func ("/tether/binary/meaning/as-json", test_meaning);
  g_test_add_func ("/tether/binary/meaning/untrusted", test_meaning_untrusted);
  g_test_add ("/tether/binary/server/calls", ServerFixture, GINT_TO_POINTER (TRUE),
              server_fixture_set_up, test_server_binary, server_fixture_tear_down);
  g_test_add ("/tether/binary/server/malformed", ServerFixture, GINT_TO_POINTER (TRUE),
              server_fixture_set_up, test_server_binary_malformed, server_fixture_tear_down);
  g_test_add ("/tether/binary/server/not-offered", ServerFixture, GINT_TO_POINTER (FALSE),
              server_fixture_set_up, test_server_no_binary, server_fixture_tear_down);
  g_test_add ("/tether/binary/client/binary", ClientFixture, NULL,
              client_fixture_set_up, test_client_binary, client_fixture_tear_down);
  g_test_add ("/tether/binary/client/json", ClientFixture, NULL,
              client_fixture_set_up, test_client_json, client_fixture_tear_down);
  return g_test_run ();
}
