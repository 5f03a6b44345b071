/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The demo service: the JSON-RPC 2.0 specification's examples, and the
 * callback patterns Tether exists for (progress, a question, deadlines,
 * cancellation). It opens every method to any peer on purpose: it is a
 * demo, and plain JSON-RPC clients on ws:// are anonymous. */

#include "tether-demo-service.h"
#include "tether-log-private.h"

static DemoLogFunc demo_log;

/* Timers on the thread-default context, the one the server runs on (the
 * GLib convenience functions would use the global default context). */
static guint
timeout_add (guint       ms,
             GSourceFunc func,
             gpointer    data)
{
  GSource *source = ms == 0 ? g_idle_source_new () : g_timeout_source_new (ms);
  guint id;

  g_source_set_callback (source, func, data, NULL);
  id = g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
  return id;
}

static void
source_remove (guint id)
{
  GSource *source = g_main_context_find_source_by_id (g_main_context_get_thread_default (), id);

  if (source != NULL)
    g_source_destroy (source);
}
static gpointer demo_log_data;

static void G_GNUC_PRINTF (1, 2)
say (const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (demo_log != NULL)
    demo_log (message, demo_log_data);
}

/* Declared params arrive as their tuple (Nothing for an optional one
 * left out); undeclared named ones as a{sv}, positional ones as av. */
static GVariant *
param (TetherInvocation *invocation,
       const char       *name,
       guint             position)
{
  GVariant *params = tether_invocation_get_parameters (invocation);

  if (params == NULL)
    return NULL;
  if (g_variant_is_of_type (params, G_VARIANT_TYPE_TUPLE) &&
      position < g_variant_n_children (params))
    {
      g_autoptr(GVariant) member = g_variant_get_child_value (params, position);

      if (g_variant_is_of_type (member, G_VARIANT_TYPE_MAYBE))
        return g_variant_get_maybe (member);
      return g_steal_pointer (&member);
    }
  if (g_variant_is_of_type (params, G_VARIANT_TYPE_VARDICT))
    return g_variant_lookup_value (params, name, NULL);
  if (g_variant_is_of_type (params, G_VARIANT_TYPE ("av")) && position < g_variant_n_children (params))
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (params, position);
      return g_variant_get_variant (boxed);
    }
  return NULL;
}

static gboolean
int_param (TetherInvocation *invocation,
           const char       *name,
           guint             position,
           gint64            fallback,
           gint64            min,
           gint64            max,
           gint64           *out)
{
  g_autoptr(GVariant) value = param (invocation, name, position);

  if (value == NULL)
    {
      *out = fallback;
      return TRUE;
    }
  if (!g_variant_is_of_type (value, G_VARIANT_TYPE_INT64) ||
      g_variant_get_int64 (value) < min || g_variant_get_int64 (value) > max)
    {
      tether_invocation_return_error (invocation, TETHER_REMOTE_ERROR_INVALID_PARAMS,
                                      "parameter '%s' must be an integer from %" G_GINT64_FORMAT
                                      " to %" G_GINT64_FORMAT, name, min, max);
      return FALSE;
    }
  *out = g_variant_get_int64 (value);
  return TRUE;
}

static void
handle_echo (TetherInvocation *invocation,
             gpointer          user_data)
{
  tether_invocation_return_value (invocation, tether_invocation_get_parameters (invocation));
}

static void
handle_subtract (TetherInvocation *invocation,
                 gpointer          user_data)
{
  gint64 minuend, subtrahend;

  g_variant_get (tether_invocation_get_parameters (invocation), "(xx)", &minuend, &subtrahend);
  tether_invocation_return_value (invocation, g_variant_new_int64 (minuend - subtrahend));
}

static void
handle_sum (TetherInvocation *invocation,
            gpointer          user_data)
{
  GVariant *params = tether_invocation_get_parameters (invocation);
  GVariantIter iter;
  GVariant *child;
  gint64 isum = 0;
  double dsum = 0;
  gboolean real = FALSE;

  if (params == NULL || !g_variant_is_of_type (params, G_VARIANT_TYPE ("av")))
    {
      tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_INVALID_PARAMS,
                                              "sum takes a list of numbers");
      return;
    }

  g_variant_iter_init (&iter, params);
  while ((child = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_autoptr(GVariant) boxed = child;
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
        {
          isum += g_variant_get_int64 (value);
          dsum += g_variant_get_int64 (value);
        }
      else if (g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
        {
          real = TRUE;
          dsum += g_variant_get_double (value);
        }
      else
        {
          tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_INVALID_PARAMS,
                                                  "sum takes a list of numbers");
          return;
        }
    }

  tether_invocation_return_value (invocation, real ? g_variant_new_double (dsum)
                                                   : g_variant_new_int64 (isum));
}

static void
handle_get_data (TetherInvocation *invocation,
                 gpointer          user_data)
{
  tether_invocation_return_value (invocation, g_variant_new ("(sx)", "hello", (gint64) 5));
}

static void
handle_notification (TetherInvocation *invocation,
                     gpointer          user_data)
{
  g_autofree char *method = _tether_log_escape (tether_invocation_get_method_name (invocation), -1);

  say ("notification %s received", method);
  tether_invocation_return_value (invocation, NULL);
}

/* -- work: one progress callback per step, each answered before the next */

typedef struct
{
  TetherInvocation *invocation;
  gint64            steps;
  gint64            delay_ms;
  gint64            step;
  guint             timer;
  gulong            cancel_id;
} Work;

static void work_next (Work *work);

static void
work_free (Work *work)
{
  g_clear_handle_id (&work->timer, source_remove);
  g_cancellable_disconnect (tether_invocation_get_cancellable (work->invocation), work->cancel_id);
  g_object_unref (work->invocation);
  g_free (work);
}

static void
progress_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Work *work = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_invocation_call_peer_finish (work->invocation, result, &error);

  if (answer == NULL)
    {
      say ("work: progress callback %" G_GINT64_FORMAT " failed: %s", work->step, error->message);
      tether_invocation_return_gerror (work->invocation, error);
      work_free (work);
      return;
    }
  work_next (work);
}

static gboolean
work_step_cb (gpointer user_data)
{
  Work *work = user_data;
  GVariantDict dict;

  work->timer = 0;
  work->step++;
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "step", "x", work->step);
  g_variant_dict_insert (&dict, "of", "x", work->steps);
  tether_invocation_call_peer_async (work->invocation, "progress", g_variant_dict_end (&dict),
                                     -1, NULL, progress_cb, work);
  return G_SOURCE_REMOVE;
}

static gboolean
work_free_idle (gpointer data)
{
  work_free (data);
  return G_SOURCE_REMOVE;
}

static void
work_cancelled_cb (GCancellable *cancellable,
                   Work         *work)
{
  /* The pending progress callback fails on its own (it inherits the
   * cancellation); only a step still waiting on its delay needs us. */
  if (work->timer != 0)
    {
      g_clear_handle_id (&work->timer, source_remove);
      say ("work: cancelled at step %" G_GINT64_FORMAT, work->step);
      tether_invocation_return_error_literal (work->invocation, TETHER_REMOTE_ERROR_CANCELLED,
                                              "Cancelled");
      timeout_add (0, work_free_idle, work);
    }
}

static void
work_next (Work *work)
{
  if (work->step >= work->steps)
    {
      GVariantDict dict;

      g_variant_dict_init (&dict, NULL);
      g_variant_dict_insert (&dict, "done", "x", work->steps);
      tether_invocation_return_value (work->invocation, g_variant_dict_end (&dict));
      work_free (work);
      return;
    }
  work->timer = timeout_add (work->delay_ms, work_step_cb, work);
}

static void
handle_work (TetherInvocation *invocation,
             gpointer          user_data)
{
  Work *work;
  gint64 steps, delay_ms;

  if (!int_param (invocation, "steps", 0, 3, 0, 1000, &steps) ||
      !int_param (invocation, "delay_ms", 1, 100, 0, 60000, &delay_ms))
    return;

  work = g_new0 (Work, 1);
  work->invocation = g_object_ref (invocation);
  work->steps = steps;
  work->delay_ms = delay_ms;
  work->cancel_id = g_cancellable_connect (tether_invocation_get_cancellable (invocation),
                                           G_CALLBACK (work_cancelled_cb), work, NULL);
  work_next (work);
}

/* -- ask: one question, answered by the client's confirm callback */

static void
confirm_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(TetherInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_invocation_call_peer_finish (invocation, result, &error);

  if (answer == NULL)
    tether_invocation_return_gerror (invocation, error);
  else
    tether_invocation_return_value (invocation, answer);
}

static void
handle_ask (TetherInvocation *invocation,
            gpointer          user_data)
{
  g_autoptr(GVariant) question = param (invocation, "question", 0);
  GVariantDict dict;

  if (question == NULL || !g_variant_is_of_type (question, G_VARIANT_TYPE_STRING))
    {
      tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_INVALID_PARAMS,
                                              "parameter 'question' must be a string");
      return;
    }

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert_value (&dict, "question", question);
  tether_invocation_call_peer_async (invocation, "confirm", g_variant_dict_end (&dict), -1,
                                     NULL, confirm_cb, g_object_ref (invocation));
}

/* -- sleep: honours cancellation and deadlines */

typedef struct
{
  TetherInvocation *invocation;
  guint             timer;
  gulong            cancel_id;
  gint64            started;
  gint64            ms;
} Sleep;

static void
sleep_free (Sleep *sleep)
{
  g_clear_handle_id (&sleep->timer, source_remove);
  g_object_unref (sleep->invocation);
  g_free (sleep);
}

static gboolean
sleep_done_cb (gpointer user_data)
{
  Sleep *sleep = user_data;
  GVariantDict dict;

  sleep->timer = 0;
  g_cancellable_disconnect (tether_invocation_get_cancellable (sleep->invocation), sleep->cancel_id);
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "slept_ms", "x", sleep->ms);
  tether_invocation_return_value (sleep->invocation, g_variant_dict_end (&dict));
  sleep_free (sleep);
  return G_SOURCE_REMOVE;
}

static gboolean
sleep_cancelled_idle (gpointer user_data)
{
  Sleep *sleep = user_data;

  g_cancellable_disconnect (tether_invocation_get_cancellable (sleep->invocation), sleep->cancel_id);
  sleep_free (sleep);
  return G_SOURCE_REMOVE;
}

static void
sleep_cancelled_cb (GCancellable *cancellable,
                    Sleep        *sleep)
{
  gint64 after = (g_get_monotonic_time () - sleep->started) / 1000;

  g_clear_handle_id (&sleep->timer, source_remove);
  say ("sleep: stopped after %" G_GINT64_FORMAT " ms of %" G_GINT64_FORMAT " ms (%s)",
       after, sleep->ms,
       tether_invocation_has_replied (sleep->invocation)
         ? (tether_invocation_get_remaining_ms (sleep->invocation) == 0
              ? "its deadline passed" : "the client cancelled")
         : "cancelled");
  tether_invocation_return_error_literal (sleep->invocation, TETHER_REMOTE_ERROR_CANCELLED,
                                          "Cancelled");
  /* Not from inside the cancellable's own handler. */
  timeout_add (0, sleep_cancelled_idle, sleep);
}

static void
handle_sleep (TetherInvocation *invocation,
              gpointer          user_data)
{
  Sleep *sleep;
  gint64 ms;

  if (!int_param (invocation, "ms", 0, 1000, 0, 600000, &ms))
    return;

  sleep = g_new0 (Sleep, 1);
  sleep->invocation = g_object_ref (invocation);
  sleep->ms = ms;
  sleep->started = g_get_monotonic_time ();
  sleep->timer = timeout_add (ms, sleep_done_cb, sleep);
  sleep->cancel_id = g_cancellable_connect (tether_invocation_get_cancellable (invocation),
                                            G_CALLBACK (sleep_cancelled_cb), sleep, NULL);
}

/* -- whoami */

static void
handle_whoami (TetherInvocation *invocation,
               gpointer          user_data)
{
  TetherIdentity *identity = tether_invocation_get_identity (invocation);
  GVariantDict dict;
  g_autoptr(GEnumClass) transports = g_type_class_ref (TETHER_TYPE_TRANSPORT_KIND);

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "transport", "s",
                         g_enum_get_value (transports, tether_identity_get_transport (identity))->value_nick);
  g_variant_dict_insert (&dict, "authenticated", "b", tether_identity_is_authenticated (identity));
  if (tether_identity_get_uid (identity) >= 0)
    {
      g_variant_dict_insert (&dict, "uid", "x", tether_identity_get_uid (identity));
      g_variant_dict_insert (&dict, "gid", "x", tether_identity_get_gid (identity));
      g_variant_dict_insert (&dict, "pid", "x", tether_identity_get_pid (identity));
    }
  if (tether_identity_get_address (identity)[0] != '\0')
    g_variant_dict_insert (&dict, "address", "s", tether_identity_get_address (identity));
  if (tether_identity_get_username (identity) != NULL)
    {
      g_variant_dict_insert (&dict, "username", "s", tether_identity_get_username (identity));
      g_variant_dict_insert (&dict, "mechanism", "s", tether_identity_get_auth_mechanism (identity));
    }
  if (tether_identity_get_certificate_sha256 (identity) != NULL)
    g_variant_dict_insert (&dict, "certificate_sha256", "s",
                           tether_identity_get_certificate_sha256 (identity));
  g_variant_dict_insert (&dict, "tether", "b",
                         tether_invocation_get_peer (invocation) != NULL &&
                         tether_peer_is_tether (tether_invocation_get_peer (invocation)));
  tether_invocation_return_value (invocation, g_variant_dict_end (&dict));
}

/* What the service says of itself (rpc.discover, `tether describe`). */
static TetherMethodInfo *
describe (const char         *name,
          const char         *summary,
          const char         *signature,
          const char * const *param_names,
          const char         *result_signature,
          const char         *result_description)
{
  TetherMethodInfo *info = tether_method_info_new (name);

  tether_method_info_set_summary (info, summary);
  tether_method_info_set_params (info, signature, param_names);
  tether_method_info_set_result (info, result_signature, result_description);
  return info;
}

static void
add_described (TetherServer        *server,
               TetherMethodInfo    *info,
               TetherMethodHandler  handler)
{
  /* Open to any peer on purpose (see the top of this file). */
  tether_server_add_method_with_info (server, info, TETHER_ACCESS_ANY, handler, NULL, NULL);
  tether_method_info_unref (info);
}

void
demo_service_add_methods (TetherServer *server,
                          DemoLogFunc   log,
                          gpointer      log_data)
{
  const char *subtract_names[] = { "minuend", "subtrahend", NULL };
  const char *work_names[] = { "steps", "delay_ms", NULL };
  const char *question_names[] = { "question", NULL };
  const char *sleep_names[] = { "ms", NULL };
  const char *progress_names[] = { "step", "of", NULL };
  TetherMethodInfo *info;

  demo_log = log;
  demo_log_data = log_data;

  tether_server_set_service_title (server, "Tether demo service");
  tether_server_set_service_version (server, TETHER_VERSION_S);
  tether_server_set_service_description (server,
    "The JSON-RPC 2.0 specification's examples, and the callbacks Tether "
    "exists for: progress, a question, deadlines, cancellation. Every "
    "method is open to any peer, on purpose: it is a demo.");
  /* Plain JSON-RPC clients on ws:// are anonymous: let them ask too. */
  tether_server_set_discover_access (server, TETHER_ACCESS_ANY);

  add_described (server, describe ("echo", "Answers with its params, whatever they are",
                                   NULL, NULL, NULL, "the params, as they came"),
                 handle_echo);
  add_described (server, describe ("subtract", "minuend − subtrahend (the JSON-RPC "
                                   "specification's example)", "(xx)", subtract_names,
                                   "x", NULL),
                 handle_subtract);
  add_described (server, describe ("sum", "Adds a list of numbers", "av", NULL, NULL,
                                   "the sum: an integer when every number was one, "
                                   "else a real"),
                 handle_sum);
  add_described (server, describe ("get_data", "Answers [\"hello\", 5]", "()", NULL,
                                   "(sx)", NULL),
                 handle_get_data);
  add_described (server, describe ("update", "A notification from the specification; "
                                   "its params are ignored", NULL, NULL, NULL, "null"),
                 handle_notification);
  add_described (server, describe ("notify_hello", "A notification from the specification; "
                                   "its params are ignored", NULL, NULL, NULL, "null"),
                 handle_notification);

  info = describe ("work", "Works in steps, calling the client's progress before each",
                   "(mxmx)", work_names, "a{sv}", "{\"done\": steps}");
  tether_method_info_set_param_description (info, "steps", "how many steps, 0 to 1000 (default 3)");
  tether_method_info_set_param_description (info, "delay_ms",
                                            "the pause before each step, 0 to 60000 ms "
                                            "(default 100)");
  tether_method_info_add_callback (info, "progress");
  add_described (server, info, handle_work);

  info = describe ("ask", "Asks the client's user a question, through the confirm callback",
                   "(s)", question_names, NULL, "what confirm answered");
  tether_method_info_add_callback (info, "confirm");
  add_described (server, info, handle_ask);

  info = describe ("sleep", "Answers after a while, unless cancelled or out of time",
                   "(mx)", sleep_names, "a{sv}", "{\"slept_ms\": ms}");
  tether_method_info_set_param_description (info, "ms", "how long, 0 to 600000 ms (default 1000)");
  add_described (server, info, handle_sleep);

  add_described (server, describe ("whoami", "Who the service sees calling, as the "
                                   "transport and the hello proved it", "()", NULL, "a{sv}",
                                   "transport, authenticated, uid, gid, pid, address, "
                                   "username, mechanism, certificate_sha256, tether"),
                 handle_whoami);

  /* The callbacks it makes: what a client of work and ask must answer. */
  info = describe ("progress", "One step of work is about to start", "(xx)", progress_names,
                   NULL, "anything; an error stops the work, which fails with it");
  tether_server_add_callback_info (server, info);
  tether_method_info_unref (info);
  info = describe ("confirm", "A question for the user", "(s)", question_names, NULL,
                   "the answer, usually true or false; ask answers with it");
  tether_server_add_callback_info (server, info);
  tether_method_info_unref (info);
}
