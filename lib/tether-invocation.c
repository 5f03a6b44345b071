/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * TetherInvocation:
 *
 * One incoming call: its method, parameters, caller, deadline and
 * cancellable, and the way to answer it.
 *
 * A handler added with [method@Tether.Server.add_method] or
 * [method@Tether.Client.add_method] receives an invocation and answers it
 * exactly once, with [method@Tether.Invocation.return_value] or one of
 * the error variants, now or later (keep a reference to answer later).
 * Answers after the first are ignored. An invocation finalized without an
 * answer is answered with -32603 and a warning that names the method.
 *
 * Every invocation has a deadline: the budget the caller sent, clamped to
 * this side's maximum. When it passes, or the caller cancels, or the
 * connection closes, [method@Tether.Invocation.get_cancellable] fires; on a
 * deadline the caller is answered -32001 at once.
 *
 * Callbacks made while handling a call go through
 * [method@Tether.Invocation.call_peer_async], which makes them inherit the
 * call's deadline and cancellation: a callback never outlives the call that
 * caused it.
 *
 * Invocations belong to the main context of the server or client that
 * received them; use them from that context only.
 *
 * Since: 0.1
 */

#include <string.h>

#include "tether-connection-private.h"
#include "tether-error-private.h"
#include "tether-identity-private.h"
#include "tether-impersonation-private.h"
#include "tether-invocation-private.h"
#include "tether-log-private.h"
#include "tether-peer.h"

struct _TetherInvocation
{
  GObject           parent_instance;

  TetherDeadline    deadline_entry;
  TetherConnection *conn;
  TetherPeer       *peer;
  char             *method;
  GVariant         *params;
  TetherMessageId   id;       /* ABSENT for a notification */
  char             *id_key;
  gint64            deadline;
  gint64            hard_deadline; /* leases stop here */
  GCancellable     *cancellable;    /* made when first asked for */
  GQueue            children;       /* TetherChildCall: callbacks made for it */
  gboolean          cancelled;
  gpointer          batch;
  gboolean          replied;
  TetherDetachedClaim *claim;      /* signed requests only */
  char             *signed_params;
  TetherImpersonationLevel imp_level;  /* what the caller granted */
  char             *token;          /* IMPERSONATE and up */
  TetherCredentials *acting_as;     /* verified "act_as", or NULL */
  TetherIdentity   *anonymous;      /* what ANONYMOUS shows */
  TetherPoolEntry   slot;           /* server: in the pool of incoming work */
};

G_DEFINE_FINAL_TYPE (TetherInvocation, tether_invocation, G_TYPE_OBJECT)

static void
invocation_finish_reply (TetherInvocation *self)
{
  self->replied = TRUE;
  _tether_pool_release (&self->slot);
  _tether_scheduler_remove (_tether_connection_get_scheduler (self->conn), &self->deadline_entry);
  _tether_connection_forget_invocation (self->conn, self->id_key, self);
}

/* Sinks a floating @result. */
static gboolean
invocation_reply (TetherInvocation *self,
                  GVariant         *result,
                  int               code,
                  const char       *message)
{
  gpointer batch = g_steal_pointer (&self->batch);

  if (self->replied)
    {
      g_debug ("Ignoring a second answer to %s", self->method);
      if (result != NULL)
        g_variant_unref (g_variant_ref_sink (result));
      return FALSE;
    }

  invocation_finish_reply (self);

  if (self->id.kind == TETHER_ID_ABSENT)
    {
      if (result != NULL)
        g_variant_unref (g_variant_ref_sink (result));
      return FALSE;
    }

  _tether_connection_send_reply (self->conn, batch, &self->id, result, code, message);
  return TRUE;
}

/* Takes every child out of the list; @cancel says whether to cancel them
 * or just let them run on. */
static void
release_children (TetherInvocation *self,
                  gboolean          cancel)
{
  GList *link;

  while ((link = g_queue_pop_head_link (&self->children)) != NULL)
    {
      TetherChildCall *child = link->data;

      child->parent = NULL;
      if (cancel)
        child->cancel (child);
    }
}

static gboolean
cancel_children_cb (gpointer user_data)
{
  release_children (user_data, TRUE);
  return G_SOURCE_REMOVE;
}

/* A handler may cancel the cancellable itself, from any thread: the
 * children are cancelled on the connection's context. */
static void
cancellable_cancelled_cb (GCancellable     *cancellable,
                          TetherInvocation *self)
{
  g_main_context_invoke_full (_tether_connection_get_context (self->conn), G_PRIORITY_DEFAULT,
                              cancel_children_cb, g_object_ref (self), g_object_unref);
}

/* Most calls are answered without anyone asking for the cancellable:
 * it is made on demand (tether_invocation_get_cancellable()), already
 * cancelled if the invocation was. */
static void
invocation_cancel (TetherInvocation *self)
{
  self->cancelled = TRUE;
  release_children (self, TRUE);
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
}

gboolean
_tether_invocation_is_cancelled (TetherInvocation *self)
{
  return self->cancelled || (self->cancellable != NULL && g_cancellable_is_cancelled (self->cancellable));
}

void
_tether_invocation_add_child (TetherInvocation *self,
                              TetherChildCall  *child)
{
  child->parent = self;
  child->link.data = child;
  g_queue_push_tail_link (&self->children, &child->link);
}

void
_tether_invocation_remove_child (TetherChildCall *child)
{
  if (child->parent == NULL)
    return;
  g_queue_unlink (&child->parent->children, &child->link);
  child->parent = NULL;
}

static void
invocation_deadline_cb (TetherDeadline *entry)
{
  TetherInvocation *self = G_STRUCT_MEMBER_P (entry, -G_STRUCT_OFFSET (TetherInvocation, deadline_entry));

  g_object_ref (self);
  invocation_reply (self, NULL, TETHER_REMOTE_ERROR_DEADLINE_EXCEEDED,
                    "The deadline passed before the call was answered");
  invocation_cancel (self);
  g_object_unref (self);
}

static void
tether_invocation_dispose (GObject *object)
{
  TetherInvocation *self = TETHER_INVOCATION (object);

  if (!self->replied && self->conn != NULL)
    {
      if (self->id.kind != TETHER_ID_ABSENT)
        _tether_log_limited (_tether_connection_get_scheduler (self->conn), G_LOG_LEVEL_WARNING,
                             "handler-dropped", NULL, "Handler for %s dropped its invocation without "
                             "answering; answering -32603", self->method);
      invocation_reply (self, NULL, TETHER_REMOTE_ERROR_INTERNAL_ERROR,
                        "The method's handler did not answer");
    }

  release_children (self, FALSE);
  _tether_pool_release (&self->slot);
  G_OBJECT_CLASS (tether_invocation_parent_class)->dispose (object);
}

static void
tether_invocation_finalize (GObject *object)
{
  TetherInvocation *self = TETHER_INVOCATION (object);

  g_clear_object (&self->peer);
  g_clear_object (&self->conn);
  g_clear_pointer (&self->method, g_free);
  g_clear_pointer (&self->params, g_variant_unref);
  _tether_message_id_clear (&self->id);
  g_clear_pointer (&self->id_key, g_free);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->claim, _tether_detached_claim_free);
  g_clear_pointer (&self->signed_params, g_free);
  g_clear_pointer (&self->token, g_free);
  g_clear_object (&self->acting_as);
  g_clear_object (&self->anonymous);

  G_OBJECT_CLASS (tether_invocation_parent_class)->finalize (object);
}

static void
tether_invocation_class_init (TetherInvocationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = tether_invocation_dispose;
  object_class->finalize = tether_invocation_finalize;
}

static void
tether_invocation_init (TetherInvocation *self)
{
  self->imp_level = TETHER_IMPERSONATION_LEVEL_IDENTIFY;
}

void
_tether_invocation_set_impersonation (TetherInvocation         *self,
                                      TetherImpersonationLevel  level,
                                      const char               *token,
                                      TetherCredentials        *acting_as)
{
  self->imp_level = level;
  g_clear_pointer (&self->token, g_free);
  if (level >= TETHER_IMPERSONATION_LEVEL_IMPERSONATE)
    self->token = g_strdup (token);
  g_set_object (&self->acting_as, acting_as);
  if (level == TETHER_IMPERSONATION_LEVEL_ANONYMOUS && self->anonymous == NULL)
    self->anonymous = _tether_identity_new_anonymous (
      tether_identity_get_transport (_tether_connection_get_identity (self->conn)));
}

TetherInvocation *
_tether_invocation_new (TetherConnection *conn,
                        const char       *method,
                        GVariant         *params,
                        TetherMessageId  *id,
                        char             *id_key,
                        gint64            deadline,
                        gpointer          batch)
{
  TetherInvocation *self = g_object_new (TETHER_TYPE_INVOCATION, NULL);

  self->conn = g_object_ref (conn);
  self->method = g_strdup (method);
  self->params = params;
  self->id = *id;
  memset (id, 0, sizeof *id);
  self->id_key = id_key;
  self->deadline = deadline;
  self->hard_deadline = g_get_monotonic_time () +
                        (gint64) _tether_connection_get_incoming_max_timeout (conn) * 1000;
  self->batch = batch;

  if (self->id.kind != TETHER_ID_ABSENT)
    _tether_scheduler_add (_tether_connection_get_scheduler (conn), &self->deadline_entry,
                           deadline, invocation_deadline_cb);
  return self;
}

void
_tether_invocation_cancel (TetherInvocation *self,
                           gboolean          suppress_reply)
{
  g_object_ref (self);
  if (suppress_reply && !self->replied)
    {
      gpointer batch = g_steal_pointer (&self->batch);

      invocation_finish_reply (self);
      /* A batch still needs its slot released to be sent. */
      if (batch != NULL)
        _tether_connection_send_reply (self->conn, batch, &self->id, NULL,
                                       TETHER_REMOTE_ERROR_CANCELLED, "Cancelled");
    }
  invocation_cancel (self);
  g_object_unref (self);
}

void
_tether_invocation_set_peer (TetherInvocation *self,
                             TetherPeer       *peer)
{
  g_set_object (&self->peer, peer);
}

void
_tether_invocation_set_signed (TetherInvocation    *self,
                               TetherDetachedClaim *claim,
                               char                *params_json)
{
  g_clear_pointer (&self->claim, _tether_detached_claim_free);
  g_clear_pointer (&self->signed_params, g_free);
  self->claim = claim;
  self->signed_params = params_json;
}

const TetherDetachedClaim *
_tether_invocation_get_claim (TetherInvocation *self)
{
  return self->claim;
}

char *
_tether_invocation_dup_params_json (TetherInvocation *self)
{
  return g_strdup (self->signed_params);
}

/**
 * tether_invocation_get_method_name:
 * @self: a #TetherInvocation
 *
 * Gets the name of the method called.
 *
 * Returns: (transfer none): the name of the method called
 *
 * Since: 0.1
 */
const char *
tether_invocation_get_method_name (TetherInvocation *self)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), NULL);
  return self->method;
}

/**
 * tether_invocation_get_parameters:
 * @self: a #TetherInvocation
 *
 * Gets the parameters. With a declared signature they have exactly that
 * type (named parameters fill the tuple by name); without one, named
 * parameters are `a{sv}` and positional ones `av` (see the mapping in
 * `docs/protocol.md`).
 *
 * Returns: (transfer none) (nullable): the parameters, or %NULL if the
 *   caller sent none and no signature was declared
 *
 * Since: 0.1
 */
GVariant *
tether_invocation_get_parameters (TetherInvocation *self)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), NULL);
  return self->params;
}

/**
 * tether_invocation_is_notification:
 * @self: a #TetherInvocation
 *
 * Tells whether the call is a notification, which takes no answer.
 *
 * Returns: %TRUE if the caller expects no answer (a JSON-RPC notification)
 *
 * Since: 0.1
 */
gboolean
tether_invocation_is_notification (TetherInvocation *self)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), FALSE);
  return self->id.kind == TETHER_ID_ABSENT;
}

/**
 * tether_invocation_get_peer:
 * @self: a #TetherInvocation
 *
 * Gets the peer that made the call, on a server.
 *
 * A caller that granted only %TETHER_IMPERSONATION_LEVEL_ANONYMOUS is not
 * reachable through its invocation: this returns %NULL (the peer object
 * would name it).
 *
 * Returns: (transfer none) (nullable): the calling peer, or %NULL on a
 *   client (where the caller is the server it connected to) and for
 *   anonymous calls
 *
 * Since: 0.1
 */
TetherPeer *
tether_invocation_get_peer (TetherInvocation *self)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), NULL);
  if (self->imp_level == TETHER_IMPERSONATION_LEVEL_ANONYMOUS)
    return NULL;
  return self->peer;
}

/**
 * tether_invocation_get_identity:
 * @self: a #TetherInvocation
 *
 * Gets who made the call, as far as the caller granted it.
 *
 * From %TETHER_IMPERSONATION_LEVEL_IDENTIFY up (the default) this is the
 * caller as the transport and authentication proved it. At
 * %TETHER_IMPERSONATION_LEVEL_ANONYMOUS it is an identity that names
 * nobody: not authenticated, no uid, gid, pid, address, certificate or
 * user name (only the transport kind). The server itself still accounts
 * for the call under the transport identity (limits, strikes, logs).
 *
 * Returns: (transfer none): who made the call, as far as the caller
 *   granted it
 *
 * Since: 0.1
 */
TetherIdentity *
tether_invocation_get_identity (TetherInvocation *self)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), NULL);
  if (self->imp_level == TETHER_IMPERSONATION_LEVEL_ANONYMOUS)
    return self->anonymous;
  return _tether_connection_get_identity (self->conn);
}

/**
 * tether_invocation_get_impersonation_level:
 * @self: a #TetherInvocation
 *
 * Gets the impersonation level the caller granted on this call. A request
 * that does not say (every plain JSON-RPC peer) grants
 * %TETHER_IMPERSONATION_LEVEL_IDENTIFY.
 *
 * Returns: the level granted
 *
 * Since: 0.1
 */
TetherImpersonationLevel
tether_invocation_get_impersonation_level (TetherInvocation *self)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  return self->imp_level;
}

/**
 * tether_invocation_impersonate:
 * @self: a #TetherInvocation
 * @error: return location for a #GError
 *
 * Gets the token the caller granted, to act as the caller towards Tether
 * services that trust its issuer (present it with
 * [method@Tether.Client.call_full_async]). Only a caller that granted
 * %TETHER_IMPERSONATION_LEVEL_IMPERSONATE or more sends one; below that
 * no token ever crossed the wire and this fails with
 * %TETHER_ERROR_IMPERSONATION_DENIED.
 *
 * The credentials are parsed, not verified: whoever they are presented to
 * verifies them.
 *
 * Returns: (transfer full): the credentials, or %NULL with @error set
 *
 * Since: 0.1
 */
TetherCredentials *
tether_invocation_impersonate (TetherInvocation  *self,
                               GError           **error)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (self->imp_level < TETHER_IMPERSONATION_LEVEL_IMPERSONATE)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                   "The caller granted impersonation level %s; acting as it needs impersonate",
                   _tether_imp_level_to_string (self->imp_level));
      return NULL;
    }
  if (self->token == NULL)
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                           "The caller sent no impersonation token");
      return NULL;
    }
  return _tether_credentials_new_from_token (self->token, error);
}

/**
 * tether_invocation_get_acting_as:
 * @self: a #TetherInvocation
 *
 * Gets whom the caller acts as on this call: the credentials it presented,
 * verified before the handler ran (trusted issuer, signature with the
 * issuer key's algorithm, the caller is the token's holder, audience,
 * expiry). Calls with invalid credentials never reach a handler: they are
 * answered -32006.
 *
 * Returns: (transfer none) (nullable): the verified credentials, or %NULL
 *   if the caller acts as itself
 *
 * Since: 0.1
 */
TetherCredentials *
tether_invocation_get_acting_as (TetherInvocation *self)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), NULL);
  return self->acting_as;
}

/**
 * tether_invocation_get_deadline:
 * @self: a #TetherInvocation
 *
 * Gets the call's deadline.
 *
 * Returns: the deadline, in the time base of g_get_monotonic_time()
 *
 * Since: 0.1
 */
gint64
tether_invocation_get_deadline (TetherInvocation *self)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), 0);
  return self->deadline;
}

/**
 * tether_invocation_get_remaining_ms:
 * @self: a #TetherInvocation
 *
 * Gets what is left of the call's budget.
 *
 * Returns: the milliseconds left before the deadline, 0 once it passed
 *
 * Since: 0.1
 */
gint64
tether_invocation_get_remaining_ms (TetherInvocation *self)
{
  gint64 left;

  g_return_val_if_fail (TETHER_IS_INVOCATION (self), 0);
  left = self->deadline - g_get_monotonic_time ();
  return left > 0 ? left / 1000 : 0;
}

/**
 * tether_invocation_get_cancellable:
 * @self: a #TetherInvocation
 *
 * Gets the cancellable that fires when the caller cancels, the deadline
 * passes or the connection closes. Pass it to the operations the handler
 * starts.
 *
 * Returns: (transfer none): the invocation's cancellable
 *
 * Since: 0.1
 */
GCancellable *
tether_invocation_get_cancellable (TetherInvocation *self)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), NULL);
  if (self->cancellable == NULL)
    {
      self->cancellable = g_cancellable_new ();
      if (self->cancelled)
        g_cancellable_cancel (self->cancellable);
      g_signal_connect_object (self->cancellable, "cancelled", G_CALLBACK (cancellable_cancelled_cb),
                               self, 0);
    }
  return self->cancellable;
}

/**
 * tether_invocation_call_peer_async:
 * @self: a #TetherInvocation
 * @method: the method to call on the caller
 * @params: (nullable): the parameters (a tuple travels as a JSON array,
 *   `a{sv}` as an object); a floating reference is sunk
 * @timeout_msec: the timeout in milliseconds, or -1 for the default; it
 *   is clamped to the maximum and to what is left of this call's deadline
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the answer arrives
 * @user_data: (closure): data for @callback
 *
 * Calls the caller back while handling its call. The callback inherits
 * this call's deadline and cancellation: it fails with
 * %G_IO_ERROR_CANCELLED when this invocation is cancelled and with
 * %G_IO_ERROR_TIMED_OUT when this call's deadline passes.
 *
 * Since: 0.1
 */
void
tether_invocation_call_peer_async (TetherInvocation    *self,
                                   const char          *method,
                                   GVariant            *params,
                                   int                  timeout_msec,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  TetherCallOptions options = TETHER_CALL_OPTIONS_INIT;

  g_return_if_fail (TETHER_IS_INVOCATION (self));
  g_return_if_fail (method != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  options.method = method;
  options.params = params;
  options.timeout_msec = timeout_msec;
  options.parent = self;
  _tether_connection_call_async (self->conn, &options, self, tether_invocation_call_peer_async,
                                 cancellable, callback, user_data);
}

/**
 * tether_invocation_call_peer_finish:
 * @self: a #TetherInvocation
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes a callback started with
 * [method@Tether.Invocation.call_peer_async].
 *
 * Returns: (transfer full): the result, or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tether_invocation_call_peer_finish (TetherInvocation  *self,
                                    GAsyncResult      *result,
                                    GError           **error)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return _tether_connection_call_finish (result, tether_invocation_call_peer_async, error);
}

/**
 * tether_invocation_call_peer_full_async:
 * @self: a #TetherInvocation
 * @method: the method to call on the caller
 * @params: (nullable): the parameters, as for
 *   [method@Tether.Invocation.call_peer_async]; a floating reference is sunk
 * @level: the impersonation level to grant on this callback; it can only
 *   lower the level the connection's owner grants (for a server, what
 *   [method@Tether.Peer.get_callback_impersonation_level] gives), never
 *   raise it
 * @act_as: (nullable): credentials to present, to act as their subject
 *   (from [method@Tether.Invocation.impersonate]); the caller checks them
 *   and refuses the callback (-32006) if they are not valid
 * @timeout_msec: the timeout in milliseconds, or -1 for the default; it
 *   is clamped to the maximum and to what is left of this call's deadline
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the answer arrives
 * @user_data: (closure): data for @callback
 *
 * Calls the caller back while handling its call, as
 * [method@Tether.Invocation.call_peer_async] does (same deadline and
 * cancellation), granting at most @level and optionally acting as someone
 * else.
 *
 * Since: 0.1
 */
void
tether_invocation_call_peer_full_async (TetherInvocation         *self,
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

  g_return_if_fail (TETHER_IS_INVOCATION (self));
  g_return_if_fail (method != NULL);
  g_return_if_fail (level <= TETHER_IMPERSONATION_LEVEL_DELEGATE);
  g_return_if_fail (act_as == NULL || TETHER_IS_CREDENTIALS (act_as));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  options.method = method;
  options.params = params;
  options.timeout_msec = timeout_msec;
  options.parent = self;
  options.max_level = level;
  options.act_as = act_as;
  _tether_connection_call_async (self->conn, &options, self,
                                 tether_invocation_call_peer_full_async,
                                 cancellable, callback, user_data);
}

/**
 * tether_invocation_call_peer_full_finish:
 * @self: a #TetherInvocation
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Tether.Invocation.call_peer_full_async], with the
 * errors of [method@Tether.Invocation.call_peer_finish], plus
 * %TETHER_ERROR_IMPERSONATION_DENIED when the level cannot be granted.
 *
 * Returns: (transfer full): the result, or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tether_invocation_call_peer_full_finish (TetherInvocation  *self,
                                         GAsyncResult      *result,
                                         GError           **error)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return _tether_connection_call_finish (result, tether_invocation_call_peer_full_async, error);
}

/**
 * tether_invocation_return_value:
 * @self: a #TetherInvocation
 * @value: (nullable): the result; %NULL answers JSON `null`; a floating
 *   reference is sunk
 *
 * Answers the call with a result. Results are mapped as given (see the
 * mapping in `docs/protocol.md`): a tuple becomes a JSON array.
 *
 * Since: 0.1
 */
void
tether_invocation_return_value (TetherInvocation *self,
                                GVariant         *value)
{
  g_return_if_fail (TETHER_IS_INVOCATION (self));

  invocation_reply (self, value != NULL ? value : g_variant_new ("mv", NULL), 0, NULL);
}

/**
 * tether_invocation_return_error_literal:
 * @self: a #TetherInvocation
 * @code: the JSON-RPC error code (applications use codes outside
 *   -32768…-32000; see [error@Tether.RemoteError] for Tether's)
 * @message: the error message
 *
 * Answers the call with an error.
 *
 * Since: 0.1
 */
void
tether_invocation_return_error_literal (TetherInvocation *self,
                                        int               code,
                                        const char       *message)
{
  g_return_if_fail (TETHER_IS_INVOCATION (self));
  g_return_if_fail (message != NULL);

  invocation_reply (self, NULL, code, message);
}

/**
 * tether_invocation_return_error: (skip)
 * @self: a #TetherInvocation
 * @code: the JSON-RPC error code
 * @format: printf()-style format of the message
 * @...: arguments for @format
 *
 * Answers the call with an error and a formatted message.
 *
 * Since: 0.1
 */
void
tether_invocation_return_error (TetherInvocation *self,
                                int               code,
                                const char       *format,
                                ...)
{
  g_autofree char *message = NULL;
  va_list args;

  g_return_if_fail (TETHER_IS_INVOCATION (self));
  g_return_if_fail (format != NULL);

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  invocation_reply (self, NULL, code, message);
}

/**
 * tether_invocation_return_gerror:
 * @self: a #TetherInvocation
 * @error: the error
 *
 * Answers the call with @error: %TETHER_REMOTE_ERROR keeps its code,
 * %TETHER_ERROR and the GIO cancellation and timeout codes map to their
 * JSON-RPC codes (`docs/protocol.md`), anything else is -32603. The
 * message is sent as is.
 *
 * Since: 0.1
 */
void
tether_invocation_return_gerror (TetherInvocation *self,
                                 const GError     *error)
{
  g_return_if_fail (TETHER_IS_INVOCATION (self));
  g_return_if_fail (error != NULL);

  invocation_reply (self, NULL, _tether_error_to_wire_code (error), error->message);
}

/**
 * tether_invocation_has_replied:
 * @self: a #TetherInvocation
 *
 * Tells whether the call has been answered.
 *
 * Returns: whether the call was answered (or no longer needs an answer:
 *   cancelled, timed out, or its connection closed)
 *
 * Since: 0.1
 */
gboolean
tether_invocation_has_replied (TetherInvocation *self)
{
  g_return_val_if_fail (TETHER_IS_INVOCATION (self), FALSE);
  return self->replied;
}

/**
 * tether_invocation_extend_deadline:
 * @self: a #TetherInvocation
 * @timeout_msec: how long from now the caller should keep waiting
 * @error: return location for a #GError
 *
 * Asks the caller for more time: a lease, for a call that waits on a
 * person (a question shown to the user). The caller extends its deadline
 * to @timeout_msec from now, but never past its own maximum for the call
 * ([property@Tether.Server:max-callback-timeout] for a callback), nor past
 * the deadline of the call that caused the callback; this invocation's
 * deadline moves the same way, within this side's maximum. Call it again
 * while the person is still deciding. Nothing is ever infinite.
 *
 * Fails if the call was already answered, is a notification, or the
 * caller speaks plain JSON-RPC (it cannot be told).
 *
 * Returns: %TRUE if the extension was sent
 *
 * Since: 0.1
 */
gboolean
tether_invocation_extend_deadline (TetherInvocation  *self,
                                   guint              timeout_msec,
                                   GError           **error)
{
  gint64 deadline;

  g_return_val_if_fail (TETHER_IS_INVOCATION (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->replied || self->id.kind == TETHER_ID_ABSENT)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                           self->id.kind == TETHER_ID_ABSENT ? "A notification has no deadline to extend"
                                            : "The call was already answered or cancelled");
      return FALSE;
    }

  if (!_tether_connection_send_extend (self->conn, &self->id, timeout_msec, error))
    return FALSE;

  deadline = MIN (g_get_monotonic_time () + (gint64) timeout_msec * 1000, self->hard_deadline);
  if (deadline > self->deadline)
    {
      self->deadline = deadline;
      _tether_scheduler_add (_tether_connection_get_scheduler (self->conn), &self->deadline_entry,
                             deadline, invocation_deadline_cb);
    }
  return TRUE;
}

TetherConnection *
_tether_invocation_get_connection (TetherInvocation *self)
{
  return self->conn;
}

TetherPoolEntry *
_tether_invocation_get_pool_entry (TetherInvocation *self)
{
  return &self->slot;
}

TetherInvocation *
_tether_invocation_from_pool_entry (TetherPoolEntry *entry)
{
  return G_STRUCT_MEMBER_P (entry, -G_STRUCT_OFFSET (TetherInvocation, slot));
}
