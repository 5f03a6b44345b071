/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* peer-tether: Tether itself. The server has `echo` (answers its params),
 * `cb` (calls the client's `ping` through the invocation, so with its
 * deadline, and answers with the answer) and `hold {n}` (answers at once,
 * then makes n unparented callbacks `hping` that the client never
 * answers). Limits are raised so that 100+ connections from one uid and
 * thousands of pending callbacks are allowed; everything else is
 * Tether's default. unix:, ws:// and wss://. */

#include "peers-glib.h"

#include <tether.h>

#define CALL_TIMEOUT_MS     10000
#define CALLBACK_TIMEOUT_MS 60000

/* ---------------------------------------------------------------------- */
/* Server                                                                 */

static void
srv_echo (TetherInvocation *invocation,
          gpointer          user_data)
{
  GVariant *params = tether_invocation_get_parameters (invocation);

  tether_invocation_return_value (invocation, params != NULL ? params : g_variant_new ("mv", NULL));
}

static void
srv_cb_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  TetherInvocation *invocation = TETHER_INVOCATION (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_invocation_call_peer_finish (invocation, result, &error);

  if (answer == NULL)
    tether_invocation_return_gerror (invocation, error);
  else
    tether_invocation_return_value (invocation, answer);
  g_object_unref (invocation);
}

static void
srv_cb (TetherInvocation *invocation,
        gpointer          user_data)
{
  GVariant *params = tether_invocation_get_parameters (invocation);

  tether_invocation_call_peer_async (invocation, "ping", params, CALL_TIMEOUT_MS, NULL, srv_cb_done,
                                     g_object_ref (invocation));
}

static void
srv_hold_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GVariant *answer = tether_peer_call_finish (TETHER_PEER (source), result, NULL);

  if (answer != NULL)
    g_variant_unref (answer);
}

static void
srv_hold (TetherInvocation *invocation,
          gpointer          user_data)
{
  GVariant *params = tether_invocation_get_parameters (invocation);
  gint64 n = 0;
  TetherPeer *peer = tether_invocation_get_peer (invocation);

  if (params != NULL && g_variant_is_of_type (params, G_VARIANT_TYPE_VARDICT))
    g_variant_lookup (params, "n", "x", &n);
  if (peer == NULL || n < 0 || n > 1000000)
    {
      tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_INVALID_PARAMS, "hold {n}");
      return;
    }
  peer = g_object_ref (peer);
  tether_invocation_return_value (invocation, g_variant_new ("mv", NULL));
  for (gint64 i = 0; i < n; i++)
    tether_peer_call_async (peer, "hping", peer_glib_seq_params ((guint64) i), CALLBACK_TIMEOUT_MS, NULL,
                            srv_hold_done, NULL);
  g_object_unref (peer);
}

static int
run_server (const PeerArgs *a)
{
  g_autoptr(TetherServer) server = tether_server_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  const char *bound;

  g_object_set (server,
                "max-connections-per-peer", 100000,
                "max-invocations-per-peer", 1024,
                "max-pending-callbacks", 1000000,
                "max-total-callbacks", 10000000,
                "callback-timeout", CALLBACK_TIMEOUT_MS,
                "max-strikes", 0,
                NULL);
  tether_server_add_method (server, "echo", TETHER_ACCESS_ANY, srv_echo, NULL, NULL);
  tether_server_add_method (server, "cb", TETHER_ACCESS_ANY, srv_cb, NULL, NULL);
  tether_server_add_method (server, "hold", TETHER_ACCESS_ANY, srv_hold, NULL, NULL);

  switch (a->transport)
    {
    case PEER_TRANSPORT_UNIX:
      g_unlink (a->address);
      uri = g_strdup_printf ("unix:%s", a->address);
      break;
    case PEER_TRANSPORT_TCP:
      uri = g_strdup_printf ("ws://%s", a->address);
      break;
    case PEER_TRANSPORT_TLS:
      {
        g_autoptr(GTlsCertificate) cert = g_tls_certificate_new_from_files (a->cert, a->key, &error);

        if (cert == NULL)
          {
            g_printerr ("peer-tether: %s\n", error->message);
            return 1;
          }
        tether_server_set_tls_certificate (server, cert);
        uri = g_strdup_printf ("wss://%s", a->address);
      }
      break;
    }
  if (!tether_server_listen (server, uri, &error))
    {
      g_printerr ("peer-tether: cannot listen on %s: %s\n", uri, error->message);
      return 1;
    }
  bound = tether_server_get_uris (server)[0];
  /* Back to the bare address: a path, or host:port. */
  if (g_str_has_prefix (bound, "unix:"))
    bound += strlen ("unix:");
  else if (g_str_has_prefix (bound, "ws://"))
    bound += strlen ("ws://");
  else if (g_str_has_prefix (bound, "wss://"))
    bound += strlen ("wss://");
  {
    g_autofree char *addr = g_strdup (bound);
    char *slash = a->transport != PEER_TRANSPORT_UNIX ? strchr (addr, '/') : NULL;

    if (slash != NULL)
      *slash = '\0';
    peer_glib_server_ready (addr);
  }
  g_main_loop_run (loop);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Client                                                                 */

typedef struct
{
  TetherClient *client;
  GPtrArray    *held;
} Conn;

static void
cli_ping (TetherInvocation *invocation,
          gpointer          user_data)
{
  GVariant *params = tether_invocation_get_parameters (invocation);

  tether_invocation_return_value (invocation, params != NULL ? params : g_variant_new ("mv", NULL));
}

static void
cli_hping (TetherInvocation *invocation,
           gpointer          user_data)
{
  Conn *c = user_data;

  g_ptr_array_add (c->held, g_object_ref (invocation));   /* never answered */
}

typedef struct
{
  gboolean done;
  GError  *error;
} ConnectWait;

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  ConnectWait *w = user_data;

  tether_client_connect_finish (TETHER_CLIENT (source), result, &w->error);
  w->done = TRUE;
}

static gpointer
tether_connect (const PeerArgs *a,
                GError        **error)
{
  Conn *c = g_new0 (Conn, 1);
  g_autofree char *uri = NULL;
  ConnectWait *w = g_new0 (ConnectWait, 1);

  switch (a->transport)
    {
    case PEER_TRANSPORT_UNIX: uri = g_strdup_printf ("unix:%s", a->address); break;
    case PEER_TRANSPORT_TCP: uri = g_strdup_printf ("ws://%s", a->address); break;
    case PEER_TRANSPORT_TLS: uri = g_strdup_printf ("wss://%s", a->address); break;
    }
  c->held = g_ptr_array_new ();
  c->client = tether_client_new (uri);
  g_object_set (c->client, "max-invocations", 1000000, NULL);
#ifdef PEER_TETHER_JSON_ONLY
  /* peer-tether-json: what the same calls cost as JSON text. */
  g_object_set (c->client, "binary-frames", FALSE, NULL);
#endif
  if (a->transport == PEER_TRANSPORT_TLS)
    {
      g_autoptr(GTlsDatabase) db = g_tls_file_database_new (a->ca, error);

      if (db == NULL)
        return NULL;
      tether_client_set_tls_database (c->client, db);
    }
  tether_client_add_method (c->client, "ping", cli_ping, c, NULL);
  tether_client_add_method (c->client, "hping", cli_hping, c, NULL);
  tether_client_connect_async (c->client, NULL, connected_cb, w);
  if (!peer_glib_wait (&w->done, 20000))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "connect timed out");
      return NULL;   /* w leaks: the connect may still finish into it */
    }
  if (w->error != NULL)
    {
      g_propagate_error (error, w->error);
      g_free (w);
      return NULL;
    }
  g_free (w);
  return c;
}

typedef struct
{
  PeerDoneFunc done;
  gpointer     data;
} CallData;

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CallData *cd = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_client_call_finish (TETHER_CLIENT (source), result, &error);
  PeerDoneFunc done = cd->done;
  gpointer data = cd->data;

  g_slice_free (CallData, cd);
  done (data, answer != NULL ? NULL : error->message);
}

static void
tether_call (gpointer     conn,
             gboolean     with_callback,
             guint64      seq,
             PeerDoneFunc done,
             gpointer     data)
{
  Conn *c = conn;
  CallData *cd = g_slice_new (CallData);

  cd->done = done;
  cd->data = data;
  tether_client_call_async (c->client, with_callback ? "cb" : "echo", peer_glib_seq_params (seq), CALL_TIMEOUT_MS,
                            NULL, call_done_cb, cd);
}

static void
hold_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_client_call_finish (TETHER_CLIENT (source), result, &error);

  if (answer == NULL)
    g_printerr ("peer-tether: hold: %s\n", error->message);
}

static void
tether_hold (gpointer conn,
             guint    n)
{
  Conn *c = conn;
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "n", g_variant_new_int64 (n));
  tether_client_call_async (c->client, "hold", g_variant_builder_end (&b), CALL_TIMEOUT_MS, NULL,
                            hold_done_cb, NULL);
}

static guint
tether_n_held (gpointer conn)
{
  return ((Conn *) conn)->held->len;
}

static const PeerGlibOps ops = {
  .connect = tether_connect,
  .call = tether_call,
  .hold = tether_hold,
  .n_held = tether_n_held,
};

int
main (int    argc,
      char **argv)
{
  PeerArgs a;

  peer_common_init ();
  peer_args_parse (&a, argc, argv);
  return a.is_server ? run_server (&a) : peer_glib_client_main (&a, &ops);
}
