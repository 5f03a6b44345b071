/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* scale: what idle connections cost a server (issue #8, deliverable 3).
 *
 *   scale [--json FILE] [--levels 0,1000,10000] [--systems tether,soup,grpc,capnp]
 *         [--transports unix,tcp,tls] [--rounds N] [--budget S] [--quick] ...
 *
 * For every transport and system (the peer programs of bench/peers, see
 * peers-util.h), two servers on CPU 0: a reference that never holds an
 * idle connection, and a loaded one to which other processes on CPU 1
 * (holders: `peer-X client --workloads idle`, each opening up to
 * --holder-conns connections, each after one call, then idle) add idle
 * connections level by level, 0 → 1,000 → 10,000, the connections of one
 * level kept for the next. At every level a fresh measuring client on
 * CPU 0 runs sequential calls and calls with a callback against the
 * reference and then against the loaded server, round after round; the
 * loaded server and its holders are stopped (SIGSTOP) while the reference
 * is measured, so that its keepalive traffic cannot slow the reference.
 * The ratio reported is the median over rounds of loaded p50 ÷ reference
 * p50 of the same round: the two rounds are seconds apart, where levels
 * are minutes apart (building 10,000 connections takes that long), and
 * the host has slow phases of tens of seconds (bench/peers/README.md).
 *
 * At the top level it also reads the loaded server's CPU time over
 * --idle-seconds with nothing but the idle connections (and their
 * keepalives, at every system's defaults) going on, starting no sooner
 * than --idle-after past the last connection so that every keepalive
 * timer has run; at every level, its RSS and malloc heap per idle
 * connection. Targets are printed with
 * PASS/FAIL, never asserted; the exit code is 0 whenever the run itself
 * worked. Every wait is bounded; what a system cannot do (hold 10,000
 * connections in --build-timeout, say) is a note in the table. */

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <gio/gio.h>

#include "harness.h"

#define N_ROUNDS_MAX 9
#define N_LEVELS_MAX 8
#define LATENCY_TARGET 1.25
#define CPU_TARGET_PERCENT 1.0
#define RSS_TARGET_BYTES 10240.0
#define TARGET_CONNS 10000
/* Tether refuses a connection when 8 TLS handshakes from its address are
 * in progress (max-tls-handshakes-per-address); each holder has at most
 * one in progress. */
#define TLS_HOLDERS_MAX 6

/* ---------------------------------------------------------------------- */
/* What is measured                                                       */

typedef struct
{
  const char *key;       /* peer-KEY */
  const char *title;
  gboolean    tls;       /* can run over TLS here */
  gboolean    present;   /* its program was built */
} System;

static System systems[] = {
  { "tether", "Tether",                  TRUE  },
  { "soup",   "libsoup WebSocket echo",  TRUE  },
  { "grpc",   "gRPC C++ (callback API)", TRUE  },
  { "capnp",  "Cap'n Proto (EzRpc)",     FALSE },
};
#define N_SYSTEMS G_N_ELEMENTS (systems)
enum { SYS_TETHER };

static const char *transports[] = { "unix", "tcp", "tls" };
static const char *transport_titles[] = {
  "Unix socket", "TCP loopback (Tether: ws://)", "TLS over TCP loopback (Tether: wss://)",
};
#define N_TRANSPORTS 3

enum { F_SEQ_P50, F_SEQ_P99, F_CB_P50, F_CB_P99, N_FIGURES };
static const char *figure_keys[N_FIGURES] = { "seq_p50_us", "seq_p99_us", "cb_p50_us", "cb_p99_us" };

/* One level of one system on one transport. */
typedef struct
{
  gboolean run;           /* reached (or tried) */
  int      level;         /* idle connections asked for */
  int      held;          /* held (the holders' HOLDING lines) */
  int      server_fds;    /* the loaded server's open files minus before any */
  double   build_seconds; /* to go from the previous level to this one */
  int      calls, warmup; /* per measuring client, both servers */
  double   loaded[N_FIGURES][N_ROUNDS_MAX];
  double   ref[N_FIGURES][N_ROUNDS_MAX];
  guint    n, clean, tried, errors;
  double   median[N_FIGURES];      /* the loaded server */
  double   ref_median[N_FIGURES];  /* the reference, same rounds */
  double   ratio[N_FIGURES];       /* median of per-round loaded ÷ reference */
  gint64   rss_kb;
  double   rss_per_conn, heap_per_conn;   /* bytes */
  gboolean out_of_time;   /* the budget, not the system, stopped the build */
  gboolean dropped;       /* holders failed or were stopped, connections and all */
  char    *note;
} Level;

typedef struct
{
  gboolean run;
  char    *note;
  guint    n_levels;
  Level    levels[N_LEVELS_MAX];
  /* the top level, idle */
  int      idle_conns;
  double   idle_seconds;
  double   idle_cpu_percent;      /* the loaded server, of one core */
  double   holders_cpu_percent;   /* every holder together, of one core */
  double   idle_foreign;          /* other processes' CPU seconds meanwhile */
  double   seconds;               /* the whole cell */
} Cell;

static Cell cells[N_TRANSPORTS][N_SYSTEMS];

typedef struct
{
  int      levels[N_LEVELS_MAX];
  guint    n_levels;
  guint    rounds;
  int      calls, warmup, min_calls;
  double   round_seconds;     /* aim for a measuring client, loaded */
  double   idle_seconds;
  double   idle_after;        /* the window starts this long after the build */
  int      holder_conns, holder_parallel;
  int      build_timeout;     /* seconds per level */
  int      server_cpu, holder_cpu;
  gboolean do_transport[N_TRANSPORTS];
  char    *dir;
  char    *cert, *key;
  char    *bindir;
  gint64   deadline;          /* monotonic µs: skip what is left after it */
} Options;

static gboolean
out_of_time (const Options *opt)
{
  return g_get_monotonic_time () > opt->deadline;
}

static char *
peer_path (const Options *opt,
           const System  *sys)
{
  return g_strdup_printf ("%s/peer-%s", opt->bindir, sys->key);
}

static void
set_note (char      **note,
          const char *format,
          ...) G_GNUC_PRINTF (2, 3);

static void
set_note (char      **note,
          const char *format,
          ...)
{
  va_list args;
  char *text;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  if (*note == NULL)
    *note = text;
  else
    {
      char *both = g_strconcat (*note, "; ", text, NULL);

      g_free (*note);
      g_free (text);
      *note = both;
    }
}

/* argv for a client role; strings owned by @keep. */
static GPtrArray *
client_argv (const Options *opt,
             const System  *sys,
             guint          transport,
             const char    *address,
             const char    *workloads,
             int            calls,
             int            warmup,
             int            conns,
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
  g_ptr_array_add (argv, KEEP (g_strdup_printf ("%d", calls)));
  g_ptr_array_add (argv, "--warmup");
  g_ptr_array_add (argv, KEEP (g_strdup_printf ("%d", warmup)));
  g_ptr_array_add (argv, "--conns");
  g_ptr_array_add (argv, KEEP (g_strdup_printf ("%d", conns)));
  if (transport == 2)
    {
      g_ptr_array_add (argv, "--ca");
      g_ptr_array_add (argv, opt->cert);
    }
  g_ptr_array_add (argv, NULL);
#undef KEEP
  return argv;
}

/* ---------------------------------------------------------------------- */
/* Measuring clients                                                      */

typedef struct
{
  double figures[N_FIGURES];
  double seq_mean, cb_mean;   /* µs */
  guint  errors;
} Round;

/* One measuring client (seq, then cb) on the server's CPU. */
static gboolean
run_client (const Options *opt,
            const System  *sys,
            guint          transport,
            const char    *address,
            int            calls,
            int            warmup,
            Round         *round,
            char         **why)
{
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) argv = client_argv (opt, sys, transport, address, "seq,cb", calls, warmup, 1,
                                           keep);
  g_autofree char *name = g_strdup_printf ("%s client", sys->key);
  g_autoptr(GError) error = NULL;
  guint got = 0;
  HarnessChild *c;

  for (guint i = 0; i < N_FIGURES; i++)
    round->figures[i] = NAN;
  round->seq_mean = round->cb_mean = NAN;
  round->errors = 0;
  c = harness_child_spawn (name, (const char * const *) argv->pdata, opt->server_cpu, &error);
  if (c == NULL)
    {
      *why = g_strdup_printf ("cannot start the measuring client: %s", error->message);
      return FALSE;
    }
  while (got < 2)
    {
      /* Each workload gives up by itself after a minute (peers-glib.c,
       * gRPC's and Cap'n Proto's own deadlines): some slack over that. */
      g_autofree char *line = harness_child_wait_line (c, "RESULT ", 150000);
      char workload[32] = "";
      double errors = 0;
      gboolean seq;

      if (line == NULL)
        break;
      got++;
      sscanf (line, "RESULT workload=%31s", workload);
      seq = g_str_equal (workload, "seq");
      if (harness_parse_kv_double (line, "errors", &errors) && errors > 0)
        {
          g_printerr ("scale: %s: %s\n", name, line);
          round->errors += (guint) errors;
        }
      harness_parse_kv_double (line, "p50_us", &round->figures[seq ? F_SEQ_P50 : F_CB_P50]);
      harness_parse_kv_double (line, "p99_us", &round->figures[seq ? F_SEQ_P99 : F_CB_P99]);
      harness_parse_kv_double (line, "mean_us", seq ? &round->seq_mean : &round->cb_mean);
    }
  harness_child_stop (c, 0);
  if (got < 2)
    {
      *why = got == 0 ? g_strdup_printf ("the measuring client gave no result%s%s",
                                         c->last_other != NULL ? ": " : "",
                                         c->last_other != NULL ? c->last_other : "")
                      : g_strdup ("the measuring client gave only the sequential result");
      return FALSE;
    }
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* Holders                                                                */

typedef struct
{
  HarnessChild *child;
  int           conns;      /* asked */
  int           held;       /* from HOLDING; 0 until then */
  gboolean      done, failed;
} Holder;

typedef struct
{
  HarnessServer ref, loaded;
  GPtrArray    *holders;    /* Holder *, every one started for this cell */
  int           held;
  int           fds0;
  gint64        rss0_kb;
  double        heap0;
  gboolean      have_mem0;
} Rig;

static void
holder_free (gpointer data)
{
  g_free (data);
}

/* The holders of the loaded server, and the server itself: stopped while
 * the reference is measured, so that nothing of theirs (keepalives, for
 * one) runs on the reference's CPU. */
static void
rig_pause (Rig *rig)
{
  harness_child_pause (rig->loaded.child);
  for (guint i = 0; i < rig->holders->len; i++)
    harness_child_pause (((Holder *) g_ptr_array_index (rig->holders, i))->child);
}

static void
rig_resume (Rig *rig)
{
  for (guint i = 0; i < rig->holders->len; i++)
    harness_child_resume (((Holder *) g_ptr_array_index (rig->holders, i))->child);
  harness_child_resume (rig->loaded.child);
}

/* A holder's lines so far (without waiting): HOLDING, or its end. */
static void
holder_check (Holder *h)
{
  g_autofree char *line = harness_child_wait_line (h->child, "HOLDING ", 0);
  double n = 0;

  if (line != NULL && harness_parse_kv_double (line, "conns", &n))
    {
      h->held = (int) n;
      h->done = TRUE;
    }
  else if (h->child->eof || h->child->exited)
    h->done = h->failed = TRUE;
}

static gboolean
any_holder_news (GPtrArray *active)
{
  for (guint i = 0; i < active->len; i++)
    {
      Holder *h = g_ptr_array_index (active, i);

      if (!g_queue_is_empty (&h->child->lines) || h->child->eof || h->child->exited)
        return TRUE;
    }
  return FALSE;
}

/* Adds holders until @level connections are held, at most
 * --holder-parallel of them connecting at once. */
static void
rig_build (const Options *opt,
           const System  *sys,
           guint          transport,
           Rig           *rig,
           Level         *lv)
{
  g_autoptr(GPtrArray) active = g_ptr_array_new ();
  gint64 t0 = g_get_monotonic_time ();
  gint64 end = MIN (t0 + (gint64) opt->build_timeout * G_USEC_PER_SEC, opt->deadline);
  int to_start = lv->level - rig->held;
  guint parallel = transport == 2 ? MIN (opt->holder_parallel, TLS_HOLDERS_MAX) : opt->holder_parallel;
  guint failed = 0;
  g_autofree char *last_error = NULL;
  gboolean timed_out = FALSE;

  while ((to_start > 0 || active->len > 0) && !timed_out)
    {
      while (to_start > 0 && active->len < parallel)
        {
          g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
          int n = MIN (to_start, opt->holder_conns);
          g_autoptr(GPtrArray) argv = client_argv (opt, sys, transport, rig->loaded.address, "idle", 1, 0,
                                                   n, keep);
          g_autofree char *name = g_strdup_printf ("%s holder %u", sys->key, rig->holders->len + 1);
          g_autoptr(GError) error = NULL;
          g_autofree char *connected = NULL;
          Holder *h = g_new0 (Holder, 1);

          h->conns = n;
          to_start -= n;
          h->child = harness_child_spawn (name, (const char * const *) argv->pdata, opt->holder_cpu, &error);
          if (h->child == NULL)
            {
              g_clear_pointer (&last_error, g_free);
              last_error = g_strdup (error->message);
              failed++;
              g_free (h);
              continue;
            }
          g_ptr_array_add (rig->holders, h);
          connected = harness_child_wait_line (h->child, "CONNECTED", 20000);
          if (connected == NULL)
            {
              g_clear_pointer (&last_error, g_free);
              last_error = g_strdup (h->child->last_other != NULL ? h->child->last_other : "did not start");
              harness_child_stop (h->child, 0);
              h->done = h->failed = TRUE;
              failed++;
              continue;
            }
          harness_child_send (h->child, "go");
          g_ptr_array_add (active, h);
        }

      if (active->len > 0)
        {
          gint64 left = (end - g_get_monotonic_time ()) / 1000;

          if (left <= 0)
            timed_out = TRUE;
          else
            HARNESS_WAIT_UNTIL (any_holder_news (active), (guint) MIN (left, 1000));
        }
      for (guint i = 0; i < active->len;)
        {
          Holder *h = g_ptr_array_index (active, i);

          holder_check (h);
          if (!h->done)
            {
              i++;
              continue;
            }
          if (h->failed)
            {
              failed++;
              g_clear_pointer (&last_error, g_free);
              last_error = g_strdup (h->child->last_other != NULL ? h->child->last_other : "exited");
            }
          else
            rig->held += h->held;
          g_ptr_array_remove_index (active, i);
        }
      if (g_get_monotonic_time () >= end && (active->len > 0 || to_start > 0))
        timed_out = TRUE;
    }

  /* Holders still connecting when time ran out would go on doing so during
   * the measurements: they go, with their connections. */
  for (guint i = 0; i < active->len; i++)
    {
      Holder *h = g_ptr_array_index (active, i);

      harness_child_stop (h->child, 0);
      h->done = h->failed = TRUE;
    }
  lv->build_seconds = (g_get_monotonic_time () - t0) / 1e6;
  lv->held = rig->held;
  lv->out_of_time = timed_out && out_of_time (opt);
  lv->dropped = failed > 0 || active->len > 0;
  if (failed > 0)
    set_note (&lv->note, "%u holder(s) failed (%s)", failed, last_error);
  if (timed_out)
    set_note (&lv->note, "%s after %.0f s: only %d of %d held",
              out_of_time (opt) ? "out of time (see --budget)" : "build timeout (see --build-timeout)",
              lv->build_seconds, rig->held, lv->level);
  if (failed > 0 || timed_out)
    g_printerr ("scale: %s %s: %s\n", sys->key, transports[transport], lv->note);
}

/* ---------------------------------------------------------------------- */
/* One system on one transport                                            */

/* The number of calls for this level: the most (up to --calls) that keep
 * a loaded round near --round-seconds, judged from a short probe, at
 * least --min-calls. Some systems take milliseconds per call with 10,000
 * idle connections, and 1,100 such calls twice per round would take the
 * run's whole budget. */
static gboolean
choose_calls (const Options *opt,
              const System  *sys,
              guint          transport,
              Rig           *rig,
              Level         *lv,
              char         **why)
{
  Round probe;
  double per_pair_us;
  int calls;

  if (lv->level == 0)
    {
      lv->calls = opt->calls;
      lv->warmup = opt->warmup;
      return TRUE;
    }
  if (!run_client (opt, sys, transport, rig->loaded.address, 20, 5, &probe, why))
    return FALSE;
  per_pair_us = probe.seq_mean + probe.cb_mean;
  calls = isnan (per_pair_us) || per_pair_us <= 0 ? opt->calls
          : (int) CLAMP (opt->round_seconds * 1e6 / per_pair_us, (double) opt->min_calls,
                         (double) opt->calls);
  lv->calls = MIN (calls, opt->calls);
  lv->warmup = MIN (opt->warmup, MAX (lv->calls / 10, 5));
  return TRUE;
}

static void
measure_level (const Options *opt,
               guint          transport,
               guint          s,
               Rig           *rig,
               Level         *lv)
{
  const System *sys = &systems[s];
  guint retries_left = 1;
  char *why = NULL;

  if (!choose_calls (opt, sys, transport, rig, lv, &why))
    {
      g_printerr ("scale: %s %s %d idle: %s\n", sys->key, transports[transport], lv->level, why);
      set_note (&lv->note, "%s", why);
      g_free (why);
      return;
    }
  while (lv->n < opt->rounds)
    {
      Round a, b;
      HarnessNoise noise;
      gboolean ok, clean;

      if (out_of_time (opt))
        {
          set_note (&lv->note, "out of time (see --budget) after %u round(s)", lv->n);
          break;
        }
      g_printerr ("scale: %-6s %-4s %6d idle  round %u  (%d calls)\n", sys->key, transports[transport], lv->held,
                  lv->n + 1, lv->calls);
      harness_noise_start (&noise);
      rig_pause (rig);
      ok = run_client (opt, sys, transport, rig->ref.address, lv->calls, lv->warmup, &a, &why);
      rig_resume (rig);
      if (ok)
        {
          /* Whatever the pause held back (keepalives due) is not this
           * round's business. */
          harness_sleep_ms (300);
          ok = run_client (opt, sys, transport, rig->loaded.address, lv->calls, lv->warmup, &b, &why);
        }
      clean = harness_noise_stop (&noise);
      if (!ok)
        {
          g_printerr ("scale: %s %s %d idle: %s\n", sys->key, transports[transport], lv->level, why);
          set_note (&lv->note, "%s", why);
          g_free (why);
          break;
        }
      lv->tried++;
      lv->errors += a.errors + b.errors;
      if (!clean && retries_left > 0)
        {
          retries_left--;
          g_printerr ("scale:   (disturbed: other processes used %.0f%% of a CPU; run again)\n",
                      100 * noise.foreign / noise.wall);
          continue;
        }
      if (clean)
        lv->clean++;
      for (guint f = 0; f < N_FIGURES; f++)
        {
          lv->ref[f][lv->n] = a.figures[f];
          lv->loaded[f][lv->n] = b.figures[f];
        }
      lv->n++;
    }
  if (lv->clean < lv->n)
    set_note (&lv->note, "noisy: other processes were busy");
  for (guint f = 0; f < N_FIGURES; f++)
    {
      double ratios[N_ROUNDS_MAX];

      for (guint i = 0; i < lv->n; i++)
        ratios[i] = lv->loaded[f][i] / lv->ref[f][i];
      lv->median[f] = harness_median (lv->loaded[f], lv->n);
      lv->ref_median[f] = harness_median (lv->ref[f], lv->n);
      lv->ratio[f] = harness_median (ratios, lv->n);
    }
}

/* The loaded server's CPU time with nothing but idle connections. */
static void
measure_idle_cpu (const Options *opt,
                  Rig           *rig,
                  Cell          *cell)
{
  GPid pid = rig->loaded.child->pid;
  HarnessNoise noise;
  double server0, holders0 = 0, holders1 = 0;

  harness_noise_start (&noise);
  server0 = harness_proc_cpu_seconds (pid);
  for (guint i = 0; i < rig->holders->len; i++)
    {
      Holder *h = g_ptr_array_index (rig->holders, i);

      if (!h->failed)
        holders0 += harness_proc_cpu_seconds (h->child->pid);
    }
  harness_sleep_ms ((guint) (opt->idle_seconds * 1000));
  cell->idle_cpu_percent = 100 * (harness_proc_cpu_seconds (pid) - server0);
  for (guint i = 0; i < rig->holders->len; i++)
    {
      Holder *h = g_ptr_array_index (rig->holders, i);

      if (!h->failed)
        holders1 += harness_proc_cpu_seconds (h->child->pid);
    }
  harness_noise_stop (&noise);
  cell->idle_seconds = noise.wall;
  cell->idle_cpu_percent /= noise.wall;
  cell->holders_cpu_percent = 100 * (holders1 - holders0) / noise.wall;
  cell->idle_foreign = noise.foreign;
  cell->idle_conns = rig->held;
}

static void
run_cell (const Options *opt,
          guint          transport,
          guint          s)
{
  const System *sys = &systems[s];
  Cell *cell = &cells[transport][s];
  g_autofree char *exe = peer_path (opt, sys);
  g_autofree char *ref_listen = NULL;
  g_autofree char *loaded_listen = NULL;
  g_autofree char *ref_name = g_strdup_printf ("%s reference server", sys->key);
  g_autofree char *loaded_name = g_strdup_printf ("%s loaded server", sys->key);
  Rig rig = { { 0 } };
  gint64 t0 = g_get_monotonic_time ();
  gint64 built_at;
  char *why = NULL;

  cell->run = TRUE;
  if (out_of_time (opt))
    {
      set_note (&cell->note, "out of time (see --budget)");
      return;
    }
  if (transport == 0)
    {
      ref_listen = g_strdup_printf ("%s/%s-ref.sock", opt->dir, sys->key);
      loaded_listen = g_strdup_printf ("%s/%s-loaded.sock", opt->dir, sys->key);
    }
  else
    {
      ref_listen = g_strdup ("127.0.0.1:0");
      loaded_listen = g_strdup ("127.0.0.1:0");
    }
  rig.holders = g_ptr_array_new_with_free_func (holder_free);
  if (!harness_server_start (&rig.ref, ref_name, exe, transports[transport], ref_listen, opt->cert, opt->key,
                             opt->server_cpu, &why) ||
      !harness_server_start (&rig.loaded, loaded_name, exe, transports[transport], loaded_listen, opt->cert,
                             opt->key, opt->server_cpu, &why))
    {
      g_printerr ("scale: %s %s: %s\n", sys->key, transports[transport], why);
      cell->note = why;
      goto out;
    }
  harness_sleep_ms (200);
  rig.fds0 = harness_proc_fd_count (rig.loaded.child->pid);

  for (guint l = 0; l < opt->n_levels; l++)
    {
      Level *lv = &cell->levels[l];

      lv->level = opt->levels[l];
      lv->rss_per_conn = lv->heap_per_conn = NAN;
      for (guint f = 0; f < N_FIGURES; f++)
        lv->median[f] = lv->ref_median[f] = lv->ratio[f] = NAN;
      if (out_of_time (opt))
        {
          set_note (&cell->note, "out of time (see --budget) before %d idle", lv->level);
          break;
        }
      lv->run = TRUE;
      cell->n_levels = l + 1;
      if (lv->level > rig.held)
        {
          double heap;
          gint64 rss_kb;

          /* Memory before any idle connection: after the level-0 rounds,
           * so that what their clients left behind is not counted. */
          if (!rig.have_mem0)
            rig.have_mem0 = harness_server_memory (&rig.loaded, &rig.rss0_kb, &rig.heap0);
          g_printerr ("scale: %-6s %-4s building %d → %d idle connections\n", sys->key, transports[transport],
                      rig.held, lv->level);
          rig_build (opt, sys, transport, &rig, lv);
          g_printerr ("scale: %-6s %-4s %d held after %.1f s\n", sys->key, transports[transport], rig.held,
                      lv->build_seconds);
          /* Let the last connections settle (handshakes, first keepalive
           * timers) before sampling. */
          harness_sleep_ms (1000);
          if (rig.loaded.child->exited)
            {
              set_note (&lv->note, "the loaded server died");
              g_printerr ("scale: %s %s: the loaded server died\n", sys->key, transports[transport]);
              break;
            }
          /* Connections that were opened and closed again (a holder that
           * failed or was stopped) leave their memory in the RSS and
           * count for none: no figure then. */
          if (lv->dropped)
            set_note (&lv->note, "no memory figure: connections were dropped");
          else if (rig.have_mem0 && rig.held > 0 && harness_server_memory (&rig.loaded, &rss_kb, &heap))
            {
              lv->rss_kb = rss_kb;
              lv->rss_per_conn = (rss_kb - rig.rss0_kb) * 1024.0 / rig.held;
              lv->heap_per_conn = (heap - rig.heap0) / rig.held;
            }
        }
      lv->held = rig.held;
      lv->server_fds = harness_proc_fd_count (rig.loaded.child->pid) - rig.fds0;
      built_at = g_get_monotonic_time ();
      measure_level (opt, transport, s, &rig, lv);
      if (rig.loaded.child->exited || rig.ref.child->exited)
        {
          set_note (&lv->note, "a server died");
          break;
        }
      if (l + 1 == opt->n_levels && rig.held > 0 && opt->idle_seconds > 0)
        {
          /* Not before every connection has been idle for --idle-after:
           * a window right after a quick build would see no keepalive at
           * all (Tether's first comes 20 s after the last traffic). */
          gint64 start = built_at + (gint64) (opt->idle_after * G_USEC_PER_SEC);
          gint64 wait_ms = (start - g_get_monotonic_time ()) / 1000;

          if (wait_ms > 0)
            harness_sleep_ms ((guint) wait_ms);
          g_printerr ("scale: %-6s %-4s idle CPU over %.0f s with %d idle connections\n", sys->key,
                      transports[transport], opt->idle_seconds, rig.held);
          measure_idle_cpu (opt, &rig, cell);
        }
    }

out:
  rig_resume (&rig);
  for (guint i = 0; i < rig.holders->len; i++)
    harness_child_stop (((Holder *) g_ptr_array_index (rig.holders, i))->child, 0);
  g_ptr_array_unref (rig.holders);
  harness_server_stop (&rig.loaded);
  harness_server_stop (&rig.ref);
  cell->seconds = (g_get_monotonic_time () - t0) / 1e6;
}

/* ---------------------------------------------------------------------- */
/* Report                                                                 */

static void
fmt (char  *buf,
     size_t size,
     int    decimals,
     double v)
{
  if (isnan (v) || isinf (v))
    g_snprintf (buf, size, "—");
  else
    g_snprintf (buf, size, "%.*f", decimals, v);
}

/* @text right-aligned in @width columns (left-aligned if @width < 0),
 * counting characters: µ, ×, ÷ and — take more than one byte. */
static void
put (const char *text,
     int         width)
{
  int pad = ABS (width) - (int) g_utf8_strlen (text, -1);

  if (width > 0)
    for (int i = 0; i < pad; i++)
      putchar (' ');
  fputs (text, stdout);
  if (width < 0)
    for (int i = 0; i < pad; i++)
      putchar (' ');
}

static void
put_num (double v,
         int    decimals,
         int    width)
{
  char buf[32];

  fmt (buf, sizeof buf, decimals, v);
  put (buf, width);
}

static void
print_latency_table (guint transport)
{
  static const char *heads[] = { "seq p50", "p99", "×none", "cb p50", "p99", "×none" };
  static const int widths[] = { 9, 8, 7, 9, 8, 7 };
  gboolean any = FALSE;

  for (guint s = 0; s < N_SYSTEMS; s++)
    any |= cells[transport][s].run;
  if (!any)
    return;
  printf ("\n== %s: round trip in µs with N idle connections held by other processes ==\n",
          transport_titles[transport]);
  printf ("%-24s %6s %6s |", "system", "idle", "held");
  for (guint i = 0; i < G_N_ELEMENTS (heads); i++)
    {
      put (heads[i], widths[i]);
      if (i == 2)
        printf (" |");
    }
  printf (" | %5s %6s %7s\n", "calls", "rounds", "build s");
  for (guint s = 0; s < N_SYSTEMS; s++)
    {
      const Cell *cell = &cells[transport][s];

      if (!cell->run)
        continue;
      if (cell->n_levels == 0)
        printf ("%-24s %s\n", systems[s].title, cell->note != NULL ? cell->note : "—");
      for (guint l = 0; l < cell->n_levels; l++)
        {
          const Level *lv = &cell->levels[l];
          char rounds[16];

          printf ("%-24s %6d %6d |", l == 0 ? systems[s].title : "", lv->level, lv->held);
          put_num (lv->median[F_SEQ_P50], 1, widths[0]);
          put_num (lv->median[F_SEQ_P99], 1, widths[1]);
          put_num (lv->ratio[F_SEQ_P50], 2, widths[2]);
          printf (" |");
          put_num (lv->median[F_CB_P50], 1, widths[3]);
          put_num (lv->median[F_CB_P99], 1, widths[4]);
          put_num (lv->ratio[F_CB_P50], 2, widths[5]);
          g_snprintf (rounds, sizeof rounds, "%u/%u", lv->clean, lv->tried);
          printf (" | %5d %6s ", lv->calls, rounds);
          if (lv->level > 0)
            put_num (lv->build_seconds, 1, 7);
          else
            put ("", 7);
          printf ("%s%s\n", lv->note != NULL ? "  " : "", lv->note != NULL ? lv->note : "");
        }
      if (cell->note != NULL && cell->n_levels > 0)
        printf ("%-24s %s\n", "", cell->note);
    }
}

static void
print_memory_table (const Options *opt)
{
  printf ("\n== The loaded server with idle connections: memory per connection (bytes; RSS = VmRSS delta,\n"
          "   heap = malloc in use delta, over the connections held) and CPU while they sit idle ==\n");
  printf ("%-24s %-4s", "system", "");
  for (guint l = 0; l < opt->n_levels; l++)
    if (opt->levels[l] > 0)
      printf (" | %6d: %7s %7s", opt->levels[l], "RSS", "heap");
  printf (" | idle CPU, %% of a core: server holders (conns, s)\n");
  for (guint tr = 0; tr < N_TRANSPORTS; tr++)
    for (guint s = 0; s < N_SYSTEMS; s++)
      {
        const Cell *cell = &cells[tr][s];

        if (!cell->run || cell->n_levels == 0)
          continue;
        printf ("%-24s %-4s", systems[s].title, transports[tr]);
        for (guint l = 0; l < opt->n_levels; l++)
          {
            gboolean have = l < cell->n_levels;

            if (opt->levels[l] == 0)
              continue;
            printf (" | %6s  ", "");
            put_num (have ? cell->levels[l].rss_per_conn : NAN, 0, 7);
            put_num (have ? cell->levels[l].heap_per_conn : NAN, 0, 8);
          }
        printf (" | %22s", "");
        put_num (cell->idle_conns > 0 ? cell->idle_cpu_percent : NAN, 2, 7);
        put_num (cell->idle_conns > 0 ? cell->holders_cpu_percent : NAN, 2, 8);
        if (cell->idle_conns > 0)
          printf ("  (%d, %.0f)", cell->idle_conns, cell->idle_seconds);
        printf ("\n");
      }
}

typedef struct
{
  guint       transport;
  const char *key;
  const char *text;
  double      value;
  double      limit;
  gboolean    judged;     /* FALSE: reported only (wss) */
  char       *why;        /* what makes the verdict FAIL or n/a beyond the figure */
  const char *verdict;
} Target;

/* The targets of issue #8 for Tether, at the top level. A level that
 * was tried and not reached (the build did not get there in
 * --build-timeout, or the holders failed) cannot pass; one the budget
 * did not leave time for has no verdict. */
static guint
collect_targets (const Options *opt,
                 guint          transport,
                 Target        *out)
{
  const Cell *cell = &cells[transport][SYS_TETHER];
  const Level *top;
  int want = opt->levels[opt->n_levels - 1];
  gboolean judged = transport != 2;
  guint n = 0;

  if (!cell->run)
    return 0;
  top = cell->n_levels > 0 ? &cell->levels[cell->n_levels - 1] : NULL;
  if (top != NULL && top->level < want)
    top = NULL;
  out[n++] = (Target) { transport, "seq_p50_ratio", "sequential call p50 with N idle ÷ with none",
                        top != NULL ? top->ratio[F_SEQ_P50] : NAN, LATENCY_TARGET, judged };
  out[n++] = (Target) { transport, "cb_p50_ratio", "callback p50 with N idle ÷ with none",
                        top != NULL ? top->ratio[F_CB_P50] : NAN, LATENCY_TARGET, judged };
  out[n++] = (Target) { transport, "idle_cpu_percent", "server CPU with N idle (idle window), % of a core",
                        top != NULL && cell->idle_conns > 0 ? cell->idle_cpu_percent : NAN, CPU_TARGET_PERCENT,
                        judged };
  out[n++] = (Target) { transport, "rss_per_idle_connection_bytes", "server RSS per idle connection, bytes",
                        top != NULL ? top->rss_per_conn : NAN, RSS_TARGET_BYTES, judged };
  for (guint i = 0; i < n; i++)
    {
      Target *t = &out[i];
      gboolean short_of = top != NULL && top->held < want;

      if (short_of)
        t->why = g_strdup_printf ("only %d of %d idle connections held%s", top->held, want,
                                  top->out_of_time ? ", out of time" : "");
      else if (top == NULL)
        t->why = g_strdup_printf ("not measured with %d idle connections", want);
      if (isnan (t->value) || (short_of && top->out_of_time))
        t->verdict = "n/a";
      else if (!t->judged)
        t->verdict = "reported";
      else if (short_of)
        t->verdict = "FAIL";
      else if (want < TARGET_CONNS)
        t->verdict = t->value <= t->limit ? "PASS*" : "FAIL*";
      else
        t->verdict = t->value <= t->limit ? "PASS" : "FAIL";
    }
  return n;
}

static void
free_targets (Target *t,
              guint   n)
{
  for (guint i = 0; i < n; i++)
    g_free (t[i].why);
}

static void
print_targets (const Options *opt)
{
  int want = opt->levels[opt->n_levels - 1];

  printf ("\n== Targets of issue #8 for Tether (pinned, same run; reported, never asserted) ==\n");
  printf ("   N = %d idle connections%s; latency ratios are medians of per-round ratios (see README.md)\n",
          want, want < TARGET_CONNS ? " (the targets say 10,000: * means \"at this level only\")" : "");
  for (guint tr = 0; tr < N_TRANSPORTS; tr++)
    {
      Target targets[8];
      guint n = collect_targets (opt, tr, targets);

      if (n == 0)
        continue;
      printf ("  %s:\n", transport_titles[tr]);
      for (guint i = 0; i < n; i++)
        {
          const Target *t = &targets[i];
          char limit[16];

          printf ("    ");
          put (t->text, -58);
          put_num (t->value, t->limit >= 100 ? 0 : 2, 9);
          g_snprintf (limit, sizeof limit, "%g", t->limit);
          printf ("  <= %-6s %s%s%s%s\n", limit, t->verdict, t->why != NULL ? "  (" : "",
                  t->why != NULL ? t->why : "", t->why != NULL ? ")" : "");
          if (g_str_equal (t->key, "rss_per_idle_connection_bytes"))
            {
              const Cell *cell = &cells[tr][SYS_TETHER];

              printf ("    ");
              put ("  (heap per idle connection, for information)", -58);
              put_num (cell->n_levels > 0 ? cell->levels[cell->n_levels - 1].heap_per_conn : NAN, 0, 9);
              printf ("\n");
            }
        }
      free_targets (targets, n);
    }
}

static char *
results_json (const Options      *opt,
              double              load_start,
              const HarnessNoise *run,
              int                 budget)
{
  GString *j = g_string_new ("{\n  \"benchmark\": \"scale\",\n  ");
  g_autofree char *somaxconn = harness_sysctl ("net/core/somaxconn");
  g_autofree char *syn_backlog = harness_sysctl ("net/ipv4/tcp_max_syn_backlog");
  g_autofree char *ports = harness_sysctl ("net/ipv4/ip_local_port_range");
  gboolean first = TRUE;

  harness_json_machine (j, load_start, run);
  g_string_append_printf (j, ", \"budget_seconds\": %d,\n  \"limits\": {\"nofile\": %" G_GUINT64_FORMAT ", ",
                          budget, harness_raise_fd_limit ());
  harness_json_str (j, "somaxconn", somaxconn);
  g_string_append (j, ", ");
  harness_json_str (j, "tcp_max_syn_backlog", syn_backlog);
  g_string_append (j, ", ");
  harness_json_str (j, "ip_local_port_range", ports);
  g_string_append (j, "},\n  \"settings\": {\"placement\": \"servers and measuring clients on CPU ");
  g_string_append_printf (j, "%d, holders on CPU %d\", \"levels\": [", opt->server_cpu, opt->holder_cpu);
  for (guint l = 0; l < opt->n_levels; l++)
    g_string_append_printf (j, "%s%d", l ? ", " : "", opt->levels[l]);
  g_string_append_printf (j, "], \"rounds\": %u, \"calls\": %d, \"warmup_calls\": %d, \"min_calls\": %d, ",
                          opt->rounds, opt->calls, opt->warmup, opt->min_calls);
  harness_json_num (j, "round_seconds", opt->round_seconds, 1);
  g_string_append (j, ", ");
  harness_json_num (j, "idle_seconds", opt->idle_seconds, 1);
  g_string_append (j, ", ");
  harness_json_num (j, "idle_after_seconds", opt->idle_after, 1);
  g_string_append_printf (j, ", \"holder_conns\": %d, \"holder_parallel\": %d, \"build_timeout_seconds\": %d},\n"
                          "  \"systems\": {", opt->holder_conns, opt->holder_parallel, opt->build_timeout);
  for (guint s = 0; s < N_SYSTEMS; s++)
    g_string_append_printf (j, "%s\"%s\": {\"title\": \"%s\", \"built\": %s}", s ? ", " : "", systems[s].key,
                            systems[s].title, systems[s].present ? "true" : "false");
  g_string_append (j, "},\n  \"cells\": [\n");
  for (guint tr = 0; tr < N_TRANSPORTS; tr++)
    for (guint s = 0; s < N_SYSTEMS; s++)
      {
        const Cell *cell = &cells[tr][s];
        gboolean idle = cell->idle_conns > 0;

        if (!cell->run)
          continue;
        g_string_append_printf (j, "%s    {\"transport\": \"%s\", \"system\": \"%s\", ", first ? "" : ",\n",
                                transports[tr], systems[s].key);
        first = FALSE;
        harness_json_str (j, "note", cell->note);
        g_string_append (j, ", ");
        harness_json_num (j, "seconds", cell->seconds, 1);
        g_string_append_printf (j, ",\n      \"idle\": {\"conns\": %d, ", cell->idle_conns);
        harness_json_num (j, "seconds", cell->idle_seconds, 2);
        g_string_append (j, ", ");
        harness_json_num (j, "server_cpu_percent", idle ? cell->idle_cpu_percent : NAN, 3);
        g_string_append (j, ", ");
        harness_json_num (j, "holders_cpu_percent", idle ? cell->holders_cpu_percent : NAN, 3);
        g_string_append (j, ", ");
        harness_json_num (j, "other_processes_cpu_seconds", idle ? cell->idle_foreign : NAN, 2);
        g_string_append (j, "},\n      \"levels\": [");
        for (guint l = 0; l < cell->n_levels; l++)
          {
            const Level *lv = &cell->levels[l];

            g_string_append_printf (j, "%s\n        {\"level\": %d, \"held\": %d, \"server_fds\": %d, "
                                    "\"calls\": %d, \"warmup_calls\": %d, \"rounds_kept\": %u, "
                                    "\"rounds_clean\": %u, \"rounds_run\": %u, \"errors\": %u, ",
                                    l ? "," : "", lv->level, lv->held, lv->server_fds, lv->calls, lv->warmup,
                                    lv->n, lv->clean, lv->tried, lv->errors);
            harness_json_str (j, "note", lv->note);
            g_string_append (j, ", ");
            harness_json_num (j, "build_seconds", lv->level > 0 ? lv->build_seconds : NAN, 1);
            g_string_append (j, ", ");
            harness_json_num (j, "rss_kb", lv->rss_kb > 0 ? (double) lv->rss_kb : NAN, 0);
            g_string_append (j, ", ");
            harness_json_num (j, "rss_per_idle_connection_bytes", lv->rss_per_conn, 0);
            g_string_append (j, ", ");
            harness_json_num (j, "heap_per_idle_connection_bytes", lv->heap_per_conn, 0);
            for (guint f = 0; f < N_FIGURES; f++)
              {
                g_autofree char *k1 = g_strconcat (figure_keys[f], "_rounds", NULL);
                g_autofree char *k2 = g_strconcat ("reference_", figure_keys[f], NULL);
                g_autofree char *k3 = g_strconcat ("reference_", figure_keys[f], "_rounds", NULL);
                g_autofree char *k4 = g_strconcat (figure_keys[f], "_ratio_to_none", NULL);

                g_string_append (j, ",\n         ");
                harness_json_num (j, figure_keys[f], lv->median[f], 1);
                g_string_append (j, ", ");
                harness_json_array (j, k1, lv->loaded[f], lv->n, 1);
                g_string_append (j, ", ");
                harness_json_num (j, k2, lv->ref_median[f], 1);
                g_string_append (j, ", ");
                harness_json_array (j, k3, lv->ref[f], lv->n, 1);
                g_string_append (j, ", ");
                harness_json_num (j, k4, lv->ratio[f], 3);
              }
            g_string_append (j, "}");
          }
        g_string_append (j, "]}");
      }
  g_string_append (j, "\n  ],\n  \"targets\": [\n");
  first = TRUE;
  for (guint tr = 0; tr < N_TRANSPORTS; tr++)
    {
      Target targets[8];
      guint n = collect_targets (opt, tr, targets);

      for (guint i = 0; i < n; i++)
        {
          g_string_append_printf (j, "%s    {\"system\": \"tether\", \"transport\": \"%s\", \"target\": \"%s\", "
                                  "\"idle_conns\": %d, ", first ? "" : ",\n", transports[tr], targets[i].key,
                                  opt->levels[opt->n_levels - 1]);
          first = FALSE;
          harness_json_num (j, "value", targets[i].value, 3);
          g_string_append (j, ", ");
          harness_json_num (j, "limit", targets[i].limit, 2);
          g_string_append (j, ", \"at_most\": true, ");
          harness_json_str (j, "verdict", targets[i].verdict);
          g_string_append (j, ", ");
          harness_json_str (j, "why", targets[i].why);
          g_string_append (j, "}");
        }
      free_targets (targets, n);
    }
  g_string_append (j, "\n  ]\n}\n");
  return g_string_free (j, FALSE);
}

/* ---------------------------------------------------------------------- */
/* Main                                                                   */

static gboolean
parse_levels (const char *list,
              Options    *opt)
{
  g_auto(GStrv) items = g_strsplit (list, ",", -1);

  opt->n_levels = 0;
  for (guint i = 0; items[i] != NULL; i++)
    {
      gint64 v;

      if (opt->n_levels == N_LEVELS_MAX || !g_ascii_string_to_signed (items[i], 10, 0, 100000, &v, NULL) ||
          (opt->n_levels > 0 && v <= opt->levels[opt->n_levels - 1]))
        {
          g_printerr ("scale: --levels: up to %d increasing numbers of idle connections, 0 to 100000\n",
                      N_LEVELS_MAX);
          return FALSE;
        }
      opt->levels[opt->n_levels++] = (int) v;
    }
  return opt->n_levels > 0;
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *json_path = NULL;
  g_autofree char *levels = NULL;
  g_autofree char *only_systems = NULL;
  g_autofree char *only_transports = NULL;
  g_autofree char *self = NULL;
  g_autofree char *json = NULL;
  int rounds = 3, budget = 2100;
  gboolean quick = FALSE;
  Options opt = { 0 };
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &json_path, "Write the results here (default bench-scale.json)", "FILE" },
    { "levels", 0, 0, G_OPTION_ARG_STRING, &levels, "Idle connections, increasing (default 0,1000,10000)", "LIST" },
    { "systems", 0, 0, G_OPTION_ARG_STRING, &only_systems, "Only these (tether,soup,grpc,capnp)", "LIST" },
    { "transports", 0, 0, G_OPTION_ARG_STRING, &only_transports, "unix,tcp,tls (default: all there are)", "LIST" },
    { "rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "Rounds per level; medians reported (default 3)", "N" },
    { "calls", 0, 0, G_OPTION_ARG_INT, &opt.calls, "Measured calls per workload and round, at most (default 1000)", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &opt.warmup, "Calls before measuring, at most (default 100)", "N" },
    { "min-calls", 0, 0, G_OPTION_ARG_INT, &opt.min_calls, "Measured calls, at least, however slow (default 100)", "N" },
    { "round-seconds", 0, 0, G_OPTION_ARG_DOUBLE, &opt.round_seconds, "Fewer calls when a loaded round would take longer (default 4)", "S" },
    { "idle-seconds", 0, 0, G_OPTION_ARG_DOUBLE, &opt.idle_seconds, "The idle CPU window at the top level (default 10; 0: none)", "S" },
    { "idle-after", 0, 0, G_OPTION_ARG_DOUBLE, &opt.idle_after, "Start it at least this long after the last connection was opened (default 25)", "S" },
    { "holder-conns", 0, 0, G_OPTION_ARG_INT, &opt.holder_conns, "Idle connections per holder process (default 1000)", "N" },
    { "holder-parallel", 0, 0, G_OPTION_ARG_INT, &opt.holder_parallel, "Holders connecting at once (default 4; TLS: at most 6)", "N" },
    { "build-timeout", 0, 0, G_OPTION_ARG_INT, &opt.build_timeout, "Seconds to reach a level (default 480)", "S" },
    { "quick", 0, 0, G_OPTION_ARG_NONE, &quick, "Levels 0,1000, one round, fewer calls: a smoke test", NULL },
    { "budget", 0, 0, G_OPTION_ARG_INT, &budget, "Seconds after which what is left is skipped (default 2100)", "S" },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("- what idle connections cost Tether, libsoup, gRPC and Cap'n Proto servers");
  g_autoptr(GError) error = NULL;
  gboolean do_system[N_SYSTEMS];
  HarnessNoise run;
  double load_start;
  guint64 nofile;

  setlocale (LC_ALL, "");
  harness_init ("scale");
  opt.calls = 1000;
  opt.warmup = 100;
  opt.min_calls = 100;
  opt.round_seconds = 4;
  opt.idle_seconds = 10;
  opt.idle_after = 25;
  opt.holder_conns = 1000;
  opt.holder_parallel = 4;
  opt.build_timeout = 480;
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    {
      g_printerr ("scale: %s\n", error->message);
      return 2;
    }
  if (quick)
    {
      rounds = 1;
      opt.calls = 300;
      opt.warmup = 30;
      opt.min_calls = 50;
      opt.round_seconds = 2;
      opt.idle_seconds = 3;
      opt.idle_after = 0;
      if (levels == NULL)
        levels = g_strdup ("0,1000");
    }
  if (!parse_levels (levels != NULL ? levels : "0,1000,10000", &opt))
    return 2;
  if (rounds < 1 || rounds > N_ROUNDS_MAX || opt.calls < 10 || opt.warmup < 0 || opt.min_calls < 10 ||
      opt.round_seconds <= 0 || opt.idle_seconds < 0 || opt.idle_after < 0 || opt.holder_conns < 1 ||
      opt.holder_parallel < 1 || opt.build_timeout < 1 || budget < 10)
    {
      g_printerr ("scale: invalid option value\n");
      return 2;
    }
  opt.rounds = (guint) rounds;
  opt.min_calls = MIN (opt.min_calls, opt.calls);
  for (guint i = 0; i < N_SYSTEMS; i++)
    do_system[i] = TRUE;
  for (guint i = 0; i < N_TRANSPORTS; i++)
    opt.do_transport[i] = TRUE;
  if (only_systems != NULL)
    {
      const char *keys[N_SYSTEMS];

      for (guint i = 0; i < N_SYSTEMS; i++)
        keys[i] = systems[i].key;
      if (!harness_parse_list ("--systems", only_systems, keys, N_SYSTEMS, do_system))
        return 2;
    }
  if (only_transports != NULL &&
      !harness_parse_list ("--transports", only_transports, transports, N_TRANSPORTS, opt.do_transport))
    return 2;
  opt.server_cpu = 0;
  opt.holder_cpu = g_get_num_processors () > 1 ? 1 : 0;
  if (opt.holder_cpu == 0)
    g_printerr ("scale: note: one CPU; the holders share it with the servers\n");

  /* The watchdog: past the budget what is left is skipped (a build in
   * progress stops there too); three minutes more and everything ends. */
  harness_watchdog ((guint) budget + 180);
  nofile = harness_raise_fd_limit ();
  if (nofile < (guint64) opt.levels[opt.n_levels - 1] + 256)
    g_printerr ("scale: note: RLIMIT_NOFILE is %" G_GUINT64_FORMAT ": a server cannot hold %d connections\n",
                nofile, opt.levels[opt.n_levels - 1]);
  self = g_file_read_link ("/proc/self/exe", NULL);
  opt.bindir = g_path_get_dirname (self != NULL ? self : argv[0]);
  opt.dir = harness_make_tmpdir ("tether-scale-XXXXXX", &error);
  if (opt.dir == NULL)
    {
      g_printerr ("scale: %s\n", error->message);
      return 1;
    }
  for (guint s = 0; s < N_SYSTEMS; s++)
    {
      g_autofree char *exe = peer_path (&opt, &systems[s]);

      systems[s].present = do_system[s] && g_file_test (exe, G_FILE_TEST_IS_EXECUTABLE);
      if (do_system[s] && !systems[s].present)
        g_printerr ("scale: note: %s was not built (its packages or a C++ compiler were missing at "
                    "configure time); skipped\n", systems[s].title);
    }
  if (opt.do_transport[2] && !harness_make_certificate (opt.dir, &opt.cert, &opt.key))
    {
      g_printerr ("scale: note: no openssl to make a certificate; TLS skipped\n");
      opt.do_transport[2] = FALSE;
    }

  load_start = harness_load_average ();
  harness_noise_start (&run);
  opt.deadline = run.t0 + (gint64) budget * G_USEC_PER_SEC;

  /* Transport by transport, Tether first: when the budget runs out, what
   * is skipped is the end (TLS, which the targets only report). */
  for (guint tr = 0; tr < N_TRANSPORTS; tr++)
    for (guint s = 0; s < N_SYSTEMS; s++)
      if (opt.do_transport[tr] && systems[s].present && (tr != 2 || systems[s].tls))
        run_cell (&opt, tr, s);

  harness_noise_stop (&run);

  printf ("\nIdle connections: what they cost a server (issue #8). One machine, one run; servers and\n"
          "measuring clients pinned on CPU %d, idle connections held by other processes on CPU %d.\n",
          opt.server_cpu, opt.holder_cpu);
  printf ("(%u CPUs; load average %.2f at the start; other processes used %.1f CPU-seconds during the %.0f s run;\n"
          " %u round(s) per level; each round: a fresh client against the reference server (no idle\n"
          " connections; the loaded server and its holders stopped meanwhile), then against the loaded one;\n"
          " up to %d calls after %d warm-up per workload, fewer when slow (\"calls\"); medians over rounds;\n"
          " ×none: median over rounds of loaded p50 ÷ reference p50 — at 0 idle, the method's own noise;\n"
          " rounds: clean/run, a round disturbed by other processes being run again once; build s: seconds\n"
          " to add this level's idle connections)\n",
          g_get_num_processors (), load_start, MAX (run.foreign, 0.0), run.wall, opt.rounds, opt.calls,
          opt.warmup);
  for (guint tr = 0; tr < N_TRANSPORTS; tr++)
    print_latency_table (tr);
  print_memory_table (&opt);
  print_targets (&opt);

  json = results_json (&opt, load_start, &run, budget);
  harness_write_results (json_path != NULL ? json_path : "bench-scale.json", json);
  fflush (stdout);

  harness_finish ();
  return 0;
}
