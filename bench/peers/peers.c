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

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <glib/gstdio.h>
#include <gio/gio.h>

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
/* Children (as in bench/blackhole.c)                                     */

typedef struct
{
  char             *name;
  GSubprocess      *proc;
  GPid              pid;
  GOutputStream    *in;
  GDataInputStream *out;
  GQueue            lines;
  gboolean          eof;
  gboolean          exited;
} Child;

static GPtrArray *all_children;

static gboolean
flag_set_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

#define WAIT_UNTIL(cond, ms) \
  ({ \
    gboolean _wu_expired = FALSE; \
    guint _wu_timer = g_timeout_add ((ms), flag_set_cb, &_wu_expired); \
    while (!(cond) && !_wu_expired) \
      g_main_context_iteration (NULL, TRUE); \
    if (!_wu_expired) \
      g_source_remove (_wu_timer); \
    (cond) ? TRUE : FALSE; \
  })

static void
spin_ms (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, flag_set_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

static void child_read_next (Child *c);

static void
child_line_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Child *c = user_data;
  char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result, NULL, NULL);

  if (line == NULL)
    {
      c->eof = TRUE;
      return;
    }
  g_queue_push_tail (&c->lines, line);
  child_read_next (c);
}

static void
child_read_next (Child *c)
{
  g_data_input_stream_read_line_async (c->out, G_PRIORITY_DEFAULT, NULL, child_line_cb, c);
}

static void
child_exited_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Child *c = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  c->exited = TRUE;
}

/* In the child, before exec: die with the orchestrator; on one CPU (the
 * data) or any (-1). */
static void
child_setup (gpointer user_data)
{
  int cpu = GPOINTER_TO_INT (user_data);
  cpu_set_t set;

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  CPU_ZERO (&set);
  if (cpu >= 0)
    CPU_SET (cpu, &set);
  else
    for (int i = 0; i < CPU_SETSIZE && i < (int) sysconf (_SC_NPROCESSORS_CONF); i++)
      CPU_SET (i, &set);
  sched_setaffinity (0, sizeof set, &set);
}

static Child *
child_spawn (const char         *name,
             const char * const *argv,
             int                 cpu,
             GError            **error)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  GSubprocess *proc;
  const char *id;
  Child *c;

  /* Honest malloc figures: no slice magazines in front of malloc. */
  g_subprocess_launcher_setenv (launcher, "G_SLICE", "always-malloc", TRUE);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, GINT_TO_POINTER (cpu), NULL);
  proc = g_subprocess_launcher_spawnv (launcher, argv, error);
  if (proc == NULL)
    return NULL;
  c = g_new0 (Child, 1);
  c->name = g_strdup (name);
  c->proc = proc;
  id = g_subprocess_get_identifier (proc);
  c->pid = id != NULL ? atoi (id) : 0;
  c->in = g_subprocess_get_stdin_pipe (proc);
  c->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  g_queue_init (&c->lines);
  child_read_next (c);
  g_subprocess_wait_async (proc, NULL, child_exited_cb, c);
  g_ptr_array_add (all_children, c);
  return c;
}

/* The next line starting with @prefix (other lines go to stderr), or NULL
 * after @timeout_ms or at EOF. */
static char *
child_wait_line (Child      *c,
                 const char *prefix,
                 guint       timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      gint64 left;

      while (!g_queue_is_empty (&c->lines))
        {
          char *line = g_queue_pop_head (&c->lines);

          if (g_str_has_prefix (line, prefix))
            return line;
          g_printerr ("peers: %s: %s\n", c->name, line);
          g_free (line);
        }
      left = (end - g_get_monotonic_time ()) / 1000;
      if (c->eof || left <= 0)
        return NULL;
      WAIT_UNTIL (!g_queue_is_empty (&c->lines) || c->eof, (guint) left);
    }
}

static void
child_send (Child      *c,
            const char *line)
{
  g_autofree char *text = g_strconcat (line, "\n", NULL);

  g_output_stream_write_all (c->in, text, strlen (text), NULL, NULL, NULL);
}

static gboolean
child_stop (Child *c)
{
  if (c == NULL || c->exited)
    return TRUE;
  g_subprocess_force_exit (c->proc);   /* SIGKILL, to this pid only */
  return WAIT_UNTIL (c->exited, 5000);
}

static gboolean
parse_kv_double (const char *line,
                 const char *key,
                 double     *value)
{
  g_autofree char *needle = g_strconcat (" ", key, "=", NULL);
  const char *p = strstr (line, needle);

  if (p == NULL)
    return FALSE;
  *value = g_ascii_strtod (p + strlen (needle), NULL);
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* The machine                                                            */

static double
machine_busy_seconds (void)
{
  g_autofree char *text = NULL;
  guint64 v[8] = { 0 };
  long hz = sysconf (_SC_CLK_TCK);

  if (!g_file_get_contents ("/proc/stat", &text, NULL, NULL) || !g_str_has_prefix (text, "cpu ") ||
      sscanf (text + 4, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %"
              G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
              " %" G_GUINT64_FORMAT, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 8)
    return NAN;
  return (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (hz > 0 ? hz : 100);
}

static double
own_cpu_seconds (void)
{
  struct rusage self, children;

  getrusage (RUSAGE_SELF, &self);
  getrusage (RUSAGE_CHILDREN, &children);
  return self.ru_utime.tv_sec + self.ru_stime.tv_sec + children.ru_utime.tv_sec + children.ru_stime.tv_sec +
         (self.ru_utime.tv_usec + self.ru_stime.tv_usec + children.ru_utime.tv_usec +
          children.ru_stime.tv_usec) / 1e6;
}

static double
proc_cpu_seconds (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *p;
  long hz = sysconf (_SC_CLK_TCK);

  if (!g_file_get_contents (path, &text, NULL, NULL) || (p = strrchr (text, ')')) == NULL)
    return 0;
  fields = g_strsplit (p + 2, " ", 0);
  if (g_strv_length (fields) < 13)
    return 0;
  return (g_ascii_strtod (fields[11], NULL) + g_ascii_strtod (fields[12], NULL)) / (hz > 0 ? hz : 100);
}

/* CPU seconds this run used: itself, its reaped children, its live ones. */
static double
run_cpu_seconds (void)
{
  double total = own_cpu_seconds ();

  for (guint i = 0; i < all_children->len; i++)
    {
      Child *c = g_ptr_array_index (all_children, i);

      if (!c->exited)
        total += proc_cpu_seconds (c->pid);
    }
  return total;
}

static gint64
proc_rss_kb (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *text = NULL;
  const char *p;

  if (!g_file_get_contents (path, &text, NULL, NULL) || (p = strstr (text, "\nVmRSS:")) == NULL)
    return -1;
  return g_ascii_strtoll (p + 7, NULL, 10);
}

static double
load_average (void)
{
  g_autofree char *text = NULL;

  if (!g_file_get_contents ("/proc/loadavg", &text, NULL, NULL))
    return NAN;
  return g_ascii_strtod (text, NULL);
}

/* ---------------------------------------------------------------------- */
/* Servers and clients                                                    */

static char *
peer_path (const Options *opt,
           const System  *sys)
{
  return g_strdup_printf ("%s/peer-%s", opt->bindir, sys->key);
}

typedef struct
{
  Child *child;
  char  *address;
} Server;

static gboolean
server_start (const Options *opt,
              const System  *sys,
              guint          transport,
              int            cpu,
              const char    *tag,
              Server        *s,
              char         **why)
{
  g_autofree char *exe = peer_path (opt, sys);
  g_autofree char *listen = transport == 0 ? g_strdup_printf ("%s/%s-%s.sock", opt->dir, sys->key, tag)
                                           : g_strdup ("127.0.0.1:0");
  g_autofree char *name = g_strdup_printf ("%s server", sys->key);
  const char *argv[] = { exe, "server", "--transport", transports[transport], "--address", listen,
                         "--cert", opt->cert != NULL ? opt->cert : "", "--key", opt->key != NULL ? opt->key : "",
                         NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *ready = NULL;

  memset (s, 0, sizeof *s);
  s->child = child_spawn (name, argv, cpu, &error);
  if (s->child == NULL)
    {
      *why = g_strdup_printf ("cannot start the server: %s", error->message);
      return FALSE;
    }
  ready = child_wait_line (s->child, "READY ", 15000);
  if (ready == NULL)
    {
      *why = g_strdup ("the server did not start");
      child_stop (s->child);
      s->child = NULL;
      return FALSE;
    }
  s->address = g_strdup (ready + strlen ("READY "));
  return TRUE;
}

static void
server_stop (Server *s)
{
  if (s->child != NULL && !child_stop (s->child))
    g_printerr ("peers: a server (pid %d) did not exit\n", (int) s->child->pid);
  s->child = NULL;
  g_clear_pointer (&s->address, g_free);
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
  double busy0 = machine_busy_seconds (), own0 = run_cpu_seconds ();
  gint64 t0 = g_get_monotonic_time ();
  guint got = 0;
  Child *c;

  for (guint i = 0; i < N_FIGURES; i++)
    round->figures[i] = NAN;
  round->errors = 0;
  c = child_spawn (name, (const char * const *) argv->pdata, cpu, &error);
  if (c == NULL)
    {
      *why = g_strdup_printf ("cannot start the client: %s", error->message);
      return FALSE;
    }
  for (;;)
    {
      g_autofree char *line = child_wait_line (c, "RESULT ", 90000);
      char workload[32] = "";
      double errors = 0;

      if (line == NULL)
        break;
      got++;
      sscanf (line, "RESULT workload=%31s", workload);
      if (parse_kv_double (line, "errors", &errors) && errors > 0)
        {
          g_printerr ("peers: %s: %s\n", name, line);
          round->errors += (guint) errors;
        }
      if (g_str_equal (workload, "seq"))
        {
          parse_kv_double (line, "p50_us", &round->figures[F_SEQ_P50]);
          parse_kv_double (line, "p99_us", &round->figures[F_SEQ_P99]);
        }
      else if (g_str_equal (workload, "cb"))
        {
          parse_kv_double (line, "p50_us", &round->figures[F_CB_P50]);
          parse_kv_double (line, "p99_us", &round->figures[F_CB_P99]);
        }
      else if (g_str_equal (workload, "inflight"))
        parse_kv_double (line, "rate", &round->figures[F_INFLIGHT]);
      else if (g_str_equal (workload, "conns"))
        parse_kv_double (line, "rate", &round->figures[F_CONNS]);
    }
  child_stop (c);   /* reaped: its CPU time is in RUSAGE_CHILDREN now */
  round->wall = (g_get_monotonic_time () - t0) / 1e6;
  round->foreign_cpu = (machine_busy_seconds () - busy0) - (run_cpu_seconds () - own0);
  if (got == 0)
    {
      *why = g_strdup ("the client gave no result");
      return FALSE;
    }
  return TRUE;
}

static double
median (const double *values,
        guint         n)
{
  double v[N_ROUNDS_MAX * 3];
  guint m = 0;

  for (guint i = 0; i < n; i++)
    if (!isnan (values[i]))
      v[m++] = values[i];
  if (m == 0)
    return NAN;
  for (guint i = 1; i < m; i++)
    for (guint j = i; j > 0 && v[j - 1] > v[j]; j--)
      {
        double t = v[j];
        v[j] = v[j - 1];
        v[j - 1] = t;
      }
  return m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
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
  Server servers[N_SYSTEMS] = { { 0 } };
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
                server_stop (&servers[s]);
                break;
              }
            cell->tried++;
            cell->errors += round.errors;
            /* Tick granularity (10 ms) on both readings: some slack. */
            clean = round.foreign_cpu <= MAX (0.05, 0.15 * round.wall);
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

      server_stop (&servers[s]);
      for (guint f = 0; f < N_FIGURES; f++)
        cell->median[f] = median (cell->rounds[f], cell->n);
    }
}

/* The server's memory: VmRSS from outside, malloc's bytes in use from
 * inside. */
static gboolean
sample_memory (Server *s,
               gint64 *rss_kb,
               double *heap)
{
  g_autofree char *line = NULL;

  child_send (s->child, "mem");
  line = child_wait_line (s->child, "MEM ", 5000);
  *rss_kb = proc_rss_kb (s->child->pid);
  return line != NULL && parse_kv_double (line, "heap", heap) && *rss_kb > 0;
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
  Server server;
  Child *client = NULL;
  g_autoptr(GPtrArray) argv = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  g_autofree char *name = g_strdup_printf ("%s %s client", systems[s].key, workload);
  gint64 rss0, rss1;
  double heap0, heap1, held = 0;
  gboolean ok = FALSE;

  *rss_per = *heap_per = NAN;
  if (!server_start (opt, &systems[s], transport, -1, workload, &server, why))
    return FALSE;
  argv = client_argv (opt, &systems[s], transport, server.address, workload, keep);
  client = child_spawn (name, (const char * const *) argv->pdata, -1, &error);
  if (client == NULL)
    {
      *why = g_strdup_printf ("cannot start the client: %s", error->message);
      goto out;
    }
  g_free (line);
  line = child_wait_line (client, "CONNECTED", 20000);
  if (line == NULL)
    {
      /* "UNSUPPORTED …" went to stderr; say it here too. */
      *why = g_strdup ("not supported, or the client did not connect");
      goto out;
    }
  spin_ms (200);
  if (!sample_memory (&server, &rss0, &heap0))
    {
      *why = g_strdup ("no memory sample");
      goto out;
    }
  child_send (client, "go");
  g_free (line);
  line = child_wait_line (client, "HOLDING ", 60000);
  if (line == NULL)
    {
      *why = g_strdup ("the load was not built in time");
      goto out;
    }
  if (!parse_kv_double (line, g_str_equal (workload, "idle") ? "conns" : "pending", &held) || held < n)
    {
      *why = g_strdup_printf ("only %.0f of %d held", held, n);
      if (held <= 0)
        goto out;
    }
  spin_ms (300);
  if (!sample_memory (&server, &rss1, &heap1))
    {
      *why = g_strdup ("no memory sample");
      goto out;
    }
  *rss_per = (rss1 - rss0) * 1024.0 / held;
  *heap_per = (heap1 - heap0) / held;
  ok = TRUE;

out:
  child_stop (client);
  server_stop (&server);
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
  return median (ratios, n);
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

static void
json_num (GString    *j,
          const char *key,
          double      v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (v) || isinf (v))
    g_string_append_printf (j, "\"%s\": null", key);
  else
    g_string_append_printf (j, "\"%s\": %s", key, g_ascii_formatd (buf, sizeof buf, "%.2f", v));
}

static void
json_str (GString    *j,
          const char *key,
          const char *v)
{
  g_autofree char *esc = v != NULL ? g_strescape (v, NULL) : NULL;

  if (v == NULL)
    g_string_append_printf (j, "\"%s\": null", key);
  else
    g_string_append_printf (j, "\"%s\": \"%s\"", key, esc);
}

static char *
results_json (const Options *opt,
              double         load_start,
              double         foreign,
              double         wall)
{
  GString *j = g_string_new ("{\n  \"benchmark\": \"peers\",\n  ");
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format_iso8601 (now);
  g_autofree char *uname = NULL;

  g_spawn_command_line_sync ("uname -srm", &uname, NULL, NULL, NULL);
  if (uname != NULL)
    g_strstrip (uname);
  json_str (j, "date", stamp);
  g_string_append (j, ", ");
  json_str (j, "kernel", uname);
  g_string_append_printf (j, ", \"cpus\": %u, ", g_get_num_processors ());
  json_num (j, "load_average_start", load_start);
  g_string_append (j, ", ");
  json_num (j, "other_processes_cpu_seconds", foreign);
  g_string_append (j, ", ");
  json_num (j, "wall_seconds", wall);
  g_string_append_printf (j, ",\n  \"settings\": {\"rounds\": %u, \"calls\": %d, \"warmup_calls\": %d, "
                          "\"depth\": %d, \"conns\": %d, \"idle_conns\": %d, \"pending_callbacks\": %d, ",
                          opt->rounds, opt->calls, opt->warmup, opt->depth, opt->conns, opt->idle_conns,
                          opt->pending);
  json_num (j, "seconds", opt->seconds);
  g_string_append (j, ", ");
  json_num (j, "warmup_seconds", opt->warmup_seconds);
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
            json_str (j, "note", c->note);
            for (guint f = 0; f < N_FIGURES; f++)
              {
                g_string_append (j, ",\n      ");
                json_num (j, figure_keys[f], c->median[f]);
                g_string_append_printf (j, ", \"%s_rounds\": [", figure_keys[f]);
                for (guint i = 0; i < c->n; i++)
                  {
                    char buf[G_ASCII_DTOSTR_BUF_SIZE];

                    g_string_append_printf (j, "%s%s", i ? ", " : "",
                                            isnan (c->rounds[f][i]) ? "null"
                                            : g_ascii_formatd (buf, sizeof buf, "%.1f", c->rounds[f][i]));
                  }
                g_string_append (j, "]");
                if (s != SYS_RAW)
                  {
                    g_autofree char *k1 = g_strconcat (figure_keys[f], "_cost_vs_raw", NULL);
                    g_autofree char *k2 = g_strconcat (figure_keys[f], "_cost_vs_echo", NULL);

                    g_string_append (j, ", ");
                    json_num (j, k1, cost_ratio (f, c->median[f], cells[p][tr][SYS_RAW].median[f]));
                    g_string_append (j, ", ");
                    json_num (j, k2, cost_ratio (f, c->median[f], cells[p][tr][SYS_SOUP].median[f]));
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
          json_num (j, "rss_per_idle_connection_bytes", m->idle_rss_per_conn);
          g_string_append (j, ", ");
          json_num (j, "heap_per_idle_connection_bytes", m->idle_heap_per_conn);
          g_string_append (j, ", ");
          json_num (j, "rss_per_pending_callback_bytes", m->pending_rss_per_cb);
          g_string_append (j, ", ");
          json_num (j, "heap_per_pending_callback_bytes", m->pending_heap_per_cb);
          g_string_append (j, ", ");
          json_str (j, "note", m->note);
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
              json_num (j, "value", targets[i].value);
              g_string_append (j, ", ");
              json_num (j, "limit", targets[i].limit);
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
            json_num (j, "value", both[i]->value);
            g_string_append (j, ", ");
            json_num (j, "limit", both[i]->limit);
            g_string_append_printf (j, ", \"at_most\": true, \"verdict\": \"%s\"}", verdict (both[i]));
          }
      }
  }
  g_string_append (j, "\n  ]\n}\n");
  return g_string_free (j, FALSE);
}

/* ---------------------------------------------------------------------- */
/* Main                                                                   */

static char cleanup_dir[PATH_MAX];

static void
rmdir_recursive (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d != NULL)
    {
      while ((name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *path = g_build_filename (dir, name, NULL);
          g_unlink (path);
        }
      g_dir_close (d);
    }
  g_rmdir (dir);
}

static void
fatal_signal_handler (int signum)
{
  static const char msg[] = "peers: interrupted (or out of time: see --budget); children die with us\n";

  /* The temporary directory holds sockets and a key: best effort, and
   * only async-signal-safe calls. */
  if (cleanup_dir[0] != '\0')
    {
      char path[PATH_MAX + 32];
      static const char *names[] = { "cert.pem", "key.pem" };

      for (guint i = 0; i < G_N_ELEMENTS (names); i++)
        {
          size_t n = strlen (cleanup_dir);

          memcpy (path, cleanup_dir, n);
          path[n] = '/';
          memcpy (path + n + 1, names[i], strlen (names[i]) + 1);
          unlink (path);
        }
    }
  if (write (STDERR_FILENO, msg, sizeof msg - 1) < 0)
    {
      /* nothing to do */
    }
  _exit (128 + signum);
}

/* A self-signed certificate for 127.0.0.1 (the clients trust it as
 * their CA), made with openssl; NULL when that is not possible. */
static gboolean
make_certificate (Options *opt)
{
  g_autofree char *cert = g_build_filename (opt->dir, "cert.pem", NULL);
  g_autofree char *key = g_build_filename (opt->dir, "key.pem", NULL);
  g_autofree char *openssl = g_find_program_in_path ("openssl");
  const char *argv[] = { openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                         "-addext", "subjectAltName=IP:127.0.0.1", NULL };
  int status = -1;

  if (openssl == NULL)
    return FALSE;
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, &status, NULL) || !g_spawn_check_wait_status (status, NULL))
    return FALSE;
  opt->cert = g_steal_pointer (&cert);
  opt->key = g_steal_pointer (&key);
  return TRUE;
}

static gboolean
parse_list (const char  *what,
            const char  *list,
            const char **names,
            guint        n_names,
            gboolean    *out)
{
  g_auto(GStrv) items = g_strsplit (list, ",", -1);

  for (guint i = 0; i < n_names; i++)
    out[i] = FALSE;
  for (guint k = 0; items[k] != NULL; k++)
    {
      gboolean found = FALSE;

      for (guint i = 0; i < n_names; i++)
        if (g_str_equal (items[k], names[i]))
          out[i] = found = TRUE;
      if (!found)
        {
          g_printerr ("peers: %s: unknown %s\n", what, items[k]);
          return FALSE;
        }
    }
  return TRUE;
}

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
  double load_start, busy_start, own_start, foreign, wall;
  gint64 t_start;

  setlocale (LC_ALL, "");
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
      if (!parse_list ("--systems", only_systems, keys, N_SYSTEMS, do_system))
        return 2;
      do_system[SYS_RAW] = do_system[SYS_SOUP] = TRUE;
    }
  if (only_transports != NULL && !parse_list ("--transports", only_transports, transports, N_TRANSPORTS,
                                               opt.do_transport))
    return 2;
  opt.do_memory = !no_memory;
  if (!parse_list ("--memory-on", memory_on != NULL ? memory_on : "unix,tls", transports, N_TRANSPORTS,
                   opt.memory_on))
    return 2;

  /* The watchdog: past the budget what is left is skipped; a minute more
   * and everything ends. */
  alarm ((unsigned) budget + 60);
  signal (SIGPIPE, SIG_IGN);
  {
    struct rlimit rl;

    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
      {
        rl.rlim_cur = rl.rlim_max;
        setrlimit (RLIMIT_NOFILE, &rl);
      }
  }
  all_children = g_ptr_array_new ();
  self = g_file_read_link ("/proc/self/exe", NULL);
  opt.bindir = g_path_get_dirname (self != NULL ? self : argv[0]);
  opt.dir = g_dir_make_tmp ("tether-peers-XXXXXX", &error);
  if (opt.dir == NULL)
    {
      g_printerr ("peers: %s\n", error->message);
      return 1;
    }
  g_strlcpy (cleanup_dir, opt.dir, sizeof cleanup_dir);
  signal (SIGINT, fatal_signal_handler);
  signal (SIGTERM, fatal_signal_handler);
  signal (SIGALRM, fatal_signal_handler);

  for (guint s = 0; s < N_SYSTEMS; s++)
    {
      g_autofree char *exe = peer_path (&opt, &systems[s]);

      systems[s].present = do_system[s] && g_file_test (exe, G_FILE_TEST_IS_EXECUTABLE);
      if (do_system[s] && !systems[s].present)
        g_printerr ("peers: note: %s was not built (its packages or a C++ compiler were missing at "
                    "configure time); skipped\n", systems[s].title);
    }
  if (opt.do_transport[2] && !make_certificate (&opt))
    {
      g_printerr ("peers: note: no openssl to make a certificate; TLS skipped\n");
      opt.do_transport[2] = FALSE;
    }

  load_start = load_average ();
  busy_start = machine_busy_seconds ();
  own_start = own_cpu_seconds ();
  t_start = g_get_monotonic_time ();
  opt.deadline = t_start + (gint64) budget * G_USEC_PER_SEC;

  /* Memory first (it wants fresh servers and no hurry), then the timed
   * figures, placement by placement. */
  for (guint tr = 0; tr < N_TRANSPORTS && opt.do_memory; tr++)
    if (opt.memory_on[tr] && (tr != 2 || opt.cert != NULL))
      run_memory (&opt, tr);
  for (guint p = 0; p < N_PLACEMENTS; p++)
    for (guint tr = 0; tr < N_TRANSPORTS; tr++)
      if (opt.do_placement[p] && opt.do_transport[tr])
        run_timed (&opt, p, tr);

  wall = (g_get_monotonic_time () - t_start) / 1e6;
  foreign = (machine_busy_seconds () - busy_start) - (own_cpu_seconds () - own_start);

  printf ("\nTether side by side: one machine, one run; client and server in separate processes\n");
  printf ("(%u CPUs; load average %.2f at the start; other processes used %.1f CPU-seconds during the %.0f s run;\n"
          " %u round(s) per figure, median reported; sequential: %d calls after %d warm-up; throughput: %.1f s\n"
          " after %.1f s warm-up; memory: %d idle connections, %d pending callbacks)\n",
          g_get_num_processors (), load_start, MAX (foreign, 0.0), wall, opt.rounds, opt.calls, opt.warmup,
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

  json = results_json (&opt, load_start, foreign, wall);
  if (json_path == NULL)
    json_path = g_strdup ("bench-peers.json");
  if (!g_file_set_contents (json_path, json, -1, &error))
    g_printerr ("peers: cannot write %s: %s\n", json_path, error->message);
  else
    {
      g_autofree char *abs = g_canonicalize_filename (json_path, NULL);

      printf ("\nResults written to %s\n", abs);
    }
  fflush (stdout);

  for (guint i = 0; i < all_children->len; i++)
    child_stop (g_ptr_array_index (all_children, i));
  rmdir_recursive (opt.dir);
  return 0;
}
