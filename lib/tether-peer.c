/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * TetherPeer:
 *
 * A connected client as the server sees it. The server calls the client
 * back through its peer: [method@Tether.Peer.call_async] makes a callback
 * that is not tied to any call (with the server's default callback
 * deadline); a callback made while handling a call should go through
 * [method@Tether.Invocation.call_peer_async] instead, which inherits the
 * call's deadline and cancellation.
 *
 * Peers are created by [class@Tether.Server] and announced with
 * [signal@Tether.Server::peer-connected]; they live on the server's main
 * context. A peer whose connection closed stays valid as an object:
 * calls on it fail with %G_IO_ERROR_CONNECTION_CLOSED.
 *
 * Since: 0.1
 */

#include "tether-detached-callback.h"
#include "tether-identity.h"
#include "tether-impersonation-private.h"
#include "tether-peer-private.h"

struct _TetherPeer
{
  GObject                 parent_instance;
  TetherConnection       *conn;
  TetherDetachedCallback *detached;
};

G_DEFINE_FINAL_TYPE (TetherPeer, tether_peer, G_TYPE_OBJECT)

static void
tether_peer_dispose (GObject *object)
{
  TetherPeer *self = TETHER_PEER (object);

  if (self->conn != NULL && _tether_connection_get_public (self->conn) == self)
    _tether_connection_set_public (self->conn, NULL);
  g_clear_object (&self->conn);
  g_clear_object (&self->detached);

  G_OBJECT_CLASS (tether_peer_parent_class)->dispose (object);
}

static void
tether_peer_class_init (TetherPeerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = tether_peer_dispose;
}

static void
tether_peer_init (TetherPeer *self)
{
}

TetherPeer *
_tether_peer_new (TetherConnection *conn)
{
  TetherPeer *self = g_object_new (TETHER_TYPE_PEER, NULL);

  self->conn = g_object_ref (conn);
  _tether_connection_set_public (conn, self);
  return self;
}

TetherConnection *
_tether_peer_get_connection (TetherPeer *self)
{
  return self->conn;
}

void
_tether_peer_set_detached_callback (TetherPeer             *self,
                                    TetherDetachedCallback *detached)
{
  g_set_object (&self->detached, detached);
}

/**
 * tether_peer_get_detached_callback:
 * @self: a #TetherPeer
 *
 * Gets the way to call this client back after its connection closed: the
 * [class@Tether.CallbackListener] it announced in its hello, if the server
 * allows detached callbacks
 * ([property@Tether.Server:allow-detached-callbacks]) and the address is
 * the client's own. The object stays usable after the peer disconnected,
 * until [property@Tether.Server:detached-callback-validity] runs out.
 *
 * Returns: (transfer full) (nullable): the detached callback, or %NULL if
 *   the peer announced no listener or the server refused it
 *
 * Since: 0.1
 */
TetherDetachedCallback *
tether_peer_get_detached_callback (TetherPeer *self)
{
  g_return_val_if_fail (TETHER_IS_PEER (self), NULL);
  return self->detached != NULL ? g_object_ref (self->detached) : NULL;
}

/**
 * tether_peer_call_async:
 * @self: a #TetherPeer
 * @method: the client method to call
 * @params: (nullable): the parameters (a tuple travels as a JSON array,
 *   `a{sv}` as an object); a floating reference is sunk
 * @timeout_msec: the timeout in milliseconds, or -1 for the server's
 *   [property@Tether.Server:callback-timeout]; clamped to
 *   [property@Tether.Server:max-callback-timeout]
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the answer
 * @user_data: (closure): data for @callback
 *
 * Calls the client back, outside of any call. Cancelling @cancellable
 * fails the callback with %G_IO_ERROR_CANCELLED and tells the client.
 *
 * Since: 0.1
 */
void
tether_peer_call_async (TetherPeer          *self,
                        const char          *method,
                        GVariant            *params,
                        int                  timeout_msec,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  TetherCallOptions options = TETHER_CALL_OPTIONS_INIT;

  g_return_if_fail (TETHER_IS_PEER (self));
  g_return_if_fail (method != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  options.method = method;
  options.params = params;
  options.timeout_msec = timeout_msec;
  _tether_connection_call_async (self->conn, &options, self, tether_peer_call_async,
                                 cancellable, callback, user_data);
}

/**
 * tether_peer_call_finish:
 * @self: a #TetherPeer
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Tether.Peer.call_async]. Errors the client answered
 * with are in %TETHER_REMOTE_ERROR.
 *
 * Returns: (transfer full): the result, or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tether_peer_call_finish (TetherPeer    *self,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (TETHER_IS_PEER (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return _tether_connection_call_finish (result, tether_peer_call_async, error);
}

/**
 * tether_peer_call_full_async:
 * @self: a #TetherPeer
 * @method: the client method to call
 * @params: (nullable): the parameters, as for [method@Tether.Peer.call_async];
 *   a floating reference is sunk
 * @level: the impersonation level to grant on this callback; it can only
 *   lower what [method@Tether.Peer.get_callback_impersonation_level]
 *   gives (the server's level after its caps and clamp), never raise it
 * @act_as: (nullable): credentials to present, to act as their subject
 *   (from [method@Tether.Invocation.impersonate]); the client checks them
 *   and refuses the callback (-32006) if they are not valid for this server
 * @timeout_msec: the timeout in milliseconds, or -1 for the server's
 *   [property@Tether.Server:callback-timeout]; clamped to
 *   [property@Tether.Server:max-callback-timeout]
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the answer
 * @user_data: (closure): data for @callback
 *
 * Calls the client back, as [method@Tether.Peer.call_async] does, granting
 * at most @level and optionally acting as someone else.
 *
 * Since: 0.1
 */
void
tether_peer_call_full_async (TetherPeer               *self,
                             const char               *method,
                             GVariant                 *params,
                             TetherImpersonationLevel  level,
                             TetherCredentials        *act_as,
                             int                       timeout_msec,
                             GCancellable             *cancellable,
                             GAsyncReadyCallback       callback,
                             gpointer                  user_data)
{
  TetherCallOptions options = TETHER_CALL_OPTIONS_INIT;

  g_return_if_fail (TETHER_IS_PEER (self));
  g_return_if_fail (method != NULL);
  g_return_if_fail (level <= TETHER_IMPERSONATION_LEVEL_DELEGATE);
  g_return_if_fail (act_as == NULL || TETHER_IS_CREDENTIALS (act_as));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  options.method = method;
  options.params = params;
  options.timeout_msec = timeout_msec;
  options.max_level = level;
  options.act_as = act_as;
  _tether_connection_call_async (self->conn, &options, self, tether_peer_call_full_async,
                                 cancellable, callback, user_data);
}

/**
 * tether_peer_call_full_finish:
 * @self: a #TetherPeer
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Tether.Peer.call_full_async], with the errors of
 * [method@Tether.Peer.call_finish], plus
 * %TETHER_ERROR_IMPERSONATION_DENIED when the level cannot be granted
 * (no signing key, or no authenticated client to name as holder).
 *
 * Returns: (transfer full): the result, or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tether_peer_call_full_finish (TetherPeer    *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (TETHER_IS_PEER (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return _tether_connection_call_finish (result, tether_peer_call_full_async, error);
}

/**
 * tether_peer_send_notification:
 * @self: a #TetherPeer
 * @method: the client method
 * @params: (nullable): the parameters; a floating reference is sunk
 * @error: return location for a #GError
 *
 * Sends a JSON-RPC notification (no answer is expected) to the client.
 *
 * Returns: %TRUE if it was queued for sending
 *
 * Since: 0.1
 */
gboolean
tether_peer_send_notification (TetherPeer  *self,
                               const char  *method,
                               GVariant    *params,
                               GError     **error)
{
  g_return_val_if_fail (TETHER_IS_PEER (self), FALSE);
  g_return_val_if_fail (method != NULL, FALSE);

  return _tether_connection_send_notification (self->conn, method, params, error);
}

/**
 * tether_peer_get_identity:
 * @self: a #TetherPeer
 *
 * Gets who the peer is, as the transport proved it at accept.
 *
 * Returns: (transfer none): who the client is, as the transport proved it
 *
 * Since: 0.1
 */
TetherIdentity *
tether_peer_get_identity (TetherPeer *self)
{
  g_return_val_if_fail (TETHER_IS_PEER (self), NULL);
  return _tether_connection_get_identity (self->conn);
}

/**
 * tether_peer_is_tether:
 * @self: a #TetherPeer
 *
 * Tells whether the peer speaks the `tether.v1` subprotocol, or is a plain
 * JSON-RPC peer.
 *
 * Returns: %TRUE if the client speaks Tether's `tether.v1` subprotocol,
 *   %FALSE for a plain JSON-RPC 2.0 client
 *
 * Since: 0.1
 */
gboolean
tether_peer_is_tether (TetherPeer *self)
{
  g_return_val_if_fail (TETHER_IS_PEER (self), FALSE);
  return _tether_connection_is_tether (self->conn);
}

/**
 * tether_peer_is_closed:
 * @self: a #TetherPeer
 *
 * Tells whether the peer's connection has closed.
 *
 * Returns: whether the connection to the client is closed
 *
 * Since: 0.1
 */
gboolean
tether_peer_is_closed (TetherPeer *self)
{
  g_return_val_if_fail (TETHER_IS_PEER (self), TRUE);
  return _tether_connection_is_closed (self->conn);
}

/**
 * tether_peer_get_n_pending_calls:
 * @self: a #TetherPeer
 *
 * Counts the callbacks to this peer waiting for an answer.
 *
 * Returns: the number of callbacks to this client waiting for an answer
 *
 * Since: 0.1
 */
guint
tether_peer_get_n_pending_calls (TetherPeer *self)
{
  g_return_val_if_fail (TETHER_IS_PEER (self), 0);
  return _tether_connection_get_n_pending (self->conn);
}

/**
 * tether_peer_close:
 * @self: a #TetherPeer
 *
 * Closes the connection to the client: a close frame is sent, pending
 * callbacks fail with %G_IO_ERROR_CONNECTION_CLOSED and the client's
 * invocations are cancelled. [signal@Tether.Server::peer-disconnected]
 * follows.
 *
 * Since: 0.1
 */
void
tether_peer_close (TetherPeer *self)
{
  g_return_if_fail (TETHER_IS_PEER (self));
  _tether_connection_close (self->conn, NULL);
}

/**
 * tether_peer_get_statistics:
 * @self: a #TetherPeer
 *
 * Takes a snapshot of this peer's counters.
 *
 * Returns: (transfer full): a snapshot of this peer's counters
 *
 * Since: 0.1
 */
TetherStatistics *
tether_peer_get_statistics (TetherPeer *self)
{
  TetherStatistics stats = { 0 };

  g_return_val_if_fail (TETHER_IS_PEER (self), NULL);
  _tether_connection_add_statistics (self->conn, &stats);
  return tether_statistics_copy (&stats);
}

/**
 * tether_peer_is_quarantined:
 * @self: a #TetherPeer
 *
 * Tells whether the peer is quarantined.
 *
 * Returns: whether the peer is quarantined now (see
 *   [property@Tether.Server:misbehavior-action])
 *
 * Since: 0.1
 */
gboolean
tether_peer_is_quarantined (TetherPeer *self)
{
  g_return_val_if_fail (TETHER_IS_PEER (self), FALSE);
  return _tether_connection_is_quarantined (self->conn);
}

/**
 * tether_peer_get_callback_impersonation_level:
 * @self: a #TetherPeer
 *
 * Gets the impersonation level the server's callbacks to this peer carry,
 * once [property@Tether.Server:callback-impersonation-level], the remote
 * cap and the privileged clamp are applied. A plain JSON-RPC peer cannot
 * be told a level; it is sent nothing beyond the request.
 *
 * Returns: the effective level of callbacks to this peer
 *
 * Since: 0.1
 */
TetherImpersonationLevel
tether_peer_get_callback_impersonation_level (TetherPeer *self)
{
  TetherImpPolicy *policy;

  g_return_val_if_fail (TETHER_IS_PEER (self), TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  policy = _tether_connection_get_imp_policy (self->conn);
  if (policy == NULL)
    return TETHER_IMPERSONATION_LEVEL_IDENTIFY;
  return _tether_imp_policy_effective_level (policy, _tether_connection_get_identity (self->conn),
                                             TETHER_IMPERSONATION_LEVEL_DELEGATE);
}
