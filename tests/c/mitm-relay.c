/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The attacker of the channel-binding test, as its own process: a
 * TLS-terminating relay. It presents a certificate the client trusts (the
 * same CA signed it: think of a corporate proxy or a stolen key), opens
 * its own TLS connection to the real server, and copies bytes both ways.
 * Everything above TLS passes untouched; only the TLS channels differ.
 *
 *   mitm-relay CERT KEY CAFILE UPSTREAM-PORT
 * prints "listening on PORT" and relays connections until killed. */

#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>

static GTlsCertificate *certificate;
static GTlsDatabase *database;
static guint16 upstream_port;

typedef struct
{
  GIOStream *downstream;
  GIOStream *upstream;
} Relay;

static void
splice_done_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Relay *relay = user_data;

  g_io_stream_splice_finish (result, NULL);
  g_clear_object (&relay->downstream);
  g_clear_object (&relay->upstream);
  g_free (relay);
}

static void
upstream_handshake_cb (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  Relay *relay = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error))
    {
      g_printerr ("relay: upstream TLS: %s\n", error->message);
      return;
    }
  g_io_stream_splice_async (relay->downstream, relay->upstream,
                            G_IO_STREAM_SPLICE_CLOSE_STREAM1 | G_IO_STREAM_SPLICE_CLOSE_STREAM2,
                            G_PRIORITY_DEFAULT, NULL, splice_done_cb, relay);
}

static void
downstream_handshake_cb (GObject      *source,
                         GAsyncResult *result,
                         gpointer      user_data)
{
  Relay *relay = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = NULL;
  g_autoptr(GSocketConnectable) address = g_network_address_new ("127.0.0.1", upstream_port);

  if (!g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error))
    {
      g_printerr ("relay: downstream TLS: %s\n", error->message);
      return;
    }
  conn = g_socket_client_connect (client, address, NULL, &error);
  if (conn == NULL)
    {
      g_printerr ("relay: upstream: %s\n", error->message);
      return;
    }
  relay->upstream = g_tls_client_connection_new (G_IO_STREAM (conn), address, &error);
  g_tls_connection_set_database (G_TLS_CONNECTION (relay->upstream), database);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (relay->upstream), G_PRIORITY_DEFAULT,
                                    NULL, upstream_handshake_cb, relay);
}

static gboolean
incoming_cb (GSocketService    *service,
             GSocketConnection *connection,
             GObject           *source,
             gpointer           user_data)
{
  Relay *relay = g_new0 (Relay, 1);
  g_autoptr(GError) error = NULL;

  relay->downstream = g_tls_server_connection_new (G_IO_STREAM (connection), certificate, &error);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (relay->downstream), G_PRIORITY_DEFAULT,
                                    NULL, downstream_handshake_cb, relay);
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketService) service = g_socket_service_new ();
  guint16 port;

  if (argc != 5)
    {
      g_printerr ("usage: mitm-relay CERT KEY CAFILE UPSTREAM-PORT\n");
      return 2;
    }
  certificate = g_tls_certificate_new_from_files (argv[1], argv[2], &error);
  if (certificate != NULL)
    database = g_tls_file_database_new (argv[3], &error);
  if (error != NULL)
    {
      g_printerr ("relay: %s\n", error->message);
      return 1;
    }
  upstream_port = atoi (argv[4]);

  port = g_socket_listener_add_any_inet_port (G_SOCKET_LISTENER (service), NULL, &error);
  if (port == 0)
    {
      g_printerr ("relay: %s\n", error->message);
      return 1;
    }
  g_signal_connect (service, "incoming", G_CALLBACK (incoming_cb), NULL);
  g_socket_service_start (service);
  printf ("listening on %u\n", port);
  fflush (stdout);

  for (;;)
    g_main_context_iteration (NULL, TRUE);
}
