/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The wire, as a plain JSON-RPC 2.0 peer sees it: every example of the
 * JSON-RPC 2.0 specification (section 7), sent as raw text frames by
 * libsoup's own WebSocket client (no subprotocol, no hello) to a Tether
 * server over TCP loopback, with the answers compared as JSON. Error
 * messages are free text: only codes and ids are compared. */

#include <jansson.h>
#include <libsoup/soup.h>
#include <string.h>

#include "tether-test-common.h"
#include "tether-error-private.h"
#include "tether-scheduler-private.h"

typedef struct
{
  GMainContext            *context;
  TetherServer            *server;
  SoupSession             *session;
  SoupWebsocketConnection *ws;
  GQueue                   received;   /* char* */
} Fixture;

static void
srv_sum (TetherInvocation *invocation,
         gpointer          user_data)
{
  GVariantIter iter;
  GVariant *child;
  gint64 sum = 0;

  g_variant_iter_init (&iter, tether_invocation_get_parameters (invocation));
  while ((child = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_autoptr(GVariant) boxed = child;
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      sum += g_variant_get_int64 (value);
    }
  tether_invocation_return_value (invocation, g_variant_new_int64 (sum));
}

static void
srv_get_data (TetherInvocation *invocation,
              gpointer          user_data)
{
  tether_invocation_return_value (invocation, g_variant_new ("(sx)", "hello", (gint64) 5));
}

static void
srv_nothing (TetherInvocation *invocation,
             gpointer          user_data)
{
  tether_invocation_return_value (invocation, NULL);
}

static void
message_cb (SoupWebsocketConnection *ws,
            int                      type,
            GBytes                  *bytes,
            Fixture                 *f)
{
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  g_queue_push_tail (&f->received, g_strndup (data, len));
}

static void
ws_connect_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Fixture *f = user_data;
  g_autoptr(GError) error = NULL;

  f->ws = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &error);
  g_assert_no_error (error);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autofree char *http = NULL;
  const char *names[] = { "minuend", "subtrahend", NULL };

  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);
  g_queue_init (&f->received);

  f->server = tether_server_new ();
  tether_server_add_method_full (f->server, "subtract", "(xx)", names, TETHER_ACCESS_ANY,
                                 tether_test_subtract, NULL, NULL);
  tether_server_add_method (f->server, "sum", TETHER_ACCESS_ANY, srv_sum, NULL, NULL);
  tether_server_add_method (f->server, "get_data", TETHER_ACCESS_ANY, srv_get_data, NULL, NULL);
  tether_server_add_method (f->server, "update", TETHER_ACCESS_ANY, srv_nothing, NULL, NULL);
  tether_server_add_method (f->server, "notify_hello", TETHER_ACCESS_ANY, srv_nothing, NULL, NULL);
  tether_server_add_method (f->server, "echo", TETHER_ACCESS_ANY, tether_test_echo, NULL, NULL);
  tether_server_listen (f->server, "ws://127.0.0.1:0", &error);
  g_assert_no_error (error);

  /* ws://host:port → http://host:port/ for libsoup's client. */
  http = g_strconcat ("http", tether_server_get_uris (f->server)[0] + 2, "/", NULL);
  f->session = soup_session_new ();
  msg = soup_message_new ("GET", http);
  soup_session_websocket_connect_async (f->session, msg, NULL, NULL, G_PRIORITY_DEFAULT,
                                        NULL, ws_connect_cb, f);
  TETHER_TEST_WAIT_UNTIL (f->ws != NULL);
  g_assert_null (soup_websocket_connection_get_protocol (f->ws));
  g_signal_connect (f->ws, "message", G_CALLBACK (message_cb), f);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  user_data)
{
  soup_websocket_connection_close (f->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  TETHER_TEST_WAIT_UNTIL (soup_websocket_connection_get_state (f->ws) == SOUP_WEBSOCKET_STATE_CLOSED);
  g_clear_object (&f->ws);
  g_clear_object (&f->session);
  tether_server_close (f->server);
  g_assert_finalize_object (g_steal_pointer (&f->server));
  TETHER_TEST_WAIT_UNTIL (_tether_debug_get_attached_sources () == 0);
  g_queue_clear_full (&f->received, g_free);
  g_main_context_pop_thread_default (f->context);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_unref (f->context);
}



/* Error messages are free text: keep only what the specification fixes. */
static void
normalize (json_t *value)
{
  if (json_is_array (value))
    {
      size_t i;
      json_t *element;

      json_array_foreach (value, i, element)
        normalize (element);
      return;
    }
  if (json_is_object (value))
    {
      json_t *error = json_object_get (value, "error");

      if (json_is_object (error))
        {
          json_object_del (error, "message");
          json_object_del (error, "data");
        }
    }
}

static int
compare_by_id (const void *a,
               const void *b)
{
  json_t *x = *(json_t **) a, *y = *(json_t **) b;
  g_autofree char *ix = json_dumps (json_object_get (x, "id"), JSON_ENCODE_ANY);
  g_autofree char *iy = json_dumps (json_object_get (y, "id"), JSON_ENCODE_ANY);

  return strcmp (ix, iy);
}

/* Batches are answered in any order: sort by id before comparing. */
static json_t *
canonical (const char *text)
{
  json_error_t error;
  json_t *value = json_loads (text, JSON_DECODE_ANY, &error);
  g_autoptr(GPtrArray) items = NULL;
  json_t *sorted;
  size_t i;
  json_t *element;

  if (value == NULL)
    g_error ("not JSON: %s (%s)", text, error.text);
  normalize (value);
  if (!json_is_array (value))
    return value;

  items = g_ptr_array_new ();
  json_array_foreach (value, i, element)
    g_ptr_array_add (items, element);
  qsort (items->pdata, items->len, sizeof (gpointer), compare_by_id);
  sorted = json_array ();
  for (guint k = 0; k < items->len; k++)
    json_array_append (sorted, items->pdata[k]);
  json_decref (value);
  return sorted;
}

/* Sends @request; @expected is the answer, or NULL for none (checked by a
 * request sent right after, whose answer must come first). */
static void
exchange (Fixture    *f,
          const char *request,
          const char *expected)
{
  g_autofree char *answer = NULL;

  soup_websocket_connection_send_text (f->ws, request);
  if (expected == NULL)
    soup_websocket_connection_send_text (f->ws, "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"id\": \"sentinel\"}");
  TETHER_TEST_WAIT_UNTIL (!g_queue_is_empty (&f->received));
  answer = g_queue_pop_head (&f->received);

  {
    json_t *got = canonical (answer);
    json_t *want = canonical (expected != NULL ? expected
                                               : "{\"jsonrpc\": \"2.0\", \"result\": null, \"id\": \"sentinel\"}");

    if (!json_equal (got, want))
      g_error ("request %s\n  expected %s\n  got      %s", request,
               expected != NULL ? expected : "(no answer)", answer);
    json_decref (got);
    json_decref (want);
  }
}

typedef struct
{
  const char *name;
  const char *request;
  const char *expected;
} Case;

/* JSON-RPC 2.0 specification, section 7, in order. */
static const Case spec_cases[] = {
  { "positional-1", "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [42, 23], \"id\": 1}",
    "{\"jsonrpc\": \"2.0\", \"result\": 19, \"id\": 1}" },
  { "positional-2", "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [23, 42], \"id\": 2}",
    "{\"jsonrpc\": \"2.0\", \"result\": -19, \"id\": 2}" },
  { "named-1", "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": {\"subtrahend\": 23, \"minuend\": 42}, \"id\": 3}",
    "{\"jsonrpc\": \"2.0\", \"result\": 19, \"id\": 3}" },
  { "named-2", "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": {\"minuend\": 42, \"subtrahend\": 23}, \"id\": 4}",
    "{\"jsonrpc\": \"2.0\", \"result\": 19, \"id\": 4}" },
  { "notification-1", "{\"jsonrpc\": \"2.0\", \"method\": \"update\", \"params\": [1,2,3,4,5]}", NULL },
  { "notification-2", "{\"jsonrpc\": \"2.0\", \"method\": \"foobar\"}", NULL },
  { "no-such-method", "{\"jsonrpc\": \"2.0\", \"method\": \"foobar\", \"id\": \"1\"}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32601, \"message\": \"Method not found\"}, \"id\": \"1\"}" },
  { "invalid-json", "{\"jsonrpc\": \"2.0\", \"method\": \"foobar, \"params\": \"bar\", \"baz]",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32700, \"message\": \"Parse error\"}, \"id\": null}" },
  { "invalid-request", "{\"jsonrpc\": \"2.0\", \"method\": 1, \"params\": \"bar\"}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid Request\"}, \"id\": null}" },
  { "batch-invalid-json", "[\n  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},\n  {\"jsonrpc\": \"2.0\", \"method\"\n]",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32700, \"message\": \"Parse error\"}, \"id\": null}" },
  { "batch-empty", "[]",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid Request\"}, \"id\": null}" },
  { "batch-invalid-one", "[1]",
    "[{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid Request\"}, \"id\": null}]" },
  { "batch-invalid-three", "[1,2,3]",
    "[{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600}, \"id\": null},"
    " {\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600}, \"id\": null},"
    " {\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600}, \"id\": null}]" },
  { "batch-mixed",
    "[\n"
    "  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},\n"
    "  {\"jsonrpc\": \"2.0\", \"method\": \"notify_hello\", \"params\": [7]},\n"
    "  {\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [42,23], \"id\": \"2\"},\n"
    "  {\"foo\": \"boo\"},\n"
    "  {\"jsonrpc\": \"2.0\", \"method\": \"foo.get\", \"params\": {\"name\": \"myself\"}, \"id\": \"5\"},\n"
    "  {\"jsonrpc\": \"2.0\", \"method\": \"get_data\", \"id\": \"9\"}\n"
    "]",
    "[\n"
    "  {\"jsonrpc\": \"2.0\", \"result\": 7, \"id\": \"1\"},\n"
    "  {\"jsonrpc\": \"2.0\", \"result\": 19, \"id\": \"2\"},\n"
    "  {\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid Request\"}, \"id\": null},\n"
    "  {\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32601, \"message\": \"Method not found\"}, \"id\": \"5\"},\n"
    "  {\"jsonrpc\": \"2.0\", \"result\": [\"hello\", 5], \"id\": \"9\"}\n"
    "]" },
  { "batch-notifications",
    "[\n"
    "  {\"jsonrpc\": \"2.0\", \"method\": \"notify_sum\", \"params\": [1,2,4]},\n"
    "  {\"jsonrpc\": \"2.0\", \"method\": \"notify_hello\", \"params\": [7]}\n"
    "]", NULL },
};

/* Ids and odd input beyond the specification's examples. */
static const Case id_cases[] = {
  { "string-id", "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"id\": \"é\\u00e9 \\ud83d\\ude00\"}",
    "{\"jsonrpc\": \"2.0\", \"result\": null, \"id\": \"éé 😀\"}" },
  { "int64-max-id", "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"id\": 9223372036854775807}",
    "{\"jsonrpc\": \"2.0\", \"result\": null, \"id\": 9223372036854775807}" },
  { "int64-min-id", "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"id\": -9223372036854775808}",
    "{\"jsonrpc\": \"2.0\", \"result\": null, \"id\": -9223372036854775808}" },
  { "fraction-id", "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"id\": 1.5}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600}, \"id\": null}" },
  { "object-id", "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"id\": {\"a\": 1}}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600}, \"id\": null}" },
  { "null-id", "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"id\": null}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600}, \"id\": null}" },
  { "huge-id", "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"id\": 9223372036854775808}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32700}, \"id\": null}" },
  { "wrong-version", "{\"jsonrpc\": \"1.0\", \"method\": \"echo\", \"id\": 7}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600}, \"id\": 7}" },
  { "params-scalar", "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"params\": 3, \"id\": 8}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600}, \"id\": 8}" },
  { "wrong-type", "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [42, \"x\"], \"id\": 9}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32602}, \"id\": 9}" },
  { "too-many", "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [1, 2, 3], \"id\": 10}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32602}, \"id\": 10}" },
  { "duplicate-key", "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"method\": \"sum\", \"id\": 11}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32700}, \"id\": null}" },
  { "single-quotes", "{'jsonrpc': '2.0', 'method': 'echo', 'id': 12}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32700}, \"id\": null}" },
  { "comment", "{\"jsonrpc\": \"2.0\", /* hi */ \"method\": \"echo\", \"id\": 13}",
    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32700}, \"id\": null}" },
  { "stray-response", "{\"jsonrpc\": \"2.0\", \"result\": 1, \"id\": 424242}", NULL },
  { "echo-roundtrip", "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"params\": {\"a\": [1, 2.5, true, null, \"x\"], \"b\": {}}, \"id\": 14}",
    "{\"jsonrpc\": \"2.0\", \"result\": {\"a\": [1, 2.5, true, null, \"x\"], \"b\": {}}, \"id\": 14}" },
};

static void
run_case (Fixture       *f,
          gconstpointer  user_data)
{
  const Case *c = user_data;

  exchange (f, c->request, c->expected);
  /* Whatever came before, the connection still serves. */
  exchange (f, "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [2, 1], \"id\": \"after\"}",
            "{\"jsonrpc\": \"2.0\", \"result\": 1, \"id\": \"after\"}");
}

static void
test_deep_nesting (Fixture       *f,
                   gconstpointer  user_data)
{
  GString *deep = g_string_new (NULL);

  /* 100,000 '[' (json-glib 1.6 segfaults on this, well under any size
   * cap): answered, not crashed. */
  for (int i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  exchange (f, deep->str, "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600}, \"id\": null}");
  g_string_free (deep, TRUE);
  run_case (f, &spec_cases[0]);
}

typedef struct
{
  SoupWebsocketConnection *ws;
  GError                  *error;
  gboolean                 done;
} OriginResult;

static void
origin_connect_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  OriginResult *r = user_data;

  r->ws = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &r->error);
  r->done = TRUE;
}

static void
connect_with_origin (Fixture      *f,
                     const char   *origin,
                     OriginResult *r)
{
  g_autofree char *http = g_strconcat ("http", tether_server_get_uris (f->server)[0] + 2, "/", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", http);

  soup_session_websocket_connect_async (f->session, msg, origin, NULL, G_PRIORITY_DEFAULT,
                                        NULL, origin_connect_cb, r);
  TETHER_TEST_WAIT_UNTIL (r->done);
}

static void
test_origin (Fixture       *f,
             gconstpointer  user_data)
{
  OriginResult r = { 0 };
  const char *allowed[] = { "https://app.example.org", NULL };

  /* A web page's upgrade is refused with 403 unless its origin is listed. */
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, "*web origin*evil.example*");
  connect_with_origin (f, "https://evil.example", &r);
  g_test_assert_expected_messages ();
  g_assert_error (r.error, SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_ERROR_NOT_WEBSOCKET);
  g_assert_null (r.ws);
  g_clear_error (&r.error);

  g_object_set (f->server, "allowed-origins", allowed, NULL);
  memset (&r, 0, sizeof r);
  connect_with_origin (f, "https://app.example.org", &r);
  g_assert_no_error (r.error);
  g_assert_nonnull (r.ws);
  soup_websocket_connection_close (r.ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  TETHER_TEST_WAIT_UNTIL (soup_websocket_connection_get_state (r.ws) == SOUP_WEBSOCKET_STATE_CLOSED);
  g_clear_object (&r.ws);
}

/* The one mapping between GErrors and wire codes, both ways: every
 * Tether error a peer can be answered with comes back as itself (or, for
 * the three kinds of bad message, as the first), and what has no wire
 * code of its own is -32603 one way and TETHER_ERROR_FAILED the other. */
static void
test_error_codes (void)
{
  static const struct
  {
    TetherError local;
    int         wire;
    TetherError back;
  } cases[] = {
    { TETHER_ERROR_INVALID_MESSAGE, -32600, TETHER_ERROR_INVALID_MESSAGE },
    { TETHER_ERROR_MESSAGE_TOO_LARGE, -32600, TETHER_ERROR_INVALID_MESSAGE },
    { TETHER_ERROR_TOO_DEEP, -32600, TETHER_ERROR_INVALID_MESSAGE },
    { TETHER_ERROR_NO_SUCH_METHOD, -32601, TETHER_ERROR_NO_SUCH_METHOD },
    { TETHER_ERROR_INVALID_PARAMS, -32602, TETHER_ERROR_INVALID_PARAMS },
    { TETHER_ERROR_RESOURCE_EXHAUSTED, -32003, TETHER_ERROR_RESOURCE_EXHAUSTED },
    { TETHER_ERROR_UNAUTHENTICATED, -32004, TETHER_ERROR_UNAUTHENTICATED },
    { TETHER_ERROR_PERMISSION_DENIED, -32005, TETHER_ERROR_PERMISSION_DENIED },
    { TETHER_ERROR_IMPERSONATION_DENIED, -32006, TETHER_ERROR_IMPERSONATION_DENIED },
    { TETHER_ERROR_CALLBACK_REJECTED, -32007, TETHER_ERROR_CALLBACK_REJECTED },
    { TETHER_ERROR_CHANNEL_BINDING_FAILED, -32008, TETHER_ERROR_CHANNEL_BINDING_FAILED },
    { TETHER_ERROR_HANDSHAKE_FAILED, -32603, TETHER_ERROR_FAILED },
    { TETHER_ERROR_FAILED, -32603, TETHER_ERROR_FAILED },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = g_error_new_literal (TETHER_ERROR, cases[i].local, "x");

      g_assert_cmpint (_tether_error_to_wire_code (error), ==, cases[i].wire);
      g_assert_cmpint (_tether_error_from_wire_code (cases[i].wire), ==, cases[i].back);
    }

  {
    g_autoptr(GError) cancelled = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "x");
    g_autoptr(GError) timed_out = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "x");
    g_autoptr(GError) remote = g_error_new_literal (TETHER_REMOTE_ERROR, 12345, "x");
    g_autoptr(GError) other = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "x");

    g_assert_cmpint (_tether_error_to_wire_code (cancelled), ==, -32002);
    g_assert_cmpint (_tether_error_to_wire_code (timed_out), ==, -32001);
    g_assert_cmpint (_tether_error_to_wire_code (remote), ==, 12345);
    g_assert_cmpint (_tether_error_to_wire_code (other), ==, -32603);
    g_assert_cmpint (_tether_error_from_wire_code (-32700), ==, TETHER_ERROR_FAILED);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tether/wire/error-codes", test_error_codes);

  for (guint i = 0; i < G_N_ELEMENTS (spec_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/tether/wire/spec/%s", spec_cases[i].name);

      g_test_add (path, Fixture, &spec_cases[i], fixture_set_up, run_case, fixture_tear_down);
    }
  for (guint i = 0; i < G_N_ELEMENTS (id_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/tether/wire/input/%s", id_cases[i].name);

      g_test_add (path, Fixture, &id_cases[i], fixture_set_up, run_case, fixture_tear_down);
    }
  g_test_add ("/tether/wire/web-origin-refused", Fixture, NULL, fixture_set_up,
              test_origin, fixture_tear_down);
  g_test_add ("/tether/wire/input/deep-nesting", Fixture, NULL, fixture_set_up,
              test_deep_nesting, fixture_tear_down);

  return g_test_run ();
}
