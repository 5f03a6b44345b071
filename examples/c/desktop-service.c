/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* desktop-service: a small per-user session service, the kind a desktop
 * runs on a Unix socket, that calls its clients back.
 *
 *   desktop-service [URI]      (default: unix:$XDG_RUNTIME_DIR/tether-desktop.sock)
 *
 * Methods (named parameters; the first two have the shapes of the demo
 * service's, so any client of `tether serve` works here too):
 *
 *   work {steps, delay_ms}  runs a job of `steps` steps, calling the
 *                           client's `progress {step, of}` after each one
 *                           and waiting for its answer; → {done}
 *   ask {question}          asks the client's user through the client's
 *                           `confirm {question}`; → the answer
 *   clean {directory}       asks `confirm` whether to delete the regular
 *                           files in `directory`, then deletes them with
 *                           one `progress` per file; → {removed}
 *   status                  the server's statistics; → {peers, calls, ...}
 *
 * Every method is open to authenticated peers only (the default): on a
 * Unix socket, any local user the kernel names. The socket's directory
 * decides who can connect at all; see docs/operations.md.
 *
 * The first line on stdout is `listening on URI`, as with `tether serve`.
 * SIGINT and SIGTERM stop it cleanly. */

#include <errno.h>
#include <stdio.h>
#include <glib/gstdio.h>
#include <glib-unix.h>

#include <tether.h>

/* Named parameters arrive as a{sv}. */
/* snippet: params */
static gboolean
lookup_int (TetherInvocation *invocation,
            const char       *name,
            gint64            fallback,
            gint64            max,
            gint64           *out)
{
  GVariant *params = tether_invocation_get_parameters (invocation);
  g_autoptr(GVariant) value = NULL;

  if (params != NULL && g_variant_is_of_type (params, G_VARIANT_TYPE_VARDICT))
    value = g_variant_lookup_value (params, name, NULL);
  if (value == NULL)
    {
      *out = fallback;
      return TRUE;
    }
  if (!g_variant_is_of_type (value, G_VARIANT_TYPE_INT64) ||
      g_variant_get_int64 (value) < 0 || g_variant_get_int64 (value) > max)
    {
      tether_invocation_return_error (invocation, TETHER_REMOTE_ERROR_INVALID_PARAMS,
                                      "'%s' must be an integer from 0 to %" G_GINT64_FORMAT,
                                      name, max);
      return FALSE;
    }
  *out = g_variant_get_int64 (value);
  return TRUE;
}
/* end snippet: params */

static const char *
lookup_string (TetherInvocation *invocation,
               const char       *name)
{
  GVariant *params = tether_invocation_get_parameters (invocation);
  const char *value = NULL;

  if (params == NULL || !g_variant_is_of_type (params, G_VARIANT_TYPE_VARDICT) ||
      !g_variant_lookup (params, name, "&s", &value))
    {
      tether_invocation_return_error (invocation, TETHER_REMOTE_ERROR_INVALID_PARAMS,
                                      "'%s' must be a string", name);
      return NULL;
    }
  return value;
}

static GVariant *
progress_params (gint64 step,
                 gint64 of)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "step", "x", step);
  g_variant_dict_insert (&dict, "of", "x", of);
  return g_variant_dict_end (&dict);
}

/* ---------------------------------------------------------------------- */
/* A job: steps, each followed by a progress callback that must be       */
/* answered before the next step. The callback goes through the          */
/* invocation, so it inherits the call's deadline and cancellation: if   */
/* the client gives up or disconnects, the callback fails and the job    */
/* ends. `clean` is a job whose steps delete files.                      */

typedef struct
{
  TetherInvocation *invocation;
  gint64            steps;
  gint64            delay_ms;
  gint64            step;
  GPtrArray        *files;      /* clean: the files to delete, or NULL */
  guint             timer;
  gulong            cancel_id;
} Job;

static void job_next (Job *job);

static void
job_free (Job *job)
{
  g_clear_handle_id (&job->timer, g_source_remove);
  g_cancellable_disconnect (tether_invocation_get_cancellable (job->invocation), job->cancel_id);
  g_clear_pointer (&job->files, g_ptr_array_unref);
  g_object_unref (job->invocation);
  g_free (job);
}

static void
job_progress_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Job *job = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_invocation_call_peer_finish (job->invocation, result, &error);

  if (answer == NULL)
    {
      g_printerr ("desktop-service: %s: progress callback failed at step %" G_GINT64_FORMAT
                  ": %s\n", tether_invocation_get_method_name (job->invocation), job->step,
                  error->message);
      tether_invocation_return_gerror (job->invocation, error);
      job_free (job);
      return;
    }
  job_next (job);
}

static gboolean
job_step_cb (gpointer user_data)
{
  Job *job = user_data;

  job->timer = 0;
  if (job->files != NULL)
    {
      const char *path = g_ptr_array_index (job->files, job->step);

      if (g_unlink (path) != 0 && errno != ENOENT)
        {
          int saved = errno;

          tether_invocation_return_error (job->invocation, TETHER_REMOTE_ERROR_INTERNAL_ERROR,
                                          "cannot delete %s: %s", path, g_strerror (saved));
          job_free (job);
          return G_SOURCE_REMOVE;
        }
    }
  job->step++;
  tether_invocation_call_peer_async (job->invocation, "progress",
                                     progress_params (job->step, job->steps),
                                     -1, NULL, job_progress_cb, job);
  return G_SOURCE_REMOVE;
}

static void
job_next (Job *job)
{
  if (job->step >= job->steps)
    {
      GVariantDict dict;

      g_variant_dict_init (&dict, NULL);
      g_variant_dict_insert (&dict, job->files != NULL ? "removed" : "done", "x", job->steps);
      tether_invocation_return_value (job->invocation, g_variant_dict_end (&dict));
      job_free (job);
      return;
    }
  job->timer = g_timeout_add (job->delay_ms, job_step_cb, job);
}

/* snippet: job */
static gboolean
job_cancelled_idle (gpointer user_data)
{
  job_free (user_data);
  return G_SOURCE_REMOVE;
}

static void
job_cancelled_cb (GCancellable *cancellable,
                  Job          *job)
{
  /* A progress callback in flight fails on its own (it inherits the
   * cancellation); only a job waiting between steps needs ending here. */
  if (job->timer == 0)
    return;
  g_clear_handle_id (&job->timer, g_source_remove);
  tether_invocation_return_error_literal (job->invocation, TETHER_REMOTE_ERROR_CANCELLED,
                                          "Cancelled");
  /* Not from inside the cancellable's own signal handler. */
  g_idle_add (job_cancelled_idle, job);
}

static void
job_start (TetherInvocation *invocation,
           gint64            steps,
           gint64            delay_ms,
           GPtrArray        *files)
{
  Job *job = g_new0 (Job, 1);

  job->invocation = g_object_ref (invocation);
  job->steps = steps;
  job->delay_ms = delay_ms;
  job->files = files;
  job->cancel_id = g_cancellable_connect (tether_invocation_get_cancellable (invocation),
                                          G_CALLBACK (job_cancelled_cb), job, NULL);
  job_next (job);
}

static void
handle_work (TetherInvocation *invocation,
             gpointer          user_data)
{
  gint64 steps, delay_ms;

  if (!lookup_int (invocation, "steps", 3, 1000, &steps) ||
      !lookup_int (invocation, "delay_ms", 100, 60000, &delay_ms))
    return;
  job_start (invocation, steps, delay_ms, NULL);
}
/* end snippet: job */

/* ---------------------------------------------------------------------- */
/* ask and clean: a question for the client's user                       */

typedef struct
{
  TetherInvocation *invocation;
  GPtrArray        *files;      /* clean only */
} Question;

static void
question_free (Question *question)
{
  g_clear_pointer (&question->files, g_ptr_array_unref);
  g_object_unref (question->invocation);
  g_free (question);
}

static void
confirm_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Question *question = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_invocation_call_peer_finish (question->invocation,
                                                                   result, &error);

  if (answer == NULL)
    tether_invocation_return_gerror (question->invocation, error);
  else if (question->files == NULL)
    tether_invocation_return_value (question->invocation, answer);    /* ask */
  else if (g_variant_is_of_type (answer, G_VARIANT_TYPE_BOOLEAN) && g_variant_get_boolean (answer))
    {
      GPtrArray *files = g_steal_pointer (&question->files);

      job_start (question->invocation, files->len, 0, files);
    }
  else
    tether_invocation_return_value (question->invocation,
                                    g_variant_new_parsed ("{'removed': <int64 0>}"));
  question_free (question);
}

static void
ask_user (TetherInvocation *invocation,
          const char       *text,
          GPtrArray        *files)
{
  Question *question = g_new0 (Question, 1);
  GVariantDict dict;

  question->invocation = g_object_ref (invocation);
  question->files = files;
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "question", "s", text);
  /* The user may take a while: the client extends the callback's lease
   * while they decide, never past this call's own deadline. */
  tether_invocation_call_peer_async (invocation, "confirm", g_variant_dict_end (&dict),
                                     -1, NULL, confirm_cb, question);
}

static void
handle_ask (TetherInvocation *invocation,
            gpointer          user_data)
{
  const char *text = lookup_string (invocation, "question");

  if (text != NULL)
    ask_user (invocation, text, NULL);
}

static void
handle_clean (TetherInvocation *invocation,
              gpointer          user_data)
{
  const char *directory = lookup_string (invocation, "directory");
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  const char *name;

  if (directory == NULL)
    return;
  if (!g_path_is_absolute (directory) || (dir = g_dir_open (directory, 0, &error)) == NULL)
    {
      tether_invocation_return_error (invocation, TETHER_REMOTE_ERROR_INVALID_PARAMS,
                                      "'directory' must be an absolute path to a directory%s%s",
                                      error != NULL ? ": " : "",
                                      error != NULL ? error->message : "");
      return;
    }

  /* This service runs as the user it serves (a session service), so it
   * deletes nothing that user could not delete. A system service would
   * check the caller's identity here (tether_invocation_get_identity). */
  files = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (directory, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_REGULAR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        g_ptr_array_add (files, g_steal_pointer (&path));
    }
  if (files->len == 0)
    {
      tether_invocation_return_value (invocation, g_variant_new_parsed ("{'removed': <int64 0>}"));
      return;
    }

  text = g_strdup_printf ("Delete %u file%s in %s?", files->len, files->len == 1 ? "" : "s",
                          directory);
  ask_user (invocation, text, g_steal_pointer (&files));
}

/* ---------------------------------------------------------------------- */
/* status: what an operator wants to see                                  */

static void
handle_status (TetherInvocation *invocation,
               gpointer          user_data)
{
  TetherServer *server = user_data;
  g_autoptr(TetherStatistics) stats = tether_server_get_statistics (server);
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "connections", "x", (gint64) stats->connections);
  g_variant_dict_insert (&dict, "calls_received", "x", (gint64) stats->calls_received);
  g_variant_dict_insert (&dict, "callbacks_sent", "x", (gint64) stats->calls_sent);
  g_variant_dict_insert (&dict, "callbacks_pending", "x", (gint64) stats->pending_calls);
  g_variant_dict_insert (&dict, "timed_out", "x", (gint64) stats->timed_out);
  g_variant_dict_insert (&dict, "rejected", "x", (gint64) stats->rejected);
  g_variant_dict_insert (&dict, "peers_cut_off", "x", (gint64) stats->peers_cut_off);
  tether_invocation_return_value (invocation, g_variant_dict_end (&dict));
}

/* ---------------------------------------------------------------------- */

static void
peer_connected_cb (TetherServer *server,
                   TetherPeer   *peer,
                   gpointer      user_data)
{
  g_autofree char *who = tether_identity_to_string (tether_peer_get_identity (peer));

  g_printerr ("desktop-service: %s connected\n", who);
}

static void
peer_misbehaved_cb (TetherServer      *server,
                    TetherPeer        *peer,
                    TetherIdentity    *identity,
                    TetherMisbehavior  reason,
                    const char        *details,
                    gpointer           user_data)
{
  g_autofree char *who = tether_identity_to_string (identity);
  g_autoptr(GEnumClass) reasons = g_type_class_ref (TETHER_TYPE_MISBEHAVIOR);

  /* Tether logs a line too; a real service might also tell the user. */
  g_printerr ("desktop-service: cut off %s (%s): %s\n", who,
              g_enum_get_value (reasons, reason)->value_nick, details);
}

static gboolean
quit_cb (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

/* snippet: main */
int
main (int    argc,
      char **argv)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(TetherServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;

  if (argc > 2)
    {
      g_printerr ("usage: %s [URI]\n", argv[0]);
      return 2;
    }
  uri = argc == 2 ? g_strdup (argv[1])
                  : g_strconcat ("unix:", g_get_user_runtime_dir (), "/tether-desktop.sock", NULL);

  /* Limits are properties; these are tighter than the defaults because a
   * desktop client answers at once or not at all (docs/limits.md). */
  server = g_object_new (TETHER_TYPE_SERVER,
                         "max-pending-callbacks", 4,
                         "callback-timeout", 5000,
                         "max-invocations-per-peer", 16,
                         NULL);
  tether_server_add_method (server, "work", TETHER_ACCESS_AUTHENTICATED, handle_work, NULL, NULL);
  tether_server_add_method (server, "ask", TETHER_ACCESS_AUTHENTICATED, handle_ask, NULL, NULL);
  tether_server_add_method (server, "clean", TETHER_ACCESS_AUTHENTICATED, handle_clean, NULL, NULL);
  tether_server_add_method (server, "status", TETHER_ACCESS_AUTHENTICATED, handle_status,
                            server, NULL);
  g_signal_connect (server, "peer-connected", G_CALLBACK (peer_connected_cb), NULL);
  g_signal_connect (server, "peer-misbehaved", G_CALLBACK (peer_misbehaved_cb), NULL);

  if (!tether_server_listen (server, uri, &error))
    {
      g_printerr ("desktop-service: %s\n", error->message);
      return 1;
    }
  printf ("listening on %s\n", tether_server_get_uris (server)[0]);
  fflush (stdout);

  g_unix_signal_add (SIGINT, quit_cb, loop);
  g_unix_signal_add (SIGTERM, quit_cb, loop);
  g_main_loop_run (loop);

  /* Closes every connection (their invocations are cancelled) and
   * removes the socket file. */
  tether_server_close (server);
  return 0;
}
/* end snippet: main */
