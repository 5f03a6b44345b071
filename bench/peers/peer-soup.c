/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* peer-soup: the transport floor. libsoup 3's WebSocket server and client
 * (permessage-deflate removed, as Tether does), echoing 64-byte text
 * frames; no JSON, no RPC. 'E…' is answered 'e…'; 'C…' makes the server
 * send 'B…' to the client, which answers 'b…', and the server then
 * answers 'c…' — the same two round trips as a call with a callback.
 * Answers come in order on a connection, so the client matches them to
 * calls with a FIFO. unix: (a SoupServer on a listening Unix socket, the
 * session's remote-connectable), ws:// and wss://. No pending callbacks:
 * there is nothing to hold. */

#include "peers-glib.h"

#include <libsoup/soup.h>
#include <gio/gunixsocketaddress.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#define MSG 64

static void
format_msg (char    *buf,
            char     kind,
            guint64  seq)
{
  /* 64 characters: the kind, the sequence number, padding. */
  g_snprintf (buf, MSG + 1, "%c %020" G_GUINT64_FORMAT " %-41s", kind, seq, "x");
  memset (buf + strlen (buf), 'x', MSG - strlen (buf));
  buf[MSG] = '\0';
}

/* ---------------------------------------------------------------------- */
/* Server                                                                 */

static void
srv_message (SoupWebsocketConnection *conn,
             int                      type,
             GBytes                  *message,
             gpointer                 user_data)
{
  gsize len;
  const char *data = g_bytes_get_data (message, &len);
  char out[MSG + 1];

  if (len != MSG)
    return;
  memcpy (out, data, MSG);
  out[MSG] = '\0';
  switch (out[0])
    {
    case 'E': out[0] = 'e'; break;
    case 'C': out[0] = 'B'; break;
    case 'b': out[0] = 'c'; break;
    default: return;
    }
  soup_websocket_connection_send_text (conn, out);
}

static void
srv_closed (SoupWebsocketConnection *conn,
            gpointer                 user_data)
{
  g_object_unref (conn);
}

static void
srv_websocket (SoupServer              *server,
               SoupServerMessage       *msg,
               const char              *path,
               SoupWebsocketConnection *conn,
               gpointer                 user_data)
{
  GSocket *sock = soup_server_message_get_socket (msg);

  if (sock != NULL && g_socket_get_family (sock) != G_SOCKET_FAMILY_UNIX)
    g_socket_set_option (sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  g_object_ref (conn);
  g_signal_connect (conn, "message", G_CALLBACK (srv_message), NULL);
  g_signal_connect (conn, "closed", G_CALLBACK (srv_closed), NULL);
}

static int
run_server (const PeerArgs *a)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  SoupServer *server = soup_server_new (NULL, NULL);
  g_autofree char *bound = NULL;

  soup_server_remove_websocket_extension (server, SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);
  soup_server_add_websocket_handler (server, "/echo", NULL, NULL, srv_websocket, NULL, NULL);
  if (a->transport == PEER_TRANSPORT_UNIX)
    {
      g_autoptr(GSocket) sock = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                              G_SOCKET_PROTOCOL_DEFAULT, &error);
      g_autoptr(GSocketAddress) addr = g_unix_socket_address_new (a->address);

      g_unlink (a->address);
      if (sock == NULL || !g_socket_bind (sock, addr, TRUE, &error))
        goto fail;
      g_socket_set_listen_backlog (sock, 1024);
      if (!g_socket_listen (sock, &error) || !soup_server_listen_socket (server, sock, 0, &error))
        goto fail;
      bound = g_strdup (a->address);
    }
  else
    {
      char host[64];
      int port;
      g_autoptr(GSocketAddress) addr = NULL;
      GSList *uris;

      if (!peer_split_hostport (a->address, host, sizeof host, &port))
        return 2;
      if (a->transport == PEER_TRANSPORT_TLS)
        {
          g_autoptr(GTlsCertificate) cert = g_tls_certificate_new_from_files (a->cert, a->key, &error);

          if (cert == NULL)
            goto fail;
          g_object_set (server, "tls-certificate", cert, NULL);
        }
      addr = g_inet_socket_address_new_from_string (host, (guint) port);
      if (!soup_server_listen (server, addr, a->transport == PEER_TRANSPORT_TLS ? SOUP_SERVER_LISTEN_HTTPS : 0,
                               &error))
        goto fail;
      uris = soup_server_get_uris (server);
      bound = g_strdup_printf ("%s:%d", host, g_uri_get_port (uris->data));
      g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
    }
  peer_glib_server_ready (bound);
  g_main_loop_run (loop);
  return 0;

fail:
  g_printerr ("peer-soup: %s\n", error->message);
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Client                                                                 */

typedef struct
{
  PeerDoneFunc done;
  gpointer     data;
} Waiter;

typedef struct
{
  SoupSession             *session;
  SoupWebsocketConnection *ws;
  GQueue                   waiters;
} Conn;

static void
cli_message (SoupWebsocketConnection *ws,
             int                      type,
             GBytes                  *message,
             gpointer                 user_data)
{
  Conn *c = user_data;
  gsize len;
  const char *data = g_bytes_get_data (message, &len);
  Waiter *w;

  if (len != MSG)
    return;
  if (data[0] == 'B')
    {
      char out[MSG + 1];

      memcpy (out, data, MSG);
      out[0] = 'b';
      out[MSG] = '\0';
      soup_websocket_connection_send_text (ws, out);
      return;
    }
  w = g_queue_pop_head (&c->waiters);
  if (w != NULL)
    {
      PeerDoneFunc done = w->done;
      gpointer d = w->data;

      g_slice_free (Waiter, w);
      done (d, (data[0] == 'e' || data[0] == 'c') ? NULL : "unexpected answer");
    }
}

typedef struct
{
  gboolean                 done;
  SoupWebsocketConnection *ws;
  GError                  *error;
} ConnectWait;

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  ConnectWait *w = user_data;

  w->ws = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &w->error);
  w->done = TRUE;
}

/* TCP_NODELAY on the client's end, as Tether sets it. */
static void
network_event_cb (SoupMessage        *msg,
                  GSocketClientEvent  event,
                  GIOStream          *connection,
                  gpointer            user_data)
{
  if (event == G_SOCKET_CLIENT_CONNECTED && G_IS_TCP_CONNECTION (connection))
    g_socket_set_option (g_socket_connection_get_socket (G_SOCKET_CONNECTION (connection)),
                         IPPROTO_TCP, TCP_NODELAY, 1, NULL);
}

static gpointer
soup_connect (const PeerArgs *a,
              GError        **error)
{
  Conn *c = g_new0 (Conn, 1);
  g_autofree char *uri = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  ConnectWait *w = g_new0 (ConnectWait, 1);

  if (a->transport == PEER_TRANSPORT_UNIX)
    {
      g_autoptr(GSocketAddress) addr = g_unix_socket_address_new (a->address);

      c->session = soup_session_new_with_options ("remote-connectable", addr, NULL);
      uri = g_strdup ("ws://localhost/echo");
    }
  else if (a->transport == PEER_TRANSPORT_TCP)
    {
      c->session = soup_session_new ();
      uri = g_strdup_printf ("ws://%s/echo", a->address);
    }
  else
    {
      g_autoptr(GTlsDatabase) db = g_tls_file_database_new (a->ca, error);

      if (db == NULL)
        return NULL;
      c->session = soup_session_new_with_options ("tls-database", db, NULL);
      uri = g_strdup_printf ("wss://%s/echo", a->address);
    }
  g_queue_init (&c->waiters);
  msg = soup_message_new ("GET", uri);
  g_signal_connect (msg, "network-event", G_CALLBACK (network_event_cb), NULL);
  soup_session_websocket_connect_async (c->session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
                                        connected_cb, w);
  if (!peer_glib_wait (&w->done, 20000))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "connect timed out");
      return NULL;
    }
  if (w->ws == NULL)
    {
      g_propagate_error (error, w->error);
      return NULL;
    }
  c->ws = w->ws;
  g_free (w);
  soup_websocket_connection_set_keepalive_interval (c->ws, 0);
  g_signal_connect (c->ws, "message", G_CALLBACK (cli_message), c);
  return c;
}

static void
soup_call (gpointer     conn,
           gboolean     with_callback,
           guint64      seq,
           PeerDoneFunc done,
           gpointer     data)
{
  Conn *c = conn;
  Waiter *w = g_slice_new (Waiter);
  char buf[MSG + 1];

  w->done = done;
  w->data = data;
  g_queue_push_tail (&c->waiters, w);
  format_msg (buf, with_callback ? 'C' : 'E', seq);
  soup_websocket_connection_send_text (c->ws, buf);
}

static const PeerGlibOps ops = {
  .connect = soup_connect,
  .call = soup_call,
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
