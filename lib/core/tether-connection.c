/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The engine: the object, sending, lifecycle and the one teardown.
 * Everything runs on the context that was thread-default when the
 * connection was made (the owner's). Outgoing calls are tracked in
 * tether-calls.c, incoming ones in tether-dispatch.c, and nowhere else;
 * the single teardown path is _tether_connection_teardown(). */

#include <string.h>

#include "tether-engine-private.h"

/* The payload of the ping that follows rpc.tether.goaway. */
#define GOAWAY_PING "tether-goaway"
#include "tether-error-private.h"
#include "tether-identity-private.h"
#include "tether-invocation-private.h"
#include "tether-log-private.h"

G_DEFINE_FINAL_TYPE (TetherConnection, _tether_connection, G_TYPE_OBJECT)

static gsize
ws_frame_overhead (TetherConnection *self,
                   gsize             len)
{
  gsize header = len < 126 ? 2 : len < 65536 ? 4 : 10;

  /* Clients mask their frames. */
  return header + (self->role == TETHER_CONNECTION_ROLE_CLIENT ? 4 : 0);
}

gboolean
_tether_connection_can_send (TetherConnection *self)
{
  return (self->state == STATE_HELLO || self->state == STATE_AUTH || self->state == STATE_OPEN) &&
         self->ws != NULL &&
         _tether_websocket_get_state (self->ws) == TETHER_WEBSOCKET_OPEN;
}

/* One log line (or the owner's signal and log line) per action taken,
 * naming the peer and the evidence. Taking the action is the caller's. */
void
_tether_connection_report (TetherConnection  *self,
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

  if (!_tether_connection_can_send (self))
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
  _tether_policing_check_backlog (self);

  return TRUE;
}

/* Binary frames go only to a peer that asked for them, once open. */
gboolean
_tether_connection_binary (TetherConnection *self)
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

  *binary = _tether_connection_binary (self) && _tether_frame_fits (message);
  if (*binary)
    return _tether_frame_encode (message);
  text = g_string_sized_new (128);
  _tether_json_encode (text, message);
  return text;
}

gboolean
_tether_connection_send_message (TetherConnection     *self,
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
          _tether_connection_send_message (self, &fallback, NULL);
          _tether_message_clear (&fallback);
        }
    }
}

void
_tether_batch_unref (Batch *batch)
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
      _tether_batch_unref (batch);
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
void
_tether_connection_reply_error (TetherConnection      *self,
                                Batch                 *batch,
                                const TetherMessageId *id,
                                int                    code,
                                const char            *message)
{
  if (batch != NULL)
    batch->refs++;
  _tether_connection_send_reply (self, batch, id, NULL, code, message);
}

/* Every notification, the application's and Tether's own (rpc.cancel,
 * rpc.tether.extend, rpc.tether.goaway). Sinks a floating @params. */
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
  sent = _tether_connection_send_message (self, &message, error);
  _tether_message_clear (&message);
  return sent;
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
void
_tether_connection_teardown (TetherConnection *self,
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
  _tether_policing_unwatch (self);
  _tether_scheduler_remove (self->scheduler, &self->goaway_deadline);
  _tether_connection_fail_pending (self, self->close_error->message);

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
          _tether_websocket_close (self->ws, self->close_code, NULL);
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

/* ---------------------------------------------------------------------- */
/* Going away                                                             */

/* What is left at the end of a drain: invocations are answered -32009
 * and cancelled, callbacks fail. */
static void
goaway_cancel_rest (TetherConnection *self)
{
  g_autoptr(GPtrArray) invocations = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->incoming);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (invocations, g_object_ref (value));
  g_hash_table_iter_init (&iter, self->notifications);
  while (g_hash_table_iter_next (&iter, &value, NULL))
    g_ptr_array_add (invocations, g_object_ref (value));
  for (guint i = 0; i < invocations->len; i++)
    {
      TetherInvocation *invocation = invocations->pdata[i];

      if (!tether_invocation_is_notification (invocation))
        tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_UNAVAILABLE,
                                                "The server shut down before the call finished");
      _tether_invocation_cancel (invocation, FALSE);
    }
  _tether_connection_fail_pending (self, "the server shut down before the answer came");
}

static void
goaway_deadline_cb (TetherDeadline *deadline)
{
  TetherConnection *self = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (TetherConnection, goaway_deadline));
  gboolean drained = !self->goaway_unacked && g_hash_table_size (self->pending) == 0 &&
                     _tether_connection_n_invocations (self) == 0;

  if (self->state == STATE_CLOSED)
    return;
  if (!drained && g_get_monotonic_time () < self->goaway_end)
    {
      _tether_scheduler_add (self->scheduler, &self->goaway_deadline, self->goaway_end, goaway_deadline_cb);
      return;
    }
  g_object_ref (self);
  if (!drained)
    goaway_cancel_rest (self);
  self->close_code = TETHER_WEBSOCKET_CLOSE_GOING_AWAY;
  _tether_connection_teardown (self, NULL);
  g_object_unref (self);
}

void
_tether_connection_check_drained (TetherConnection *self)
{
  /* Not from inside the call or invocation that ended: from the
   * scheduler, at once. */
  if (self->going_away && !self->goaway_unacked && self->state != STATE_CLOSED &&
      g_hash_table_size (self->pending) == 0 && _tether_connection_n_invocations (self) == 0)
    _tether_scheduler_add (self->scheduler, &self->goaway_deadline, g_get_monotonic_time (),
                           goaway_deadline_cb);
}

void
_tether_connection_go_away (TetherConnection *self,
                            gint64            deadline)
{
  gint64 now = g_get_monotonic_time ();

  if (self->state == STATE_CLOSED)
    return;
  /* Sent away already (max-connection-age): a drain may only bring the
   * end closer. The peer keeps the deadline it was told. */
  if (self->going_away)
    {
      if (deadline < self->goaway_end)
        {
          self->goaway_end = deadline;
          _tether_scheduler_add (self->scheduler, &self->goaway_deadline, deadline,
                                 goaway_deadline_cb);
          _tether_connection_check_drained (self);
        }
      return;
    }
  self->going_away = TRUE;
  self->goaway_end = deadline;
  _tether_scheduler_remove (self->scheduler, &self->age_deadline);
  if (self->tether && _tether_connection_can_send (self))
    {
      GVariantDict params;

      g_variant_dict_init (&params, NULL);
      g_variant_dict_insert (&params, "deadline_ms", "x", MAX (deadline - now, 0) / 1000);
      _tether_connection_send_notification (self, "rpc.tether.goaway", g_variant_dict_end (&params), NULL);
      /* A request that crossed the goaway on the wire was sent in good
       * faith: it is served, not refused. The peer answers this ping
       * after it read the goaway (frames are handled in order), so what
       * arrives before the pong crossed it, and what arrives after is
       * new (HTTP/2 drains with GOAWAY and PING the same way). */
      if (self->ws != NULL)
        {
          _tether_websocket_ping_payload (self->ws, GOAWAY_PING);
          self->goaway_unacked = TRUE;
        }
    }
  _tether_scheduler_add (self->scheduler, &self->goaway_deadline, deadline, goaway_deadline_cb);
  _tether_connection_check_drained (self);
}

gboolean
_tether_connection_is_going_away (TetherConnection *self)
{
  return self->going_away;
}

void
_tether_connection_close (TetherConnection *self,
                          const GError     *error)
{
  g_return_if_fail (TETHER_IS_CONNECTION (self));
  _tether_connection_teardown (self, error);
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
  _tether_connection_teardown (self, error);
}

static void
on_ws_pong (gpointer      user_data,
            const guint8 *payload,
            gsize         len)
{
  TetherConnection *self = user_data;

  if (self->goaway_unacked && len == strlen (GOAWAY_PING) &&
      memcmp (payload, GOAWAY_PING, len) == 0)
    {
      self->goaway_unacked = FALSE;
      _tether_connection_check_drained (self);
    }
}

static const TetherWebsocketFuncs ws_funcs = {
  .message = _tether_connection_on_message,
  .closed = on_ws_closed,
  .pong = on_ws_pong,
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
  _tether_connection_report (self,
                             code == TETHER_ERROR_MESSAGE_TOO_LARGE ? TETHER_MISBEHAVIOR_MESSAGE_TOO_LARGE
                                                            : TETHER_MISBEHAVIOR_PROTOCOL_VIOLATION,
                             reason, "disconnecting");
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

  _tether_guard_stream_set_max_message_size (guard, self->limits.max_message_size);

  protocol = _tether_websocket_get_protocol (ws);
  self->tether = self->role == TETHER_CONNECTION_ROLE_CLIENT ||
                 g_strcmp0 (protocol, TETHER_SUBPROTOCOL) == 0;
  /* A Tether peer of a server has until @handshake_deadline to say hello. */
  _tether_policing_watch (self, self->role == TETHER_CONNECTION_ROLE_SERVER && self->tether
                                  ? handshake_deadline : 0);

  self->guard_violation_id = g_signal_connect (guard, "violation", G_CALLBACK (on_guard_violation), self);
  _tether_websocket_start (ws, self->scheduler, &ws_funcs, self);

  if (self->role == TETHER_CONNECTION_ROLE_SERVER && self->tether)
    self->state = STATE_HELLO;
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
      _tether_connection_teardown (self, error);
    }
  self->state = STATE_CLOSED;
  disconnect_ws (self);
  _tether_policing_unwatch (self);
  _tether_scheduler_remove (self->scheduler, &self->goaway_deadline);
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
  self->close_code = TETHER_WEBSOCKET_CLOSE_NORMAL;
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
  stats->invocations += _tether_connection_n_invocations (self);
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
