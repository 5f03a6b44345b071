/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Calls in both directions over real sockets (unix:, ws://, wss://):
 * results, errors, notifications, deadlines and their inheritance,
 * cancellation seen from the other side, disconnects mid-call, the single
 * deadline timer, identities, and objects finalized at teardown. */

#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <glib/gstdio.h>

#include "tether-test-common.h"
#include "tether-scheduler-private.h"

typedef struct
{
  TetherTransportKind kind;
  gboolean            mutual_tls;
} FixtureData;

typedef struct
{
  GMainContext *context;
  char         *dir;
  TetherServer *server;
  TetherClient *client;
  TetherPeer   *peer;           /* the server's view of the client */
  guint         peers_connected;
  guint         peers_disconnected;
  GPtrArray    *held;           /* server invocations held unanswered */
  guint         held_cancelled;
  gboolean      held_cancellable_lazily; /* srv_hold leaves the cancellable alone */
  GPtrArray    *client_held;    /* client callback invocations held */
  guint         client_held_cancelled;
  gint64        callback_remaining_ms;
  gint64        outer_budget_ms;
  TetherInvocation *call_back;   /* the last "call-back" invocation */
  guint         notifications;
  GError       *disconnect_error;
  gboolean      disconnected;
  guint         misbehaved;
  TetherMisbehavior last_misbehavior;
  gboolean      extend_on_hold;  /* cli_hold asks for a lease */
} Fixture;

/* -- server methods ---------------------------------------------------- */

static void
srv_add (TetherInvocation *invocation,
         gpointer          user_data)
{
  gint64 a, b;

  g_variant_get (tether_invocation_get_parameters (invocation), "(xx)", &a, &b);
  tether_invocation_return_value (invocation, g_variant_new_int64 (a + b));
}

static void
srv_fail (TetherInvocation *invocation,
          gpointer          user_data)
{
  tether_invocation_return_error_literal (invocation, 4001, "nope");
}

static void
srv_drop (TetherInvocation *invocation,
          gpointer          user_data)
{
  /* Dropped without an answer on purpose. */
}

static void
held_cancelled_cb (GCancellable *cancellable,
                   Fixture      *f)
{
  f->held_cancelled++;
}

static void
srv_hold (TetherInvocation *invocation,
          gpointer          user_data)
{
  Fixture *f = user_data;

  g_ptr_array_add (f->held, g_object_ref (invocation));
  if (!f->held_cancellable_lazily)
    g_cancellable_connect (tether_invocation_get_cancellable (invocation),
                           G_CALLBACK (held_cancelled_cb), f, NULL);
}

static void
srv_notified (TetherInvocation *invocation,
              gpointer          user_data)
{
  Fixture *f = user_data;

  g_assert_true (tether_invocation_is_notification (invocation));
  f->notifications++;
}

static void
callback_done_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(TetherInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_invocation_call_peer_finish (invocation, result, &error);

  if (answer != NULL)
    tether_invocation_return_value (invocation, answer);
  else
    tether_invocation_return_gerror (invocation, error);
}

/* Calls the client's method named in params[0] with params[1], under this
 * call's deadline, and answers with the client's answer. */
static void
srv_call_back (TetherInvocation *invocation,
               gpointer          user_data)
{
  Fixture *f = user_data;
  const char *method;
  g_autoptr(GVariant) params = NULL;

  g_variant_get (tether_invocation_get_parameters (invocation), "(&sv)", &method, &params);
  f->outer_budget_ms = tether_invocation_get_remaining_ms (invocation);
  g_set_object (&f->call_back, invocation);
  tether_invocation_call_peer_async (invocation, method, params, -1, NULL,
                                     callback_done_cb, g_object_ref (invocation));
}

/* -- client methods ---------------------------------------------------- */

static void
cli_ping (TetherInvocation *invocation,
          gpointer          user_data)
{
  tether_invocation_return_value (invocation, tether_invocation_get_parameters (invocation));
}

static void
cli_remaining (TetherInvocation *invocation,
               gpointer          user_data)
{
  Fixture *f = user_data;

  f->callback_remaining_ms = tether_invocation_get_remaining_ms (invocation);
  tether_invocation_return_value (invocation, g_variant_new_int64 (f->callback_remaining_ms));
}

static void
client_held_cancelled_cb (GCancellable *cancellable,
                          Fixture      *f)
{
  f->client_held_cancelled++;
}

static void
cli_hold (TetherInvocation *invocation,
          gpointer          user_data)
{
  Fixture *f = user_data;

  g_ptr_array_add (f->client_held, g_object_ref (invocation));
  g_cancellable_connect (tether_invocation_get_cancellable (invocation),
                         G_CALLBACK (client_held_cancelled_cb), f, NULL);
  if (f->extend_on_hold)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (tether_invocation_extend_deadline (invocation, 5000, &error));
      g_assert_no_error (error);
    }
}

static void
cli_notified (TetherInvocation *invocation,
              gpointer          user_data)
{
  Fixture *f = user_data;

  f->notifications++;
}

/* -- fixture ----------------------------------------------------------- */

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

static void
peer_misbehaved_cb (TetherServer      *server,
                    TetherPeer        *peer,
                    TetherIdentity    *identity,
                    TetherMisbehavior  reason,
                    const char        *details,
                    Fixture           *f)
{
  g_assert_nonnull (identity);
  g_assert_nonnull (details);
  f->misbehaved++;
  f->last_misbehavior = reason;
}

static void
client_disconnected_cb (TetherClient *client,
                        GError       *error,
                        Fixture      *f)
{
  f->disconnected = TRUE;
  g_clear_error (&f->disconnect_error);
  f->disconnect_error = g_error_copy (error);
}

static char *
listen_uri (Fixture            *f,
            TetherTransportKind kind)
{
  switch (kind)
    {
    case TETHER_TRANSPORT_UNIX:
      return g_strdup_printf ("unix:%s/rpc.sock", f->dir);
    case TETHER_TRANSPORT_TCP:
      return g_strdup ("ws://127.0.0.1:0");
    case TETHER_TRANSPORT_TLS:
      return g_strdup ("wss://127.0.0.1:0");
    default:
      g_assert_not_reached ();
    }
}

static void
fixture_set_up_server (Fixture           *f,
                       const FixtureData *data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  const char *add_names[] = { "a", "b", NULL };

  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);
  f->dir = g_dir_make_tmp ("tether-test-XXXXXX", &error);
  g_assert_no_error (error);
  f->held = g_ptr_array_new_with_free_func (g_object_unref);
  f->client_held = g_ptr_array_new_with_free_func (g_object_unref);

  f->server = tether_server_new ();
  if (data->kind == TETHER_TRANSPORT_TLS)
    {
      g_autoptr(GTlsCertificate) cert = NULL;

      tether_test_make_certificates (f->dir);
      cert = tether_test_load_certificate (f->dir, "server");
      tether_server_set_tls_certificate (f->server, cert);
      if (data->mutual_tls)
        {
          g_autoptr(GTlsDatabase) ca = tether_test_load_ca (f->dir, "ca.pem");
          tether_server_set_tls_client_database (f->server, ca);
        }
    }

  tether_server_add_method (f->server, "echo", TETHER_ACCESS_ANY, tether_test_echo, f, NULL);
  tether_server_add_method_full (f->server, "add", "(xx)", add_names, TETHER_ACCESS_ANY,
                                 srv_add, f, NULL);
  tether_server_add_method (f->server, "fail", TETHER_ACCESS_ANY, srv_fail, f, NULL);
  tether_server_add_method (f->server, "drop", TETHER_ACCESS_ANY, srv_drop, f, NULL);
  tether_server_add_method (f->server, "hold", TETHER_ACCESS_ANY, srv_hold, f, NULL);
  tether_server_add_method (f->server, "notified", TETHER_ACCESS_ANY, srv_notified, f, NULL);
  tether_server_add_method (f->server, "authenticated-echo", TETHER_ACCESS_AUTHENTICATED,
                            tether_test_echo, f, NULL);
  tether_server_add_method_full (f->server, "call-back", "(sv)", NULL, TETHER_ACCESS_ANY,
                                 srv_call_back, f, NULL);
  g_signal_connect (f->server, "peer-connected", G_CALLBACK (peer_connected_cb), f);
  g_signal_connect (f->server, "peer-disconnected", G_CALLBACK (peer_disconnected_cb), f);
  g_signal_connect (f->server, "peer-misbehaved", G_CALLBACK (peer_misbehaved_cb), f);

  uri = listen_uri (f, data->kind);
  tether_server_listen (f->server, uri, &error);
  g_assert_no_error (error);
}

/* Clients offer no binary frames (--json-frames). */
static gboolean json_frames;

static TetherClient *
fixture_new_client_for (Fixture           *f,
                        const FixtureData *data,
                        const char        *uri)
{
  TetherClient *client = tether_client_new (uri);

  if (json_frames)
    g_object_set (client, "binary-frames", FALSE, NULL);
  if (data->kind == TETHER_TRANSPORT_TLS)
    {
      g_autoptr(GTlsDatabase) ca = tether_test_load_ca (f->dir, "ca.pem");

      tether_client_set_tls_database (client, ca);
      if (data->mutual_tls)
        {
          g_autoptr(GTlsCertificate) cert = tether_test_load_certificate (f->dir, "client");
          tether_client_set_tls_certificate (client, cert);
        }
    }
  return client;
}

static TetherClient *
fixture_new_client (Fixture           *f,
                    const FixtureData *data)
{
  return fixture_new_client_for (f, data, tether_server_get_uris (f->server)[0]);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  user_data)
{
  const FixtureData *data = user_data;
  g_autoptr(GError) error = NULL;

  fixture_set_up_server (f, data);

  f->client = fixture_new_client (f, data);
  tether_client_add_method (f->client, "ping", cli_ping, f, NULL);
  tether_client_add_method (f->client, "remaining", cli_remaining, f, NULL);
  tether_client_add_method (f->client, "hold", cli_hold, f, NULL);
  tether_client_add_method (f->client, "notified", cli_notified, f, NULL);
  g_signal_connect (f->client, "disconnected", G_CALLBACK (client_disconnected_cb), f);

  error = tether_test_client_connect (f->client);
  g_assert_no_error (error);
  g_assert_true (tether_client_is_connected (f->client));
  TETHER_TEST_WAIT_UNTIL (f->peers_connected == 1);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  user_data)
{
  /* Close first: invocations still held then need no answer. */
  if (f->client != NULL)
    {
      tether_client_close (f->client);
      if (f->peers_connected > 0)
        TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == f->peers_connected);
    }
  g_ptr_array_set_size (f->held, 0);
  g_ptr_array_set_size (f->client_held, 0);
  g_clear_object (&f->call_back);
  if (f->client != NULL)
    g_assert_finalize_object (g_steal_pointer (&f->client));
  g_clear_object (&f->peer);
  tether_server_close (f->server);
  g_assert_finalize_object (g_steal_pointer (&f->server));

  /* Closing connections finish their close handshake (bounded by their
   * close deadline); then no Tether source is left on the context. */
  TETHER_TEST_WAIT_UNTIL (_tether_debug_get_attached_sources () == 0);
  tether_test_spin_ms (5);

  g_ptr_array_unref (f->held);
  g_ptr_array_unref (f->client_held);
  g_clear_error (&f->disconnect_error);
  g_main_context_pop_thread_default (f->context);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_unref (f->context);

  {
    g_autoptr(GDir) dir = g_dir_open (f->dir, 0, NULL);
    const char *name;

    while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *path = g_build_filename (f->dir, name, NULL);
        g_unlink (path);
      }
  }
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

static void
call_result_clear (CallResult *r)
{
  g_clear_pointer (&r->result, g_variant_unref);
  g_clear_error (&r->error);
  r->done = FALSE;
}

static void
client_call (Fixture      *f,
             const char   *method,
             GVariant     *params,
             int           timeout,
             CallResult   *r)
{
  tether_client_call_async (f->client, method, params, timeout, NULL, client_call_cb, r);
  TETHER_TEST_WAIT_UNTIL (r->done);
}

static void
assert_result_json (GVariant   *result,
                    const char *expected)
{
  g_autofree char *text = g_variant_print (result, TRUE);

  g_assert_cmpstr (text, ==, expected);
}

/* -- tests ------------------------------------------------------------- */

static void
test_call (Fixture       *f,
           gconstpointer  user_data)
{
  CallResult r = { 0 };

  /* Positional params fill the declared tuple. */
  client_call (f, "add", g_variant_new ("(xx)", (gint64) 40, (gint64) 2), -1, &r);
  g_assert_no_error (r.error);
  assert_result_json (r.result, "int64 42");
  call_result_clear (&r);

  /* Named params fill it by name. */
  {
    GVariantDict dict;

    g_variant_dict_init (&dict, NULL);
    g_variant_dict_insert (&dict, "b", "x", (gint64) 2);
    g_variant_dict_insert (&dict, "a", "x", (gint64) 5);
    client_call (f, "add", g_variant_dict_end (&dict), -1, &r);
    g_assert_no_error (r.error);
    assert_result_json (r.result, "int64 7");
    call_result_clear (&r);
  }

  /* Undeclared: named params arrive as a{sv} and come back as given. */
  {
    GVariantDict dict;

    g_variant_dict_init (&dict, NULL);
    g_variant_dict_insert (&dict, "text", "s", "héllo");
    g_variant_dict_insert (&dict, "n", "x", (gint64) G_MININT64);
    client_call (f, "echo", g_variant_dict_end (&dict), -1, &r);
    g_assert_no_error (r.error);
    {
      gint64 n = 0;
      const char *text = NULL;

      g_assert_true (g_variant_is_of_type (r.result, G_VARIANT_TYPE_VARDICT));
      g_assert_true (g_variant_lookup (r.result, "n", "x", &n));
      g_assert_true (g_variant_lookup (r.result, "text", "&s", &text));
      g_assert_cmpint (n, ==, G_MININT64);
      g_assert_cmpstr (text, ==, "héllo");
    }
    call_result_clear (&r);
  }
}

static void
test_errors (Fixture       *f,
             gconstpointer  user_data)
{
  CallResult r = { 0 };

  client_call (f, "no-such-method", NULL, -1, &r);
  g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND);
  call_result_clear (&r);

  /* Names a binary frame cannot carry (empty, not UTF-8) go as JSON and
   * get the same answer as any unknown method, not silence. */
  client_call (f, "", NULL, 5000, &r);
  g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND);
  call_result_clear (&r);
  client_call (f, "bad\xff", NULL, 5000, &r);
  g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND);
  call_result_clear (&r);

  client_call (f, "fail", NULL, -1, &r);
  g_assert_error (r.error, TETHER_REMOTE_ERROR, 4001);
  g_assert_cmpstr (r.error->message, ==, "nope");
  call_result_clear (&r);

  client_call (f, "add", g_variant_new ("(xs)", (gint64) 1, "two"), -1, &r);
  g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_INVALID_PARAMS);
  g_assert_nonnull (strstr (r.error->message, "'b'"));
  call_result_clear (&r);

  /* A handler that drops its invocation: -32603 and a warning naming it. */
  g_test_expect_message ("Tether", G_LOG_LEVEL_WARNING, "*drop*without answering*");
  client_call (f, "drop", NULL, -1, &r);
  g_test_assert_expected_messages ();
  g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_INTERNAL_ERROR);
  call_result_clear (&r);

  /* rpc. is reserved. */
  client_call (f, "rpc.nothing", NULL, -1, &r);
  g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND);
  call_result_clear (&r);
}

static void
test_access (Fixture       *f,
             gconstpointer  user_data)
{
  const FixtureData *data = user_data;
  CallResult r = { 0 };
  TetherIdentity *identity = tether_peer_get_identity (f->peer);

  client_call (f, "authenticated-echo", NULL, -1, &r);
  if (data->kind == TETHER_TRANSPORT_UNIX || data->mutual_tls)
    {
      g_assert_true (tether_identity_is_authenticated (identity));
      g_assert_no_error (r.error);
    }
  else
    {
      g_assert_false (tether_identity_is_authenticated (identity));
      g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_UNAUTHENTICATED);
    }
  call_result_clear (&r);
}

static void
test_identity (Fixture       *f,
               gconstpointer  user_data)
{
  const FixtureData *data = user_data;
  TetherIdentity *theirs = tether_peer_get_identity (f->peer);
  TetherIdentity *server = tether_client_get_server_identity (f->client);

  g_assert_cmpint (tether_identity_get_transport (theirs), ==, data->kind);
  g_assert_cmpint (tether_identity_get_transport (server), ==, data->kind);

  if (data->kind == TETHER_TRANSPORT_UNIX)
    {
      /* Both ends are this process: the kernel says so both ways. */
      g_assert_cmpint (tether_identity_get_uid (theirs), ==, getuid ());
      g_assert_cmpint (tether_identity_get_gid (theirs), ==, getgid ());
      g_assert_cmpint (tether_identity_get_pid (theirs), ==, getpid ());
      g_assert_cmpint (tether_identity_get_uid (server), ==, getuid ());
      g_assert_cmpint (tether_identity_get_pid (server), ==, getpid ());
    }
  else
    {
      g_assert_cmpint (tether_identity_get_uid (theirs), ==, -1);
      g_assert_true (g_str_has_prefix (tether_identity_get_address (theirs), "127.0.0.1:"));
    }

  if (data->kind == TETHER_TRANSPORT_TLS)
    {
      g_assert_nonnull (tether_identity_get_certificate (server));
      g_assert_cmpuint (strlen (tether_identity_get_certificate_sha256 (server)), ==, 64);
      if (data->mutual_tls)
        {
          g_assert_nonnull (tether_identity_get_certificate (theirs));
          g_assert_true (tether_identity_is_authenticated (theirs));
        }
      else
        g_assert_null (tether_identity_get_certificate (theirs));
    }
}

static void
test_callback (Fixture       *f,
               gconstpointer  user_data)
{
  CallResult r = { 0 };

  /* Inside a call: the server calls the client back and returns its answer. */
  client_call (f, "call-back", g_variant_new ("(sv)", "ping", g_variant_new ("(s)", "pong")), -1, &r);
  g_assert_no_error (r.error);
  assert_result_json (r.result, "[<'pong'>]");
  call_result_clear (&r);

  /* Outside any call, through the peer. */
  tether_peer_call_async (f->peer, "ping", g_variant_new ("(xs)", (gint64) 7, "x"), -1, NULL,
                          peer_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);
  assert_result_json (r.result, "[<int64 7>, <'x'>]");
  call_result_clear (&r);

  /* A callback to a method the client does not have. */
  tether_peer_call_async (f->peer, "nothing", NULL, -1, NULL, peer_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND);
  call_result_clear (&r);
}

static void
test_notifications (Fixture       *f,
                    gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  CallResult r = { 0 };

  g_assert_true (tether_client_send_notification (f->client, "notified", NULL, &error));
  g_assert_no_error (error);
  /* A call after it is answered after it: ordering on one connection. */
  client_call (f, "echo", NULL, -1, &r);
  g_assert_cmpuint (f->notifications, ==, 1);
  call_result_clear (&r);

  g_assert_true (tether_peer_send_notification (f->peer, "notified",
                                                g_variant_new ("(i)", 1), &error));
  g_assert_no_error (error);
  TETHER_TEST_WAIT_UNTIL (f->notifications == 2);

  /* A handler that keeps a notification's invocation sees its
   * cancellable fire when the connection closes, as for a call. */
  g_assert_true (tether_client_send_notification (f->client, "hold", NULL, &error));
  g_assert_no_error (error);
  TETHER_TEST_WAIT_UNTIL (f->held->len == 1);
  g_assert_true (tether_invocation_is_notification (f->held->pdata[0]));
  g_assert_cmpuint (f->held_cancelled, ==, 0);
  tether_client_close (f->client);
  TETHER_TEST_WAIT_UNTIL (f->held_cancelled == 1);
}

static void
test_burst (Fixture       *f,
            gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  CallResult r = { 0 };

  /* Messages sent in one go arrive together (over TLS, many records in
   * one read of the socket, some left inside GnuTLS): every one is
   * handled, in both directions, without waiting for more bytes. */
  for (guint i = 0; i < 200; i++)
    {
      g_assert_true (tether_peer_send_notification (f->peer, "notified", g_variant_new ("(u)", i), &error));
      g_assert_no_error (error);
    }
  TETHER_TEST_WAIT_UNTIL (f->notifications == 200);
  for (guint i = 0; i < 200; i++)
    {
      g_assert_true (tether_client_send_notification (f->client, "notified", NULL, &error));
      g_assert_no_error (error);
    }
  client_call (f, "echo", NULL, -1, &r);
  g_assert_no_error (r.error);
  g_assert_cmpuint (f->notifications, ==, 400);
  call_result_clear (&r);
}

static void
test_deadline (Fixture       *f,
               gconstpointer  user_data)
{
  CallResult r = { 0 };
  gint64 start = g_get_monotonic_time ();

  client_call (f, "hold", NULL, 100, &r);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 100 * 1000);
  call_result_clear (&r);

  /* Evidence from the other side: the server's invocation saw its
   * deadline (the same budget) and its cancellable fired. */
  g_assert_cmpuint (f->held->len, ==, 1);
  TETHER_TEST_WAIT_UNTIL (f->held_cancelled == 1);
  g_assert_true (tether_invocation_has_replied (f->held->pdata[0]));
  g_assert_cmpint (tether_invocation_get_remaining_ms (f->held->pdata[0]), ==, 0);
  /* The cancellable is made on demand; asked for the first time after
   * the deadline, it is already cancelled. */
  f->held_cancellable_lazily = TRUE;
  client_call (f, "hold", NULL, 100, &r);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  call_result_clear (&r);
  g_assert_cmpuint (f->held->len, ==, 2);
  TETHER_TEST_WAIT_UNTIL (tether_invocation_has_replied (f->held->pdata[1]));
  g_assert_true (g_cancellable_is_cancelled (tether_invocation_get_cancellable (f->held->pdata[1])));
  f->held_cancellable_lazily = FALSE;

  /* A timeout above the maximum is clamped: the budget the server saw
   * is the client's max-timeout, not more. */
  g_object_set (f->client, "max-timeout", 150, NULL);
  tether_client_close (f->client);
  TETHER_TEST_WAIT_UNTIL (!tether_client_is_connected (f->client));
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == 1);
  g_assert_null (tether_test_client_connect (f->client));
  TETHER_TEST_WAIT_UNTIL (f->peers_connected == 2);
  client_call (f, "hold", NULL, 60 * 60 * 1000, &r);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_USEC_PER_SEC);
  call_result_clear (&r);
}

static void
test_deadline_inherited (Fixture       *f,
                         gconstpointer  user_data)
{
  CallResult r = { 0 };

  /* The client gives the call 2 s; the callback the server makes under it
   * (with the default 10 s callback timeout) sees no more than that. */
  client_call (f, "call-back", g_variant_new ("(sv)", "remaining", g_variant_new ("()")), 2000, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);

  g_assert_cmpint (f->outer_budget_ms, <=, 2000);
  g_assert_cmpint (f->callback_remaining_ms, >, 0);
  g_assert_cmpint (f->callback_remaining_ms, <=, f->outer_budget_ms);
}

static void
test_cancel (Fixture       *f,
             gconstpointer  user_data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  CallResult r = { 0 };

  tether_client_call_async (f->client, "hold", NULL, -1, cancellable, client_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (f->held->len == 1);
  g_cancellable_cancel (cancellable);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  call_result_clear (&r);

  /* rpc.cancel reached the server: its invocation's cancellable fired. */
  TETHER_TEST_WAIT_UNTIL (f->held_cancelled == 1);
  g_assert_true (tether_invocation_has_replied (f->held->pdata[0]));
  g_assert_cmpint (tether_invocation_get_remaining_ms (f->held->pdata[0]), >, 0);

  /* Already cancelled: fails at once, nothing is sent. */
  tether_client_call_async (f->client, "hold", NULL, -1, cancellable, client_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  call_result_clear (&r);
  tether_test_spin_ms (20);
  g_assert_cmpuint (f->held->len, ==, 1);
}

static void
test_cancel_inherited (Fixture       *f,
                       gconstpointer  user_data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  CallResult r = { 0 };

  /* The client's call makes the server call back into the client, whose
   * handler holds the callback. Cancelling the client's call cancels the
   * server's invocation, which cancels the callback it made: the client's
   * callback invocation sees it. */
  tether_client_call_async (f->client, "call-back",
                            g_variant_new ("(sv)", "hold", g_variant_new ("()")), -1,
                            cancellable, client_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (f->client_held->len == 1);
  g_cancellable_cancel (cancellable);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  call_result_clear (&r);
  TETHER_TEST_WAIT_UNTIL (f->client_held_cancelled == 1);
}

static void reconnect (Fixture *f);

static gpointer
cancel_in_thread (gpointer cancellable)
{
  g_cancellable_cancel (cancellable);
  return NULL;
}

static void
test_cancel_by_handler (Fixture       *f,
                        gconstpointer  user_data)
{
  CallResult r = { 0 };
  GThread *thread;

  /* A handler cancels its own invocation's cancellable, from another
   * thread: the callback it made is cancelled too, on the client. No
   * deadline comes due while the test waits (30 s at most). */
  g_object_set (f->server, "callback-timeout", 60000, NULL);
  reconnect (f);
  tether_client_call_async (f->client, "call-back",
                            g_variant_new ("(sv)", "hold", g_variant_new ("()")), 60000,
                            NULL, client_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (f->client_held->len == 1);
  g_assert_nonnull (f->call_back);
  thread = g_thread_new ("cancel", cancel_in_thread, tether_invocation_get_cancellable (f->call_back));
  g_thread_join (thread);
  TETHER_TEST_WAIT_UNTIL (f->client_held_cancelled == 1);
  TETHER_TEST_WAIT_UNTIL (r.done);
  call_result_clear (&r);
}

static void
test_disconnect_mid_call (Fixture       *f,
                          gconstpointer  user_data)
{
  CallResult r = { 0 };
  CallResult cb = { 0 };

  /* The server holds a client call and the client holds a callback. */
  tether_client_call_async (f->client, "hold", NULL, -1, NULL, client_call_cb, &r);
  tether_peer_call_async (f->peer, "hold", NULL, -1, NULL, peer_call_cb, &cb);
  TETHER_TEST_WAIT_UNTIL (f->held->len == 1 && f->client_held->len == 1);

  tether_peer_close (f->peer);

  /* Both sides fail what was pending, at once, with a clear error, and
   * cancel what they were handling. */
  TETHER_TEST_WAIT_UNTIL (cb.done);
  g_assert_error (cb.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  g_assert_cmpuint (f->held_cancelled, ==, 1);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  TETHER_TEST_WAIT_UNTIL (f->client_held_cancelled == 1);
  TETHER_TEST_WAIT_UNTIL (f->disconnected);
  g_assert_error (f->disconnect_error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  g_assert_false (tether_client_is_connected (f->client));
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == 1);
  call_result_clear (&r);
  call_result_clear (&cb);

  /* Calls on a closed connection fail at once. */
  client_call (f, "echo", NULL, -1, &r);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED);
  call_result_clear (&r);
  tether_peer_call_async (f->peer, "ping", NULL, -1, NULL, peer_call_cb, &cb);
  TETHER_TEST_WAIT_UNTIL (cb.done);
  g_assert_error (cb.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  call_result_clear (&cb);
}

static void
test_client_dies_mid_callback (Fixture       *f,
                               gconstpointer  user_data)
{
  CallResult cb = { 0 };

  tether_peer_call_async (f->peer, "hold", NULL, -1, NULL, peer_call_cb, &cb);
  TETHER_TEST_WAIT_UNTIL (f->client_held->len == 1);

  /* The client object goes away without a polite close. */
  g_assert_finalize_object (g_steal_pointer (&f->client));
  /* Its connection was torn down: the held callback needs no answer. */
  g_assert_true (tether_invocation_has_replied (f->client_held->pdata[0]));
  g_assert_cmpuint (f->client_held_cancelled, ==, 1);
  g_ptr_array_set_size (f->client_held, 0);

  TETHER_TEST_WAIT_UNTIL (cb.done);
  g_assert_error (cb.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == 1);
  call_result_clear (&cb);
}

static void
count_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  guint *done = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = tether_client_call_finish (TETHER_CLIENT (source), result, &error);

  (*done)++;
}

static void
test_one_timer (Fixture       *f,
                gconstpointer  user_data)
{
  const guint n = 10000;
  guint done = 0;
  int sources_before;
  CallResult r = { 0 };

  /* Reconnect with room for 10,000 calls in flight. */
  tether_client_close (f->client);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == 1);
  g_object_set (f->client, "max-pending-calls", n + 10, NULL);
  g_object_set (f->server, "max-invocations-per-peer", n + 10, "max-total-invocations", n + 10, NULL);
  g_assert_null (tether_test_client_connect (f->client));
  TETHER_TEST_WAIT_UNTIL (f->peers_connected == 2);

  client_call (f, "echo", NULL, -1, &r);
  call_result_clear (&r);
  sources_before = _tether_debug_get_attached_sources ();

  for (guint i = 0; i < n; i++)
    tether_client_call_async (f->client, "hold", NULL, 60000, NULL, count_done_cb, &done);
  TETHER_TEST_WAIT_UNTIL (f->held->len == n);

  /* 10,000 calls pending on the client and 10,000 invocations on the
   * server: still the same number of Tether sources on the context. */
  g_assert_cmpint (_tether_debug_get_attached_sources (), ==, sources_before);
  g_assert_cmpuint (done, ==, 0);

  /* Answer them all: every call completes exactly once. */
  for (guint i = 0; i < n; i++)
    tether_invocation_return_value (f->held->pdata[i], g_variant_new_boolean (TRUE));
  TETHER_TEST_WAIT_UNTIL (done == n);
  g_assert_cmpint (_tether_debug_get_attached_sources (), ==, sources_before);
}

static void
test_connect_refused (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *uri = NULL;
  TetherClient *client;

  g_main_context_push_thread_default (context);
  dir = g_dir_make_tmp ("tether-test-XXXXXX", NULL);
  uri = g_strdup_printf ("unix:%s/nobody.sock", dir);

  client = tether_client_new (uri);
  error = tether_test_client_connect (client);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_finalize_object (client);

  client = tether_client_new ("http://example.com/");
  error = tether_test_client_connect (client);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_URI);
  g_assert_finalize_object (client);

  g_rmdir (dir);
  g_main_context_pop_thread_default (context);
}

static void
test_insecure_listen (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  TetherServer *server;

  g_main_context_push_thread_default (context);
  server = tether_server_new ();
  g_assert_false (tether_server_listen (server, "ws://0.0.0.0:0", &error));
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INSECURE_TRANSPORT);
  g_clear_error (&error);
  g_assert_false (tether_server_listen (server, "wss://127.0.0.1:0", &error));
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_FAILED);
  g_clear_error (&error);
  g_assert_false (tether_server_listen (server, "ws://example.com:80", &error));
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_URI);
  g_assert_finalize_object (server);
  g_main_context_pop_thread_default (context);
}

static void
test_unix_server_uid (Fixture       *f,
                      gconstpointer  user_data)
{
  const FixtureData *data = user_data;
  g_autoptr(GError) error = NULL;
  TetherClient *client = fixture_new_client (f, data);

  /* The socket is served by us, not by the uid the client expects. */
  g_object_set (client, "expected-server-uid", (gint64) getuid () + 4242, NULL);
  error = tether_test_client_connect (client);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_PEER_NOT_TRUSTED);
  g_assert_finalize_object (client);
  /* Nothing was sent: the server never saw a second peer. */
  tether_test_spin_ms (20);
  g_assert_cmpuint (f->peers_connected, ==, 1);
}

static void
test_tls_untrusted (Fixture       *f,
                    gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  TetherClient *client = tether_client_new (tether_server_get_uris (f->server)[0]);
  g_autoptr(GTlsDatabase) other = tether_test_load_ca (f->dir, "other-ca.pem");

  /* The system store does not know the test CA, nor does another CA:
   * there is no way to connect without verifying. */
  error = tether_test_client_connect (client);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_clear_error (&error);
  g_assert_finalize_object (client);

  client = tether_client_new (tether_server_get_uris (f->server)[0]);
  tether_client_set_tls_database (client, other);
  error = tether_test_client_connect (client);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_finalize_object (client);
}

static void
test_connect_timeout (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketListener) listener = g_socket_listener_new ();
  g_autofree char *uri = NULL;
  TetherClient *client;
  guint16 port;

  g_main_context_push_thread_default (context);

  /* A listener that accepts (the kernel does) and never answers. */
  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  uri = g_strdup_printf ("ws://127.0.0.1:%u", port);

  client = g_object_new (TETHER_TYPE_CLIENT, "uri", uri, "handshake-timeout", 200, NULL);
  error = tether_test_client_connect (client);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_finalize_object (client);
  g_main_context_pop_thread_default (context);
}

static void
test_server_handshake_timeout (Fixture       *f,
                               gconstpointer  user_data)
{
  g_autoptr(GSocketClient) sc = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnectable) address = NULL;
  char buffer[256];
  gssize n;
  const char *uri = tether_server_get_uris (f->server)[0];
  int port = atoi (strrchr (uri, ':') + 1);

  /* The fixture's server uses a 10 s default; make it short for this. */
  g_object_set (f->server, "handshake-timeout", 200, NULL);

  address = g_network_address_new ("127.0.0.1", port);
  conn = g_socket_client_connect (sc, address, NULL, &error);
  g_assert_no_error (error);

  /* Silent after connecting: the server closes us at its deadline. */
  g_socket_set_blocking (g_socket_connection_get_socket (conn), FALSE);
  for (;;)
    {
      g_autoptr(GError) read_error = NULL;

      n = g_socket_receive (g_socket_connection_get_socket (conn), buffer, sizeof buffer,
                            NULL, &read_error);
      if (n == 0 || (n < 0 && !g_error_matches (read_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)))
        break;
      tether_test_spin_ms (10);
    }
  g_assert_cmpint (n, <=, 0);
  g_assert_cmpuint (f->peers_connected, ==, 1);
}

/* Limits are taken when a connection starts: reconnect to apply new ones. */
static void
reconnect (Fixture *f)
{
  guint connected = f->peers_connected;

  if (tether_client_is_connected (f->client))
    {
      tether_client_close (f->client);
      TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == connected);
    }
  f->disconnected = FALSE;
  g_assert_null (tether_test_client_connect (f->client));
  TETHER_TEST_WAIT_UNTIL (f->peers_connected == connected + 1);
}

static void
test_callback_quotas (Fixture       *f,
                      gconstpointer  user_data)
{
  CallResult r[4] = { { 0 } };
  g_autoptr(TetherStatistics) stats = NULL;

  g_object_set (f->server, "max-pending-callbacks", 2, NULL);
  reconnect (f);

  /* Two callbacks wait on the client; the third fails at once. */
  for (guint i = 0; i < 3; i++)
    tether_peer_call_async (f->peer, "hold", NULL, -1, NULL, peer_call_cb, &r[i]);
  TETHER_TEST_WAIT_UNTIL (r[2].done);
  g_assert_error (r[2].error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED);
  g_assert_false (r[0].done || r[1].done);
  stats = tether_peer_get_statistics (f->peer);
  g_assert_cmpuint (stats->pending_calls, ==, 2);
  g_assert_cmpuint (stats->rejected, ==, 1);
  g_assert_cmpuint (stats->calls_sent, ==, 2);
  TETHER_TEST_WAIT_UNTIL (f->client_held->len == 2);
  call_result_clear (&r[2]);

  /* The server-wide quota holds across peers: at 2 in flight, the total
   * of 2 refuses a third even though the peer has room. */
  g_object_set (f->server, "max-pending-callbacks", 16, "max-total-callbacks", 2, NULL);
  reconnect (f);
  /* The first connection's two failed when it closed. */
  TETHER_TEST_WAIT_UNTIL (r[0].done && r[1].done);
  g_assert_error (r[0].error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  for (guint i = 0; i < 2; i++)
    call_result_clear (&r[i]);
  g_ptr_array_set_size (f->client_held, 0);
  tether_peer_call_async (f->peer, "hold", NULL, -1, NULL, peer_call_cb, &r[0]);
  tether_peer_call_async (f->peer, "hold", NULL, -1, NULL, peer_call_cb, &r[1]);
  tether_peer_call_async (f->peer, "hold", NULL, -1, NULL, peer_call_cb, &r[2]);
  TETHER_TEST_WAIT_UNTIL (r[2].done);
  g_assert_error (r[2].error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED);
  g_assert_nonnull (strstr (r[2].error->message, "server"));
  TETHER_TEST_WAIT_UNTIL (f->client_held->len == 2);

  /* Answering one frees a slot in the total. */
  tether_invocation_return_value (f->client_held->pdata[0], NULL);
  TETHER_TEST_WAIT_UNTIL (r[0].done);
  g_assert_no_error (r[0].error);
  tether_peer_call_async (f->peer, "ping", NULL, -1, NULL, peer_call_cb, &r[3]);
  TETHER_TEST_WAIT_UNTIL (r[3].done);
  g_assert_no_error (r[3].error);

  /* The one still held fails when the connection goes. */
  tether_client_close (f->client);
  TETHER_TEST_WAIT_UNTIL (r[1].done);
  g_assert_error (r[1].error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  for (guint i = 0; i < 4; i++)
    call_result_clear (&r[i]);
}

static void
test_invocation_cap (Fixture       *f,
                     gconstpointer  user_data)
{
  CallResult r[3] = { { 0 } };

  g_object_set (f->server, "max-invocations-per-peer", 2, NULL);
  reconnect (f);

  for (guint i = 0; i < 3; i++)
    tether_client_call_async (f->client, "hold", NULL, -1, NULL, client_call_cb, &r[i]);
  TETHER_TEST_WAIT_UNTIL (r[2].done);
  g_assert_error (r[2].error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED);
  g_assert_cmpuint (f->held->len, ==, 2);
  for (guint i = 0; i < 2; i++)
    tether_invocation_return_value (f->held->pdata[i], NULL);
  TETHER_TEST_WAIT_UNTIL (r[0].done && r[1].done);
  for (guint i = 0; i < 3; i++)
    call_result_clear (&r[i]);
}

static void
test_strikes_disconnect (Fixture       *f,
                         gconstpointer  user_data)
{
  CallResult r[2] = { { 0 } };
  g_autoptr(TetherStatistics) stats = NULL;

  g_object_set (f->server, "callback-timeout", 50, "max-strikes", 2, NULL);
  reconnect (f);

  /* A black hole: the client takes callbacks and never answers. */
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE,
                         "*misbehaved (callback-timeouts): 2 callbacks timed out*disconnecting*");
  tether_peer_call_async (f->peer, "hold", NULL, -1, NULL, peer_call_cb, &r[0]);
  tether_peer_call_async (f->peer, "hold", NULL, -1, NULL, peer_call_cb, &r[1]);
  TETHER_TEST_WAIT_UNTIL (r[0].done && r[1].done);
  g_assert_error (r[0].error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  TETHER_TEST_WAIT_UNTIL (f->disconnected);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (f->misbehaved, ==, 1);
  g_assert_cmpint (f->last_misbehavior, ==, TETHER_MISBEHAVIOR_CALLBACK_TIMEOUTS);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == f->peers_connected);

  stats = tether_server_get_statistics (f->server);
  g_assert_cmpuint (stats->timed_out, >=, 2);
  g_assert_cmpuint (stats->peers_cut_off, ==, 1);
  for (guint i = 0; i < 2; i++)
    call_result_clear (&r[i]);
}

static void
test_strikes_quarantine (Fixture       *f,
                         gconstpointer  user_data)
{
  CallResult r = { 0 };

  g_object_set (f->server, "callback-timeout", 50, "max-strikes", 1,
                "misbehavior-action", TETHER_MISBEHAVIOR_ACTION_QUARANTINE,
                "quarantine-duration", 300, NULL);
  reconnect (f);

  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, "*quarantined for 300 ms*");
  tether_peer_call_async (f->peer, "hold", NULL, -1, NULL, peer_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_test_assert_expected_messages ();
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  call_result_clear (&r);
  g_assert_true (tether_peer_is_quarantined (f->peer));
  g_assert_true (tether_client_is_connected (f->client));

  /* Quarantined: callbacks fail at once, calls are refused. */
  tether_peer_call_async (f->peer, "ping", NULL, -1, NULL, peer_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_error (r.error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED);
  call_result_clear (&r);
  client_call (f, "echo", NULL, -1, &r);
  g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED);
  call_result_clear (&r);

  /* After the cooldown, business as usual. */
  TETHER_TEST_WAIT_UNTIL (!tether_peer_is_quarantined (f->peer));
  tether_peer_call_async (f->peer, "ping", NULL, -1, NULL, peer_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);
  call_result_clear (&r);
}

static void
test_lease (Fixture       *f,
            gconstpointer  user_data)
{
  CallResult r = { 0 };
  gint64 start;
  gint64 elapsed;

  g_object_set (f->server, "callback-timeout", 100, "max-callback-timeout", 400,
                "max-strikes", 0, NULL);
  reconnect (f);
  f->extend_on_hold = TRUE;

  /* The client's handler asks for 5 s; it answers after 250 ms, well past
   * the 100 ms the callback had: the lease held. */
  start = g_get_monotonic_time ();
  tether_peer_call_async (f->peer, "hold", NULL, -1, NULL, peer_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (f->client_held->len == 1);
  tether_test_spin_ms (250);
  g_assert_false (r.done);
  tether_invocation_return_value (f->client_held->pdata[0], g_variant_new_boolean (TRUE));
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);
  call_result_clear (&r);

  /* A handler that keeps asking never gets past the hard maximum (400 ms
   * from the callback's start), whatever it asked for. */
  start = g_get_monotonic_time ();
  tether_peer_call_async (f->peer, "hold", NULL, -1, NULL, peer_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  elapsed = (g_get_monotonic_time () - start) / 1000;
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (elapsed, >=, 390);
  g_assert_cmpint (elapsed, <, 2000);
  call_result_clear (&r);
  /* The client's own invocation saw the server give up. */
  TETHER_TEST_WAIT_UNTIL (f->client_held_cancelled >= 1 ||
                          tether_invocation_get_remaining_ms (f->client_held->pdata[1]) == 0);
}

static void
test_idle_timeout (Fixture       *f,
                   gconstpointer  user_data)
{
  CallResult r = { 0 };

  g_object_set (f->server, "idle-timeout", 300, "keepalive-interval", 0, NULL);
  g_object_set (f->client, "keepalive-interval", 0, NULL);
  reconnect (f);

  /* Talking keeps the connection: 6 calls 100 ms apart span 600 ms. */
  for (guint i = 0; i < 6; i++)
    {
      client_call (f, "echo", NULL, -1, &r);
      g_assert_no_error (r.error);
      call_result_clear (&r);
      tether_test_spin_ms (100);
    }
  g_assert_true (tether_client_is_connected (f->client));

  /* Silence closes it, and says why. */
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, "*misbehaved (idle-timeout)*");
  TETHER_TEST_WAIT_UNTIL (f->disconnected);
  g_test_assert_expected_messages ();
  g_assert_cmpint (f->last_misbehavior, ==, TETHER_MISBEHAVIOR_IDLE_TIMEOUT);
}

static void
test_keepalive (Fixture       *f,
                gconstpointer  user_data)
{
  /* Pings every second (libsoup's granularity) are answered by the peer
   * and count as life: a 1.5 s idle timeout never fires over 3.5 s. */
  g_object_set (f->server, "idle-timeout", 1500, "keepalive-interval", 1000, NULL);
  g_object_set (f->client, "keepalive-interval", 0, NULL);
  reconnect (f);
  tether_test_spin_ms (3500);
  g_assert_true (tether_client_is_connected (f->client));
  g_assert_cmpuint (f->misbehaved, ==, 0);
}

static void
test_connections_per_peer (Fixture       *f,
                           gconstpointer  user_data)
{
  const FixtureData *data = user_data;
  TetherClient *second;
  TetherClient *third;
  g_autoptr(GError) error = NULL;

  g_object_set (f->server, "max-connections-per-peer", 2, NULL);
  second = fixture_new_client (f, data);
  g_assert_null (tether_test_client_connect (second));

  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, "*too-many-connections*");
  third = fixture_new_client (f, data);
  error = tether_test_client_connect (third);
  g_test_assert_expected_messages ();
  g_assert_nonnull (error);
  g_assert_cmpint (f->last_misbehavior, ==, TETHER_MISBEHAVIOR_TOO_MANY_CONNECTIONS);

  /* The first two still work. */
  {
    CallResult r = { 0 };

    client_call (f, "echo", NULL, -1, &r);
    g_assert_no_error (r.error);
    call_result_clear (&r);
  }

  tether_client_close (second);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == 1);
  g_assert_finalize_object (second);
  g_assert_finalize_object (third);

  /* A slot freed: a new connection is accepted again. */
  third = fixture_new_client (f, data);
  g_assert_null (tether_test_client_connect (third));
  tether_client_close (third);
  g_assert_finalize_object (third);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == 2);
}

/* -- authentication ---------------------------------------------------- */

typedef struct
{
  GSubprocess      *process;
  GDataInputStream *out;
  char             *line;
  gboolean          done;
} Child;

static void
child_line_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Child *child = user_data;

  child->line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (source), result,
                                                      NULL, NULL);
  child->done = TRUE;
}

/* Starts an attacker process and returns the port from its
 * "listening on PORT" line. */
static guint16
child_start (Child              *child,
             const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  const char *port;

  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);

  memset (child, 0, sizeof *child);
  /* The attacker dies with the test, whatever happens to the test. */
  g_subprocess_launcher_set_child_setup (launcher, tether_test_die_with_parent, NULL, NULL);
  child->process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  child->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (child->process));
  g_data_input_stream_read_line_async (child->out, G_PRIORITY_DEFAULT, NULL, child_line_cb, child);
  TETHER_TEST_WAIT_UNTIL (child->done);
  g_assert_nonnull (child->line);
  port = strrchr (child->line, ' ');
  g_assert_nonnull (port);
  return atoi (port + 1);
}

static void
child_stop (Child *child)
{
  g_subprocess_force_exit (child->process);
  g_subprocess_wait (child->process, NULL, NULL);
  g_clear_object (&child->out);
  g_clear_object (&child->process);
  g_clear_pointer (&child->line, g_free);
}

static void
add_alice (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *secrets = tether_scram_secrets_from_password ("s3cret", 4096, &error);

  g_assert_no_error (error);
  g_assert_true (tether_server_add_user (f->server, "alice", secrets, &error));
  g_assert_no_error (error);
}

static void
test_auth_scram_plus (Fixture       *f,
                      gconstpointer  user_data)
{
  CallResult r = { 0 };
  TetherIdentity *identity;
  g_autoptr(GError) wrong = NULL;
  g_autoptr(GError) unknown = NULL;

  add_alice (f);

  /* Anonymous on wss:// without a client certificate. */
  client_call (f, "authenticated-echo", NULL, -1, &r);
  g_assert_error (r.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_UNAUTHENTICATED);
  call_result_clear (&r);

  /* With credentials: SCRAM-SHA-256-PLUS bound to this TLS channel. */
  tether_client_set_credentials (f->client, "alice", "s3cret");
  reconnect (f);
  identity = tether_peer_get_identity (f->peer);
  g_assert_cmpstr (tether_identity_get_username (identity), ==, "alice");
  g_assert_cmpstr (tether_identity_get_auth_mechanism (identity), ==, "SCRAM-SHA-256-PLUS");
  g_assert_true (tether_identity_is_authenticated (identity));
  client_call (f, "authenticated-echo", NULL, -1, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);

  /* A wrong password and an unknown user fail alike (no enumeration). */
  tether_client_close (f->client);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == f->peers_connected);
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, "*Authentication of*failed*");
  tether_client_set_credentials (f->client, "alice", "guess");
  wrong = tether_test_client_connect (f->client);
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, "*Authentication of*failed*");
  tether_client_set_credentials (f->client, "mallory", "guess");
  unknown = tether_test_client_connect (f->client);
  g_test_assert_expected_messages ();
  g_assert_error (wrong, TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED);
  g_assert_error (unknown, TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED);
  g_assert_cmpstr (wrong->message, ==, unknown->message);
  tether_client_set_credentials (f->client, NULL, NULL);
}

static void
test_auth_plain_scram (Fixture       *f,
                       gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  add_alice (f);
  tether_client_close (f->client);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == f->peers_connected);

  /* Without TLS, unbound SCRAM only where the server allows it. */
  tether_client_set_credentials (f->client, "alice", "s3cret");
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, "*not offered here*");
  error = tether_test_client_connect (f->client);
  g_test_assert_expected_messages ();
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED);
  g_clear_error (&error);

  g_object_set (f->server, "allow-plain-scram", TRUE, NULL);
  reconnect (f);
  g_assert_cmpstr (tether_identity_get_auth_mechanism (tether_peer_get_identity (f->peer)), ==,
                   "SCRAM-SHA-256");
  g_assert_cmpstr (tether_identity_get_username (tether_peer_get_identity (f->peer)), ==, "alice");
}

static void
test_auth_man_in_the_middle (Fixture       *f,
                             gconstpointer  user_data)
{
  const FixtureData *data = user_data;
  g_autofree char *cert = g_build_filename (f->dir, "relay.pem", NULL);
  g_autofree char *key = g_build_filename (f->dir, "relay-key.pem", NULL);
  g_autofree char *ca = g_build_filename (f->dir, "ca.pem", NULL);
  const char *server_uri = tether_server_get_uris (f->server)[0];
  g_autofree char *upstream = g_strdup (strrchr (server_uri, ':') + 1);
  const char *argv[] = { TETHER_TEST_BUILDDIR "/mitm-relay", cert, key, ca, upstream, NULL };
  g_autofree char *relay_uri = NULL;
  g_autoptr(GError) error = NULL;
  TetherClient *client;
  Child relay;

  add_alice (f);
  relay_uri = g_strdup_printf ("wss://127.0.0.1:%u", child_start (&relay, argv));

  /* Through the relay the client's TLS channel is not the server's: the
   * SCRAM-PLUS binding cannot match, the server logs it and says so, and
   * the client gets an error that names channel binding. */
  client = fixture_new_client_for (f, data, relay_uri);
  tether_client_set_credentials (client, "alice", "s3cret");
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, "*Authentication of*Channel binding mismatch*");
  error = tether_test_client_connect (client);
  g_test_assert_expected_messages ();
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_CHANNEL_BINDING_FAILED);
  g_assert_nonnull (strstr (error->message, "hannel binding"));
  g_clear_error (&error);
  g_assert_finalize_object (client);

  /* The relay does work: without credentials the same path connects
   * (TLS alone cannot tell it is there). */
  client = fixture_new_client_for (f, data, relay_uri);
  g_assert_null (tether_test_client_connect (client));
  tether_client_close (client);
  g_assert_finalize_object (client);

  /* And without the relay the same credentials pass. */
  client = fixture_new_client (f, data);
  tether_client_set_credentials (client, "alice", "s3cret");
  g_assert_null (tether_test_client_connect (client));
  tether_client_close (client);
  g_assert_finalize_object (client);

  child_stop (&relay);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected + 1 == f->peers_connected);
}

static void
test_auth_no_downgrade (Fixture       *f,
                        gconstpointer  user_data)
{
  const FixtureData *data = user_data;
  g_autofree char *cert = g_build_filename (f->dir, "relay.pem", NULL);
  g_autofree char *key = g_build_filename (f->dir, "relay-key.pem", NULL);
  const char *argv[] = { "/usr/bin/python3", TETHER_TEST_SRCDIR "/attackers/no-binding-server.py",
                         cert, key, NULL };
  g_autofree char *uri = NULL;
  g_autoptr(GError) error = NULL;
  TetherClient *client;
  Child server;

  /* A server (trusted certificate) that claims not to support channel
   * binding and ignores the client's bound authentication: refused. */
  uri = g_strdup_printf ("wss://127.0.0.1:%u", child_start (&server, argv));
  client = fixture_new_client_for (f, data, uri);
  tether_client_set_credentials (client, "alice", "s3cret");
  error = tether_test_client_connect (client);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_CHANNEL_BINDING_FAILED);
  g_assert_false (tether_client_is_connected (client));
  g_assert_finalize_object (client);
  child_stop (&server);
}

static void
test_auth_external (Fixture       *f,
                    gconstpointer  user_data)
{
  const FixtureData *data = user_data;
  TetherIdentity *identity;
  g_autoptr(GError) error = NULL;
  TetherClient *client;

  /* EXTERNAL asserts what the transport proved (the kernel's uid here,
   * a verified certificate on wss://) and records it. */
  g_object_set (f->client, "auth-mechanism", "EXTERNAL", NULL);
  reconnect (f);
  identity = tether_peer_get_identity (f->peer);
  g_assert_cmpstr (tether_identity_get_auth_mechanism (identity), ==, "EXTERNAL");
  g_assert_true (tether_identity_is_authenticated (identity));

  /* ANONYMOUS only where the server allows it. */
  client = fixture_new_client (f, data);
  g_object_set (client, "auth-mechanism", "ANONYMOUS", NULL);
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, "*not offered here*");
  error = tether_test_client_connect (client);
  g_test_assert_expected_messages ();
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED);
  g_clear_error (&error);
  g_assert_finalize_object (client);

  g_object_set (f->server, "allow-anonymous", TRUE, NULL);
  client = fixture_new_client (f, data);
  g_object_set (client, "auth-mechanism", "ANONYMOUS", NULL);
  g_assert_null (tether_test_client_connect (client));
  tether_client_close (client);
  g_assert_finalize_object (client);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected + 1 == f->peers_connected);
}

static void
test_pinning (Fixture       *f,
              gconstpointer  user_data)
{
  const FixtureData *data = user_data;
  const char *real = tether_identity_get_certificate_sha256 (tether_client_get_server_identity (f->client));
  g_autoptr(GError) error = NULL;
  TetherClient *client;

  client = fixture_new_client (f, data);
  g_object_set (client, "tls-pinned-sha256", real, NULL);
  g_assert_null (tether_test_client_connect (client));
  tether_client_close (client);
  g_assert_finalize_object (client);

  client = fixture_new_client (f, data);
  g_object_set (client, "tls-pinned-sha256",
                "0000000000000000000000000000000000000000000000000000000000000000", NULL);
  error = tether_test_client_connect (client);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_PEER_NOT_TRUSTED);
  g_assert_finalize_object (client);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected + 1 == f->peers_connected);
}

static const FixtureData unix_data = { TETHER_TRANSPORT_UNIX, FALSE };
static const FixtureData tcp_data = { TETHER_TRANSPORT_TCP, FALSE };
static const FixtureData tls_data = { TETHER_TRANSPORT_TLS, FALSE };
static const FixtureData mtls_data = { TETHER_TRANSPORT_TLS, TRUE };

static void
add_for_transports (const char *name,
                    void (*func) (Fixture *, gconstpointer))
{
  struct { const char *label; const FixtureData *data; } transports[] = {
    { "unix", &unix_data }, { "ws", &tcp_data }, { "wss", &tls_data }, { "wss-mutual", &mtls_data },
  };

  for (guint i = 0; i < G_N_ELEMENTS (transports); i++)
    {
      g_autofree char *path = g_strdup_printf ("/tether/rpc/%s/%s", transports[i].label, name);

      g_test_add (path, Fixture, transports[i].data, fixture_set_up, func, fixture_tear_down);
    }
}

int
main (int argc, char **argv)
{
  /* The suite's second run: every message JSON text (see meson.build). */
  if (argc > 1 && strcmp (argv[argc - 1], "--json-frames") == 0)
    {
      json_frames = TRUE;
      argv[--argc] = NULL;
    }
  g_test_init (&argc, &argv, NULL);

  add_for_transports ("call", test_call);
  add_for_transports ("errors", test_errors);
  add_for_transports ("access", test_access);
  add_for_transports ("identity", test_identity);
  add_for_transports ("callback", test_callback);
  add_for_transports ("notifications", test_notifications);
  add_for_transports ("burst", test_burst);
  add_for_transports ("deadline", test_deadline);
  add_for_transports ("deadline-inherited", test_deadline_inherited);
  add_for_transports ("cancel", test_cancel);
  add_for_transports ("cancel-inherited", test_cancel_inherited);
  add_for_transports ("cancel-by-handler", test_cancel_by_handler);
  add_for_transports ("disconnect-mid-call", test_disconnect_mid_call);
  add_for_transports ("client-dies-mid-callback", test_client_dies_mid_callback);
  g_test_add ("/tether/rpc/unix/one-timer", Fixture, &unix_data, fixture_set_up,
              test_one_timer, fixture_tear_down);
  g_test_add ("/tether/rpc/unix/server-uid-checked", Fixture, &unix_data, fixture_set_up,
              test_unix_server_uid, fixture_tear_down);
  g_test_add ("/tether/rpc/wss/untrusted-certificate", Fixture, &tls_data, fixture_set_up,
              test_tls_untrusted, fixture_tear_down);
  g_test_add ("/tether/rpc/ws/server-handshake-timeout", Fixture, &tcp_data, fixture_set_up,
              test_server_handshake_timeout, fixture_tear_down);
  g_test_add ("/tether/rpc/unix/callback-quotas", Fixture, &unix_data, fixture_set_up,
              test_callback_quotas, fixture_tear_down);
  g_test_add ("/tether/rpc/unix/invocation-cap", Fixture, &unix_data, fixture_set_up,
              test_invocation_cap, fixture_tear_down);
  g_test_add ("/tether/rpc/unix/strikes-disconnect", Fixture, &unix_data, fixture_set_up,
              test_strikes_disconnect, fixture_tear_down);
  g_test_add ("/tether/rpc/ws/strikes-quarantine", Fixture, &tcp_data, fixture_set_up,
              test_strikes_quarantine, fixture_tear_down);
  g_test_add ("/tether/rpc/unix/lease", Fixture, &unix_data, fixture_set_up,
              test_lease, fixture_tear_down);
  g_test_add ("/tether/rpc/unix/idle-timeout", Fixture, &unix_data, fixture_set_up,
              test_idle_timeout, fixture_tear_down);
  g_test_add ("/tether/rpc/ws/keepalive", Fixture, &tcp_data, fixture_set_up,
              test_keepalive, fixture_tear_down);
  g_test_add ("/tether/rpc/unix/connections-per-peer", Fixture, &unix_data, fixture_set_up,
              test_connections_per_peer, fixture_tear_down);
  g_test_add ("/tether/rpc/wss/connections-per-peer", Fixture, &tls_data, fixture_set_up,
              test_connections_per_peer, fixture_tear_down);
  g_test_add ("/tether/rpc/wss/auth-scram-plus", Fixture, &tls_data, fixture_set_up,
              test_auth_scram_plus, fixture_tear_down);
  g_test_add ("/tether/rpc/unix/auth-plain-scram", Fixture, &unix_data, fixture_set_up,
              test_auth_plain_scram, fixture_tear_down);
  g_test_add ("/tether/rpc/wss/auth-man-in-the-middle", Fixture, &tls_data, fixture_set_up,
              test_auth_man_in_the_middle, fixture_tear_down);
  g_test_add ("/tether/rpc/wss/auth-no-downgrade", Fixture, &tls_data, fixture_set_up,
              test_auth_no_downgrade, fixture_tear_down);
  g_test_add ("/tether/rpc/unix/auth-external", Fixture, &unix_data, fixture_set_up,
              test_auth_external, fixture_tear_down);
  g_test_add ("/tether/rpc/wss-mutual/auth-external", Fixture, &mtls_data, fixture_set_up,
              test_auth_external, fixture_tear_down);
  g_test_add ("/tether/rpc/wss/pinning", Fixture, &tls_data, fixture_set_up,
              test_pinning, fixture_tear_down);
  g_test_add_func ("/tether/rpc/connect-refused", test_connect_refused);
  g_test_add_func ("/tether/rpc/insecure-listen-refused", test_insecure_listen);
  g_test_add_func ("/tether/rpc/connect-timeout", test_connect_timeout);

  return g_test_run ();
}
