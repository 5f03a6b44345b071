/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The connection core. Everything runs on the context that was
 * thread-default when the connection was made (the owner's). Outgoing
 * calls and incoming invocations are tracked here and nowhere else; the
 * single teardown path is connection_teardown(). */

#include <string.h>

#include "tether-auth-private.h"
#include "tether-connection-private.h"
#include "tether-handshake-private.h"
#include "tether-policing-private.h"
#include "tether-error-private.h"
#include "tether-identity-private.h"
#include "tether-impersonation-private.h"
#include "tether-invocation-private.h"
#include "tether-log-private.h"
#include "tether-version.h"

typedef enum
{
  STATE_NEW,
  STATE_HELLO,    /* server: tether.v1 peer, waiting for rpc.tether.hello */
  STATE_AUTH,     /* server: SASL under way in rpc.tether.auth steps */
  STATE_OPEN,
  STATE_CLOSING,  /* close frame sent, waiting for the peer's */
  STATE_CLOSED,
} ConnectionState;

/* A call in flight. Small on purpose (DESIGN.md: under 1 KiB per pending
 * call, everything included): no timer of its own, just a heap slot. */
typedef struct
{
  TetherDeadline    deadline;   /* first: the scheduler hands it back */
  guint64           id;
  GTask            *task;
  TetherConnection *conn;       /* unowned: the table is the conn's */
  TetherChildCall   child;        /* of the invocation it was made for */
  gint64            hard_deadline; /* leases never extend past this */
  gulong            cancel_id;
  guint             leased : 1;     /* the callee asked for more time */
  /* The time it was given, µs (at most max-callback-timeout, 600 s):
   * without a lease it started at deadline.when - budget_us. */
  guint32           budget_us;
  TetherPoolEntry   slot;       /* server: its place in the callback pool */
} PendingCall;

/* The responses of one incoming batch, sent together once every request
 * in it was answered (JSON-RPC 2.0 §6). */
typedef struct
{
  int               refs;
  GString          *responses; /* "[r1,r2" so far; NULL before the first */
  TetherConnection *conn;
} Batch;

struct _TetherConnection
{
  GObject                            parent_instance;

  TetherConnectionRole               role;
  ConnectionState                    state;
  GMainContext                      *context;
  TetherScheduler                   *scheduler;
  TetherLimits                       limits;
  TetherMethodTable                 *methods;     /* the owner's */
  const TetherConnectionOwnerFuncs  *owner_funcs;
  gpointer                           owner;       /* unowned */
  TetherPeer                        *public;      /* unowned */
  TetherImpPolicy                   *imp_policy;  /* the owner's, shared */

  TetherWebsocket                   *ws;
  TetherGuardStream                 *guard;
  TetherIdentity                    *identity;
  gulong                             guard_violation_id;
  gboolean                           tether;      /* peer speaks tether.v1 */
  gboolean                           binary;      /* both hellos listed "binary"; used once open */
  gboolean                           pool_full;   /* a notification ran uncharged: wait for room */

  GHashTable                        *pending;     /* &id → PendingCall* */
  guint64                            next_id;
  GHashTable                        *incoming;    /* id key → TetherInvocation* (unowned) */
  GHashTable                        *notifications; /* TetherInvocation* (unowned) still held */

  TetherPool                        *callback_pool; /* server: all its peers' callbacks */
  TetherPool                        *invocation_pool; /* server: all its peers' incoming work */
  TetherDeadline                     flood_deadline; /* not reading for lack of room since */
  TetherAuthPolicy                  *auth_policy; /* server */
  TetherHelloServer                 *hello;       /* server: until the peer is in */
  GPtrArray                         *hello_extensions; /* the owner's, until the hello */
  TetherDeadline                     handshake_deadline;
  TetherDeadline                     idle_deadline; /* keepalive and idle check */
  guint64                            idle_bytes;  /* bytes read at the last check */
  gint64                             last_heard;  /* when a check last found new bytes */
  guint64                            idle_frames; /* frames heard (pongs aside) then */
  TetherPolicing                     policing;    /* strikes, quarantine, abandoned ids */
  gboolean                           warned_unsolicited;
  TetherStatistics                   stats;       /* counters kept here; bytes from the guard */
  TetherDeadline                     close_deadline;
  gboolean                           closing;     /* polite close in progress */
  GError                            *close_error;
  guint64                            bytes_handed; /* to the WebSocket, framing included */
};

G_DEFINE_FINAL_TYPE (TetherConnection, _tether_connection, G_TYPE_OBJECT)

static void connection_teardown (TetherConnection *self, const GError *error);
static void pending_complete    (PendingCall *pc, GVariant *result, GError *error);

/* ---------------------------------------------------------------------- */
/* Sending                                                                */

static gsize
ws_frame_overhead (TetherConnection *self,
                   gsize             len)
{
  gsize header = len < 126 ? 2 : len < 65536 ? 4 : 10;

  /* Clients mask their frames. */
  return header + (self->role == TETHER_CONNECTION_ROLE_CLIENT ? 4 : 0);
}

static gboolean
connection_can_send (TetherConnection *self)
{
  return (self->state == STATE_HELLO || self->state == STATE_AUTH || self->state == STATE_OPEN) &&
         self->ws != NULL &&
         _tether_websocket_get_state (self->ws) == TETHER_WEBSOCKET_OPEN;
}

/* One log line (or the owner's signal and log line) per action taken,
 * naming the peer and the evidence. Taking the action is the caller's. */
static void
connection_report (TetherConnection  *self,
                   TetherMisbehavior  reason,
                   const char        *details,
                   const char        *action)
{
  self->stats.peers_cut_off++;
  if (self->owner_funcs != NULL && self->owner_funcs->misbehaved != NULL)
    self->owner_funcs->misbehaved (self->owner, self, reason, details, action);
  else
    {
      g_autofree char *who = tether_identity_to_string (self->identity);

      _tether_log_limited (self->scheduler, G_LOG_LEVEL_MESSAGE, "peer-misbehaved",
                           _tether_identity_get_pool_key (self->identity), "Peer %s misbehaved: %s; %s", who, details, action);
    }
}

static void
connection_check_backlog (TetherConnection *self)
{
  guint64 written = _tether_guard_stream_get_bytes_written (self->guard);
  guint64 backlog = self->bytes_handed > written ? self->bytes_handed - written : 0;

  if (backlog > self->limits.max_unsent_bytes)
    {
      g_autoptr(GError) error = NULL;

      g_set_error (&error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                   "Peer stopped reading: %" G_GUINT64_FORMAT " bytes unsent "
                   "(limit %u)",
                   backlog, self->limits.max_unsent_bytes);
      connection_report (self, TETHER_MISBEHAVIOR_STOPPED_READING, error->message, "disconnecting");
      connection_teardown (self, error);
    }
}

/* Every message Tether sends is encoded into one GString (JSON-RPC text
 * or a binary frame; connection_encode() picks) and goes out here.
 * Consumes @text. */
static gboolean
connection_send (TetherConnection  *self,
                 GString           *text,
                 gboolean           binary,
                 GError           **error)
{
  gsize len = text->len;

  if (!connection_can_send (self))
    {
      g_string_free (text, TRUE);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                           "The connection is closed");
      return FALSE;
    }

  if (len > self->limits.max_message_size)
    {
      g_string_free (text, TRUE);
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_MESSAGE_TOO_LARGE,
                   "Message of %" G_GSIZE_FORMAT " bytes is larger than the "
                   "limit of %u bytes", len, self->limits.max_message_size);
      return FALSE;
    }

  self->bytes_handed += len + ws_frame_overhead (self, len);
  _tether_websocket_send (self->ws, binary, text->str, len);
  g_string_free (text, TRUE);
  connection_check_backlog (self);

  return TRUE;
}

/* Binary frames go only to a peer that asked for them, once open. */
static gboolean
connection_binary (TetherConnection *self)
{
  return self->binary && self->state == STATE_OPEN;
}

/* The one place a format is chosen: a binary frame for what fits one,
 * when the peer asked for them; JSON-RPC text for the rest. */
static GString *
connection_encode (TetherConnection    *self,
                   const TetherMessage *message,
                   gboolean            *binary)
{
  GString *text;

  *binary = connection_binary (self) && _tether_frame_fits (message);
  if (*binary)
    return _tether_frame_encode (message);
  text = g_string_sized_new (128);
  _tether_json_encode (text, message);
  return text;
}

static gboolean
connection_send_message (TetherConnection     *self,
                         const TetherMessage  *message,
                         GError              **error)
{
  gboolean binary;
  GString *out = connection_encode (self, message, &binary);

  return connection_send (self, out, binary, error);
}

/* A response: @result (a floating reference is sunk), or if it is NULL
 * the error. */
static void
response_init (TetherMessage         *message,
               const TetherMessageId *id,
               GVariant              *result,
               int                    error_code,
               const char            *error_message)
{
  _tether_message_init (message);
  _tether_message_id_copy (&message->id, id);
  if (result != NULL)
    {
      message->kind = TETHER_MESSAGE_RESULT;
      message->value = g_variant_ref_sink (result);
    }
  else
    {
      message->kind = TETHER_MESSAGE_ERROR;
      message->code = error_code;
      message->text = g_strdup (error_message);
    }
}

/* Sends a response, or on a failure to fit, the error the caller is
 * still owed. @text holds one response. */
static void
send_response (TetherConnection      *self,
               const TetherMessageId *id,
               GString               *text,
               gboolean               binary)
{
  g_autoptr(GError) error = NULL;

  if (!connection_send (self, text, binary, &error))
    {
      g_debug ("Response not sent: %s", error->message);

      /* An answer that does not fit still owes the caller an answer. */
      if (g_error_matches (error, TETHER_ERROR, TETHER_ERROR_MESSAGE_TOO_LARGE))
        {
          TetherMessage fallback;

          response_init (&fallback, id, NULL, TETHER_REMOTE_ERROR_INTERNAL_ERROR, error->message);
          connection_send_message (self, &fallback, NULL);
          _tether_message_clear (&fallback);
        }
    }
}

static void
batch_unref (Batch *batch)
{
  static const TetherMessageId none = { TETHER_ID_ABSENT, 0, NULL };

  if (--batch->refs > 0)
    return;

  if (batch->responses != NULL)
    {
      g_string_append_c (batch->responses, ']');
      send_response (batch->conn, &none, g_steal_pointer (&batch->responses), FALSE);
    }
  g_object_unref (batch->conn);
  g_free (batch);
}

/* Every answer to an incoming request goes through here, batched or not:
 * @result (a floating reference is sunk) or, if it is NULL, the error. */
void
_tether_connection_send_reply (TetherConnection      *self,
                               gpointer               batch_ptr,
                               const TetherMessageId *id,
                               GVariant              *result,
                               int                    error_code,
                               const char            *error_message)
{
  Batch *batch = batch_ptr;
  TetherMessage response;

  response_init (&response, id, result, error_code, error_message);
  if (batch != NULL)
    {
      /* A batch's answers go together, as JSON. */
      if (batch->responses == NULL)
        batch->responses = g_string_new ("[");
      else
        g_string_append_c (batch->responses, ',');
      _tether_json_encode (batch->responses, &response);
      batch_unref (batch);
    }
  else
    {
      gboolean binary;
      GString *text = connection_encode (self, &response, &binary);

      send_response (self, id, text, binary);
    }
  _tether_message_clear (&response);
}

/* Answers a request Tether itself refused (no invocation was made). */
static void
reply_error (TetherConnection      *self,
             Batch                 *batch,
             const TetherMessageId *id,
             int                    code,
             const char            *message)
{
  if (batch != NULL)
    batch->refs++;
  _tether_connection_send_reply (self, batch, id, NULL, code, message);
}

/* A notification of Tether's own (rpc.cancel, rpc.tether.extend). Sinks
 * a floating @params. */
static gboolean
send_control (TetherConnection  *self,
              const char        *method,
              GVariant          *params,
              GError           **error)
{
  TetherMessage message = TETHER_MESSAGE_INIT;
  gboolean sent;

  message.kind = TETHER_MESSAGE_REQUEST;
  message.method = g_strdup (method);
  message.value = g_variant_ref_sink (params);
  sent = connection_send_message (self, &message, error);
  _tether_message_clear (&message);
  return sent;
}

/* ---------------------------------------------------------------------- */
/* Outgoing calls                                                         */

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
}

static gboolean
connection_quarantined (TetherConnection *self)
{
  return _tether_policing_is_quarantined (&self->policing);
}

gboolean
_tether_connection_is_quarantined (TetherConnection *self)
{
  return connection_quarantined (self);
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

        connection_report (self, reason, details, action);
      }
      break;
    case TETHER_VERDICT_DISCONNECT:
    default:
      {
        g_autoptr(GError) error = g_error_new (TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                                               "Disconnected: %s", details);

        connection_report (self, reason, details, "disconnecting");
        connection_teardown (self, error);
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
  if (self->tether && connection_can_send (self))
    {
      GVariantDict params;

      g_variant_dict_init (&params, NULL);
      g_variant_dict_insert (&params, "id", "x", (gint64) id);
      send_control (self, "rpc.cancel", g_variant_dict_end (&params), NULL);
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
  connection_report (self, TETHER_MISBEHAVIOR_HOGGING, details, "cancelled that callback");
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

  if (!connection_can_send (self))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                               "The connection is closed");
      goto out;
    }

  /* Over a limit, fail at once: nothing queues. */
  if (connection_quarantined (self))
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

  if (!connection_send_message (self, &request, &error))
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

gboolean
_tether_connection_send_notification (TetherConnection  *self,
                                      const char        *method,
                                      GVariant          *params,
                                      GError           **error)
{
  TetherMessage message = TETHER_MESSAGE_INIT;
  gboolean sent;

  message.kind = TETHER_MESSAGE_REQUEST;
  message.method = g_strdup (method);
  message.value = params != NULL ? g_variant_ref_sink (params) : NULL;
  sent = connection_send_message (self, &message, error);
  _tether_message_clear (&message);
  return sent;
}

/* ---------------------------------------------------------------------- */
/* Incoming messages                                                      */

static void
handle_response (TetherConnection *self,
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

/* Tether's own requests carry small objects: read them as a{sv}. */
static GVariant *
control_params (TetherConnection *self,
                TetherMessage    *m)
{
  GVariant *params = _tether_payload_to_params (&m->payload, NULL, NULL, self->limits.max_depth, NULL);

  if (params != NULL && !g_variant_is_of_type (params, G_VARIANT_TYPE_VARDICT))
    g_clear_pointer (&params, g_variant_unref);
  return params;
}

static void
handle_rpc_cancel (TetherConnection *self,
                   TetherMessage    *m)
{
  g_autoptr(GVariant) params = control_params (self, m);
  g_autoptr(GVariant) id = params != NULL ? g_variant_lookup_value (params, "id", NULL) : NULL;
  TetherMessageId cancelled = { TETHER_ID_ABSENT, 0, NULL };
  g_autofree char *key = NULL;
  TetherInvocation *invocation;

  if (id != NULL && g_variant_is_of_type (id, G_VARIANT_TYPE_INT64))
    {
      cancelled.kind = TETHER_ID_INT;
      cancelled.num = g_variant_get_int64 (id);
    }
  else if (id != NULL && g_variant_is_of_type (id, G_VARIANT_TYPE_STRING))
    {
      cancelled.kind = TETHER_ID_STRING;
      cancelled.str = (char *) g_variant_get_string (id, NULL);
    }
  else
    return;

  key = _tether_message_id_key (&cancelled);
  invocation = g_hash_table_lookup (self->incoming, key);
  if (invocation != NULL)
    _tether_invocation_cancel (invocation, TRUE);
}

/* A lease: the callee of one of our calls asks for more time (a person is
 * deciding). Granted up to the call's hard deadline, never past it. */
static void
handle_extend (TetherConnection *self,
               TetherMessage    *m)
{
  g_autoptr(GVariant) params = control_params (self, m);
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

gboolean
_tether_connection_send_extend (TetherConnection       *self,
                                const TetherMessageId  *id,
                                guint                   timeout_ms,
                                GError                **error)
{
  GVariantBuilder params;

  if (!self->tether)
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_FAILED,
                           "The caller speaks plain JSON-RPC and cannot extend deadlines");
      return FALSE;
    }
  g_variant_builder_init (&params, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&params, "{sv}", "id", id->kind == TETHER_ID_INT ? g_variant_new_int64 (id->num)
                                                                           : g_variant_new_string (id->str));
  g_variant_builder_add (&params, "{sv}", "timeout_ms", g_variant_new_int64 (timeout_ms));
  return send_control (self, "rpc.tether.extend", g_variant_builder_end (&params), error);
}

guint
_tether_connection_get_incoming_max_timeout (TetherConnection *self)
{
  return self->limits.incoming_max_timeout_ms;
}

GBytes *
_tether_connection_get_channel_binding (TetherConnection  *self,
                                        GError           **error)
{
  GIOStream *base = _tether_guard_stream_get_base (self->guard);
  g_autoptr(GByteArray) data = NULL;

  if (!G_IS_TLS_CONNECTION (base))
    return NULL;

  /* tls-exporter (RFC 9266): TLS 1.3, or TLS 1.2 with extended master
   * secret. tls-unique is never used. */
  data = g_byte_array_new ();
  if (!g_tls_connection_get_channel_binding_data (G_TLS_CONNECTION (base),
                                                  G_TLS_CHANNEL_BINDING_TLS_EXPORTER,
                                                  data, error))
    return NULL;
  return g_byte_array_free_to_bytes (g_steal_pointer (&data));
}

/* The hello failed: the peer is told why. A failed authentication is
 * logged and the connection closes once the answer is out; anything else
 * (an unknown version) cuts it at once. */
static void
hello_fail (TetherConnection   *self,
            Batch              *batch,
            const TetherMessageId *id,
            TetherHelloOutcome *out)
{
  reply_error (self, batch, id, out->code, out->error->message);
  if (out->close_at_once)
    {
      connection_teardown (self, out->error);
      return;
    }

  {
    g_autofree char *who = tether_identity_to_string (self->identity);

    _tether_log_limited (self->scheduler, G_LOG_LEVEL_MESSAGE, "authentication-failed",
                         _tether_identity_get_pool_key (self->identity),
                         "Authentication of %s failed: %s", who, out->error->message);
  }
  g_clear_pointer (&self->hello, _tether_hello_server_free);
  if (self->close_error == NULL)
    self->close_error = g_error_copy (out->error);
  connection_teardown (self, NULL);
}

/* The hello is done (with or without authentication): the peer is in. */
static void
hello_complete (TetherConnection *self,
                const char       *username,
                const char       *mechanism)
{
  if (mechanism != NULL)
    {
      TetherIdentity *identity = _tether_identity_new_authenticated (self->identity, username,
                                                                     mechanism);

      g_object_unref (self->identity);
      self->identity = identity;
    }
  g_clear_pointer (&self->hello, _tether_hello_server_free);
  _tether_scheduler_remove (self->scheduler, &self->handshake_deadline);
  self->state = STATE_OPEN;
  if (self->owner_funcs != NULL)
    self->owner_funcs->ready (self->owner, self);
}

/* Sends what the handshake decided, and opens the connection when the
 * peer is in. */
static void
hello_answer (TetherConnection   *self,
              Batch              *batch,
              const TetherMessageId *id,
              TetherHelloOutcome *out)
{
  if (out->status == TETHER_HELLO_FAILED)
    {
      hello_fail (self, batch, id, out);
      return;
    }
  if (out->binary)
    self->binary = TRUE;

  if (batch != NULL)
    batch->refs++;
  _tether_connection_send_reply (self, batch, id, out->reply, 0, NULL);
  if (out->status == TETHER_HELLO_DONE)
    hello_complete (self, out->username, out->mechanism);
  else
    self->state = STATE_AUTH;
}

static void
handle_hello (TetherConnection *self,
              Batch            *batch,
              TetherMessage    *m)
{
  const TetherMessageId *id = &m->id;
  g_autoptr(GVariant) params = control_params (self, m);
  TetherHelloOutcome out;

  if (self->role != TETHER_CONNECTION_ROLE_SERVER || self->state != STATE_HELLO)
    {
      reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                   "rpc.tether.hello is sent once, by the client, first");
      return;
    }

  self->hello = _tether_hello_server_new (self, self->auth_policy, self->limits.max_message_size,
                                          self->limits.max_depth);
  _tether_hello_server_hello (self->hello, params, self->hello_extensions, &out);
  /* The hello comes once: the owner's extensions are not needed again. */
  g_clear_pointer (&self->hello_extensions, g_ptr_array_unref);
  hello_answer (self, batch, id, &out);
  _tether_hello_outcome_clear (&out);
}

static void
handle_auth (TetherConnection *self,
             Batch            *batch,
             TetherMessage    *m)
{
  const TetherMessageId *id = &m->id;
  g_autoptr(GVariant) params = control_params (self, m);
  TetherHelloOutcome out;

  if (self->state != STATE_AUTH || self->hello == NULL ||
      !_tether_hello_server_auth (self->hello, params, &out))
    {
      reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                   "rpc.tether.auth only continues a SASL exchange begun in the hello");
      return;
    }
  hello_answer (self, batch, id, &out);
  _tether_hello_outcome_clear (&out);
}

/* Incoming calls and notifications in progress. */
static guint
connection_invocations (TetherConnection *self)
{
  return g_hash_table_size (self->incoming) + g_hash_table_size (self->notifications);
}

/* The server's pool of incoming work was full and this peer's identity
 * held the most: its oldest call gives way (answered -32003, cancelled),
 * or its oldest notification (cancelled). */
static void
invocation_evicted (TetherPoolEntry *entry)
{
  g_autoptr(TetherInvocation) invocation = g_object_ref (_tether_invocation_from_pool_entry (entry));
  g_autoptr(TetherConnection) self = g_object_ref (_tether_invocation_get_connection (invocation));
  g_autofree char *details = g_strdup_printf ("holds the most of the server's %u calls and "
                                              "notifications in progress, which are all in use: "
                                              "its oldest (%s) gave way to another peer's",
                                              _tether_pool_get_max (self->invocation_pool),
                                              tether_invocation_get_method_name (invocation));

  self->stats.rejected++;
  connection_report (self, TETHER_MISBEHAVIOR_HOGGING, details, "cancelled it");
  tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED,
                                          "The server is busy, and this caller's identity has "
                                          "the most calls in progress: this one gave way");
  _tether_invocation_cancel (invocation, FALSE);
}

/* The peer kept the connection full for flood-timeout: it keeps the
 * server from reading it (a notification flood), and is cut off. */
static void
flood_deadline_cb (TetherDeadline *deadline)
{
  TetherConnection *self = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (TetherConnection, flood_deadline));
  g_autoptr(GError) error = NULL;
  g_autofree char *details = g_strdup_printf ("kept %u calls and notifications in progress, the "
                                              "most allowed, for %u ms: the server stopped reading "
                                              "it", self->limits.max_invocations,
                                              self->limits.flood_timeout_ms);

  error = g_error_new (TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED, "Disconnected: %s", details);
  connection_report (self, TETHER_MISBEHAVIOR_FLOODING, details, "disconnecting");
  connection_teardown (self, error);
}

/* Backpressure for what cannot be refused: while the peer has as many
 * calls and notifications in progress as it may (or the server's pool of
 * them is full and it holds its share), the connection reads nothing
 * more — its messages wait in the kernel, and its own sending blocks —
 * until one of them ends; one that stays full for flood-timeout is cut
 * off. Memory per peer stays bounded whatever it sends. */
static void
connection_check_room (TetherConnection *self)
{
  gboolean full;

  if (self->ws == NULL || self->state == STATE_CLOSED)
    return;
  if (self->pool_full && self->invocation_pool != NULL &&
      _tether_pool_get_used (self->invocation_pool) < _tether_pool_get_max (self->invocation_pool))
    self->pool_full = FALSE;
  /* Calls over the bound are refused at once (nothing waits); only
   * notifications in progress make the connection stop reading. */
  full = (g_hash_table_size (self->notifications) > 0 &&
          connection_invocations (self) >= self->limits.max_invocations) || self->pool_full;
  if (full == !_tether_websocket_get_reading (self->ws))
    return;
  _tether_websocket_set_reading (self->ws, !full);
  if (full && self->limits.flood_timeout_ms > 0)
    _tether_scheduler_add (self->scheduler, &self->flood_deadline,
                           g_get_monotonic_time () + (gint64) self->limits.flood_timeout_ms * 1000,
                           flood_deadline_cb);
  else if (!full)
    _tether_scheduler_remove (self->scheduler, &self->flood_deadline);
}

static void
handle_request (TetherConnection *self,
                Batch            *batch,
                TetherMessage    *m)
{
  const TetherMessageId *id = &m->id;
  const char *name = m->method;
  /* Tether's metadata from Tether peers only. */
  const TetherMeta *meta = self->tether && m->has_meta ? &m->meta : NULL;
  const TetherMethod *entry;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) variant = NULL;
  g_autoptr(TetherInvocation) invocation = NULL;
  char *key = NULL;
  gint64 timeout_ms;
  gboolean is_notification = id->kind == TETHER_ID_ABSENT;
  TetherImpersonationLevel imp_level = TETHER_IMPERSONATION_LEVEL_IDENTIFY;
  g_autoptr(TetherCredentials) acting_as = NULL;

  self->stats.calls_received++;

  /* rpc.discover, where the table answers it, is dispatched as a method. */
  if (g_str_has_prefix (name, "rpc.") && !_tether_method_table_has_reserved (self->methods, name))
    {
      if (self->tether && strcmp (name, "rpc.cancel") == 0 && is_notification)
        handle_rpc_cancel (self, m);
      else if (self->tether && strcmp (name, "rpc.tether.extend") == 0 && is_notification)
        handle_extend (self, m);
      else if (self->tether && batch != NULL &&
               (strcmp (name, "rpc.tether.hello") == 0 || strcmp (name, "rpc.tether.auth") == 0))
        {
          /* The handshake may close the connection on failure, which would
           * lose a batch's answers: it is never batched. */
          if (!is_notification)
            reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                         "rpc.tether.hello and rpc.tether.auth cannot be batched");
        }
      else if (self->tether && strcmp (name, "rpc.tether.hello") == 0 && !is_notification)
        handle_hello (self, batch, m);
      else if (self->tether && strcmp (name, "rpc.tether.auth") == 0 && !is_notification)
        handle_auth (self, batch, m);
      else if (!is_notification)
        reply_error (self, batch, id, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND,
                     "Method not found");
      return;
    }

  if (self->state == STATE_HELLO || self->state == STATE_AUTH)
    {
      if (!is_notification)
        reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                     self->state == STATE_HELLO ? "rpc.tether.hello must come first"
                                                : "Authentication is not finished");
      return;
    }

  entry = self->methods != NULL ? _tether_method_table_lookup (self->methods, name) : NULL;
  if (entry == NULL)
    {
      if (!is_notification)
        reply_error (self, batch, id, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND, "Method not found");
      return;
    }

  if (entry->access == TETHER_ACCESS_AUTHENTICATED &&
      self->role == TETHER_CONNECTION_ROLE_SERVER &&
      !tether_identity_is_authenticated (self->identity))
    {
      if (!is_notification)
        reply_error (self, batch, id, TETHER_REMOTE_ERROR_UNAUTHENTICATED,
                     "This method needs an authenticated caller");
      return;
    }

  /* Calls over the bound are refused at once; notifications, which
   * cannot be answered, make the connection stop reading instead (see
   * connection_check_room()), so they only get here over the bound when
   * they came in the same message. */
  if (connection_quarantined (self) ||
      (!is_notification && connection_invocations (self) >= self->limits.max_invocations))
    {
      self->stats.rejected++;
      if (!is_notification)
        reply_error (self, batch, id, TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED,
                     connection_quarantined (self)
                       ? "Refused: this peer is quarantined"
                       : "Too many calls in progress on this connection");
      return;
    }

  if (!is_notification)
    {
      key = _tether_message_id_key (id);
      if (g_hash_table_contains (self->incoming, key))
        {
          reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                       "A request with this id is already in progress");
          g_free (key);
          return;
        }
    }

  variant = _tether_payload_to_params (&m->payload, entry->signature,
                                       (const char * const *) entry->param_names,
                                       self->limits.max_depth, &error);
  if (variant == NULL && error != NULL)
    {
      /* Too deep is refused as the JSON message would have been. */
      if (!is_notification)
        reply_error (self, batch, id,
                     g_error_matches (error, TETHER_ERROR, TETHER_ERROR_TOO_DEEP)
                       ? TETHER_REMOTE_ERROR_INVALID_REQUEST : TETHER_REMOTE_ERROR_INVALID_PARAMS,
                     error->message);
      g_free (key);
      return;
    }

  /* The caller's remaining budget, clamped to what this side allows. */
  timeout_ms = self->limits.incoming_default_timeout_ms;
  if (meta != NULL && meta->timeout_ms >= 0)
    timeout_ms = meta->timeout_ms;
  timeout_ms = MIN (timeout_ms, (gint64) self->limits.incoming_max_timeout_ms);

  /* What the caller granted (absent: IDENTIFY), and whom it acts as. */
  if (meta != NULL && meta->imp == TETHER_META_IMP_UNKNOWN)
    {
      if (!is_notification)
        reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                     "Unknown impersonation level in \"tether\".\"imp\"");
      g_free (key);
      return;
    }
  if (meta != NULL && meta->imp >= 0)
    imp_level = (TetherImpersonationLevel) meta->imp;
  if (meta != NULL && (meta->act_as != NULL || meta->act_as_invalid))
    {
      if (meta->act_as == NULL || self->imp_policy == NULL)
        g_set_error_literal (&error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                             "Acting as someone else is not accepted here");
      else
        acting_as = _tether_imp_verify (self->imp_policy, meta->act_as, self->identity, &error);
      if (acting_as == NULL)
        {
          g_autofree char *shown = _tether_log_escape (name, -1);

          _tether_log_limited (self->scheduler, G_LOG_LEVEL_MESSAGE, "act-as-refused",
                               _tether_identity_get_pool_key (self->identity),
                               "Refused %s from %s acting as someone else: %s", shown,
                               tether_identity_get_address (self->identity), error->message);
          if (!is_notification)
            reply_error (self, batch, id, TETHER_REMOTE_ERROR_IMPERSONATION_DENIED,
                         error->message);
          g_free (key);
          return;
        }
    }

  if (batch != NULL && !is_notification)
    batch->refs++;
  invocation = _tether_invocation_new (self, name, g_steal_pointer (&variant), &m->id, key,
                                       g_get_monotonic_time () + timeout_ms * 1000,
                                       is_notification ? NULL : batch);
  if (key != NULL)
    g_hash_table_insert (self->incoming, g_strdup (key), invocation);
  else
    g_hash_table_add (self->notifications, invocation);

  /* The server's incoming work is one pool, charged per identity: when it
   * is full the heaviest identity gives way. A call refused here is
   * answered -32003; a notification runs uncharged, and the connection
   * stops reading until it has room (connection_check_room()). */
  if (self->invocation_pool != NULL &&
      _tether_pool_acquire (self->invocation_pool, _tether_invocation_get_pool_entry (invocation),
                            _tether_identity_get_pool_key (self->identity), 0,
                            invocation_evicted) != TETHER_POOL_GRANTED)
    {
      self->stats.rejected++;
      if (!is_notification)
        {
          tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED,
                                                  "Too many calls in progress on this server");
          return;
        }
      self->pool_full = TRUE;
    }
  if (self->public != NULL)
    _tether_invocation_set_peer (invocation, self->public);
  _tether_invocation_set_impersonation (invocation, imp_level, meta != NULL ? meta->token : NULL,
                                        acting_as);
  /* A signed request (a detached callback): its listener verifies the
   * signature and the params exactly as they arrived. */
  if (m->meta.detached != NULL)
    _tether_invocation_set_signed (invocation, g_steal_pointer (&m->meta.detached),
                                   _tether_payload_dup_json (&m->payload));

  if (entry->access == TETHER_ACCESS_CUSTOM && self->owner_funcs != NULL &&
      self->owner_funcs->authorize != NULL &&
      !self->owner_funcs->authorize (self->owner, self, invocation))
    {
      tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_PERMISSION_DENIED,
                                              "Permission denied");
      return;
    }

  entry->handler (invocation, entry->user_data);
}

/* One decoded message, alone or in a batch. */
static void
handle_message (TetherConnection *self,
                Batch            *batch,
                TetherMessage    *m)
{
  switch (m->kind)
    {
    case TETHER_MESSAGE_REQUEST:
      handle_request (self, batch, m);
      break;
    case TETHER_MESSAGE_RESULT:
    case TETHER_MESSAGE_ERROR:
      if (self->state == STATE_OPEN)
        handle_response (self, m);
      break;
    case TETHER_MESSAGE_INVALID:
    default:
      self->stats.invalid_messages++;
      if (m->was_request)
        self->stats.calls_received++;
      if (m->answer)
        reply_error (self, batch, &m->id, m->code, m->text);
      else
        g_debug ("Ignoring a response: %s", m->text);
      break;
    }
}

static gboolean
connection_reading (TetherConnection *self)
{
  return self->state == STATE_HELLO || self->state == STATE_AUTH || self->state == STATE_OPEN;
}

static void
on_ws_message (gpointer  user_data,
               gboolean  binary,
               GBytes   *bytes)
{
  TetherConnection *self = user_data;
  TetherMessage message;
  g_autoptr(GPtrArray) batch = NULL;

  if (!connection_reading (self))
    return;

  g_object_ref (self);

  if (binary && !connection_binary (self))
    {
      static const TetherMessageId none = { TETHER_ID_ABSENT, 0, NULL };

      self->stats.invalid_messages++;
      reply_error (self, NULL, &none, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                   "Binary frames are not used: send JSON-RPC as text");
      goto out;
    }

  if (binary)
    _tether_frame_decode (bytes, &message);
  else
    {
      gsize len;
      const char *data = g_bytes_get_data (bytes, &len);

      _tether_json_decode (data, len, self->limits.max_depth, self->limits.max_batch_size,
                           &message, &batch);
    }

  if (batch == NULL)
    handle_message (self, NULL, &message);
  else
    {
      Batch *answers = g_new0 (Batch, 1);

      answers->refs = 1; /* ours, while we dispatch */
      answers->conn = g_object_ref (self);
      for (guint i = 0; i < batch->len && connection_reading (self); i++)
        handle_message (self, answers, batch->pdata[i]);
      batch_unref (answers);
    }
  _tether_message_clear (&message);

out:
  connection_check_room (self);
  g_object_unref (self);
}

/* ---------------------------------------------------------------------- */
/* Lifecycle                                                              */

/* No more callbacks from the WebSocket or the guard; the stream is cut
 * (no close frame). */
static void
disconnect_ws (TetherConnection *self)
{
  if (self->guard != NULL)
    g_clear_signal_handler (&self->guard_violation_id, self->guard);
  if (self->ws != NULL)
    _tether_websocket_abort (self->ws);
  else if (self->guard != NULL)
    _tether_guard_stream_abort (self->guard);
}

#define CLOSE_TIMEOUT_MS 1000

/* Ends a polite close: the peer answered, or its time ran out. */
static void
close_finish (TetherConnection *self)
{
  if (!self->closing)
    return;
  self->closing = FALSE;
  _tether_scheduler_remove (self->scheduler, &self->close_deadline);
  disconnect_ws (self);
  g_object_unref (self);
}

static void
close_deadline_cb (TetherDeadline *deadline)
{
  TetherConnection *self = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (TetherConnection, close_deadline));

  g_debug ("The peer did not answer the close frame in time; cutting it off");
  close_finish (self);
}

/* The single teardown path: every pending call fails, every invocation is
 * cancelled, the owner is told once. With @error the stream is cut at
 * once; without, a close frame is sent and the peer gets a moment. */
static void
connection_teardown (TetherConnection *self,
                     const GError     *error)
{
  GHashTableIter iter;
  gpointer value;
  g_autoptr(GPtrArray) invocations = NULL;
  const TetherConnectionOwnerFuncs *funcs = self->owner_funcs;
  gpointer owner = self->owner;

  if (self->state == STATE_CLOSED)
    return;

  g_object_ref (self);

  if (self->close_error == NULL)
    self->close_error = error != NULL
      ? g_error_copy (error)
      : g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "The connection was closed");
  self->state = STATE_CLOSED;
  _tether_scheduler_remove (self->scheduler, &self->handshake_deadline);
  _tether_scheduler_remove (self->scheduler, &self->idle_deadline);
  _tether_scheduler_remove (self->scheduler, &self->flood_deadline);

  /* pending_complete removes from the table; loop until empty. */
  while (g_hash_table_size (self->pending) > 0)
    {
      PendingCall *pc = NULL;

      g_hash_table_iter_init (&iter, self->pending);
      if (g_hash_table_iter_next (&iter, NULL, &value))
        pc = value;
      pending_complete (pc, NULL,
                        g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                     "The connection closed before the answer came: %s",
                                     self->close_error->message));
    }

  invocations = g_ptr_array_new_with_free_func (g_object_unref);
  g_hash_table_iter_init (&iter, self->incoming);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (invocations, g_object_ref (value));
  g_hash_table_iter_init (&iter, self->notifications);
  while (g_hash_table_iter_next (&iter, &value, NULL))
    g_ptr_array_add (invocations, g_object_ref (value));
  for (guint i = 0; i < invocations->len; i++)
    _tether_invocation_cancel (invocations->pdata[i], TRUE);

  if (self->ws != NULL)
    {
      if (error == NULL && _tether_websocket_get_state (self->ws) == TETHER_WEBSOCKET_OPEN)
        {
          /* Polite close: the peer gets a close frame and a moment to
           * answer it; a peer that does not is cut off at the deadline.
           * We stay alive until then (on_ws_closed ends it). */
          if (self->guard != NULL)
            g_clear_signal_handler (&self->guard_violation_id, self->guard);
          _tether_scheduler_add (self->scheduler, &self->close_deadline,
                                 g_get_monotonic_time () + CLOSE_TIMEOUT_MS * 1000,
                                 close_deadline_cb);
          self->closing = TRUE;
          g_object_ref (self);
          _tether_websocket_close (self->ws, TETHER_WEBSOCKET_CLOSE_NORMAL, NULL);
        }
      else
        disconnect_ws (self);
    }

  self->owner = NULL;
  self->owner_funcs = NULL;
  if (funcs != NULL)
    funcs->closed (owner, self, self->close_error);

  g_object_unref (self);
}

void
_tether_connection_close (TetherConnection *self,
                          const GError     *error)
{
  g_return_if_fail (TETHER_IS_CONNECTION (self));
  connection_teardown (self, error);
}

static void
on_ws_closed (gpointer user_data)
{
  TetherConnection *self = user_data;
  g_autoptr(GError) error = NULL;
  const GError *ws_error = _tether_websocket_get_error (self->ws);
  gushort code = _tether_websocket_get_close_code (self->ws);
  const char *data = _tether_websocket_get_close_reason (self->ws);

  /* Our close frame was answered (or the peer hung up meanwhile). */
  if (self->closing)
    {
      close_finish (self);
      return;
    }

  if (self->close_error != NULL)
    error = g_error_copy (self->close_error);
  else if (ws_error != NULL)
    error = g_error_copy (ws_error);
  else
    {
      /* The peer's text goes into logs: keep it short and printable. */
      g_autofree char *shown = data != NULL ? g_utf8_make_valid (data, MIN (strlen (data), 123)) : NULL;

      error = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                           "The peer closed the connection (code %u%s%s)",
                           code, shown && *shown ? ": " : "", shown ? shown : "");
    }
  connection_teardown (self, error);
}

static const TetherWebsocketFuncs ws_funcs = {
  .message = on_ws_message,
  .closed = on_ws_closed,
};

static void
on_guard_violation (TetherGuardStream *guard,
                    guint              code,
                    const char        *reason,
                    gpointer           user_data)
{
  TetherConnection *self = user_data;

  /* Inside the WebSocket's read: only report here; the failed read ends
   * the WebSocket, and on_ws_closed tears down. */
  if (self->close_error == NULL)
    self->close_error = g_error_new_literal (TETHER_ERROR, code, reason);
  self->stats.invalid_messages++;
  connection_report (self,
                     code == TETHER_ERROR_MESSAGE_TOO_LARGE ? TETHER_MISBEHAVIOR_MESSAGE_TOO_LARGE
                                                            : TETHER_MISBEHAVIOR_PROTOCOL_VIOLATION,
                     reason, "disconnecting");
}

static void
handshake_deadline_cb (TetherDeadline *deadline)
{
  TetherConnection *self = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (TetherConnection, handshake_deadline));
  g_autoptr(GError) error = NULL;

  error = g_error_new (TETHER_ERROR, TETHER_ERROR_HANDSHAKE_FAILED,
                       "No rpc.tether.hello within %u ms", self->limits.handshake_timeout_ms);
  connection_report (self, TETHER_MISBEHAVIOR_HANDSHAKE_TIMEOUT, error->message, "disconnecting");
  connection_teardown (self, error);
}

/* How often the liveness check runs: every keepalive interval, or every
 * idle timeout when keepalives are off; 0 when both are. */
static guint
liveness_period_ms (TetherConnection *self)
{
  return self->limits.keepalive_interval_ms > 0 ? self->limits.keepalive_interval_ms
                                                : self->limits.idle_timeout_ms;
}

/* The next check, a period from @now, rounded down to a grid of a
 * sixteenth of the period: the checks of connections opened at about the
 * same time fall on the same instants, so their pings go out, and their
 * pongs come back, in one main loop iteration rather than one each
 * (each wake-up of an idle process costs more than the ping). */
static gint64
liveness_next (TetherConnection *self,
               gint64            now)
{
  gint64 period = (gint64) liveness_period_ms (self) * 1000;
  gint64 grid = MAX (period / 16, 1000);
  gint64 next = now + period;

  return MAX (next - next % grid, now + 1);
}

/* Keepalive and idle check in one deadline per connection, in the one
 * scheduler: nothing per connection runs on iterations that serve
 * others.
 *
 * A connection whose peer sent nothing of its own since the last check
 * (pongs aside) is pinged. So between a server and a client the side
 * with the shorter interval does all the pinging — the server, with the
 * defaults (20 s, the client's 30 s), in batches — and the other only
 * answers; a peer that talks, or pings us, is never pinged. A connection
 * that brought nothing at all (pongs included: the guard counts every
 * byte) for the idle timeout is gone or playing dead, and is cut off. */
static void
idle_deadline_cb (TetherDeadline *deadline)
{
  TetherConnection *self = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (TetherConnection, idle_deadline));
  guint64 read = _tether_guard_stream_get_bytes_read (self->guard);
  guint64 frames = _tether_websocket_get_frames_heard (self->ws);
  gint64 now = g_get_monotonic_time ();
  g_autoptr(GError) error = NULL;

  if (read != self->idle_bytes)
    {
      self->idle_bytes = read;
      self->last_heard = now;
    }
  else if (self->limits.idle_timeout_ms > 0 &&
           now - self->last_heard >= (gint64) self->limits.idle_timeout_ms * 1000)
    {
      error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                           "Nothing received for %u ms", self->limits.idle_timeout_ms);
      connection_report (self, TETHER_MISBEHAVIOR_IDLE_TIMEOUT, error->message, "disconnecting");
      connection_teardown (self, error);
      return;
    }

  if (frames == self->idle_frames && self->limits.keepalive_interval_ms > 0)
    _tether_websocket_ping (self->ws);
  self->idle_frames = frames;

  _tether_scheduler_add (self->scheduler, &self->idle_deadline, liveness_next (self, now),
                         idle_deadline_cb);
}

void
_tether_connection_start (TetherConnection *self,
                          TetherWebsocket  *ws,
                          TetherGuardStream *guard,
                          TetherIdentity   *identity,
                          gint64            handshake_deadline)
{
  const char *protocol;

  g_return_if_fail (self->state == STATE_NEW);

  self->ws = _tether_websocket_ref (ws);
  self->guard = g_object_ref (guard);
  self->identity = g_object_ref (identity);

  /* A check that heard nothing pings, and the answer is heard by the
   * next: a quiet live peer is silent for one period at most when a check
   * looks, so the idle timeout must be longer than a period. */
  if (self->limits.idle_timeout_ms > 0 && self->limits.keepalive_interval_ms > 0 &&
      self->limits.keepalive_interval_ms >= self->limits.idle_timeout_ms)
    g_warning ("keepalive-interval (%u ms) does not fit in idle-timeout (%u ms): "
               "live peers that stay quiet will be cut off",
               self->limits.keepalive_interval_ms, self->limits.idle_timeout_ms);
  if (liveness_period_ms (self) > 0)
    {
      self->idle_bytes = _tether_guard_stream_get_bytes_read (guard);
      self->last_heard = g_get_monotonic_time ();
      _tether_scheduler_add (self->scheduler, &self->idle_deadline,
                             liveness_next (self, self->last_heard), idle_deadline_cb);
    }
  _tether_guard_stream_set_max_message_size (guard, self->limits.max_message_size);

  protocol = _tether_websocket_get_protocol (ws);
  self->tether = self->role == TETHER_CONNECTION_ROLE_CLIENT ||
                 g_strcmp0 (protocol, TETHER_SUBPROTOCOL) == 0;

  self->guard_violation_id = g_signal_connect (guard, "violation", G_CALLBACK (on_guard_violation), self);
  _tether_websocket_start (ws, self->scheduler, &ws_funcs, self);

  if (self->role == TETHER_CONNECTION_ROLE_SERVER && self->tether)
    {
      self->state = STATE_HELLO;
      _tether_scheduler_add (self->scheduler, &self->handshake_deadline,
                             handshake_deadline, handshake_deadline_cb);
    }
  else
    {
      self->state = STATE_OPEN;
      if (self->role == TETHER_CONNECTION_ROLE_SERVER && self->owner_funcs != NULL)
        self->owner_funcs->ready (self->owner, self);
    }
}

void
_tether_connection_detach_owner (TetherConnection *self)
{
  self->owner = NULL;
  self->owner_funcs = NULL;
  self->methods = NULL;
  self->public = NULL;
  /* The owner's too. */
  g_clear_pointer (&self->hello_extensions, g_ptr_array_unref);
}

void
_tether_connection_set_public (TetherConnection *self,
                               TetherPeer       *peer)
{
  self->public = peer;
}

TetherPeer *
_tether_connection_get_public (TetherConnection *self)
{
  return self->public;
}

void
_tether_connection_set_imp_policy (TetherConnection *self,
                                   TetherImpPolicy  *policy)
{
  g_clear_pointer (&self->imp_policy, _tether_imp_policy_unref);
  self->imp_policy = policy != NULL ? _tether_imp_policy_ref (policy) : NULL;
}

TetherImpPolicy *
_tether_connection_get_imp_policy (TetherConnection *self)
{
  return self->imp_policy;
}

TetherIdentity *
_tether_connection_get_identity (TetherConnection *self)
{
  return self->identity;
}

void
_tether_connection_set_binary (TetherConnection *self)
{
  self->binary = TRUE;
}

void
_tether_connection_set_hello_extensions (TetherConnection *self,
                                         GPtrArray        *extensions)
{
  g_clear_pointer (&self->hello_extensions, g_ptr_array_unref);
  self->hello_extensions = extensions != NULL ? g_ptr_array_ref (extensions) : NULL;
}

gboolean
_tether_connection_is_tls (TetherConnection *self)
{
  return self->guard != NULL && G_IS_TLS_CONNECTION (_tether_guard_stream_get_base (self->guard));
}

gboolean
_tether_connection_is_tether (TetherConnection *self)
{
  return self->tether;
}

gboolean
_tether_connection_is_closed (TetherConnection *self)
{
  return self->state == STATE_CLOSED;
}

GMainContext *
_tether_connection_get_context (TetherConnection *self)
{
  return self->context;
}

TetherScheduler *
_tether_connection_get_scheduler (TetherConnection *self)
{
  return self->scheduler;
}

guint
_tether_connection_get_n_pending (TetherConnection *self)
{
  return g_hash_table_size (self->pending);
}

void
_tether_connection_forget_invocation (TetherConnection *self,
                                      const char       *key,
                                      TetherInvocation *invocation)
{
  if (key != NULL && g_hash_table_lookup (self->incoming, key) == invocation)
    g_hash_table_remove (self->incoming, key);
  else if (key == NULL)
    g_hash_table_remove (self->notifications, invocation);
  /* Room again: read on. */
  if (self->ws != NULL && !_tether_websocket_get_reading (self->ws))
    connection_check_room (self);
}

void
_tether_connection_set_invocation_pool (TetherConnection *self,
                                        TetherPool       *pool)
{
  g_clear_pointer (&self->invocation_pool, _tether_pool_unref);
  self->invocation_pool = pool != NULL ? _tether_pool_ref (pool) : NULL;
}

static void
_tether_connection_dispose (GObject *object)
{
  TetherConnection *self = TETHER_CONNECTION (object);

  if (self->state != STATE_CLOSED && self->state != STATE_NEW)
    {
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                                     "The connection was dropped");
      connection_teardown (self, error);
    }
  self->state = STATE_CLOSED;
  disconnect_ws (self);
  _tether_scheduler_remove (self->scheduler, &self->handshake_deadline);
  _tether_scheduler_remove (self->scheduler, &self->idle_deadline);
  _tether_scheduler_remove (self->scheduler, &self->flood_deadline);
  g_clear_pointer (&self->ws, _tether_websocket_unref);
  g_clear_object (&self->guard);

  G_OBJECT_CLASS (_tether_connection_parent_class)->dispose (object);
}

static void
_tether_connection_finalize (GObject *object)
{
  TetherConnection *self = TETHER_CONNECTION (object);

  g_assert (g_hash_table_size (self->pending) == 0);
  g_hash_table_unref (self->pending);
  g_hash_table_unref (self->incoming);
  g_hash_table_unref (self->notifications);
  g_clear_object (&self->identity);
  g_clear_error (&self->close_error);
  _tether_policing_clear (&self->policing);
  g_clear_pointer (&self->callback_pool, _tether_pool_unref);
  g_clear_pointer (&self->invocation_pool, _tether_pool_unref);
  g_clear_pointer (&self->auth_policy, _tether_auth_policy_unref);
  g_clear_pointer (&self->imp_policy, _tether_imp_policy_unref);
  g_clear_pointer (&self->hello, _tether_hello_server_free);
  g_clear_pointer (&self->hello_extensions, g_ptr_array_unref);
  _tether_scheduler_unref (self->scheduler);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (_tether_connection_parent_class)->finalize (object);
}

static void
_tether_connection_class_init (TetherConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = _tether_connection_dispose;
  object_class->finalize = _tether_connection_finalize;
}

static void
_tether_connection_init (TetherConnection *self)
{
  self->pending = g_hash_table_new (g_int64_hash, g_int64_equal);
  self->incoming = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->notifications = g_hash_table_new (NULL, NULL);
  _tether_policing_init (&self->policing, &self->limits);
}

TetherConnection *
_tether_connection_new (TetherConnectionRole              role,
                        TetherScheduler                  *scheduler,
                        const TetherLimits               *limits,
                        TetherPool                       *callback_pool,
                        TetherAuthPolicy                 *auth_policy,
                        TetherMethodTable                *methods,
                        const TetherConnectionOwnerFuncs *owner_funcs,
                        gpointer                          owner)
{
  TetherConnection *self = g_object_new (TETHER_TYPE_CONNECTION, NULL);

  self->role = role;
  self->context = g_main_context_ref_thread_default ();
  self->scheduler = _tether_scheduler_ref (scheduler);
  self->limits = *limits;
  self->callback_pool = callback_pool != NULL ? _tether_pool_ref (callback_pool) : NULL;
  self->auth_policy = auth_policy != NULL ? _tether_auth_policy_ref (auth_policy) : NULL;
  self->methods = methods;
  self->owner_funcs = owner_funcs;
  self->owner = owner;

  return self;
}

void
_tether_connection_add_statistics (TetherConnection *self,
                                   TetherStatistics *stats)
{
  guint64 read = self->guard != NULL ? _tether_guard_stream_get_bytes_read (self->guard) : 0;
  guint64 written = self->guard != NULL ? _tether_guard_stream_get_bytes_written (self->guard) : 0;
  guint strikes = _tether_policing_count_strikes (&self->policing);

  stats->calls_received += self->stats.calls_received;
  stats->calls_sent += self->stats.calls_sent;
  stats->pending_calls += g_hash_table_size (self->pending);
  stats->invocations += connection_invocations (self);
  stats->timed_out += self->stats.timed_out;
  stats->rejected += self->stats.rejected;
  stats->unsolicited_responses += self->stats.unsolicited_responses;
  stats->invalid_messages += self->stats.invalid_messages;
  stats->bytes_received += read;
  stats->bytes_sent += written;
  stats->bytes_queued += self->state != STATE_CLOSED && self->bytes_handed > written
                           ? self->bytes_handed - written : 0;
  stats->strikes += strikes;
  stats->connections += 1;
  stats->peers_cut_off += self->stats.peers_cut_off;
}
