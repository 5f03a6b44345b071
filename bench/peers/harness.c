/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <glib/gstdio.h>

static char       prog[64] = "harness";
static GPtrArray *children;
static char       tmpdir[PATH_MAX];

/* ---------------------------------------------------------------------- */
/* Waiting                                                                */

gboolean
harness_flag_set_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

void
harness_sleep_ms (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, harness_flag_set_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

/* ---------------------------------------------------------------------- */
/* The run                                                                */

void
harness_init (const char *name)
{
  g_strlcpy (prog, name, sizeof prog);
  children = g_ptr_array_new ();
  signal (SIGPIPE, SIG_IGN);
  harness_raise_fd_limit ();
}

const char *
harness_prog (void)
{
  return prog;
}

guint64
harness_raise_fd_limit (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
      getrlimit (RLIMIT_NOFILE, &rl);
    }
  return rl.rlim_cur;
}

/* Empties and removes the temporary directory with system calls only
 * (no malloc, no stdio): async-signal-safe. It holds no subdirectories. */
static void
remove_tmpdir_signal_safe (void)
{
  char buf[4096];
  int fd;
  long n;

  if (tmpdir[0] == '\0')
    return;
  fd = open (tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  while ((n = syscall (SYS_getdents64, fd, buf, sizeof buf)) > 0)
    for (long off = 0; off < n;)
      {
        struct
        {
          guint64        ino;
          gint64         off;
          unsigned short reclen;
          unsigned char  type;
          char           name[];
        } *d = (void *) (buf + off);

        if (strcmp (d->name, ".") != 0 && strcmp (d->name, "..") != 0)
          unlinkat (fd, d->name, 0);
        off += d->reclen;
      }
  close (fd);
  rmdir (tmpdir);
}

static void
fatal_signal_handler (int signum)
{
  static const char msg[] = ": interrupted (or out of time: see --budget); the children die with us\n";

  remove_tmpdir_signal_safe ();
  if (write (STDERR_FILENO, prog, strlen (prog)) < 0 || write (STDERR_FILENO, msg, sizeof msg - 1) < 0)
    {
      /* nothing to do */
    }
  _exit (128 + signum);
}

void
harness_watchdog (guint seconds)
{
  signal (SIGINT, fatal_signal_handler);
  signal (SIGTERM, fatal_signal_handler);
  signal (SIGALRM, fatal_signal_handler);
  alarm (seconds);
}

char *
harness_make_tmpdir (const char *template,
                     GError    **error)
{
  char *dir = g_dir_make_tmp (template, error);

  if (dir != NULL)
    g_strlcpy (tmpdir, dir, sizeof tmpdir);
  return dir;
}

void
harness_finish (void)
{
  for (guint i = 0; children != NULL && i < children->len; i++)
    harness_child_stop (g_ptr_array_index (children, i), 0);
  if (tmpdir[0] != '\0')
    {
      GDir *d = g_dir_open (tmpdir, 0, NULL);
      const char *name;

      if (d != NULL)
        {
          while ((name = g_dir_read_name (d)) != NULL)
            {
              g_autofree char *path = g_build_filename (tmpdir, name, NULL);

              g_unlink (path);
            }
          g_dir_close (d);
        }
      g_rmdir (tmpdir);
      tmpdir[0] = '\0';
    }
}

/* ---------------------------------------------------------------------- */
/* Children                                                               */

static void child_read_next (HarnessChild *c);

static void
child_line_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  HarnessChild *c = user_data;
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
child_read_next (HarnessChild *c)
{
  g_data_input_stream_read_line_async (c->out, G_PRIORITY_DEFAULT, NULL, child_line_cb, c);
}

static void
child_exited_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  HarnessChild *c = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  c->exited = TRUE;
}

/* In the child, before exec: die with the orchestrator; on one CPU (the
 * data) or on every one (HARNESS_CPU_ANY), whatever the orchestrator's
 * own affinity, or on the orchestrator's (HARNESS_CPU_INHERIT). */
static void
child_setup (gpointer user_data)
{
  int cpu = GPOINTER_TO_INT (user_data);
  long n = sysconf (_SC_NPROCESSORS_CONF);
  cpu_set_t set;

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (cpu == HARNESS_CPU_INHERIT)
    return;
  CPU_ZERO (&set);
  if (cpu >= 0)
    CPU_SET (cpu, &set);
  else
    for (int i = 0; i < CPU_SETSIZE && i < n; i++)
      CPU_SET (i, &set);
  sched_setaffinity (0, sizeof set, &set);
}

HarnessChild *
harness_child_spawn (const char         *name,
                     const char * const *argv,
                     int                 cpu,
                     GError            **error)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  GSubprocess *proc;
  const char *id;
  HarnessChild *c;

  /* Honest malloc figures: no slice magazines in front of malloc. */
  g_subprocess_launcher_setenv (launcher, "G_SLICE", "always-malloc", TRUE);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, GINT_TO_POINTER (cpu), NULL);
  proc = g_subprocess_launcher_spawnv (launcher, argv, error);
  if (proc == NULL)
    return NULL;
  c = g_new0 (HarnessChild, 1);
  c->name = g_strdup (name);
  c->proc = proc;
  id = g_subprocess_get_identifier (proc);
  c->pid = id != NULL ? atoi (id) : 0;
  c->in = g_subprocess_get_stdin_pipe (proc);
  c->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  g_queue_init (&c->lines);
  child_read_next (c);
  g_subprocess_wait_async (proc, NULL, child_exited_cb, c);
  g_ptr_array_add (children, c);
  return c;
}

char *
harness_child_wait_line (HarnessChild *c,
                         const char   *prefix,
                         guint         timeout_ms)
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
          g_printerr ("%s: %s: %s\n", prog, c->name, line);
          g_free (c->last_other);
          c->last_other = line;
        }
      left = (end - g_get_monotonic_time ()) / 1000;
      if (c->eof || left <= 0)
        return NULL;
      HARNESS_WAIT_UNTIL (!g_queue_is_empty (&c->lines) || c->eof, (guint) left);
    }
}

void
harness_child_send (HarnessChild *c,
                    const char   *line)
{
  g_autofree char *text = g_strconcat (line, "\n", NULL);

  /* A dead child only gives EPIPE (SIGPIPE is ignored). */
  g_output_stream_write_all (c->in, text, strlen (text), NULL, NULL, NULL);
}

gboolean
harness_child_stop (HarnessChild *c,
                    guint         grace_ms)
{
  if (c == NULL || c->exited)
    return TRUE;
  if (grace_ms > 0)
    {
      harness_child_resume (c);
      g_output_stream_close (c->in, NULL, NULL);
      if (HARNESS_WAIT_UNTIL (c->exited, grace_ms))
        return TRUE;
    }
  g_subprocess_force_exit (c->proc);   /* SIGKILL, to this pid only; stopped or not */
  return HARNESS_WAIT_UNTIL (c->exited, 5000);
}

void
harness_child_pause (HarnessChild *c)
{
  if (c != NULL && !c->exited && !c->paused)
    {
      g_subprocess_send_signal (c->proc, SIGSTOP);
      c->paused = TRUE;
    }
}

void
harness_child_resume (HarnessChild *c)
{
  if (c != NULL && !c->exited && c->paused)
    g_subprocess_send_signal (c->proc, SIGCONT);
  if (c != NULL)
    c->paused = FALSE;
}

GPtrArray *
harness_children (void)
{
  return children;
}

gboolean
harness_parse_kv_double (const char *line,
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
clock_ticks (void)
{
  long hz = sysconf (_SC_CLK_TCK);

  return hz > 0 ? (double) hz : 100.0;
}

double
harness_machine_busy_seconds (void)
{
  g_autofree char *text = NULL;
  guint64 v[8] = { 0 };

  if (!g_file_get_contents ("/proc/stat", &text, NULL, NULL) || !g_str_has_prefix (text, "cpu ") ||
      sscanf (text + 4, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %"
              G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
              " %" G_GUINT64_FORMAT, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 8)
    return NAN;
  /* user nice system idle iowait irq softirq steal: all but idle and iowait */
  return (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / clock_ticks ();
}

double
harness_own_cpu_seconds (void)
{
  struct rusage self, reaped;

  getrusage (RUSAGE_SELF, &self);
  getrusage (RUSAGE_CHILDREN, &reaped);
  return self.ru_utime.tv_sec + self.ru_stime.tv_sec + reaped.ru_utime.tv_sec + reaped.ru_stime.tv_sec +
         (self.ru_utime.tv_usec + self.ru_stime.tv_usec + reaped.ru_utime.tv_usec +
          reaped.ru_stime.tv_usec) / 1e6;
}

double
harness_proc_cpu_seconds (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *p;

  if (!g_file_get_contents (path, &text, NULL, NULL) || (p = strrchr (text, ')')) == NULL)
    return 0;
  /* After "pid (comm) ": state is field 3, utime 14, stime 15. */
  fields = g_strsplit (p + 2, " ", 0);
  if (g_strv_length (fields) < 13)
    return 0;
  return (g_ascii_strtod (fields[11], NULL) + g_ascii_strtod (fields[12], NULL)) / clock_ticks ();
}

double
harness_run_cpu_seconds (void)
{
  double total = harness_own_cpu_seconds ();

  for (guint i = 0; i < children->len; i++)
    {
      HarnessChild *c = g_ptr_array_index (children, i);

      if (!c->exited)
        total += harness_proc_cpu_seconds (c->pid);
    }
  return total;
}

gint64
harness_proc_status (GPid        pid,
                     const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *needle = g_strconcat ("\n", field, ":", NULL);
  g_autofree char *text = NULL;
  const char *p;

  /* At the start of a line; the first is the name, not a number. */
  if (!g_file_get_contents (path, &text, NULL, NULL) || (p = strstr (text, needle)) == NULL)
    return -1;
  return g_ascii_strtoll (p + strlen (needle), NULL, 10);
}

gint64
harness_proc_rss_kb (GPid pid)
{
  return harness_proc_status (pid, "VmRSS");
}

int
harness_proc_fd_count (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) pid);
  GDir *dir = g_dir_open (path, 0, NULL);
  int n = 0;

  if (dir == NULL)
    return -1;
  while (g_dir_read_name (dir) != NULL)
    n++;
  g_dir_close (dir);
  return n;
}

double
harness_load_average (void)
{
  g_autofree char *text = NULL;

  if (!g_file_get_contents ("/proc/loadavg", &text, NULL, NULL))
    return NAN;
  return g_ascii_strtod (text, NULL);
}

char *
harness_sysctl (const char *name)
{
  g_autofree char *path = g_build_filename ("/proc/sys", name, NULL);
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  g_strdelimit (text, "\t\n", ' ');
  return g_strstrip (text);
}

void
harness_noise_start (HarnessNoise *n)
{
  n->busy0 = harness_machine_busy_seconds ();
  n->own0 = harness_run_cpu_seconds ();
  n->t0 = g_get_monotonic_time ();
  n->foreign = n->wall = NAN;
}

gboolean
harness_noise_stop (HarnessNoise *n)
{
  n->wall = (g_get_monotonic_time () - n->t0) / 1e6;
  n->foreign = (harness_machine_busy_seconds () - n->busy0) - (harness_run_cpu_seconds () - n->own0);
  return n->foreign <= MAX (HARNESS_NOISE_SLACK, HARNESS_NOISE_SHARE * n->wall);
}

/* ---------------------------------------------------------------------- */
/* Figures                                                                */

static int
compare_double (gconstpointer a,
                gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

double
harness_median (const double *values,
                guint         n)
{
  g_autofree double *v = g_new (double, MAX (n, 1));
  guint m = 0;

  for (guint i = 0; i < n; i++)
    if (!isnan (values[i]))
      v[m++] = values[i];
  if (m == 0)
    return NAN;
  qsort (v, m, sizeof *v, compare_double);
  return m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
}

gboolean
harness_parse_list (const char  *what,
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
          g_printerr ("%s: %s: unknown %s\n", prog, what, items[k]);
          return FALSE;
        }
    }
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* The peer programs                                                      */

gboolean
harness_server_start (HarnessServer *s,
                      const char    *name,
                      const char    *exe,
                      const char    *transport,
                      const char    *listen,
                      const char    *cert,
                      const char    *key,
                      int            cpu,
                      char         **why)
{
  const char *argv[] = { exe, "server", "--transport", transport, "--address", listen,
                         "--cert", cert != NULL ? cert : "", "--key", key != NULL ? key : "", NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *ready = NULL;

  memset (s, 0, sizeof *s);
  s->child = harness_child_spawn (name, argv, cpu, &error);
  if (s->child == NULL)
    {
      *why = g_strdup_printf ("cannot start the server: %s", error->message);
      return FALSE;
    }
  ready = harness_child_wait_line (s->child, "READY ", 15000);
  if (ready == NULL)
    {
      *why = g_strdup ("the server did not start");
      harness_child_stop (s->child, 0);
      s->child = NULL;
      return FALSE;
    }
  s->address = g_strdup (ready + strlen ("READY "));
  return TRUE;
}

void
harness_server_stop (HarnessServer *s)
{
  if (s->child != NULL && !harness_child_stop (s->child, 0))
    g_printerr ("%s: %s (pid %d) did not exit\n", prog, s->child->name, (int) s->child->pid);
  s->child = NULL;
  g_clear_pointer (&s->address, g_free);
}

gboolean
harness_server_memory (HarnessServer *s,
                       gint64        *rss_kb,
                       double        *heap)
{
  g_autofree char *line = NULL;

  *rss_kb = -1;
  *heap = NAN;
  if (s->child == NULL)
    return FALSE;
  harness_child_send (s->child, "mem");
  line = harness_child_wait_line (s->child, "MEM ", 5000);
  *rss_kb = harness_proc_rss_kb (s->child->pid);
  return line != NULL && harness_parse_kv_double (line, "heap", heap) && *rss_kb > 0;
}

gboolean
harness_make_certificate (const char *dir,
                          char      **cert_out,
                          char      **key_out)
{
  g_autofree char *cert = g_build_filename (dir, "cert.pem", NULL);
  g_autofree char *key = g_build_filename (dir, "key.pem", NULL);
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
  *cert_out = g_steal_pointer (&cert);
  *key_out = g_steal_pointer (&key);
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* JSON                                                                   */

static void
append_number (GString *j,
               double   v,
               int      decimals)
{
  char format[16], buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (v) || isinf (v))
    {
      g_string_append (j, "null");
      return;
    }
  g_snprintf (format, sizeof format, "%%.%df", CLAMP (decimals, 0, 9));
  g_string_append (j, g_ascii_formatd (buf, sizeof buf, format, v));
}

void
harness_json_num (GString    *j,
                  const char *key,
                  double      v,
                  int         decimals)
{
  g_string_append_printf (j, "\"%s\": ", key);
  append_number (j, v, decimals);
}

void
harness_json_str (GString    *j,
                  const char *key,
                  const char *v)
{
  g_autofree char *esc = v != NULL ? g_strescape (v, NULL) : NULL;

  if (v == NULL)
    g_string_append_printf (j, "\"%s\": null", key);
  else
    g_string_append_printf (j, "\"%s\": \"%s\"", key, esc);
}

void
harness_json_array (GString      *j,
                    const char   *key,
                    const double *v,
                    guint         n,
                    int           decimals)
{
  g_string_append_printf (j, "\"%s\": [", key);
  for (guint i = 0; i < n; i++)
    {
      if (i > 0)
        g_string_append (j, ", ");
      append_number (j, v[i], decimals);
    }
  g_string_append (j, "]");
}

void
harness_json_machine (GString            *j,
                      double              load_start,
                      const HarnessNoise *run)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format_iso8601 (now);
  g_autofree char *uname = NULL;

  g_spawn_command_line_sync ("uname -srm", &uname, NULL, NULL, NULL);
  if (uname != NULL)
    g_strstrip (uname);
  harness_json_str (j, "date", stamp);
  g_string_append (j, ", ");
  harness_json_str (j, "kernel", uname);
  g_string_append_printf (j, ", \"cpus\": %u, ", g_get_num_processors ());
  harness_json_num (j, "load_average_start", load_start, 2);
  g_string_append (j, ", ");
  harness_json_num (j, "other_processes_cpu_seconds", MAX (run->foreign, 0.0), 2);
  g_string_append (j, ", ");
  harness_json_num (j, "wall_seconds", run->wall, 2);
}

gboolean
harness_write_results (const char *path,
                       const char *json)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *abs = NULL;

  if (!g_file_set_contents (path, json, -1, &error))
    {
      g_printerr ("%s: cannot write %s: %s\n", prog, path, error->message);
      return FALSE;
    }
  abs = g_canonicalize_filename (path, NULL);
  printf ("\nResults written to %s\n", abs);
  return TRUE;
}
