/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* client: a Tether client in C, for `tether serve URI` and for
 * examples/c/desktop-service.
 *
 *   client URI            work (answering progress), ask (answering
 *                         confirm), and a call the service refuses
 *   client URI --clean    also: makes a scratch directory with three
 *                         files and asks the desktop service to clean it
 *
 * It exits 0 only if every answer is what the service promises, so it
 * doubles as a test. The calls run one after another from callbacks, on
 * the main context the client was created on. */

#include <string.h>
#include <glib/gstdio.h>

#include <tether.h>

typedef struct
{
  GMainLoop    *loop;
  TetherClient *client;
  gboolean      clean;
  char         *scratch;
  gint64        progress_seen;
  int           status;
} App;

static void
fail (App          *app,
      const char   *what,
      const GError *error)
{
  if (error == NULL)
    g_printerr ("client: %s\n", what);
  else if (error->domain == TETHER_REMOTE_ERROR)
    g_printerr ("client: %s: the service answered %d: %s\n", what, error->code, error->message);
  else
    g_printerr ("client: %s: %s\n", what, error->message);
  app->status = 1;
  g_main_loop_quit (app->loop);
}

/* -- the callbacks the service makes ------------------------------------ */

/* snippet: callbacks */
static void
on_progress (TetherInvocation *invocation,
             gpointer          user_data)
{
  App *app = user_data;
  GVariant *params = tether_invocation_get_parameters (invocation);
  gint64 step = 0, of = 0;

  g_variant_lookup (params, "step", "x", &step);
  g_variant_lookup (params, "of", "x", &of);
  app->progress_seen++;
  g_print ("progress: step %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
           " (%" G_GINT64_FORMAT " ms left)\n",
           step, of, tether_invocation_get_remaining_ms (invocation));
  tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
}

static void
on_confirm (TetherInvocation *invocation,
            gpointer          user_data)
{
  const char *question = "?";

  g_variant_lookup (tether_invocation_get_parameters (invocation), "question", "&s", &question);
  g_print ("confirm: %s -> yes\n", question);
  /* A real client would show a dialog here, answer later (keep a
   * reference to the invocation), and call
   * tether_invocation_extend_deadline() while the user decides. */
  tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
}
/* end snippet: callbacks */

/* -- the calls, in order ------------------------------------------------ */

static void start_clean (App *app);

static void
clean_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  App *app = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_client_call_finish (app->client, result, &error);
  g_autoptr(GDir) dir = NULL;
  gint64 removed = -1;

  if (answer == NULL)
    {
      fail (app, "clean", error);
      return;
    }
  g_variant_lookup (answer, "removed", "x", &removed);
  g_print ("clean -> removed %" G_GINT64_FORMAT "\n", removed);
  dir = g_dir_open (app->scratch, 0, NULL);
  if (removed != 3 || app->progress_seen != 3 + 3 || dir == NULL || g_dir_read_name (dir) != NULL)
    {
      fail (app, "clean did not remove the three files", NULL);
      return;
    }
  g_main_loop_quit (app->loop);
}

static void
refused_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  App *app = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_client_call_finish (app->client, result, &error);

  /* What the peer refuses is in TETHER_REMOTE_ERROR, with the wire code. */
  if (!g_error_matches (error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND))
    {
      fail (app, "no-such-method was not refused with -32601", error);
      return;
    }
  g_print ("no-such-method -> refused: %s\n", error->message);

  if (app->clean)
    start_clean (app);
  else
    g_main_loop_quit (app->loop);
}

static void
ask_done_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  App *app = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_client_call_finish (app->client, result, &error);

  if (answer == NULL)
    {
      fail (app, "ask", error);
      return;
    }
  if (!g_variant_is_of_type (answer, G_VARIANT_TYPE_BOOLEAN) || !g_variant_get_boolean (answer))
    {
      fail (app, "ask: expected the answer true", NULL);
      return;
    }
  g_print ("ask -> true\n");

  tether_client_call_async (app->client, "no-such-method", NULL, -1, NULL, refused_cb, app);
}

static void
work_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  App *app = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_client_call_finish (app->client, result, &error);
  gint64 done = -1;

  if (answer == NULL)
    {
      fail (app, "work", error);
      return;
    }
  g_variant_lookup (answer, "done", "x", &done);
  g_print ("work -> done %" G_GINT64_FORMAT "\n", done);
  if (done != 3 || app->progress_seen != 3)
    {
      fail (app, "work: expected three progress callbacks", NULL);
      return;
    }

  tether_client_call_async (app->client, "ask",
                            g_variant_new_parsed ("{'question': <'Empty the trash?'>}"),
                            -1, NULL, ask_done_cb, app);
}

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  App *app = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *who = NULL;

  if (!tether_client_connect_finish (app->client, result, &error))
    {
      fail (app, "cannot connect", error);
      return;
    }
  who = tether_identity_to_string (tether_client_get_server_identity (app->client));
  g_print ("connected to %s\n", who);

  /* A 10 s deadline for the whole job: every progress callback the
   * service makes for it inherits what is left of it. */
  tether_client_call_async (app->client, "work",
                            g_variant_new_parsed ("{'steps': <int64 3>, 'delay_ms': <int64 20>}"),
                            10000, NULL, work_done_cb, app);
}

static void
start_clean (App *app)
{
  g_autoptr(GError) error = NULL;

  app->scratch = g_dir_make_tmp ("tether-clean-XXXXXX", &error);
  if (app->scratch == NULL)
    {
      fail (app, "scratch directory", error);
      return;
    }
  for (int i = 1; i <= 3; i++)
    {
      g_autofree char *name = g_strdup_printf ("old-%d.tmp", i);
      g_autofree char *path = g_build_filename (app->scratch, name, NULL);

      if (!g_file_set_contents (path, "old\n", -1, &error))
        {
          fail (app, "scratch file", error);
          return;
        }
    }
  tether_client_call_async (app->client, "clean",
                            g_variant_new_parsed ("{'directory': <%s>}", app->scratch),
                            10000, NULL, clean_done_cb, app);
}

/* snippet: main */
int
main (int    argc,
      char **argv)
{
  App app = { 0 };

  if (argc < 2 || argc > 3 || (argc == 3 && strcmp (argv[2], "--clean") != 0))
    {
      g_printerr ("usage: %s URI [--clean]\n", argv[0]);
      return 2;
    }

  app.loop = g_main_loop_new (NULL, FALSE);
  app.client = tether_client_new (argv[1]);
  app.clean = argc == 3;

  /* Add the callbacks before connecting: the service may call at once. */
  tether_client_add_method (app.client, "progress", on_progress, &app, NULL);
  tether_client_add_method (app.client, "confirm", on_confirm, &app, NULL);
  tether_client_connect_async (app.client, NULL, connected_cb, &app);
  g_main_loop_run (app.loop);

  tether_client_close (app.client);
  g_object_unref (app.client);
  g_main_loop_unref (app.loop);
  if (app.scratch != NULL)
    g_rmdir (app.scratch);  /* empty unless cleaning failed */
  g_free (app.scratch);
  return app.status;
}
/* end snippet: main */
