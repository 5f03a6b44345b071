/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What idle connections cost the server's main context: nothing per
 * iteration (issue #8). GLib 2.74 prepares and checks every source
 * attached to a context and polls every descriptor registered on it, at
 * every iteration; so with hundreds of idle connections open, the
 * server's context must still hold the same sources and poll the same
 * descriptors as with one, and a call must still wake the same few
 * socket callbacks. Counted here, not timed: the poll function of the
 * server's context is wrapped, its sources are counted by id, and the
 * scheduler counts the socket callbacks it runs.
 *
 * The clients run in a thread of their own, on their own context, over
 * real sockets (unix: and ws://). */

#include <sys/resource.h>
#include <glib/gstdio.h>

#include "tether-test-common.h"
#include "tether-scheduler-private.h"

#define IDLE_CONNECTIONS 300
#define CALLS            50

typedef struct
{
  char         *uri;
  GMainContext *context;   /* the clients' */
  GMainContext *server_context;  /* woken up when a count changes */
  GThread      *thread;
  int           want_idle; /* idle connections the thread should open */
  int           idle;      /* opened so far */
  int           failed;
  int           calls_wanted;
  int           calls_done;
  int           stop;
  int           finished;  /* the thread's connections are all gone */
} Clients;

/* The server context's poll function, counting. */
static GPollFunc real_poll;
static guint polls;
static guint max_nfds;

static int
counting_poll (GPollFD *fds,
               guint    nfds,
               int      timeout)
{
  polls++;
  max_nfds = MAX (max_nfds, nfds);
  return real_poll (fds, nfds, timeout);
}

/* Sources attached to @context: ids are the context's own, given out in
 * order, so every one of them is below a new one's. */
static guint
count_sources (GMainContext *context)
{
  GSource *probe = g_idle_source_new ();
  guint top = g_source_attach (probe, context);
  guint n = 0;

  for (guint id = 1; id < top; id++)
    if (g_main_context_find_source_by_id (context, id) != NULL)
      n++;
  g_source_destroy (probe);
  g_source_unref (probe);
  return n;
}

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Clients *c = user_data;
  g_autoptr(GError) error = NULL;

  if (tether_client_connect_finish (TETHER_CLIENT (source), result, &error))
    g_atomic_int_inc (&c->idle);
  else
    {
      g_printerr ("idle connection failed: %s\n", error->message);
      g_atomic_int_inc (&c->failed);
    }
  g_main_context_wakeup (c->server_context);
}

static void
call_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Clients *c = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = tether_client_call_finish (TETHER_CLIENT (source), result, &error);

  if (value == NULL)
    {
      g_printerr ("call failed: %s\n", error->message);
      g_atomic_int_inc (&c->failed);
    }
  g_atomic_int_inc (&c->calls_done);
  g_main_context_wakeup (c->server_context);
}

static gpointer
clients_thread (gpointer user_data)
{
  Clients *c = user_data;
  g_autoptr(GPtrArray) idle = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(TetherClient) caller = NULL;
  g_autoptr(GError) error = NULL;
  int opened = 0;
  int calls_made = 0;

  g_main_context_push_thread_default (c->context);
  caller = tether_client_new (c->uri);
  error = tether_test_client_connect (caller);
  g_assert_no_error (error);

  while (!g_atomic_int_get (&c->stop))
    {
      /* Idle connections: opened on request, then never used. */
      while (opened < g_atomic_int_get (&c->want_idle))
        {
          TetherClient *client = tether_client_new (c->uri);

          g_ptr_array_add (idle, client);
          tether_client_connect_async (client, NULL, connected_cb, c);
          opened++;
        }
      /* Calls, one at a time, on request. */
      if (calls_made < g_atomic_int_get (&c->calls_wanted) &&
          calls_made == g_atomic_int_get (&c->calls_done))
        {
          tether_client_call_async (caller, "echo", g_variant_new_parsed ("{'n': <%i>}", calls_made),
                                    -1, NULL, call_cb, c);
          calls_made++;
        }
      g_main_context_iteration (c->context, TRUE);
    }

  for (guint i = 0; i < idle->len; i++)
    tether_client_close (idle->pdata[i]);
  tether_client_close (caller);
  g_ptr_array_set_size (idle, 0);
  g_clear_object (&caller);

  /* Polite closes wait for the server's answer (the main thread serves
   * it): done when no socket or deadline is left on this context. */
  {
    TetherScheduler *scheduler = _tether_scheduler_new (c->context);

    while (_tether_scheduler_get_n_watches (scheduler) > 0 || _tether_scheduler_get_length (scheduler) > 0)
      g_main_context_iteration (c->context, TRUE);
    _tether_scheduler_unref (scheduler);
  }
  g_main_context_pop_thread_default (c->context);
  g_atomic_int_set (&c->finished, 1);
  g_main_context_wakeup (c->server_context);
  return NULL;
}

static gboolean
wake_up (gpointer user_data)
{
  return G_SOURCE_REMOVE;
}

/* Asks the thread for something and wakes its context up. */
static void
clients_request (Clients *c,
                 int     *field,
                 int      value)
{
  g_autoptr(GSource) source = g_idle_source_new ();

  g_atomic_int_set (field, value);
  g_source_set_callback (source, wake_up, NULL, NULL);
  g_source_attach (source, c->context);
}

typedef struct
{
  guint polls;
  guint max_nfds;
  guint sources;
  guint64 watch_calls;
} Work;

/* CALLS sequential calls; what the server's context did meanwhile. */
static void
measure (Clients         *c,
         GMainContext    *context,
         TetherScheduler *scheduler,
         Work            *work)
{
  int target = g_atomic_int_get (&c->calls_wanted) + CALLS;
  guint64 watch_calls = _tether_scheduler_get_n_watch_calls (scheduler);

  polls = 0;
  max_nfds = 0;
  clients_request (c, &c->calls_wanted, target);
  TETHER_TEST_WAIT_UNTIL (g_atomic_int_get (&c->calls_done) == target);
  work->polls = polls;
  work->max_nfds = max_nfds;
  work->sources = count_sources (context);
  work->watch_calls = _tether_scheduler_get_n_watch_calls (scheduler) - watch_calls;
}

static void
test_idle_costs_nothing (gconstpointer user_data)
{
  const char *listen_uri = user_data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(TetherServer) server = NULL;
  g_autoptr(TetherScheduler) scheduler = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *uri = NULL;
  Clients c = { 0 };
  Work one, many;

  g_main_context_push_thread_default (context);
  real_poll = g_main_context_get_poll_func (context);
  g_main_context_set_poll_func (context, counting_poll);

  server = tether_server_new ();
  tether_server_add_method (server, "echo", TETHER_ACCESS_ANY, tether_test_echo, NULL, NULL);
  /* Every connection comes from this uid or address. */
  g_object_set (server, "max-connections-per-peer", IDLE_CONNECTIONS + 10, NULL);
  if (g_str_has_prefix (listen_uri, "unix:"))
    {
      dir = g_dir_make_tmp ("tether-scale-XXXXXX", &error);
      g_assert_no_error (error);
      uri = g_strdup_printf ("unix:%s/s.sock", dir);
    }
  else
    uri = g_strdup (listen_uri);
  g_assert_true (tether_server_listen (server, uri, &error));
  g_assert_no_error (error);
  scheduler = _tether_scheduler_new (context);

  c.uri = g_strdup (tether_server_get_uris (server)[0]);
  c.context = g_main_context_new ();
  c.server_context = context;
  c.thread = g_thread_new ("clients", clients_thread, &c);

  /* One connection. */
  measure (&c, context, scheduler, &one);

  /* Hundreds more, idle. */
  clients_request (&c, &c.want_idle, IDLE_CONNECTIONS);
  TETHER_TEST_WAIT_UNTIL (g_atomic_int_get (&c.idle) + g_atomic_int_get (&c.failed) == IDLE_CONNECTIONS);
  g_assert_cmpint (g_atomic_int_get (&c.failed), ==, 0);
  measure (&c, context, scheduler, &many);
  g_assert_cmpint (g_atomic_int_get (&c.failed), ==, 0);

  g_test_message ("1 connection: %u polls, %u descriptors at most, %u sources, %" G_GUINT64_FORMAT
                  " socket callbacks for %d calls", one.polls, one.max_nfds, one.sources,
                  one.watch_calls, CALLS);
  g_test_message ("%d idle more: %u polls, %u descriptors at most, %u sources, %" G_GUINT64_FORMAT
                  " socket callbacks", IDLE_CONNECTIONS, many.polls, many.max_nfds, many.sources,
                  many.watch_calls);

  /* Every iteration polls what it polled with one connection, and the
   * context holds the sources it held then. */
  g_assert_cmpuint (many.max_nfds, ==, one.max_nfds);
  g_assert_cmpuint (many.sources, ==, one.sources);
  /* The calls woke only their own connection: a callback for the
   * request's arrival (and its answer's flush, at most) per call, not
   * one per idle connection. */
  g_assert_cmpuint (many.watch_calls, <=, one.watch_calls + CALLS / 5);
  /* And no more iterations of the context (per call, not per idle
   * connection: timing decides whether a call takes one or two). */
  g_assert_cmpuint (many.polls, <=, 4 * CALLS);

  /* The thread closes its clients; the server answers their closes. */
  clients_request (&c, &c.stop, 1);
  TETHER_TEST_WAIT_UNTIL (g_atomic_int_get (&c.finished));
  g_thread_join (c.thread);
  g_main_context_unref (c.context);
  g_free (c.uri);
  tether_server_close (server);
  g_clear_pointer (&scheduler, _tether_scheduler_unref);
  g_assert_finalize_object (g_steal_pointer (&server));
  TETHER_TEST_WAIT_UNTIL (_tether_debug_get_attached_sources () == 0);
  if (dir != NULL)
    g_rmdir (dir);
  g_main_context_set_poll_func (context, real_poll);
  g_main_context_pop_thread_default (context);
}

int
main (int argc, char **argv)
{
  struct rlimit limit;

  g_test_init (&argc, &argv, NULL);

  /* Both ends of every connection are in this process. */
  if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 4 * IDLE_CONNECTIONS)
    {
      limit.rlim_cur = MIN (limit.rlim_max, 4 * IDLE_CONNECTIONS);
      setrlimit (RLIMIT_NOFILE, &limit);
    }

  g_test_add_data_func ("/tether/scale/unix/idle-costs-nothing", "unix:", test_idle_costs_nothing);
  g_test_add_data_func ("/tether/scale/ws/idle-costs-nothing", "ws://127.0.0.1:0", test_idle_costs_nothing);

  return g_test_run ();
}
