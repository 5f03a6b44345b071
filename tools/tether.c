/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* tether: serve the demo service, call a service, or run the demo. */

#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <glib/gstdio.h>
#include <glib-unix.h>

#include <tether.h>

#include "tether-demo-service.h"
#include "tether-describe.h"
#include "tether-json-private.h"
#include "tether-log-private.h"

static GMainLoop *loop;

static void
usage (FILE *out)
{
  fprintf (out, "Usage:\n"
              "  tether serve [URI...] [--cert FILE --key FILE] [--client-ca FILE]\n"
              "                      [--users FILE] [--limit NAME=VALUE]...\n"
              "                      [--proxy-protocol --trusted-proxy CIDR...]\n"
              "                      [--drain-timeout MS]\n"
              "  tether call URI METHOD [JSON-PARAMS] [--timeout MS] [--cacert FILE]\n"
              "                         [--cert FILE --key FILE] [--user NAME --password-file FILE]\n"
              "                         [--pin SHA256]\n"
              "  tether describe URI [--json] [--timeout MS] [connection options as for call]\n"
              "  tether passwd FILE USER   (reads the password on stdin)\n"
              "  tether demo\n"
              "\n"
              "URIs: unix:/PATH, ws://HOST:PORT, wss://HOST:PORT (port 0 picks one).\n"
              "Without URIs, tether serve serves the sockets systemd passed (LISTEN_FDS).\n");
}

static char *
variant_to_json_text (GVariant *value)
{
  json_t *json;
  char *text;

  if (value == NULL)
    return g_strdup ("null");
  json = _tether_variant_to_json (value);
  text = _tether_json_dump (json, NULL);
  json_decref (json);
  return text;
}

static GTlsCertificate *
load_certificate (const char  *cert,
                  const char  *key,
                  GError     **error)
{
  if (cert == NULL && key == NULL)
    return NULL;
  if (cert == NULL || key == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "--cert and --key go together");
      return NULL;
    }
  return g_tls_certificate_new_from_files (cert, key, error);
}

/* ---------------------------------------------------------------------- */
/* serve                                                                  */

/* What the service logs, a line per peer or per request at most: rate
 * limited like the library's own lines (a reconnect loop or a flood of
 * requests must not flood the log), with the summary of what was held
 * back. */
static TetherScheduler *serve_scheduler;

static void
serve_line (const char *reason,
            const char *message)
{
  g_autofree char *summary = NULL;

  if (_tether_log_allow (serve_scheduler, reason, NULL, &summary))
    g_printerr ("server: %s\n", message);
  if (summary != NULL)
    g_printerr ("server: %s\n", summary);
}

static void
serve_log (const char *message,
           gpointer    user_data)
{
  serve_line ("service", message);
}

static void
peer_connected_cb (TetherServer *server,
                   TetherPeer   *peer,
                   gpointer      user_data)
{
  g_autofree char *who = tether_identity_to_string (tether_peer_get_identity (peer));
  g_autofree char *line = g_strdup_printf ("%s connected (%s)", who,
                                           tether_peer_is_tether (peer) ? "tether.v1" : "plain JSON-RPC");

  serve_line ("connected", line);
}

/* tether serve's drain: the first SIGTERM or SIGINT drains (what is in
 * progress finishes within the drain timeout), a second one stops at once. */
typedef struct
{
  TetherServer *server;
  guint         drain_ms;
  gboolean      draining;
} Drain;

static void
drained_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  if (!tether_server_shutdown_finish (TETHER_SERVER (source), result, &error))
    g_printerr ("server: %s\n", error->message);
  else
    g_printerr ("server: drained\n");
  g_main_loop_quit (loop);
}

static gboolean
drain_cb (gpointer user_data)
{
  Drain *drain = user_data;

  if (drain->draining)
    {
      g_printerr ("server: stopping at once\n");
      tether_server_close (drain->server);
      return G_SOURCE_CONTINUE;
    }
  drain->draining = TRUE;
  g_printerr ("server: draining (up to %u ms): no new connections or calls\n", drain->drain_ms);
  tether_server_shutdown_async (drain->server, drain->drain_ms, NULL, drained_cb, NULL);
  return G_SOURCE_CONTINUE;
}

/* --limit NAME=VALUE sets any numeric or boolean property of the server,
 * so every limit is reachable from the command line. */
static gboolean
apply_limits (GObject  *object,
              char    **limits,
              GError  **error)
{
  for (guint i = 0; limits != NULL && limits[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (limits[i], "=", 2);
      GParamSpec *pspec = kv[1] ? g_object_class_find_property (G_OBJECT_GET_CLASS (object), kv[0]) : NULL;
      g_auto(GValue) value = G_VALUE_INIT;
      char *end = NULL;

      if (pspec == NULL || !(pspec->flags & G_PARAM_WRITABLE))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "--limit %s: no such setting (see the properties in docs/limits.md)",
                       limits[i]);
          return FALSE;
        }
      g_value_init (&value, pspec->value_type);
      if (pspec->value_type == G_TYPE_UINT)
        {
          guint64 v = g_ascii_strtoull (kv[1], &end, 10);
          g_value_set_uint (&value, (guint) MIN (v, G_MAXUINT));
        }
      else if (pspec->value_type == G_TYPE_BOOLEAN)
        {
          g_value_set_boolean (&value, g_strcmp0 (kv[1], "true") == 0 || g_strcmp0 (kv[1], "1") == 0);
          end = kv[1] + strlen (kv[1]);
        }
      else if (G_TYPE_IS_ENUM (pspec->value_type))
        {
          g_autoptr(GEnumClass) klass = g_type_class_ref (pspec->value_type);
          GEnumValue *ev = g_enum_get_value_by_nick (klass, kv[1]);

          if (ev != NULL)
            {
              g_value_set_enum (&value, ev->value);
              end = kv[1] + strlen (kv[1]);
            }
        }
      if (end == NULL || *end != '\0' || end == kv[1] ||
          g_param_value_validate (pspec, &value))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "--limit %s: invalid value", limits[i]);
          return FALSE;
        }
      g_object_set_property (object, kv[0], &value);
    }
  return TRUE;
}

/* Descriptors the service keeps for itself (listeners, the scheduler's
 * epoll set, GLib's wake-up, files it opens) beside one per connection. */
#define FD_HEADROOM 64

/* Every connection is a descriptor: raise the soft RLIMIT_NOFILE to the
 * hard limit, as systemd advises services that need many (Tether never
 * uses select(), so descriptors above 1024 are fine), and say what that
 * allows. */
static void
raise_fd_limit (void)
{
  struct rlimit limit;
  rlim_t before;

  if (getrlimit (RLIMIT_NOFILE, &limit) != 0)
    return;
  before = limit.rlim_cur;
  if (limit.rlim_cur < limit.rlim_max)
    {
      limit.rlim_cur = limit.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
        limit.rlim_cur = before;
    }
  if (limit.rlim_cur == RLIM_INFINITY)
    g_printerr ("tether serve: file descriptors: no limit\n");
  else if (limit.rlim_cur != before)
    g_printerr ("tether serve: file descriptors: %" G_GUINT64_FORMAT " (RLIMIT_NOFILE, raised from %"
                G_GUINT64_FORMAT "): room for about %" G_GUINT64_FORMAT " connections\n",
                (guint64) limit.rlim_cur, (guint64) before,
                limit.rlim_cur > FD_HEADROOM ? (guint64) (limit.rlim_cur - FD_HEADROOM) : 0);
  else
    g_printerr ("tether serve: file descriptors: %" G_GUINT64_FORMAT " (RLIMIT_NOFILE, the hard limit): "
                "room for about %" G_GUINT64_FORMAT " connections\n", (guint64) limit.rlim_cur,
                limit.rlim_cur > FD_HEADROOM ? (guint64) (limit.rlim_cur - FD_HEADROOM) : 0);
}

/* systemd socket activation (sd_listen_fds(3)): the sockets passed from
 * descriptor 3 on, when LISTEN_PID is this process. The variables are
 * cleared, so that nothing this process starts takes them too. */
static GPtrArray *
activation_sockets (GError **error)
{
  const char *pid = g_getenv ("LISTEN_PID");
  const char *fds = g_getenv ("LISTEN_FDS");
  g_autoptr(GPtrArray) sockets = g_ptr_array_new_with_free_func (g_object_unref);
  gint64 n;

  if (pid == NULL || fds == NULL || g_ascii_strtoll (pid, NULL, 10) != (gint64) getpid ())
    return g_steal_pointer (&sockets);
  n = g_ascii_strtoll (fds, NULL, 10);
  for (int fd = 3; fd < 3 + n; fd++)
    {
      GSocket *socket;

      fcntl (fd, F_SETFD, FD_CLOEXEC);
      socket = g_socket_new_from_fd (fd, error);
      if (socket == NULL)
        {
          g_prefix_error (error, "LISTEN_FDS: descriptor %d: ", fd);
          return NULL;
        }
      g_ptr_array_add (sockets, socket);
    }
  g_unsetenv ("LISTEN_PID");
  g_unsetenv ("LISTEN_FDS");
  g_unsetenv ("LISTEN_FDNAMES");
  return g_steal_pointer (&sockets);
}

static int
cmd_serve (int argc, char **argv)
{
  g_auto(GStrv) limits = NULL;
  g_autofree char *users = NULL;
  g_autofree char *cert = NULL;
  g_autofree char *key = NULL;
  g_autofree char *client_ca = NULL;
  g_auto(GStrv) uris = NULL;
  g_auto(GStrv) trusted_proxies = NULL;
  gboolean proxy_protocol = FALSE;
  int drain_ms = 30000;
  Drain drain = { 0 };
  GOptionEntry entries[] = {
    { "cert", 0, 0, G_OPTION_ARG_FILENAME, &cert, "TLS certificate (PEM)", "FILE" },
    { "key", 0, 0, G_OPTION_ARG_FILENAME, &key, "TLS private key (PEM)", "FILE" },
    { "client-ca", 0, 0, G_OPTION_ARG_FILENAME, &client_ca, "CA that verifies client certificates", "FILE" },
    { "users", 0, 0, G_OPTION_ARG_FILENAME, &users, "Users who may authenticate (written by tether passwd)", "FILE" },
    { "limit", 0, 0, G_OPTION_ARG_STRING_ARRAY, &limits, "Set a server limit, e.g. max-pending-callbacks=16 (repeatable)", "NAME=VALUE" },
    { "proxy-protocol", 0, 0, G_OPTION_ARG_NONE, &proxy_protocol, "Every connection starts with a PROXY protocol header (v1 or v2) from a trusted proxy", NULL },
    { "trusted-proxy", 0, 0, G_OPTION_ARG_STRING_ARRAY, &trusted_proxies, "A load balancer's address or network that may send PROXY headers (repeatable)", "CIDR" },
    { "drain-timeout", 0, 0, G_OPTION_ARG_INT, &drain_ms, "On SIGTERM or SIGINT, how long calls in progress may take to finish (default 30000)", "MS" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &uris, NULL, "URI..." },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("[URI...] - serve the demo service");
  g_autoptr(GPtrArray) activated = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(TetherServer) server = NULL;
  g_autoptr(GTlsCertificate) certificate = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("tether serve: %s\n", error->message);
      return 2;
    }
  if (uris == NULL || uris[0] == NULL)
    {
      activated = activation_sockets (&error);
      if (activated == NULL)
        {
          g_printerr ("tether serve: %s\n", error->message);
          return 1;
        }
      if (activated->len == 0)
        {
          usage (stderr);
          return 2;
        }
    }
  if (proxy_protocol && trusted_proxies == NULL)
    {
      g_printerr ("tether serve: --proxy-protocol needs at least one --trusted-proxy CIDR\n");
      return 2;
    }

  raise_fd_limit ();
  server = tether_server_new ();
  certificate = load_certificate (cert, key, &error);
  if (error != NULL)
    {
      g_printerr ("tether serve: %s\n", error->message);
      return 1;
    }
  tether_server_set_tls_certificate (server, certificate);
  if (client_ca != NULL)
    {
      g_autoptr(GTlsDatabase) database = g_tls_file_database_new (client_ca, &error);

      if (database == NULL)
        {
          g_printerr ("tether serve: %s\n", error->message);
          return 1;
        }
      tether_server_set_tls_client_database (server, database);
    }

  if (!apply_limits (G_OBJECT (server), limits, &error))
    {
      g_printerr ("tether serve: %s\n", error->message);
      return 2;
    }
  if (users != NULL && !tether_server_load_users (server, users, &error))
    {
      g_printerr ("tether serve: %s\n", error->message);
      return 1;
    }

  for (guint i = 0; trusted_proxies != NULL && trusted_proxies[i] != NULL; i++)
    if (!tether_server_add_trusted_proxy (server, trusted_proxies[i], &error))
      {
        g_printerr ("tether serve: --trusted-proxy %s: %s\n", trusted_proxies[i], error->message);
        return 2;
      }

  serve_scheduler = _tether_scheduler_new (NULL);
  demo_service_add_methods (server, serve_log, NULL);
  g_signal_connect (server, "peer-connected", G_CALLBACK (peer_connected_cb), NULL);

  for (guint i = 0; uris != NULL && uris[i] != NULL; i++)
    if (!tether_server_listen_full (server, uris[i],
                                    proxy_protocol ? TETHER_LISTEN_FLAGS_PROXY_PROTOCOL
                                                   : TETHER_LISTEN_FLAGS_NONE, &error))
      {
        g_printerr ("tether serve: %s\n", error->message);
        return 1;
      }
  for (guint i = 0; activated != NULL && i < activated->len; i++)
    if (!tether_server_listen_socket (server, activated->pdata[i],
                                      proxy_protocol ? TETHER_LISTEN_FLAGS_PROXY_PROTOCOL
                                                     : TETHER_LISTEN_FLAGS_NONE, &error))
      {
        g_printerr ("tether serve: socket from systemd: %s\n", error->message);
        return 1;
      }

  for (const char * const *uri = tether_server_get_uris (server); *uri != NULL; uri++)
    g_print ("listening on %s\n", *uri);
  fflush (stdout);

  if (drain_ms < 0)
    {
      g_printerr ("tether serve: --drain-timeout must not be negative\n");
      return 2;
    }
  drain.server = server;
  drain.drain_ms = (guint) drain_ms;
  g_unix_signal_add (SIGINT, drain_cb, &drain);
  g_unix_signal_add (SIGTERM, drain_cb, &drain);
  g_main_loop_run (loop);

  tether_server_close (server);
  g_clear_pointer (&serve_scheduler, _tether_scheduler_unref);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* call                                                                   */

typedef struct
{
  GError   *error;
  GVariant *result;
  gboolean  done;
} Outcome;

static void
connect_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Outcome *outcome = user_data;

  tether_client_connect_finish (TETHER_CLIENT (source), result, &outcome->error);
  outcome->done = TRUE;
}

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Outcome *outcome = user_data;

  outcome->result = tether_client_call_finish (TETHER_CLIENT (source), result, &outcome->error);
  outcome->done = TRUE;
}

static void
wait_for (Outcome *outcome)
{
  while (!outcome->done)
    g_main_context_iteration (NULL, TRUE);
}

static gint64
dict_int (GVariant   *params,
          const char *name)
{
  gint64 value = 0;

  if (params != NULL && g_variant_is_of_type (params, G_VARIANT_TYPE_VARDICT))
    g_variant_lookup (params, name, "x", &value);
  return value;
}

static void
handle_progress_print (TetherInvocation *invocation,
                       gpointer          user_data)
{
  GVariant *params = tether_invocation_get_parameters (invocation);

  g_printerr ("progress: step %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT "\n",
              dict_int (params, "step"), dict_int (params, "of"));
  tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
}

static void
handle_confirm_yes (TetherInvocation *invocation,
                    gpointer          user_data)
{
  GVariant *params = tether_invocation_get_parameters (invocation);
  const char *question = "?";

  if (params != NULL && g_variant_is_of_type (params, G_VARIANT_TYPE_VARDICT))
    g_variant_lookup (params, "question", "&s", &question);
  g_printerr ("confirm: %s -> yes\n", question);
  tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
}

static void
print_error (const char   *what,
             const GError *error)
{
  if (error->domain == TETHER_REMOTE_ERROR)
    g_printerr ("%s: the server answered error %d: %s\n", what, error->code, error->message);
  else
    g_printerr ("%s: %s\n", what, error->message);
}

static int
cmd_call (int argc, char **argv)
{
  g_autofree char *cacert = NULL;
  g_autofree char *cert = NULL;
  g_autofree char *key = NULL;
  int timeout = -1;
  g_auto(GStrv) args = NULL;
  g_autofree char *user = NULL;
  g_autofree char *password_file = NULL;
  g_autofree char *pin = NULL;
  GOptionEntry entries[] = {
    { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout, "Deadline in milliseconds", "MS" },
    { "cacert", 0, 0, G_OPTION_ARG_FILENAME, &cacert, "CA that verifies the server", "FILE" },
    { "cert", 0, 0, G_OPTION_ARG_FILENAME, &cert, "Client certificate (PEM)", "FILE" },
    { "key", 0, 0, G_OPTION_ARG_FILENAME, &key, "Client private key (PEM)", "FILE" },
    { "user", 0, 0, G_OPTION_ARG_STRING, &user, "Authenticate as this user", "NAME" },
    { "password-file", 0, 0, G_OPTION_ARG_FILENAME, &password_file, "File holding the password", "FILE" },
    { "pin", 0, 0, G_OPTION_ARG_STRING, &pin, "The server certificate's SHA-256 (hex)", "SHA256" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, "URI METHOD [JSON]" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("URI METHOD [JSON-PARAMS] - call a method");
  g_autoptr(GError) error = NULL;
  g_autoptr(TetherClient) client = NULL;
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GVariant) params = NULL;
  g_autofree char *text = NULL;
  Outcome connected = { 0 };
  Outcome called = { 0 };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("tether call: %s\n", error->message);
      return 2;
    }
  if (args == NULL || g_strv_length (args) < 2 || g_strv_length (args) > 3)
    {
      usage (stderr);
      return 2;
    }

  if (args[2] != NULL)
    {
      json_t *json = _tether_json_parse (args[2], strlen (args[2]), 64, &error);

      if (json == NULL)
        {
          g_printerr ("tether call: invalid JSON parameters: %s\n", error->message);
          return 2;
        }
      params = _tether_json_to_variant (json, NULL, &error);
      json_decref (json);
      if (params == NULL)
        {
          g_printerr ("tether call: %s\n", error->message);
          return 2;
        }
    }

  client = tether_client_new (args[0]);
  certificate = load_certificate (cert, key, &error);
  if (error != NULL)
    {
      g_printerr ("tether call: %s\n", error->message);
      return 1;
    }
  tether_client_set_tls_certificate (client, certificate);
  if (cacert != NULL)
    {
      g_autoptr(GTlsDatabase) database = g_tls_file_database_new (cacert, &error);

      if (database == NULL)
        {
          g_printerr ("tether call: %s\n", error->message);
          return 1;
        }
      tether_client_set_tls_database (client, database);
    }
  tether_client_add_method (client, "progress", handle_progress_print, NULL, NULL);
  tether_client_add_method (client, "confirm", handle_confirm_yes, NULL, NULL);
  if (pin != NULL)
    g_object_set (client, "tls-pinned-sha256", pin, NULL);
  if ((user == NULL) != (password_file == NULL))
    {
      g_printerr ("tether call: --user and --password-file go together\n");
      return 2;
    }
  if (user != NULL)
    {
      g_autofree char *password = NULL;

      if (!g_file_get_contents (password_file, &password, NULL, &error))
        {
          g_printerr ("tether call: %s\n", error->message);
          return 1;
        }
      g_strchomp (password);
      tether_client_set_credentials (client, user, password);
    }

  tether_client_connect_async (client, NULL, connect_done_cb, &connected);
  wait_for (&connected);
  if (connected.error != NULL)
    {
      print_error ("tether call: cannot connect", connected.error);
      g_error_free (connected.error);
      return 1;
    }

  /* A service that describes itself says which parameter is wrong
   * before anything is sent; one that does not (or will not tell this
   * caller) is just called. */
  if (!g_str_has_prefix (args[1], "rpc."))
    {
      int budget = timeout > 0 ? MIN (timeout, 5000) : 5000;
      g_autoptr(GVariant) doc = describe_fetch (client, budget, NULL);
      g_autoptr(GError) wrong = NULL;

      if (doc != NULL && !describe_check_params (doc, args[1], args[2], &wrong))
        {
          g_printerr ("tether call: %s: %s (says the service's description; nothing was sent)\n",
                      args[1], wrong->message);
          tether_client_close (client);
          return 2;
        }
    }

  tether_client_call_async (client, args[1], params, timeout, NULL, call_done_cb, &called);
  wait_for (&called);
  if (called.error != NULL)
    {
      print_error ("tether call", called.error);
      g_error_free (called.error);
      return 1;
    }

  text = variant_to_json_text (called.result);
  g_print ("%s\n", text);
  g_clear_pointer (&called.result, g_variant_unref);
  tether_client_close (client);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* demo                                                                   */

static void
demo_log (const char *message,
          gpointer    user_data)
{
  g_print ("      [server] %s\n", message);
}

static void
demo_progress (TetherInvocation *invocation,
               gpointer          user_data)
{
  GVariant *params = tether_invocation_get_parameters (invocation);

  g_print ("      [client] progress callback: step %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
           " (%" G_GINT64_FORMAT " ms left on the call that caused it)\n",
           dict_int (params, "step"), dict_int (params, "of"),
           tether_invocation_get_remaining_ms (invocation));
  tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
}

static void
demo_confirm (TetherInvocation *invocation,
              gpointer          user_data)
{
  GVariant *params = tether_invocation_get_parameters (invocation);
  const char *question = "?";

  g_variant_lookup (params, "question", "&s", &question);
  g_print ("      [client] the server asks: \"%s\" - answering yes\n", question);
  tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
}

/* Scene 7's client: it takes every progress callback and never answers. */
static void
rude_progress (TetherInvocation *invocation,
               gpointer          user_data)
{
  GPtrArray *ignored = user_data;

  g_ptr_array_add (ignored, g_object_ref (invocation));
  g_print ("      [rude client] progress callback %u arrives; it keeps it and never answers\n",
           ignored->len);
}

static void
rude_disconnected_cb (TetherClient *client,
                      GError       *error,
                      gpointer      user_data)
{
  g_print ("      [rude client] disconnected: %s\n", error != NULL ? error->message : "closed");
  *(gboolean *) user_data = TRUE;
}

/* The library's own log lines (the "Tether" domain), shown in the demo
 * as the operator of the service would see them. */
static void
demo_library_log (const char     *log_domain,
                  GLogLevelFlags  log_level,
                  const char     *message,
                  gpointer        user_data)
{
  g_print ("      [server log] %s-Message: %s\n", log_domain, message);
}

static gboolean
cancel_cb (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

static void
demo_call (TetherClient *client,
           const char   *method,
           GVariant     *params,
           int           timeout,
           GCancellable *cancellable,
           Outcome      *outcome)
{
  memset (outcome, 0, sizeof *outcome);
  tether_client_call_async (client, method, params, timeout, cancellable, call_done_cb, outcome);
  wait_for (outcome);
}

static void
demo_show (Outcome *outcome)
{
  if (outcome->error == NULL)
    {
      g_autofree char *text = variant_to_json_text (outcome->result);

      g_print ("      -> result %s\n", text);
    }
  else if (outcome->error->domain == TETHER_REMOTE_ERROR)
    g_print ("      -> the server answered error %d: %s\n", outcome->error->code,
             outcome->error->message);
  else
    g_print ("      -> %s (%s)\n", outcome->error->message,
             g_error_matches (outcome->error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ? "G_IO_ERROR_TIMED_OUT"
             : g_error_matches (outcome->error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? "G_IO_ERROR_CANCELLED"
             : g_quark_to_string (outcome->error->domain));
  g_clear_error (&outcome->error);
  g_clear_pointer (&outcome->result, g_variant_unref);
}

/* Lets the server's side of a cancellation or deadline show up. */
static gboolean
set_true (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
settle (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, set_true, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

static int
cmd_demo (const char *self)
{
  g_autofree char *dir = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(TetherServer) server = NULL;
  g_autoptr(TetherClient) client = NULL;
  g_autoptr(TetherClient) rude = NULL;
  g_autoptr(GCancellable) cancellable = NULL;
  g_autoptr(GPtrArray) ignored = g_ptr_array_new_with_free_func (g_object_unref);
  gboolean rude_gone = FALSE;
  guint log_handler;
  guint callback_timeout;
  GVariantDict dict;
  Outcome outcome = { 0 };
  dir = g_dir_make_tmp ("tether-demo-XXXXXX", &error);
  if (dir == NULL)
    {
      g_printerr ("tether demo: %s\n", error->message);
      return 1;
    }
  path = g_build_filename (dir, "demo.sock", NULL);
  uri = g_strconcat ("unix:", path, NULL);

  g_print ("Tether demo: a service and a client in one process, over a real Unix socket.\n\n");

  server = tether_server_new ();
  demo_service_add_methods (server, demo_log, NULL);
  if (!tether_server_listen (server, uri, &error))
    {
      g_printerr ("tether demo: %s\n", error->message);
      g_rmdir (dir);
      return 1;
    }
  g_print ("  The service listens on %s\n", uri);

  client = tether_client_new (uri);
  tether_client_add_method (client, "progress", demo_progress, NULL, NULL);
  tether_client_add_method (client, "confirm", demo_confirm, NULL, NULL);
  tether_client_connect_async (client, NULL, connect_done_cb, &outcome);
  wait_for (&outcome);
  if (outcome.error != NULL)
    {
      g_printerr ("tether demo: cannot connect: %s\n", outcome.error->message);
      /* Closing the server removes its socket file; then the directory. */
      tether_server_close (server);
      g_rmdir (dir);
      return 1;
    }
  {
    g_autofree char *who = tether_identity_to_string (tether_client_get_server_identity (client));
    g_print ("  The client connected; the kernel says the service is %s\n\n", who);
  }

  g_print ("1. whoami - the service sees who called, as the kernel proved it:\n");
  demo_call (client, "whoami", NULL, -1, NULL, &outcome);
  demo_show (&outcome);

  g_print ("\n2. subtract with named parameters {\"minuend\": 42, \"subtrahend\": 23}:\n");
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "minuend", "x", (gint64) 42);
  g_variant_dict_insert (&dict, "subtrahend", "x", (gint64) 23);
  demo_call (client, "subtract", g_variant_dict_end (&dict), -1, NULL, &outcome);
  demo_show (&outcome);
  g_print ("   and with a wrong type, the service explains which parameter:\n");
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "minuend", "x", (gint64) 42);
  g_variant_dict_insert (&dict, "subtrahend", "s", "twenty-three");
  demo_call (client, "subtract", g_variant_dict_end (&dict), -1, NULL, &outcome);
  demo_show (&outcome);

  g_print ("\n3. work {steps: 3} with a 2 s deadline - the service calls the client back\n"
           "   once per step; each callback inherits what is left of the call's deadline:\n");
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "steps", "x", (gint64) 3);
  g_variant_dict_insert (&dict, "delay_ms", "x", (gint64) 50);
  demo_call (client, "work", g_variant_dict_end (&dict), 2000, NULL, &outcome);
  demo_show (&outcome);

  g_print ("\n4. ask - the service asks the client's user a question through a callback:\n");
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "question", "s", "Delete 3 temporary files?");
  demo_call (client, "ask", g_variant_dict_end (&dict), -1, NULL, &outcome);
  demo_show (&outcome);

  g_print ("\n5. sleep {ms: 5000} with a 300 ms deadline - the deadline fires on both sides:\n");
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "ms", "x", (gint64) 5000);
  demo_call (client, "sleep", g_variant_dict_end (&dict), 300, NULL, &outcome);
  demo_show (&outcome);
  settle (50);

  g_print ("\n6. sleep {ms: 5000}, cancelled by the client after 200 ms - rpc.cancel reaches\n"
           "   the service, whose invocation is cancelled too:\n");
  cancellable = g_cancellable_new ();
  g_timeout_add (200, cancel_cb, cancellable);
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "ms", "x", (gint64) 5000);
  demo_call (client, "sleep", g_variant_dict_end (&dict), -1, cancellable, &outcome);
  demo_show (&outcome);
  settle (50);

  g_print ("\n7. A second client calls work but never answers its progress callbacks.\n"
           "   Each callback has a deadline (callback-timeout, 300 ms for this client);\n"
           "   each one that passes is a strike, and at the third (max-strikes) within\n"
           "   strike-window the server cuts the client off and logs who it was:\n");
  /* Limits are taken when a connection is accepted: this one gets 300 ms. */
  g_object_get (server, "callback-timeout", &callback_timeout, NULL);
  g_object_set (server, "callback-timeout", 300, NULL);
  rude = tether_client_new (uri);
  tether_client_add_method (rude, "progress", rude_progress, ignored, NULL);
  g_signal_connect (rude, "disconnected", G_CALLBACK (rude_disconnected_cb), &rude_gone);
  memset (&outcome, 0, sizeof outcome);
  tether_client_connect_async (rude, NULL, connect_done_cb, &outcome);
  wait_for (&outcome);
  g_object_set (server, "callback-timeout", callback_timeout, NULL);
  if (outcome.error == NULL)
    {
      log_handler = g_log_set_handler ("Tether", G_LOG_LEVEL_MESSAGE, demo_library_log, NULL);
      for (guint i = 0; i < 3 && !rude_gone; i++)
        {
          g_print ("   work {steps: 1} from the rude client:\n");
          g_variant_dict_init (&dict, NULL);
          g_variant_dict_insert (&dict, "steps", "x", (gint64) 1);
          g_variant_dict_insert (&dict, "delay_ms", "x", (gint64) 0);
          demo_call (rude, "work", g_variant_dict_end (&dict), 5000, NULL, &outcome);
          demo_show (&outcome);
        }
      settle (50);
      g_log_remove_handler ("Tether", log_handler);
    }
  else
    demo_show (&outcome);
  /* The invocations it kept go with it, never answered. */
  tether_client_close (rude);
  g_ptr_array_set_size (ignored, 0);
  g_print ("   %s The first client is served as before:\n",
           rude_gone ? "The server cut the rude client off." : "The rude client was NOT cut off!");
  demo_call (client, "whoami", NULL, -1, NULL, &outcome);
  demo_show (&outcome);

  g_print ("\nDone. Try it across processes:\n"
           "  %s serve unix:/tmp/demo.sock &\n"
           "  %s call unix:/tmp/demo.sock work '{\"steps\": 3, \"delay_ms\": 200}'\n",
           self, self);

  tether_client_close (client);
  settle (20);
  tether_server_close (server);
  g_rmdir (dir);
  return 0;
}

/* tether passwd FILE USER: adds or replaces USER's SCRAM secrets in
 * FILE; the password is read from stdin and never stored. */
static int
cmd_passwd (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *secrets = NULL;
  g_autoptr(GString) out = g_string_new (NULL);
  g_auto(GStrv) lines = NULL;
  char password[1024];
  gsize len;

  if (argc != 3 || strchr (argv[2], ':') != NULL || argv[2][0] == '\0')
    {
      g_printerr ("Usage: tether passwd FILE USER   (the password is read from stdin;\n"
                  "       a user name cannot contain ':')\n");
      return 2;
    }
  if (fgets (password, sizeof password, stdin) == NULL)
    {
      g_printerr ("tether passwd: no password on stdin\n");
      return 1;
    }
  len = strlen (password);
  while (len > 0 && (password[len - 1] == '\n' || password[len - 1] == '\r'))
    password[--len] = '\0';
  if (len == 0)
    {
      g_printerr ("tether passwd: empty password\n");
      return 1;
    }
  secrets = tether_scram_secrets_from_password (password, 600000, &error);
  memset (password, 0, sizeof password);
  if (secrets == NULL)
    {
      g_printerr ("tether passwd: %s\n", error->message);
      return 1;
    }

  if (g_file_get_contents (argv[1], &contents, NULL, NULL))
    {
      lines = g_strsplit (contents, "\n", -1);
      for (guint i = 0; lines[i] != NULL; i++)
        {
          const char *colon = strchr (lines[i], ':');

          if (lines[i][0] == '\0')
            continue;
          if (colon != NULL && (gsize) (colon - lines[i]) == strlen (argv[2]) &&
              strncmp (lines[i], argv[2], colon - lines[i]) == 0)
            continue;
          g_string_append_printf (out, "%s\n", lines[i]);
        }
    }
  g_string_append_printf (out, "%s:%s\n", argv[2], secrets);

  /* Secrets verify passwords: keep the file private. */
  if (!g_file_set_contents_full (argv[1], out->str, out->len,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error))
    {
      g_printerr ("tether passwd: %s\n", error->message);
      return 1;
    }
  return 0;
}

int
main (int argc, char **argv)
{
  int ret;

  setlocale (LC_ALL, "");
  loop = g_main_loop_new (NULL, FALSE);

  if (argc < 2)
    {
      usage (stderr);
      return 2;
    }
  /* Asked for: the usage on stdout, and success. */
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 ||
      strcmp (argv[1], "help") == 0)
    {
      usage (stdout);
      g_main_loop_unref (loop);
      return 0;
    }

  if (strcmp (argv[1], "serve") == 0)
    ret = cmd_serve (argc - 1, argv + 1);
  else if (strcmp (argv[1], "call") == 0)
    ret = cmd_call (argc - 1, argv + 1);
  else if (strcmp (argv[1], "describe") == 0)
    ret = describe_main (argc - 1, argv + 1);
  else if (strcmp (argv[1], "passwd") == 0)
    ret = cmd_passwd (argc - 1, argv + 1);
  else if (strcmp (argv[1], "demo") == 0)
    ret = cmd_demo (argv[0]);
  else
    {
      usage (stderr);
      ret = 2;
    }

  g_main_loop_unref (loop);
  return ret;
}
