/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* attacks: the black-hole attacks of round two against `tether serve` at
 * its defaults, each for --seconds (60), with an honest client measured
 * before and during it (issue #9, deliverable 7).
 *
 *   attacks [--json FILE] [--attacks slow-drip,notification-flood,tls-slowloris,connection-flood]
 *           [--seconds S] [--baseline-seconds S] [--budget S]
 *   attacks client --uri URI [--ca FILE] --seconds S [--reconnect-ms MS]
 *
 * The attackers are the security tests' own (tests/attackers/,
 * Debian's python3 with python3-websockets), each binding loopback
 * addresses of its own (127.0.0.2 and up), as in the issue:
 *
 *   slow-drip           16 addresses × 16 connections × 16 `work` calls,
 *                       every `progress` callback answered 1.5 s before
 *                       its 10 s deadline;
 *   notification-flood  one connection sending batches of 64 ten-minute
 *                       `sleep` notifications as fast as it is read;
 *   tls-slowloris       10 addresses × 8 connections dribbling a TLS
 *                       ClientHello, reconnecting as soon as they are cut;
 *   connection-flood    125 addresses × 16 bare connections (2,000),
 *                       reconnecting as soon as they are cut.
 *
 * The honest client (this program's `client` role, from 127.0.0.1) calls
 * `echo` and `work {steps: 1}` (one `progress` callback, which it answers
 * at once) in turn and reports p50/p99 of each; over TLS it also opens a
 * new connection every --reconnect-ms, as a newcomer would. Per attack:
 * honest p50/p99 without and with it, calls and callbacks failed, server
 * RSS growth, threads, descriptors, log bytes written, whether every
 * attacking address was named in the log. Targets (PASS/FAIL, never
 * asserted): every honest call succeeds; p99 ≤ 2× without; RSS growth ≤
 * 32 MiB; threads flat; descriptors below the limit; log < 1 MB; the
 * attackers named. */

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include <tether.h>

#include "harness.h"
#include "peers-util.h"

#define P99_RATIO_TARGET   2.0
#define RSS_TARGET_KB      (32 * 1024)
#define LOG_TARGET_BYTES   (1024 * 1024)
/* Threads may grow by this much and still count as flat (GLib's worker). */
#define THREAD_SLACK 2
/* Attackers run without their stderr (asyncio's complaints about the
 * connections the server cuts). */
#define QUIET "/bin/sh", "-c", "exec \"$@\" 2>/dev/null", "sh",

/* ---------------------------------------------------------------------- */
/* The honest client                                                      */

typedef struct
{
  GArray *echo_ns;
  GArray *work_ns;
  guint   echo_failed;
  guint   work_failed;
  guint   connects;
  guint   connect_failed;
  char   *last_error;
} Tally;

typedef struct
{
  const char    *uri;
  GTlsDatabase  *ca;
  Tally          tally;
  TetherClient  *client;
  gint64         end;
  gint64         started;
  gboolean       busy;
  gboolean       in_work;   /* the call in flight is `work` */
  gboolean       done;
  guint          reconnect_ms;
  gint64         next_reconnect;
} Honest;

static void honest_next (Honest *h);

static void
cli_progress (TetherInvocation *invocation,
              gpointer          user_data)
{
  tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
}

static TetherClient *
honest_client_new (Honest *h)
{
  TetherClient *client = tether_client_new (h->uri);

  if (h->ca != NULL)
    tether_client_set_tls_database (client, h->ca);
  tether_client_add_method (client, "progress", cli_progress, NULL, NULL);
  return client;
}

static void
honest_fail (Honest       *h,
             const GError *error)
{
  g_free (h->tally.last_error);
  h->tally.last_error = g_strdup (error->message);
}

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Honest *h = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = tether_client_call_finish (TETHER_CLIENT (source), result, &error);
  gint64 ns = (g_get_monotonic_time () - h->started) * 1000;

  if (value == NULL)
    {
      if (h->in_work)
        h->tally.work_failed++;
      else
        h->tally.echo_failed++;
      honest_fail (h, error);
    }
  else
    g_array_append_val (h->in_work ? h->tally.work_ns : h->tally.echo_ns, ns);
  h->busy = FALSE;
  honest_next (h);
}

static void
connect_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Honest *h = user_data;
  g_autoptr(GError) error = NULL;

  h->tally.connects++;
  if (!tether_client_connect_finish (TETHER_CLIENT (source), result, &error))
    {
      h->tally.connect_failed++;
      honest_fail (h, error);
      g_clear_object (&h->client);
    }
  /* The next new connection a while after this one is up: calls in
   * between. */
  h->next_reconnect = g_get_monotonic_time () + (gint64) h->reconnect_ms * 1000;
  h->busy = FALSE;
  honest_next (h);
}

/* One step at a time: reconnect when due, else the next call (echo and
 * work in turn). */
static void
honest_next (Honest *h)
{
  gint64 now = g_get_monotonic_time ();

  if (h->busy)
    return;
  if (now >= h->end)
    {
      h->done = TRUE;
      return;
    }
  if (h->client == NULL || (h->reconnect_ms > 0 && now >= h->next_reconnect))
    {
      if (h->client != NULL)
        tether_client_close (h->client);
      g_clear_object (&h->client);
      h->client = honest_client_new (h);
      h->busy = TRUE;
      tether_client_connect_async (h->client, NULL, connect_done_cb, h);
      return;
    }
  h->busy = TRUE;
  h->started = now;
  h->in_work = !h->in_work;
  if (h->in_work)
    tether_client_call_async (h->client, "work",
                              g_variant_new_parsed ("{'steps': <int64 1>, 'delay_ms': <int64 0>}"),
                              10000, NULL, call_done_cb, h);
  else
    tether_client_call_async (h->client, "echo", g_variant_new_parsed ("['honest']"), 10000, NULL,
                              call_done_cb, h);
}

/* The tally's nearest-rank percentile (peers-util's, as every peer uses). */
static double
percentile_us (GArray *ns,
               double  p)
{
  return peer_percentile_us ((int64_t *) (void *) ns->data, ns->len, p * 100.0);
}

static int
role_client (int    argc,
             char **argv)
{
  g_autofree char *uri = NULL;
  g_autofree char *ca = NULL;
  double seconds = 10;
  int reconnect_ms = 0;
  GOptionEntry entries[] = {
    { "uri", 0, 0, G_OPTION_ARG_STRING, &uri, "Where the service is", "URI" },
    { "ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "The CA for wss://", "FILE" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "How long to call", "S" },
    { "reconnect-ms", 0, 0, G_OPTION_ARG_INT, &reconnect_ms, "A new connection this often", "MS" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- the honest client");
  g_autoptr(GError) error = NULL;
  Honest h = { 0 };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || uri == NULL)
    {
      g_printerr ("attacks client: %s\n", error ? error->message : "--uri is needed");
      return 2;
    }
  if (ca != NULL && (h.ca = g_tls_file_database_new (ca, &error)) == NULL)
    {
      g_printerr ("attacks client: %s\n", error->message);
      return 1;
    }
  h.uri = uri;
  h.reconnect_ms = reconnect_ms;
  h.tally.echo_ns = g_array_new (FALSE, FALSE, sizeof (gint64));
  h.tally.work_ns = g_array_new (FALSE, FALSE, sizeof (gint64));
  h.end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  printf ("READY\n");
  fflush (stdout);
  honest_next (&h);
  while (!h.done)
    g_main_context_iteration (NULL, TRUE);

  printf ("RESULT echo n=%u errors=%u p50_us=%.1f p99_us=%.1f\n", h.tally.echo_ns->len,
          h.tally.echo_failed, percentile_us (h.tally.echo_ns, 0.5), percentile_us (h.tally.echo_ns, 0.99));
  printf ("RESULT work n=%u errors=%u p50_us=%.1f p99_us=%.1f connects=%u connect_errors=%u last_error=%s\n",
          h.tally.work_ns->len, h.tally.work_failed, percentile_us (h.tally.work_ns, 0.5),
          percentile_us (h.tally.work_ns, 0.99), h.tally.connects, h.tally.connect_failed,
          h.tally.last_error != NULL ? "see-stderr" : "none");
  if (h.tally.last_error != NULL)
    g_printerr ("attacks client: last error: %s\n", h.tally.last_error);
  fflush (stdout);
  if (h.client != NULL)
    tether_client_close (h.client);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* The orchestrator                                                       */

typedef struct
{
  const char *key;
  const char *title;
  gboolean    tls;          /* the honest client over wss://, reconnecting */
  guint       first_bind;   /* 127.0.0.N … */
  guint       binds;
} Attack;

static const Attack attacks[] = {
  { "slow-drip", "Slow drip: 256 connections from 16 addresses answer every callback 1.5 s early", FALSE, 2, 16 },
  { "notification-flood", "Notification flood: batches of 64 ten-minute sleeps", FALSE, 2, 1 },
  { "tls-slowloris", "TLS slow-loris: 10 addresses × 8 ClientHellos dribbled, reconnecting", TRUE, 2, 10 },
  { "connection-flood", "Connection flood: 2,000 bare connections from 125 addresses", FALSE, 2, 125 },
};
#define N_ATTACKS G_N_ELEMENTS (attacks)

typedef struct
{
  gboolean ran;
  char    *why;                 /* why it did not run */
  double   base[4], under[4];   /* echo p50, p99, work p50, p99 */
  double   echo_errors, work_errors, connects, connect_errors;
  gint64   rss_start_kb, rss_peak_kb;
  int      threads_start, threads_peak;
  int      fds_peak;
  guint64  fd_limit;
  gint64   log_bytes;
  guint    named, attackers;
} Outcome;

typedef struct
{
  char         *self;
  char         *tool;
  char         *attackers_dir;
  char         *dir;
  char         *cert;
  char         *key;
  double        seconds;
  double        baseline_seconds;
} Setup;

static gboolean
parse_result (const char *line,
              double     *p50,
              double     *p99,
              double     *errors)
{
  return line != NULL && harness_parse_kv_double (line, "p50_us", p50) &&
         harness_parse_kv_double (line, "p99_us", p99) && harness_parse_kv_double (line, "errors", errors);
}

/* The honest client's command line: over wss:// it trusts our
 * certificate and opens a new connection every second, as newcomers do
 * (a TLS slow-loris keeps them out, not the connections already open). */
static HarnessChild *
honest_spawn (const Setup *s,
              const char  *uri,
              gboolean     tls,
              double       seconds)
{
  g_autofree char *secs = g_strdup_printf ("%.1f", seconds);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  HarnessChild *c;

  g_ptr_array_add (argv, s->self);
  g_ptr_array_add (argv, (char *) "client");
  g_ptr_array_add (argv, (char *) "--uri");
  g_ptr_array_add (argv, (char *) uri);
  g_ptr_array_add (argv, (char *) "--seconds");
  g_ptr_array_add (argv, secs);
  if (tls)
    {
      g_ptr_array_add (argv, (char *) "--ca");
      g_ptr_array_add (argv, s->cert);
      g_ptr_array_add (argv, (char *) "--reconnect-ms");
      g_ptr_array_add (argv, (char *) "1000");
    }
  g_ptr_array_add (argv, NULL);
  c = harness_child_spawn ("honest client", (const char * const *) argv->pdata, HARNESS_CPU_ANY, &error);
  if (c == NULL)
    g_printerr ("%s: honest client: %s\n", harness_prog (), error->message);
  return c;
}

/* The honest client for @seconds; FALSE if it did not report. */
static gboolean
run_honest (const Setup *s,
            const char  *uri,
            gboolean     tls,
            double       seconds,
            double       out[4],
            Outcome     *o,
            gboolean     record)
{
  HarnessChild *c = honest_spawn (s, uri, tls, seconds);
  g_autofree char *echo = NULL;
  g_autofree char *work = NULL;
  double errors = 0;

  if (c == NULL)
    return FALSE;
  echo = harness_child_wait_line (c, "RESULT echo", (guint) (seconds * 1000) + 30000);
  work = harness_child_wait_line (c, "RESULT work", 5000);
  harness_child_stop (c, 1000);
  if (!parse_result (echo, &out[0], &out[1], &errors))
    return FALSE;
  if (record)
    o->echo_errors = errors;
  if (!parse_result (work, &out[2], &out[3], &errors))
    return FALSE;
  if (record)
    {
      o->work_errors = errors;
      harness_parse_kv_double (work, "connects", &o->connects);
      harness_parse_kv_double (work, "connect_errors", &o->connect_errors);
    }
  return TRUE;
}

static void
spawn_attackers (const Setup  *s,
                 const Attack *a,
                 guint16       ws_port,
                 guint16       wss_port,
                 double        seconds,
                 GPtrArray    *out)
{
  g_autofree char *ws_target = g_strdup_printf ("tcp:127.0.0.1:%u", ws_port);
  g_autofree char *wss_target = g_strdup_printf ("tcp:127.0.0.1:%u", wss_port);
  g_autofree char *max = g_strdup_printf ("%.0f", seconds + 5);
  g_autofree char *secs = g_strdup_printf ("%.0f", seconds);

  for (guint i = 0; i < (g_str_equal (a->key, "connection-flood") ? 1 : a->binds); i++)
    {
      g_autofree char *bind = g_strdup_printf ("127.0.0.%u", a->first_bind + i);
      g_autofree char *script = NULL;
      g_autofree char *last = g_strdup_printf ("127.0.0.%u", a->first_bind + a->binds - 1);
      g_autofree char *range = g_strdup_printf ("%s-%s", bind, last);
      g_autoptr(GError) error = NULL;
      HarnessChild *c = NULL;

      if (g_str_equal (a->key, "slow-drip"))
        {
          const char *argv[] = { QUIET "/usr/bin/python3", (script = g_build_filename (s->attackers_dir, "slow_drip.py", NULL)),
                                 "--target", ws_target, "--bind", bind, "--connections", "16", "--calls", "16",
                                 "--answer-at", "0.85", "--max-seconds", max, NULL };
          c = harness_child_spawn ("slow drip", argv, HARNESS_CPU_ANY, &error);
        }
      else if (g_str_equal (a->key, "notification-flood"))
        {
          const char *argv[] = { QUIET "/usr/bin/python3", (script = g_build_filename (s->attackers_dir, "notify_flood.py", NULL)),
                                 "--target", ws_target, "--bind", bind, "--batch", "64", "--seconds", secs,
                                 "--max-seconds", max, NULL };
          c = harness_child_spawn ("notification flood", argv, HARNESS_CPU_ANY, &error);
        }
      else if (g_str_equal (a->key, "tls-slowloris"))
        {
          const char *argv[] = { QUIET "/usr/bin/python3", (script = g_build_filename (s->attackers_dir, "slowloris.py", NULL)),
                                 "--target", wss_target, "--bind", bind, "--mode", "tls-partial",
                                 "--connections", "8", "--reconnect", "--max-open", "30", "--max-seconds", max, NULL };
          c = harness_child_spawn ("tls slowloris", argv, HARNESS_CPU_ANY, &error);
        }
      else
        {
          const char *argv[] = { QUIET "/usr/bin/python3", (script = g_build_filename (s->attackers_dir, "fd_flood.py", NULL)),
                                 "--target", ws_target, "--binds", range, "--connections", "16", "--seconds", secs,
                                 "--max-seconds", max, NULL };
          c = harness_child_spawn ("connection flood", argv, HARNESS_CPU_ANY, &error);
        }
      if (c == NULL)
        g_printerr ("%s: %s: %s\n", harness_prog (), a->key, error->message);
      else
        g_ptr_array_add (out, c);
    }
}

static void
run_attack (const Setup  *s,
            const Attack *a,
            Outcome      *o)
{
  g_autofree char *log = g_build_filename (s->dir, "serve.log", NULL);
  g_autofree char *sock = g_build_filename (s->dir, "s.sock", NULL);
  g_autofree char *unix_uri = g_strconcat ("unix:", sock, NULL);
  g_autofree char *script = g_strdup_printf ("exec \"$0\" serve %s ws://127.0.0.1:0 wss://127.0.0.1:0 "
                                             "--cert \"$1\" --key \"$2\" 2>\"$3\"", unix_uri);
  const char *argv[] = { "/bin/sh", "-c", script, s->tool, s->cert, s->key, log, NULL };
  g_autoptr(GPtrArray) attackers = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *ws_uri = NULL, *wss_uri = NULL;
  g_autofree char *log_text = NULL;
  HarnessChild *server;
  gint64 until;
  const char *honest_uri;
  struct stat st;

  g_unlink (sock);
  server = harness_child_spawn ("tether serve", argv, HARNESS_CPU_ANY, &error);
  if (server == NULL)
    {
      o->why = g_strdup_printf ("cannot start tether serve: %s", error->message);
      return;
    }
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *line = harness_child_wait_line (server, "listening on ", 15000);

      if (line == NULL)
        {
          o->why = g_strdup ("tether serve did not start");
          harness_child_stop (server, 0);
          return;
        }
      if (g_str_has_prefix (line + strlen ("listening on "), "wss://"))
        wss_uri = g_strdup (line + strlen ("listening on "));
      else if (g_str_has_prefix (line + strlen ("listening on "), "ws://"))
        ws_uri = g_strdup (line + strlen ("listening on "));
    }
  honest_uri = a->tls ? wss_uri : ws_uri;

  if (!run_honest (s, honest_uri, a->tls, s->baseline_seconds, o->base, o, FALSE))
    {
      o->why = g_strdup ("the honest client did not report (no attack yet)");
      harness_child_stop (server, 0);
      return;
    }

  o->rss_start_kb = o->rss_peak_kb = harness_proc_rss_kb (server->pid);
  o->threads_start = o->threads_peak = (int) harness_proc_status (server->pid, "Threads");
  o->fds_peak = harness_proc_fd_count (server->pid);
  {
    g_autofree char *limits_path = g_strdup_printf ("/proc/%d/limits", (int) server->pid);
    g_autofree char *limits = NULL;
    const char *at;

    if (g_file_get_contents (limits_path, &limits, NULL, NULL) &&
        (at = strstr (limits, "Max open files")) != NULL)
      o->fd_limit = g_ascii_strtoull (at + strlen ("Max open files"), NULL, 10);
  }
  if (stat (log, &st) == 0)
    o->log_bytes = -(gint64) st.st_size;

  spawn_attackers (s, a, (guint16) atoi (strrchr (ws_uri, ':') + 1),
                   (guint16) atoi (strrchr (wss_uri, ':') + 1), s->seconds, attackers);
  o->attackers = a->binds;
  /* Let the attack take hold before the honest client is measured. */
  until = g_get_monotonic_time () + 3 * G_USEC_PER_SEC;
  while (g_get_monotonic_time () < until)
    harness_sleep_ms (200);

  {
    /* The honest client runs while we sample the server. */
    HarnessChild *c = honest_spawn (s, honest_uri, a->tls, s->seconds);
    g_autofree char *echo = NULL, *work = NULL;

    until = g_get_monotonic_time () + (gint64) ((s->seconds + 30) * G_USEC_PER_SEC);
    while (c != NULL && !c->exited && g_get_monotonic_time () < until)
      {
        gint64 rss = harness_proc_rss_kb (server->pid);
        int threads = (int) harness_proc_status (server->pid, "Threads");
        int fds = harness_proc_fd_count (server->pid);

        o->rss_peak_kb = MAX (o->rss_peak_kb, rss);
        o->threads_peak = MAX (o->threads_peak, threads);
        o->fds_peak = MAX (o->fds_peak, fds);
        harness_sleep_ms (200);
        if (c->eof)
          break;
      }
    if (c != NULL)
      {
        echo = harness_child_wait_line (c, "RESULT echo", 30000);
        work = harness_child_wait_line (c, "RESULT work", 5000);
        harness_child_stop (c, 1000);
      }
    if (!parse_result (echo, &o->under[0], &o->under[1], &o->echo_errors) ||
        !parse_result (work, &o->under[2], &o->under[3], &o->work_errors))
      o->why = g_strdup ("the honest client did not report under attack");
    else
      {
        harness_parse_kv_double (work, "connects", &o->connects);
        harness_parse_kv_double (work, "connect_errors", &o->connect_errors);
      }
  }

  for (guint i = 0; i < attackers->len; i++)
    harness_child_stop (attackers->pdata[i], 0);
  harness_child_stop (server, 2000);

  if (stat (log, &st) == 0)
    o->log_bytes += st.st_size;
  if (g_file_get_contents (log, &log_text, NULL, NULL))
    for (guint i = 0; i < a->binds; i++)
      {
        g_autofree char *needle = g_strdup_printf (" 127.0.0.%u:", a->first_bind + i);

        if (strstr (log_text, needle) != NULL)
          o->named++;
      }
  o->ran = o->why == NULL;
}

static const char *
verdict (gboolean pass)
{
  return pass ? "PASS" : "FAIL";
}

static void
print_outcome (const Attack  *a,
               const Outcome *o)
{
  double ratio = o->under[1] / o->base[1];
  double cb_ratio = o->under[3] / o->base[3];
  double rss_growth = (double) (o->rss_peak_kb - o->rss_start_kb);

  printf ("\n== %s ==\n", a->title);
  if (!o->ran)
    {
      printf ("   not measured: %s\n", o->why != NULL ? o->why : "?");
      return;
    }
  printf ("   honest echo p50/p99 µs:  without %8.1f / %8.1f   under attack %8.1f / %8.1f  (p99 ×%.2f)\n",
          o->base[0], o->base[1], o->under[0], o->under[1], ratio);
  printf ("   honest work (callback):  without %8.1f / %8.1f   under attack %8.1f / %8.1f  (p99 ×%.2f)\n",
          o->base[2], o->base[3], o->under[2], o->under[3], cb_ratio);
  printf ("   honest failures: %.0f echo, %.0f work, %.0f of %.0f new connections\n",
          o->echo_errors, o->work_errors, o->connect_errors, o->connects);
  printf ("   server: RSS %" G_GINT64_FORMAT " → peak %" G_GINT64_FORMAT " KiB (+%.0f); threads %d → peak %d; "
          "descriptors peak %d of %" G_GUINT64_FORMAT "; log +%" G_GINT64_FORMAT " bytes; "
          "attacking addresses named %u of %u\n",
          o->rss_start_kb, o->rss_peak_kb, rss_growth, o->threads_start, o->threads_peak, o->fds_peak,
          o->fd_limit, o->log_bytes, o->named, o->attackers);
  printf ("   targets: all honest calls succeed %s · p99 ≤ %.0f× %s (callbacks %s) · RSS ≤ 32 MiB %s · "
          "threads flat %s · descriptors below the limit %s · log < 1 MB %s · attackers named %s\n",
          verdict (o->echo_errors + o->work_errors + o->connect_errors == 0 && !isnan (ratio)),
          P99_RATIO_TARGET, verdict (ratio <= P99_RATIO_TARGET), verdict (cb_ratio <= P99_RATIO_TARGET),
          verdict (rss_growth <= RSS_TARGET_KB),
          verdict (o->threads_peak <= o->threads_start + THREAD_SLACK),
          verdict (o->fd_limit == 0 || (guint64) o->fds_peak < o->fd_limit),
          verdict (o->log_bytes < LOG_TARGET_BYTES), verdict (o->named > 0));
}

static void
json_outcome (GString      *j,
              const Attack *a,
              const Outcome *o,
              gboolean      last)
{
  g_string_append_printf (j, "    {\"attack\": \"%s\", \"ran\": %s", a->key, o->ran ? "true" : "false");
  if (o->ran)
    {
      g_string_append (j, ", ");
      harness_json_array (j, "without_echo_p50_p99_work_p50_p99_us", o->base, 4, 1);
      g_string_append (j, ", ");
      harness_json_array (j, "under_echo_p50_p99_work_p50_p99_us", o->under, 4, 1);
      g_string_append (j, ", ");
      harness_json_num (j, "echo_errors", o->echo_errors, 0);
      g_string_append (j, ", ");
      harness_json_num (j, "work_errors", o->work_errors, 0);
      g_string_append (j, ", ");
      harness_json_num (j, "connect_errors", o->connect_errors, 0);
      g_string_append (j, ", ");
      harness_json_num (j, "rss_growth_kib", (double) (o->rss_peak_kb - o->rss_start_kb), 0);
      g_string_append (j, ", ");
      harness_json_num (j, "threads_start", o->threads_start, 0);
      g_string_append (j, ", ");
      harness_json_num (j, "threads_peak", o->threads_peak, 0);
      g_string_append (j, ", ");
      harness_json_num (j, "descriptors_peak", o->fds_peak, 0);
      g_string_append (j, ", ");
      harness_json_num (j, "descriptor_limit", (double) o->fd_limit, 0);
      g_string_append (j, ", ");
      harness_json_num (j, "log_bytes", (double) o->log_bytes, 0);
      g_string_append (j, ", ");
      harness_json_num (j, "attackers_named", o->named, 0);
      g_string_append (j, ", ");
      harness_json_num (j, "attackers", o->attackers, 0);
    }
  else
    {
      g_string_append (j, ", ");
      harness_json_str (j, "why", o->why);
    }
  g_string_append_printf (j, "}%s\n", last ? "" : ",");
}

static int
orchestrate (int    argc,
             char **argv)
{
  g_autofree char *json_path = NULL;
  g_autofree char *which = NULL;
  double seconds = 60, baseline_seconds = 10;
  int budget = 900;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &json_path, "Write the results here", "FILE" },
    { "attacks", 0, 0, G_OPTION_ARG_STRING, &which, "Which (default: all)", "LIST" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "Each attack this long (default 60)", "S" },
    { "baseline-seconds", 0, 0, G_OPTION_ARG_DOUBLE, &baseline_seconds, "The honest client alone (default 10)", "S" },
    { "budget", 0, 0, G_OPTION_ARG_INT, &budget, "End everything after this (default 900)", "S" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- round two of the black-hole attacks");
  g_autoptr(GError) error = NULL;
  const char *names[N_ATTACKS];
  gboolean wanted[N_ATTACKS];
  Outcome outcomes[N_ATTACKS] = { 0 };
  Setup s = { 0 };
  HarnessNoise run;
  double load_start = harness_load_average ();
  g_autoptr(GString) j = g_string_new (NULL);

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || seconds < 5 || baseline_seconds < 2)
    {
      g_printerr ("%s: %s\n", harness_prog (), error ? error->message : "--seconds ≥ 5, --baseline-seconds ≥ 2");
      return 2;
    }
  for (guint i = 0; i < N_ATTACKS; i++)
    names[i] = attacks[i].key;
  if (which != NULL)
    {
      if (!harness_parse_list ("attack", which, names, N_ATTACKS, wanted))
        return 2;
    }
  else
    for (guint i = 0; i < N_ATTACKS; i++)
      wanted[i] = TRUE;

  harness_watchdog (budget);
  s.self = g_file_read_link ("/proc/self/exe", NULL);
  s.tool = g_strdup (TETHER_TOOL);
  s.attackers_dir = g_strdup (TETHER_ATTACKERS_DIR);
  s.seconds = seconds;
  s.baseline_seconds = baseline_seconds;
  s.dir = harness_make_tmpdir ("tether-attacks-XXXXXX", &error);
  if (s.dir == NULL || !harness_make_certificate (s.dir, &s.cert, &s.key))
    {
      g_printerr ("%s: %s\n", harness_prog (), s.dir == NULL ? error->message : "no openssl for the certificate");
      return 1;
    }

  harness_noise_start (&run);
  printf ("Round two of the black-hole attacks against `tether serve` at its defaults, %.0f s each\n",
          seconds);
  for (guint i = 0; i < N_ATTACKS; i++)
    {
      if (!wanted[i])
        continue;
      g_printerr ("%s: %s…\n", harness_prog (), attacks[i].key);
      run_attack (&s, &attacks[i], &outcomes[i]);
      print_outcome (&attacks[i], &outcomes[i]);
      fflush (stdout);
    }
  harness_noise_stop (&run);

  g_string_append (j, "{\n  ");
  harness_json_machine (j, load_start, &run);
  g_string_append (j, ",\n  \"attacks\": [\n");
  {
    guint left = 0, done = 0;

    for (guint i = 0; i < N_ATTACKS; i++)
      left += wanted[i];
    for (guint i = 0; i < N_ATTACKS; i++)
      if (wanted[i])
        json_outcome (j, &attacks[i], &outcomes[i], ++done == left);
  }
  g_string_append (j, "  ]\n}\n");
  if (json_path != NULL)
    harness_write_results (json_path, j->str);
  harness_finish ();
  return 0;
}

int
main (int    argc,
      char **argv)
{
  setlocale (LC_ALL, "");
  if (argc > 1 && g_str_equal (argv[1], "client"))
    return role_client (argc - 1, argv + 1);
  harness_init ("attacks");
  return orchestrate (argc, argv);
}
