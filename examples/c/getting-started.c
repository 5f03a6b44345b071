/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <tether.h>

static int status = 1;

static void
on_progress (TetherInvocation *invocation, gpointer user_data)
{
  GVariant *params = tether_invocation_get_parameters (invocation);
  gint64 step = 0, of = 0;

  g_variant_lookup (params, "step", "x", &step);
  g_variant_lookup (params, "of", "x", &of);
  g_print ("progress: %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT "\n", step, of);
  tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
}

static void
on_done (GObject *client, GAsyncResult *result, gpointer loop)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_client_call_finish (TETHER_CLIENT (client), result, &error);
  g_autofree char *text = answer != NULL ? g_variant_print (answer, TRUE) : NULL;

  if (answer != NULL)
    g_print ("result: %s\n", text);
  else
    g_printerr ("work failed: %s\n", error->message);
  status = answer != NULL ? 0 : 1;
  g_main_loop_quit (loop);
}

static void
on_connected (GObject *client, GAsyncResult *result, gpointer loop)
{
  g_autoptr(GError) error = NULL;

  if (!tether_client_connect_finish (TETHER_CLIENT (client), result, &error))
    {
      g_printerr ("cannot connect: %s\n", error->message);
      g_main_loop_quit (loop);
      return;
    }
  tether_client_call_async (TETHER_CLIENT (client), "work",
                            g_variant_new_parsed ("{'steps': <int64 3>, 'delay_ms': <int64 200>}"),
                            -1, NULL, on_done, loop);
}

int
main (int argc, char **argv)
{
  const char *uri = argc > 1 ? argv[1] : "unix:/tmp/tether-demo.sock";
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(TetherClient) client = tether_client_new (uri);

  tether_client_add_method (client, "progress", on_progress, NULL, NULL);
  tether_client_connect_async (client, NULL, on_connected, loop);
  g_main_loop_run (loop);
  return status;
}
