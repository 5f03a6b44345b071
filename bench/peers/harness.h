/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* harness: what a benchmark orchestrator needs around its child
 * processes, once, for `peers`, `scale`, `attacks` and `blackhole`
 * (issue #10). GLib-based: children are GSubprocesses whose stdout lines
 * are read on the default main context; every wait iterates that context
 * under a give-up timer, so nothing waits forever.
 *
 * - children: spawned with PR_SET_PDEATHSIG (they die with the
 *   orchestrator, whatever kills it), G_SLICE=always-malloc (honest
 *   malloc figures) and pinned to one CPU, spread over all or left on
 *   the orchestrator's; their READY / CONNECTED / HOLDING / RESULT /
 *   MEM lines waited for by prefix with a bound; paused and resumed
 *   (SIGSTOP/SIGCONT); SIGKILLed, by pid, at the end;
 * - the run: a watchdog (alarm) past the budget, a temporary directory
 *   removed on exit and on a fatal signal, the soft RLIMIT_NOFILE raised
 *   to the hard one;
 * - the machine from /proc: a process's RSS (or another number of its
 *   status: threads, …), CPU time and open files, the CPU time the
 *   whole machine spent busy, and the quiet-machine check built on them
 *   (HarnessNoise: what other processes, not this run's, used
 *   meanwhile);
 * - the peer programs' protocol (peers-util.h): start a server, read its
 *   address, sample its memory; a throw-away TLS certificate;
 * - JSON writing and the header every result file shares. */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* ---------------------------------------------------------------------- */
/* Waiting                                                                */

gboolean harness_flag_set_cb (gpointer data);

/* Iterates the default main context until @cond holds or @ms pass;
 * evaluates to whether @cond holds. */
#define HARNESS_WAIT_UNTIL(cond, ms) \
  ({ \
    gboolean _hw_expired = FALSE; \
    guint _hw_timer = g_timeout_add ((ms), harness_flag_set_cb, &_hw_expired); \
    while (!(cond) && !_hw_expired) \
      g_main_context_iteration (NULL, TRUE); \
    if (!_hw_expired) \
      g_source_remove (_hw_timer); \
    (cond) ? TRUE : FALSE; \
  })

/* Iterates the default main context for @ms (children's lines keep
 * arriving meanwhile). */
void     harness_sleep_ms            (guint ms);

/* ---------------------------------------------------------------------- */
/* The run                                                                */

/* Once, first: @prog prefixes every message; SIGPIPE is ignored and the
 * soft RLIMIT_NOFILE raised to the hard one (children inherit it). */
void     harness_init                (const char *prog);
const char *harness_prog             (void);
/* The soft RLIMIT_NOFILE after raising it. */
guint64  harness_raise_fd_limit      (void);
/* SIGALRM after @seconds, and SIGINT/SIGTERM, end the run: the temporary
 * directory is emptied and removed (async-signal-safe), the children die
 * with the orchestrator. */
void     harness_watchdog            (guint       seconds);
/* A temporary directory (g_dir_make_tmp @template) that harness_finish()
 * and the fatal-signal handler remove with everything in it. */
char    *harness_make_tmpdir         (const char *template,
                                      GError    **error);
/* SIGKILLs every child still alive, removes the temporary directory. */
void     harness_finish              (void);

/* ---------------------------------------------------------------------- */
/* Children                                                               */

#define HARNESS_CPU_ANY (-1)
/* The orchestrator's own affinity, whatever it is (taskset). */
#define HARNESS_CPU_INHERIT (-2)

typedef struct
{
  char             *name;
  GSubprocess      *proc;
  GPid              pid;
  GOutputStream    *in;
  GDataInputStream *out;
  GQueue            lines;        /* read, not yet waited for */
  char             *last_other;   /* the last line no wait asked for */
  gboolean          eof;
  gboolean          exited;
  gboolean          paused;
} HarnessChild;

/* Starts @argv with stdin and stdout piped, on CPU @cpu (or any:
 * HARNESS_CPU_ANY; or the orchestrator's: HARNESS_CPU_INHERIT). The
 * child is the harness's: freed never, killed by harness_finish() at
 * the latest. */
HarnessChild *harness_child_spawn    (const char         *name,
                                      const char * const *argv,
                                      int                 cpu,
                                      GError            **error);
/* The next line starting with @prefix (a copy, to free), or NULL after
 * @timeout_ms or at EOF. Other lines go to stderr and last_other. */
char    *harness_child_wait_line     (HarnessChild *c,
                                      const char   *prefix,
                                      guint         timeout_ms);
/* A line on the child's stdin (never blocks on a few bytes). */
void     harness_child_send          (HarnessChild *c,
                                      const char   *line);
/* Ends the child: with @grace_ms, EOF on its stdin first and that long to
 * exit by itself (a profiler around it may write its output); then
 * SIGKILL, to this pid only. Bounded; FALSE if it would not go. */
gboolean harness_child_stop          (HarnessChild *c,
                                      guint         grace_ms);
/* SIGSTOP / SIGCONT, to this pid only, if it is still alive. */
void     harness_child_pause         (HarnessChild *c);
void     harness_child_resume        (HarnessChild *c);
/* Every child spawned, in order (HarnessChild *). */
GPtrArray *harness_children          (void);

/* " key=value" in a RESULT/HOLDING/MEM line. */
gboolean harness_parse_kv_double     (const char *line,
                                      const char *key,
                                      double     *value);

/* ---------------------------------------------------------------------- */
/* The machine, from /proc                                                */

/* CPU seconds the whole machine spent busy (user, nice, system, irq,
 * softirq, steal). */
double   harness_machine_busy_seconds (void);
/* This process and its reaped children. */
double   harness_own_cpu_seconds     (void);
/* utime + stime of @pid, all its threads (clock ticks: 10 ms). */
double   harness_proc_cpu_seconds    (GPid pid);
/* This run: itself, its reaped children and its live ones. */
double   harness_run_cpu_seconds     (void);
/* The number a line of /proc/@pid/status starts with ("VmHWM" in KiB,
 * "Threads"), -1 if unreadable. */
gint64   harness_proc_status         (GPid        pid,
                                      const char *field);
gint64   harness_proc_rss_kb         (GPid pid);
int      harness_proc_fd_count       (GPid pid);
double   harness_load_average        (void);
/* A sysctl's value from /proc/sys (e.g. "net/core/somaxconn"), trimmed;
 * NULL if unreadable. */
char    *harness_sysctl              (const char *name);

/* The quiet-machine check: what other processes (the whole machine's
 * busy time minus this run's) used between start and stop. A span is
 * clean when that is at most HARNESS_NOISE_SHARE of one CPU over the
 * span, with HARNESS_NOISE_SLACK seconds for tick granularity. */
#define HARNESS_NOISE_SHARE 0.15
#define HARNESS_NOISE_SLACK 0.05

typedef struct
{
  double busy0, own0;
  gint64 t0;
  double foreign;    /* CPU seconds, after stop */
  double wall;       /* seconds, after stop */
} HarnessNoise;

void     harness_noise_start         (HarnessNoise *n);
/* Whether the span was clean. */
gboolean harness_noise_stop          (HarnessNoise *n);

/* ---------------------------------------------------------------------- */
/* Figures                                                                */

/* The median of the non-NaN values, NaN if none. */
double   harness_median              (const double *values,
                                      guint         n);
/* @list of comma-separated @names into @out; FALSE (with a message) on an
 * unknown one. */
gboolean harness_parse_list          (const char  *what,
                                      const char  *list,
                                      const char **names,
                                      guint        n_names,
                                      gboolean    *out);

/* ---------------------------------------------------------------------- */
/* The peer programs (peers-util.h)                                       */

typedef struct
{
  HarnessChild *child;
  char         *address;
} HarnessServer;

/* `@exe server --transport @transport --address @listen [--cert --key]`
 * on @cpu; waits (15 s at most) for READY and keeps its address. */
gboolean harness_server_start        (HarnessServer *s,
                                      const char    *name,
                                      const char    *exe,
                                      const char    *transport,
                                      const char    *listen,
                                      const char    *cert,
                                      const char    *key,
                                      int            cpu,
                                      char         **why);
void     harness_server_stop         (HarnessServer *s);
/* VmRSS from outside, malloc's bytes in use (the `mem` command) from
 * inside. */
gboolean harness_server_memory       (HarnessServer *s,
                                      gint64        *rss_kb,
                                      double        *heap);
/* A self-signed certificate for 127.0.0.1 in @dir, made with openssl
 * (the clients trust it as their CA); FALSE without openssl. */
gboolean harness_make_certificate    (const char *dir,
                                      char      **cert,
                                      char      **key);

/* ---------------------------------------------------------------------- */
/* JSON                                                                   */

/* "key": 1.23 (or null for NaN and infinities), @decimals places. */
void     harness_json_num            (GString    *j,
                                      const char *key,
                                      double      v,
                                      int         decimals);
void     harness_json_str            (GString    *j,
                                      const char *key,
                                      const char *v);
/* "key": [1.2, null, …] */
void     harness_json_array          (GString      *j,
                                      const char   *key,
                                      const double *v,
                                      guint         n,
                                      int           decimals);
/* "date", "kernel", "cpus", "load_average_start",
 * "other_processes_cpu_seconds" and "wall_seconds", comma-separated. */
void     harness_json_machine        (GString            *j,
                                      double              load_start,
                                      const HarnessNoise *run);
/* Writes @json to @path and says where; FALSE (with a message) if not. */
gboolean harness_write_results       (const char *path,
                                      const char *json);

G_END_DECLS
