/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * TetherServer:
 *
 * Serves methods to clients and calls them back.
 *
 * A server listens on any number of URIs — `unix:/PATH`,
 * `ws://HOST:PORT` (loopback only unless
 * [property@Tether.Server:allow-insecure-remote] is set: plaintext beyond
 * loopback loses every verification guarantee) and `wss://HOST:PORT` (with
 * [property@Tether.Server:tls-certificate]). Port 0 picks a free port;
 * [method@Tether.Server.get_uris] tells the real ones.
 *
 * Methods are added with [method@Tether.Server.add_method], which also
 * declares who may call them. Each connected client is a
 * [class@Tether.Peer], announced by [signal@Tether.Server::peer-connected];
 * the server calls it back through the peer, or through the
 * [class@Tether.Invocation] of the call being handled.
 *
 * Tether accepts its sockets and runs TLS itself, and puts a guard stream
 * between the socket and libsoup's WebSocket code, so that limits hold
 * whatever a client sends (see `docs/limits.md`).
 *
 * All I/O, signals and handlers run on the main context that was
 * thread-default when the server was created.
 *
 * Since: 0.1
 */

#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <gio/gunixsocketaddress.h>

#include "tether-connection-private.h"
#include "tether-error.h"
#include "tether-identity-private.h"
#include "tether-invocation.h"
#include "tether-method-table-private.h"
#include "tether-peer-private.h"
#include "tether-server.h"
#include "tether-transport-private.h"

typedef struct
{
  TetherServer        *server;  /* unowned */
  GSocketService      *service;
  TetherTransportKind  kind;
  char                *uri;
  char                *unix_path;
} Listener;

/* A connection between accept and an open WebSocket. */
typedef struct
{
  TetherDeadline       deadline;  /* first: the scheduler hands it back */
  TetherServer        *server;    /* unowned: the server frees us first */
  TetherTransportKind  kind;
  GSocketConnection   *socket_conn;
  GIOStream           *tls;
  TetherGuardStream   *guard;
  GSocketAddress      *local;
  GSocketAddress      *remote;
  GCancellable        *cancellable;
  TetherIdentity      *identity;
} Handshake;

struct _TetherServer
{
  GObject            parent_instance;

  GMainContext      *context;
  TetherScheduler   *scheduler;
  TetherMethodTable *methods;
  SoupServer        *soup;
  GPtrArray         *listeners;
  GPtrArray         *uris;          /* NULL-terminated */
  GHashTable        *handshakes;    /* Handshake* set */
  GHashTable        *connections;   /* TetherConnection* → TetherPeer* */
  gboolean           closed;

  GTlsCertificate   *tls_certificate;
  GTlsDatabase      *tls_client_database;
  gboolean           allow_insecure_remote;

  guint              default_timeout;
  guint              max_timeout;
  guint              callback_timeout;
  guint              max_callback_timeout;
  guint              handshake_timeout;
  guint              max_message_size;
  guint              max_depth;
  guint              max_pending_callbacks;
  guint              max_unsent_bytes;
};

G_DEFINE_FINAL_TYPE (TetherServer, tether_server, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_CLIENT_DATABASE,
  PROP_ALLOW_INSECURE_REMOTE,
  PROP_DEFAULT_TIMEOUT,
  PROP_MAX_TIMEOUT,
  PROP_CALLBACK_TIMEOUT,
  PROP_MAX_CALLBACK_TIMEOUT,
  PROP_HANDSHAKE_TIMEOUT,
  PROP_MAX_MESSAGE_SIZE,
  PROP_MAX_DEPTH,
  PROP_MAX_PENDING_CALLBACKS,
  PROP_MAX_UNSENT_BYTES,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_PEER_CONNECTED,
  SIGNAL_PEER_DISCONNECTED,
  SIGNAL_AUTHORIZE_CALL,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* The numeric limits are plain fields: one table maps property → field. */
static const struct
{
  guint  prop;
  gsize  offset;
} uint_props[] = {
  { PROP_DEFAULT_TIMEOUT, G_STRUCT_OFFSET (TetherServer, default_timeout) },
  { PROP_MAX_TIMEOUT, G_STRUCT_OFFSET (TetherServer, max_timeout) },
  { PROP_CALLBACK_TIMEOUT, G_STRUCT_OFFSET (TetherServer, callback_timeout) },
  { PROP_MAX_CALLBACK_TIMEOUT, G_STRUCT_OFFSET (TetherServer, max_callback_timeout) },
  { PROP_HANDSHAKE_TIMEOUT, G_STRUCT_OFFSET (TetherServer, handshake_timeout) },
  { PROP_MAX_MESSAGE_SIZE, G_STRUCT_OFFSET (TetherServer, max_message_size) },
  { PROP_MAX_DEPTH, G_STRUCT_OFFSET (TetherServer, max_depth) },
  { PROP_MAX_PENDING_CALLBACKS, G_STRUCT_OFFSET (TetherServer, max_pending_callbacks) },
  { PROP_MAX_UNSENT_BYTES, G_STRUCT_OFFSET (TetherServer, max_unsent_bytes) },
};

static guint *
uint_field (TetherServer *self,
            guint         prop_id)
{
  for (guint i = 0; i < G_N_ELEMENTS (uint_props); i++)
    if (uint_props[i].prop == prop_id)
      return G_STRUCT_MEMBER_P (self, uint_props[i].offset);
  return NULL;
}

static void
server_limits (TetherServer *self,
               TetherLimits *limits)
{
  /* The server's outgoing calls are callbacks. */
  limits->default_timeout_ms = MIN (self->callback_timeout, self->max_callback_timeout);
  limits->max_timeout_ms = self->max_callback_timeout;
  limits->incoming_default_timeout_ms = MIN (self->default_timeout, self->max_timeout);
  limits->incoming_max_timeout_ms = self->max_timeout;
  limits->max_message_size = self->max_message_size;
  limits->max_depth = self->max_depth;
  limits->max_pending_calls = self->max_pending_callbacks;
  limits->max_unsent_bytes = self->max_unsent_bytes;
  limits->handshake_timeout_ms = self->handshake_timeout;
}

/* ---------------------------------------------------------------------- */
/* Connections                                                            */

static gboolean
connection_authorize (gpointer          owner,
                      TetherConnection *conn,
                      TetherInvocation *invocation)
{
  TetherServer *self = owner;
  gboolean allowed = FALSE;

  g_signal_emit (self, signals[SIGNAL_AUTHORIZE_CALL], 0,
                 _tether_connection_get_public (conn), invocation, &allowed);
  return allowed;
}

static void
connection_ready (gpointer          owner,
                  TetherConnection *conn)
{
  TetherServer *self = owner;
  TetherPeer *peer = g_hash_table_lookup (self->connections, conn);

  g_object_set_data (G_OBJECT (peer), "tether-announced", GINT_TO_POINTER (TRUE));
  g_signal_emit (self, signals[SIGNAL_PEER_CONNECTED], 0, peer);
}

static void
connection_closed (gpointer          owner,
                   TetherConnection *conn,
                   const GError     *error)
{
  TetherServer *self = owner;
  g_autoptr(TetherPeer) peer = NULL;

  if (!g_hash_table_steal_extended (self->connections, conn, NULL, (gpointer *) &peer))
    return;

  g_debug ("Peer disconnected: %s", error ? error->message : "closed");
  if (g_object_get_data (G_OBJECT (peer), "tether-announced") != NULL)
    g_signal_emit (self, signals[SIGNAL_PEER_DISCONNECTED], 0, peer);
  g_object_unref (conn);
}

static const TetherConnectionOwnerFuncs server_owner_funcs = {
  .authorize = connection_authorize,
  .ready = connection_ready,
  .closed = connection_closed,
};

/* ---------------------------------------------------------------------- */
/* Accepting                                                              */

static void
handshake_free (Handshake *hs)
{
  if (hs->server != NULL)
    _tether_scheduler_remove (hs->server->scheduler, &hs->deadline);
  if (hs->remote != NULL)
    g_object_set_data (G_OBJECT (hs->remote), "tether-handshake", NULL);
  g_cancellable_cancel (hs->cancellable);
  g_clear_object (&hs->cancellable);
  if (hs->guard != NULL)
    _tether_guard_stream_abort (hs->guard);
  else if (hs->socket_conn != NULL)
    g_socket_shutdown (g_socket_connection_get_socket (hs->socket_conn), TRUE, TRUE, NULL);
  g_clear_object (&hs->guard);
  g_clear_object (&hs->tls);
  g_clear_object (&hs->socket_conn);
  g_clear_object (&hs->local);
  g_clear_object (&hs->remote);
  g_clear_object (&hs->identity);
  g_free (hs);
}

static void
handshake_fail (Handshake  *hs,
                const char *reason)
{
  g_autofree char *who = hs->identity ? tether_identity_to_string (hs->identity) : NULL;

  g_message ("Handshake with %s failed: %s", who ? who : "a new connection", reason);
  g_hash_table_remove (hs->server->handshakes, hs);
}

static void
handshake_deadline_cb (TetherDeadline *deadline)
{
  Handshake *hs = (Handshake *) deadline;
  g_autofree char *reason = g_strdup_printf ("not completed within %u ms",
                                             hs->server->handshake_timeout);

  handshake_fail (hs, reason);
}

/* SoupServer found a WebSocket upgrade on one of our guarded streams. */
static void
websocket_cb (SoupServer              *soup,
              SoupServerMessage       *msg,
              const char              *path,
              SoupWebsocketConnection *ws,
              gpointer                 user_data)
{
  TetherServer *self = user_data;
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);
  Handshake *hs = remote ? g_object_get_data (G_OBJECT (remote), "tether-handshake") : NULL;
  TetherConnection *conn;
  TetherPeer *peer;
  TetherLimits limits;

  if (hs == NULL || self->closed)
    {
      soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, NULL);
      return;
    }

  server_limits (self, &limits);
  conn = _tether_connection_new (TETHER_CONNECTION_ROLE_SERVER, self->scheduler, &limits,
                                 self->methods, &server_owner_funcs, self);
  peer = _tether_peer_new (conn);
  g_hash_table_insert (self->connections, conn, peer);

  /* The handshake's hello deadline takes over from here. */
  _tether_connection_start (conn, ws, hs->guard, hs->identity);
  /* The guard holds the streams now; the handshake lets go of them. */
  g_clear_object (&hs->guard);
  g_clear_object (&hs->tls);
  g_clear_object (&hs->socket_conn);
  g_hash_table_remove (self->handshakes, hs);
}

static void
start_http (Handshake *hs,
            GIOStream *base)
{
  g_autoptr(GError) error = NULL;

  hs->guard = _tether_guard_stream_new (base, g_socket_connection_get_socket (hs->socket_conn),
                                        TETHER_MAX_HANDSHAKE_BYTES, hs->server->max_message_size);

  /* libsoup wants both addresses; the remote one is how websocket_cb
   * finds this handshake again (libsoup knows nothing of our streams). */
  g_object_set_data (G_OBJECT (hs->remote), "tether-handshake", hs);
  if (!soup_server_accept_iostream (hs->server->soup, G_IO_STREAM (hs->guard),
                                    hs->local, hs->remote, &error))
    handshake_fail (hs, error->message);
}

static void
tls_handshake_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Handshake *hs = user_data;
  g_autoptr(GError) error = NULL;
  GTlsConnection *tls = G_TLS_CONNECTION (source);

  if (!g_tls_connection_handshake_finish (tls, result, &error))
    {
      /* Cancelled means the handshake was already dropped. */
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        handshake_fail (hs, error->message);
      return;
    }

  g_clear_object (&hs->identity);
  hs->identity = _tether_identity_new_from_socket (TETHER_TRANSPORT_TLS, hs->socket_conn,
                                                   g_tls_connection_get_peer_certificate (tls),
                                                   g_tls_connection_get_peer_certificate_errors (tls) == 0);
  start_http (hs, hs->tls);
}

/* glib-networking never accepts a client certificate by itself on the
 * server side: accept exactly those that verified against the client
 * database, and nothing else. */
static gboolean
accept_client_certificate_cb (GTlsConnection       *tls,
                              GTlsCertificate      *certificate,
                              GTlsCertificateFlags  errors,
                              gpointer              user_data)
{
  return errors == 0;
}

static gboolean
incoming_cb (GSocketService    *service,
             GSocketConnection *connection,
             GObject           *source_object,
             gpointer           user_data)
{
  Listener *listener = user_data;
  TetherServer *self = listener->server;
  Handshake *hs;
  g_autoptr(GError) error = NULL;

  if (self->closed)
    return TRUE;

  hs = g_new0 (Handshake, 1);
  hs->server = self;
  hs->kind = listener->kind;
  hs->socket_conn = g_object_ref (connection);
  hs->cancellable = g_cancellable_new ();
  hs->local = g_socket_connection_get_local_address (connection, NULL);
  hs->remote = g_socket_connection_get_remote_address (connection, NULL);
  if (hs->local == NULL)
    hs->local = g_unix_socket_address_new ("");
  if (hs->remote == NULL)
    hs->remote = g_unix_socket_address_new ("");
  _tether_socket_set_nodelay (g_socket_connection_get_socket (connection));
  hs->identity = _tether_identity_new_from_socket (listener->kind, connection, NULL, FALSE);

  g_hash_table_add (self->handshakes, hs);
  _tether_scheduler_add (self->scheduler, &hs->deadline,
                         g_get_monotonic_time () + (gint64) self->handshake_timeout * 1000,
                         handshake_deadline_cb);

  if (listener->kind != TETHER_TRANSPORT_TLS)
    {
      start_http (hs, G_IO_STREAM (connection));
      return TRUE;
    }

  hs->tls = g_tls_server_connection_new (G_IO_STREAM (connection), self->tls_certificate, &error);
  if (hs->tls == NULL)
    {
      handshake_fail (hs, error->message);
      return TRUE;
    }
  if (self->tls_client_database != NULL)
    {
      g_tls_connection_set_database (G_TLS_CONNECTION (hs->tls), self->tls_client_database);
      g_object_set (hs->tls, "authentication-mode", G_TLS_AUTHENTICATION_REQUESTED, NULL);
      g_signal_connect (hs->tls, "accept-certificate",
                        G_CALLBACK (accept_client_certificate_cb), NULL);
    }
  g_tls_connection_handshake_async (G_TLS_CONNECTION (hs->tls), G_PRIORITY_DEFAULT,
                                    hs->cancellable, tls_handshake_cb, hs);
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* Listening                                                              */

static void
listener_free (Listener *listener)
{
  g_socket_service_stop (listener->service);
  g_socket_listener_close (G_SOCKET_LISTENER (listener->service));
  g_signal_handlers_disconnect_by_data (listener->service, listener);
  g_object_unref (listener->service);
  if (listener->unix_path != NULL)
    unlink (listener->unix_path);
  g_free (listener->unix_path);
  g_free (listener->uri);
  g_free (listener);
}

static GInetAddress *
resolve_listen_host (const char  *host,
                     GError     **error)
{
  GInetAddress *address;

  if (g_ascii_strcasecmp (host, "localhost") == 0)
    return g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);

  address = g_inet_address_new_from_string (host);
  if (address == NULL)
    g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_URI,
                 "“%s”: listen on an IP address (or localhost), not a host name", host);
  return address;
}

/**
 * tether_server_listen:
 * @self: a #TetherServer
 * @uri: where to listen: `unix:/PATH`, `ws://HOST:PORT` or `wss://HOST:PORT`
 * @error: return location for a #GError
 *
 * Starts listening on @uri. Port 0 picks a free port; see
 * [method@Tether.Server.get_uris]. `ws://` on a non-loopback address is
 * refused with %TETHER_ERROR_INSECURE_TRANSPORT unless
 * [property@Tether.Server:allow-insecure-remote] is set; `wss://` needs
 * [property@Tether.Server:tls-certificate].
 *
 * Returns: %TRUE if the server is listening on @uri
 *
 * Since: 0.1
 */
gboolean
tether_server_listen (TetherServer  *self,
                      const char    *uri,
                      GError       **error)
{
  TetherUri parsed;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocketAddress) effective = NULL;
  Listener *listener;
  gboolean ok = FALSE;

  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  g_return_val_if_fail (uri != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_return_val_if_fail (!self->closed, FALSE);

  if (!_tether_uri_parse (uri, &parsed, error))
    return FALSE;

  if (parsed.kind == TETHER_TRANSPORT_UNIX)
    address = g_unix_socket_address_new (parsed.path);
  else
    {
      g_autoptr(GInetAddress) inet = resolve_listen_host (parsed.host, error);

      if (inet == NULL)
        goto out;
      if (parsed.kind == TETHER_TRANSPORT_TCP && !g_inet_address_get_is_loopback (inet) &&
          !self->allow_insecure_remote)
        {
          g_set_error (error, TETHER_ERROR, TETHER_ERROR_INSECURE_TRANSPORT,
                       "Refusing to serve plaintext ws:// beyond loopback (%s): use wss://, "
                       "or set allow-insecure-remote (and lose every verification guarantee)",
                       uri);
          goto out;
        }
      if (parsed.kind == TETHER_TRANSPORT_TLS && self->tls_certificate == NULL)
        {
          g_set_error (error, TETHER_ERROR, TETHER_ERROR_FAILED,
                       "wss:// needs a TLS certificate (the tls-certificate property)");
          goto out;
        }
      address = g_inet_socket_address_new (inet, parsed.port);
    }

  listener = g_new0 (Listener, 1);
  listener->server = self;
  listener->kind = parsed.kind;

  g_main_context_push_thread_default (self->context);
  listener->service = g_socket_service_new ();
  ok = g_socket_listener_add_address (G_SOCKET_LISTENER (listener->service), address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                                      NULL, &effective, error);
  if (ok)
    {
      g_signal_connect (listener->service, "incoming", G_CALLBACK (incoming_cb), listener);
      g_socket_service_start (listener->service);
    }
  g_main_context_pop_thread_default (self->context);

  if (!ok)
    {
      g_object_unref (listener->service);
      g_free (listener);
      goto out;
    }

  if (parsed.kind == TETHER_TRANSPORT_UNIX)
    listener->unix_path = g_strdup (parsed.path);
  else
    parsed.port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  listener->uri = _tether_uri_to_string (&parsed);

  g_ptr_array_add (self->listeners, listener);
  g_ptr_array_insert (self->uris, self->uris->len - 1, g_strdup (listener->uri));

out:
  _tether_uri_clear (&parsed);
  return ok;
}

/**
 * tether_server_get_uris:
 * @self: a #TetherServer
 *
 * Gets the URIs the server listens on, with the ports really bound.
 *
 * Returns: (transfer none) (array zero-terminated=1): the URIs
 *
 * Since: 0.1
 */
const char * const *
tether_server_get_uris (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return (const char * const *) self->uris->pdata;
}

/* ---------------------------------------------------------------------- */
/* Methods                                                                */

/**
 * tether_server_add_method:
 * @self: a #TetherServer
 * @name: the method name (not starting with `rpc.`, which is reserved)
 * @access: who may call it
 * @handler: (scope notified) (closure user_data) (destroy destroy): the handler
 * @user_data: data for @handler
 * @destroy: (nullable): frees @user_data when the method is removed
 *
 * Adds a method without a declared signature: the handler receives named
 * parameters as `a{sv}` and positional ones as `av`. Replaces any method
 * of the same name.
 *
 * Since: 0.1
 */
void
tether_server_add_method (TetherServer        *self,
                          const char          *name,
                          TetherAccess         access,
                          TetherMethodHandler  handler,
                          gpointer             user_data,
                          GDestroyNotify       destroy)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  _tether_method_table_add (self->methods, name, NULL, NULL, access, handler, user_data, destroy);
}

/**
 * tether_server_add_method_full:
 * @self: a #TetherServer
 * @name: the method name (not starting with `rpc.`, which is reserved)
 * @signature: (nullable): the GVariant type the parameters must have, such
 *   as `(si)`, or %NULL for none
 * @param_names: (nullable) (array zero-terminated=1): with a tuple
 *   @signature, one name per member, so that callers may pass named
 *   parameters
 * @access: who may call it
 * @handler: (scope notified) (closure user_data) (destroy destroy): the handler
 * @user_data: data for @handler
 * @destroy: (nullable): frees @user_data when the method is removed
 *
 * Adds a method with declared parameters. Positional parameters fill the
 * tuple by position, named ones by @param_names; a mismatch is answered
 * with -32602 naming the offending parameter, and the handler never runs.
 *
 * Since: 0.1
 */
void
tether_server_add_method_full (TetherServer        *self,
                               const char          *name,
                               const char          *signature,
                               const char * const  *param_names,
                               TetherAccess         access,
                               TetherMethodHandler  handler,
                               gpointer             user_data,
                               GDestroyNotify       destroy)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  _tether_method_table_add (self->methods, name, signature, param_names, access,
                            handler, user_data, destroy);
}

/**
 * tether_server_remove_method:
 * @self: a #TetherServer
 * @name: the method name
 *
 * Removes a method. Calls in progress are not affected.
 *
 * Returns: %TRUE if there was such a method
 *
 * Since: 0.1
 */
gboolean
tether_server_remove_method (TetherServer *self,
                             const char   *name)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  return _tether_method_table_remove (self->methods, name);
}

/**
 * tether_server_get_peers:
 * @self: a #TetherServer
 *
 * Returns: (transfer container) (element-type TetherPeer): the connected
 *   peers that completed their handshake
 *
 * Since: 0.1
 */
GPtrArray *
tether_server_get_peers (TetherServer *self)
{
  GPtrArray *peers;
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);

  peers = g_ptr_array_new_with_free_func (g_object_unref);
  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (g_object_get_data (value, "tether-announced") != NULL)
      g_ptr_array_add (peers, g_object_ref (value));
  return peers;
}

/**
 * tether_server_close:
 * @self: a #TetherServer
 *
 * Stops listening, drops handshakes in progress and closes every peer
 * (each gets [signal@Tether.Server::peer-disconnected]). Idempotent; also
 * done when the server is disposed.
 *
 * Since: 0.1
 */
void
tether_server_close (TetherServer *self)
{
  g_autoptr(GPtrArray) conns = NULL;
  GHashTableIter iter;
  gpointer key;

  g_return_if_fail (TETHER_IS_SERVER (self));

  if (self->closed)
    return;
  self->closed = TRUE;

  g_ptr_array_set_size (self->listeners, 0);
  g_hash_table_remove_all (self->handshakes);

  conns = g_ptr_array_new_with_free_func (g_object_unref);
  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (conns, g_object_ref (key));
  for (guint i = 0; i < conns->len; i++)
    _tether_connection_close (conns->pdata[i], NULL);
}

/* ---------------------------------------------------------------------- */
/* TLS                                                                    */

/**
 * tether_server_set_tls_certificate:
 * @self: a #TetherServer
 * @certificate: (nullable): the certificate (with its private key)
 *
 * Sets [property@Tether.Server:tls-certificate].
 *
 * Since: 0.1
 */
void
tether_server_set_tls_certificate (TetherServer    *self,
                                   GTlsCertificate *certificate)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (g_set_object (&self->tls_certificate, certificate))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TLS_CERTIFICATE]);
}

/**
 * tether_server_get_tls_certificate:
 * @self: a #TetherServer
 *
 * Returns: (transfer none) (nullable): the server's TLS certificate
 *
 * Since: 0.1
 */
GTlsCertificate *
tether_server_get_tls_certificate (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->tls_certificate;
}

/**
 * tether_server_set_tls_client_database:
 * @self: a #TetherServer
 * @database: (nullable): the database that verifies client certificates
 *
 * Sets [property@Tether.Server:tls-client-database].
 *
 * Since: 0.1
 */
void
tether_server_set_tls_client_database (TetherServer *self,
                                       GTlsDatabase *database)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (g_set_object (&self->tls_client_database, database))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TLS_CLIENT_DATABASE]);
}

/**
 * tether_server_get_tls_client_database:
 * @self: a #TetherServer
 *
 * Returns: (transfer none) (nullable): the client certificate database
 *
 * Since: 0.1
 */
GTlsDatabase *
tether_server_get_tls_client_database (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->tls_client_database;
}

/* ---------------------------------------------------------------------- */
/* GObject                                                                */

static void
tether_server_dispose (GObject *object)
{
  TetherServer *self = TETHER_SERVER (object);

  tether_server_close (self);

  G_OBJECT_CLASS (tether_server_parent_class)->dispose (object);
}

static void
tether_server_finalize (GObject *object)
{
  TetherServer *self = TETHER_SERVER (object);

  g_ptr_array_unref (self->listeners);
  g_ptr_array_unref (self->uris);
  g_hash_table_unref (self->handshakes);
  g_hash_table_unref (self->connections);
  g_clear_object (&self->soup);
  _tether_method_table_free (self->methods);
  g_clear_object (&self->tls_certificate);
  g_clear_object (&self->tls_client_database);
  _tether_scheduler_unref (self->scheduler);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (tether_server_parent_class)->finalize (object);
}

static void
tether_server_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  TetherServer *self = TETHER_SERVER (object);
  guint *field = uint_field (self, prop_id);

  if (field != NULL)
    {
      g_value_set_uint (value, *field);
      return;
    }

  switch (prop_id)
    {
    case PROP_TLS_CERTIFICATE:
      g_value_set_object (value, self->tls_certificate);
      break;
    case PROP_TLS_CLIENT_DATABASE:
      g_value_set_object (value, self->tls_client_database);
      break;
    case PROP_ALLOW_INSECURE_REMOTE:
      g_value_set_boolean (value, self->allow_insecure_remote);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tether_server_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  TetherServer *self = TETHER_SERVER (object);
  guint *field = uint_field (self, prop_id);

  if (field != NULL)
    {
      if (*field != g_value_get_uint (value))
        {
          *field = g_value_get_uint (value);
          g_object_notify_by_pspec (object, pspec);
        }
      return;
    }

  switch (prop_id)
    {
    case PROP_TLS_CERTIFICATE:
      tether_server_set_tls_certificate (self, g_value_get_object (value));
      break;
    case PROP_TLS_CLIENT_DATABASE:
      tether_server_set_tls_client_database (self, g_value_get_object (value));
      break;
    case PROP_ALLOW_INSECURE_REMOTE:
      if (self->allow_insecure_remote != g_value_get_boolean (value))
        {
          self->allow_insecure_remote = g_value_get_boolean (value);
          if (self->allow_insecure_remote)
            g_warning ("allow-insecure-remote is set: plaintext ws:// beyond loopback "
                       "has no verification guarantees");
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tether_server_class_init (TetherServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  GParamFlags limit = rw | G_PARAM_CONSTRUCT;

  object_class->dispose = tether_server_dispose;
  object_class->finalize = tether_server_finalize;
  object_class->get_property = tether_server_get_property;
  object_class->set_property = tether_server_set_property;

  /**
   * TetherServer:tls-certificate:
   *
   * The certificate (with its private key) served on `wss://`.
   *
   * Since: 0.1
   */
  properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE, rw);

  /**
   * TetherServer:tls-client-database:
   *
   * When set, `wss://` clients are asked for a certificate, which must
   * verify against this database; a client that presents one is
   * authenticated by it (mutual TLS).
   *
   * Since: 0.1
   */
  properties[PROP_TLS_CLIENT_DATABASE] =
    g_param_spec_object ("tls-client-database", NULL, NULL, G_TYPE_TLS_DATABASE, rw);

  /**
   * TetherServer:allow-insecure-remote:
   *
   * Allows `ws://` on non-loopback addresses. Plaintext beyond loopback
   * loses every verification guarantee; setting this logs a warning.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOW_INSECURE_REMOTE] =
    g_param_spec_boolean ("allow-insecure-remote", NULL, NULL, FALSE, rw);

  /**
   * TetherServer:default-timeout:
   *
   * The deadline, in milliseconds, of an incoming call whose caller sent
   * no budget (plain JSON-RPC clients).
   *
   * Since: 0.1
   */
  properties[PROP_DEFAULT_TIMEOUT] =
    g_param_spec_uint ("default-timeout", NULL, NULL, 1, 600000, 30000, limit);

  /**
   * TetherServer:max-timeout:
   *
   * The longest budget, in milliseconds, an incoming call may ask for;
   * longer ones are clamped. Nothing is infinite.
   *
   * Since: 0.1
   */
  properties[PROP_MAX_TIMEOUT] =
    g_param_spec_uint ("max-timeout", NULL, NULL, 1, 600000, 600000, limit);

  /**
   * TetherServer:callback-timeout:
   *
   * The default deadline, in milliseconds, of a callback to a client.
   *
   * Since: 0.1
   */
  properties[PROP_CALLBACK_TIMEOUT] =
    g_param_spec_uint ("callback-timeout", NULL, NULL, 1, 60000, 10000, limit);

  /**
   * TetherServer:max-callback-timeout:
   *
   * The longest deadline, in milliseconds, a callback may have.
   *
   * Since: 0.1
   */
  properties[PROP_MAX_CALLBACK_TIMEOUT] =
    g_param_spec_uint ("max-callback-timeout", NULL, NULL, 1, 60000, 60000, limit);

  /**
   * TetherServer:handshake-timeout:
   *
   * How long, in milliseconds, a new connection has to finish TLS, the
   * WebSocket upgrade and the hello.
   *
   * Since: 0.1
   */
  properties[PROP_HANDSHAKE_TIMEOUT] =
    g_param_spec_uint ("handshake-timeout", NULL, NULL, 1, 600000, 10000, limit);

  /**
   * TetherServer:max-message-size:
   *
   * The largest message, in bytes, across all its WebSocket fragments.
   *
   * Since: 0.1
   */
  properties[PROP_MAX_MESSAGE_SIZE] =
    g_param_spec_uint ("max-message-size", NULL, NULL, 1024, G_MAXINT32, 1024 * 1024, limit);

  /**
   * TetherServer:max-depth:
   *
   * The deepest JSON nesting a message may have.
   *
   * Since: 0.1
   */
  properties[PROP_MAX_DEPTH] =
    g_param_spec_uint ("max-depth", NULL, NULL, 2, 1024, 64, limit);

  /**
   * TetherServer:max-pending-callbacks:
   *
   * How many callbacks may wait for an answer from one peer; the next one
   * fails at once with %TETHER_ERROR_RESOURCE_EXHAUSTED.
   *
   * Since: 0.1
   */
  properties[PROP_MAX_PENDING_CALLBACKS] =
    g_param_spec_uint ("max-pending-callbacks", NULL, NULL, 1, 1000000, 16, limit);

  /**
   * TetherServer:max-unsent-bytes:
   *
   * How many bytes may wait to be written to one peer; a peer that stops
   * reading is cut off when its backlog passes this.
   *
   * Since: 0.1
   */
  properties[PROP_MAX_UNSENT_BYTES] =
    g_param_spec_uint ("max-unsent-bytes", NULL, NULL, 4096, G_MAXINT32, 4 * 1024 * 1024, limit);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * TetherServer::peer-connected:
   * @self: the server
   * @peer: the new peer
   *
   * A client connected and finished its handshake.
   *
   * Since: 0.1
   */
  signals[SIGNAL_PEER_CONNECTED] =
    g_signal_new ("peer-connected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, TETHER_TYPE_PEER);

  /**
   * TetherServer::peer-disconnected:
   * @self: the server
   * @peer: the peer that left
   *
   * A client's connection closed. Its pending callbacks have failed and its
   * invocations have been cancelled.
   *
   * Since: 0.1
   */
  signals[SIGNAL_PEER_DISCONNECTED] =
    g_signal_new ("peer-disconnected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, TETHER_TYPE_PEER);

  /**
   * TetherServer::authorize-call:
   * @self: the server
   * @peer: the calling peer
   * @invocation: the call
   *
   * Decides whether @peer may call a method added with
   * %TETHER_ACCESS_CUSTOM. The first handler to run decides; with no
   * handler the call is denied (-32005).
   *
   * Returns: %TRUE to allow the call
   *
   * Since: 0.1
   */
  signals[SIGNAL_AUTHORIZE_CALL] =
    g_signal_new ("authorize-call", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  g_signal_accumulator_first_wins, NULL, NULL,
                  G_TYPE_BOOLEAN, 2, TETHER_TYPE_PEER, TETHER_TYPE_INVOCATION);
}

static void
tether_server_init (TetherServer *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->scheduler = _tether_scheduler_new (self->context);
  self->methods = _tether_method_table_new ();
  self->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);
  self->uris = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (self->uris, NULL);
  self->handshakes = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) handshake_free, NULL);
  self->connections = g_hash_table_new_full (NULL, NULL, g_object_unref, g_object_unref);

  self->soup = soup_server_new (NULL, NULL);
  /* Compression is never negotiated (compression bombs, DESIGN.md). */
  soup_server_remove_websocket_extension (self->soup, SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);
  {
    const char *protocols[] = { TETHER_SUBPROTOCOL, NULL };

    soup_server_add_websocket_handler (self->soup, NULL, NULL, (char **) protocols,
                                       websocket_cb, self, NULL);
  }
}

/**
 * tether_server_new:
 *
 * Creates a server on the thread-default main context.
 *
 * Returns: (transfer full): a new #TetherServer
 *
 * Since: 0.1
 */
TetherServer *
tether_server_new (void)
{
  return g_object_new (TETHER_TYPE_SERVER, NULL);
}
