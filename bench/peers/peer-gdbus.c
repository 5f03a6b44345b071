/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* peer-gdbus: GDBus peer to peer (GLib 2.74), no bus daemon: a GDBusServer
 * (anonymous authentication allowed, so TCP works too) exports
 * bench.Server at /bench on every new connection: Echo (a{sv}) → (a{sv}),
 * Cb (calls the client's bench.Client.Ping on the same connection, then
 * answers) and Hold (x) (answers, then calls HPing n times with a 60 s
 * timeout; the client never answers). The address a client is given is
 * the server's D-Bus client address (unix:path=… or tcp:host=…,port=…).
 * GDBus does its I/O in its own worker thread; that is part of what is
 * measured. No TLS. */

#include "peers-glib.h"

static const char server_xml[] =
  "<node>"
  "  <interface name='bench.Server'>"
  "    <method name='Echo'><arg type='a{sv}' direction='in'/><arg type='a{sv}' direction='out'/></method>"
  "    <method name='Cb'><arg type='a{sv}' direction='in'/><arg type='a{sv}' direction='out'/></method>"
  "    <method name='Hold'><arg type='x' direction='in'/></method>"
  "  </interface>"
  "</node>";

static const char client_xml[] =
  "<node>"
  "  <interface name='bench.Client'>"
  "    <method name='Ping'><arg type='a{sv}' direction='in'/><arg type='a{sv}' direction='out'/></method>"
  "    <method name='HPing'><arg type='a{sv}' direction='in'/><arg type='a{sv}' direction='out'/></method>"
  "  </interface>"
  "</node>";

static GDBusNodeInfo *server_info, *client_info;

static GVariant *
seq_params (guint64 seq)
{
  GVariant *dict = peer_glib_seq_params (seq);

  return g_variant_new_tuple (&dict, 1);
}

/* ---------------------------------------------------------------------- */
/* Server                                                                 */

static void
srv_cb_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  GError *error = NULL;
  GVariant *reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply != NULL)
    g_dbus_method_invocation_return_value (invocation, reply);
  else
    g_dbus_method_invocation_take_error (invocation, error);
  if (reply != NULL)
    g_variant_unref (reply);
}

static void
srv_hold_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GVariant *reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, NULL);

  if (reply != NULL)
    g_variant_unref (reply);
}

static void
srv_method (GDBusConnection       *connection,
            const char            *sender,
            const char            *path,
            const char            *interface,
            const char            *method,
            GVariant              *params,
            GDBusMethodInvocation *invocation,
            gpointer               user_data)
{
  if (g_str_equal (method, "Echo"))
    g_dbus_method_invocation_return_value (invocation, params);
  else if (g_str_equal (method, "Cb"))
    g_dbus_connection_call (connection, NULL, "/bench", "bench.Client", "Ping", params,
                            G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL,
                            srv_cb_done, invocation);
  else
    {
      gint64 n = 0;

      g_variant_get (params, "(x)", &n);
      g_dbus_method_invocation_return_value (invocation, NULL);
      for (gint64 i = 0; i < n && i < 1000000; i++)
        g_dbus_connection_call (connection, NULL, "/bench", "bench.Client", "HPing", seq_params ((guint64) i),
                                G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, 60000, NULL,
                                srv_hold_done, NULL);
    }
}

static const GDBusInterfaceVTable server_vtable = { srv_method, NULL, NULL, { 0 } };

static gboolean
srv_new_connection (GDBusServer     *server,
                    GDBusConnection *connection,
                    gpointer         user_data)
{
  g_autoptr(GError) error = NULL;

  if (g_dbus_connection_register_object (connection, "/bench", server_info->interfaces[0], &server_vtable,
                                         NULL, NULL, &error) == 0)
    {
      g_printerr ("peer-gdbus: %s\n", error->message);
      return FALSE;
    }
  g_object_ref (connection);   /* kept until it closes: never, here */
  return TRUE;
}

static int
run_server (const PeerArgs *a)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autofree char *guid = g_dbus_generate_guid ();
  g_autofree char *address = NULL;
  GDBusServer *server;

  if (a->transport == PEER_TRANSPORT_UNIX)
    {
      g_unlink (a->address);
      address = g_strdup_printf ("unix:path=%s", a->address);
    }
  else if (a->transport == PEER_TRANSPORT_TCP)
    {
      char host[64];
      int port;

      if (!peer_split_hostport (a->address, host, sizeof host, &port))
        return 2;
      address = g_strdup_printf ("tcp:host=%s,port=%d", host, port);
    }
  else
    {
      g_printerr ("peer-gdbus: no TLS\n");
      return 3;
    }
  server_info = g_dbus_node_info_new_for_xml (server_xml, NULL);
  server = g_dbus_server_new_sync (address, G_DBUS_SERVER_FLAGS_AUTHENTICATION_ALLOW_ANONYMOUS, guid, NULL,
                                   NULL, &error);
  if (server == NULL)
    {
      g_printerr ("peer-gdbus: %s\n", error->message);
      return 1;
    }
  g_signal_connect (server, "new-connection", G_CALLBACK (srv_new_connection), NULL);
  g_dbus_server_start (server);
  peer_glib_server_ready (g_dbus_server_get_client_address (server));
  g_main_loop_run (loop);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Client                                                                 */

typedef struct
{
  GDBusConnection *connection;
  GPtrArray       *held;
} Conn;

static void
cli_method (GDBusConnection       *connection,
            const char            *sender,
            const char            *path,
            const char            *interface,
            const char            *method,
            GVariant              *params,
            GDBusMethodInvocation *invocation,
            gpointer               user_data)
{
  Conn *c = user_data;

  if (g_str_equal (method, "Ping"))
    g_dbus_method_invocation_return_value (invocation, params);
  else
    g_ptr_array_add (c->held, g_object_ref (invocation));   /* never answered */
}

static const GDBusInterfaceVTable client_vtable = { cli_method, NULL, NULL, { 0 } };

static gpointer
gd_connect (const PeerArgs *a,
            GError        **error)
{
  Conn *c = g_new0 (Conn, 1);

  if (client_info == NULL)
    client_info = g_dbus_node_info_new_for_xml (client_xml, NULL);
  c->held = g_ptr_array_new ();
  c->connection = g_dbus_connection_new_for_address_sync (a->address,
                                                          G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT,
                                                          NULL, NULL, error);
  if (c->connection == NULL)
    return NULL;
  if (g_dbus_connection_register_object (c->connection, "/bench", client_info->interfaces[0], &client_vtable,
                                         c, NULL, error) == 0)
    return NULL;
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
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  PeerDoneFunc done = cd->done;
  gpointer data = cd->data;

  g_slice_free (CallData, cd);
  done (data, reply != NULL ? NULL : error->message);
}

static void
gd_call (gpointer     conn,
         gboolean     with_callback,
         guint64      seq,
         PeerDoneFunc done,
         gpointer     data)
{
  Conn *c = conn;
  CallData *cd = g_slice_new (CallData);

  cd->done = done;
  cd->data = data;
  g_dbus_connection_call (c->connection, NULL, "/bench", "bench.Server", with_callback ? "Cb" : "Echo",
                          seq_params (seq), G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL,
                          call_done_cb, cd);
}

static void
gd_hold (gpointer conn,
         guint    n)
{
  Conn *c = conn;

  g_dbus_connection_call (c->connection, NULL, "/bench", "bench.Server", "Hold", g_variant_new ("(x)", (gint64) n),
                          NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, NULL, NULL);
}

static guint
gd_n_held (gpointer conn)
{
  return ((Conn *) conn)->held->len;
}

static const PeerGlibOps ops = {
  .connect = gd_connect,
  .call = gd_call,
  .hold = gd_hold,
  .n_held = gd_n_held,
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
