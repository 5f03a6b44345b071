/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Calls out: every outgoing call, whichever way it goes, takes
 * _tether_connection_call_async(); a pending entry per call, its deadline
 * in the scheduler, its cancellation, and the one way it ends,
 * pending_complete(). The shape is GDBus's. */

#include <string.h>

#include "tether-engine-private.h"
#include "tether-error-private.h"
#include "tether-identity-private.h"
#include "tether-invocation-private.h"
#include "tether-log-private.h"

static void
pending_call_free (PendingCall *pc)
{
  g_assert (!_tether_deadline_is_queued (&pc->deadline));
  _tether_pool_release (&pc->slot);
  g_clear_object (&pc->task);
  g_free (pc);
}

/* The one way a pending call ends: reply, error reply, deadline,
 * cancellation, or teardown. Steals @result and @error. */
static void
pending_complete (PendingCall *pc,
                  GVariant    *result,
                  GError      *error)
{
  TetherConnection *self = pc->conn;
  GTask *task = g_steal_pointer (&pc->task);
  GCancellable *cancellable = g_task_get_cancellable (task);

  g_hash_table_steal (self->pending, &pc->id);
  _tether_scheduler_remove (self->scheduler, &pc->deadline);
  _tether_pool_release (&pc->slot);

  /* We may be inside the cancellable's own handler's idle, never inside
   * the handler itself, so disconnecting cannot deadlock. */
  if (pc->cancel_id != 0)
    g_cancellable_disconnect (cancellable, pc->cancel_id);
  _tether_invocation_remove_child (&pc->child);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, result, (GDestroyNotify) g_variant_unref);

  g_object_unref (task);
  pending_call_free (pc);
  _tether_connection_check_drained (self);
}

gboolean
_tether_connection_is_quarantined (TetherConnection *self)
{
  return _tether_policing_is_quarantined (&self->policing);
}

/* A callback this peer let time out, or answered late: the policing
 * decides, the connection reports and acts. */
static void
connection_strike (TetherConnection *self,
                   const char       *method,
                   gboolean          late)
{
  TetherMisbehavior reason = late ? TETHER_MISBEHAVIOR_LATE_ANSWERS : TETHER_MISBEHAVIOR_CALLBACK_TIMEOUTS;
  g_autofree char *details = NULL;

  switch (_tether_policing_strike (&self->policing, method, late, &details))
    {
    case TETHER_VERDICT_NONE:
      break;
    case TETHER_VERDICT_QUARANTINE:
      {
        g_autofree char *action = g_strdup_printf ("quarantined for %u ms", self->limits.quarantine_ms);

        _tether_connection_report (self, reason, details, action);
      }
      break;
    case TETHER_VERDICT_DISCONNECT:
    default:
      {
        g_autoptr(GError) error = g_error_new (TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                                               "Disconnected: %s", details);

        _tether_connection_report (self, reason, details, "disconnecting");
        _tether_connection_teardown (self, error);
      }
      break;
    }
}

static void
pending_deadline_cb (TetherDeadline *deadline)
{
  PendingCall *pc = (PendingCall *) deadline;
  TetherConnection *self = pc->conn;
  g_autofree char *method = g_strdup (g_task_get_name (pc->task) ? g_task_get_name (pc->task) : "the call");

  g_object_ref (self);
  self->stats.timed_out++;
  _tether_policing_abandon (&self->policing, pc->id);
  pending_complete (pc, NULL,
                    g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                 "No answer to %s within its deadline", method));
  if (self->role == TETHER_CONNECTION_ROLE_SERVER && self->state == STATE_OPEN)
    connection_strike (self, method, FALSE);
  g_object_unref (self);
}

/* What a cancellation needs to find its call: the task's data. */
typedef struct
{
  TetherConnection *conn;
  guint64           id;
} CallRef;

static gpointer
call_ref_new (TetherConnection *conn,
              guint64           id)
{
  CallRef *ref = g_new (CallRef, 1);

  ref->conn = g_object_ref (conn);
  ref->id = id;
  return ref;
}

static void
call_ref_free (gpointer data)
{
  CallRef *ref = data;

  g_object_unref (ref->conn);
  g_free (ref);
}

/* We stop waiting for @pc (cancelled, or evicted): it fails with @error,
 * a late answer will be recognised, and the callee is told, so that its
 * invocation's cancellable fires too. */
static void
pending_abandon (PendingCall *pc,
                 GError      *error)
{
  TetherConnection *self = pc->conn;
  guint64 id = pc->id;

  _tether_policing_abandon (&self->policing, id);
  pending_complete (pc, NULL, error);
  if (self->tether && _tether_connection_can_send (self))
    {
      GVariantDict params;

      g_variant_dict_init (&params, NULL);
      g_variant_dict_insert (&params, "id", "x", (gint64) id);
      _tether_connection_send_notification (self, "rpc.cancel", g_variant_dict_end (&params), NULL);
    }
}

static gboolean
pending_cancelled_idle (gpointer user_data)
{
  GTask *task = user_data;
  CallRef *ref = g_task_get_task_data (task);
  TetherConnection *self = ref != NULL ? ref->conn : NULL;
  guint64 id = ref != NULL ? ref->id : 0;
  PendingCall *pc = self != NULL ? g_hash_table_lookup (self->pending, &id) : NULL;

  /* The reply (or the deadline) may have won the race. */
  if (pc == NULL || pc->task != task)
    return G_SOURCE_REMOVE;
  pending_abandon (pc, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                            "The call was cancelled"));
  return G_SOURCE_REMOVE;
}

/* The server's callback pool is full and this peer's identity holds the
 * most of it: this callback gives way to a newcomer's. */
static void
pending_evicted (TetherPoolEntry *slot)
{
  PendingCall *pc = G_STRUCT_MEMBER_P (slot, -G_STRUCT_OFFSET (PendingCall, slot));
  TetherConnection *self = g_object_ref (pc->conn);
  g_autofree char *details = g_strdup_printf ("holds the most of the server's %u callback slots, "
                                              "which are all in use: its oldest callback (%s) "
                                              "gave way to another peer's",
                                              _tether_pool_get_max (self->callback_pool),
                                              g_task_get_name (pc->task));

  self->stats.rejected++;
  pending_abandon (pc, g_error_new (TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                                    "Too many callbacks in flight on this server: this peer "
                                    "holds the most, and this callback gave way to another "
                                    "peer's (limit %u)", _tether_pool_get_max (self->callback_pool)));
  _tether_connection_report (self, TETHER_MISBEHAVIOR_HOGGING, details, "cancelled that callback");
  g_object_unref (self);
}

/* May run in any thread: only schedules the idle on the task's context. */
static void
pending_cancelled_cb (GCancellable *cancellable,
                      gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(GSource) source = g_idle_source_new ();

  g_source_set_static_name (source, "[tether] cancel call");
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_task_attach_source (task, source, pending_cancelled_idle);
}

static void
pending_parent_cancelled (TetherChildCall *child)
{
  PendingCall *pc = G_STRUCT_MEMBER_P (child, -G_STRUCT_OFFSET (PendingCall, child));

  pending_cancelled_cb (NULL, pc->task);
}

void
_tether_connection_call_async (TetherConnection        *self,
                               const TetherCallOptions *options,
                               gpointer                 source_object,
                               gpointer                 source_tag,
                               GCancellable            *cancellable,
                               GAsyncReadyCallback      callback,
                               gpointer                 user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  PendingCall *pc;
  TetherMessage request = TETHER_MESSAGE_INIT;
  gint64 now = g_get_monotonic_time ();
  gint64 deadline;
  gint64 remaining_ms;
  guint timeout_ms;
  gboolean imp;
  TetherImpersonationLevel effective = TETHER_IMPERSONATION_LEVEL_IDENTIFY;
  const char *method = options->method;
  GVariant *params = options->params != NULL ? g_variant_ref_sink (options->params) : NULL;
  int timeout_msec = options->timeout_msec;
  TetherInvocation *parent = options->parent;
  TetherCredentials *act_as = options->act_as;
  TetherRequestSigner signer = options->signer;

  task = g_task_new (source_object, cancellable, callback, user_data);
  /* Named first: GLib's g_task_set_source_tag() macro names an unnamed
   * task after the tag, a copy made only to be replaced. */
  g_task_set_name (task, method);
  g_task_set_source_tag (task, source_tag);
  g_task_set_check_cancellable (task, TRUE);

  if (g_task_return_error_if_cancelled (task))
    goto out;

  if (!_tether_connection_can_send (self))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                               "The connection is closed");
      goto out;
    }

  /* Over a limit, fail at once: nothing queues. */
  if (_tether_connection_is_quarantined (self))
    {
      self->stats.rejected++;
      g_task_return_new_error (task, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                               "The peer is quarantined for letting callbacks time out");
      goto out;
    }
  if (g_hash_table_size (self->pending) >= self->limits.max_pending_calls)
    {
      self->stats.rejected++;
      g_task_return_new_error (task, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                               "Too many calls in flight on this connection (limit %u)",
                               self->limits.max_pending_calls);
      goto out;
    }

  /* Nothing is infinite: -1 means the default, anything above the
   * maximum is clamped to it, and a callback never outlives its cause. */
  timeout_ms = timeout_msec < 0 ? self->limits.default_timeout_ms
                                : MIN ((guint) timeout_msec, self->limits.max_timeout_ms);
  deadline = now + (gint64) timeout_ms * 1000;
  if (parent != NULL)
    {
      deadline = MIN (deadline, tether_invocation_get_deadline (parent));
      if (_tether_invocation_is_cancelled (parent))
        {
          g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                   "The call that caused this callback was cancelled");
          goto out;
        }
    }
  if (deadline <= now)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s",
                               timeout_ms == 0 ? "A timeout of 0 ms leaves no time for an answer"
                                               : "The deadline of the call that caused this callback has passed");
      goto out;
    }
  /* Rounded down: the callee never gets more than is left. */
  remaining_ms = (deadline - now) / 1000;

  pc = g_new0 (PendingCall, 1);
  pc->hard_deadline = now + (gint64) self->limits.max_timeout_ms * 1000;
  if (parent != NULL)
    pc->hard_deadline = MIN (pc->hard_deadline, tether_invocation_get_deadline (parent));
  pc->id = ++self->next_id;
  pc->conn = self;
  pc->budget_us = (guint32) (deadline - now);
  pc->task = g_object_ref (task);
  g_task_set_task_data (task, call_ref_new (self, pc->id), call_ref_free);

  /* The server's callbacks share one pool, charged per identity: when it
   * is full the heaviest identity gives way, never a newcomer. */
  if (self->callback_pool != NULL &&
      _tether_pool_acquire (self->callback_pool, &pc->slot, _tether_identity_get_pool_key (self->identity),
                            0, pending_evicted) != TETHER_POOL_GRANTED)
    {
      self->stats.rejected++;
      g_set_error (&error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                   "Too many callbacks in flight on this server (limit %u)",
                   _tether_pool_get_max (self->callback_pool));
      goto fail;
    }

  /* The level this request grants (never more than the owner's policy
   * allows), and the token from IMPERSONATE up. Handshake requests carry
   * none. */
  imp = self->tether && self->imp_policy != NULL && !g_str_has_prefix (method, "rpc.");
  if (imp)
    {
      effective = _tether_imp_policy_effective_level (self->imp_policy, self->identity,
                                                      options->max_level);
      /* GLib 2.74 formats a message before dropping it: ask first. */
      if (self->role == TETHER_CONNECTION_ROLE_SERVER &&
          !g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN))
        g_debug ("Callback %s to %s at impersonation level %s", method,
                 tether_identity_get_address (self->identity),
                 _tether_imp_level_to_string (effective));
    }

  request.kind = TETHER_MESSAGE_REQUEST;
  request.id.kind = TETHER_ID_INT;
  request.id.num = (gint64) pc->id;
  request.method = g_strdup (method);
  request.value = params != NULL ? g_variant_ref (params) : NULL;
  /* Tether peers get the budget left, the level granted and what goes
   * with it; plain JSON-RPC peers get none of it. */
  request.has_meta = self->tether;
  if (self->tether)
    request.meta.timeout_ms = remaining_ms;
  if (imp)
    {
      if (!_tether_imp_decorate (self->imp_policy, &request.meta, self->identity, effective, act_as,
                                 method, remaining_ms, &error))
        goto fail;
    }
  else if (act_as != NULL)
    {
      g_set_error_literal (&error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                           "A plain JSON-RPC peer cannot be presented credentials");
      goto fail;
    }
  if (signer != NULL)
    {
      g_autofree char *params_json = _tether_json_encode_params (params);

      /* Signed requests are Tether's own (detached callbacks). */
      g_assert (self->tether);
      request.meta.detached = signer (method, params_json, remaining_ms, options->signer_data, &error);
      if (request.meta.detached == NULL)
        goto fail;
    }

  if (!_tether_connection_send_message (self, &request, &error))
    goto fail;


  /* The send may have cut the peer off (backlog) and torn everything down. */
  if (self->state == STATE_CLOSED)
    {
      pc->task = NULL;
      g_object_unref (task);
      pending_call_free (pc);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "%s",
                               self->close_error ? self->close_error->message
                                                 : "The connection is closed");
      goto out;
    }

  g_hash_table_insert (self->pending, &pc->id, pc);
  _tether_scheduler_add (self->scheduler, &pc->deadline, deadline, pending_deadline_cb);
  self->stats.calls_sent++;

  if (cancellable != NULL)
    pc->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (pending_cancelled_cb),
                                           task, NULL);
  if (parent != NULL)
    {
      pc->child.cancel = pending_parent_cancelled;
      _tether_invocation_add_child (parent, &pc->child);
    }

out:
  _tether_message_clear (&request);
  g_clear_pointer (&params, g_variant_unref);
  return;

fail:
  pc->task = NULL;
  g_object_unref (task);
  pending_call_free (pc);
  g_task_return_error (task, g_steal_pointer (&error));
  goto out;
}

GVariant *
_tether_connection_call_finish (GAsyncResult  *result,
                                gpointer       source_tag,
                                GError       **error)
{
  g_return_val_if_fail (G_IS_TASK (result), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

void
_tether_connection_handle_response (TetherConnection *self,
                                    TetherMessage    *m)
{
  const TetherMessageId *id = &m->id;
  PendingCall *pc = NULL;
  guint64 key;
  g_autofree char *late_method = NULL;

  if (id->kind == TETHER_ID_INT && id->num > 0)
    {
      key = (guint64) id->num;
      pc = g_hash_table_lookup (self->pending, &key);
    }

  if (pc == NULL && id->kind == TETHER_ID_INT &&
      _tether_policing_take_abandoned (&self->policing, (guint64) id->num))
    {
      g_debug ("Ignoring a late answer to call %" G_GINT64_FORMAT, id->num);
      return;
    }

  if (pc == NULL)
    {
      g_autofree char *dump = _tether_message_id_to_string (id);
      g_autofree char *text = _tether_log_escape (dump, -1);

      /* Late (after a deadline or a cancel), duplicate or invented:
       * counted, logged once per connection, otherwise ignored. */
      self->stats.unsolicited_responses++;
      if (!self->warned_unsolicited)
        {
          g_autofree char *who = tether_identity_to_string (self->identity);

          self->warned_unsolicited = TRUE;
          _tether_log_limited (self->scheduler, G_LOG_LEVEL_MESSAGE, "unsolicited-response",
                               _tether_identity_get_pool_key (self->identity),
                               "Ignoring a response from %s for id %s, which is not pending "
                               "(a duplicate or invented; further ones are only counted)", who, text);
        }
      else
        g_debug ("Ignoring a response for unknown id %s", text);
      return;
    }

  /* Answered in the last part of its time without asking for a lease
   * (an honest client whose user takes time asks for one): a late
   * answer holds the server's slot as surely as none, so it strikes. */
  if (self->role == TETHER_CONNECTION_ROLE_SERVER && !pc->leased && self->state == STATE_OPEN &&
      _tether_policing_is_late (&self->policing,
                                g_get_monotonic_time () - (pc->deadline.when - pc->budget_us),
                                pc->budget_us))
    late_method = g_strdup (g_task_get_name (pc->task) ? g_task_get_name (pc->task) : "a callback");

  if (m->kind == TETHER_MESSAGE_RESULT)
    {
      GError *error = NULL;
      GVariant *result = _tether_payload_to_result (&m->payload, self->limits.max_depth, &error);

      pending_complete (pc, result, error);
    }
  else
    pending_complete (pc, NULL,
                      m->malformed ? g_error_new_literal (TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE, m->text)
                                   : g_error_new_literal (TETHER_REMOTE_ERROR, m->code, m->text));

  if (late_method != NULL && self->state == STATE_OPEN)
    connection_strike (self, late_method, TRUE);
}

/* A lease: the callee of one of our calls asks for more time (a person is
 * deciding). Granted up to the call's hard deadline, never past it. */
void
_tether_connection_handle_extend (TetherConnection *self,
                                  TetherMessage    *m)
{
  g_autoptr(GVariant) params = _tether_connection_control_params (self, m);
  PendingCall *pc = NULL;
  gint64 id = 0, ms = -1;
  guint64 key;
  gint64 deadline;

  if (params != NULL && g_variant_lookup (params, "id", "x", &id) && id > 0 &&
      g_variant_lookup (params, "timeout_ms", "x", &ms) && ms >= 0)
    {
      key = (guint64) id;
      pc = g_hash_table_lookup (self->pending, &key);
    }
  if (pc == NULL)
    {
      g_debug ("Ignoring a lease extension for no pending call");
      return;
    }

  pc->leased = TRUE;
  deadline = g_get_monotonic_time () + MIN (ms, G_MAXINT32) * 1000;
  deadline = MIN (deadline, pc->hard_deadline);
  if (deadline > pc->deadline.when)
    _tether_scheduler_add (self->scheduler, &pc->deadline, deadline, pending_deadline_cb);
}

void
_tether_connection_fail_pending (TetherConnection *self,
                                 const char       *reason)
{
  GHashTableIter iter;
  gpointer value;

  /* pending_complete() removes from the table; loop until empty. */
  while (g_hash_table_size (self->pending) > 0)
    {
      g_hash_table_iter_init (&iter, self->pending);
      if (g_hash_table_iter_next (&iter, NULL, &value))
        pending_complete (value, NULL,
                          g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                       "The connection closed before the answer came: %s", reason));
    }
}
