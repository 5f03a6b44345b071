/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* peers: Tether side by side with the systems a user would otherwise pick,
 * in one run on one machine (issue #7).
 *
 *   peers [--json FILE] [--rounds N] [--systems a,b] [--transports unix,tcp,tls]
 *         [--pin both|pinned|unpinned] [--no-memory] [--budget S] ...
 *
 * Every system is a separate program, bench/peers/peer-KEY, with a server
 * and a client role (see peers-util.h); this orchestrator starts them
 * (client and server in separate processes), reads their RESULT lines,
 * takes medians over rounds, samples the server's memory from outside
 * (/proc/PID/status) and inside (malloc's count, the "mem" command), then
 * prints one table per CPU placement and transport with each figure's
 * ratio to the floor (a raw socket) and to the transport floor (libsoup's
 * WebSocket echo), a table of Tether's ratio to every peer, the issue's
 * targets with PASS/FAIL (nothing asserted), and writes all of it as JSON.
 *
 * Noise: rounds are interleaved across systems (round 1 of every system,
 * then round 2, …) so a noisy moment hurts all of them alike, Tether's
 * right after the echo's: the latency targets are medians of per-round
 * ratios, each of two rounds run back to back; a round
 * during which other processes used a noticeable share of the CPUs is run
 * again (at most once per system, transport and placement), and the report says how
 * many rounds were clean. Pinned runs put the server and the client on
 * CPU 0 (sched_setaffinity, like `taskset -c 0`); unpinned runs let the
 * scheduler place them, which on a 2-vCPU VM means cross-CPU wake-ups or
 * not, round by round; split runs (opt-in) put the server on CPU 0 and
 * the client on CPU 1.
 *
 * Nothing hangs: every wait is bounded, every child dies with the
 * orchestrator (PR_SET_PDEATHSIG) and is SIGKILLed at the end, a time
 * budget skips what is left when it runs out, and an alarm ends the run
 * if everything else fails. */

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <gio/gio.h>

#include "harness.h"

#define N_ROUNDS_MAX 9

/* ---------------------------------------------------------------------- */
/* What is measured                                                       */

typedef struct
{
  const char *key;       /* peer-KEY */
  const char *title;
  gboolean    rpc;       /* has calls (jsonrpc, GDBus, …) rather than echo */
  gboolean    tls;       /* can run over TLS here */
  gboolean    present;   /* its program was built */
} System;

static System systems[] = {
  { "raw",     "raw socket (floor)",      FALSE, FALSE },
  { "soup",    "libsoup WebSocket echo",  FALSE, TRUE  },
  { "jsonrpc", "jsonrpc-glib",            TRUE,  FALSE },
  { "gdbus",   "GDBus peer-to-peer",      TRUE,  FALSE },
  { "grpc",    "gRPC C++ (callback API)", TRUE,  TRUE  },
  { "capnp",   "Cap'n Proto (EzRpc)",     TRUE,  FALSE },
  { "tether-json", "Tether, JSON text only", TRUE, TRUE  },
  { "tether",  "Tether",                  TRUE,  TRUE  },
};
#define N_SYSTEMS G_N_ELEMENTS (systems)
enum { SYS_RAW, SYS_SOUP, SYS_JSONRPC, SYS_GDBUS, SYS_GRPC, SYS_CAPNP, SYS_TETHER_JSON, SYS_TETHER };

/* The order of a round: Tether straight after the echo, so that the two
 * rounds the latency targets compare are neighbours in time (see
 * paired_ratio()). */
static const guint run_order[N_SYSTEMS] = {
  SYS_RAW, SYS_SOUP, SYS_TETHER, SYS_TETHER_JSON, SYS_CAPNP, SYS_GRPC, SYS_GDBUS, SYS_JSONRPC,
};

static const char *transports[] = { "unix", "tcp", "tls" };
#define N_TRANSPORTS 3
static const char *placements[] = { "pinned", "unpinned", "split" };
#define N_PLACEMENTS 3
/* The CPU each side runs on (-1: any): pinned both on CPU 0, unpinned
 * wherever the scheduler puts them, split on CPUs 0 and 1 (every wake-up
 * crosses CPUs; opt-in, --pin split or all). */
static const int server_cpus[N_PLACEMENTS] = { 0, -1, 0 };
static const int client_cpus[N_PLACEMENTS] = { 0, -1, 1 };

/* The figures of one round, and of a cell (medians). */
enum { F_SEQ_P50, F_SEQ_P99, F_CB_P50, F_CB_P99, F_INFLIGHT, F_CONNS, N_FIGURES };
static const char *figure_keys[N_FIGURES] = {
  "seq_p50_us", "seq_p99_us", "cb_p50_us", "cb_p99_us", "inflight64_calls_per_s", "conns100_calls_per_s",
};

typedef struct
{
  gboolean run;                         /* measured (or tried) */
  char    *note;                        /* why not, or what went wrong */
  double   rounds[N_FIGURES][N_ROUNDS_MAX];
  guint    n, clean, tried;
  double   median[N_FIGURES];
  guint    errors;
} Cell;

typedef struct
{
  gboolean run;
  char    *note;
  double   idle_rss_per_conn, idle_heap_per_conn;
  double   pending_rss_per_cb, pending_heap_per_cb;
  int      idle_conns, pending;
} Memory;

static Cell   cells[N_PLACEMENTS][N_TRANSPORTS][N_SYSTEMS];
static Memory memory[N_TRANSPORTS][N_SYSTEMS];

typedef struct
{
  guint    rounds;
  int      calls, warmup, depth, conns, idle_conns, pending;
  double   seconds, warmup_seconds;
  gboolean do_transport[N_TRANSPORTS];
  gboolean do_placement[N_PLACEMENTS];
  gboolean do_memory;
  gboolean memory_on[N_TRANSPORTS];
  char    *dir;
  char    *cert, *key;
  char    *bindir;
  gint64   deadline;    /* monotonic µs: skip what is left after it */
} Options;

/* ---------------------------------------------------------------------- */
/* Servers and clients                                                    */

static char *
peer_path (const Options *opt,
           const System  *sys)
{
  return g_strdup_printf ("%s/peer-%s", opt->bindir, sys->key);
}

static gboolean
server_start (const Options *opt,
              const System  *sys,
              guint          transport,
              int            cpu,
              const char    *tag,
              HarnessServer *s,
              char         **why)
{
  g_autofree char *exe = peer_path (opt, sys);
  g_autofree char *listen = transport == 0 ? g_strdup_printf ("%s/%s-%s.sock", opt->dir, sys->key, tag)
                                           : g_strdup ("127.0.0.1:0");
  g_autofree char *name = g_strdup_printf ("%s server", sys->key);

  return harness_server_start (s, name, exe, transports[transport], listen, opt->cert, opt->key, cpu, why);
}

/* argv for a client role; strings owned by @keep. */
static GPtrArray *
client_argv (const Options *opt,
             const System  *sys,
             guint          transport,
             const char    *address,
             const char    *workloads,
             GPtrArray     *keep)
{
  GPtrArray *argv = g_ptr_array_new ();
#define KEEP(s) ({ char *_s = (s); g_ptr_array_add (keep, _s); _s; })

  g_ptr_array_add (argv, KEEP (peer_path (opt, sys)));
  g_ptr_array_add (argv, "client");
  g_ptr_array_add (argv, "--transport");
  g_ptr_array_add (argv, (gpointer) transports[transport]);
  g_ptr_array_add (argv, "--address");
  g_ptr_array_add (argv, (gpointer) address);
  g_ptr_array_add (argv, "--workloads");
  g_ptr_array_add (argv, (gpointer) workloads);
  g_ptr_array_add (argv, "--calls");
  g_ptr_array_add (argv, KEEP (g_strdup_printf ("%d", opt->calls)));
  g_ptr_array_add (argv, "--warmup");
  g_ptr_array_add (argv, KEEP (g_strdup_printf ("%d", opt->warmup)));
  g_ptr_array_add (argv, "--seconds");
  g_ptr_array_add (argv, KEEP (g_strdup_printf ("%g", opt->seconds)));
  g_ptr_array_add (argv, "--warmup-seconds");
  g_ptr_array_add (argv, KEEP (g_strdup_printf ("%g", opt->warmup_seconds)));
  g_ptr_array_add (argv, "--depth");
  g_ptr_array_add (argv, KEEP (g_strdup_printf ("%d", opt->depth)));
  g_ptr_array_add (argv, "--conns");
  g_ptr_array_add (argv, KEEP (g_strdup_printf ("%d", g_str_equal (workloads, "idle") ? opt->idle_conns : opt->conns)));
  g_ptr_array_add (argv, "--pending");
  g_ptr_array_add (argv, KEEP (g_strdup_printf ("%d", opt->pending)));
  if (opt->cert != NULL)
    {
      g_ptr_array_add (argv, "--ca");
      g_ptr_array_add (argv, opt->cert);
    }
  g_ptr_array_add (argv, NULL);
#undef KEEP
  return argv;
}

typedef struct
{
  double figures[N_FIGURES];
  double foreign_cpu, wall;
  guint  errors;
} Round;

/* One client process running every timed workload once. */
static gboolean
run_round (const Options *opt,
           const System  *sys,
           guint          transport,
           int            cpu,
           const char    *address,
           Round         *round,
           char         **why)
{
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) argv = client_argv (opt, sys, transport, address, "seq,cb,inflight,conns", keep);
  g_autofree char *name = g_strdup_printf ("%s client", sys->key);
  g_autoptr(GError) error = NULL;
  HarnessNoise noise;
  guint got = 0;
  HarnessChild *c;

  for (guint i = 0; i < N_FIGURES; i++)
    round->figures[i] = NAN;
  round->errors = 0;
  harness_noise_start (&noise);
  c = harness_child_spawn (name, (const char * const *) argv->pdata, cpu, &error);
  if (c == NULL)
    {
      *why = g_strdup_printf ("cannot start the client: %s", error->message);
      return FALSE;
    }
  for (;;)
    {
      g_autofree char *line = harness_child_wait_line (c, "RESULT ", 90000);
      char workload[32] = "";
      double errors = 0;

      if (line == NULL)
        break;
      got++;
      sscanf (line, "RESULT workload=%31s", workload);
      if (harness_parse_kv_double (line, "errors", &errors) && errors > 0)
        {
          g_printerr ("peers: %s: %s\n", name, line);
          round->errors += (guint) errors;
        }
      if (g_str_equal (workload, "seq"))
        {
          harness_parse_kv_double (line, "p50_us", &round->figures[F_SEQ_P50]);
          harness_parse_kv_double (line, "p99_us", &round->figures[F_SEQ_P99]);
        }
      else if (g_str_equal (workload, "cb"))
        {
          harness_parse_kv_double (line, "p50_us", &round->figures[F_CB_P50]);
          harness_parse_kv_double (line, "p99_us", &round->figures[F_CB_P99]);
        }
      else if (g_str_equal (workload, "inflight"))
        harness_parse_kv_double (line, "rate", &round->figures[F_INFLIGHT]);
      else if (g_str_equal (workload, "conns"))
        harness_parse_kv_double (line, "rate", &round->figures[F_CONNS]);
    }
  harness_child_stop (c, 0);   /* reaped: its CPU time is in RUSAGE_CHILDREN now */
  harness_noise_stop (&noise);
  round->wall = noise.wall;
  round->foreign_cpu = noise.foreign;
  if (got == 0)
    {
      *why = g_strdup ("the client gave no result");
      return FALSE;
    }
  return TRUE;
}

static gboolean
out_of_time (const Options *opt)
{
  return g_get_monotonic_time () > opt->deadline;
}

static gboolean
applies (const System *sys,
         guint         transport)
{
  return sys->present && (transport != 2 || sys->tls);
}

/* Every system on one transport and placement: servers up, rounds
 * interleaved, servers down. */
static void
run_timed (const Options *opt,
           guint          placement,
           guint          transport)
{
  HarnessServer servers[N_SYSTEMS] = { { 0 } };
  guint retries_left[N_SYSTEMS];

  for (guint s = 0; s < N_SYSTEMS; s++)
    {
      Cell *cell = &cells[placement][transport][s];
      g_autofree char *tag = g_strdup_printf ("%s-%u", placements[placement], transport);

      retries_left[s] = 1;
      if (!applies (&systems[s], transport))
        continue;
      cell->run = TRUE;
      if (!server_start (opt, &systems[s], transport, server_cpus[placement], tag, &servers[s], &cell->note))
        g_printerr ("peers: %s %s %s: %s\n", systems[s].key, transports[transport], placements[placement],
                    cell->note);
    }

  for (guint r = 0; r < opt->rounds; r++)
    for (guint o = 0; o < N_SYSTEMS; o++)
      {
        guint s = run_order[o];
        Cell *cell = &cells[placement][transport][s];

        if (servers[s].child == NULL)
          continue;
        while (cell->n < r + 1)
          {
            Round round;
            char *why = NULL;
            gboolean clean;

            if (out_of_time (opt))
              {
                if (cell->note == NULL)
                  cell->note = g_strdup ("out of time (see --budget)");
                break;
              }
            g_printerr ("peers: %-8s %-4s %-8s round %u\n", systems[s].key, transports[transport],
                        placements[placement], r + 1);
            if (!run_round (opt, &systems[s], transport, client_cpus[placement], servers[s].address, &round, &why))
              {
                g_printerr ("peers: %s %s: %s\n", systems[s].key, transports[transport], why);
                g_free (cell->note);
                cell->note = why;
                harness_server_stop (&servers[s]);
                break;
              }
            cell->tried++;
            cell->errors += round.errors;
            /* The harness's quiet-machine check. */
            clean = round.foreign_cpu <= MAX (HARNESS_NOISE_SLACK, HARNESS_NOISE_SHARE * round.wall);
            if (clean || retries_left[s] == 0)
              {
                if (clean)
                  cell->clean++;
                else if (cell->note == NULL)
                  cell->note = g_strdup ("noisy: other processes were busy");
                for (guint f = 0; f < N_FIGURES; f++)
                  cell->rounds[f][cell->n] = round.figures[f];
                cell->n++;
              }
            else
              {
                retries_left[s]--;
                g_printerr ("peers:   (disturbed: other processes used %.0f%% of a CPU; run again)\n",
                            100 * round.foreign_cpu / round.wall);
              }
          }
      }

  for (guint s = 0; s < N_SYSTEMS; s++)
    {
      Cell *cell = &cells[placement][transport][s];

      harness_server_stop (&servers[s]);
      for (guint f = 0; f < N_FIGURES; f++)
        cell->median[f] = harness_median (cell->rounds[f], cell->n);
    }
}

/* One memory workload against a fresh server: sample, load, sample. */
static gboolean
measure_memory (const Options *opt,
                guint          s,
                guint          transport,
                const char    *workload,
                int            n,
                double        *rss_per,
                double        *heap_per,
                char         **why)
{
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  HarnessServer server;
  HarnessChild *client = NULL;
  g_autoptr(GPtrArray) argv = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  g_autofree char *name = g_strdup_printf ("%s %s client", systems[s].key, workload);
  gint64 rss0, rss1;
  double heap0, heap1, held = 0;
  gboolean ok = FALSE;

  *rss_per = *heap_per = NAN;
  if (!server_start (opt, &systems[s], transport, HARNESS_CPU_ANY, workload, &server, why))
    return FALSE;
  argv = client_argv (opt, &systems[s], transport, server.address, workload, keep);
  client = harness_child_spawn (name, (const char * const *) argv->pdata, HARNESS_CPU_ANY, &error);
  if (client == NULL)
    {
      *why = g_strdup_printf ("cannot start the client: %s", error->message);
      goto out;
    }
  g_free (line);
  line = harness_child_wait_line (client, "CONNECTED", 20000);
  if (line == NULL)
    {
      /* "UNSUPPORTED …" went to stderr; say it here too. */
      *why = g_strdup ("not supported, or the client did not connect");
      goto out;
    }
  harness_sleep_ms (200);
  if (!harness_server_memory (&server, &rss0, &heap0))
    {
      *why = g_strdup ("no memory sample");
      goto out;
    }
  harness_child_send (client, "go");
  g_free (line);
  line = harness_child_wait_line (client, "HOLDING ", 60000);
  if (line == NULL)
    {
      *why = g_strdup ("the load was not built in time");
      goto out;
    }
  if (!harness_parse_kv_double (line, g_str_equal (workload, "idle") ? "conns" : "pending", &held) || held < n)
    {
      *why = g_strdup_printf ("only %.0f of %d held", held, n);
      if (held <= 0)
        goto out;
    }
  harness_sleep_ms (300);
  if (!harness_server_memory (&server, &rss1, &heap1))
    {
      *why = g_strdup ("no memory sample");
      goto out;
    }
  *rss_per = (rss1 - rss0) * 1024.0 / held;
  *heap_per = (heap1 - heap0) / held;
  ok = TRUE;

out:
  harness_child_stop (client, 0);
  harness_server_stop (&server);
  return ok;
}

static void
run_memory (const Options *opt,
            guint          transport)
{
  for (guint s = 0; s < N_SYSTEMS; s++)
    {
      Memory *m = &memory[transport][s];
      char *why = NULL;

      if (!applies (&systems[s], transport))
        continue;
      if (out_of_time (opt))
        {
          m->note = g_strdup ("out of time (see --budget)");
          continue;
        }
      m->run = TRUE;
      m->idle_conns = opt->idle_conns;
      m->pending = opt->pending;
      g_printerr ("peers: %-8s %-4s memory\n", systems[s].key, transports[transport]);
      if (!measure_memory (opt, s, transport, "idle", opt->idle_conns, &m->idle_rss_per_conn,
                           &m->idle_heap_per_conn, &why))
        {
          g_printerr ("peers: %s %s idle: %s\n", systems[s].key, transports[transport], why);
          m->note = why;
          why = NULL;
        }
      if (systems[s].rpc &&
          !measure_memory (opt, s, transport, "pending", opt->pending, &m->pending_rss_per_cb,
                           &m->pending_heap_per_cb, &why))
        {
          g_printerr ("peers: %s %s pending: %s\n", systems[s].key, transports[transport], why);
          g_free (m->note);
          m->note = why;
        }
      if (!systems[s].rpc)
        m->pending_rss_per_cb = m->pending_heap_per_cb = NAN;
    }
}

/* ---------------------------------------------------------------------- */
/* Report                                                                 */

static gboolean
lower_is_better (guint f)
{
  return f < F_INFLIGHT;
}

/* How many times worse (>1) or better (<1) @a is than @b: for latency
 * a/b, for throughput b/a, so ×1.3 always means "30 % worse". */
static double
cost_ratio (guint  f,
            double a,
            double b)
{
  return lower_is_better (f) ? a / b : b / a;
}

static void
fmt_value (char  *buf,
           size_t size,
           guint  f,
           double v)
{
  if (isnan (v))
    g_snprintf (buf, size, "—");
  else if (lower_is_better (f))
    g_snprintf (buf, size, "%.1f", v);
  else
    g_snprintf (buf, size, "%.0f", v);
}

static void
fmt_ratio (char  *buf,
           size_t size,
           double r)
{
  if (isnan (r) || isinf (r))
    g_snprintf (buf, size, "—");
  else
    g_snprintf (buf, size, "%.2f", r);
}

static void
print_cell_table (const Options *opt,
                  guint          placement,
                  guint          transport)
{
  static const char *labels[N_FIGURES] = {
    "seq p50 µs", "seq p99 µs", "cb p50 µs", "cb p99 µs", "64-in-flight/s", "100-conns/s",
  };
  gboolean any = FALSE;

  for (guint s = 0; s < N_SYSTEMS; s++)
    any |= cells[placement][transport][s].run;
  if (!any)
    return;
  printf ("\n== %s, %s ==  (value  ×raw  ×echo: cost relative to the raw-socket floor and to the\n"
          "   libsoup WebSocket echo; >1 is slower, for throughput too)\n",
          placement == 0 ? "pinned: server and client on CPU 0"
          : placement == 1 ? "unpinned" : "split: server on CPU 0, client on CPU 1",
          transport == 0 ? "Unix socket" : transport == 1 ? "TCP loopback" : "TLS over TCP loopback");
  printf ("%-24s", "system");
  for (guint f = 0; f < N_FIGURES; f++)
    printf (" | %-23s", labels[f]);
  printf (" | rounds\n");
  for (guint s = 0; s < N_SYSTEMS; s++)
    {
      const Cell *cell = &cells[placement][transport][s];
      const Cell *raw = &cells[placement][transport][SYS_RAW];
      const Cell *echo = &cells[placement][transport][SYS_SOUP];

      if (!cell->run)
        continue;
      printf ("%-24s", systems[s].title);
      for (guint f = 0; f < N_FIGURES; f++)
        {
          char v[32], r1[16], r2[16];

          fmt_value (v, sizeof v, f, cell->median[f]);
          fmt_ratio (r1, sizeof r1, cost_ratio (f, cell->median[f], raw->median[f]));
          fmt_ratio (r2, sizeof r2, cost_ratio (f, cell->median[f], echo->median[f]));
          printf (" | %8s %6s %6s", v, r1, r2);
        }
      printf (" | %u/%u%s%s\n", cell->clean, cell->tried, cell->note != NULL ? "  " : "",
              cell->note != NULL ? cell->note : "");
    }
  (void) opt;
}

/* Tether's cost relative to every other system, per figure. */
static void
print_tether_ratios (guint placement,
                     guint transport)
{
  static const char *labels[N_FIGURES] = {
    "seq p50", "seq p99", "cb p50", "cb p99", "64-in-flight", "100 conns",
  };
  const Cell *t = &cells[placement][transport][SYS_TETHER];

  if (!t->run || t->n == 0)
    return;
  printf ("  Tether ÷ each (cost; <1: Tether is better)   ");
  for (guint s = 0; s < N_SYSTEMS - 1; s++)
    if (cells[placement][transport][s].run)
      printf (" %9.9s", systems[s].key);
  printf ("\n");
  for (guint f = 0; f < N_FIGURES; f++)
    {
      printf ("    %-43s", labels[f]);
      for (guint s = 0; s < N_SYSTEMS - 1; s++)
        {
          char r[16];

          if (!cells[placement][transport][s].run)
            continue;
          fmt_ratio (r, sizeof r, cost_ratio (f, t->median[f], cells[placement][transport][s].median[f]));
          printf (" %9s", r);
        }
      printf ("\n");
    }
}

static void
print_memory_table (guint transport)
{
  gboolean any = FALSE;
  const Memory *t = &memory[transport][SYS_TETHER];

  for (guint s = 0; s < N_SYSTEMS; s++)
    any |= memory[transport][s].run;
  if (!any)
    return;
  printf ("\n== server memory, %s (unpinned; fresh server each; RSS = VmRSS delta, heap = malloc in use) ==\n",
          transport == 0 ? "Unix socket" : transport == 1 ? "TCP loopback" : "TLS");
  printf ("%-24s | %-30s | %-30s\n", "system", "per idle connection, bytes", "per pending callback, bytes");
  printf ("%-24s | %9s %9s %10s | %9s %9s %10s\n", "", "RSS", "heap", "Tether ÷", "RSS", "heap", "Tether ÷");
  for (guint s = 0; s < N_SYSTEMS; s++)
    {
      const Memory *m = &memory[transport][s];
      char a[16], b[16], c[16], d[16], e[16], g[16];

      if (!m->run)
        continue;
      g_snprintf (a, sizeof a, isnan (m->idle_rss_per_conn) ? "—" : "%.0f", m->idle_rss_per_conn);
      g_snprintf (b, sizeof b, isnan (m->idle_heap_per_conn) ? "—" : "%.0f", m->idle_heap_per_conn);
      fmt_ratio (c, sizeof c, t->idle_rss_per_conn / m->idle_rss_per_conn);
      g_snprintf (d, sizeof d, isnan (m->pending_rss_per_cb) ? "—" : "%.0f", m->pending_rss_per_cb);
      g_snprintf (e, sizeof e, isnan (m->pending_heap_per_cb) ? "—" : "%.0f", m->pending_heap_per_cb);
      fmt_ratio (g, sizeof g, t->pending_rss_per_cb / m->pending_rss_per_cb);
      printf ("%-24s | %9s %9s %10s | %9s %9s %10s%s%s\n", systems[s].title, a, b, s == SYS_TETHER ? "" : c,
              d, e, s == SYS_TETHER ? "" : g, m->note != NULL ? "  " : "", m->note != NULL ? m->note : "");
    }
}

typedef struct
{
  const char *key;
  const char *text;
  double      value;
  double      limit;
  gboolean    at_most;
} Target;

static const char *
verdict (const Target *t)
{
  if (isnan (t->value))
    return "n/a";
  return (t->at_most ? t->value <= t->limit : t->value >= t->limit) ? "PASS" : "FAIL";
}

/* The median over rounds of @a's figure @fa ÷ @b's figure @fb in the same
 * round. Rounds of the two run back to back (run_order), so a slow moment
 * of the machine (another VM on the host: nothing this run can see) slows
 * both sides of a ratio, where it could hit one median and not the other. */
static double
paired_ratio (const Cell *a,
              guint       fa,
              const Cell *b,
              guint       fb)
{
  double ratios[N_ROUNDS_MAX];
  guint n = MIN (a->n, b->n);

  for (guint i = 0; i < n; i++)
    ratios[i] = a->rounds[fa][i] / b->rounds[fb][i];
  return harness_median (ratios, n);
}

static guint
collect_targets (guint   placement,
                 guint   transport,
                 Target *out)
{
  const Cell *t = &cells[placement][transport][SYS_TETHER];
  const Cell *echo = &cells[placement][transport][SYS_SOUP];
  const Cell *jr = &cells[placement][transport][SYS_JSONRPC];
  const Cell *gd = &cells[placement][transport][SYS_GDBUS];
  const Cell *cp = &cells[placement][transport][SYS_CAPNP];
  guint n = 0;

  if (!t->run)
    return 0;
  out[n++] = (Target) { "seq_vs_echo", "sequential call p50 ÷ WebSocket echo p50", paired_ratio (t, F_SEQ_P50, echo, F_SEQ_P50), 1.3, TRUE };
  out[n++] = (Target) { "seq_p99_vs_echo", "  (p99 ÷ echo p99, for information)", paired_ratio (t, F_SEQ_P99, echo, F_SEQ_P99), 1.3, TRUE };
  out[n++] = (Target) { "cb_vs_echo", "callback round trip p50 ÷ echo p50 (one echo)", paired_ratio (t, F_CB_P50, echo, F_SEQ_P50), 2.6, TRUE };
  /* The same target against the echo's own two round trips: unpinned, the
   * echo's one round trip is bimodal (the scheduler put its two processes
   * on one CPU, or not), its two round trips less so. */
  out[n++] = (Target) { "cb_vs_echo2", "  (callback p50 ÷ echo's two round trips p50, for information)", paired_ratio (t, F_CB_P50, echo, F_CB_P50), 1.3, TRUE };
  out[n++] = (Target) { "cb_vs_capnp", "  (callback p50 ÷ Cap'n Proto callback p50, for information)", cp->run ? t->median[F_CB_P50] / cp->median[F_CB_P50] : NAN, NAN, TRUE };
  out[n++] = (Target) { "inflight_vs_jsonrpc", "64-in-flight throughput ÷ jsonrpc-glib's", jr->run ? t->median[F_INFLIGHT] / jr->median[F_INFLIGHT] : NAN, 4.0, FALSE };
  out[n++] = (Target) { "inflight_vs_gdbus", "64-in-flight throughput ÷ GDBus's", gd->run ? t->median[F_INFLIGHT] / gd->median[F_INFLIGHT] : NAN, 2.0, FALSE };
  return n;
}

static void
print_targets (const Options *opt)
{
  printf ("\n== Targets of issue #7 (reported, not asserted) ==\n");
  for (guint p = 0; p < N_PLACEMENTS; p++)
    for (guint tr = 0; tr < N_TRANSPORTS; tr++)
      {
        Target targets[8];
        guint n = collect_targets (p, tr, targets);

        if (n == 0)
          continue;
        printf ("  %s, %s:\n", placements[p], transports[tr]);
        for (guint i = 0; i < n; i++)
          {
            if (isnan (targets[i].value))
              printf ("    %-62s    n/a\n", targets[i].text);
            else if (isnan (targets[i].limit))
              printf ("    %-62s %6.2f\n", targets[i].text, targets[i].value);
            else
              printf ("    %-62s %6.2f  %s %.1f  %s\n", targets[i].text, targets[i].value,
                      targets[i].at_most ? "<=" : ">=", targets[i].limit, verdict (&targets[i]));
          }
      }
  for (guint tr = 0; tr < N_TRANSPORTS; tr++)
    {
      const Memory *m = &memory[tr][SYS_TETHER];
      Target idle = { NULL, NULL, m->idle_rss_per_conn, 16384, TRUE };
      Target pend = { NULL, NULL, m->pending_rss_per_cb, 1024, TRUE };

      if (!m->run)
        continue;
      printf ("  memory, %s:\n", transports[tr]);
      printf ("    %-62s %6.0f  <= 16384  %s   (heap %.0f)\n", "server RSS per idle connection, bytes",
              idle.value, verdict (&idle), m->idle_heap_per_conn);
      printf ("    %-62s %6.0f  <= 1024  %s   (heap %.0f)\n", "server RSS per pending callback, bytes",
              pend.value, verdict (&pend), m->pending_heap_per_cb);
    }
  (void) opt;
}

static char *
results_json (const Options      *opt,
              double              load_start,
              const HarnessNoise *run)
{
  GString *j = g_string_new ("{\n  \"benchmark\": \"peers\",\n  ");

  harness_json_machine (j, load_start, run);
  g_string_append_printf (j, ",\n  \"settings\": {\"rounds\": %u, \"calls\": %d, \"warmup_calls\": %d, "
                          "\"depth\": %d, \"conns\": %d, \"idle_conns\": %d, \"pending_callbacks\": %d, ",
                          opt->rounds, opt->calls, opt->warmup, opt->depth, opt->conns, opt->idle_conns,
                          opt->pending);
  harness_json_num (j, "seconds", opt->seconds, 2);
  g_string_append (j, ", ");
  harness_json_num (j, "warmup_seconds", opt->warmup_seconds, 2);
  g_string_append (j, "},\n  \"systems\": {");
  for (guint s = 0; s < N_SYSTEMS; s++)
    g_string_append_printf (j, "%s\"%s\": {\"title\": \"%s\", \"built\": %s}", s ? ", " : "", systems[s].key,
                            systems[s].title, systems[s].present ? "true" : "false");
  g_string_append (j, "},\n  \"timed\": [\n");
  {
    gboolean first = TRUE;

    for (guint p = 0; p < N_PLACEMENTS; p++)
      for (guint tr = 0; tr < N_TRANSPORTS; tr++)
        for (guint s = 0; s < N_SYSTEMS; s++)
          {
            const Cell *c = &cells[p][tr][s];

            if (!c->run)
              continue;
            g_string_append_printf (j, "%s    {\"placement\": \"%s\", \"transport\": \"%s\", \"system\": \"%s\", "
                                    "\"rounds_kept\": %u, \"rounds_clean\": %u, \"rounds_run\": %u, \"errors\": %u, ",
                                    first ? "" : ",\n", placements[p], transports[tr], systems[s].key, c->n, c->clean,
                                    c->tried, c->errors);
            first = FALSE;
            harness_json_str (j, "note", c->note);
            for (guint f = 0; f < N_FIGURES; f++)
              {
                g_string_append (j, ",\n      ");
                harness_json_num (j, figure_keys[f], c->median[f], 2);
                g_string_append (j, ", ");
                {
                  g_autofree char *key = g_strconcat (figure_keys[f], "_rounds", NULL);

                  harness_json_array (j, key, c->rounds[f], c->n, 1);
                }
                if (s != SYS_RAW)
                  {
                    g_autofree char *k1 = g_strconcat (figure_keys[f], "_cost_vs_raw", NULL);
                    g_autofree char *k2 = g_strconcat (figure_keys[f], "_cost_vs_echo", NULL);

                    g_string_append (j, ", ");
                    harness_json_num (j, k1, cost_ratio (f, c->median[f], cells[p][tr][SYS_RAW].median[f]), 2);
                    g_string_append (j, ", ");
                    harness_json_num (j, k2, cost_ratio (f, c->median[f], cells[p][tr][SYS_SOUP].median[f]), 2);
                  }
              }
            g_string_append (j, "}");
          }
  }
  g_string_append (j, "\n  ],\n  \"memory\": [\n");
  {
    gboolean first = TRUE;

    for (guint tr = 0; tr < N_TRANSPORTS; tr++)
      for (guint s = 0; s < N_SYSTEMS; s++)
        {
          const Memory *m = &memory[tr][s];

          if (!m->run)
            continue;
          g_string_append_printf (j, "%s    {\"transport\": \"%s\", \"system\": \"%s\", \"idle_conns\": %d, "
                                  "\"pending_callbacks\": %d, ", first ? "" : ",\n", transports[tr],
                                  systems[s].key, m->idle_conns, m->pending);
          first = FALSE;
          harness_json_num (j, "rss_per_idle_connection_bytes", m->idle_rss_per_conn, 2);
          g_string_append (j, ", ");
          harness_json_num (j, "heap_per_idle_connection_bytes", m->idle_heap_per_conn, 2);
          g_string_append (j, ", ");
          harness_json_num (j, "rss_per_pending_callback_bytes", m->pending_rss_per_cb, 2);
          g_string_append (j, ", ");
          harness_json_num (j, "heap_per_pending_callback_bytes", m->pending_heap_per_cb, 2);
          g_string_append (j, ", ");
          harness_json_str (j, "note", m->note);
          g_string_append (j, "}");
        }
  }
  g_string_append (j, "\n  ],\n  \"targets\": [\n");
  {
    gboolean first = TRUE;

    for (guint p = 0; p < N_PLACEMENTS; p++)
      for (guint tr = 0; tr < N_TRANSPORTS; tr++)
        {
          Target targets[8];
          guint n = collect_targets (p, tr, targets);

          for (guint i = 0; i < n; i++)
            {
              g_string_append_printf (j, "%s    {\"placement\": \"%s\", \"transport\": \"%s\", \"target\": \"%s\", ",
                                      first ? "" : ",\n", placements[p], transports[tr], targets[i].key);
              first = FALSE;
              harness_json_num (j, "value", targets[i].value, 2);
              g_string_append (j, ", ");
              harness_json_num (j, "limit", targets[i].limit, 2);
              g_string_append_printf (j, ", \"at_most\": %s, \"verdict\": \"%s\"}", targets[i].at_most ? "true" : "false",
                                      isnan (targets[i].limit) ? "info" : verdict (&targets[i]));
            }
        }
    for (guint tr = 0; tr < N_TRANSPORTS; tr++)
      {
        const Memory *m = &memory[tr][SYS_TETHER];
        Target idle = { "rss_per_idle_connection", NULL, m->idle_rss_per_conn, 16384, TRUE };
        Target pend = { "rss_per_pending_callback", NULL, m->pending_rss_per_cb, 1024, TRUE };
        const Target *both[] = { &idle, &pend };

        if (!m->run)
          continue;
        for (guint i = 0; i < 2; i++)
          {
            g_string_append_printf (j, "%s    {\"placement\": \"unpinned\", \"transport\": \"%s\", \"target\": \"%s\", ",
                                    first ? "" : ",\n", transports[tr], both[i]->key);
            first = FALSE;
            harness_json_num (j, "value", both[i]->value, 2);
            g_string_append (j, ", ");
            harness_json_num (j, "limit", both[i]->limit, 2);
            g_string_append_printf (j, ", \"at_most\": true, \"verdict\": \"%s\"}", verdict (both[i]));
          }
      }
  }
  g_string_append (j, "\n  ]\n}\n");
  return g_string_free (j, FALSE);
}

/* ---------------------------------------------------------------------- */
/* Main                                                                   */

int
main (int    argc,
      char **argv)
{
  g_autofree char *json_path = NULL;
  g_autofree char *only_systems = NULL;
  g_autofree char *only_transports = NULL;
  g_autofree char *pin = NULL;
  g_autofree char *memory_on = NULL;
  g_autofree char *self = NULL;
  g_autofree char *json = NULL;
  int rounds = 5, budget = 480;
  gboolean no_memory = FALSE, quick = FALSE;
  Options opt = { 0 };
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &json_path, "Write the results here (default bench-peers.json)", "FILE" },
    { "rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "Rounds per figure; the median is reported (default 5)", "N" },
    { "systems", 0, 0, G_OPTION_ARG_STRING, &only_systems, "Only these (raw,soup,jsonrpc,gdbus,grpc,capnp,tether; raw and soup are always kept as the floors)", "LIST" },
    { "transports", 0, 0, G_OPTION_ARG_STRING, &only_transports, "unix,tcp,tls (default: all there are)", "LIST" },
    { "pin", 0, 0, G_OPTION_ARG_STRING, &pin, "both (pinned and unpinned, the default), pinned, unpinned, split (server on CPU 0, client on CPU 1) or all", "WHICH" },
    { "calls", 0, 0, G_OPTION_ARG_INT, &opt.calls, "Measured sequential calls per round (default 1000)", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &opt.warmup, "Sequential calls before measuring (default 100)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &opt.seconds, "Measured seconds per throughput figure (default 0.3)", "S" },
    { "conns", 0, 0, G_OPTION_ARG_INT, &opt.conns, "Connections for the many-connections throughput (default 100)", "N" },
    { "idle-conns", 0, 0, G_OPTION_ARG_INT, &opt.idle_conns, "Idle connections for the memory figure (default 200)", "N" },
    { "pending", 0, 0, G_OPTION_ARG_INT, &opt.pending, "Pending callbacks for the memory figure (default 1000)", "N" },
    { "no-memory", 0, 0, G_OPTION_ARG_NONE, &no_memory, "Skip the memory figures", NULL },
    { "memory-on", 0, 0, G_OPTION_ARG_STRING, &memory_on, "Transports for the memory figures (default unix,tls)", "LIST" },
    { "quick", 0, 0, G_OPTION_ARG_NONE, &quick, "One round, fewer calls: a smoke test", NULL },
    { "budget", 0, 0, G_OPTION_ARG_INT, &budget, "Seconds after which what is left is skipped (default 480)", "S" },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("- Tether side by side with jsonrpc-glib, GDBus, gRPC, Cap'n Proto");
  g_autoptr(GError) error = NULL;
  gboolean do_system[N_SYSTEMS];
  HarnessNoise run;
  double load_start;

  setlocale (LC_ALL, "");
  harness_init ("peers");
  opt.calls = 1000;
  opt.warmup = 100;
  opt.seconds = 0.3;
  opt.warmup_seconds = 0.1;
  opt.depth = 64;
  opt.conns = 100;
  opt.idle_conns = 200;
  opt.pending = 1000;
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    {
      g_printerr ("peers: %s\n", error->message);
      return 2;
    }
  if (quick)
    {
      rounds = 1;
      opt.calls = 500;
      opt.warmup = 50;
      opt.seconds = 0.2;
    }
  if (rounds < 1 || rounds > N_ROUNDS_MAX || opt.calls < 10 || opt.warmup < 0 || opt.seconds <= 0 ||
      opt.conns < 1 || opt.idle_conns < 1 || opt.pending < 1 || budget < 10)
    {
      g_printerr ("peers: invalid option value\n");
      return 2;
    }
  opt.rounds = (guint) rounds;
  for (guint i = 0; i < N_SYSTEMS; i++)
    do_system[i] = TRUE;
  for (guint i = 0; i < N_TRANSPORTS; i++)
    opt.do_transport[i] = TRUE;
  for (guint i = 0; i < N_PLACEMENTS; i++)
    opt.do_placement[i] = pin == NULL || g_str_equal (pin, "both") ? i < 2
                          : g_str_equal (pin, "all") || g_str_equal (pin, placements[i]);
  if (pin != NULL && !opt.do_placement[0] && !opt.do_placement[1] && !opt.do_placement[2])
    {
      g_printerr ("peers: --pin: both, pinned, unpinned, split or all\n");
      return 2;
    }
  if (opt.do_placement[2] && g_get_num_processors () < 2)
    {
      g_printerr ("peers: note: one CPU; the split placement is skipped\n");
      opt.do_placement[2] = FALSE;
    }
  if (only_systems != NULL)
    {
      const char *keys[N_SYSTEMS];

      for (guint i = 0; i < N_SYSTEMS; i++)
        keys[i] = systems[i].key;
      if (!harness_parse_list ("--systems", only_systems, keys, N_SYSTEMS, do_system))
        return 2;
      do_system[SYS_RAW] = do_system[SYS_SOUP] = TRUE;
    }
  if (only_transports != NULL && !harness_parse_list ("--transports", only_transports, transports, N_TRANSPORTS,
                                               opt.do_transport))
    return 2;
  opt.do_memory = !no_memory;
  if (!harness_parse_list ("--memory-on", memory_on != NULL ? memory_on : "unix,tls", transports, N_TRANSPORTS,
                   opt.memory_on))
    return 2;

  /* The watchdog: past the budget what is left is skipped; a minute more
   * and everything ends. */
  harness_watchdog ((guint) budget + 60);
  self = g_file_read_link ("/proc/self/exe", NULL);
  opt.bindir = g_path_get_dirname (self != NULL ? self : argv[0]);
  opt.dir = harness_make_tmpdir ("tether-peers-XXXXXX", &error);
  if (opt.dir == NULL)
    {
      g_printerr ("peers: %s\n", error->message);
      return 1;
    }

  for (guint s = 0; s < N_SYSTEMS; s++)
    {
      g_autofree char *exe = peer_path (&opt, &systems[s]);

      systems[s].present = do_system[s] && g_file_test (exe, G_FILE_TEST_IS_EXECUTABLE);
      if (do_system[s] && !systems[s].present)
        g_printerr ("peers: note: %s was not built (its packages or a C++ compiler were missing at "
                    "configure time); skipped\n", systems[s].title);
    }
  if (opt.do_transport[2] && !harness_make_certificate (opt.dir, &opt.cert, &opt.key))
    {
      g_printerr ("peers: note: no openssl to make a certificate; TLS skipped\n");
      opt.do_transport[2] = FALSE;
    }

  load_start = harness_load_average ();
  harness_noise_start (&run);
  opt.deadline = run.t0 + (gint64) budget * G_USEC_PER_SEC;

  /* Memory first (it wants fresh servers and no hurry), then the timed
   * figures, placement by placement. */
  for (guint tr = 0; tr < N_TRANSPORTS && opt.do_memory; tr++)
    if (opt.memory_on[tr] && (tr != 2 || opt.cert != NULL))
      run_memory (&opt, tr);
  for (guint p = 0; p < N_PLACEMENTS; p++)
    for (guint tr = 0; tr < N_TRANSPORTS; tr++)
      if (opt.do_placement[p] && opt.do_transport[tr])
        run_timed (&opt, p, tr);

  harness_noise_stop (&run);

  printf ("\nTether side by side: one machine, one run; client and server in separate processes\n");
  printf ("(%u CPUs; load average %.2f at the start; other processes used %.1f CPU-seconds during the %.0f s run;\n"
          " %u round(s) per figure, median reported; sequential: %d calls after %d warm-up; throughput: %.1f s\n"
          " after %.1f s warm-up; memory: %d idle connections, %d pending callbacks)\n",
          g_get_num_processors (), load_start, MAX (run.foreign, 0.0), run.wall, opt.rounds, opt.calls, opt.warmup,
          opt.seconds, opt.warmup_seconds, opt.idle_conns, opt.pending);
  for (guint p = 0; p < N_PLACEMENTS; p++)
    for (guint tr = 0; tr < N_TRANSPORTS; tr++)
      {
        print_cell_table (&opt, p, tr);
        print_tether_ratios (p, tr);
      }
  for (guint tr = 0; tr < N_TRANSPORTS; tr++)
    print_memory_table (tr);
  print_targets (&opt);

  json = results_json (&opt, load_start, &run);
  harness_write_results (json_path != NULL ? json_path : "bench-peers.json", json);
  fflush (stdout);

  harness_finish ();
  return 0;
}
