/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * TetherClient:
 *
 * Connects to a Tether service, calls its methods and answers its
 * callbacks.
 *
 * Add the methods the client answers (its callbacks) with
 * [method@Tether.Client.add_method], then connect with
 * [method@Tether.Client.connect_async] and call with
 * [method@Tether.Client.call_async]. Every call has a deadline
 * ([property@Tether.Client:default-timeout], at most
 * [property@Tether.Client:max-timeout]); the remaining budget travels with
 * the call, so the server stops working on it when the client stops
 * waiting. Cancelling a call tells the server.
 *
 * On `unix:` the client checks who serves the socket before it sends
 * anything: root or the client's own user, or
 * [property@Tether.Client:expected-server-uid]. On `wss://` the server's
 * certificate is verified against the system's trust store or
 * [property@Tether.Client:tls-database]; there is no way to skip that.
 *
 * All I/O, signals and handlers run on the main context that was
 * thread-default when the client was created.
 *
 * Since: 0.1
 */

#include "tether-auth-private.h"
#include "tether-client-impl-private.h"
#include "tether-callback-listener.h"
#include "tether-client-private.h"
#include "tether-connection-private.h"
#include "tether-handshake-private.h"
#include "tether-enum-types.h"
#include "tether-error-private.h"
#include "tether-impersonation-private.h"
#include "tether-identity.h"
#include "tether-message-private.h"
#include "tether-method-table-private.h"
#include "tether-method-info-private.h"
#include "tether-discover-private.h"
#include "tether-transport-private.h"
#include "tether-version.h"

#include <string.h>

G_DEFINE_FINAL_TYPE (TetherClient, tether_client, G_TYPE_OBJECT)

GParamSpec *_tether_client_properties[N_PROPS];
guint _tether_client_signals[N_SIGNALS];
#define properties _tether_client_properties
#define signals _tether_client_signals

static void
client_limits (TetherClient *self,
               TetherLimits *limits)
{
  _tether_limits_fill (self->limits, limits);
  limits->misbehavior_action = TETHER_MISBEHAVIOR_ACTION_DISCONNECT;
}

/* ---------------------------------------------------------------------- */
/* Connection                                                             */


static void
connection_closed (gpointer          owner,
                   TetherConnection *conn,
                   const GError     *error)
{
  TetherClient *self = owner;
  gboolean was_connected = self->conn == conn;

  _tether_connection_add_statistics (conn, &self->closed_stats);
  /* A connection sent away closes by itself once its calls are done. */
  if (g_ptr_array_remove_fast (self->retired, conn))
    return;
  if (was_connected)
    g_clear_object (&self->conn);
  if (was_connected)
    {
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONNECTED]);
      g_signal_emit (self, signals[SIGNAL_DISCONNECTED], 0, error);
      /* Lost, not closed: calls in flight failed with it (never resent),
       * new ones wait for the next connection. */
      if (self->reconnect && !self->closing && self->conn == NULL)
        _tether_client_reconnect_schedule (self);
    }
}

static void
connection_going_away (gpointer          owner,
                       TetherConnection *conn,
                       guint             deadline_ms)
{
  TetherClient *self = owner;

  if (self->conn != conn)
    return;

  /* Following: the connection finishes what it carries and closes by
   * itself; new calls wait for (and go on) a new one. */
  if (self->reconnect)
    {
      g_ptr_array_add (self->retired, g_steal_pointer (&self->conn));
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONNECTED]);
    }
  g_signal_emit (self, signals[SIGNAL_GOING_AWAY], 0, deadline_ms);
  if (self->reconnect && self->conn == NULL && !self->closing)
    _tether_client_reconnect_schedule (self);
}

static const TetherConnectionOwnerFuncs client_owner_funcs = {
  .closed = connection_closed,
  .going_away = connection_going_away,
};

typedef struct
{
  TetherConnection  *conn;
  TetherIdentity    *identity;
  gint64             deadline;  /* one window: socket, TLS, upgrade, hello */
} ConnectData;

static void
connect_data_free (ConnectData *data)
{
  if (data->conn != NULL)
    {
      _tether_connection_detach_owner (data->conn);
      _tether_connection_close (data->conn, NULL);
    }
  g_clear_object (&data->conn);
  g_clear_object (&data->identity);
  g_free (data);
}

static void
connect_complete (TetherClient *self,
                  GTask        *task,
                  GError       *error)
{
  g_assert (self->connecting == task);
  self->connecting = NULL;

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

/* The hello is over: the server let us in, or said why not. */
static void
hello_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  TetherClient *self = g_task_get_source_object (task);
  ConnectData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!_tether_hello_client_finish (result, &error))
    {
      connect_complete (self, task, error);
      return;
    }
  g_set_object (&self->server_identity, data->identity);
  self->conn = g_steal_pointer (&data->conn);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONNECTED]);
  if (self->reconnecting)
    {
      self->reconnecting = FALSE;
      self->attempts = 0;
      _tether_scheduler_remove (self->scheduler, &self->retry_deadline);
      g_signal_emit (self, signals[SIGNAL_RECONNECTED], 0);
    }
  connect_complete (self, task, NULL);
  /* Calls that waited for this connection go out on it, in order. */
  _tether_client_queue_flush (self);
}

static void
transport_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;
  TetherClient *self = g_task_get_source_object (task);
  ConnectData *data = g_task_get_task_data (task);
  g_autoptr(TetherWebsocket) ws = NULL;
  g_autoptr(TetherGuardStream) guard = NULL;
  GError *error = NULL;
  TetherLimits limits;
  TetherHelloClientOptions hello = { 0 };
  TetherHelloExtender *extender = NULL;

  if (!_tether_transport_connect_finish (result, &ws, &guard, &data->identity, &error))
    {
      connect_complete (self, task, error);
      return;
    }

  /* A pinned certificate is checked on top of verification, not instead. */
  if (self->pinned_sha256 != NULL &&
      g_ascii_strcasecmp (self->pinned_sha256,
                          tether_identity_get_certificate_sha256 (data->identity) ?: "") != 0)
    {
      _tether_guard_stream_abort (guard);
      connect_complete (self, task,
                        g_error_new (TETHER_ERROR, TETHER_ERROR_PEER_NOT_TRUSTED,
                                     "The server's certificate (sha256 %s) is not the pinned one",
                                     tether_identity_get_certificate_sha256 (data->identity) ?: "none"));
      return;
    }

  client_limits (self, &limits);
  data->conn = _tether_connection_new (TETHER_CONNECTION_ROLE_CLIENT, self->scheduler, &limits,
                                       NULL, NULL, self->methods, &client_owner_funcs, self);
  _tether_connection_set_imp_policy (data->conn, self->imp_policy);
  _tether_connection_start (data->conn, ws, guard, data->identity, data->deadline);
  hello.uri = self->uri;
  hello.username = self->username;
  hello.password = self->password;
  hello.mechanism = self->auth_mechanism;
  hello.require_channel_binding = self->require_channel_binding;
  hello.binary_frames = self->binary_frames;
  hello.deadline = data->deadline;

  /* Where the server may call us back after this connection closed:
   * the callback listener extends the hello. */
  if (self->callback_listener != NULL)
    {
      extender = TETHER_HELLO_EXTENDER (self->callback_listener);
      hello.extenders = &extender;
      hello.n_extenders = 1;
    }

  _tether_hello_client_async (data->conn, &hello, g_task_get_cancellable (task),
                              hello_done_cb, task);
}

/**
 * tether_client_connect_async:
 * @self: a #TetherClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when connected or failed
 * @user_data: (closure): data for @callback
 *
 * Connects to [property@Tether.Client:uri]: the socket, TLS, the
 * WebSocket upgrade and the hello, all within
 * [property@Tether.Client:handshake-timeout]. A client whose connection
 * closed may connect again.
 *
 * Since: 0.1
 */
void
tether_client_connect_async (TetherClient        *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  GTask *task;
  TetherConnectOptions options = { 0 };

  g_return_if_fail (TETHER_IS_CLIENT (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, tether_client_connect_async);
  g_task_set_name (task, "[tether] client connect");
  g_task_set_task_data (task, g_new0 (ConnectData, 1), (GDestroyNotify) connect_data_free);
  ((ConnectData *) g_task_get_task_data (task))->deadline =
    g_get_monotonic_time () + (gint64) self->limits[TETHER_LIMIT_HANDSHAKE_TIMEOUT] * 1000;

  if (self->conn != NULL || self->connecting != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_EXISTS,
                               self->conn != NULL ? "Already connected" : "Already connecting");
      g_object_unref (task);
      return;
    }
  self->connecting = task;

  options.uri = self->uri;
  options.tls_database = self->tls_database;
  options.tls_certificate = self->tls_certificate;
  options.expected_uid = self->expected_server_uid;
  options.allow_insecure = self->allow_insecure;
  options.handshake_timeout_ms = self->limits[TETHER_LIMIT_HANDSHAKE_TIMEOUT];
  options.max_message_size = self->limits[TETHER_LIMIT_MAX_MESSAGE_SIZE];

  g_main_context_push_thread_default (self->context);
  _tether_transport_connect_async (&options, self->scheduler, cancellable, transport_cb, task);
  g_main_context_pop_thread_default (self->context);
}

/**
 * tether_client_connect_finish:
 * @self: a #TetherClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Tether.Client.connect_async].
 *
 * Returns: %TRUE if connected
 *
 * Since: 0.1
 */
gboolean
tether_client_connect_finish (TetherClient  *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tether_client_connect_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------- */
/* Calls                                                                  */

/**
 * tether_client_call_async:
 * @self: a #TetherClient
 * @method: the method to call
 * @params: (nullable): the parameters: a tuple travels as a JSON array
 *   (positional), `a{sv}` as an object (named); a floating reference is
 *   sunk
 * @timeout_msec: the timeout in milliseconds, or -1 for
 *   [property@Tether.Client:default-timeout]; clamped to
 *   [property@Tether.Client:max-timeout]
 * @cancellable: (nullable): a #GCancellable; cancelling tells the server
 * @callback: (scope async): called with the answer
 * @user_data: (closure): data for @callback
 *
 * Calls a method of the server.
 *
 * Since: 0.1
 */
void
tether_client_call_async (TetherClient        *self,
                          const char          *method,
                          GVariant            *params,
                          int                  timeout_msec,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_return_if_fail (TETHER_IS_CLIENT (self));
  g_return_if_fail (method != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  if (_tether_client_call_without_connection (self, method, params, TETHER_IMPERSONATION_LEVEL_DELEGATE, NULL,
                               timeout_msec, cancellable, tether_client_call_async,
                               callback, user_data))
    return;

  {
    TetherCallOptions options = TETHER_CALL_OPTIONS_INIT;

    options.method = method;
    options.params = params;
    options.timeout_msec = timeout_msec;
    _tether_connection_call_async (self->conn, &options, self, tether_client_call_async,
                                   cancellable, callback, user_data);
  }
}

/**
 * tether_client_call_full_async:
 * @self: a #TetherClient
 * @method: the method to call
 * @params: (nullable): the parameters, as for
 *   [method@Tether.Client.call_async]; a floating reference is sunk
 * @level: the impersonation level to grant on this call; it can only
 *   lower [property@Tether.Client:impersonation-level], never raise it
 * @act_as: (nullable): credentials to present, to act as their subject
 *   (from [method@Tether.Invocation.impersonate]); the server checks them
 *   and refuses the call (-32006) if they are not valid for this client
 * @timeout_msec: the timeout in milliseconds, or -1 for
 *   [property@Tether.Client:default-timeout]
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the answer
 * @user_data: (closure): data for @callback
 *
 * Calls a method of the server, granting at most @level and optionally
 * acting as someone else.
 *
 * Since: 0.1
 */
void
tether_client_call_full_async (TetherClient             *self,
                               const char               *method,
                               GVariant                 *params,
                               TetherImpersonationLevel  level,
                               TetherCredentials        *act_as,
                               int                       timeout_msec,
                               GCancellable             *cancellable,
                               GAsyncReadyCallback       callback,
                               gpointer                  user_data)
{
  g_return_if_fail (TETHER_IS_CLIENT (self));
  g_return_if_fail (method != NULL);
  g_return_if_fail (level <= TETHER_IMPERSONATION_LEVEL_DELEGATE);
  g_return_if_fail (act_as == NULL || TETHER_IS_CREDENTIALS (act_as));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  if (_tether_client_call_without_connection (self, method, params, level, act_as, timeout_msec, cancellable,
                               tether_client_call_full_async, callback, user_data))
    return;

  {
    TetherCallOptions options = TETHER_CALL_OPTIONS_INIT;

    options.method = method;
    options.params = params;
    options.timeout_msec = timeout_msec;
    options.max_level = level;
    options.act_as = act_as;
    _tether_connection_call_async (self->conn, &options, self, tether_client_call_full_async,
                                   cancellable, callback, user_data);
  }
}

/**
 * tether_client_call_full_finish:
 * @self: a #TetherClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Tether.Client.call_full_async], with the errors of
 * [method@Tether.Client.call_finish], plus
 * %TETHER_ERROR_IMPERSONATION_DENIED when the level cannot be granted
 * (no signing key, or no authenticated server to name as holder).
 *
 * Returns: (transfer full): the result, or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tether_client_call_full_finish (TetherClient  *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return _tether_connection_call_finish (result, tether_client_call_full_async, error);
}

/**
 * tether_client_set_impersonation_level:
 * @self: a #TetherClient
 * @level: the level
 *
 * Sets [property@Tether.Client:impersonation-level].
 *
 * Since: 0.1
 */
void
tether_client_set_impersonation_level (TetherClient             *self,
                                       TetherImpersonationLevel  level)
{
  g_return_if_fail (TETHER_IS_CLIENT (self));
  g_return_if_fail (level <= TETHER_IMPERSONATION_LEVEL_DELEGATE);

  if (self->imp_policy->level == level)
    return;
  self->imp_policy->level = level;
  self->imp_policy->remote_level = level;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_IMPERSONATION_LEVEL]);
}

/**
 * tether_client_get_impersonation_level:
 * @self: a #TetherClient
 *
 * Gets [property@Tether.Client:impersonation-level].
 *
 * Returns: the most this client grants on its calls
 *
 * Since: 0.1
 */
TetherImpersonationLevel
tether_client_get_impersonation_level (TetherClient *self)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  return self->imp_policy->level;
}

/**
 * tether_client_set_signing_certificate:
 * @self: a #TetherClient
 * @certificate: (nullable): a certificate with its private key
 *
 * Sets [property@Tether.Client:signing-certificate]. A certificate whose
 * key cannot be used is refused with a warning (and tokens cannot be
 * granted).
 *
 * Since: 0.1
 */
void
tether_client_set_signing_certificate (TetherClient    *self,
                                       GTlsCertificate *certificate)
{
  g_autoptr(GError) error = NULL;

  g_return_if_fail (TETHER_IS_CLIENT (self));
  g_return_if_fail (certificate == NULL || G_IS_TLS_CERTIFICATE (certificate));

  if (self->imp_policy->signing_certificate == certificate)
    return;
  if (!_tether_imp_policy_set_signing_certificate (self->imp_policy, certificate, &error))
    g_warning ("Signing certificate refused: %s", error->message);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SIGNING_CERTIFICATE]);
}

/**
 * tether_client_get_signing_certificate:
 * @self: a #TetherClient
 *
 * Gets [property@Tether.Client:signing-certificate].
 *
 * Returns: (transfer none) (nullable): the signing certificate
 *
 * Since: 0.1
 */
GTlsCertificate *
tether_client_get_signing_certificate (TetherClient *self)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), NULL);
  return self->imp_policy->signing_certificate;
}

/**
 * tether_client_call_finish:
 * @self: a #TetherClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Tether.Client.call_async]. Errors the server answered
 * with are in %TETHER_REMOTE_ERROR with the wire code; local ones are
 * %G_IO_ERROR_TIMED_OUT (deadline), %G_IO_ERROR_CANCELLED,
 * %G_IO_ERROR_CONNECTION_CLOSED or in %TETHER_ERROR.
 *
 * Returns: (transfer full): the result, or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tether_client_call_finish (TetherClient  *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return _tether_connection_call_finish (result, tether_client_call_async, error);
}

/**
 * tether_client_send_notification:
 * @self: a #TetherClient
 * @method: the method
 * @params: (nullable): the parameters; a floating reference is sunk
 * @error: return location for a #GError
 *
 * Sends a JSON-RPC notification: no answer is expected or possible.
 *
 * Returns: %TRUE if it was queued for sending
 *
 * Since: 0.1
 */
gboolean
tether_client_send_notification (TetherClient  *self,
                                 const char    *method,
                                 GVariant      *params,
                                 GError       **error)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (method != NULL, FALSE);

  if (self->conn == NULL)
    {
      if (params != NULL)
        g_variant_unref (g_variant_ref_sink (params));
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED, "Not connected");
      return FALSE;
    }
  return _tether_connection_send_notification (self->conn, method, params, error);
}

/**
 * tether_client_get_server_identity:
 * @self: a #TetherClient
 *
 * Gets who serves the connection, as the transport proved it.
 *
 * Returns: (transfer none) (nullable): who serves the connection, once
 *   connected: the uid on `unix:`, the certificate on `wss://`
 *
 * Since: 0.1
 */
TetherIdentity *
tether_client_get_server_identity (TetherClient *self)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), NULL);
  return self->server_identity;
}

/**
 * tether_client_is_connected:
 * @self: a #TetherClient
 *
 * Tells whether the client is connected.
 *
 * Returns: %TRUE between a successful connect and the connection closing
 *
 * Since: 0.1
 */
gboolean
tether_client_is_connected (TetherClient *self)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), FALSE);
  return self->conn != NULL;
}

/**
 * tether_client_close:
 * @self: a #TetherClient
 *
 * Closes the connection: a close frame is sent, pending calls fail with
 * %G_IO_ERROR_CONNECTION_CLOSED, and [signal@Tether.Client::disconnected]
 * is emitted. Idempotent; also done when the client is disposed.
 *
 * With [property@Tether.Client:reconnect] on, this also stops following:
 * no new connection is attempted, calls waiting for one fail with
 * %G_IO_ERROR_CONNECTION_CLOSED, and so do calls still finishing on
 * connections the server sent away.
 *
 * Since: 0.1
 */
void
tether_client_close (TetherClient *self)
{
  g_autoptr(GPtrArray) retired = NULL;

  g_return_if_fail (TETHER_IS_CLIENT (self));

  g_object_ref (self);
  self->closing = TRUE;
  _tether_client_reconnect_stop (self, "The client was closed");
  if (self->conn != NULL)
    _tether_connection_close (self->conn, NULL);
  /* Connections sent away close too: what they carry fails. */
  retired = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < self->retired->len; i++)
    g_ptr_array_add (retired, g_object_ref (self->retired->pdata[i]));
  for (guint i = 0; i < retired->len; i++)
    _tether_connection_close (retired->pdata[i], NULL);
  self->closing = FALSE;
  g_object_unref (self);
}

/**
 * tether_client_set_callback_listener:
 * @self: a #TetherClient
 * @listener: (nullable): a listening #TetherCallbackListener, or %NULL for
 *   none
 *
 * Announces @listener's first address
 * ([method@Tether.CallbackListener.get_uris]) in the hello of later
 * connections, so that the server may call back through it after the
 * connection closed ([class@Tether.DetachedCallback]). The server only
 * accepts an address that is the client's own — on `unix:` a socket owned
 * by the client's uid, on `ws://` and `wss://` the IP address the client
 * connects from — and only if it allows detached callbacks at all.
 *
 * The session the server grants in its answer is registered in @listener,
 * which from then on accepts deliveries signed for it (and nothing else)
 * until the session's validity ends, whether or not this connection is
 * still open. A refusal does not fail the connection: it is logged as a
 * warning, and no session is registered.
 *
 * Since: 0.1
 */
void
tether_client_set_callback_listener (TetherClient           *self,
                                     TetherCallbackListener *listener)
{
  g_return_if_fail (TETHER_IS_CLIENT (self));
  g_return_if_fail (listener == NULL || TETHER_IS_CALLBACK_LISTENER (listener));

  g_set_object (&self->callback_listener, listener);
}

/**
 * tether_client_get_callback_listener:
 * @self: a #TetherClient
 *
 * Gets the listener set with
 * [method@Tether.Client.set_callback_listener].
 *
 * Returns: (transfer none) (nullable): the callback listener
 *
 * Since: 0.1
 */
TetherCallbackListener *
tether_client_get_callback_listener (TetherClient *self)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), NULL);
  return self->callback_listener;
}

TetherConnection *
_tether_client_get_connection (TetherClient *self)
{
  return self->conn;
}

/**
 * tether_client_get_uri:
 * @self: a #TetherClient
 *
 * Gets [property@Tether.Client:uri], the URI the client connects to.
 *
 * Returns: (transfer none): the URI the client connects to
 *
 * Since: 0.1
 */
const char *
tether_client_get_uri (TetherClient *self)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), NULL);
  return self->uri;
}

/**
 * tether_client_set_tls_database:
 * @self: a #TetherClient
 * @database: (nullable): the database that verifies the server, or %NULL
 *   for the system's
 *
 * Sets [property@Tether.Client:tls-database].
 *
 * Since: 0.1
 */
void
tether_client_set_tls_database (TetherClient *self,
                                GTlsDatabase *database)
{
  g_return_if_fail (TETHER_IS_CLIENT (self));
  if (g_set_object (&self->tls_database, database))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TLS_DATABASE]);
}

/**
 * tether_client_get_tls_database:
 * @self: a #TetherClient
 *
 * Gets [property@Tether.Client:tls-database].
 *
 * Returns: (transfer none) (nullable): the database that verifies the server
 *
 * Since: 0.1
 */
GTlsDatabase *
tether_client_get_tls_database (TetherClient *self)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), NULL);
  return self->tls_database;
}

/**
 * tether_client_set_tls_certificate:
 * @self: a #TetherClient
 * @certificate: (nullable): a client certificate with its key
 *
 * Sets [property@Tether.Client:tls-certificate].
 *
 * Since: 0.1
 */
void
tether_client_set_tls_certificate (TetherClient    *self,
                                   GTlsCertificate *certificate)
{
  g_return_if_fail (TETHER_IS_CLIENT (self));
  if (g_set_object (&self->tls_certificate, certificate))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TLS_CERTIFICATE]);
}

/**
 * tether_client_get_tls_certificate:
 * @self: a #TetherClient
 *
 * Gets [property@Tether.Client:tls-certificate].
 *
 * Returns: (transfer none) (nullable): the client certificate
 *
 * Since: 0.1
 */
GTlsCertificate *
tether_client_get_tls_certificate (TetherClient *self)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), NULL);
  return self->tls_certificate;
}

/* ---------------------------------------------------------------------- */
/* GObject                                                                */

static void
tether_client_dispose (GObject *object)
{
  TetherClient *self = TETHER_CLIENT (object);

  /* Queued calls hold a reference: none is left here. */
  self->closing = TRUE;
  _tether_client_reconnect_stop (self, "The client was disposed");
  if (self->conn != NULL)
    {
      g_autoptr(TetherConnection) conn = g_steal_pointer (&self->conn);

      _tether_connection_detach_owner (conn);
      _tether_connection_close (conn, NULL);
    }
  while (self->retired != NULL && self->retired->len > 0)
    {
      g_autoptr(TetherConnection) conn = g_ptr_array_steal_index_fast (self->retired, 0);

      _tether_connection_detach_owner (conn);
      _tether_connection_close (conn, NULL);
    }

  G_OBJECT_CLASS (tether_client_parent_class)->dispose (object);
}

static void
tether_client_finalize (GObject *object)
{
  TetherClient *self = TETHER_CLIENT (object);

  g_clear_pointer (&self->uri, g_free);
  g_clear_pointer (&self->username, g_free);
  if (self->password != NULL)
    memset (self->password, 0, strlen (self->password));
  g_clear_pointer (&self->password, g_free);
  g_clear_pointer (&self->pinned_sha256, g_free);
  g_clear_pointer (&self->auth_mechanism, g_free);
  g_clear_object (&self->server_identity);
  g_clear_object (&self->tls_database);
  g_clear_object (&self->tls_certificate);
  g_clear_object (&self->callback_listener);
  g_clear_pointer (&self->imp_policy, _tether_imp_policy_unref);
  g_clear_pointer (&self->retired, g_ptr_array_unref);
  _tether_method_table_free (self->methods);
  _tether_scheduler_unref (self->scheduler);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (tether_client_parent_class)->finalize (object);
}

static void
tether_client_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  TetherClient *self = TETHER_CLIENT (object);
  int limit = _tether_limits_row (N_PROPS, prop_id);

  if (limit >= 0)
    {
      g_value_set_uint (value, self->limits[limit]);
      return;
    }

  switch (prop_id)
    {
    case PROP_URI:
      g_value_set_string (value, self->uri);
      break;
    case PROP_TLS_DATABASE:
      g_value_set_object (value, self->tls_database);
      break;
    case PROP_TLS_CERTIFICATE:
      g_value_set_object (value, self->tls_certificate);
      break;
    case PROP_EXPECTED_SERVER_UID:
      g_value_set_int64 (value, self->expected_server_uid);
      break;
    case PROP_ALLOW_INSECURE:
      g_value_set_boolean (value, self->allow_insecure);
      break;
    case PROP_CONNECTED:
      g_value_set_boolean (value, self->conn != NULL);
      break;
    case PROP_REQUIRE_CHANNEL_BINDING:
      g_value_set_boolean (value, self->require_channel_binding);
      break;
    case PROP_BINARY_FRAMES:
      g_value_set_boolean (value, self->binary_frames);
      break;
    case PROP_TLS_PINNED_SHA256:
      g_value_set_string (value, self->pinned_sha256);
      break;
    case PROP_AUTH_MECHANISM:
      g_value_set_string (value, self->auth_mechanism);
      break;
    case PROP_IMPERSONATION_LEVEL:
      g_value_set_enum (value, self->imp_policy->level);
      break;
    case PROP_SIGNING_CERTIFICATE:
      g_value_set_object (value, self->imp_policy->signing_certificate);
      break;
    case PROP_RECONNECT:
      g_value_set_boolean (value, self->reconnect);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tether_client_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  TetherClient *self = TETHER_CLIENT (object);
  int limit = _tether_limits_row (N_PROPS, prop_id);

  if (limit >= 0)
    {
      if (self->limits[limit] != g_value_get_uint (value))
        {
          self->limits[limit] = g_value_get_uint (value);
          g_object_notify_by_pspec (object, pspec);
        }
      return;
    }

  switch (prop_id)
    {
    case PROP_URI:
      self->uri = g_value_dup_string (value);
      break;
    case PROP_TLS_DATABASE:
      tether_client_set_tls_database (self, g_value_get_object (value));
      break;
    case PROP_TLS_CERTIFICATE:
      tether_client_set_tls_certificate (self, g_value_get_object (value));
      break;
    case PROP_IMPERSONATION_LEVEL:
      tether_client_set_impersonation_level (self, g_value_get_enum (value));
      break;
    case PROP_SIGNING_CERTIFICATE:
      tether_client_set_signing_certificate (self, g_value_get_object (value));
      break;
    case PROP_RECONNECT:
      tether_client_set_reconnect (self, g_value_get_boolean (value));
      break;
    case PROP_REQUIRE_CHANNEL_BINDING:
      self->require_channel_binding = g_value_get_boolean (value);
      break;
    case PROP_BINARY_FRAMES:
      self->binary_frames = g_value_get_boolean (value);
      g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_AUTH_MECHANISM:
      g_free (self->auth_mechanism);
      self->auth_mechanism = g_value_dup_string (value);
      g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_TLS_PINNED_SHA256:
      g_free (self->pinned_sha256);
      self->pinned_sha256 = g_value_dup_string (value);
      g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_EXPECTED_SERVER_UID:
      if (self->expected_server_uid != g_value_get_int64 (value))
        {
          self->expected_server_uid = g_value_get_int64 (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_ALLOW_INSECURE:
      if (self->allow_insecure != g_value_get_boolean (value))
        {
          self->allow_insecure = g_value_get_boolean (value);
          if (self->allow_insecure)
            g_warning ("allow-insecure is set: plaintext ws:// beyond loopback "
                       "has no verification guarantees");
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tether_client_class_init (TetherClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->dispose = tether_client_dispose;
  object_class->finalize = tether_client_finalize;
  object_class->get_property = tether_client_get_property;
  object_class->set_property = tether_client_set_property;

  /**
   * TetherClient:uri:
   *
   * Where to connect: `unix:/PATH`, `ws://HOST:PORT` or `wss://HOST:PORT`.
   *
   * Since: 0.1
   */
  properties[PROP_URI] =
    g_param_spec_string ("uri", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * TetherClient:tls-database:
   *
   * The database that verifies the server's certificate on `wss://`;
   * %NULL means the system's trust store. Verification cannot be turned
   * off.
   *
   * Since: 0.1
   */
  properties[PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL, G_TYPE_TLS_DATABASE, rw);

  /**
   * TetherClient:tls-certificate:
   *
   * A client certificate (with its key) to present on `wss://`.
   *
   * Since: 0.1
   */
  properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE, rw);

  /**
   * TetherClient:expected-server-uid:
   *
   * On `unix:`, the uid that must serve the socket; -1 (the default)
   * accepts root or the client's own uid. Anyone else is refused before
   * anything is sent.
   *
   * Since: 0.1
   */
  properties[PROP_EXPECTED_SERVER_UID] =
    g_param_spec_int64 ("expected-server-uid", NULL, NULL, -1, G_MAXUINT32, -1, rw);

  /**
   * TetherClient:allow-insecure:
   *
   * Allows `ws://` to a non-loopback server. Plaintext beyond loopback
   * loses every verification guarantee; setting this logs a warning.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOW_INSECURE] =
    g_param_spec_boolean ("allow-insecure", NULL, NULL, FALSE, rw);

  /**
   * TetherClient:connected:
   *
   * Whether the client is connected.
   *
   * Since: 0.1
   */
  properties[PROP_CONNECTED] =
    g_param_spec_boolean ("connected", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * TetherClient:require-channel-binding:
   *
   * With credentials on `wss://`, insist that authentication is bound to
   * this TLS channel (SCRAM-SHA-256-PLUS, `tls-exporter`): a server that
   * does not take part, or a man in the middle that terminates TLS, is
   * refused with %TETHER_ERROR_CHANNEL_BINDING_FAILED. Default: %TRUE.
   *
   * Since: 0.1
   */
  properties[PROP_REQUIRE_CHANNEL_BINDING] =
    g_param_spec_boolean ("require-channel-binding", NULL, NULL, TRUE, rw | G_PARAM_CONSTRUCT);

  /**
   * TetherClient:binary-frames:
   *
   * Offer binary frames in the hello of later connections: with a server
   * that accepts them, calls and results in both directions travel as
   * serialised GVariant instead of JSON text, unless they carry an
   * impersonation token or a signature. A value arrives exactly as the
   * JSON mapping would have given it (see the JSON documentation), only
   * with less work on both sides. %FALSE keeps every message JSON text,
   * easier to read in a capture. Default: %TRUE.
   *
   * Since: 0.1
   */
  properties[PROP_BINARY_FRAMES] =
    g_param_spec_boolean ("binary-frames", NULL, NULL, TRUE, rw | G_PARAM_CONSTRUCT);

  /**
   * TetherClient:tls-pinned-sha256:
   *
   * The SHA-256 fingerprint (hex, of the DER certificate) the server's
   * certificate must have, checked on top of normal verification. A
   * mismatch fails with %TETHER_ERROR_PEER_NOT_TRUSTED before anything is
   * sent.
   *
   * Since: 0.1
   */
  properties[PROP_TLS_PINNED_SHA256] =
    g_param_spec_string ("tls-pinned-sha256", NULL, NULL, NULL, rw);

  /**
   * TetherClient:auth-mechanism:
   *
   * Without credentials, a SASL mechanism to assert in the hello:
   * `EXTERNAL` (the transport's own proof — the kernel-verified uid on
   * `unix:`, the verified client certificate on `wss://` — recorded as the
   * authentication) or `ANONYMOUS` (only where the server allows it). A
   * server that does not accept it fails the connect with
   * %TETHER_ERROR_UNAUTHENTICATED. %NULL (the default) sends none.
   * Credentials (tether_client_set_credentials()) take precedence.
   *
   * Since: 0.1
   */
  properties[PROP_AUTH_MECHANISM] =
    g_param_spec_string ("auth-mechanism", NULL, NULL, NULL, rw);

  /**
   * TetherClient:impersonation-level:
   *
   * The most this client grants the server on its calls (see
   * [enum@Tether.ImpersonationLevel]). A call may grant less
   * ([method@Tether.Client.call_full_async]), never more. Granting
   * %TETHER_IMPERSONATION_LEVEL_IMPERSONATE or more needs
   * [property@Tether.Client:signing-certificate]; without it such calls
   * fail with %TETHER_ERROR_IMPERSONATION_DENIED rather than grant less.
   *
   * Since: 0.1
   */
  properties[PROP_IMPERSONATION_LEVEL] =
    g_param_spec_enum ("impersonation-level", NULL, NULL, TETHER_TYPE_IMPERSONATION_LEVEL,
                       TETHER_IMPERSONATION_LEVEL_IDENTIFY, rw);

  /**
   * TetherClient:signing-certificate:
   *
   * A certificate with its private key (P-256, Ed25519 or RSA) that signs
   * the impersonation tokens this client grants. It may be the TLS
   * certificate or a separate one, on any transport.
   *
   * Since: 0.1
   */
  properties[PROP_SIGNING_CERTIFICATE] =
    g_param_spec_object ("signing-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE, rw);

  /**
   * TetherClient:reconnect:
   *
   * Whether the client follows a server that goes away, or a connection
   * that is lost, with a new connection of its own. Default: %FALSE.
   *
   * When the server sends the client away
   * ([signal@Tether.Client::going-away]: it is draining, or the
   * connection reached the server's
   * [property@Tether.Server:max-connection-age]), calls in flight
   * finish on the old connection, which then closes by itself, while
   * the client connects again. When the connection is lost
   * ([signal@Tether.Client::disconnected]), calls in flight have failed
   * with %G_IO_ERROR_CONNECTION_CLOSED, and the client connects again. A
   * call is never sent twice.
   *
   * Each attempt is an ordinary [method@Tether.Client.connect_async] —
   * the same URI, credentials and callback listener, the methods still
   * added — within [property@Tether.Client:handshake-timeout]. The first
   * is made at once, later ones after an exponential backoff with
   * jitter ([property@Tether.Client:reconnect-min-delay],
   * [property@Tether.Client:reconnect-max-delay]), for as long as it
   * takes; [signal@Tether.Client::reconnected] is emitted when one
   * succeeds, and [property@Tether.Client:connected] is %FALSE in
   * between.
   *
   * Calls made meanwhile wait for the new connection, each within its
   * own deadline (failing with %G_IO_ERROR_TIMED_OUT when it passes) and
   * cancellable; at most [property@Tether.Client:max-queued-calls] wait.
   * [method@Tether.Client.close] stops following. Turning it on does
   * not connect a client that never connected, nor one that closed.
   *
   * Since: 0.2
   */
  properties[PROP_RECONNECT] =
    g_param_spec_boolean ("reconnect", NULL, NULL, FALSE, rw);

  g_object_class_install_properties (object_class, N_PROPS, properties);
  /* The limits, from the one table: the ids after N_PROPS. */
  _tether_limits_install (object_class, TETHER_LIMITS_CLIENT, N_PROPS);

  /**
   * TetherClient::disconnected:
   * @self: the client
   * @error: why the connection closed
   *
   * The connection closed. Pending calls have failed with
   * %G_IO_ERROR_CONNECTION_CLOSED.
   *
   * With [property@Tether.Client:reconnect] on, a connection the server
   * sent away ([signal@Tether.Client::going-away]) is no longer the
   * client's connection when it closes, and this is not emitted for
   * it; a connection lost without a goaway emits it, and the client
   * connects again.
   *
   * Since: 0.1
   */
  signals[SIGNAL_DISCONNECTED] =
    g_signal_new ("disconnected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);

  /**
   * TetherClient::going-away:
   * @self: the client
   * @deadline_ms: how long the server lets calls in progress run before it
   *   cancels them
   *
   * The server is draining (it is being stopped or restarted, see
   * tether_server_shutdown_async()): it answers new calls on this
   * connection with %TETHER_REMOTE_ERROR_UNAVAILABLE, lets those in
   * progress (and its callbacks) finish within @deadline_ms, and then
   * closes the connection. Connect again, to another instance behind the
   * same address, for new calls.
   *
   * Since: 0.2
   */
  signals[SIGNAL_GOING_AWAY] =
    g_signal_new ("going-away", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);

  /**
   * TetherClient::reconnected:
   * @self: the client
   *
   * With [property@Tether.Client:reconnect] on, a new connection replaced
   * one the server sent away or that was lost; calls that waited for it
   * are sent on it next. [method@Tether.Client.get_server_identity]
   * names the new server (behind a load balancer, perhaps another
   * instance). [property@Tether.Client:connected] is notified too.
   *
   * Since: 0.2
   */
  signals[SIGNAL_RECONNECTED] =
    g_signal_new ("reconnected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
tether_client_init (TetherClient *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->scheduler = _tether_scheduler_new (self->context);
  _tether_limits_init_values (TETHER_LIMITS_CLIENT, self->limits);
  self->methods = _tether_method_table_new ();
  /* The server may ask what this client answers; it is the only peer. */
  _tether_method_table_set_reserved (self->methods, "rpc.discover", "()", TETHER_ACCESS_ANY,
                                     _tether_client_discover_cb, self, NULL);
  self->expected_server_uid = -1;
  self->imp_policy = _tether_imp_policy_new (FALSE);
  self->retired = g_ptr_array_new_with_free_func (g_object_unref);
  g_queue_init (&self->queue);
}

/**
 * tether_client_new:
 * @uri: where to connect: `unix:/PATH`, `ws://HOST:PORT` or
 *   `wss://HOST:PORT`
 *
 * Creates a client on the thread-default main context. Nothing happens
 * until [method@Tether.Client.connect_async].
 *
 * Returns: (transfer full): a new #TetherClient
 *
 * Since: 0.1
 */
TetherClient *
tether_client_new (const char *uri)
{
  g_return_val_if_fail (uri != NULL, NULL);
  return g_object_new (TETHER_TYPE_CLIENT, "uri", uri, NULL);
}

/**
 * tether_client_get_statistics:
 * @self: a #TetherClient
 *
 * Sums the counters of this client's connections, the current one and
 * earlier ones.
 *
 * Returns: (transfer full): a snapshot of the client's counters
 *
 * Since: 0.1
 */
TetherStatistics *
tether_client_get_statistics (TetherClient *self)
{
  TetherStatistics *stats;

  g_return_val_if_fail (TETHER_IS_CLIENT (self), NULL);

  stats = tether_statistics_copy (&self->closed_stats);
  stats->connections = 0;
  if (self->conn != NULL)
    _tether_connection_add_statistics (self->conn, stats);
  for (guint i = 0; i < self->retired->len; i++)
    _tether_connection_add_statistics (self->retired->pdata[i], stats);
  return stats;
}

/**
 * tether_client_set_credentials:
 * @self: a #TetherClient
 * @username: (nullable): the user name, or %NULL to authenticate by the
 *   transport alone
 * @password: (nullable): the password
 *
 * Authenticates as @username in the hello of later connections, with
 * SCRAM-SHA-256-PLUS bound to the TLS channel on `wss://` (SCRAM-SHA-256
 * elsewhere, where the server allows it). Authentication is mutual: the
 * server proves it knows the user's secrets too.
 *
 * Since: 0.1
 */
void
tether_client_set_credentials (TetherClient *self,
                               const char   *username,
                               const char   *password)
{
  g_return_if_fail (TETHER_IS_CLIENT (self));
  g_return_if_fail ((username == NULL) == (password == NULL));

  g_free (self->username);
  self->username = g_strdup (username);
  if (self->password != NULL)
    memset (self->password, 0, strlen (self->password));
  g_free (self->password);
  self->password = g_strdup (password);
}

