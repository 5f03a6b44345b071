/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Draining a server (issue #11): tether_server_shutdown_async() tells
 * Tether peers (rpc.tether.goaway, TetherClient::going-away), refuses new
 * calls (-32009) and new connections, lets calls and callbacks in
 * progress finish, closes each connection with 1001 once it has nothing
 * left, and cancels what is left at the deadline. */

#include <string.h>
#include <glib/gstdio.h>

#include "tether-test-common.h"

typedef struct
{
  char             *dir;
  char             *uri;
  TetherServer     *server;
  TetherClient     *client;
  TetherInvocation *held;          /* a "hold" call, unanswered */
  gboolean          held_cancelled;
  TetherInvocation *confirm;       /* the client's side of a callback, unanswered */
  guint             going_away;
  guint             going_away_ms;
  GError           *disconnected;
  gboolean          shut_down;
  GError           *shutdown_error;
} Fixture;

static void
held_cancelled_cb (GCancellable *cancellable,
                   Fixture      *f)
{
  f->held_cancelled = TRUE;
}

static void
hold (TetherInvocation *invocation,
      gpointer          user_data)
{
  Fixture *f = user_data;

  g_assert_null (f->held);
  f->held = g_object_ref (invocation);
  g_signal_connect (tether_invocation_get_cancellable (invocation), "cancelled",
                    G_CALLBACK (held_cancelled_cb), f);
}

static void
asked_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(TetherInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_invocation_call_peer_finish (invocation, result, &error);

  if (answer == NULL)
    tether_invocation_return_gerror (invocation, error);
  else
    tether_invocation_return_value (invocation, answer);
}

/* Server: asks its caller to confirm, and answers what it said. */
static void
ask (TetherInvocation *invocation,
     gpointer          user_data)
{
  tether_invocation_call_peer_async (invocation, "confirm", NULL, -1, NULL, asked_cb,
                                     g_object_ref (invocation));
}

/* Client: keeps the callback until the test answers it. */
static void
confirm (TetherInvocation *invocation,
         gpointer          user_data)
{
  Fixture *f = user_data;

  f->confirm = g_object_ref (invocation);
}

static void
going_away_cb (TetherClient *client,
               guint         deadline_ms,
               Fixture      *f)
{
  f->going_away++;
  f->going_away_ms = deadline_ms;
}

static void
disconnected_cb (TetherClient *client,
                 GError       *error,
                 Fixture      *f)
{
  g_clear_error (&f->disconnected);
  f->disconnected = g_error_copy (error);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("tether-drain-XXXXXX", &error);
  g_assert_no_error (error);
  f->uri = g_strdup_printf ("unix:%s/s.sock", f->dir);
  f->server = tether_server_new ();
  tether_server_add_method (f->server, "hold", TETHER_ACCESS_ANY, hold, f, NULL);
  tether_server_add_method (f->server, "ask", TETHER_ACCESS_ANY, ask, f, NULL);
  tether_server_add_method (f->server, "echo", TETHER_ACCESS_ANY, tether_test_echo, f, NULL);
  g_assert_true (tether_server_listen (f->server, f->uri, &error));

  f->client = tether_client_new (f->uri);
  tether_client_add_method (f->client, "confirm", confirm, f, NULL);
  g_signal_connect (f->client, "going-away", G_CALLBACK (going_away_cb), f);
  g_signal_connect (f->client, "disconnected", G_CALLBACK (disconnected_cb), f);
  error = tether_test_client_connect (f->client);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_clear_object (&f->held);
  g_clear_object (&f->confirm);
  g_clear_object (&f->client);
  tether_server_close (f->server);
  g_clear_object (&f->server);
  g_clear_error (&f->disconnected);
  g_clear_error (&f->shutdown_error);
  g_rmdir (f->dir);
  g_free (f->dir);
  g_free (f->uri);
}

typedef struct
{
  gboolean  done;
  GVariant *value;
  GError   *error;
} Call;

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Call *call = user_data;

  call->value = tether_client_call_finish (TETHER_CLIENT (source), result, &call->error);
  call->done = TRUE;
}

static void
call_clear (Call *call)
{
  g_clear_pointer (&call->value, g_variant_unref);
  g_clear_error (&call->error);
  call->done = FALSE;
}

static void
shutdown_done_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Fixture *f = user_data;

  tether_server_shutdown_finish (TETHER_SERVER (source), result, &f->shutdown_error);
  f->shut_down = TRUE;
}

/* A call in progress finishes; a new one is refused; the client is told,
 * and the connection closes (1001) once nothing is left. */
static void
test_calls_finish (Fixture       *f,
                   gconstpointer  data)
{
  Call held = { 0 }, late = { 0 };
  g_autoptr(TetherClient) newcomer = NULL;
  g_autoptr(GError) error = NULL;

  tether_client_call_async (f->client, "hold", NULL, -1, NULL, call_done_cb, &held);
  TETHER_TEST_WAIT_UNTIL (f->held != NULL);

  tether_server_shutdown_async (f->server, 120000, NULL, shutdown_done_cb, f);
  TETHER_TEST_WAIT_UNTIL (f->going_away == 1);
  g_assert_cmpuint (f->going_away_ms, >, 60000);
  g_assert_cmpuint (f->going_away_ms, <=, 120000);
  g_assert_cmpuint (g_strv_length ((char **) tether_server_get_uris (f->server)), ==, 0);

  /* Nothing new: not a call on this connection, not a connection. */
  tether_client_call_async (f->client, "echo", NULL, -1, NULL, call_done_cb, &late);
  TETHER_TEST_WAIT_UNTIL (late.done);
  g_assert_error (late.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_UNAVAILABLE);
  newcomer = tether_client_new (f->uri);
  error = tether_test_client_connect (newcomer);
  g_assert_nonnull (error);

  /* What was in progress is answered, and then the connection goes. */
  g_assert_false (f->shut_down);
  tether_invocation_return_value (f->held, g_variant_new_string ("done"));
  TETHER_TEST_WAIT_UNTIL (held.done && f->shut_down);
  g_assert_no_error (held.error);
  g_assert_cmpstr (g_variant_get_string (held.value, NULL), ==, "done");
  g_assert_no_error (f->shutdown_error);
  g_assert_false (f->held_cancelled);
  TETHER_TEST_WAIT_UNTIL (f->disconnected != NULL);
  g_assert_nonnull (strstr (f->disconnected->message, "1001"));
  call_clear (&held);
  call_clear (&late);
}

/* A callback in progress (the server's call to its client, made for a
 * call in progress) finishes too. */
static void
test_callbacks_finish (Fixture       *f,
                       gconstpointer  data)
{
  Call asked = { 0 };

  tether_client_call_async (f->client, "ask", NULL, -1, NULL, call_done_cb, &asked);
  TETHER_TEST_WAIT_UNTIL (f->confirm != NULL);
  tether_server_shutdown_async (f->server, 120000, NULL, shutdown_done_cb, f);
  TETHER_TEST_WAIT_UNTIL (f->going_away == 1);
  tether_invocation_return_value (f->confirm, g_variant_new_boolean (TRUE));
  TETHER_TEST_WAIT_UNTIL (asked.done && f->shut_down);
  g_assert_no_error (asked.error);
  g_assert_true (g_variant_get_boolean (asked.value));
  g_assert_no_error (f->shutdown_error);
  call_clear (&asked);
}

/* At the deadline what is left is cancelled: the handler's cancellable
 * fires and the caller is answered -32009. */
static void
test_deadline_cancels (Fixture       *f,
                       gconstpointer  data)
{
  Call held = { 0 };

  tether_client_call_async (f->client, "hold", NULL, -1, NULL, call_done_cb, &held);
  TETHER_TEST_WAIT_UNTIL (f->held != NULL);
  tether_server_shutdown_async (f->server, 200, NULL, shutdown_done_cb, f);
  TETHER_TEST_WAIT_UNTIL (held.done && f->shut_down);
  g_assert_error (held.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_UNAVAILABLE);
  g_assert_true (f->held_cancelled);
  g_assert_no_error (f->shutdown_error);
  call_clear (&held);
}

/* Cancelling the shutdown ends the wait: everything closes at once. */
static void
test_cancelled (Fixture       *f,
                gconstpointer  data)
{
  Call held = { 0 };
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();

  tether_client_call_async (f->client, "hold", NULL, -1, NULL, call_done_cb, &held);
  TETHER_TEST_WAIT_UNTIL (f->held != NULL);
  tether_server_shutdown_async (f->server, 60000, cancellable, shutdown_done_cb, f);
  TETHER_TEST_WAIT_UNTIL (f->going_away == 1);
  g_cancellable_cancel (cancellable);
  TETHER_TEST_WAIT_UNTIL (held.done && f->shut_down);
  g_assert_error (f->shutdown_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_error (held.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  call_clear (&held);
}

/* A call that crossed the goaway on the wire (sent before the client
 * read it, read by the server after it was sent) is served, not refused:
 * the server refuses only what comes after the pong to the ping that
 * follows its goaway. */
static void
test_crossing_call_served (Fixture       *f,
                           gconstpointer  data)
{
  Call crossing = { 0 }, late = { 0 };

  /* The request is in the socket before the server reads anything. */
  tether_client_call_async (f->client, "echo", g_variant_new ("(s)", "crossing"), -1, NULL,
                            call_done_cb, &crossing);
  tether_server_shutdown_async (f->server, 60000, NULL, shutdown_done_cb, f);
  TETHER_TEST_WAIT_UNTIL (crossing.done && f->going_away == 1);
  g_assert_no_error (crossing.error);

  /* After the pong, a new call is refused. */
  tether_test_spin_ms (50);
  if (!f->shut_down)
    {
      tether_client_call_async (f->client, "echo", NULL, -1, NULL, call_done_cb, &late);
      TETHER_TEST_WAIT_UNTIL (late.done);
      g_assert_nonnull (late.error);
    }
  TETHER_TEST_WAIT_UNTIL (f->shut_down);
  g_assert_no_error (f->shutdown_error);
  call_clear (&crossing);
  call_clear (&late);
}

static guint
n_peers (TetherServer *server)
{
  g_autoptr(GPtrArray) peers = tether_server_get_peers (server);

  return peers->len;
}

/* With nobody connected it is done at once. */
static void
test_nobody (Fixture       *f,
             gconstpointer  data)
{
  tether_client_close (f->client);
  TETHER_TEST_WAIT_UNTIL (f->disconnected != NULL);
  TETHER_TEST_WAIT_UNTIL (n_peers (f->server) == 0);
  tether_server_shutdown_async (f->server, 60000, NULL, shutdown_done_cb, f);
  TETHER_TEST_WAIT_UNTIL (f->shut_down);
  g_assert_no_error (f->shutdown_error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/drain/calls-finish", Fixture, NULL, fixture_set_up, test_calls_finish, fixture_tear_down);
  g_test_add ("/drain/callbacks-finish", Fixture, NULL, fixture_set_up, test_callbacks_finish,
              fixture_tear_down);
  g_test_add ("/drain/deadline-cancels", Fixture, NULL, fixture_set_up, test_deadline_cancels,
              fixture_tear_down);
  g_test_add ("/drain/cancelled", Fixture, NULL, fixture_set_up, test_cancelled, fixture_tear_down);
  g_test_add ("/drain/crossing-call-served", Fixture, NULL, fixture_set_up,
              test_crossing_call_served, fixture_tear_down);
  g_test_add ("/drain/nobody", Fixture, NULL, fixture_set_up, test_nobody, fixture_tear_down);

  return g_test_run ();
}
