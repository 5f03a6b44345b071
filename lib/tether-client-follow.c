/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* TetherClient, continued: following a server that goes away (issue #11).
 * With the reconnect policy on, a connection sent away (rpc.tether.goaway)
 * finishes its calls while a new one is made to the same URI, with an
 * exponential backoff and jitter; calls made meanwhile wait in a bounded
 * queue, each with its deadline in the one scheduler. The object itself is
 * in tether-client.c. */

#include "tether-client-impl-private.h"
#include "tether-error.h"

#define properties _tether_client_properties
#define signals _tether_client_signals

/* ---------------------------------------------------------------------- */
/* Reconnecting                                                           */

static void
reconnect_done_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  TetherClient *self = TETHER_CLIENT (source);
  g_autoptr(GError) error = NULL;

  if (tether_client_connect_finish (self, result, &error))
    return;  /* hello_done_cb sent the queue on its way */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
    return;  /* the application connected meanwhile */
  if (!self->reconnecting)
    return;  /* closed meanwhile */
  g_debug ("Reconnecting to %s (attempt %u) failed: %s", self->uri, self->attempts,
           error->message);
  _tether_client_reconnect_schedule (self);
}

static void
retry_deadline_cb (TetherDeadline *deadline)
{
  TetherClient *self = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (TetherClient, retry_deadline));

  if (self->conn != NULL)
    return;
  /* The application is connecting itself: look again later, in case
   * that fails. */
  if (self->connecting != NULL)
    {
      _tether_scheduler_add (self->scheduler, &self->retry_deadline,
                             g_get_monotonic_time () +
                             (gint64) self->limits[TETHER_LIMIT_HANDSHAKE_TIMEOUT] * 1000,
                             retry_deadline_cb);
      return;
    }
  if (self->retry_cancellable == NULL)
    self->retry_cancellable = g_cancellable_new ();
  self->attempts++;
  tether_client_connect_async (self, self->retry_cancellable, reconnect_done_cb, NULL);
}

/* The next attempt: at once after a loss, then after an exponential
 * backoff with full jitter (a random delay up to min-delay × 2^n, capped
 * at max-delay). Each attempt is an ordinary connect, bounded by
 * handshake-timeout: the same URI, authentication, callback listener and
 * methods. */
void
_tether_client_reconnect_schedule (TetherClient *self)
{
  guint min_ms = self->limits[TETHER_LIMIT_RECONNECT_MIN_DELAY];
  guint max_ms = MAX (self->limits[TETHER_LIMIT_RECONNECT_MAX_DELAY], min_ms);
  gint64 delay_us = 0;

  self->reconnecting = TRUE;
  if (self->attempts > 0)
    {
      guint64 cap = (guint64) min_ms << MIN (self->attempts - 1, 20u);

      cap = MIN (cap, (guint64) max_ms);
      delay_us = (gint64) (g_random_double () * (double) cap * 1000.0);
    }
  _tether_scheduler_add (self->scheduler, &self->retry_deadline,
                         g_get_monotonic_time () + delay_us, retry_deadline_cb);
}

/* Stops following: no more attempts, and the queue fails. */
void
_tether_client_reconnect_stop (TetherClient *self,
                               const char   *message)
{
  self->reconnecting = FALSE;
  self->attempts = 0;
  _tether_scheduler_remove (self->scheduler, &self->retry_deadline);
  if (self->retry_cancellable != NULL)
    {
      g_cancellable_cancel (self->retry_cancellable);
      g_clear_object (&self->retry_cancellable);
    }
  _tether_client_queue_fail_all (self, message);
}

/* ---------------------------------------------------------------------- */
/* Calls waiting for a new connection                                     */

typedef struct
{
  char              *method;
  GVariant          *params;
  gint64             deadline;  /* monotonic: waiting and the answer */
  TetherImpersonationLevel max_level;
  TetherCredentials *act_as;
  /* While queued: the deadline in the scheduler, the cancellable's
   * handler. A queued call fails at its own deadline or cancellation. */
  GTask             *task;      /* unowned: the task this is the data of */
  TetherDeadline     queued_deadline;
  gulong             cancel_id;
} QueuedCall;

static void
queued_call_free (QueuedCall *qc)
{
  g_assert (qc->cancel_id == 0 && !_tether_deadline_is_queued (&qc->queued_deadline));
  g_free (qc->method);
  g_clear_pointer (&qc->params, g_variant_unref);
  g_clear_object (&qc->act_as);
  g_free (qc);
}

/* @task leaves the queue: from now on the engine has its deadline and
 * cancellation, or it ends. */
static void
queued_call_unqueue (TetherClient *self,
                     GTask        *task)
{
  QueuedCall *qc = g_task_get_task_data (task);

  _tether_scheduler_remove (self->scheduler, &qc->queued_deadline);
  g_cancellable_disconnect (g_task_get_cancellable (task), qc->cancel_id);
  qc->cancel_id = 0;
}

static void
queued_call_fail (TetherClient *self,
                  GTask        *task,
                  GError       *error)
{
  g_queue_remove (&self->queue, task);
  queued_call_unqueue (self, task);
  g_task_return_error (task, error);
  g_object_unref (task);
}

static void
queued_deadline_cb (TetherDeadline *deadline)
{
  QueuedCall *qc = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (QueuedCall, queued_deadline));
  TetherClient *self = g_task_get_source_object (qc->task);

  queued_call_fail (self, qc->task,
                    g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                 "No connection to %s within the deadline of %s", self->uri,
                                 qc->method));
}

static gboolean
queued_cancelled_idle (gpointer user_data)
{
  GTask *task = user_data;
  TetherClient *self = g_task_get_source_object (task);

  /* It may have gone out meanwhile: then the engine sees the
   * cancellation. */
  if (g_queue_find (&self->queue, task) != NULL)
    queued_call_fail (self, task, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                       "The call was cancelled"));
  return G_SOURCE_REMOVE;
}

/* May run in any thread: only schedules the idle on the task's context. */
static void
queued_cancelled_cb (GCancellable *cancellable,
                     gpointer      user_data)
{
  g_autoptr(GSource) source = g_idle_source_new ();

  g_source_set_static_name (source, "[tether] cancel queued call");
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_task_attach_source (user_data, source, queued_cancelled_idle);
}

static void
queued_call_sent_tag (void)
{
}

static void
queued_call_done_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  GTask *task = user_data;
  GError *error = NULL;
  GVariant *value = _tether_connection_call_finish (result, queued_call_sent_tag, &error);

  if (value != NULL)
    g_task_return_pointer (task, value, (GDestroyNotify) g_variant_unref);
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

void
_tether_client_queue_flush (TetherClient *self)
{
  GTask *task;

  while (self->conn != NULL && (task = g_queue_pop_head (&self->queue)) != NULL)
    {
      QueuedCall *qc = g_task_get_task_data (task);
      TetherCallOptions options = TETHER_CALL_OPTIONS_INIT;
      gint64 left_ms = (qc->deadline - g_get_monotonic_time ()) / 1000;

      queued_call_unqueue (self, task);
      if (left_ms <= 0)
        {
          g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                   "No connection to %s within the deadline of %s", self->uri,
                                   qc->method);
          g_object_unref (task);
          continue;
        }
      /* Rounded down: the wait counts against the call's own deadline,
       * which a new connection never extends. */
      options.method = qc->method;
      options.params = qc->params;
      options.timeout_msec = (int) MIN (left_ms, G_MAXINT);
      options.max_level = qc->max_level;
      options.act_as = qc->act_as;
      _tether_connection_call_async (self->conn, &options, self, queued_call_sent_tag,
                                     g_task_get_cancellable (task), queued_call_done_cb, task);
    }
}

void
_tether_client_queue_fail_all (TetherClient *self,
                               const char   *message)
{
  GTask *task;

  while ((task = g_queue_peek_head (&self->queue)) != NULL)
    queued_call_fail (self, task, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                                       message));
}

/* No usable connection: with reconnect following, the call waits for the
 * next one within its own deadline; otherwise it fails at once. Returns
 * FALSE when there is a connection to call on. */
gboolean
_tether_client_call_without_connection (TetherClient             *self,
                                        const char               *method,
                                        GVariant                 *params,
                                        TetherImpersonationLevel  level,
                                        TetherCredentials        *act_as,
                                        int                       timeout_msec,
                                        GCancellable             *cancellable,
                                        gpointer                  source_tag,
                                        GAsyncReadyCallback       callback,
                                        gpointer                  user_data)
{
  g_autoptr(GTask) task = NULL;
  QueuedCall *qc;
  guint max_ms = self->limits[TETHER_LIMIT_MAX_TIMEOUT];
  guint timeout_ms;

  if (self->conn != NULL)
    return FALSE;
  if (params != NULL)
    g_variant_ref_sink (params);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_name (task, method);
  g_task_set_source_tag (task, source_tag);
  if (!self->reconnecting)
    {
      g_clear_pointer (&params, g_variant_unref);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED, "Not connected");
      return TRUE;
    }

  qc = g_new0 (QueuedCall, 1);
  qc->method = g_strdup (method);
  qc->params = params;
  qc->max_level = level;
  qc->act_as = act_as != NULL ? g_object_ref (act_as) : NULL;
  qc->task = task;
  g_task_set_task_data (task, qc, (GDestroyNotify) queued_call_free);
  timeout_ms = timeout_msec < 0 ? MIN (self->limits[TETHER_LIMIT_DEFAULT_TIMEOUT], max_ms)
                                : MIN ((guint) timeout_msec, max_ms);
  qc->deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  if (g_task_return_error_if_cancelled (task))
    return TRUE;
  if (timeout_ms == 0)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                               "A timeout of 0 ms leaves no time for an answer");
      return TRUE;
    }
  if (g_queue_get_length (&self->queue) >= self->limits[TETHER_LIMIT_MAX_QUEUED_CALLS])
    {
      g_task_return_new_error (task, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                               "Too many calls waiting for a connection to %s (limit %u)",
                               self->uri, self->limits[TETHER_LIMIT_MAX_QUEUED_CALLS]);
      return TRUE;
    }
  _tether_scheduler_add (self->scheduler, &qc->queued_deadline, qc->deadline, queued_deadline_cb);
  if (cancellable != NULL)
    qc->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (queued_cancelled_cb),
                                           task, NULL);
  g_queue_push_tail (&self->queue, g_steal_pointer (&task));
  return TRUE;
}

/**
 * tether_client_set_reconnect:
 * @self: a #TetherClient
 * @reconnect: whether to follow a server that goes away
 *
 * Sets [property@Tether.Client:reconnect].
 *
 * Since: 0.2
 */
void
tether_client_set_reconnect (TetherClient *self,
                             gboolean      reconnect)
{
  g_return_if_fail (TETHER_IS_CLIENT (self));

  reconnect = !!reconnect;
  if (self->reconnect == reconnect)
    return;
  self->reconnect = reconnect;
  if (!reconnect && self->reconnecting)
    _tether_client_reconnect_stop (self, "Reconnecting was turned off");
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECONNECT]);
}

/**
 * tether_client_get_reconnect:
 * @self: a #TetherClient
 *
 * Gets [property@Tether.Client:reconnect].
 *
 * Returns: whether the client follows a server that goes away
 *
 * Since: 0.2
 */
gboolean
tether_client_get_reconnect (TetherClient *self)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), FALSE);
  return self->reconnect;
}
