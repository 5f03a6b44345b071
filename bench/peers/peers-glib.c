/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "peers-glib.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <gio/gunixsocketaddress.h>

#define CALL_BUDGET_MS 60000

static gboolean
flag_set_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
peer_glib_wait (const gboolean *flag,
                guint           ms)
{
  gboolean expired = FALSE;
  guint timer = g_timeout_add (ms, flag_set_cb, &expired);

  while (!*flag && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (timer);
  return *flag;
}

void
peer_glib_server_ready (const char *address)
{
  peer_emit ("READY %s", address);
  peer_server_watch_stdin ();
}

GSocketService *
peer_glib_listen (const PeerArgs *args,
                  char          **bound,
                  GError        **error)
{
  GSocketService *service = g_socket_service_new ();
  g_autoptr(GSocketAddress) addr = NULL;
  g_autoptr(GSocketAddress) effective = NULL;

  g_socket_listener_set_backlog (G_SOCKET_LISTENER (service), 1024);
  if (args->transport == PEER_TRANSPORT_UNIX)
    {
      g_unlink (args->address);
      addr = g_unix_socket_address_new (args->address);
    }
  else
    {
      char host[64];
      int port;

      if (!peer_split_hostport (args->address, host, sizeof host, &port))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "bad address %s", args->address);
          g_object_unref (service);
          return NULL;
        }
      addr = g_inet_socket_address_new_from_string (host, (guint) port);
    }
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service), addr, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_DEFAULT, NULL, &effective, error))
    {
      g_object_unref (service);
      return NULL;
    }
  if (args->transport == PEER_TRANSPORT_UNIX)
    *bound = g_strdup (args->address);
  else
    *bound = g_strdup_printf ("127.0.0.1:%u",
                              g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective)));
  return service;
}

GIOStream *
peer_glib_dial (const PeerArgs *args,
                GError        **error)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketAddress) addr = NULL;
  GSocketConnection *conn;

  if (args->transport == PEER_TRANSPORT_UNIX)
    addr = g_unix_socket_address_new (args->address);
  else
    {
      char host[64];
      int port;

      if (!peer_split_hostport (args->address, host, sizeof host, &port))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "bad address %s", args->address);
          return NULL;
        }
      addr = g_inet_socket_address_new_from_string (host, (guint) port);
    }
  conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (addr), NULL, error);
  if (conn != NULL && args->transport != PEER_TRANSPORT_UNIX)
    g_socket_set_option (g_socket_connection_get_socket (conn), IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  return conn != NULL ? G_IO_STREAM (conn) : NULL;
}

/* ---------------------------------------------------------------------- */

typedef struct
{
  const PeerArgs    *args;
  const PeerGlibOps *ops;
  /* latency */
  gboolean           with_callback;
  gpointer           conn;
  guint              total, done;
  gint64             t0;
  gint64            *ns;
  /* throughput */
  gint64             measure_from, end, last;
  guint64            calls, seq;
  guint              outstanding;
  /* both */
  guint              errors;
  char              *last_error;
  gboolean           finished;
} Run;

static void
note_error (Run        *r,
            const char *error)
{
  r->errors++;
  g_free (r->last_error);
  r->last_error = g_strdup (error);
}

static void latency_next (Run *r);

static void
latency_done (gpointer    data,
              const char *error)
{
  Run *r = data;
  gint64 t1 = peer_now_ns ();

  if (error != NULL)
    note_error (r, error);
  if (r->done >= (guint) r->args->warmup)
    r->ns[r->done - r->args->warmup] = t1 - r->t0;
  r->done++;
  if (r->done < r->total)
    latency_next (r);
  else
    r->finished = TRUE;
}

static void
latency_next (Run *r)
{
  r->t0 = peer_now_ns ();
  r->ops->call (r->conn, r->with_callback, r->done, latency_done, r);
}

static void
run_latency (const PeerArgs    *args,
             const PeerGlibOps *ops,
             gpointer           conn,
             gboolean           with_callback,
             const char        *workload)
{
  Run r = { .args = args, .ops = ops, .conn = conn, .with_callback = with_callback };

  r.total = (guint) (args->warmup + args->calls);
  r.ns = g_new0 (gint64, args->calls);
  latency_next (&r);
  if (!peer_glib_wait (&r.finished, CALL_BUDGET_MS))
    {
      peer_emit ("ERROR %s: only %u of %u calls finished in time", workload, r.done, r.total);
      exit (1);
    }
  peer_emit_latency (workload, r.ns, (size_t) args->calls, r.errors, r.last_error);
  g_free (r.ns);
  g_free (r.last_error);
}

typedef struct
{
  Run      *r;
  gpointer  conn;
} Slot;

static void throughput_start (Slot *s);

static void
throughput_done (gpointer    data,
                 const char *error)
{
  Slot *s = data;
  Run *r = s->r;
  gint64 now = peer_now_ns ();

  r->outstanding--;
  if (error != NULL)
    note_error (r, error);
  else if (now >= r->measure_from && now < r->end)
    {
      r->calls++;
      r->last = now;
    }
  if (now < r->end)
    throughput_start (s);
  else if (r->outstanding == 0)
    r->finished = TRUE;
}

static void
throughput_start (Slot *s)
{
  s->r->outstanding++;
  s->r->ops->call (s->conn, FALSE, s->r->seq++, throughput_done, s);
}

static void
run_throughput (const PeerArgs    *args,
                const PeerGlibOps *ops,
                gpointer          *conns,
                guint              n_conns,
                guint              depth,
                const char        *workload)
{
  Run r = { .args = args, .ops = ops };
  Slot *slots = g_new0 (Slot, n_conns * depth);

  r.measure_from = peer_now_ns () + (gint64) (args->warmup_seconds * 1e9);
  r.end = r.measure_from + (gint64) (args->seconds * 1e9);
  r.last = r.measure_from;
  for (guint i = 0; i < n_conns * depth; i++)
    {
      slots[i].r = &r;
      slots[i].conn = conns[i / depth];
      throughput_start (&slots[i]);
    }
  if (!peer_glib_wait (&r.finished, CALL_BUDGET_MS))
    {
      peer_emit ("ERROR %s: %u calls still outstanding", workload, r.outstanding);
      exit (1);
    }
  /* Up to the end of the window: the calls answered in it, over it. */
  peer_emit_rate (workload, r.calls, (r.end - r.measure_from) / 1e9, r.errors, r.last_error);
  g_free (slots);
  g_free (r.last_error);
}

typedef struct
{
  gboolean done;
  char    *error;
} SyncCall;

static void
sync_done (gpointer    data,
           const char *error)
{
  SyncCall *s = data;

  s->error = g_strdup (error);
  s->done = TRUE;
}

static gpointer
connect_checked (const PeerArgs    *args,
                 const PeerGlibOps *ops)
{
  g_autoptr(GError) error = NULL;
  gpointer conn = ops->connect (args, &error);
  SyncCall *s;

  if (conn == NULL)
    {
      peer_emit ("ERROR connect: %s", error->message);
      exit (1);
    }
  /* One call, so the connection is really up on both sides. */
  s = g_new0 (SyncCall, 1);
  ops->call (conn, FALSE, 0, sync_done, s);
  if (!peer_glib_wait (&s->done, 20000) || s->error != NULL)
    {
      peer_emit ("ERROR first call: %s", s->done ? s->error : "timed out");
      exit (1);
    }
  g_free (s);
  return conn;
}

int
peer_glib_client_main (const PeerArgs    *args,
                       const PeerGlibOps *ops)
{
  if (peer_args_has (args, "idle"))
    {
      peer_emit ("CONNECTED");
      peer_wait_stdin_line ();
      for (int i = 0; i < args->conns; i++)
        connect_checked (args, ops);
      peer_emit ("HOLDING conns=%d", args->conns);
      for (;;)
        g_main_context_iteration (NULL, TRUE);
    }
  if (peer_args_has (args, "pending"))
    {
      gpointer conn;
      gboolean never = FALSE;

      if (ops->hold == NULL)
        {
          peer_emit ("UNSUPPORTED no callbacks to hold");
          return 0;
        }
      conn = connect_checked (args, ops);
      peer_emit ("CONNECTED");
      peer_wait_stdin_line ();
      ops->hold (conn, (guint) args->pending);
      for (gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
           ops->n_held (conn) < (guint) args->pending && g_get_monotonic_time () < end;)
        g_main_context_iteration (NULL, TRUE);
      peer_emit ("HOLDING pending=%u", ops->n_held (conn));
      for (;;)
        peer_glib_wait (&never, 1000);
    }

  {
    gpointer conn = connect_checked (args, ops);

    if (peer_args_has (args, "seq"))
      run_latency (args, ops, conn, FALSE, "seq");
    if (peer_args_has (args, "cb"))
      run_latency (args, ops, conn, TRUE, "cb");
    if (peer_args_has (args, "inflight"))
      run_throughput (args, ops, &conn, 1, (guint) args->depth, "inflight");
  }
  if (peer_args_has (args, "conns"))
    {
      gpointer *conns = g_new0 (gpointer, args->conns);

      for (int i = 0; i < args->conns; i++)
        conns[i] = connect_checked (args, ops);
      run_throughput (args, ops, conns, (guint) args->conns, 1, "conns");
    }
  fflush (stdout);
  _exit (0);
}

/* Built directly, without format strings, whose parsing would cost more
 * than some of the calls measured. */
GVariant *
peer_glib_seq_params (guint64 seq)
{
  GVariant *entry = g_variant_new_dict_entry (g_variant_new_string ("seq"),
                                              g_variant_new_variant (g_variant_new_int64 ((gint64) seq)));

  return g_variant_new_array (G_VARIANT_TYPE ("{sv}"), &entry, 1);
}
