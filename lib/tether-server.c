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
 * Tether accepts its sockets, runs TLS and the WebSocket itself, and puts
 * a guard stream between the socket and the WebSocket, so that limits
 * hold whatever a client sends (see `docs/limits.md`). An idle connection
 * costs memory, never work on the main loop iterations that serve others.
 *
 * All I/O, signals and handlers run on the main context that was
 * thread-default when the server was created.
 *
 * Since: 0.1
 */

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "tether-enum-types.h"
#include <sys/stat.h>

#include "tether-auth-private.h"
#include "tether-connection-private.h"
#include "tether-handshake-private.h"
#include "tether-error.h"
#include "tether-identity-private.h"
#include "tether-impersonation-private.h"
#include "tether-invocation.h"
#include "tether-log-private.h"
#include "tether-method-table-private.h"
#include "tether-method-info-private.h"
#include "tether-discover-private.h"
#include "tether-detached-callback-private.h"
#include "tether-peer-private.h"
#include "tether-server-private.h"
#include "tether-server.h"
#include "tether-server-impl-private.h"
#include "tether-transport-private.h"

typedef struct
{
  TetherServer        *server;  /* unowned */
  TetherListener      *listener;
  TetherListenFlags    flags;
} Listener;

G_DEFINE_FINAL_TYPE (TetherServer, tether_server, G_TYPE_OBJECT)

GParamSpec *_tether_server_properties[N_PROPS];
#define properties _tether_server_properties

enum {
  SIGNAL_PEER_CONNECTED,
  SIGNAL_PEER_DISCONNECTED,
  SIGNAL_AUTHORIZE_CALL,
  SIGNAL_PEER_MISBEHAVED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
server_limits (TetherServer *self,
               TetherLimits *limits)
{
  _tether_limits_fill (self->limits, limits);
  limits->misbehavior_action = self->misbehavior_action;
}

/* Every action taken against a peer: one log line naming it and the
 * evidence, and the signal, so an operator learns who it was. */
static void
server_report (TetherServer      *self,
               TetherPeer        *peer,
               TetherIdentity    *identity,
               TetherMisbehavior  reason,
               const char        *details,
               const char        *action)
{
  g_autofree char *who = tether_identity_to_string (identity);
  g_autoptr(GEnumClass) reasons = g_type_class_ref (TETHER_TYPE_MISBEHAVIOR);

  /* The nick is static, as the limiter wants its reasons. */
  _tether_log_limited (self->scheduler, G_LOG_LEVEL_MESSAGE, g_enum_get_value (reasons, reason)->value_nick,
                       _tether_identity_get_pool_key (identity),
                       "Peer %s misbehaved (%s): %s; %s", who,
                       g_enum_get_value (reasons, reason)->value_nick, details, action);
  g_signal_emit (self, signals[SIGNAL_PEER_MISBEHAVED], 0, peer, identity, reason, details);
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

static void shutdown_complete (TetherServer *self, GError *error);

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
  _tether_connection_add_statistics (conn, &self->closed_stats);
  self->closed_stats.connections--;
  /* Its place in the connection pool goes with it. */
  g_object_set_data (G_OBJECT (conn), "tether-place", NULL);
  if (g_object_get_data (G_OBJECT (peer), "tether-announced") != NULL)
    g_signal_emit (self, signals[SIGNAL_PEER_DISCONNECTED], 0, peer);
  g_object_unref (conn);
  if (self->shutdown != NULL && g_hash_table_size (self->connections) == 0)
    shutdown_complete (self, NULL);
}

static void
connection_misbehaved (gpointer           owner,
                       TetherConnection  *conn,
                       TetherMisbehavior  reason,
                       const char        *details,
                       const char        *action)
{
  TetherServer *self = owner;

  server_report (self, g_hash_table_lookup (self->connections, conn),
                 _tether_connection_get_identity (conn), reason, details, action);
}

/* A client announced a callback listener in its hello. */
/* The hello's "detached" member: a session for detached callbacks, if
 * this server allows them (see tether-detached-callback.c). */
static GVariant *
hello_detached_answer (TetherConnection *conn,
                       GVariant         *request,
                       gpointer          user_data)
{
  TetherServer *self = user_data;
  TetherPeer *peer = g_hash_table_lookup (self->connections, conn);
  g_autoptr(TetherDetachedCallback) detached = NULL;
  TetherDetachedPolicy policy = {
    .allow = self->allow_detached_callbacks,
    .validity_ms = self->limits[TETHER_LIMIT_DETACHED_CALLBACK_VALIDITY],
    .default_timeout_ms = self->limits[TETHER_LIMIT_DEFAULT_TIMEOUT],
    .max_timeout_ms = self->limits[TETHER_LIMIT_MAX_TIMEOUT],
    .tls_database = self->detached_callback_tls_database != NULL
                      ? self->detached_callback_tls_database : self->tls_client_database,
  };
  GVariant *answer;

  if (peer == NULL)
    return NULL;
  answer = _tether_detached_callback_hello (conn, request, &policy, &detached);
  _tether_peer_set_detached_callback (peer, detached);
  return answer;
}

static const TetherConnectionOwnerFuncs server_owner_funcs = {
  .authorize = connection_authorize,
  .ready = connection_ready,
  .closed = connection_closed,
  .misbehaved = connection_misbehaved,
};

/* ---------------------------------------------------------------------- */
/* Accepting                                                              */

/* Admission (core/tether-admission.c) decides who gets in and says what
 * it refused; the server makes the engine for who did. */
static void
admission_report (gpointer           owner,
                  TetherConnection  *conn,
                  TetherIdentity    *identity,
                  TetherMisbehavior  reason,
                  const char        *details,
                  const char        *action)
{
  TetherServer *self = owner;

  server_report (self, conn != NULL ? g_hash_table_lookup (self->connections, conn) : NULL,
                 identity, reason, details, action);
}

static void
admission_admitted (gpointer              owner,
                    TetherWebsocket      *ws,
                    TetherGuardStream    *guard,
                    TetherIdentity       *identity,
                    gint64                hello_deadline,
                    TetherAdmissionPlace *place)
{
  TetherServer *self = owner;
  TetherConnection *conn;
  TetherPeer *peer;
  TetherLimits limits;

  server_limits (self, &limits);
  conn = _tether_connection_new (TETHER_CONNECTION_ROLE_SERVER, self->scheduler, &limits,
                                 self->callback_pool, self->auth_policy, self->methods,
                                 &server_owner_funcs, self);
  /* The connection now holds its place in the pool. */
  _tether_admission_place_set_connection (place, conn);
  g_object_set_data_full (G_OBJECT (conn), "tether-place", place,
                          (GDestroyNotify) _tether_admission_place_free);
  _tether_connection_set_imp_policy (conn, self->imp_policy);
  _tether_connection_set_invocation_pool (conn, self->invocation_pool);
  _tether_connection_set_hello_extensions (conn, self->hello_extensions);
  peer = _tether_peer_new (conn);
  g_hash_table_insert (self->connections, conn, peer);
  _tether_connection_start (conn, ws, guard, identity, hello_deadline);
}

static const TetherAdmissionFuncs admission_funcs = {
  .report = admission_report,
  .admitted = admission_admitted,
};

static void
incoming_cb (TetherListener    *tether_listener,
             GSocketConnection *connection,
             gpointer           user_data)
{
  Listener *listener = user_data;
  TetherServer *self = listener->server;
  TetherAcceptOptions options = {
    .kind = _tether_listener_get_kind (tether_listener),
    .scheduler = self->scheduler,
    .tls_certificate = self->tls_certificate,
    .tls_client_database = self->tls_client_database,
    .allowed_origins = (const char * const *) self->allowed_origins,
    .draining = &self->draining,
    .max_message_size = self->limits[TETHER_LIMIT_MAX_MESSAGE_SIZE],
    .proxy_protocol = (listener->flags & TETHER_LISTEN_FLAGS_PROXY_PROTOCOL) != 0,
    .trusted_proxies = self->trusted_proxies,
  };

  if (self->closed)
    return;
  _tether_admission_offer (self->admission, connection, &options);
}

/* ---------------------------------------------------------------------- */
/* Listening                                                              */

static void
listener_free (Listener *listener)
{
  _tether_listener_free (listener->listener);
  g_free (listener);
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
  return tether_server_listen_full (self, uri, TETHER_LISTEN_FLAGS_NONE, error);
}

/**
 * tether_server_listen_full:
 * @self: a #TetherServer
 * @uri: where to listen: `unix:/PATH`, `ws://HOST:PORT` or `wss://HOST:PORT`
 * @flags: how
 * @error: return location for a #GError
 *
 * Starts listening on @uri, as [method@Tether.Server.listen] does, with
 * @flags. With %TETHER_LISTEN_FLAGS_PROXY_PROTOCOL the listener serves a
 * load balancer: add its addresses with
 * [method@Tether.Server.add_trusted_proxy] first (without any, listening
 * fails with %G_IO_ERROR_INVALID_ARGUMENT), and `unix:` fails with
 * %G_IO_ERROR_NOT_SUPPORTED. Each connection's identity then names the
 * client the balancer's header names ([method@Tether.Identity.get_address])
 * and the balancer ([method@Tether.Identity.get_proxy_address]); per-address
 * limits, fair shares, strikes and log lines use the client's.
 *
 * Returns: %TRUE if the server is listening on @uri
 *
 * Since: 0.2
 */
/* What a PROXY protocol listener needs; FALSE with @error if it cannot
 * be one. */
static gboolean
check_proxy_listener (TetherServer       *self,
                      TetherListenFlags   flags,
                      gboolean            is_unix,
                      const char         *what,
                      GError            **error)
{
  if (!(flags & TETHER_LISTEN_FLAGS_PROXY_PROTOCOL))
    return TRUE;
  if (is_unix)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "The PROXY protocol is for ws:// and wss:// listeners, not %s", what);
      return FALSE;
    }
  if (self->trusted_proxies->len == 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "A PROXY protocol listener needs trusted proxies: add the load "
                           "balancer's addresses with tether_server_add_trusted_proxy() first");
      return FALSE;
    }
  return TRUE;
}

static void
add_listener (TetherServer      *self,
              Listener          *listener)
{
  g_ptr_array_add (self->listeners, listener);
  g_ptr_array_insert (self->uris, self->uris->len - 1,
                      g_strdup (_tether_listener_get_uri (listener->listener)));
}

gboolean
tether_server_listen_full (TetherServer       *self,
                           const char         *uri,
                           TetherListenFlags   flags,
                           GError            **error)
{
  Listener *listener;

  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  g_return_val_if_fail (uri != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_return_val_if_fail (!self->closed, FALSE);

  if (!check_proxy_listener (self, flags, g_str_has_prefix (uri, "unix:"), uri, error))
    return FALSE;

  listener = g_new0 (Listener, 1);
  listener->server = self;
  listener->flags = flags;
  listener->listener = _tether_listener_new_for_uri (uri, self->allow_insecure_remote,
                                                     self->tls_certificate != NULL,
                                                     self->scheduler, incoming_cb, listener, error);
  if (listener->listener == NULL)
    {
      g_free (listener);
      return FALSE;
    }
  add_listener (self, listener);
  return TRUE;
}

/**
 * tether_server_listen_socket:
 * @self: a #TetherServer
 * @socket: a socket already bound and listening, e.g. one systemd passed
 * @flags: how, as for [method@Tether.Server.listen_full]
 * @error: return location for a #GError
 *
 * Serves @socket (a reference is taken; it is closed with the server):
 * a unix socket as `unix:` (its file is left alone: whoever made it
 * removes it), a TCP socket as `wss://` when
 * [property@Tether.Server:tls-certificate] is set and as `ws://`
 * otherwise, with the same rule as [method@Tether.Server.listen] for
 * plaintext beyond loopback. This is socket activation: systemd (or any
 * supervisor) binds the socket and hands it over, see `docs/deploying.md`.
 * [method@Tether.Server.get_uris] lists it like any other.
 *
 * Returns: %TRUE if the server serves @socket
 *
 * Since: 0.2
 */
gboolean
tether_server_listen_socket (TetherServer       *self,
                             GSocket            *socket,
                             TetherListenFlags   flags,
                             GError            **error)
{
  Listener *listener;

  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET (socket), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_return_val_if_fail (!self->closed, FALSE);

  if (!check_proxy_listener (self, flags, g_socket_get_family (socket) == G_SOCKET_FAMILY_UNIX,
                             "a unix socket", error))
    return FALSE;

  listener = g_new0 (Listener, 1);
  listener->server = self;
  listener->flags = flags;
  listener->listener = _tether_listener_new_for_socket (socket, self->allow_insecure_remote,
                                                        self->tls_certificate != NULL,
                                                        self->scheduler, incoming_cb, listener, error);
  if (listener->listener == NULL)
    {
      g_free (listener);
      return FALSE;
    }
  add_listener (self, listener);
  return TRUE;
}

/**
 * tether_server_add_trusted_proxy:
 * @self: a #TetherServer
 * @cidr: an address or a network, e.g. `10.0.0.5`, `10.0.0.0/24` or
 *   `fd00::/64`
 * @error: return location for a #GError
 *
 * Trusts the load balancers at @cidr to say who their clients are, on
 * listeners made with %TETHER_LISTEN_FLAGS_PROXY_PROTOCOL: only a
 * connection from a trusted proxy may carry a PROXY protocol header.
 *
 * Returns: %TRUE if @cidr is a valid address or network
 *
 * Since: 0.2
 */
gboolean
tether_server_add_trusted_proxy (TetherServer  *self,
                                 const char    *cidr,
                                 GError       **error)
{
  GInetAddressMask *mask;

  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  g_return_val_if_fail (cidr != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  mask = g_inet_address_mask_new_from_string (cidr, error);
  if (mask == NULL)
    return FALSE;
  g_ptr_array_add (self->trusted_proxies, mask);
  return TRUE;
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

void
_tether_server_set_fallback_method (TetherServer        *self,
                                    TetherMethodHandler  handler,
                                    gpointer             user_data,
                                    GDestroyNotify       destroy)
{
  _tether_method_table_set_fallback (self->methods, handler, user_data, destroy);
  /* A server that answers every name itself (the callback listener,
   * which verifies each delivery first) has nothing to describe. */
  if (handler != NULL)
    _tether_method_table_set_reserved (self->methods, "rpc.discover", NULL, 0, NULL, NULL, NULL);
}

/**
 * tether_server_get_peers:
 * @self: a #TetherServer
 *
 * Lists the connected peers.
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
 * done when the server is disposed. During a drain
 * (tether_server_shutdown_async()) it ends the drain at once.
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

  /* Idempotent, and it ends a drain under way at once. */
  self->closed = TRUE;
  self->draining = TRUE;
  g_ptr_array_set_size (self->listeners, 0);
  _tether_admission_drop_pending (self->admission);

  conns = g_ptr_array_new_with_free_func (g_object_unref);
  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (conns, g_object_ref (key));
  for (guint i = 0; i < conns->len; i++)
    _tether_connection_close (conns->pdata[i], NULL);
}

/* The one way a shutdown ends: every connection gone, or cancelled.
 * Steals @error. */
static void
shutdown_complete (TetherServer *self,
                   GError       *error)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->shutdown);

  if (task == NULL)
    {
      g_clear_error (&error);
      return;
    }
  g_cancellable_disconnect (g_task_get_cancellable (task),
                            GPOINTER_TO_SIZE (g_task_get_task_data (task)));
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static gboolean
shutdown_cancelled_idle (gpointer user_data)
{
  TetherServer *self = user_data;

  if (self->shutdown != NULL)
    {
      shutdown_complete (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                    "The shutdown was cancelled: every connection "
                                                    "was closed at once"));
      tether_server_close (self);
    }
  return G_SOURCE_REMOVE;
}

/* May run in any thread: the work is done on the server's context. */
static void
shutdown_cancelled_cb (GCancellable *cancellable,
                       gpointer      user_data)
{
  TetherServer *self = user_data;
  g_autoptr(GSource) source = g_idle_source_new ();

  g_source_set_static_name (source, "[tether] cancel shutdown");
  g_source_set_callback (source, shutdown_cancelled_idle, g_object_ref (self), g_object_unref);
  g_source_attach (source, self->context);
}

/**
 * tether_server_shutdown_async:
 * @self: a #TetherServer
 * @grace_ms: how long calls and callbacks in progress may take to finish
 * @cancellable: (nullable): cancelling it ends the wait: every connection
 *   is closed at once
 * @callback: (scope async): called when every connection is gone
 * @user_data: (closure): data for @callback
 *
 * Drains the server, as a load balancer needs before an instance stops:
 *
 * - it is not ready from now on: `GET /readyz` would answer 503, and the
 *   listeners close (nothing new is accepted; handshakes in progress are
 *   dropped);
 * - every Tether peer gets an `rpc.tether.goaway` notification saying how
 *   long is left (a [class@Tether.Client] emits
 *   [signal@Tether.Client::going-away]), and new calls from any peer are
 *   answered %TETHER_REMOTE_ERROR_UNAVAILABLE;
 * - calls and callbacks in progress finish; each connection closes
 *   (WebSocket code 1001, going away) as soon as it has nothing left;
 * - after @grace_ms what is left is cancelled: handlers' cancellables
 *   fire and their callers are answered
 *   %TETHER_REMOTE_ERROR_UNAVAILABLE, callbacks fail, and the
 *   connections close.
 *
 * Plain JSON-RPC peers see only the close at the end. `tether serve`
 * does this on SIGTERM and SIGINT (`--drain-timeout`). The server cannot
 * listen again afterwards; tether_server_close() after it is harmless.
 *
 * Since: 0.2
 */
void
tether_server_shutdown_async (TetherServer        *self,
                              guint                grace_ms,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GPtrArray) conns = NULL;
  GHashTableIter iter;
  gpointer key;
  gint64 deadline = g_get_monotonic_time () + (gint64) grace_ms * 1000;

  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, tether_server_shutdown_async);
  if (self->shutdown != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The server is already shutting down");
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;

  /* Not ready, and not accepting. */
  self->draining = TRUE;
  self->closed = TRUE;
  g_ptr_array_set_size (self->listeners, 0);
  g_ptr_array_set_size (self->uris, 0);
  g_ptr_array_add (self->uris, NULL);
  _tether_admission_drop_pending (self->admission);

  if (g_hash_table_size (self->connections) == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  self->shutdown = g_steal_pointer (&task);
  if (cancellable != NULL)
    g_task_set_task_data (self->shutdown,
                          GSIZE_TO_POINTER (g_cancellable_connect (cancellable,
                                                                   G_CALLBACK (shutdown_cancelled_cb),
                                                                   self, NULL)), NULL);

  conns = g_ptr_array_new_with_free_func (g_object_unref);
  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (conns, g_object_ref (key));
  for (guint i = 0; i < conns->len; i++)
    _tether_connection_go_away (conns->pdata[i], deadline);
}

/**
 * tether_server_shutdown_finish:
 * @self: a #TetherServer
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes tether_server_shutdown_async().
 *
 * Returns: %TRUE once every connection is gone; %FALSE with
 *   %G_IO_ERROR_CANCELLED if the wait was cancelled (every connection was
 *   then closed at once), or %G_IO_ERROR_PENDING if a shutdown was
 *   already under way
 *
 * Since: 0.2
 */
gboolean
tether_server_shutdown_finish (TetherServer  *self,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tether_server_shutdown_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
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
 * Gets [property@Tether.Server:tls-certificate].
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
 * Gets [property@Tether.Server:tls-client-database].
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
  g_ptr_array_unref (self->hello_extensions);
  g_ptr_array_unref (self->uris);
  g_ptr_array_unref (self->trusted_proxies);
  g_hash_table_unref (self->connections);
  _tether_admission_free (self->admission);
  _tether_pool_unref (self->callback_pool);
  _tether_pool_unref (self->invocation_pool);
  _tether_auth_policy_unref (self->auth_policy);
  _tether_imp_policy_unref (self->imp_policy);
  _tether_method_table_free (self->methods);
  g_hash_table_unref (self->callback_infos);
  g_free (self->service_title);
  g_free (self->service_version);
  g_free (self->service_description);
  g_clear_object (&self->tls_certificate);
  g_clear_object (&self->tls_client_database);
  g_strfreev (self->allowed_origins);
  g_clear_object (&self->detached_callback_tls_database);
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
  int limit = _tether_limits_row (N_PROPS, prop_id);

  if (limit >= 0)
    {
      g_value_set_uint (value, self->limits[limit]);
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
    case PROP_MISBEHAVIOR_ACTION:
      g_value_set_enum (value, self->misbehavior_action);
      break;
    case PROP_CALLBACK_IMPERSONATION_LEVEL:
      g_value_set_enum (value, self->imp_policy->level);
      break;
    case PROP_REMOTE_CALLBACK_IMPERSONATION_LEVEL:
      g_value_set_enum (value, self->imp_policy->remote_level);
      break;
    case PROP_DANGEROUSLY_ALLOW_PRIVILEGED_IMPERSONATION:
      g_value_set_boolean (value, self->imp_policy->allow_privileged);
      break;
    case PROP_SIGNING_CERTIFICATE:
      g_value_set_object (value, self->imp_policy->signing_certificate);
      break;
    case PROP_ALLOWED_ORIGINS:
      g_value_set_boxed (value, self->allowed_origins);
      break;
    case PROP_ALLOW_PLAIN_SCRAM:
      g_value_set_boolean (value, self->auth_policy->allow_plain_scram);
      break;
    case PROP_ALLOW_ANONYMOUS:
      g_value_set_boolean (value, self->auth_policy->allow_anonymous);
      break;
    case PROP_ALLOW_DETACHED_CALLBACKS:
      g_value_set_boolean (value, self->allow_detached_callbacks);
      break;
    case PROP_DETACHED_CALLBACK_TLS_DATABASE:
      g_value_set_object (value, self->detached_callback_tls_database);
      break;
    case PROP_SERVICE_TITLE:
      g_value_set_string (value, self->service_title);
      break;
    case PROP_SERVICE_VERSION:
      g_value_set_string (value, self->service_version);
      break;
    case PROP_SERVICE_DESCRIPTION:
      g_value_set_string (value, self->service_description);
      break;
    case PROP_DISCOVER_ACCESS:
      g_value_set_enum (value, self->discover_access);
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
  int limit = _tether_limits_row (N_PROPS, prop_id);

  if (limit >= 0)
    {
      guint v = g_value_get_uint (value);

      if (self->limits[limit] != v)
        {
          self->limits[limit] = v;
          if (limit == TETHER_LIMIT_MAX_TOTAL_CALLBACKS)
            _tether_pool_set_max (self->callback_pool, v);
          else if (limit == TETHER_LIMIT_MAX_TOTAL_INVOCATIONS)
            _tether_pool_set_max (self->invocation_pool, v);
          else if (limit == TETHER_LIMIT_MAX_TLS_HANDSHAKES || limit == TETHER_LIMIT_MAX_CONNECTIONS)
            _tether_admission_limits_changed (self->admission);
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
    case PROP_ALLOW_PLAIN_SCRAM:
      self->auth_policy->allow_plain_scram = g_value_get_boolean (value);
      g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_ALLOW_ANONYMOUS:
      self->auth_policy->allow_anonymous = g_value_get_boolean (value);
      g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_ALLOW_DETACHED_CALLBACKS:
      if (self->allow_detached_callbacks != g_value_get_boolean (value))
        {
          self->allow_detached_callbacks = g_value_get_boolean (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_DETACHED_CALLBACK_TLS_DATABASE:
      if (g_set_object (&self->detached_callback_tls_database, g_value_get_object (value)))
        g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_ALLOWED_ORIGINS:
      g_strfreev (self->allowed_origins);
      self->allowed_origins = g_value_dup_boxed (value);
      g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_CALLBACK_IMPERSONATION_LEVEL:
      tether_server_set_callback_impersonation_level (self, g_value_get_enum (value));
      break;
    case PROP_REMOTE_CALLBACK_IMPERSONATION_LEVEL:
      tether_server_set_remote_callback_impersonation_level (self, g_value_get_enum (value));
      break;
    case PROP_DANGEROUSLY_ALLOW_PRIVILEGED_IMPERSONATION:
      tether_server_set_dangerously_allow_privileged_impersonation (self, g_value_get_boolean (value));
      break;
    case PROP_SIGNING_CERTIFICATE:
      tether_server_set_signing_certificate (self, g_value_get_object (value));
      break;
    case PROP_MISBEHAVIOR_ACTION:
      if (self->misbehavior_action != (TetherMisbehaviorAction) g_value_get_enum (value))
        {
          self->misbehavior_action = g_value_get_enum (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_SERVICE_TITLE:
      tether_server_set_service_title (self, g_value_get_string (value));
      break;
    case PROP_SERVICE_VERSION:
      tether_server_set_service_version (self, g_value_get_string (value));
      break;
    case PROP_SERVICE_DESCRIPTION:
      tether_server_set_service_description (self, g_value_get_string (value));
      break;
    case PROP_DISCOVER_ACCESS:
      tether_server_set_discover_access (self, g_value_get_enum (value));
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
   * TetherServer:allow-plain-scram:
   *
   * Offers SCRAM-SHA-256 (not bound to a TLS channel) on transports
   * without TLS. Over TLS only SCRAM-SHA-256-PLUS is ever offered.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOW_PLAIN_SCRAM] =
    g_param_spec_boolean ("allow-plain-scram", NULL, NULL, FALSE, rw);

  /**
   * TetherServer:allow-anonymous:
   *
   * Accepts the ANONYMOUS SASL mechanism in the hello. A peer that sends
   * no authentication at all is anonymous anyway (unless its transport
   * proved who it is); this only allows saying so explicitly.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOW_ANONYMOUS] =
    g_param_spec_boolean ("allow-anonymous", NULL, NULL, FALSE, rw);

  /**
   * TetherServer:allowed-origins:
   *
   * The web origins (such as `https://app.example.org`) whose pages may
   * open a WebSocket to this server. Browsers send an `Origin` header;
   * an upgrade carrying one that is not listed is refused with 403, so
   * that a web page cannot call a local service because its user
   * browsed there. Clients that are not browsers send no `Origin` and are
   * not affected. Default: none.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOWED_ORIGINS] =
    g_param_spec_boxed ("allowed-origins", NULL, NULL, G_TYPE_STRV, rw);

  /**
   * TetherServer:misbehavior-action:
   *
   * What happens to a peer that struck out: disconnected (the default) or
   * quarantined.
   *
   * Since: 0.1
   */
  properties[PROP_MISBEHAVIOR_ACTION] =
    g_param_spec_enum ("misbehavior-action", NULL, NULL, TETHER_TYPE_MISBEHAVIOR_ACTION,
                       TETHER_MISBEHAVIOR_ACTION_DISCONNECT, limit);

  /**
   * TetherServer:allow-detached-callbacks:
   *
   * Grants a session to clients that announce a
   * [class@Tether.CallbackListener] in their hello, so that the server can
   * call them back after they disconnected
   * ([method@Tether.Peer.get_detached_callback]). Off by default: dialling
   * out to an address a client chose is itself an attack on a privileged
   * server. Even when on, only an address that is the client's own is
   * accepted (a socket owned by its uid on `unix:`, the IP address it
   * connected from on `ws://` and `wss://`), and the server presents
   * none of its credentials there.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOW_DETACHED_CALLBACKS] =
    g_param_spec_boolean ("allow-detached-callbacks", NULL, NULL, FALSE, rw);

  /**
   * TetherServer:detached-callback-tls-database:
   *
   * The database that verifies the certificate of a client's
   * [class@Tether.CallbackListener] on `wss://` when the server dials it.
   * %NULL (the default) uses [property@Tether.Server:tls-client-database]
   * when that is set, else the system's trust store. Verification cannot
   * be turned off.
   *
   * Since: 0.1
   */
  properties[PROP_DETACHED_CALLBACK_TLS_DATABASE] =
    g_param_spec_object ("detached-callback-tls-database", NULL, NULL, G_TYPE_TLS_DATABASE, rw);

  /**
   * TetherServer:callback-impersonation-level:
   *
   * The most the server grants clients on its callbacks (see
   * [enum@Tether.ImpersonationLevel]). Callbacks to peers on other hosts
   * are further capped by
   * [property@Tether.Server:remote-callback-impersonation-level], and a
   * privileged server grants local clients no more than
   * %TETHER_IMPERSONATION_LEVEL_IDENTIFY unless
   * [property@Tether.Server:dangerously-allow-privileged-impersonation] is
   * set. The level each callback carries is logged (debug) and given by
   * [method@Tether.Peer.get_callback_impersonation_level]. Granting
   * %TETHER_IMPERSONATION_LEVEL_IMPERSONATE or more needs
   * [property@Tether.Server:signing-certificate].
   *
   * Since: 0.1
   */
  properties[PROP_CALLBACK_IMPERSONATION_LEVEL] =
    g_param_spec_enum ("callback-impersonation-level", NULL, NULL,
                       TETHER_TYPE_IMPERSONATION_LEVEL, TETHER_IMPERSONATION_LEVEL_IDENTIFY,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * TetherServer:remote-callback-impersonation-level:
   *
   * The cap on the level callbacks to peers that are not on this host
   * (anything but `unix:` and loopback addresses) carry.
   *
   * Since: 0.1
   */
  properties[PROP_REMOTE_CALLBACK_IMPERSONATION_LEVEL] =
    g_param_spec_enum ("remote-callback-impersonation-level", NULL, NULL,
                       TETHER_TYPE_IMPERSONATION_LEVEL, TETHER_IMPERSONATION_LEVEL_IDENTIFY,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * TetherServer:dangerously-allow-privileged-impersonation:
   *
   * Lets a privileged server (effective uid 0 or any effective capability)
   * call local clients back above %TETHER_IMPERSONATION_LEVEL_IDENTIFY,
   * which hands them its privileges towards every Tether service that
   * trusts its signing certificate. Setting it logs a warning.
   *
   * Since: 0.1
   */
  properties[PROP_DANGEROUSLY_ALLOW_PRIVILEGED_IMPERSONATION] =
    g_param_spec_boolean ("dangerously-allow-privileged-impersonation", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * TetherServer:signing-certificate:
   *
   * A certificate with its private key (P-256, Ed25519 or RSA) that signs
   * the impersonation tokens the server grants on callbacks. It may be the
   * TLS certificate or a separate one, on any transport.
   *
   * Since: 0.1
   */
  properties[PROP_SIGNING_CERTIFICATE] =
    g_param_spec_object ("signing-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * TetherServer:service-title:
   *
   * The service's name in the description it gives of itself
   * (`rpc.discover`, OpenRPC's `info.title`). %NULL: the application's
   * name ([func@GLib.get_application_name]).
   *
   * Since: 0.2
   */
  properties[PROP_SERVICE_TITLE] =
    g_param_spec_string ("service-title", NULL, NULL, NULL, rw);

  /**
   * TetherServer:service-version:
   *
   * The version of the service's API in its description (OpenRPC's
   * `info.version`; not Tether's version). %NULL: `unspecified`.
   *
   * Since: 0.2
   */
  properties[PROP_SERVICE_VERSION] =
    g_param_spec_string ("service-version", NULL, NULL, NULL, rw);

  /**
   * TetherServer:service-description:
   *
   * What the service is for, in its description (OpenRPC's
   * `info.description`, Markdown), or %NULL.
   *
   * Since: 0.2
   */
  properties[PROP_SERVICE_DESCRIPTION] =
    g_param_spec_string ("service-description", NULL, NULL, NULL, rw);

  /**
   * TetherServer:discover-access:
   *
   * Who may call `rpc.discover`, the method that answers the service's
   * description (an OpenRPC document; see `docs/protocol.md`). Like any
   * method's access: authenticated peers by default;
   * %TETHER_ACCESS_CUSTOM asks [signal@Tether.Server::authorize-call]
   * (with the method name `rpc.discover`), and with no handler nobody
   * may. Plain JSON-RPC clients may call it too. Whoever calls it sees
   * only the methods they may call: those open to any peer, and to an
   * authenticated caller the others too.
   *
   * Since: 0.2
   */
  properties[PROP_DISCOVER_ACCESS] =
    g_param_spec_enum ("discover-access", NULL, NULL, TETHER_TYPE_ACCESS,
                       TETHER_ACCESS_AUTHENTICATED, rw);

  g_object_class_install_properties (object_class, N_PROPS, properties);
  /* The limits, from the one table: the ids after N_PROPS. */
  _tether_limits_install (object_class, TETHER_LIMITS_SERVER, N_PROPS);

  /**
   * TetherServer::peer-misbehaved:
   * @self: the server
   * @peer: (nullable): the peer, or %NULL if it never got past the
   *   handshake
   * @identity: who it is, as the transport proved it
   * @reason: what it did
   * @details: the evidence, for people
   *
   * The server acted against a peer: cut it off, quarantined it, or
   * refused its connection. A log line with the same facts is written.
   *
   * Since: 0.1
   */
  signals[SIGNAL_PEER_MISBEHAVED] =
    g_signal_new ("peer-misbehaved", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 4, TETHER_TYPE_PEER, TETHER_TYPE_IDENTITY,
                  TETHER_TYPE_MISBEHAVIOR, G_TYPE_STRING);

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
  _tether_limits_init_values (TETHER_LIMITS_SERVER, self->limits);
  self->detached_extension.member = "detached";
  self->detached_extension.answer = hello_detached_answer;
  self->detached_extension.user_data = self;
  self->hello_extensions = g_ptr_array_new ();
  g_ptr_array_add (self->hello_extensions, &self->detached_extension);
  self->methods = _tether_method_table_new ();
  self->callback_infos = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                (GDestroyNotify) tether_method_info_unref);
  self->discover_access = TETHER_ACCESS_AUTHENTICATED;
  _tether_server_discover_register (self);
  self->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);
  self->uris = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (self->uris, NULL);
  self->trusted_proxies = g_ptr_array_new_with_free_func (g_object_unref);
  self->connections = g_hash_table_new_full (NULL, NULL, g_object_unref, g_object_unref);
  self->admission = _tether_admission_new (self->scheduler, self->limits, &admission_funcs, self);
  self->callback_pool = _tether_pool_new (self->limits[TETHER_LIMIT_MAX_TOTAL_CALLBACKS],
                                          TETHER_POOL_EVICT_OLDEST);
  self->invocation_pool = _tether_pool_new (self->limits[TETHER_LIMIT_MAX_TOTAL_INVOCATIONS],
                                            TETHER_POOL_EVICT_OLDEST);
  self->auth_policy = _tether_auth_policy_new ();
  self->imp_policy = _tether_imp_policy_new (TRUE);
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

/**
 * tether_server_get_statistics:
 * @self: a #TetherServer
 *
 * Sums the counters of every connection the server has had, live or
 * closed; `pending_calls`, `invocations`, `bytes_queued`, `strikes` and
 * `connections` count live connections only.
 *
 * Returns: (transfer full): a snapshot of the server's counters
 *
 * Since: 0.1
 */
TetherStatistics *
tether_server_get_statistics (TetherServer *self)
{
  TetherStatistics *stats;
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);

  stats = tether_statistics_copy (&self->closed_stats);
  stats->rejected += _tether_admission_get_rejected (self->admission);
  stats->connections = 0;
  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    _tether_connection_add_statistics (key, stats);
  return stats;
}

