/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Issue #12: a service describes itself. rpc.discover over real sockets
 * (unix:, where the caller is authenticated, and ws://, where it is
 * not): the document's shape, what each caller is shown, who may ask,
 * the client's own description of its callbacks, and the schemas the
 * GVariant types map to. That the document is valid OpenRPC, and that
 * its schemas accept what the codec accepts, is checked by
 * tests/python/test_discover.py with the official meta-schema. */

#include <string.h>
#include <glib/gstdio.h>

#include "tether-test-common.h"
#include "tether-scheduler-private.h"
#include "tether-json-private.h"
#include "tether-json-schema-private.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (json_t, json_decref)

typedef struct
{
  TetherTransportKind kind;
} FixtureData;

typedef struct
{
  GMainContext *context;
  char         *dir;
  TetherServer *server;
  TetherClient *client;
  TetherPeer   *peer;
  guint         peers_connected;
  guint         peers_disconnected;
  guint         authorize_calls;
  gboolean      authorize_answer;
} Fixture;

static void
handle_null (TetherInvocation *invocation,
             gpointer          user_data)
{
  tether_invocation_return_value (invocation, NULL);
}

static void
peer_connected_cb (TetherServer *server,
                   TetherPeer   *peer,
                   Fixture      *f)
{
  f->peers_connected++;
  g_set_object (&f->peer, peer);
}

static void
peer_disconnected_cb (TetherServer *server,
                      TetherPeer   *peer,
                      Fixture      *f)
{
  f->peers_disconnected++;
}

static gboolean
authorize_cb (TetherServer     *server,
              TetherPeer       *peer,
              TetherInvocation *invocation,
              Fixture          *f)
{
  g_assert_cmpstr (tether_invocation_get_method_name (invocation), ==, "rpc.discover");
  f->authorize_calls++;
  return f->authorize_answer;
}

/* The service of these tests: each access, a described method that makes
 * a callback, and callbacks made by open and by hidden methods. */
static void
add_methods (TetherServer *server)
{
  const char *work_names[] = { "steps", "delay_ms", NULL };
  const char *sub_names[] = { "minuend", "subtrahend", NULL };
  g_autoptr(TetherMethodInfo) work = tether_method_info_new ("work");
  g_autoptr(TetherMethodInfo) secret = tether_method_info_new ("secret");
  g_autoptr(TetherMethodInfo) progress = tether_method_info_new ("progress");
  g_autoptr(TetherMethodInfo) reveal = tether_method_info_new ("reveal");
  g_autoptr(TetherMethodInfo) sub = tether_method_info_new ("subtract");

  tether_method_info_set_summary (work, "Works in steps");
  tether_method_info_set_description (work, "Calls *progress* once per step.");
  tether_method_info_set_params (work, "(mxmx)", work_names);
  tether_method_info_set_param_description (work, "steps", "how many steps");
  tether_method_info_set_result (work, "a{sv}", "{\"done\": steps}");
  tether_method_info_add_callback (work, "progress");
  tether_method_info_add_callback (work, "progress");
  tether_server_add_method_with_info (server, work, TETHER_ACCESS_ANY, handle_null, NULL, NULL);

  tether_method_info_add_callback (secret, "reveal");
  tether_method_info_set_deprecated (secret, TRUE);
  tether_server_add_method_with_info (server, secret, TETHER_ACCESS_AUTHENTICATED,
                                      handle_null, NULL, NULL);
  tether_server_add_method (server, "custom", TETHER_ACCESS_CUSTOM, handle_null, NULL, NULL);
  tether_server_add_method (server, "open", TETHER_ACCESS_ANY, handle_null, NULL, NULL);

  /* Described after it was added, as the bindings do. */
  tether_server_add_method_full (server, "subtract", "(xx)", sub_names, TETHER_ACCESS_ANY,
                                 tether_test_subtract, NULL, NULL);
  tether_method_info_set_result (sub, "x", NULL);
  g_assert_true (tether_server_describe_method (server, sub));

  tether_method_info_set_params (progress, "(xx)", (const char *[]) { "step", "of", NULL });
  tether_server_add_callback_info (server, progress);
  tether_server_add_callback_info (server, reveal);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  user_data)
{
  const FixtureData *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;

  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);
  f->dir = g_dir_make_tmp ("tether-test-XXXXXX", &error);
  g_assert_no_error (error);

  f->server = tether_server_new ();
  add_methods (f->server);
  g_signal_connect (f->server, "peer-connected", G_CALLBACK (peer_connected_cb), f);
  g_signal_connect (f->server, "peer-disconnected", G_CALLBACK (peer_disconnected_cb), f);
  g_signal_connect (f->server, "authorize-call", G_CALLBACK (authorize_cb), f);

  uri = data->kind == TETHER_TRANSPORT_UNIX ? g_strdup_printf ("unix:%s/d.sock", f->dir)
                                            : g_strdup ("ws://127.0.0.1:0");
  tether_server_listen (f->server, uri, &error);
  g_assert_no_error (error);

  f->client = tether_client_new (tether_server_get_uris (f->server)[0]);
  error = tether_test_client_connect (f->client);
  g_assert_no_error (error);
  TETHER_TEST_WAIT_UNTIL (f->peers_connected == 1);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  user_data)
{
  tether_client_close (f->client);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == f->peers_connected);
  g_assert_finalize_object (g_steal_pointer (&f->client));
  g_clear_object (&f->peer);
  tether_server_close (f->server);
  g_assert_finalize_object (g_steal_pointer (&f->server));
  TETHER_TEST_WAIT_UNTIL (_tether_debug_get_attached_sources () == 0);

  g_main_context_pop_thread_default (f->context);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_unref (f->context);
  g_rmdir (f->dir);
  g_free (f->dir);
}

/* -- helpers ----------------------------------------------------------- */

typedef struct
{
  gboolean  done;
  GVariant *result;
  GError   *error;
} CallResult;

static void
client_call_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  CallResult *r = user_data;

  r->result = tether_client_call_finish (TETHER_CLIENT (source), result, &r->error);
  r->done = TRUE;
}

static void
peer_call_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CallResult *r = user_data;

  r->result = tether_peer_call_finish (TETHER_PEER (source), result, &r->error);
  r->done = TRUE;
}

/* rpc.discover from @f's client: the document, or NULL and @error. */
static GVariant *
discover (Fixture  *f,
          GError  **error)
{
  CallResult r = { 0 };

  tether_client_call_async (f->client, "rpc.discover", NULL, 5000, NULL, client_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  if (r.error != NULL)
    g_propagate_error (error, r.error);
  return r.result;
}

/* The JSON text of @value, the way the wire writes it. */
static char *
to_json (GVariant *value)
{
  g_autoptr(json_t) json = _tether_variant_to_json (value);

  return _tether_json_dump (json, NULL);
}

/* @doc's member @key (a{sv} all the way, as a Tether client reads it). */
static GVariant *
member (GVariant   *object,
        const char *key)
{
  GVariant *value = g_variant_lookup_value (object, key, NULL);

  g_assert_nonnull (value);
  return value;
}

/* The method object named @name in the list @methods (av), or NULL. */
static GVariant *
find_named (GVariant   *methods,
            const char *name)
{
  for (gsize i = 0; i < g_variant_n_children (methods); i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (methods, i);
      g_autoptr(GVariant) object = g_variant_get_variant (boxed);
      const char *got = NULL;

      if (g_variant_lookup (object, "name", "&s", &got) && strcmp (got, name) == 0)
        return g_steal_pointer (&object);
    }
  return NULL;
}

static char *
method_names (GVariant *methods)
{
  GString *names = g_string_new (NULL);

  for (gsize i = 0; i < g_variant_n_children (methods); i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (methods, i);
      g_autoptr(GVariant) object = g_variant_get_variant (boxed);
      const char *name = NULL;

      g_assert_true (g_variant_lookup (object, "name", "&s", &name));
      g_string_append_printf (names, "%s%s", names->len > 0 ? " " : "", name);
    }
  return g_string_free (names, FALSE);
}

/* -- tests ------------------------------------------------------------- */

static void
test_document (Fixture       *f,
               gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) doc = NULL;
  g_autoptr(GVariant) info = NULL;
  g_autoptr(GVariant) servers = NULL;
  g_autoptr(GVariant) methods = NULL;
  g_autoptr(GVariant) work = NULL;
  g_autoptr(GVariant) subtract = NULL;
  g_autoptr(GVariant) callbacks = NULL;
  g_autoptr(GVariant) progress = NULL;
  g_autofree char *names = NULL;
  g_autofree char *text = NULL;
  const char *s = NULL;
  gboolean b = FALSE;

  tether_server_set_service_title (f->server, "Test service");
  tether_server_set_service_version (f->server, "1.2.3");
  tether_server_set_service_description (f->server, "Tests *rpc.discover*.");
  g_object_set (f->server, "default-timeout", 1234, "callback-timeout", 567, NULL);

  doc = discover (f, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_lookup (doc, "openrpc", "&s", &s));
  g_assert_cmpstr (s, ==, "1.3.2");

  info = member (doc, "info");
  g_assert_true (g_variant_lookup (info, "title", "&s", &s));
  g_assert_cmpstr (s, ==, "Test service");
  g_assert_true (g_variant_lookup (info, "version", "&s", &s));
  g_assert_cmpstr (s, ==, "1.2.3");
  g_assert_true (g_variant_lookup (info, "description", "&s", &s));
  g_assert_cmpstr (s, ==, "Tests *rpc.discover*.");

  servers = member (doc, "servers");
  text = to_json (servers);
  g_assert_nonnull (strstr (text, tether_server_get_uris (f->server)[0]));
  g_clear_pointer (&text, g_free);

  /* Sorted by name; the caller on unix: is authenticated and sees all. */
  methods = member (doc, "methods");
  names = method_names (methods);
  g_assert_cmpstr (names, ==, "custom open secret subtract work");

  work = find_named (methods, "work");
  text = to_json (work);
  g_test_message ("work: %s", text);
  g_assert_nonnull (strstr (text, "\"summary\":\"Works in steps\""));
  g_assert_nonnull (strstr (text, "\"description\":\"Calls *progress* once per step.\""));
  g_assert_nonnull (strstr (text, "\"paramStructure\":\"either\""));
  g_assert_nonnull (strstr (text, "{\"name\":\"steps\",\"description\":\"how many steps\","
                                  "\"schema\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"integer\","
                                  "\"minimum\":-9223372036854775808,\"maximum\":9223372036854775807}]}}"));
  g_assert_nonnull (strstr (text, "\"x-tether-signature\":\"(mxmx)\""));
  g_assert_nonnull (strstr (text, "\"result\":{\"name\":\"result\",\"description\":\"{\\\"done\\\": steps}\","
                                  "\"schema\":{\"type\":\"object\"}}"));
  g_assert_nonnull (strstr (text, "\"x-tether-access\":\"any\""));
  g_assert_nonnull (strstr (text, "\"x-tether-deadline-ms\":{\"default\":1234,\"maximum\":600000}"));
  g_assert_nonnull (strstr (text, "\"x-tether-callbacks\":[\"progress\"]"));
  g_assert_null (strstr (text, "\"deprecated\""));
  g_assert_null (strstr (text, "Unauthenticated"));
  g_clear_pointer (&text, g_free);

  subtract = find_named (methods, "subtract");
  text = to_json (subtract);
  g_assert_nonnull (strstr (text, "\"params\":[{\"name\":\"minuend\",\"schema\":{\"type\":\"integer\","
                                  "\"minimum\":-9223372036854775808,\"maximum\":9223372036854775807},"
                                  "\"required\":true},{\"name\":\"subtrahend\""));
  g_assert_nonnull (strstr (text, "\"x-tether-result-signature\":\"x\""));
  g_clear_pointer (&text, g_free);

  {
    g_autoptr(GVariant) secret = find_named (methods, "secret");
    g_autoptr(GVariant) custom = find_named (methods, "custom");

    g_assert_true (g_variant_lookup (secret, "deprecated", "b", &b));
    g_assert_true (b);
    text = to_json (secret);
    g_assert_nonnull (strstr (text, "\"x-tether-access\":\"authenticated\""));
    g_assert_nonnull (strstr (text, "{\"$ref\":\"#/components/errors/Unauthenticated\"}"));
    /* Undeclared: OpenRPC cannot say it, the extension does. */
    g_assert_nonnull (strstr (text, "\"params\":[],\"x-tether-params\":{\"type\":[\"array\",\"object\"]}"));
    g_clear_pointer (&text, g_free);
    text = to_json (custom);
    g_assert_nonnull (strstr (text, "\"x-tether-access\":\"custom\""));
    g_assert_nonnull (strstr (text, "{\"$ref\":\"#/components/errors/PermissionDenied\"}"));
    g_clear_pointer (&text, g_free);
  }

  /* The callbacks the server makes, with what makes them and their own
   * deadline. */
  callbacks = member (doc, "x-tether-callbacks");
  g_clear_pointer (&names, g_free);
  names = method_names (callbacks);
  g_assert_cmpstr (names, ==, "progress reveal");
  progress = find_named (callbacks, "progress");
  text = to_json (progress);
  g_assert_nonnull (strstr (text, "{\"name\":\"step\",\"schema\":{\"type\":\"integer\""));
  g_assert_nonnull (strstr (text, "\"x-tether-deadline-ms\":{\"default\":567,\"maximum\":60000}"));
  g_assert_nonnull (strstr (text, "\"x-tether-made-by\":[\"work\"]"));
  g_assert_null (strstr (text, "x-tether-access"));
}

/* Every TetherRemoteError is in components.errors with its code. */
static void
test_errors (Fixture       *f,
             gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) doc = discover (f, &error);
  g_autoptr(GVariant) components = NULL;
  g_autoptr(GVariant) errors = NULL;
  g_autoptr(GEnumClass) klass = g_type_class_ref (TETHER_TYPE_REMOTE_ERROR);
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  components = member (doc, "components");
  errors = member (components, "errors");
  text = to_json (errors);
  g_assert_cmpuint (g_variant_n_children (errors), ==, klass->n_values);
  for (guint i = 0; i < klass->n_values; i++)
    {
      g_autofree char *code = g_strdup_printf ("{\"code\":%d,", klass->values[i].value);

      g_assert_nonnull (strstr (text, code));
    }
}

/* An anonymous caller (ws://) sees only what is open to any peer: not
 * the authenticated method, not the custom one, not the callback only
 * the hidden method makes. */
static void
test_hidden (Fixture       *f,
             gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) doc = NULL;
  g_autoptr(GVariant) methods = NULL;
  g_autoptr(GVariant) callbacks = NULL;
  g_autofree char *names = NULL;
  g_autofree char *callback_names = NULL;

  g_assert_false (tether_identity_is_authenticated (tether_peer_get_identity (f->peer)));
  tether_server_set_discover_access (f->server, TETHER_ACCESS_ANY);
  doc = discover (f, &error);
  g_assert_no_error (error);
  methods = member (doc, "methods");
  names = method_names (methods);
  g_assert_cmpstr (names, ==, "open subtract work");
  callbacks = member (doc, "x-tether-callbacks");
  callback_names = method_names (callbacks);
  g_assert_cmpstr (callback_names, ==, "progress");
  g_assert_cmpuint (f->authorize_calls, ==, 0);
}

/* Who may ask: authenticated peers by default, a decision per call with
 * TETHER_ACCESS_CUSTOM. */
static void
test_discover_access (Fixture       *f,
                      gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) doc = NULL;

  g_assert_cmpint (tether_server_get_discover_access (f->server), ==, TETHER_ACCESS_AUTHENTICATED);
  doc = discover (f, &error);
  g_assert_error (error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_UNAUTHENTICATED);
  g_assert_null (doc);
  g_clear_error (&error);

  g_object_set (f->server, "discover-access", TETHER_ACCESS_CUSTOM, NULL);
  f->authorize_answer = FALSE;
  doc = discover (f, &error);
  g_assert_error (error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_PERMISSION_DENIED);
  g_assert_cmpuint (f->authorize_calls, ==, 1);
  g_clear_error (&error);

  f->authorize_answer = TRUE;
  doc = discover (f, &error);
  g_assert_no_error (error);
  g_assert_nonnull (doc);
  g_assert_cmpuint (f->authorize_calls, ==, 2);
}

/* rpc.discover takes no params; rpc. names stay reserved otherwise. */
static void
test_reserved (Fixture       *f,
               gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  CallResult r = { 0 };

  tether_client_call_async (f->client, "rpc.discover", g_variant_new_int64 (1), 5000, NULL,
                            client_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_INVALID_PARAMS);
  g_clear_error (&r.error);

  memset (&r, 0, sizeof r);
  tether_client_call_async (f->client, "rpc.other", NULL, 5000, NULL, client_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND);
  g_clear_error (&r.error);

  g_assert_false (tether_server_remove_method (f->server, "rpc.discover"));
  {
    g_autoptr(GVariant) doc = discover (f, &error);

    g_assert_no_error (error);
  }
}

/* The server asks its client what callbacks it accepts. */
static void
test_client (Fixture       *f,
             gconstpointer  user_data)
{
  g_autoptr(TetherMethodInfo) confirm = tether_method_info_new ("confirm");
  g_autoptr(GVariant) methods = NULL;
  g_autofree char *text = NULL;
  CallResult r = { 0 };

  tether_method_info_set_summary (confirm, "Asks the user");
  tether_method_info_set_params (confirm, "(s)", (const char *[]) { "question", NULL });
  tether_method_info_set_result (confirm, "b", NULL);
  tether_client_add_method_with_info (f->client, confirm, handle_null, NULL, NULL);
  tether_client_add_method (f->client, "progress", handle_null, NULL, NULL);

  tether_peer_call_async (f->peer, "rpc.discover", NULL, 5000, NULL, peer_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);
  g_assert_null (g_variant_lookup_value (r.result, "servers", NULL));
  methods = member (r.result, "methods");
  text = to_json (methods);
  g_assert_nonnull (strstr (text, "{\"name\":\"confirm\",\"summary\":\"Asks the user\","));
  g_assert_nonnull (strstr (text, "{\"name\":\"question\",\"schema\":{\"type\":\"string\"},\"required\":true}"));
  g_assert_nonnull (strstr (text, "\"result\":{\"name\":\"result\",\"schema\":{\"type\":\"boolean\"}}"));
  g_assert_nonnull (strstr (text, "{\"name\":\"progress\","));
  g_assert_nonnull (strstr (text, "\"x-tether-deadline-ms\":{\"default\":10000,\"maximum\":60000}"));
  g_assert_null (strstr (text, "x-tether-access"));
  g_variant_unref (r.result);
}

/* Descriptions are checked against their method, and frozen once given. */
static void
test_method_info (void)
{
  g_autoptr(TetherServer) server = tether_server_new ();
  g_autoptr(TetherMethodInfo) info = tether_method_info_new ("m");
  g_autoptr(TetherMethodInfo) other = tether_method_info_new ("m");
  g_autoptr(TetherMethodInfo) missing = tether_method_info_new ("nowhere");
  const char *names[] = { "a", NULL };

  tether_method_info_add_callback (info, "cb1");
  tether_method_info_add_callback (info, "cb2");
  tether_method_info_add_callback (info, "cb1");
  g_assert_cmpuint (g_strv_length ((char **) tether_method_info_get_callbacks (info)), ==, 2);
  g_assert_cmpstr (tether_method_info_get_callbacks (info)[1], ==, "cb2");
  tether_method_info_set_params (info, "(s)", names);
  g_assert_cmpstr (tether_method_info_get_signature (info), ==, "(s)");
  g_assert_cmpstr (tether_method_info_get_param_names (info)[0], ==, "a");

  tether_server_add_method_full (server, "m", "(x)", names, TETHER_ACCESS_ANY, handle_null,
                                 NULL, NULL);
  /* Its parameters must be the method's own. */
  g_assert_false (tether_server_describe_method (server, info));
  g_assert_false (tether_server_describe_method (server, missing));
  /* With none declared, the method's are described. */
  g_assert_true (tether_server_describe_method (server, other));

  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*!self->sealed*");
  tether_method_info_set_summary (other, "too late");
  g_test_assert_expected_messages ();
  g_assert_null (tether_method_info_get_summary (other));

  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*_tether_method_info_check_name*");
  g_assert_null (tether_method_info_new ("rpc.discover"));
  g_test_assert_expected_messages ();

  {
    g_autoptr(TetherMethodInfo) bad = tether_method_info_new ("bad");

    g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*_tether_method_info_check_params*");
    tether_method_info_set_params (bad, "(ss)", (const char *[]) { "same", "same", NULL });
    g_test_assert_expected_messages ();
    g_assert_null (tether_method_info_get_signature (bad));
  }
  tether_server_close (server);
}

/* The mapping's schemas, as docs/json.md tabulates them. */
static void
assert_schema (const char            *signature,
               TetherSchemaDirection  direction,
               const char            *expected)
{
  g_autoptr(GVariant) schema = g_variant_ref_sink (
    _tether_json_schema_for_type (G_VARIANT_TYPE (signature), direction));
  g_autofree char *text = to_json (schema);

  g_assert_cmpstr (text, ==, expected);
}

static void
test_schemas (void)
{
  const TetherSchemaDirection IN = TETHER_SCHEMA_ACCEPTED, OUT = TETHER_SCHEMA_WRITTEN;

  assert_schema ("b", IN, "{\"type\":\"boolean\"}");
  assert_schema ("y", IN, "{\"type\":\"integer\",\"minimum\":0,\"maximum\":255}");
  assert_schema ("n", IN, "{\"type\":\"integer\",\"minimum\":-32768,\"maximum\":32767}");
  assert_schema ("q", IN, "{\"type\":\"integer\",\"minimum\":0,\"maximum\":65535}");
  assert_schema ("i", IN, "{\"type\":\"integer\",\"minimum\":-2147483648,\"maximum\":2147483647}");
  assert_schema ("h", IN, "{\"type\":\"integer\",\"minimum\":-2147483648,\"maximum\":2147483647}");
  assert_schema ("u", IN, "{\"type\":\"integer\",\"minimum\":0,\"maximum\":4294967295}");
  assert_schema ("x", IN, "{\"type\":\"integer\",\"minimum\":-9223372036854775808,"
                          "\"maximum\":9223372036854775807}");
  assert_schema ("t", IN, "{\"type\":\"integer\",\"minimum\":0,\"maximum\":9223372036854775807}");
  assert_schema ("t", OUT, "{\"type\":\"integer\",\"minimum\":0,\"maximum\":1.8446744073709552e19}");
  assert_schema ("d", IN, "{\"type\":\"number\"}");
  assert_schema ("d", OUT, "{\"type\":[\"number\",\"null\"]}");
  assert_schema ("s", IN, "{\"type\":\"string\"}");
  assert_schema ("o", IN, "{\"type\":\"string\",\"pattern\":\"^/([A-Za-z0-9_]+(/[A-Za-z0-9_]+)*)?$\"}");
  assert_schema ("g", IN, "{\"type\":\"string\",\"pattern\":\"^[ybnqiuxthdvasog(){}]*$\"}");
  assert_schema ("v", IN, "{}");
  assert_schema ("mv", IN, "{}");
  assert_schema ("ms", IN, "{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"string\"}]}");
  assert_schema ("a{sv}", IN, "{\"type\":\"object\"}");
  assert_schema ("a{sb}", IN, "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"boolean\"}}");
  assert_schema ("av", IN, "{\"type\":\"array\"}");
  assert_schema ("ay", IN, "{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":255}}");
  assert_schema ("(sb)", IN, "{\"type\":\"array\",\"items\":[{\"type\":\"string\"},{\"type\":\"boolean\"}],"
                             "\"additionalItems\":false,\"minItems\":2,\"maxItems\":2}");
  assert_schema ("()", IN, "{\"type\":\"array\",\"maxItems\":0}");
  /* Dicts with other keys, and lone entries, are written but not read. */
  assert_schema ("a{xs}", IN, "{\"not\":{}}");
  assert_schema ("a{xs}", OUT, "{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":"
                               "[{\"type\":\"integer\",\"minimum\":-9223372036854775808,"
                               "\"maximum\":9223372036854775807},{\"type\":\"string\"}],"
                               "\"additionalItems\":false,\"minItems\":2,\"maxItems\":2}}");
  assert_schema ("a{ob}", IN, "{\"not\":{}}");
  assert_schema ("a{ob}", OUT, "{\"type\":\"object\",\"propertyNames\":{\"type\":\"string\","
                               "\"pattern\":\"^/([A-Za-z0-9_]+(/[A-Za-z0-9_]+)*)?$\"},"
                               "\"additionalProperties\":{\"type\":\"boolean\"}}");
  assert_schema ("{sb}", IN, "{\"not\":{}}");

  /* Whole params: only trailing maybe members are optional. */
  {
    const char *names[] = { "a", "b", "c", NULL };
    g_autoptr(GVariant) schema = g_variant_ref_sink (_tether_json_schema_for_params ("(mxxmx)", names));
    g_autofree char *text = to_json (schema);
    g_autoptr(GVariant) undeclared = g_variant_ref_sink (_tether_json_schema_for_params (NULL, NULL));
    g_autofree char *undeclared_text = to_json (undeclared);

    g_test_message ("%s", text);
    g_assert_nonnull (strstr (text, "\"additionalItems\":false,\"minItems\":2,\"maxItems\":3}"));
    g_assert_nonnull (strstr (text, "\"required\":[\"a\",\"b\"],\"additionalProperties\":false"));
    g_assert_cmpstr (undeclared_text, ==, "{\"type\":[\"array\",\"object\"]}");
  }
}

int
main (int argc, char **argv)
{
  static const FixtureData unix_data = { TETHER_TRANSPORT_UNIX };
  static const FixtureData tcp_data = { TETHER_TRANSPORT_TCP };

  g_test_init (&argc, &argv, NULL);

  g_test_add ("/tether/discover/unix/document", Fixture, &unix_data, fixture_set_up,
              test_document, fixture_tear_down);
  g_test_add ("/tether/discover/unix/errors", Fixture, &unix_data, fixture_set_up,
              test_errors, fixture_tear_down);
  g_test_add ("/tether/discover/ws/hidden-from-anonymous", Fixture, &tcp_data, fixture_set_up,
              test_hidden, fixture_tear_down);
  g_test_add ("/tether/discover/ws/discover-access", Fixture, &tcp_data, fixture_set_up,
              test_discover_access, fixture_tear_down);
  g_test_add ("/tether/discover/unix/reserved", Fixture, &unix_data, fixture_set_up,
              test_reserved, fixture_tear_down);
  g_test_add ("/tether/discover/unix/client", Fixture, &unix_data, fixture_set_up,
              test_client, fixture_tear_down);
  g_test_add_func ("/tether/discover/method-info", test_method_info);
  g_test_add_func ("/tether/discover/schemas", test_schemas);

  return g_test_run ();
}
