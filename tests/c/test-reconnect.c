/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Clients that follow (issue #11): with TetherClient:reconnect on, a
 * client that is sent away (rpc.tether.goaway: a drain, or the server's
 * max-connection-age) or loses its connection connects again by itself.
 * Calls in flight finish on the old connection, or fail with
 * G_IO_ERROR_CONNECTION_CLOSED when it broke — never sent twice — and
 * calls made meanwhile wait for the new one within their own deadline.
 *
 * Two servers take turns on one unix: path, as two instances behind one
 * address would: each counts what it received. */

#include <string.h>
#include <glib/gstdio.h>

#include "tether-test-common.h"

typedef struct _Fixture Fixture;

typedef struct
{
  Fixture          *f;
  TetherServer     *server;
  guint             holds;      /* "hold" calls received */
  guint             echoes;     /* "echo" calls received */
  TetherInvocation *held;
} Instance;

struct _Fixture
{
  char         *dir;
  char         *uri;
  Instance      a, b;
  TetherClient *client;
  guint         going_away;
  guint         reconnected;
  guint         disconnected;
  gboolean      shut_down;
};

static void
hold (TetherInvocation *invocation,
      gpointer          user_data)
{
  Instance *instance = user_data;

  instance->holds++;
  g_set_object (&instance->held, invocation);
}

static void
echo (TetherInvocation *invocation,
      gpointer          user_data)
{
  Instance *instance = user_data;

  instance->echoes++;
  tether_test_echo (invocation, NULL);
}

static void
instance_start (Fixture  *f,
                Instance *instance,
                guint     max_age_ms)
{
  g_autoptr(GError) error = NULL;

  instance->f = f;
  instance->server = g_object_new (TETHER_TYPE_SERVER,
                                   "max-connection-age", max_age_ms,
                                   "max-connection-age-grace", 60000u,
                                   NULL);
  tether_server_add_method (instance->server, "hold", TETHER_ACCESS_ANY, hold, instance, NULL);
  tether_server_add_method (instance->server, "echo", TETHER_ACCESS_ANY, echo, instance, NULL);
  g_assert_true (tether_server_listen (instance->server, f->uri, &error));
  g_assert_no_error (error);
}

static void
instance_stop (Instance *instance)
{
  if (instance->server != NULL)
    tether_server_close (instance->server);
  g_clear_object (&instance->held);
  g_clear_object (&instance->server);
}

static void
going_away_cb (TetherClient *client,
               guint         deadline_ms,
               Fixture      *f)
{
  f->going_away++;
}

static void
reconnected_cb (TetherClient *client,
                Fixture      *f)
{
  f->reconnected++;
  g_assert_true (tether_client_is_connected (client));
}

static void
disconnected_cb (TetherClient *client,
                 GError       *error,
                 Fixture      *f)
{
  f->disconnected++;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  gboolean reconnect = GPOINTER_TO_INT (data);

  f->dir = g_dir_make_tmp ("tether-reconnect-XXXXXX", &error);
  g_assert_no_error (error);
  f->uri = g_strdup_printf ("unix:%s/s.sock", f->dir);
  instance_start (f, &f->a, 0);

  f->client = tether_client_new (f->uri);
  g_assert_false (tether_client_get_reconnect (f->client));
  if (reconnect)
    g_object_set (f->client, "reconnect", TRUE, "reconnect-min-delay", 10u,
                  "reconnect-max-delay", 50u, NULL);
  g_signal_connect (f->client, "going-away", G_CALLBACK (going_away_cb), f);
  g_signal_connect (f->client, "reconnected", G_CALLBACK (reconnected_cb), f);
  g_signal_connect (f->client, "disconnected", G_CALLBACK (disconnected_cb), f);
  error = tether_test_client_connect (f->client);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  tether_client_close (f->client);
  /* A reconnect attempt under way (cancelled by the close) holds its
   * reference until its task has reported, as GIO's async calls do: the
   * client must go, but once the context has run. */
  g_object_add_weak_pointer (G_OBJECT (f->client), (gpointer *) &f->client);
  g_object_unref (f->client);
  TETHER_TEST_WAIT_UNTIL (f->client == NULL);
  instance_stop (&f->a);
  instance_stop (&f->b);
  g_unlink (f->uri + strlen ("unix:"));
  g_rmdir (f->dir);
  g_free (f->dir);
  g_free (f->uri);
}

typedef struct
{
  gboolean  done;
  gint64    when;
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
  call->when = g_get_monotonic_time ();
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

  g_assert_true (tether_server_shutdown_finish (TETHER_SERVER (source), result, NULL));
  f->shut_down = TRUE;
}

/* Sent away: the call in flight finishes on the old connection, a call
 * made meanwhile waits and goes to the new one, which is the other
 * instance's. */
static void
test_after_goaway (Fixture       *f,
                   gconstpointer  data)
{
  Call held = { 0 }, queued = { 0 };

  tether_client_call_async (f->client, "hold", NULL, -1, NULL, call_done_cb, &held);
  TETHER_TEST_WAIT_UNTIL (f->a.held != NULL);

  tether_server_shutdown_async (f->a.server, 60000, NULL, shutdown_done_cb, f);
  TETHER_TEST_WAIT_UNTIL (f->going_away == 1);
  g_assert_false (tether_client_is_connected (f->client));

  /* Nobody listens yet: the call waits. */
  tether_client_call_async (f->client, "echo", g_variant_new ("(s)", "hi"), 20000, NULL,
                            call_done_cb, &queued);
  tether_test_spin_ms (100);
  g_assert_false (queued.done);

  instance_start (f, &f->b, 0);
  TETHER_TEST_WAIT_UNTIL (queued.done);
  g_assert_no_error (queued.error);
  g_assert_cmpuint (f->reconnected, ==, 1);
  g_assert_cmpuint (f->b.echoes, ==, 1);
  g_assert_cmpuint (f->a.echoes, ==, 0);
  g_assert_true (tether_client_is_connected (f->client));

  /* The old connection still carries its call, and closes once done. */
  g_assert_false (held.done);
  tether_invocation_return_value (f->a.held, g_variant_new_string ("done"));
  TETHER_TEST_WAIT_UNTIL (held.done && f->shut_down);
  g_assert_no_error (held.error);
  g_assert_cmpstr (g_variant_get_string (held.value, NULL), ==, "done");
  /* Sent away is not lost. */
  g_assert_cmpuint (f->disconnected, ==, 0);
  g_assert_true (tether_client_is_connected (f->client));
  call_clear (&held);
  call_clear (&queued);
}

/* A call waiting for a connection fails at its own deadline, not later. */
static void
test_queued_deadline (Fixture       *f,
                      gconstpointer  data)
{
  Call queued = { 0 };
  gint64 start;

  tether_server_shutdown_async (f->a.server, 60000, NULL, shutdown_done_cb, f);
  TETHER_TEST_WAIT_UNTIL (f->going_away == 1 && f->shut_down);

  start = g_get_monotonic_time ();
  tether_client_call_async (f->client, "echo", NULL, 300, NULL, call_done_cb, &queued);
  TETHER_TEST_WAIT_UNTIL (queued.done);
  g_assert_error (queued.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (queued.when - start, >=, 300 * 1000);
  g_assert_cmpint (queued.when - start, <, 800 * 1000);
  call_clear (&queued);
}

/* Cancelling a waiting call ends it at once; past max-queued-calls the
 * next one is refused; closing the client fails what waits, and stops
 * following. */
static void
test_queue_bounds (Fixture       *f,
                   gconstpointer  data)
{
  Call first = { 0 }, second = { 0 }, cancelled = { 0 };
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();

  g_object_set (f->client, "max-queued-calls", 2u, NULL);
  tether_server_shutdown_async (f->a.server, 60000, NULL, shutdown_done_cb, f);
  TETHER_TEST_WAIT_UNTIL (f->going_away == 1 && f->shut_down);

  tether_client_call_async (f->client, "echo", NULL, 20000, NULL, call_done_cb, &first);
  tether_client_call_async (f->client, "echo", NULL, 20000, cancellable, call_done_cb, &cancelled);
  tether_client_call_async (f->client, "echo", NULL, 20000, NULL, call_done_cb, &second);
  TETHER_TEST_WAIT_UNTIL (second.done);
  g_assert_error (second.error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED);
  g_cancellable_cancel (cancellable);
  TETHER_TEST_WAIT_UNTIL (cancelled.done);
  g_assert_error (cancelled.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (first.done);

  tether_client_close (f->client);
  TETHER_TEST_WAIT_UNTIL (first.done);
  g_assert_error (first.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);

  /* Closed: an instance that comes back is not followed. */
  instance_start (f, &f->b, 0);
  tether_test_spin_ms (200);
  g_assert_false (tether_client_is_connected (f->client));
  g_assert_cmpuint (f->reconnected, ==, 0);
  call_clear (&first);
  call_clear (&second);
  call_clear (&cancelled);
  call_clear (&second);
}

/* A connection that breaks: the call in flight fails with
 * CONNECTION_CLOSED and is never sent again, on any connection. */
static void
test_lost_in_flight (Fixture       *f,
                     gconstpointer  data)
{
  Call held = { 0 }, after = { 0 };

  tether_client_call_async (f->client, "hold", NULL, -1, NULL, call_done_cb, &held);
  TETHER_TEST_WAIT_UNTIL (f->a.held != NULL);
  instance_stop (&f->a);
  TETHER_TEST_WAIT_UNTIL (held.done);
  g_assert_error (held.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  g_assert_cmpuint (f->disconnected, ==, 1);

  g_unlink (f->uri + strlen ("unix:"));
  instance_start (f, &f->b, 0);
  TETHER_TEST_WAIT_UNTIL (f->reconnected == 1);
  tether_client_call_async (f->client, "echo", NULL, -1, NULL, call_done_cb, &after);
  TETHER_TEST_WAIT_UNTIL (after.done);
  g_assert_no_error (after.error);
  tether_test_spin_ms (100);
  g_assert_cmpuint (f->a.holds, ==, 1);
  g_assert_cmpuint (f->b.holds, ==, 0);
  call_clear (&held);
  call_clear (&after);
}

/* Off by default: sent away, the client stays on the old connection
 * (new calls are answered -32009) and never connects again by itself. */
static void
test_off_by_default (Fixture       *f,
                     gconstpointer  data)
{
  Call late = { 0 };

  tether_server_shutdown_async (f->a.server, 60000, NULL, shutdown_done_cb, f);
  TETHER_TEST_WAIT_UNTIL (f->going_away == 1);
  TETHER_TEST_WAIT_UNTIL (f->shut_down && f->disconnected == 1);
  instance_start (f, &f->b, 0);
  tether_test_spin_ms (200);
  g_assert_false (tether_client_is_connected (f->client));
  g_assert_cmpuint (f->reconnected, ==, 0);
  tether_client_call_async (f->client, "echo", NULL, -1, NULL, call_done_cb, &late);
  TETHER_TEST_WAIT_UNTIL (late.done);
  g_assert_error (late.error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED);
  g_assert_cmpuint (f->b.echoes, ==, 0);
  call_clear (&late);
}

/* max-connection-age: the server sends a connection away once it is old
 * enough (±10 %), and a client that follows comes back. */
static void
test_max_connection_age (Fixture       *f,
                         gconstpointer  data)
{
  Call call = { 0 };
  gint64 start;

  /* A fresh instance with an age limit, the first one gone. */
  tether_client_close (f->client);
  instance_stop (&f->a);
  g_unlink (f->uri + strlen ("unix:"));
  instance_start (f, &f->b, 300);
  g_object_set (f->client, "reconnect", TRUE, NULL);
  g_assert_null (tether_test_client_connect (f->client));
  start = g_get_monotonic_time ();

  TETHER_TEST_WAIT_UNTIL (f->going_away == 1);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 260 * 1000);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 1000 * 1000);
  TETHER_TEST_WAIT_UNTIL (f->reconnected == 1);
  tether_client_call_async (f->client, "echo", NULL, -1, NULL, call_done_cb, &call);
  TETHER_TEST_WAIT_UNTIL (call.done);
  g_assert_no_error (call.error);
  /* And again: each connection has its own age. */
  TETHER_TEST_WAIT_UNTIL (f->going_away == 2 && f->reconnected == 2);
  call_clear (&call);
}

/* A drain while a connection is already sent away for its age ends it
 * by the drain's deadline, not the (longer) grace of its age. */
static void
test_drain_after_age (Fixture       *f,
                      gconstpointer  data)
{
  Call held = { 0 };
  gint64 start;

  tether_client_close (f->client);
  instance_stop (&f->a);
  g_unlink (f->uri + strlen ("unix:"));
  instance_start (f, &f->b, 200);
  g_assert_null (tether_test_client_connect (f->client));
  tether_client_call_async (f->client, "hold", NULL, -1, NULL, call_done_cb, &held);
  TETHER_TEST_WAIT_UNTIL (f->b.held != NULL && f->going_away == 1);

  start = g_get_monotonic_time ();
  tether_server_shutdown_async (f->b.server, 300, NULL, shutdown_done_cb, f);
  TETHER_TEST_WAIT_UNTIL (f->shut_down && held.done);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
  g_assert_error (held.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_UNAVAILABLE);
  call_clear (&held);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn, reconnect) \
  g_test_add (path, Fixture, GINT_TO_POINTER (reconnect), fixture_set_up, fn, fixture_tear_down)
  ADD ("/reconnect/after-goaway", test_after_goaway, TRUE);
  ADD ("/reconnect/queued-deadline", test_queued_deadline, TRUE);
  ADD ("/reconnect/queue-bounds", test_queue_bounds, TRUE);
  ADD ("/reconnect/lost-in-flight", test_lost_in_flight, TRUE);
  ADD ("/reconnect/off-by-default", test_off_by_default, FALSE);
  ADD ("/reconnect/max-connection-age", test_max_connection_age, FALSE);
  ADD ("/reconnect/drain-after-age", test_drain_after_age, FALSE);
#undef ADD

  return g_test_run ();
}
