/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Built by test-installed.sh against the installed headers and pkg-config
 * file only, and run against the installed library: a server and a
 * client in one process, over a Unix socket, with one call and one
 * refusal. Usage: installed SOCKET-PATH */

#include <tether.h>

#if !TETHER_CHECK_VERSION (0, 1, 0)
# error "tether-version.h is not installed right"
#endif

typedef struct
{
  GMainLoop *loop;
  GVariant  *result;
  GError    *error;
} Outcome;

static void
handle_echo (TetherInvocation *invocation,
             gpointer          user_data)
{
  tether_invocation_return_value (invocation, tether_invocation_get_parameters (invocation));
}

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Outcome *outcome = user_data;

  tether_client_connect_finish (TETHER_CLIENT (source), result, &outcome->error);
  g_main_loop_quit (outcome->loop);
}

static void
called_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Outcome *outcome = user_data;

  outcome->result = tether_client_call_finish (TETHER_CLIENT (source), result, &outcome->error);
  g_main_loop_quit (outcome->loop);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(TetherServer) server = tether_server_new ();
  g_autoptr(TetherClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  g_autoptr(GEnumClass) errors = NULL;
  Outcome outcome = { loop, NULL, NULL };
  gint64 n = 0;

  g_assert (argc == 2);
  uri = g_strconcat ("unix:", argv[1], NULL);

  tether_server_add_method (server, "echo", TETHER_ACCESS_AUTHENTICATED, handle_echo, NULL, NULL);
  if (!tether_server_listen (server, uri, &error))
    g_error ("listen: %s", error->message);

  client = tether_client_new (uri);
  tether_client_connect_async (client, NULL, connected_cb, &outcome);
  g_main_loop_run (loop);
  g_assert_no_error (outcome.error);

  tether_client_call_async (client, "echo", g_variant_new_parsed ("{'n': <int64 42>}"),
                            5000, NULL, called_cb, &outcome);
  g_main_loop_run (loop);
  g_assert_no_error (outcome.error);
  g_assert_true (g_variant_lookup (outcome.result, "n", "x", &n));
  g_assert_cmpint (n, ==, 42);
  g_clear_pointer (&outcome.result, g_variant_unref);

  tether_client_call_async (client, "missing", NULL, 5000, NULL, called_cb, &outcome);
  g_main_loop_run (loop);
  g_assert_error (outcome.error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND);
  g_clear_error (&outcome.error);

  /* The enum types are installed and registered (tether-enum-types.h). */
  errors = g_type_class_ref (TETHER_TYPE_ERROR);
  g_assert_nonnull (g_enum_get_value_by_nick (errors, "resource-exhausted"));

  tether_client_close (client);
  tether_server_close (server);
  g_print ("C: built with pkg-config tether-1 %s, ran against the installed library\n",
           TETHER_VERSION_S);
  return 0;
}
