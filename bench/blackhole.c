/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* blackhole: what 10,000 unanswered callbacks cost a Tether server.
 *
 * One program, four roles, each in its own process:
 *
 *   blackhole [--json FILE] ...        the orchestrator: starts the others,
 *                                      reads the server's /proc/PID/status,
 *                                      prints the table, writes the JSON
 *   blackhole server --uri URI ...     a TetherServer with `echo`,
 *                                      `subscribe {n}` and `stats`
 *   blackhole attacker --uri URI ...   black-hole clients: they subscribe,
 *                                      take every `event` callback and never
 *                                      answer it
 *   blackhole client --uri URI ...     the legitimate client: sequential
 *                                      `echo` calls, latency percentiles
 *
 * Two modes, each against a fresh server: "one connection" (one attacker
 * connection holds 10,000 callbacks; the per-peer limit raised) and "many
 * connections" (625 connections × the default 16; the total limit and the
 * connections per uid raised). `--mode parented` (or `all`) adds a third:
 * one connection whose 10,000 callbacks are made through the invocation
 * that caused them, the usual shape in Tether. For each mode: the latency
 * with no attacker connected (a reference), a baseline with the attackers
 * connected but quiet, then the attack with every callback pending. The
 * figures are printed next to the targets of DESIGN.md (≤ 1 KiB of server
 * memory per pending callback, no thread per callback, p99 latency of other
 * clients at most 2× the baseline); nothing is asserted.
 *
 * Latency on a small shared machine is noisy: a round during which other
 * processes took a noticeable share of the CPUs (/proc/stat minus this
 * run's own processes) is run again, up to 3× the rounds asked for, and
 * the report says how many rounds were clean.
 *
 * Memory figures need a normal build (not ASan) and G_SLICE=always-malloc
 * in the server's environment, which the orchestrator sets for its
 * children. Besides VmRSS, the server reports malloc's own count of bytes
 * in use (mallinfo2), which is exact. To see where the bytes go, run the
 * server under a heap profiler, e.g.
 *   blackhole --mode one --server-wrapper "heaptrack -o /tmp/bh"
 * (the server leaves without freeing anything, so what is "leaked" at its
 * exit is what was live under attack; the memory figures of such a run
 * describe the profiler, not Tether). Every wait is bounded and a watchdog
 * (--budget) ends the whole run; children die with the orchestrator
 * (PR_SET_PDEATHSIG). */

#include <locale.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib-unix.h>
#include <gio/gunixinputstream.h>

#include <tether.h>

/* The orchestrator's children, /proc, noise and JSON (harness.h); the
 * roles' RESULT lines and percentiles (peers-util.h). */
#include "harness.h"
#include "peers-util.h"

#define N_CALLBACKS_DEFAULT     10000
#define RSS_TARGET_BYTES        1024.0
#define P99_RATIO_TARGET        2.0
#define CALLBACK_TIMEOUT_MS     60000

/* ---------------------------------------------------------------------- */
/* Common                                                                 */

static GVariant *
vardict_int (const char *key,
             gint64      value)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", key, g_variant_new_int64 (value));
  return g_variant_builder_end (&b);
}

static gint64
vardict_get (GVariant   *dict,
             const char *key)
{
  gint64 value = -1;

  if (dict != NULL && g_variant_is_of_type (dict, G_VARIANT_TYPE_VARDICT))
    g_variant_lookup (dict, key, "x", &value);
  return value;
}

/* Children read commands from stdin, one per line; EOF means "go". */
typedef void (*LineFunc) (const char *line, gpointer user_data);

typedef struct
{
  GDataInputStream *in;
  LineFunc          func;
  gpointer          user_data;
  gboolean          eof;
} StdinReader;

static void stdin_read_next (StdinReader *r);

static void
stdin_line_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  StdinReader *r = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source),
                                                                     result, NULL, &error);

  if (line == NULL)
    {
      r->eof = TRUE;
      r->func (NULL, r->user_data);
      return;
    }
  r->func (line, r->user_data);
  stdin_read_next (r);
}

static void
stdin_read_next (StdinReader *r)
{
  g_data_input_stream_read_line_async (r->in, G_PRIORITY_DEFAULT, NULL, stdin_line_cb, r);
}

static StdinReader *
stdin_reader_start (LineFunc func,
                    gpointer user_data)
{
  StdinReader *r = g_new0 (StdinReader, 1);
  g_autoptr(GInputStream) raw = g_unix_input_stream_new (STDIN_FILENO, FALSE);

  r->in = g_data_input_stream_new (raw);
  r->func = func;
  r->user_data = user_data;
  stdin_read_next (r);
  return r;
}

/* ---------------------------------------------------------------------- */
/* Role: server                                                           */

typedef struct
{
  TetherServer *server;
  GMainLoop    *loop;
  guint64       callbacks_made;
  guint64       callbacks_answered;
  guint64       callbacks_rejected;
  guint64       callbacks_failed;
  GPtrArray    *held;          /* subscribe-held invocations, never answered */
} ServerRole;

static void
event_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  ServerRole *s = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_peer_call_finish (TETHER_PEER (source), result, &error);

  if (answer != NULL)
    s->callbacks_answered++;
  else if (g_error_matches (error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED))
    s->callbacks_rejected++;
  else
    s->callbacks_failed++;
}

static void
srv_echo (TetherInvocation *invocation,
          gpointer          user_data)
{
  GVariant *params = tether_invocation_get_parameters (invocation);

  tether_invocation_return_value (invocation, params != NULL ? params : g_variant_new ("mv", NULL));
}

/* subscribe {n}: answers {"ok": n} at once, then makes n unparented
 * callbacks `event {i}` to the caller, each with a 60 s deadline. */
static void
srv_subscribe (TetherInvocation *invocation,
               gpointer          user_data)
{
  ServerRole *s = user_data;
  gint64 n = vardict_get (tether_invocation_get_parameters (invocation), "n");
  g_autoptr(TetherPeer) peer = NULL;

  if (n < 0 || n > 1000000)
    {
      tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_INVALID_PARAMS,
                                              "subscribe wants {\"n\": 0…1000000}");
      return;
    }
  if (tether_invocation_get_peer (invocation) == NULL)
    {
      tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_INTERNAL_ERROR,
                                              "no peer to call back");
      return;
    }
  peer = g_object_ref (tether_invocation_get_peer (invocation));
  tether_invocation_return_value (invocation, vardict_int ("ok", n));

  for (gint64 i = 0; i < n; i++)
    {
      s->callbacks_made++;
      tether_peer_call_async (peer, "event", vardict_int ("i", i), CALLBACK_TIMEOUT_MS, NULL,
                              event_done_cb, s);
    }
}

static void
held_event_done_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  ServerRole *s = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_invocation_call_peer_finish (TETHER_INVOCATION (source), result, &error);

  if (answer != NULL)
    s->callbacks_answered++;
  else if (g_error_matches (error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED))
    s->callbacks_rejected++;
  else
    s->callbacks_failed++;
}

/* subscribe-held {n}: the usual shape of a callback in Tether — made
 * through the invocation that caused it, inheriting its deadline and
 * cancellation — so the call stays open (unanswered) while its n
 * callbacks are pending. */
static void
srv_subscribe_held (TetherInvocation *invocation,
                    gpointer          user_data)
{
  ServerRole *s = user_data;
  gint64 n = vardict_get (tether_invocation_get_parameters (invocation), "n");

  if (n < 0 || n > 1000000)
    {
      tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_INVALID_PARAMS,
                                              "subscribe-held wants {\"n\": 0…1000000}");
      return;
    }
  g_ptr_array_add (s->held, g_object_ref (invocation));   /* never answered */
  for (gint64 i = 0; i < n; i++)
    {
      s->callbacks_made++;
      tether_invocation_call_peer_async (invocation, "event", vardict_int ("i", i), CALLBACK_TIMEOUT_MS,
                                         NULL, held_event_done_cb, s);
    }
}

static void
add_stat (GVariantBuilder *b,
          const char      *key,
          guint64          value)
{
  g_variant_builder_add (b, "{sv}", key, g_variant_new_int64 ((gint64) MIN (value, G_MAXINT64)));
}

static void
srv_stats (TetherInvocation *invocation,
           gpointer          user_data)
{
  ServerRole *s = user_data;
  g_autoptr(TetherStatistics) st = tether_server_get_statistics (s->server);
  g_autoptr(GPtrArray) peers = tether_server_get_peers (s->server);
  struct mallinfo2 mi = mallinfo2 ();
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  add_stat (&b, "calls_received", st->calls_received);
  add_stat (&b, "calls_sent", st->calls_sent);
  add_stat (&b, "pending_calls", st->pending_calls);
  add_stat (&b, "invocations", st->invocations);
  add_stat (&b, "timed_out", st->timed_out);
  add_stat (&b, "rejected", st->rejected);
  add_stat (&b, "unsolicited_responses", st->unsolicited_responses);
  add_stat (&b, "invalid_messages", st->invalid_messages);
  add_stat (&b, "bytes_received", st->bytes_received);
  add_stat (&b, "bytes_sent", st->bytes_sent);
  add_stat (&b, "bytes_queued", st->bytes_queued);
  add_stat (&b, "strikes", st->strikes);
  add_stat (&b, "connections", st->connections);
  add_stat (&b, "peers_cut_off", st->peers_cut_off);
  add_stat (&b, "peers", peers != NULL ? peers->len : 0);
  add_stat (&b, "callbacks_made", s->callbacks_made);
  add_stat (&b, "callbacks_answered", s->callbacks_answered);
  add_stat (&b, "callbacks_rejected", s->callbacks_rejected);
  add_stat (&b, "callbacks_failed", s->callbacks_failed);
  /* The allocator's own view: bytes in use (what the objects cost) and
   * bytes it holds (what RSS can see). */
  add_stat (&b, "heap_in_use", mi.uordblks + mi.hblkhd);
  add_stat (&b, "heap_held", mi.arena + mi.hblkhd);
  tether_invocation_return_value (invocation, g_variant_builder_end (&b));
}

static void
server_stdin_line (const char *line,
                   gpointer    user_data)
{
  ServerRole *s = user_data;

  if (line == NULL)
    g_main_loop_quit (s->loop);
}

static gboolean
server_quit_cb (gpointer user_data)
{
  ServerRole *s = user_data;

  g_main_loop_quit (s->loop);
  return G_SOURCE_REMOVE;
}

/* --limit NAME=VALUE sets any guint property of the server. */
static gboolean
apply_limits (GObject  *object,
              char    **limits,
              GError  **error)
{
  for (guint i = 0; limits != NULL && limits[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (limits[i], "=", 2);
      GParamSpec *pspec = kv[1] != NULL ? g_object_class_find_property (G_OBJECT_GET_CLASS (object), kv[0]) : NULL;
      g_auto(GValue) value = G_VALUE_INIT;
      char *end = NULL;
      guint64 v;

      if (pspec == NULL || pspec->value_type != G_TYPE_UINT)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "--limit %s: no such unsigned property", limits[i]);
          return FALSE;
        }
      v = g_ascii_strtoull (kv[1], &end, 10);
      g_value_init (&value, G_TYPE_UINT);
      g_value_set_uint (&value, (guint) MIN (v, G_MAXUINT));
      if (end == kv[1] || *end != '\0' || g_param_value_validate (pspec, &value))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "--limit %s: invalid value", limits[i]);
          return FALSE;
        }
      g_object_set_property (object, kv[0], &value);
    }
  return TRUE;
}

static int
role_server (int    argc,
             char **argv)
{
  g_autofree char *uri = NULL;
  g_auto(GStrv) limits = NULL;
  GOptionEntry entries[] = {
    { "uri", 0, 0, G_OPTION_ARG_STRING, &uri, "Listen here (unix:/PATH or ws://127.0.0.1:0)", "URI" },
    { "limit", 0, 0, G_OPTION_ARG_STRING_ARRAY, &limits, "Set a server property", "NAME=VALUE" },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("- blackhole server role");
  g_autoptr(GError) error = NULL;
  ServerRole s = { 0 };

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error) || uri == NULL)
    {
      g_printerr ("server: %s\n", error != NULL ? error->message : "--uri is required");
      return 2;
    }
  peer_raise_fd_limit ();   /* hundreds of sockets per process */

  s.loop = g_main_loop_new (NULL, FALSE);
  s.held = g_ptr_array_new ();
  s.server = tether_server_new ();
  /* Long callbacks, no strikes, no idle cut-off: the black holes stay
   * for the whole measurement. The mode's limits come after. */
  g_object_set (s.server,
                "max-callback-timeout", CALLBACK_TIMEOUT_MS,
                "callback-timeout", CALLBACK_TIMEOUT_MS,
                "max-strikes", 0,
                "idle-timeout", 0,
                NULL);
  if (!apply_limits (G_OBJECT (s.server), limits, &error))
    {
      g_printerr ("server: %s\n", error->message);
      return 2;
    }
  tether_server_add_method (s.server, "echo", TETHER_ACCESS_ANY, srv_echo, &s, NULL);
  tether_server_add_method (s.server, "subscribe", TETHER_ACCESS_ANY, srv_subscribe, &s, NULL);
  tether_server_add_method (s.server, "subscribe-held", TETHER_ACCESS_ANY, srv_subscribe_held, &s, NULL);
  tether_server_add_method (s.server, "stats", TETHER_ACCESS_ANY, srv_stats, &s, NULL);
  if (!tether_server_listen (s.server, uri, &error))
    {
      g_printerr ("server: cannot listen on %s: %s\n", uri, error->message);
      return 1;
    }

  stdin_reader_start (server_stdin_line, &s);
  g_unix_signal_add (SIGTERM, server_quit_cb, &s);
  g_unix_signal_add (SIGINT, server_quit_cb, &s);
  peer_emit ("READY %s", tether_server_get_uris (s.server)[0]);

  g_main_loop_run (s.loop);

  /* Exit without tearing 10,000 callbacks down: nothing to measure there.
   * A normal exit (not a kill) lets heap profilers write their output. */
  fflush (stdout);
  _exit (0);
}

/* ---------------------------------------------------------------------- */
/* Role: attacker                                                         */

#define CONNECT_WINDOW   8     /* the server listens with GIO's backlog of 10 */
#define CONNECT_ATTEMPTS 20

typedef struct
{
  GMainLoop *loop;
  char      *uri;
  guint      n_connections;
  gint64     per_connection;
  const char *method;        /* subscribe or subscribe-held */
  GPtrArray *clients;        /* connected TetherClients */
  GPtrArray *held;           /* TetherInvocations never answered */
  guint      next;           /* next connection to start */
  guint      in_flight;
  guint      failed;
  guint      retries;
  guint      subscribed_ok;
  guint      subscribed_err;
  gboolean   subscribing;
  char      *last_error;
} Attacker;

typedef struct
{
  Attacker     *a;
  TetherClient *client;
  guint         attempt;
} ConnectData;

static void attacker_pump (Attacker *a);
static void attacker_start_one (Attacker *a, guint attempt);

/* The black hole: keeps the invocation and never answers it. */
static void
att_event (TetherInvocation *invocation,
           gpointer          user_data)
{
  Attacker *a = user_data;

  g_ptr_array_add (a->held, g_object_ref (invocation));
}

static gboolean
retry_cb (gpointer user_data)
{
  ConnectData *cd = user_data;

  attacker_start_one (cd->a, cd->attempt);
  g_free (cd);
  return G_SOURCE_REMOVE;
}

static void
attacker_connected_cb (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  ConnectData *cd = user_data;
  Attacker *a = cd->a;
  g_autoptr(GError) error = NULL;

  a->in_flight--;
  if (tether_client_connect_finish (TETHER_CLIENT (source), result, &error))
    {
      g_ptr_array_add (a->clients, cd->client);
      g_free (cd);
    }
  else
    {
      g_clear_object (&cd->client);
      g_free (a->last_error);
      a->last_error = g_strdup (error->message);
      if (++cd->attempt < CONNECT_ATTEMPTS)
        {
          a->retries++;
          a->in_flight++;     /* the slot stays taken while it waits */
          g_timeout_add (10 * cd->attempt, retry_cb, cd);
          return;
        }
      a->failed++;
      g_free (cd);
    }
  attacker_pump (a);
}

static void
attacker_start_one (Attacker *a,
                    guint     attempt)
{
  ConnectData *cd = g_new0 (ConnectData, 1);

  if (attempt > 0)
    a->in_flight--;   /* retry_cb: give back the slot held while waiting */
  cd->a = a;
  cd->attempt = attempt;
  cd->client = tether_client_new (a->uri);
  /* Its own cap must never answer for it: it holds everything. */
  g_object_set (cd->client,
                "max-invocations", 20000,
                "idle-timeout", 0,
                "keepalive-interval", 0,
                NULL);
  tether_client_add_method (cd->client, "event", att_event, a, NULL);
  a->in_flight++;
  tether_client_connect_async (cd->client, NULL, attacker_connected_cb, cd);
}

static void
attacker_pump (Attacker *a)
{
  while (a->in_flight < CONNECT_WINDOW && a->next < a->n_connections)
    {
      a->next++;
      attacker_start_one (a, 0);
    }
  if (a->in_flight == 0 && a->next == a->n_connections)
    {
      peer_emit ("CONNECTED ok=%u failed=%u retries=%u%s%s", a->clients->len, a->failed, a->retries,
                 a->last_error != NULL ? " last_error=" : "",
                 a->last_error != NULL ? a->last_error : "");
      a->next++;  /* report once */
    }
}

static void
subscribed_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Attacker *a = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_client_call_finish (TETHER_CLIENT (source), result, &error);

  if (answer != NULL)
    a->subscribed_ok++;
  else
    {
      a->subscribed_err++;
      g_printerr ("attacker: subscribe failed: %s\n", error->message);
    }
  if (a->subscribed_ok + a->subscribed_err == a->clients->len)
    peer_emit ("SUBSCRIBED ok=%u err=%u", a->subscribed_ok, a->subscribed_err);
}

static void
attacker_stdin_line (const char *line,
                     gpointer    user_data)
{
  Attacker *a = user_data;

  if (line == NULL)
    g_main_loop_quit (a->loop);
  else if (g_str_equal (line, "subscribe") && !a->subscribing)
    {
      a->subscribing = TRUE;
      for (guint i = 0; i < a->clients->len; i++)
        tether_client_call_async (g_ptr_array_index (a->clients, i), a->method,
                                  vardict_int ("n", a->per_connection), CALLBACK_TIMEOUT_MS, NULL,
                                  subscribed_cb, a);
      if (a->clients->len == 0)
        peer_emit ("SUBSCRIBED ok=0 err=0");
    }
  else if (g_str_equal (line, "report"))
    {
      guint connected = 0;

      for (guint i = 0; i < a->clients->len; i++)
        connected += tether_client_is_connected (g_ptr_array_index (a->clients, i));
      peer_emit ("HELD n=%u connected=%u", a->held->len, connected);
    }
}

static int
role_attacker (int    argc,
               char **argv)
{
  g_autofree char *uri = NULL;
  g_autofree char *method = NULL;
  int n_connections = 1;
  gint64 per_connection = N_CALLBACKS_DEFAULT;
  GOptionEntry entries[] = {
    { "uri", 0, 0, G_OPTION_ARG_STRING, &uri, "Server", "URI" },
    { "method", 0, 0, G_OPTION_ARG_STRING, &method, "subscribe (default) or subscribe-held", "NAME" },
    { "connections", 0, 0, G_OPTION_ARG_INT, &n_connections, "Connections to open", "N" },
    { "per-connection", 0, 0, G_OPTION_ARG_INT64, &per_connection, "Callbacks to ask for on each", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("- blackhole attacker role");
  g_autoptr(GError) error = NULL;
  Attacker a = { 0 };

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error) || uri == NULL || n_connections < 1)
    {
      g_printerr ("attacker: %s\n", error != NULL ? error->message : "--uri is required");
      return 2;
    }
  peer_raise_fd_limit ();

  a.loop = g_main_loop_new (NULL, FALSE);
  a.uri = uri;
  a.n_connections = n_connections;
  a.per_connection = per_connection;
  a.method = method != NULL ? method : "subscribe";
  a.clients = g_ptr_array_new ();
  a.held = g_ptr_array_new ();
  stdin_reader_start (attacker_stdin_line, &a);
  attacker_pump (&a);

  g_main_loop_run (a.loop);

  /* Leave without answering anything: the black hole just disappears. */
  fflush (stdout);
  _exit (0);
}

/* ---------------------------------------------------------------------- */
/* Role: client                                                           */

typedef struct
{
  TetherClient *client;
  guint         total;
  guint         warmup;
  guint         done;
  guint         errors;
  gint64        t0;
  gint64       *latency_ns;   /* measured calls only */
  gboolean      finished;
  char         *last_error;
} LatencyRun;

static void echo_next (LatencyRun *r);

static void
echo_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  LatencyRun *r = user_data;
  gint64 t1 = peer_now_ns ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = tether_client_call_finish (TETHER_CLIENT (source), result, &error);

  if (answer == NULL)
    {
      r->errors++;
      g_free (r->last_error);
      r->last_error = g_strdup (error->message);
    }
  if (r->done >= r->warmup)
    r->latency_ns[r->done - r->warmup] = t1 - r->t0;
  r->done++;
  if (r->done < r->total)
    echo_next (r);
  else
    r->finished = TRUE;
}

static void
echo_next (LatencyRun *r)
{
  GVariant *params = vardict_int ("seq", r->done);

  r->t0 = peer_now_ns ();
  tether_client_call_async (r->client, "echo", params, 10000, NULL, echo_done_cb, r);
}

static void
client_connected_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  GError **error = user_data;

  if (!tether_client_connect_finish (TETHER_CLIENT (source), result, error))
    g_assert (*error != NULL);
  else
    *error = g_error_new_literal (G_IO_ERROR, 0, "ok");
}

static int
role_client (int    argc,
             char **argv)
{
  g_autofree char *uri = NULL;
  int calls = 2000;
  int warmup = 200;
  GOptionEntry entries[] = {
    { "uri", 0, 0, G_OPTION_ARG_STRING, &uri, "Server", "URI" },
    { "calls", 0, 0, G_OPTION_ARG_INT, &calls, "Measured calls", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "Calls before measuring", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("- blackhole client role");
  g_autoptr(GError) error = NULL;
  GError *connect_result = NULL;
  LatencyRun r = { 0 };
  double sum = 0, p50, p90, p99;
  guint n;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error) || uri == NULL || calls < 1 || warmup < 0)
    {
      g_printerr ("client: %s\n", error != NULL ? error->message : "--uri is required");
      return 2;
    }

  r.client = tether_client_new (uri);
  tether_client_connect_async (r.client, NULL, client_connected_cb, &connect_result);
  if (!HARNESS_WAIT_UNTIL (connect_result != NULL, 20000))
    {
      peer_emit ("ERROR connect timed out");
      return 1;
    }
  if (connect_result->domain != G_IO_ERROR || connect_result->code != 0)
    {
      peer_emit ("ERROR connect: %s", connect_result->message);
      return 1;
    }
  g_clear_error (&connect_result);

  r.total = calls + warmup;
  r.warmup = warmup;
  r.latency_ns = g_new0 (gint64, calls);
  echo_next (&r);
  if (!HARNESS_WAIT_UNTIL (r.finished, 60000))
    {
      peer_emit ("ERROR only %u of %u calls finished in 60 s", r.done, r.total);
      return 1;
    }

  n = (guint) calls;
  for (guint i = 0; i < n; i++)
    sum += r.latency_ns[i];
  /* Nearest rank; the first call sorts them, so the last is the slowest. */
  p50 = peer_percentile_us (r.latency_ns, n, 50);
  p90 = peer_percentile_us (r.latency_ns, n, 90);
  p99 = peer_percentile_us (r.latency_ns, n, 99);
  peer_emit ("RESULT n=%u errors=%u p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f%s%s",
             n, r.errors, p50, p90, p99, r.latency_ns[n - 1] / 1000.0, sum / n / 1000.0,
             r.last_error != NULL ? " last_error=" : "", r.last_error != NULL ? r.last_error : "");
  fflush (stdout);
  _exit (0);
}

/* ---------------------------------------------------------------------- */
/* Orchestrator: children                                                 */

static char  **server_wrapper;   /* argv prefix for the server role (profilers) */
static char   *self_exe;

/* This program in role @args[0], on the orchestrator's CPUs; the server
 * (@wrapped) under --server-wrapper if there is one. */
static HarnessChild *
spawn_role (const char         *name,
            const char * const *args,
            gboolean            wrapped,
            GError            **error)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();

  if (wrapped && server_wrapper != NULL)
    {
      for (guint i = 0; server_wrapper[i] != NULL; i++)
        g_ptr_array_add (argv, server_wrapper[i]);
      g_ptr_array_add (argv, self_exe);   /* a wrapper must not see its own /proc/self/exe */
    }
  else
    g_ptr_array_add (argv, (gpointer) "/proc/self/exe");
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  return harness_child_spawn (name, (const char * const *) argv->pdata, HARNESS_CPU_INHERIT, error);
}

/* ---------------------------------------------------------------------- */
/* Orchestrator: the server as seen from outside                          */

typedef struct
{
  gint64 rss_kb;
  gint64 hwm_kb;
  gint64 threads;
  gint64 fds;
  gint64 heap_in_use;   /* from the server's own `stats` */
  gint64 heap_held;
} Sample;

/* FALSE, and @s as it was, once the server is gone. */
static gboolean
read_proc_status (GPid    pid,
                  Sample *s)
{
  gint64 rss_kb = harness_proc_rss_kb (pid);

  if (rss_kb < 0)
    return FALSE;
  s->rss_kb = rss_kb;
  s->hwm_kb = harness_proc_status (pid, "VmHWM");
  s->threads = harness_proc_status (pid, "Threads");
  s->fds = MAX (harness_proc_fd_count (pid), 0);
  return s->threads >= 0;
}

typedef struct
{
  GVariant *value;
  GError   *error;
  gboolean  done;
} CallResult;

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CallResult *r = user_data;

  r->value = tether_client_call_finish (TETHER_CLIENT (source), result, &r->error);
  r->done = TRUE;
}

/* The server's `stats`, or NULL. Bounded. */
static GVariant *
query_stats (TetherClient *client)
{
  CallResult *r = g_new0 (CallResult, 1);
  GVariant *value;

  tether_client_call_async (client, "stats", NULL, 5000, NULL, call_done_cb, r);
  if (!HARNESS_WAIT_UNTIL (r->done, 6000))
    return NULL;   /* r leaks: the call may still finish into it */
  if (r->error != NULL)
    g_printerr ("blackhole: stats: %s\n", r->error->message);
  value = r->value;
  g_clear_error (&r->error);
  g_free (r);
  return value;
}

/* ---------------------------------------------------------------------- */
/* Orchestrator: one mode                                                 */

typedef struct
{
  const char *key;
  const char *title;
  guint       n_attackers;
  guint       connections_per_attacker;
  guint       callbacks_per_connection;
  guint       max_pending_callbacks;
  const char *method;                /* what the attackers call */
} Mode;

#define N_ROUNDS_MAX 9

/* The latency rounds of one phase. A round during which other processes
 * took a noticeable share of the CPUs is run again (up to 3× the rounds
 * asked for); if clean rounds stay short, the dirty ones fill in. */
typedef struct
{
  double p50[N_ROUNDS_MAX];
  double p99[N_ROUNDS_MAX];
  double cpu_us[N_ROUNDS_MAX];   /* server CPU per call (schedstat) */
  double wait_us[N_ROUNDS_MAX];  /* server run-queue wait per call */
  guint  n;          /* rounds kept */
  guint  clean;      /* of which clean */
  guint  tried;      /* rounds run */
} Latency;

typedef struct
{
  const Mode *mode;
  gboolean    ok;
  char       *error;
  guint       target;             /* callbacks expected pending */
  guint       connections;        /* attacker connections established */
  Sample      idle;               /* server up, nobody connected but the orchestrator */
  Sample      base;               /* attackers connected, quiet */
  Sample      base_after;         /* after the baseline latency runs */
  Sample      attack;             /* every callback pending */
  Sample      attack_after;       /* after the latency runs under attack */
  gint64      pending;            /* the server's pending_calls under attack */
  gint64      pending_after;
  gint64      rejected;
  gint64      timed_out;
  gint64      held;               /* callbacks the attackers report holding */
  double      subscribe_s;        /* from "subscribe" to all pending + flushed */
  Latency     lat_idle;           /* no attacker connected: what connections cost */
  Latency     lat_base;           /* attackers connected, quiet */
  Latency     lat_attack;         /* every callback pending */
  guint       latency_errors;
} ModeResult;

typedef struct
{
  guint  n_callbacks;
  guint  calls;
  guint  warmup;
  guint  rounds;
  guint  settle_ms;
  guint  server_grace_ms;
  char  *uri_kind;
  char  *dir;
  char **server_limits;   /* extra --limit NAME=VALUE for the server */
} Options;

static void
mode_fail (ModeResult *r,
           const char *format,
           ...) G_GNUC_PRINTF (2, 3);

static void
mode_fail (ModeResult *r,
           const char *format,
           ...)
{
  va_list args;

  va_start (args, format);
  g_free (r->error);
  r->error = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("blackhole: %s: %s\n", r->mode->title, r->error);
}

/* The main thread's time on a CPU and waiting for one, in ns
 * (/proc/PID/schedstat): exact, and blind to other processes. */
static gboolean
read_schedstat (GPid    pid,
                gint64 *run_ns,
                gint64 *wait_ns)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/schedstat", (int) pid);
  g_autofree char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL) ||
      sscanf (text, "%" G_GINT64_FORMAT " %" G_GINT64_FORMAT, run_ns, wait_ns) != 2)
    {
      *run_ns = *wait_ns = 0;
      return FALSE;
    }
  return TRUE;
}

typedef struct
{
  double       p50, p99;
  HarnessNoise noise;     /* what other processes used meanwhile */
  double       cpu_us;    /* server CPU per call */
  double       wait_us;   /* server run-queue wait per call */
} Round;

/* One latency run in a fresh client process. */
static gboolean
run_latency_client (const Options *opt,
                    const char    *uri,
                    GPid           server_pid,
                    Round         *round,
                    guint         *errors)
{
  double *p50 = &round->p50, *p99 = &round->p99;
  gint64 run0, wait0, run1, wait1;
  gboolean sched = read_schedstat (server_pid, &run0, &wait0);
  g_autofree char *calls = g_strdup_printf ("%u", opt->calls);
  g_autofree char *warmup = g_strdup_printf ("%u", opt->warmup);
  const char *args[] = { "client", "--uri", uri, "--calls", calls, "--warmup", warmup, NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  double err = 0;
  HarnessChild *c;

  harness_noise_start (&round->noise);
  c = spawn_role ("client", args, FALSE, &error);
  if (c == NULL)
    {
      g_printerr ("blackhole: cannot start the client: %s\n", error->message);
      return FALSE;
    }
  line = harness_child_wait_line (c, "RESULT ", 60000);
  harness_child_stop (c, 0);   /* reaped: its CPU time is in RUSAGE_CHILDREN now */
  harness_noise_stop (&round->noise);
  /* The connection set-up is in there too, spread over every call. */
  sched = read_schedstat (server_pid, &run1, &wait1) && sched;
  round->cpu_us = sched ? (run1 - run0) / 1000.0 / (opt->calls + opt->warmup) : NAN;
  round->wait_us = sched ? (wait1 - wait0) / 1000.0 / (opt->calls + opt->warmup) : NAN;
  if (line == NULL || !harness_parse_kv_double (line, "p50_us", p50) ||
      !harness_parse_kv_double (line, "p99_us", p99))
    {
      g_printerr ("blackhole: the latency client gave no result\n");
      return FALSE;
    }
  if (harness_parse_kv_double (line, "errors", &err) && err > 0)
    g_printerr ("blackhole: latency client: %s\n", line);
  *errors += (guint) err;
  return TRUE;
}

static void
latency_keep (Latency     *lat,
              const Round *round)
{
  lat->p50[lat->n] = round->p50;
  lat->p99[lat->n] = round->p99;
  lat->cpu_us[lat->n] = round->cpu_us;
  lat->wait_us[lat->n] = round->wait_us;
  lat->n++;
}

static gboolean
measure_latency (const Options *opt,
                 const char    *uri,
                 GPid           server_pid,
                 Latency       *lat,
                 guint         *errors)
{
  Round dirty[N_ROUNDS_MAX * 3];
  double dirty_share[N_ROUNDS_MAX * 3];
  guint n_dirty = 0;

  memset (lat, 0, sizeof *lat);
  while (lat->clean < opt->rounds && lat->tried < opt->rounds * 3)
    {
      Round round;

      if (!run_latency_client (opt, uri, server_pid, &round, errors))
        return FALSE;
      lat->tried++;
      /* Tick granularity (10 ms) on both readings: allow some slack.
       * Bounds of its own, not harness_noise_stop ()'s verdict. */
      if (round.noise.foreign <= MAX (0.03, 0.2 * round.noise.wall))
        {
          latency_keep (lat, &round);
          lat->clean++;
        }
      else
        {
          dirty[n_dirty] = round;
          dirty_share[n_dirty] = round.noise.foreign / round.noise.wall;
          n_dirty++;
          g_printerr ("blackhole:   (a round disturbed: other processes used %.0f%% of a CPU; p99 %.0f µs)\n",
                      100 * dirty_share[n_dirty - 1], round.p99);
        }
    }
  /* Short of clean rounds: the least disturbed of the others fill in. */
  while (lat->n < opt->rounds && n_dirty > 0)
    {
      guint best = 0;

      for (guint i = 1; i < n_dirty; i++)
        if (dirty_share[i] < dirty_share[best])
          best = i;
      if (dirty_share[best] == G_MAXDOUBLE)
        break;
      latency_keep (lat, &dirty[best]);
      dirty_share[best] = G_MAXDOUBLE;
    }
  return TRUE;
}

static gboolean
sample_server (HarnessChild *server,
               TetherClient *stats_client,
               Sample       *s,
               GVariant    **stats_out)
{
  g_autoptr(GVariant) stats = query_stats (stats_client);

  /* RSS after the stats call: it is the same call each time. */
  if (!read_proc_status (server->pid, s))
    return FALSE;
  s->heap_in_use = vardict_get (stats, "heap_in_use");
  s->heap_held = vardict_get (stats, "heap_held");
  if (stats_out != NULL)
    *stats_out = g_steal_pointer (&stats);
  return TRUE;
}

static void
stats_connected_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  GError **error = user_data;

  if (!tether_client_connect_finish (TETHER_CLIENT (source), result, error))
    g_assert (*error != NULL);
  else
    *error = g_error_new_literal (G_IO_ERROR, 0, "ok");
}

static void
run_mode (const Options *opt,
          const Mode    *mode,
          ModeResult    *r)
{
  g_autofree char *uri_arg = NULL;
  g_autofree char *lim_pending = g_strdup_printf ("max-pending-callbacks=%u", mode->max_pending_callbacks);
  g_autofree char *lim_total = g_strdup_printf ("max-total-callbacks=%u", MAX (opt->n_callbacks, 1));
  g_autofree char *lim_conns = g_strdup_printf ("max-connections-per-peer=%u",
                                                mode->n_attackers * mode->connections_per_attacker + 64);
  const char *fixed_args[] = {
    "server", "--uri", NULL,
    "--limit", lim_pending,
    "--limit", lim_total,
    "--limit", lim_conns,
    "--limit", "max-invocations-per-peer=64",
  };
  g_autoptr(GPtrArray) server_args = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *ready = NULL;
  g_autoptr(GPtrArray) attackers = g_ptr_array_new ();
  TetherClient *stats_client = NULL;
  GError *connect_result = NULL;
  HarnessChild *server = NULL;
  const char *uri;
  gint64 t_subscribe;
  gboolean all_pending = FALSE;

  memset (r, 0, sizeof *r);
  r->mode = mode;
  r->target = mode->n_attackers * mode->connections_per_attacker * mode->callbacks_per_connection;

  if (g_strcmp0 (opt->uri_kind, "ws") == 0)
    uri_arg = g_strdup ("ws://127.0.0.1:0");
  else
    uri_arg = g_strdup_printf ("unix:%s/%s.sock", opt->dir, mode->key);
  fixed_args[2] = uri_arg;
  for (guint i = 0; i < G_N_ELEMENTS (fixed_args); i++)
    g_ptr_array_add (server_args, (gpointer) fixed_args[i]);
  for (guint i = 0; opt->server_limits != NULL && opt->server_limits[i] != NULL; i++)
    {
      g_ptr_array_add (server_args, (gpointer) "--limit");
      g_ptr_array_add (server_args, opt->server_limits[i]);
    }
  g_ptr_array_add (server_args, NULL);

  g_printerr ("blackhole: %s: starting the server\n", mode->title);
  server = spawn_role ("server", (const char * const *) server_args->pdata, TRUE, &error);
  if (server == NULL)
    {
      mode_fail (r, "cannot start the server: %s", error->message);
      return;
    }
  ready = harness_child_wait_line (server, "READY ", server_wrapper != NULL ? 60000 : 10000);
  if (ready == NULL)
    {
      mode_fail (r, "the server did not start");
      goto out;
    }
  uri = ready + strlen ("READY ");

  /* The orchestrator's own connection, for `stats`: present in every
   * sample, so it cancels out. */
  stats_client = tether_client_new (uri);
  g_object_set (stats_client, "idle-timeout", 0, NULL);
  tether_client_connect_async (stats_client, NULL, stats_connected_cb, &connect_result);
  if (!HARNESS_WAIT_UNTIL (connect_result != NULL, 10000) ||
      connect_result->domain != G_IO_ERROR || connect_result->code != 0)
    {
      mode_fail (r, "cannot connect to the server: %s",
                 connect_result != NULL ? connect_result->message : "timed out");
      goto out;
    }
  harness_sleep_ms (opt->settle_ms);
  sample_server (server, stats_client, &r->idle, NULL);

  /* For reference: the latency with no attacker connected at all, so what
   * the connections cost can be told from what the callbacks cost. */
  g_printerr ("blackhole: %s: latency with no attacker connected (%u rounds)\n", mode->title, opt->rounds);
  if (!measure_latency (opt, uri, server->pid, &r->lat_idle, &r->latency_errors))
    {
      mode_fail (r, "a latency run without attackers failed");
      goto out;
    }
  sample_server (server, stats_client, &r->idle, NULL);

  /* Attackers connect, and wait. */
  g_printerr ("blackhole: %s: %u attacker process(es) × %u connection(s)\n", mode->title,
              mode->n_attackers, mode->connections_per_attacker);
  for (guint i = 0; i < mode->n_attackers; i++)
    {
      g_autofree char *conns = g_strdup_printf ("%u", mode->connections_per_attacker);
      g_autofree char *per = g_strdup_printf ("%u", mode->callbacks_per_connection);
      g_autofree char *name = g_strdup_printf ("attacker%u", i);
      const char *args[] = { "attacker", "--uri", uri, "--connections", conns,
                             "--per-connection", per, "--method", mode->method, NULL };
      HarnessChild *a = spawn_role (name, args, FALSE, &error);

      if (a == NULL)
        {
          mode_fail (r, "cannot start an attacker: %s", error->message);
          goto out;
        }
      g_ptr_array_add (attackers, a);
    }
  for (guint i = 0; i < attackers->len; i++)
    {
      g_autofree char *line = harness_child_wait_line (g_ptr_array_index (attackers, i), "CONNECTED ", 30000);
      double ok = 0, failed = 0, retries = 0;

      if (line == NULL || !harness_parse_kv_double (line, "ok", &ok))
        {
          mode_fail (r, "an attacker did not connect in time");
          goto out;
        }
      harness_parse_kv_double (line, "failed", &failed);
      harness_parse_kv_double (line, "retries", &retries);
      if (failed > 0 || retries > 0)
        g_printerr ("blackhole: attacker%u: %s\n", i, line);
      r->connections += (guint) ok;
    }
  if (r->connections != mode->n_attackers * mode->connections_per_attacker)
    {
      mode_fail (r, "only %u of %u attacker connections were accepted", r->connections,
                 mode->n_attackers * mode->connections_per_attacker);
      goto out;
    }

  /* Baseline: the black holes are connected, nothing is pending. */
  harness_sleep_ms (opt->settle_ms);
  sample_server (server, stats_client, &r->base, NULL);
  g_printerr ("blackhole: %s: baseline latency (%u rounds)\n", mode->title, opt->rounds);
  if (!measure_latency (opt, uri, server->pid, &r->lat_base, &r->latency_errors))
    {
      mode_fail (r, "a baseline latency run failed");
      goto out;
    }
  sample_server (server, stats_client, &r->base_after, NULL);

  /* Attack: every connection subscribes; wait until the server holds
   * every callback pending and has written them all out. */
  g_printerr ("blackhole: %s: subscribing %u callbacks\n", mode->title, r->target);
  t_subscribe = g_get_monotonic_time ();
  for (guint i = 0; i < attackers->len; i++)
    harness_child_send (g_ptr_array_index (attackers, i), "subscribe");
  for (gint64 end = t_subscribe + 40 * G_USEC_PER_SEC; g_get_monotonic_time () < end;)
    {
      g_autoptr(GVariant) stats = query_stats (stats_client);

      r->pending = vardict_get (stats, "pending_calls");
      r->rejected = vardict_get (stats, "rejected");
      if (r->pending >= r->target && vardict_get (stats, "bytes_queued") == 0)
        {
          all_pending = TRUE;
          break;
        }
      if (r->rejected > 0)
        break;
      harness_sleep_ms (50);
    }
  r->subscribe_s = (g_get_monotonic_time () - t_subscribe) / (double) G_USEC_PER_SEC;
  if (!all_pending)
    {
      mode_fail (r, "only %" G_GINT64_FORMAT " of %u callbacks pending (rejected %" G_GINT64_FORMAT ")",
                 r->pending, r->target, r->rejected);
      goto out;
    }
  /* …and the attackers have them (all read, none answered). */
  for (guint i = 0; i < attackers->len; i++)
    {
      HarnessChild *a = g_ptr_array_index (attackers, i);
      /* subscribe-held is never answered: nothing to wait for. */
      g_autofree char *sub = g_str_equal (mode->method, "subscribe")
                             ? harness_child_wait_line (a, "SUBSCRIBED ", 10000) : NULL;
      gint64 want = (gint64) mode->connections_per_attacker * mode->callbacks_per_connection;
      double held = 0;

      for (gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
           g_get_monotonic_time () < end;)
        {
          g_autofree char *line = NULL;

          harness_child_send (a, "report");
          line = harness_child_wait_line (a, "HELD ", 5000);
          if (line == NULL || !harness_parse_kv_double (line, "n", &held) || held >= want)
            break;
          harness_sleep_ms (50);
        }
      r->held += (gint64) held;
    }
  if (r->held != r->target)
    g_printerr ("blackhole: %s: the attackers hold %" G_GINT64_FORMAT " of %u callbacks\n",
                mode->title, r->held, r->target);

  harness_sleep_ms (opt->settle_ms);
  sample_server (server, stats_client, &r->attack, NULL);
  g_printerr ("blackhole: %s: latency under attack (%u rounds)\n", mode->title, opt->rounds);
  if (!measure_latency (opt, uri, server->pid, &r->lat_attack, &r->latency_errors))
    {
      mode_fail (r, "a latency run under attack failed");
      goto out;
    }
  {
    g_autoptr(GVariant) stats = NULL;

    sample_server (server, stats_client, &r->attack_after, &stats);
    r->pending_after = vardict_get (stats, "pending_calls");
    r->rejected = vardict_get (stats, "rejected");
    r->timed_out = vardict_get (stats, "timed_out");
  }
  r->ok = TRUE;

out:
  if (stats_client != NULL)
    {
      tether_client_close (stats_client);
      g_object_unref (stats_client);
    }
  g_clear_error (&connect_result);
  /* The server first (a profiler around it gets its grace), then the
   * attackers. */
  if (server != NULL && !harness_child_stop (server, server_wrapper != NULL ? opt->server_grace_ms : 0))
    g_printerr ("blackhole: the server (pid %d) did not exit\n", (int) server->pid);
  for (guint i = 0; i < attackers->len; i++)
    harness_child_stop (g_ptr_array_index (attackers, i), 0);
}

/* ---------------------------------------------------------------------- */
/* Orchestrator: report                                                   */

typedef struct
{
  double rss_per_cb;
  double rss_per_cb_after;   /* against the post-latency baseline */
  double heap_per_cb;
  double rss_per_conn;
  double p50_idle, p99_idle, p50_base, p99_base, p50_attack, p99_attack, ratio;
  double cpu_idle, cpu_base, cpu_attack, wait_idle, wait_base, wait_attack;
  gboolean pass_rss, pass_threads, pass_ratio;
} Figures;

static void
compute (const ModeResult *r,
         Figures          *f)
{
  double n = r->target > 0 ? r->target : 1;

  f->rss_per_cb = (r->attack.rss_kb - r->base.rss_kb) * 1024.0 / n;
  f->rss_per_cb_after = (r->attack.rss_kb - r->base_after.rss_kb) * 1024.0 / n;
  f->heap_per_cb = (double) (r->attack.heap_in_use - r->base.heap_in_use) / n;
  f->rss_per_conn = r->connections > 0 ? (r->base.rss_kb - r->idle.rss_kb) * 1024.0 / r->connections : NAN;
  f->p50_idle = harness_median (r->lat_idle.p50, r->lat_idle.n);
  f->p99_idle = harness_median (r->lat_idle.p99, r->lat_idle.n);
  f->p50_base = harness_median (r->lat_base.p50, r->lat_base.n);
  f->p99_base = harness_median (r->lat_base.p99, r->lat_base.n);
  f->p50_attack = harness_median (r->lat_attack.p50, r->lat_attack.n);
  f->p99_attack = harness_median (r->lat_attack.p99, r->lat_attack.n);
  f->ratio = f->p99_attack / f->p99_base;
  f->cpu_idle = harness_median (r->lat_idle.cpu_us, r->lat_idle.n);
  f->cpu_base = harness_median (r->lat_base.cpu_us, r->lat_base.n);
  f->cpu_attack = harness_median (r->lat_attack.cpu_us, r->lat_attack.n);
  f->wait_idle = harness_median (r->lat_idle.wait_us, r->lat_idle.n);
  f->wait_base = harness_median (r->lat_base.wait_us, r->lat_base.n);
  f->wait_attack = harness_median (r->lat_attack.wait_us, r->lat_attack.n);
  f->pass_rss = r->ok && f->rss_per_cb <= RSS_TARGET_BYTES;
  f->pass_threads = r->ok && r->attack.threads == r->base.threads;
  f->pass_ratio = r->ok && f->ratio <= P99_RATIO_TARGET;
}

static const char *
verdict (gboolean pass)
{
  return pass ? "PASS" : "FAIL";
}

static void
print_rounds (const char   *label,
              const double *values,
              guint         n)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s%.1f", i ? " / " : "", values[i]);
  printf ("    %-34s %s\n", label, s->str);
  g_string_free (s, TRUE);
}

static void
print_latency (const char    *label,
               const Latency *lat,
               double         p50,
               double         p99,
               double         cpu_us,
               double         wait_us)
{
  printf ("    %-34s p50 %7.1f   p99 %7.1f      %5.1f / %5.1f      %u/%u%s\n", label, p50, p99,
          cpu_us, wait_us, lat->clean, lat->tried,
          lat->clean < lat->n ? "  (noisy: other processes were busy)" : "");
}

static void
print_mode (const ModeResult *r)
{
  Figures f;

  compute (r, &f);
  printf ("\n== %s: %u attacker connection(s), %u callbacks pending ==\n", r->mode->title,
          r->mode->n_attackers * r->mode->connections_per_attacker, r->target);
  if (!r->ok)
    {
      printf ("  NOT MEASURED: %s\n", r->error != NULL ? r->error : "unknown failure");
      if (r->base.rss_kb <= 0)
        return;
    }
  printf ("  server pending_calls under attack   %" G_GINT64_FORMAT " (after the latency runs: %"
          G_GINT64_FORMAT "; rejected %" G_GINT64_FORMAT ", timed out %" G_GINT64_FORMAT ")\n",
          r->pending, r->pending_after, r->rejected, r->timed_out);
  printf ("  callbacks held by the attackers     %" G_GINT64_FORMAT "   (all sent, none answered; %.2f s to get there)\n",
          r->held, r->subscribe_s);
  printf ("  server VmRSS  idle / connected / attack   %" G_GINT64_FORMAT " / %" G_GINT64_FORMAT
          " / %" G_GINT64_FORMAT " KiB  (VmHWM %" G_GINT64_FORMAT " KiB)\n",
          r->idle.rss_kb, r->base.rss_kb, r->attack.rss_kb, r->attack_after.hwm_kb);
  printf ("  server heap in use  connected / attack    %" G_GINT64_FORMAT " / %" G_GINT64_FORMAT " bytes\n",
          r->base.heap_in_use, r->attack.heap_in_use);
  if (r->connections > 1)
    printf ("  RSS per attacker connection         %8.0f bytes\n", f.rss_per_conn);
  printf ("  RSS per pending callback            %8.0f bytes   target <= %.0f   %s\n",
          f.rss_per_cb, RSS_TARGET_BYTES, verdict (f.pass_rss));
  printf ("    (against the baseline taken after the baseline latency runs: %.0f bytes)\n",
          f.rss_per_cb_after);
  printf ("  heap in use per pending callback    %8.0f bytes   (malloc's own count)\n", f.heap_per_cb);
  printf ("  server threads  idle / connected / attack   %" G_GINT64_FORMAT " / %" G_GINT64_FORMAT
          " / %" G_GINT64_FORMAT "   target: equal   %s\n",
          r->idle.threads, r->base.threads, r->attack.threads, verdict (f.pass_threads));
  printf ("  server fds  idle / connected / attack       %" G_GINT64_FORMAT " / %" G_GINT64_FORMAT
          " / %" G_GINT64_FORMAT "\n", r->idle.fds, r->base.fds, r->attack.fds);
  if (r->lat_attack.n > 0 && !isnan (f.p99_attack))
    {
      printf ("  echo latency, µs (median of the rounds; sequential calls)  server CPU / run-queue wait per call, µs   rounds clean/run\n");
      print_latency ("no attacker connected (reference)", &r->lat_idle, f.p50_idle, f.p99_idle, f.cpu_idle, f.wait_idle);
      print_latency ("without attack", &r->lat_base, f.p50_base, f.p99_base, f.cpu_base, f.wait_base);
      print_latency ("under attack", &r->lat_attack, f.p50_attack, f.p99_attack, f.cpu_attack, f.wait_attack);
      print_rounds ("p99 rounds without attack", r->lat_base.p99, r->lat_base.n);
      print_rounds ("p99 rounds under attack", r->lat_attack.p99, r->lat_attack.n);
      printf ("  p99 under attack / p99 without      %8.2f         target <= %.1f     %s\n",
              f.ratio, P99_RATIO_TARGET, verdict (f.pass_ratio));
      printf ("  server CPU per call, attack / without %6.2f         (schedstat: blind to other processes)\n",
              f.cpu_attack / f.cpu_base);
      if (r->latency_errors > 0)
        printf ("  (%u latency calls failed)\n", r->latency_errors);
    }
}

static void
json_sample (GString      *j,
             const char   *name,
             const Sample *s)
{
  g_string_append_printf (j, "\"%s\": {\"rss_kb\": %" G_GINT64_FORMAT ", \"hwm_kb\": %" G_GINT64_FORMAT
                          ", \"threads\": %" G_GINT64_FORMAT ", \"fds\": %" G_GINT64_FORMAT
                          ", \"heap_in_use\": %" G_GINT64_FORMAT ", \"heap_held\": %" G_GINT64_FORMAT "}",
                          name, s->rss_kb, s->hwm_kb, s->threads, s->fds, s->heap_in_use, s->heap_held);
}

static char *
results_json (const Options      *opt,
              const ModeResult   *results,
              guint               n,
              double              load_start,
              const HarnessNoise *run)
{
  GString *j = g_string_new ("{\n  \"benchmark\": \"blackhole\",\n  ");
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format_iso8601 (now);

  harness_json_num (j, "load_average_start", load_start, 2);
  g_string_append (j, ", ");
  harness_json_num (j, "other_processes_cpu_seconds", run->foreign, 2);
  g_string_append (j, ", ");
  harness_json_num (j, "wall_seconds", run->wall, 2);
  g_string_append_printf (j, ",\n  \"cpus\": %u,\n", g_get_num_processors ());
  g_string_append_printf (j, "  \"date\": \"%s\",\n  \"tether_version\": \"%s\",\n", stamp, TETHER_VERSION_S);
  g_string_append_printf (j, "  \"transport\": \"%s\",\n  \"callbacks\": %u,\n  \"calls_per_round\": %u,\n"
                          "  \"warmup\": %u,\n  \"rounds\": %u,\n",
                          g_strcmp0 (opt->uri_kind, "ws") == 0 ? "ws" : "unix",
                          opt->n_callbacks, opt->calls, opt->warmup, opt->rounds);
  g_string_append (j, "  \"targets\": {\"rss_per_callback_bytes\": 1024, \"threads\": \"equal\", "
                      "\"p99_ratio\": 2.0},\n");
  g_string_append (j, "  \"anchors_bytes_per_pending_callback\": {\"jsonrpc-glib\": 900, \"GDBus\": 4200, "
                      "\"Cap'n Proto\": 6500, \"gRPC\": 18600},\n");
  g_string_append (j, "  \"modes\": [\n");
  for (guint i = 0; i < n; i++)
    {
      const ModeResult *r = &results[i];
      Figures f;

      compute (r, &f);
      g_string_append_printf (j, "    {\"mode\": \"%s\", \"title\": \"%s\", \"measured\": %s,\n",
                              r->mode->key, r->mode->title, r->ok ? "true" : "false");
      if (r->error != NULL)
        {
          g_string_append (j, "     ");
          harness_json_str (j, "error", r->error);
          g_string_append (j, ",\n");
        }
      g_string_append_printf (j, "     \"attacker_connections\": %u, \"callbacks_target\": %u, "
                              "\"pending_calls\": %" G_GINT64_FORMAT ", \"pending_calls_after\": %" G_GINT64_FORMAT
                              ", \"held_by_attackers\": %" G_GINT64_FORMAT ", \"rejected\": %" G_GINT64_FORMAT
                              ", \"timed_out\": %" G_GINT64_FORMAT ", \"max_pending_callbacks\": %u,\n     ",
                              r->connections, r->target, r->pending, r->pending_after, r->held, r->rejected,
                              r->timed_out, r->mode->max_pending_callbacks);
      harness_json_num (j, "subscribe_seconds", r->subscribe_s, 2);
      g_string_append (j, ",\n     ");
      json_sample (j, "idle", &r->idle);
      g_string_append (j, ",\n     ");
      json_sample (j, "baseline", &r->base);
      g_string_append (j, ",\n     ");
      json_sample (j, "baseline_after_latency", &r->base_after);
      g_string_append (j, ",\n     ");
      json_sample (j, "attack", &r->attack);
      g_string_append (j, ",\n     ");
      json_sample (j, "attack_after_latency", &r->attack_after);
      g_string_append (j, ",\n     ");
      harness_json_num (j, "rss_per_callback_bytes", f.rss_per_cb, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "rss_per_callback_bytes_vs_post_latency_baseline", f.rss_per_cb_after, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "heap_per_callback_bytes", f.heap_per_cb, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "rss_per_connection_bytes", f.rss_per_conn, 2);
      g_string_append (j, ",\n     ");
      harness_json_num (j, "p50_us_no_attackers", f.p50_idle, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "p99_us_no_attackers", f.p99_idle, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "p50_us_baseline", f.p50_base, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "p99_us_baseline", f.p99_base, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "p50_us_attack", f.p50_attack, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "p99_us_attack", f.p99_attack, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "p99_ratio", f.ratio, 2);
      g_string_append (j, ",\n     ");
      harness_json_num (j, "server_cpu_us_per_call_no_attackers", f.cpu_idle, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "server_cpu_us_per_call_baseline", f.cpu_base, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "server_cpu_us_per_call_attack", f.cpu_attack, 2);
      g_string_append (j, ",\n     ");
      harness_json_num (j, "server_runqueue_wait_us_per_call_no_attackers", f.wait_idle, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "server_runqueue_wait_us_per_call_baseline", f.wait_base, 2);
      g_string_append (j, ", ");
      harness_json_num (j, "server_runqueue_wait_us_per_call_attack", f.wait_attack, 2);
      g_string_append (j, ",\n     ");
      harness_json_array (j, "p99_us_no_attackers_rounds", r->lat_idle.p99, r->lat_idle.n, 1);
      g_string_append (j, ",\n     ");
      harness_json_array (j, "p50_us_baseline_rounds", r->lat_base.p50, r->lat_base.n, 1);
      g_string_append (j, ", ");
      harness_json_array (j, "p99_us_baseline_rounds", r->lat_base.p99, r->lat_base.n, 1);
      g_string_append (j, ",\n     ");
      harness_json_array (j, "p50_us_attack_rounds", r->lat_attack.p50, r->lat_attack.n, 1);
      g_string_append (j, ", ");
      harness_json_array (j, "p99_us_attack_rounds", r->lat_attack.p99, r->lat_attack.n, 1);
      g_string_append_printf (j, ",\n     \"rounds_clean_of_run\": {\"no_attackers\": [%u, %u], "
                              "\"baseline\": [%u, %u], \"attack\": [%u, %u]}",
                              r->lat_idle.clean, r->lat_idle.tried, r->lat_base.clean, r->lat_base.tried,
                              r->lat_attack.clean, r->lat_attack.tried);
      g_string_append_printf (j, ", \"latency_errors\": %u,\n", r->latency_errors);
      g_string_append_printf (j, "     \"pass\": {\"rss_per_callback\": %s, \"threads\": %s, \"p99_ratio\": %s}}%s\n",
                              f.pass_rss ? "true" : "false", f.pass_threads ? "true" : "false",
                              f.pass_ratio ? "true" : "false", i + 1 < n ? "," : "");
    }
  g_string_append (j, "  ]\n}\n");
  return g_string_free (j, FALSE);
}

static int
orchestrate (int    argc,
             char **argv)
{
  g_autofree char *json_path = NULL;
  g_autofree char *wrapper = NULL;
  g_autofree char *only = NULL;
  int n_callbacks = N_CALLBACKS_DEFAULT;
  int attackers_many = 5;
  int calls = 2000;
  int warmup = 200;
  int rounds = 3;
  int budget = 115;
  int settle = 300;
  int grace = 30000;
  Options opt = { 0 };
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &json_path, "Write the results here (default bench-blackhole.json)", "FILE" },
    { "callbacks", 0, 0, G_OPTION_ARG_INT, &n_callbacks, "Callbacks to hold pending (default 10000)", "N" },
    { "attackers", 0, 0, G_OPTION_ARG_INT, &attackers_many, "Attacker processes in the many-connections mode (default 5)", "N" },
    { "calls", 0, 0, G_OPTION_ARG_INT, &calls, "Measured echo calls per round (default 2000)", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "Echo calls before measuring (default 200)", "N" },
    { "rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "Latency rounds; the median is reported (default 3)", "N" },
    { "mode", 0, 0, G_OPTION_ARG_STRING, &only,
      "one, many, parented (callbacks made through the causing invocation) or all; default: one and many", "MODE" },
    { "transport", 0, 0, G_OPTION_ARG_STRING, &opt.uri_kind, "unix (default) or ws", "KIND" },
    { "server-limit", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt.server_limits,
      "Set a server property on top of the mode's (e.g. keepalive-interval=0)", "NAME=VALUE" },
    { "settle", 0, 0, G_OPTION_ARG_INT, &settle, "Milliseconds to let the server settle before each sample (default 300)", "MS" },
    { "budget", 0, 0, G_OPTION_ARG_INT, &budget, "Seconds before the watchdog ends everything (default 115)", "S" },
    { "server-wrapper", 0, 0, G_OPTION_ARG_STRING, &wrapper,
      "Run the server role under this command, e.g. \"valgrind --tool=massif\" (memory figures then describe the wrapper)", "CMD" },
    { "server-grace", 0, 0, G_OPTION_ARG_INT, &grace, "With --server-wrapper: ms the server gets to exit by itself (default 30000)", "MS" },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("- what black-hole callbacks cost a Tether server");
  g_autoptr(GError) error = NULL;
  Mode modes[3];
  ModeResult results[3];
  guint n_modes = 0;
  g_autofree char *json = NULL;
  guint per_conn_many;
  HarnessNoise run;
  double load_start;

  g_option_context_set_summary (octx,
    "Roles (started by the orchestrator, usable by hand):\n"
    "  blackhole server --uri URI [--limit NAME=VALUE]...\n"
    "  blackhole attacker --uri URI [--connections N] [--per-connection N] [--method subscribe|subscribe-held]\n"
    "  blackhole client --uri URI [--calls N] [--warmup N]");
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    {
      g_printerr ("blackhole: %s\n", error->message);
      return 2;
    }
  if (n_callbacks < 16 || attackers_many < 1 || calls < 1 || warmup < 0 ||
      rounds < 1 || rounds > N_ROUNDS_MAX || budget < 10)
    {
      g_printerr ("blackhole: invalid option value\n");
      return 2;
    }
  if (only != NULL && g_strcmp0 (only, "one") != 0 && g_strcmp0 (only, "many") != 0 &&
      g_strcmp0 (only, "parented") != 0 && g_strcmp0 (only, "all") != 0)
    {
      g_printerr ("blackhole: --mode: one, many, parented or all\n");
      return 2;
    }

  /* The watchdog: whatever happens, the run ends; the children die with us
   * and the temporary directory goes. */
  harness_watchdog ((guint) budget);

  opt.n_callbacks = (guint) n_callbacks;
  opt.calls = (guint) calls;
  opt.warmup = (guint) warmup;
  opt.rounds = (guint) rounds;
  opt.settle_ms = (guint) settle;
  opt.server_grace_ms = (guint) grace;
  if (wrapper != NULL && !g_shell_parse_argv (wrapper, NULL, &server_wrapper, &error))
    {
      g_printerr ("blackhole: --server-wrapper: %s\n", error->message);
      return 2;
    }
  self_exe = g_file_read_link ("/proc/self/exe", NULL);
  opt.dir = harness_make_tmpdir ("tether-blackhole-XXXXXX", &error);
  if (opt.dir == NULL)
    {
      g_printerr ("blackhole: %s\n", error->message);
      return 1;
    }

  /* The default per-peer limit of 16 over as many connections as it
   * takes to reach the total. */
  per_conn_many = 16;
  modes[0] = (Mode) { "one", "one connection", 1, 1, opt.n_callbacks, opt.n_callbacks, "subscribe" };
  modes[1] = (Mode) { "many", "many connections", (guint) attackers_many,
                      (opt.n_callbacks / per_conn_many + attackers_many - 1) / attackers_many,
                      per_conn_many, per_conn_many, "subscribe" };
  /* Not in the default run: callbacks made through the invocation that
   * caused them (deadline and cancellation inherited), one connection. */
  modes[2] = (Mode) { "parented", "one connection, parented callbacks", 1, 1, opt.n_callbacks,
                      opt.n_callbacks, "subscribe-held" };

  /* Another process busy on a 2-CPU machine is the usual reason for a
   * noisy p99. */
  load_start = harness_load_average ();
  harness_noise_start (&run);
  for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      if (only == NULL ? i >= 2 : (g_strcmp0 (only, "all") != 0 && g_strcmp0 (only, modes[i].key) != 0))
        continue;
      run_mode (&opt, &modes[i], &results[n_modes]);
      n_modes++;
    }

  /* Every child has been reaped by now: what the machine did beyond
   * this run was someone else's work, competing for the CPUs. */
  harness_noise_stop (&run);

  /* Report. */
  printf ("\nTether black-hole benchmark: what unanswered callbacks cost the server\n");
  printf ("(server in its own process over %s, G_SLICE=always-malloc; echo latency of a legitimate\n"
          " client; %u measured calls after %u warm-up, %u rounds, median reported)\n",
          g_strcmp0 (opt.uri_kind, "ws") == 0 ? "ws://127.0.0.1" : "a Unix socket",
          opt.calls, opt.warmup, opt.rounds);
  printf ("%u CPUs; load average %.2f at the start; other processes used %.1f CPU-seconds during the\n"
          "%.1f s run%s\n", g_get_num_processors (), load_start, MAX (run.foreign, 0.0), run.wall,
          run.foreign > 0.1 * run.wall ? " — the machine was busy: latency figures are noisy" : "");
  for (guint i = 0; i < n_modes; i++)
    print_mode (&results[i]);
  printf ("\nReference, server memory per unanswered callback (DESIGN.md anchors):\n"
          "  jsonrpc-glib 0.9 KB (no deadline at all) · GDBus 4.2 KB · Cap'n Proto 6.5 KB · gRPC 18.6 KB\n"
          "  Tether target: <= 1 KiB, threads unchanged, others' p99 <= 2x\n");

  json = results_json (&opt, results, n_modes, load_start, &run);
  harness_write_results (json_path != NULL ? json_path : "bench-blackhole.json", json);
  fflush (stdout);

  harness_finish ();

  for (guint i = 0; i < n_modes; i++)
    if (!results[i].ok)
      return 1;
  return 0;
}

int
main (int    argc,
      char **argv)
{
  setlocale (LC_ALL, "");

  if (argc > 1 && g_str_equal (argv[1], "server"))
    return role_server (argc - 1, argv + 1);
  if (argc > 1 && g_str_equal (argv[1], "attacker"))
    return role_attacker (argc - 1, argv + 1);
  if (argc > 1 && g_str_equal (argv[1], "client"))
    return role_client (argc - 1, argv + 1);
  harness_init ("blackhole");
  return orchestrate (argc, argv);
}
