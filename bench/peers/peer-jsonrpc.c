/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* peer-jsonrpc: jsonrpc-glib (Debian libjsonrpc-glib-1.0-dev, 3.42), the
 * JSON-RPC 2.0 library GNOME Builder and its language servers use:
 * Content-Length framing over a GIOStream, JSON (no GVariant encoding).
 * The server's JsonrpcServer has `echo`, `cb` (calls the client's `ping`
 * on the same connection, then answers) and `hold {n}` (answers, then
 * calls `hping` n times; the client never answers; jsonrpc-glib has no
 * deadlines at all). unix: and TCP; no TLS here. */

#include "peers-glib.h"

#include <jsonrpc-glib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* ---------------------------------------------------------------------- */
/* Server                                                                 */

static void
srv_echo (JsonrpcServer *server,
          JsonrpcClient *client,
          const char    *method,
          GVariant      *id,
          GVariant      *params,
          gpointer       user_data)
{
  jsonrpc_client_reply_async (client, id, params, NULL, NULL, NULL);
}

typedef struct
{
  JsonrpcClient *client;
  GVariant      *id;
} Pending;

static void
srv_cb_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Pending *p = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  if (jsonrpc_client_call_finish (JSONRPC_CLIENT (source), result, &reply, &error))
    jsonrpc_client_reply_async (p->client, p->id, reply, NULL, NULL, NULL);
  else
    jsonrpc_client_reply_error_async (p->client, p->id, -32603, error->message, NULL, NULL, NULL);
  g_object_unref (p->client);
  g_variant_unref (p->id);
  g_free (p);
}

static void
srv_cb (JsonrpcServer *server,
        JsonrpcClient *client,
        const char    *method,
        GVariant      *id,
        GVariant      *params,
        gpointer       user_data)
{
  Pending *p = g_new0 (Pending, 1);

  p->client = g_object_ref (client);
  p->id = g_variant_ref (id);
  jsonrpc_client_call_async (client, "ping", params, NULL, srv_cb_done, p);
}

static void
srv_hold_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GVariant) reply = NULL;

  jsonrpc_client_call_finish (JSONRPC_CLIENT (source), result, &reply, NULL);
}

static void
srv_hold (JsonrpcServer *server,
          JsonrpcClient *client,
          const char    *method,
          GVariant      *id,
          GVariant      *params,
          gpointer       user_data)
{
  gint64 n = 0;

  if (params != NULL && g_variant_is_of_type (params, G_VARIANT_TYPE_VARDICT))
    g_variant_lookup (params, "n", "x", &n);
  jsonrpc_client_reply_async (client, id, NULL, NULL, NULL, NULL);
  for (gint64 i = 0; i < n && i < 1000000; i++)
    jsonrpc_client_call_async (client, "hping", peer_glib_seq_params ((guint64) i), NULL, srv_hold_done, NULL);
}

static gboolean
srv_incoming (GSocketService    *service,
              GSocketConnection *connection,
              GObject           *source,
              gpointer           user_data)
{
  JsonrpcServer *server = user_data;
  GSocket *sock = g_socket_connection_get_socket (connection);

  if (g_socket_get_family (sock) != G_SOCKET_FAMILY_UNIX)
    g_socket_set_option (sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  jsonrpc_server_accept_io_stream (server, G_IO_STREAM (connection));
  return TRUE;
}

static int
run_server (const PeerArgs *a)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  JsonrpcServer *server = jsonrpc_server_new ();
  g_autofree char *bound = NULL;
  GSocketService *service;

  if (a->transport == PEER_TRANSPORT_TLS)
    {
      g_printerr ("peer-jsonrpc: no TLS here\n");
      return 3;
    }
  jsonrpc_server_add_handler (server, "echo", srv_echo, NULL, NULL);
  jsonrpc_server_add_handler (server, "cb", srv_cb, NULL, NULL);
  jsonrpc_server_add_handler (server, "hold", srv_hold, NULL, NULL);
  service = peer_glib_listen (a, &bound, &error);
  if (service == NULL)
    {
      g_printerr ("peer-jsonrpc: %s\n", error->message);
      return 1;
    }
  g_signal_connect (service, "incoming", G_CALLBACK (srv_incoming), server);
  g_socket_service_start (service);
  peer_glib_server_ready (bound);
  g_main_loop_run (loop);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Client                                                                 */

typedef struct
{
  JsonrpcClient *client;
  GPtrArray     *held;   /* ids never answered */
} Conn;

static gboolean
cli_handle_call (JsonrpcClient *client,
                 const char    *method,
                 GVariant      *id,
                 GVariant      *params,
                 gpointer       user_data)
{
  Conn *c = user_data;

  if (g_str_equal (method, "ping"))
    {
      jsonrpc_client_reply_async (client, id, params, NULL, NULL, NULL);
      return TRUE;
    }
  if (g_str_equal (method, "hping"))
    {
      g_ptr_array_add (c->held, g_variant_ref (id));
      return TRUE;
    }
  return FALSE;
}

static gpointer
jr_connect (const PeerArgs *a,
            GError        **error)
{
  GIOStream *stream = peer_glib_dial (a, error);
  Conn *c;

  if (stream == NULL)
    return NULL;
  c = g_new0 (Conn, 1);
  c->held = g_ptr_array_new ();
  c->client = jsonrpc_client_new (stream);
  g_signal_connect (c->client, "handle-call", G_CALLBACK (cli_handle_call), c);
  jsonrpc_client_start_listening (c->client);
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
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  gboolean ok = jsonrpc_client_call_finish (JSONRPC_CLIENT (source), result, &reply, &error);
  PeerDoneFunc done = cd->done;
  gpointer data = cd->data;

  g_slice_free (CallData, cd);
  done (data, ok ? NULL : error->message);
}

static void
jr_call (gpointer     conn,
         gboolean     with_callback,
         guint64      seq,
         PeerDoneFunc done,
         gpointer     data)
{
  Conn *c = conn;
  CallData *cd = g_slice_new (CallData);

  cd->done = done;
  cd->data = data;
  jsonrpc_client_call_async (c->client, with_callback ? "cb" : "echo", peer_glib_seq_params (seq), NULL, call_done_cb, cd);
}

static void
hold_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  if (!jsonrpc_client_call_finish (JSONRPC_CLIENT (source), result, &reply, &error))
    g_printerr ("peer-jsonrpc: hold: %s\n", error->message);
}

static void
jr_hold (gpointer conn,
         guint    n)
{
  Conn *c = conn;
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "n", g_variant_new_int64 (n));
  jsonrpc_client_call_async (c->client, "hold", g_variant_builder_end (&b), NULL, hold_done_cb, NULL);
}

static guint
jr_n_held (gpointer conn)
{
  return ((Conn *) conn)->held->len;
}

static const PeerGlibOps ops = {
  .connect = jr_connect,
  .call = jr_call,
  .hold = jr_hold,
  .n_held = jr_n_held,
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
