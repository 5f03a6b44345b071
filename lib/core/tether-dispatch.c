/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Messages in: each WebSocket message is decoded by its codec and
 * dispatched — responses to the pending calls (tether-calls.c), Tether's
 * own requests to their handlers, and calls and notifications through the
 * method table, the access check and the bounds to a TetherInvocation. */

#include <string.h>

#include "tether-engine-private.h"
#include "tether-error-private.h"
#include "tether-identity-private.h"
#include "tether-invocation-private.h"
#include "tether-log-private.h"

/* Tether's own requests carry small objects: read them as a{sv}. */
GVariant *
_tether_connection_control_params (TetherConnection *self,
                                   TetherMessage    *m)
{
  GVariant *params = _tether_payload_to_params (&m->payload, NULL, NULL, self->limits.max_depth, NULL);

  if (params != NULL && !g_variant_is_of_type (params, G_VARIANT_TYPE_VARDICT))
    g_clear_pointer (&params, g_variant_unref);
  return params;
}

/* The server will go (rpc.tether.goaway): the owner decides what to do
 * (a client may open a connection elsewhere). */
static void
handle_goaway (TetherConnection *self,
               TetherMessage    *m)
{
  g_autoptr(GVariant) params = _tether_connection_control_params (self, m);
  gint64 deadline_ms = 0;

  if (!_tether_vardict_get_int (params, "deadline_ms", &deadline_ms) || deadline_ms < 0)
    deadline_ms = 0;
  if (self->owner_funcs != NULL && self->owner_funcs->going_away != NULL)
    self->owner_funcs->going_away (self->owner, self, (guint) MIN (deadline_ms, G_MAXUINT32));
}

static void
handle_rpc_cancel (TetherConnection *self,
                   TetherMessage    *m)
{
  g_autoptr(GVariant) params = _tether_connection_control_params (self, m);
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
  return _tether_connection_send_notification (self, "rpc.tether.extend", g_variant_builder_end (&params), error);
}

/* Incoming calls and notifications in progress. */
guint
_tether_connection_n_invocations (TetherConnection *self)
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
  _tether_connection_report (self, TETHER_MISBEHAVIOR_HOGGING, details, "cancelled it");
  tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED,
                                          "The server is busy, and this caller's identity has "
                                          "the most calls in progress: this one gave way");
  _tether_invocation_cancel (invocation, FALSE);
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
        _tether_connection_handle_extend (self, m);
      else if (self->tether && self->role == TETHER_CONNECTION_ROLE_CLIENT && is_notification &&
               strcmp (name, "rpc.tether.goaway") == 0)
        handle_goaway (self, m);
      else if (self->tether && batch != NULL &&
               (strcmp (name, "rpc.tether.hello") == 0 || strcmp (name, "rpc.tether.auth") == 0))
        {
          /* The handshake may close the connection on failure, which would
           * lose a batch's answers: it is never batched. */
          if (!is_notification)
            _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                                            "rpc.tether.hello and rpc.tether.auth cannot be batched");
        }
      else if (self->tether && strcmp (name, "rpc.tether.hello") == 0 && !is_notification)
        _tether_connection_handle_hello (self, batch, m);
      else if (self->tether && strcmp (name, "rpc.tether.auth") == 0 && !is_notification)
        _tether_connection_handle_auth (self, batch, m);
      else if (!is_notification)
        _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND,
                                        "Method not found");
      return;
    }

  /* Draining: what is in progress goes on, nothing new starts — new
   * meaning sent after the peer read the goaway (its pong came). */
  if (self->going_away && !self->goaway_unacked)
    {
      if (!is_notification)
        _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_UNAVAILABLE,
                                        "The server is going away: call another instance");
      return;
    }

  if (self->state == STATE_HELLO || self->state == STATE_AUTH)
    {
      if (!is_notification)
        _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                                        self->state == STATE_HELLO ? "rpc.tether.hello must come first"
                                                                   : "Authentication is not finished");
      return;
    }

  entry = self->methods != NULL ? _tether_method_table_lookup (self->methods, name) : NULL;
  if (entry == NULL)
    {
      if (!is_notification)
        _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND, "Method not found");
      return;
    }

  if (entry->access == TETHER_ACCESS_AUTHENTICATED &&
      self->role == TETHER_CONNECTION_ROLE_SERVER &&
      !tether_identity_is_authenticated (self->identity))
    {
      if (!is_notification)
        _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_UNAUTHENTICATED,
                                        "This method needs an authenticated caller");
      return;
    }

  /* Calls over the bound are refused at once; notifications, which
   * cannot be answered, make the connection stop reading instead (see
   * _tether_policing_check_room()), so they only get here over the bound when
   * they came in the same message. */
  if (_tether_connection_is_quarantined (self) ||
      (!is_notification && _tether_connection_n_invocations (self) >= self->limits.max_invocations))
    {
      self->stats.rejected++;
      if (!is_notification)
        _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED,
                                        _tether_connection_is_quarantined (self)
                       ? "Refused: this peer is quarantined"
                       : "Too many calls in progress on this connection");
      return;
    }

  if (!is_notification)
    {
      key = _tether_message_id_key (id);
      if (g_hash_table_contains (self->incoming, key))
        {
          _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
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
        _tether_connection_reply_error (self, batch, id,
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
        _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
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
            _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_IMPERSONATION_DENIED,
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
   * stops reading until it has room (_tether_policing_check_room()). */
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
        _tether_connection_handle_response (self, m);
      break;
    case TETHER_MESSAGE_INVALID:
    default:
      self->stats.invalid_messages++;
      if (m->was_request)
        self->stats.calls_received++;
      if (m->answer)
        _tether_connection_reply_error (self, batch, &m->id, m->code, m->text);
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

void
_tether_connection_on_message (gpointer  user_data,
                               gboolean  binary,
                               GBytes   *bytes)
{
  TetherConnection *self = user_data;
  TetherMessage message;
  g_autoptr(GPtrArray) batch = NULL;

  if (!connection_reading (self))
    return;

  g_object_ref (self);

  if (binary && !_tether_connection_binary (self))
    {
      static const TetherMessageId none = { TETHER_ID_ABSENT, 0, NULL };

      self->stats.invalid_messages++;
      _tether_connection_reply_error (self, NULL, &none, TETHER_REMOTE_ERROR_INVALID_REQUEST,
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
      _tether_batch_unref (answers);
    }
  _tether_message_clear (&message);

out:
  _tether_policing_check_room (self);
  g_object_unref (self);
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
    _tether_policing_check_room (self);
  _tether_connection_check_drained (self);
}
