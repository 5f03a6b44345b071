/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The black-hole defence, attacked for real.
 *
 * The server (Tether's demo service plus the limits under test) and the
 * legitimate client run in this process, on a private GMainContext. Every
 * attacker is a separate process (tests/attackers/, run with
 * Debian's /usr/bin/python3), dropped to uid/gid 65534 when the tests run
 * as root, bound to 127.0.0.2 and up over TCP so that per-address limits
 * tell it from the legitimate client on 127.0.0.1. Attackers report what
 * they saw on stdout; the server's side is seen through its signals, its
 * log lines, its statistics, and this process's memory and threads.
 *
 * Each case is written to fail if its defence were removed. Memory and
 * thread figures are asserted only in normal builds (under ASan they mean
 * nothing); they are printed in every build. */

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "tether-test-common.h"
#include "tether-demo-service.h"
#include "tether-log-private.h"
#include "tether-scheduler-private.h"

#if defined(__SANITIZE_ADDRESS__)
# define UNDER_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define UNDER_ASAN 1
# endif
#endif
#ifndef UNDER_ASAN
# define UNDER_ASAN 0
#endif

#define PYTHON "/usr/bin/python3"
#define NOBODY 65534
#define MIB (1024 * 1024)

#define ADD_CASE(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

/* -- log capture --------------------------------------------------------- */

typedef struct
{
  GLogLevelFlags  level;
  char           *message;
} LogRecord;

static GMutex     log_mutex;
static GPtrArray *log_records;   /* LogRecord*, domain "Tether" only */
static gboolean   log_debug;       /* $TETHER_TEST_DEBUG: print debug output too */

static void
log_record_free (LogRecord *record)
{
  g_free (record->message);
  g_free (record);
}

/* Records every Tether log line (any level, debug included) so the cases
 * can count them. */
static GLogWriterOutput
log_writer (GLogLevelFlags   log_level,
            const GLogField *fields,
            gsize            n_fields,
            gpointer         user_data)
{
  const char *domain = NULL;
  const char *message = NULL;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (strcmp (fields[i].key, "GLIB_DOMAIN") == 0)
        domain = fields[i].value;
      else if (strcmp (fields[i].key, "MESSAGE") == 0)
        message = fields[i].value;
    }

  if (g_strcmp0 (domain, "Tether") == 0 && message != NULL &&
      (log_level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG)) != 0)
    {
      LogRecord *record = g_new0 (LogRecord, 1);

      record->level = log_level & G_LOG_LEVEL_MASK;
      record->message = g_strdup (message);
      g_mutex_lock (&log_mutex);
      g_ptr_array_add (log_records, record);
      g_mutex_unlock (&log_mutex);
      /* GTest's handler has printed it already, if it was to be. */
      return G_LOG_WRITER_HANDLED;
    }

  return g_log_writer_default (log_level, fields, n_fields, user_data);
}

static GLogFunc gtest_log_handler;

/* GTest prints everyone's debug output: with a hundred attackers that is
 * hundreds of thousands of lines. Debug and info lines go only to the
 * writer (which records Tether's), unless $TETHER_TEST_DEBUG is set. */
static void
quiet_log_handler (const char     *log_domain,
                   GLogLevelFlags  log_level,
                   const char     *message,
                   gpointer        user_data)
{
  if ((log_level & (G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG)) != 0 && !log_debug)
    {
      if (g_strcmp0 (log_domain, "Tether") == 0)
        g_log_default_handler (log_domain, log_level, message, user_data);
      return;
    }
  gtest_log_handler (log_domain, log_level, message, user_data);
}

static void
log_reset (void)
{
  g_mutex_lock (&log_mutex);
  g_ptr_array_set_size (log_records, 0);
  g_mutex_unlock (&log_mutex);
}

static gboolean
contains_ascii_nocase (const char *haystack,
                       const char *needle)
{
  g_autofree char *h = g_ascii_strdown (haystack, -1);
  g_autofree char *n = g_ascii_strdown (needle, -1);

  return strstr (h, n) != NULL;
}

/* Lines at one of @levels containing @needle and (if not NULL) @also. */
static guint
log_count (GLogLevelFlags  levels,
           const char     *needle,
           const char     *also)
{
  guint n = 0;

  g_mutex_lock (&log_mutex);
  for (guint i = 0; i < log_records->len; i++)
    {
      LogRecord *record = log_records->pdata[i];

      if ((record->level & levels) != 0 &&
          strstr (record->message, needle) != NULL &&
          (also == NULL || contains_ascii_nocase (record->message, also)))
        n++;
    }
  g_mutex_unlock (&log_mutex);
  return n;
}

/* What the summaries of suppressed "@reason" lines add up to. */
static guint
log_suppressed (const char *reason)
{
  g_autofree char *needle = g_strdup_printf (" more “%s” lines suppressed", reason);
  guint n = 0;

  g_mutex_lock (&log_mutex);
  for (guint i = 0; i < log_records->len; i++)
    {
      LogRecord *record = log_records->pdata[i];

      if (strstr (record->message, needle) != NULL)
        n += (guint) g_ascii_strtoull (record->message, NULL, 10);
    }
  g_mutex_unlock (&log_mutex);
  return n;
}

/* -- fixture --------------------------------------------------------------- */

typedef struct _Fixture Fixture;

typedef struct
{
  Fixture          *f;
  char             *name;
  GSubprocess      *process;
  GDataInputStream *out;
  GCancellable     *cancellable;
  GPtrArray        *lines;
  gboolean          reading;
  gboolean          eof;
  gboolean          exited;
} Attacker;

typedef struct
{
  char     *who;
  gboolean  disconnected;
  guint     misbehaved;   /* bit mask of TetherMisbehavior */
} PeerRecord;

typedef struct
{
  TetherMisbehavior  reason;
  gboolean           had_peer;
  char              *who;
  char              *details;
} Misbehavior;

struct _Fixture
{
  GMainContext *context;
  char         *dir;
  char         *unix_path;
  char         *unix_uri;
  char         *ws_uri;
  char         *wss_uri;
  guint16       ws_port;
  guint16       wss_port;
  guint         attacker_uid;
  char         *attacker_tag;   /* "uid=65534 " as in identity strings */

  TetherServer *server;
  GHashTable   *peers;          /* TetherPeer* (ref) → PeerRecord* */
  guint         peers_connected;
  guint         peers_disconnected;
  GPtrArray    *misbehaviors;   /* Misbehavior* */
  GPtrArray    *clients;        /* TetherClient* */
  GPtrArray    *attackers;      /* Attacker* */
  GPtrArray    *held;           /* client invocations held */
  guint         held_cancelled;

  GSource      *sampler;
  guint64       rss_base_kib;
  guint64       rss_peak_kib;
  guint         threads_base;
  guint         threads_peak;
};

static void
peer_record_free (PeerRecord *record)
{
  g_free (record->who);
  g_free (record);
}

static void
misbehavior_free (Misbehavior *m)
{
  g_free (m->who);
  g_free (m->details);
  g_free (m);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autofree char *attackers = NULL;
  const char *name;

  log_reset ();
  /* Each case starts with the log limiter's counts at zero, and a
   * window short enough for its summaries to come within the case. */
  _tether_log_reset (3000);
  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);

  /* Attackers run as nobody: they must reach the directory, their
   * scripts and the socket (chmod'ed after listen). */
  f->dir = g_dir_make_tmp ("tether-sec-XXXXXX", &error);
  g_assert_no_error (error);
  g_assert_no_errno (g_chmod (f->dir, 0755));
  attackers = g_build_filename (f->dir, "attackers", NULL);
  g_assert_no_errno (g_mkdir (attackers, 0755));
  dir = g_dir_open (TETHER_TEST_SRCDIR "/attackers", 0, &error);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *from = g_build_filename (TETHER_TEST_SRCDIR "/attackers", name, NULL);
      g_autofree char *to = g_build_filename (attackers, name, NULL);
      g_autofree char *contents = NULL;
      gsize len;

      if (!g_str_has_suffix (name, ".py"))
        continue;
      g_file_get_contents (from, &contents, &len, &error);
      g_assert_no_error (error);
      g_file_set_contents_full (to, contents, len, G_FILE_SET_CONTENTS_NONE, 0644, &error);
      g_assert_no_error (error);
    }

  f->attacker_uid = getuid () == 0 ? NOBODY : getuid ();
  f->attacker_tag = g_strdup_printf ("uid=%u ", f->attacker_uid);
  f->peers = g_hash_table_new_full (NULL, NULL, g_object_unref, (GDestroyNotify) peer_record_free);
  f->misbehaviors = g_ptr_array_new_with_free_func ((GDestroyNotify) misbehavior_free);
  f->clients = g_ptr_array_new ();
  f->attackers = g_ptr_array_new ();
  f->held = g_ptr_array_new_with_free_func (g_object_unref);
}

static void attacker_stop (Attacker *a);

static void
rm_rf (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          rm_rf (child);
        }
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

static gboolean
all_peers_disconnected (Fixture *f)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, f->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (!((PeerRecord *) value)->disconnected)
      return FALSE;
  return TRUE;
}

static void
answer_held (Fixture *f)
{
  for (guint i = 0; i < f->held->len; i++)
    if (!tether_invocation_has_replied (f->held->pdata[i]))
      tether_invocation_return_error_literal (f->held->pdata[i], TETHER_REMOTE_ERROR_CANCELLED,
                                              "test over");
  g_ptr_array_set_size (f->held, 0);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  user_data)
{
  g_clear_pointer (&f->sampler, g_source_destroy);

  /* Every attacker is killed, whatever the case did. */
  for (guint i = 0; i < f->attackers->len; i++)
    attacker_stop (f->attackers->pdata[i]);
  g_ptr_array_unref (f->attackers);

  answer_held (f);
  for (guint i = 0; i < f->clients->len; i++)
    tether_client_close (f->clients->pdata[i]);

  if (f->server != NULL)
    {
      TETHER_TEST_WAIT_UNTIL (all_peers_disconnected (f));
      for (guint i = 0; i < f->clients->len; i++)
        g_assert_finalize_object (f->clients->pdata[i]);
      g_hash_table_remove_all (f->peers);
      tether_server_close (f->server);
      g_assert_finalize_object (g_steal_pointer (&f->server));
      TETHER_TEST_WAIT_UNTIL (_tether_debug_get_attached_sources () == 0);
      tether_test_spin_ms (5);
    }
  else
    {
      for (guint i = 0; i < f->clients->len; i++)
        g_assert_finalize_object (f->clients->pdata[i]);
      TETHER_TEST_WAIT_UNTIL (_tether_debug_get_attached_sources () == 0);
    }

  g_ptr_array_unref (f->clients);
  g_ptr_array_unref (f->held);
  g_hash_table_unref (f->peers);
  g_ptr_array_unref (f->misbehaviors);

  g_main_context_pop_thread_default (f->context);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_unref (f->context);

  rm_rf (f->dir);
  g_free (f->dir);
  g_free (f->unix_path);
  g_free (f->unix_uri);
  g_free (f->ws_uri);
  g_free (f->wss_uri);
  g_free (f->attacker_tag);
}

/* -- memory and threads ------------------------------------------------------ */

static void
proc_status (guint64 *rss_kib,
             guint   *threads)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GError) error = NULL;

  g_file_get_contents ("/proc/self/status", &text, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (g_str_has_prefix (lines[i], "VmRSS:"))
        *rss_kib = g_ascii_strtoull (lines[i] + 6, NULL, 10);
      else if (g_str_has_prefix (lines[i], "Threads:"))
        *threads = (guint) g_ascii_strtoull (lines[i] + 8, NULL, 10);
    }
}

static gboolean
sample_cb (gpointer user_data)
{
  Fixture *f = user_data;
  guint64 rss;
  guint threads;

  proc_status (&rss, &threads);
  f->rss_peak_kib = MAX (f->rss_peak_kib, rss);
  f->threads_peak = MAX (f->threads_peak, threads);
  return G_SOURCE_CONTINUE;
}

/* Takes the baseline now and samples every 20 ms from here on. */
static void
sampler_start (Fixture *f)
{
  g_clear_pointer (&f->sampler, g_source_destroy);
  proc_status (&f->rss_base_kib, &f->threads_base);
  f->rss_peak_kib = f->rss_base_kib;
  f->threads_peak = f->threads_base;
  f->sampler = g_timeout_source_new (20);
  g_source_set_callback (f->sampler, sample_cb, f, NULL);
  g_source_set_static_name (f->sampler, "[test] sampler");
  g_source_attach (f->sampler, f->context);
  g_source_unref (f->sampler);
}

/* Prints the figures; asserts them in normal builds only. */
static void
assert_figures (Fixture    *f,
                const char *what,
                guint64     max_rss_growth_kib,
                guint       max_thread_growth)
{
  guint64 growth;

  sample_cb (f);
  growth = f->rss_peak_kib > f->rss_base_kib ? f->rss_peak_kib - f->rss_base_kib : 0;
  g_test_message ("%s: RSS %" G_GUINT64_FORMAT " KiB at start, peak %" G_GUINT64_FORMAT
                  " KiB (+%" G_GUINT64_FORMAT " KiB, bound %" G_GUINT64_FORMAT " KiB); "
                  "threads %u at start, peak %u (bound +%u)%s",
                  what, f->rss_base_kib, f->rss_peak_kib, growth, max_rss_growth_kib,
                  f->threads_base, f->threads_peak, max_thread_growth,
                  UNDER_ASAN ? " [sanitizer build: not asserted]" : "");
  if (UNDER_ASAN)
    return;
  g_assert_cmpuint (growth, <, max_rss_growth_kib);
  g_assert_cmpuint (f->threads_peak, <=, f->threads_base + max_thread_growth);
}

/* -- attackers ---------------------------------------------------------------- */

/* In the child, between fork and exec: become nobody (when we are root),
 * and die with the test. */
static void
attacker_child_setup (gpointer user_data)
{
  if (getuid () == 0)
    {
      if (setgroups (0, NULL) != 0 || setgid (NOBODY) != 0 || setuid (NOBODY) != 0)
        _exit (126);
    }
  /* After setuid, which clears it. */
  tether_test_die_with_parent (NULL);
}

static void
attacker_read_line_cb (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  Attacker *a = user_data;
  char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source),
                                                          result, NULL, &error);

  if (line == NULL)
    {
      a->reading = FALSE;
      a->eof = TRUE;
      return;
    }
  g_ptr_array_add (a->lines, line);
  if (g_cancellable_is_cancelled (a->cancellable))
    {
      a->reading = FALSE;
      return;
    }
  g_data_input_stream_read_line_async (a->out, G_PRIORITY_DEFAULT, a->cancellable,
                                       attacker_read_line_cb, a);
}

static void
attacker_exited_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  Attacker *a = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  a->exited = TRUE;
}

/* Starts attackers/@script with the arguments that follow (NULL ends
 * them), as nobody. */
static Attacker * G_GNUC_NULL_TERMINATED
attacker_spawn (Fixture    *f,
                const char *script,
                ...)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autofree char *joined = NULL;
  Attacker *a = g_new0 (Attacker, 1);
  const char *arg;
  va_list args;

  g_ptr_array_add (argv, g_strdup (PYTHON));
  g_ptr_array_add (argv, g_strdup ("-E"));
  g_ptr_array_add (argv, g_strdup ("-s"));
  g_ptr_array_add (argv, g_build_filename (f->dir, "attackers", script, NULL));
  va_start (args, script);
  while ((arg = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_set_cwd (launcher, f->dir);
  g_subprocess_launcher_setenv (launcher, "HOME", f->dir, TRUE);
  g_subprocess_launcher_setenv (launcher, "PYTHONDONTWRITEBYTECODE", "1", TRUE);
  g_subprocess_launcher_set_child_setup (launcher, attacker_child_setup, NULL, NULL);

  joined = g_strjoinv (" ", (char **) argv->pdata + 3);
  a->f = f;
  a->name = g_strdup_printf ("%s[%u]", script, f->attackers->len);
  a->lines = g_ptr_array_new_with_free_func (g_free);
  a->cancellable = g_cancellable_new ();
  a->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_test_message ("attacker %s (pid %s, uid %u): %s", a->name,
                  g_subprocess_get_identifier (a->process), f->attacker_uid, joined);
  a->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (a->process));
  a->reading = TRUE;
  g_data_input_stream_read_line_async (a->out, G_PRIORITY_DEFAULT, a->cancellable,
                                       attacker_read_line_cb, a);
  g_subprocess_wait_async (a->process, NULL, attacker_exited_cb, a);
  g_ptr_array_add (f->attackers, a);
  return a;
}

static void
attacker_stop (Attacker *a)
{
  g_cancellable_cancel (a->cancellable);
  if (!a->exited)
    g_subprocess_force_exit (a->process);
  TETHER_TEST_WAIT_UNTIL (a->exited && !a->reading);
  g_clear_object (&a->out);
  g_clear_object (&a->process);
  g_clear_object (&a->cancellable);
  g_ptr_array_unref (a->lines);
  g_free (a->name);
  g_free (a);
}

static gboolean
line_matches (const char *line,
              const char *prefix)
{
  gsize n = strlen (prefix);

  return strncmp (line, prefix, n) == 0 && (line[n] == '\0' || line[n] == ' ');
}

/* Lines whose first words are @prefix. */
static guint
attacker_count (Attacker   *a,
                const char *prefix)
{
  guint n = 0;

  for (guint i = 0; i < a->lines->len; i++)
    if (line_matches (a->lines->pdata[i], prefix))
      n++;
  return n;
}

static const char *
attacker_find (Attacker   *a,
               const char *prefix)
{
  for (guint i = 0; i < a->lines->len; i++)
    if (line_matches (a->lines->pdata[i], prefix))
      return a->lines->pdata[i];
  return NULL;
}

static void
attacker_dump (Attacker *a)
{
  for (guint i = 0; i < a->lines->len; i++)
    g_test_message ("%s: %s", a->name, (const char *) a->lines->pdata[i]);
}

/* Waits for the attacker's "done" (it stops by itself) and its exit. */
static void
attacker_wait_done (Attacker *a)
{
  TETHER_TEST_WAIT_UNTIL (a->eof || attacker_find (a, "done") != NULL);
  TETHER_TEST_WAIT_UNTIL (a->exited);
  attacker_dump (a);
  g_assert_nonnull (attacker_find (a, "done"));
  g_assert_null (attacker_find (a, "gave-up"));
  g_assert_true (g_subprocess_get_if_exited (a->process));
  g_assert_cmpint (g_subprocess_get_exit_status (a->process), ==, 0);
}

/* The n-th word (0 = the first) of @line as an integer. */
static gint64
word_int (const char *line,
          guint       n)
{
  g_auto(GStrv) words = g_strsplit (line, " ", -1);

  g_assert_cmpuint (g_strv_length (words), >, n);
  return g_ascii_strtoll (words[n], NULL, 10);
}

static const char *
word (const char *line,
      guint       n,
      char        buffer[64])
{
  g_auto(GStrv) words = g_strsplit (line, " ", -1);

  g_assert_cmpuint (g_strv_length (words), >, n);
  g_strlcpy (buffer, words[n], 64);
  return buffer;
}

/* -- server ------------------------------------------------------------------- */

static void
peer_connected_cb (TetherServer *server,
                   TetherPeer   *peer,
                   Fixture      *f)
{
  PeerRecord *record = g_new0 (PeerRecord, 1);

  record->who = tether_identity_to_string (tether_peer_get_identity (peer));
  g_hash_table_insert (f->peers, g_object_ref (peer), record);
  f->peers_connected++;
}

static void
peer_disconnected_cb (TetherServer *server,
                      TetherPeer   *peer,
                      Fixture      *f)
{
  PeerRecord *record = g_hash_table_lookup (f->peers, peer);

  g_assert_nonnull (record);
  g_assert_false (record->disconnected);
  record->disconnected = TRUE;
  f->peers_disconnected++;
}

static void
peer_misbehaved_cb (TetherServer      *server,
                    TetherPeer        *peer,
                    TetherIdentity    *identity,
                    TetherMisbehavior  reason,
                    const char        *details,
                    Fixture           *f)
{
  Misbehavior *m = g_new0 (Misbehavior, 1);
  PeerRecord *record = peer != NULL ? g_hash_table_lookup (f->peers, peer) : NULL;

  g_assert_nonnull (identity);
  g_assert_nonnull (details);
  m->reason = reason;
  m->had_peer = peer != NULL;
  m->who = tether_identity_to_string (identity);
  m->details = g_strdup (details);
  if (record != NULL)
    record->misbehaved |= 1u << reason;
  g_ptr_array_add (f->misbehaviors, m);
}

static guint
count_misbehaviors (Fixture           *f,
                    TetherMisbehavior  reason,
                    const char        *who)
{
  guint n = 0;

  for (guint i = 0; i < f->misbehaviors->len; i++)
    {
      Misbehavior *m = f->misbehaviors->pdata[i];

      if (m->reason == reason && strstr (m->who, who) != NULL)
        n++;
    }
  return n;
}

/* Peers whose identity string contains @who; with @disconnected, only
 * those that are gone. */
static guint
count_peers (Fixture    *f,
             const char *who,
             gboolean    disconnected_only)
{
  GHashTableIter iter;
  gpointer value;
  guint n = 0;

  g_hash_table_iter_init (&iter, f->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      PeerRecord *record = value;

      if (strstr (record->who, who) != NULL && (!disconnected_only || record->disconnected))
        n++;
    }
  return n;
}

static TetherPeer *
find_peer (Fixture    *f,
           const char *who)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, f->peers);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (strstr (((PeerRecord *) value)->who, who) != NULL)
      return key;
  return NULL;
}

static void
set_from_string (GValue     *value,
                 GParamSpec *pspec,
                 const char *text)
{
  g_value_init (value, pspec->value_type);
  if (G_TYPE_IS_ENUM (pspec->value_type))
    {
      g_autoptr(GEnumClass) klass = g_type_class_ref (pspec->value_type);
      GEnumValue *v = g_enum_get_value_by_nick (klass, text);

      g_assert_nonnull (v);
      g_value_set_enum (value, v->value);
      return;
    }
  switch (G_TYPE_FUNDAMENTAL (pspec->value_type))
    {
    case G_TYPE_UINT:
      g_value_set_uint (value, (guint) g_ascii_strtoull (text, NULL, 10));
      break;
    case G_TYPE_INT:
      g_value_set_int (value, (int) g_ascii_strtoll (text, NULL, 10));
      break;
    case G_TYPE_UINT64:
      g_value_set_uint64 (value, g_ascii_strtoull (text, NULL, 10));
      break;
    case G_TYPE_INT64:
      g_value_set_int64 (value, g_ascii_strtoll (text, NULL, 10));
      break;
    case G_TYPE_BOOLEAN:
      g_value_set_boolean (value, strcmp (text, "true") == 0);
      break;
    default:
      g_error ("property %s: unsupported type %s", pspec->name, g_type_name (pspec->value_type));
    }
}

/* The demo service's `work` and `sleep`, with their timers on the
 * thread-default context (the demo's own use the global default context,
 * which this process does not run). Same parameters and callbacks. */
static gint64
int_param (TetherInvocation *invocation,
           const char       *name,
           guint             position,
           gint64            fallback)
{
  GVariant *params = tether_invocation_get_parameters (invocation);
  g_autoptr(GVariant) value = NULL;

  if (params != NULL && g_variant_is_of_type (params, G_VARIANT_TYPE_VARDICT))
    value = g_variant_lookup_value (params, name, G_VARIANT_TYPE_INT64);
  else if (params != NULL && g_variant_is_of_type (params, G_VARIANT_TYPE ("av")) &&
           position < g_variant_n_children (params))
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (params, position);
      value = g_variant_get_variant (boxed);
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
        g_clear_pointer (&value, g_variant_unref);
    }
  return value != NULL ? g_variant_get_int64 (value) : fallback;
}

static void
attach_timeout (guint       ms,
                GSourceFunc func,
                gpointer    data)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, data, NULL);
  g_source_set_static_name (source, "[test] service timer");
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
}

typedef struct
{
  TetherInvocation *invocation;
  gint64            steps;
  gint64            delay_ms;
  gint64            step;
} Work;

static void work_next (Work *work);

static void
work_free (Work *work)
{
  g_object_unref (work->invocation);
  g_free (work);
}

static void
work_progress_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Work *work = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) answer = NULL;

  answer = tether_invocation_call_peer_finish (work->invocation, result, &error);

  if (answer == NULL)
    {
      tether_invocation_return_gerror (work->invocation, error);
      work_free (work);
      return;
    }
  work_next (work);
}

static gboolean
work_step_cb (gpointer user_data)
{
  Work *work = user_data;
  GVariantDict dict;

  work->step++;
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "step", "x", work->step);
  g_variant_dict_insert (&dict, "of", "x", work->steps);
  tether_invocation_call_peer_async (work->invocation, "progress", g_variant_dict_end (&dict),
                                     -1, NULL, work_progress_cb, work);
  return G_SOURCE_REMOVE;
}

static void
work_next (Work *work)
{
  GVariantDict dict;

  if (work->step < work->steps)
    {
      attach_timeout (work->delay_ms, work_step_cb, work);
      return;
    }
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "done", "x", work->steps);
  tether_invocation_return_value (work->invocation, g_variant_dict_end (&dict));
  work_free (work);
}

static void
srv_work (TetherInvocation *invocation,
          gpointer          user_data)
{
  Work *work = g_new0 (Work, 1);

  work->invocation = g_object_ref (invocation);
  work->steps = CLAMP (int_param (invocation, "steps", 0, 3), 0, 1000);
  work->delay_ms = CLAMP (int_param (invocation, "delay_ms", 1, 100), 0, 60000);
  work_next (work);
}

/* A sleep ends at its time, or when its invocation is cancelled (the
 * caller cancelled, its deadline passed, or the connection closed). */
typedef struct
{
  TetherInvocation *invocation;
  GSource          *timer;
  gulong            cancel_id;
} Sleep;

static void
sleep_end (Sleep *sleep)
{
  g_cancellable_disconnect (tether_invocation_get_cancellable (sleep->invocation), sleep->cancel_id);
  g_source_destroy (sleep->timer);
  g_source_unref (sleep->timer);
  g_object_unref (sleep->invocation);
  g_free (sleep);
}

static gboolean
sleep_done_cb (gpointer user_data)
{
  Sleep *sleep = user_data;

  if (!tether_invocation_has_replied (sleep->invocation))
    tether_invocation_return_value (sleep->invocation, g_variant_new_boolean (TRUE));
  sleep_end (sleep);
  return G_SOURCE_REMOVE;
}

static void
sleep_cancelled_cb (GCancellable *cancellable,
                    Sleep        *sleep)
{
  /* Ends at the next iteration, not from inside the cancellable's own
   * signal (which the end disconnects from). */
  g_source_set_ready_time (sleep->timer, 0);
}

static void
srv_sleep (TetherInvocation *invocation,
           gpointer          user_data)
{
  Sleep *sleep = g_new0 (Sleep, 1);

  sleep->invocation = g_object_ref (invocation);
  sleep->timer = g_timeout_source_new (CLAMP (int_param (invocation, "ms", 0, 1000), 0, 600000));
  g_source_set_callback (sleep->timer, sleep_done_cb, sleep, NULL);
  g_source_set_static_name (sleep->timer, "[test] service timer");
  g_source_attach (sleep->timer, g_main_context_get_thread_default ());
  sleep->cancel_id = g_cancellable_connect (tether_invocation_get_cancellable (invocation),
                                            G_CALLBACK (sleep_cancelled_cb), sleep, NULL);
}

/* A server whose limits are "name=value ..." (like `tether serve
 * --limit`), set at construction. $TETHER_TEST_OVERRIDE_LIMITS, in the
 * same form, overrides them: setting a limit out of reach (say
 * max-strikes=1000000) shows that a case fails without its defence. */
static TetherServer *
server_new (const char *limits)
{
  g_autofree char *all = g_strjoin (" ", limits, g_getenv ("TETHER_TEST_OVERRIDE_LIMITS"), NULL);
  g_auto(GStrv) items = g_strsplit (all, " ", -1);
  g_autoptr(GTypeClass) klass = g_type_class_ref (TETHER_TYPE_SERVER);
  const char *names[32];
  GValue values[32] = { G_VALUE_INIT };
  guint n = 0;
  TetherServer *server;

  for (guint i = 0; items[i] != NULL; i++)
    {
      g_auto(GStrv) kv = NULL;
      GParamSpec *pspec;
      guint at;

      if (items[i][0] == '\0')
        continue;
      kv = g_strsplit (items[i], "=", 2);
      g_assert_nonnull (kv[1]);
      pspec = g_object_class_find_property (G_OBJECT_CLASS (klass), kv[0]);
      if (pspec == NULL)
        g_error ("TetherServer has no property %s", kv[0]);
      /* A later setting of the same limit replaces the earlier one. */
      for (at = 0; at < n && strcmp (names[at], pspec->name) != 0; at++)
        ;
      if (at == n)
        {
          g_assert_cmpuint (n, <, G_N_ELEMENTS (names));
          names[n++] = pspec->name;
        }
      else
        g_value_unset (&values[at]);
      set_from_string (&values[at], pspec, kv[1]);
    }
  server = TETHER_SERVER (g_object_new_with_properties (TETHER_TYPE_SERVER, n, names, values));
  for (guint i = 0; i < n; i++)
    g_value_unset (&values[i]);
  g_test_message ("server limits: %s", all);
  return server;
}

static guint16
uri_port (const char *uri)
{
  return (guint16) atoi (strrchr (uri, ':') + 1);
}

/* Starts the demo service with @limits on unix:, ws:// and (with @tls)
 * wss://, all on this process's private context. */
static void
fixture_start_server (Fixture    *f,
                      const char *limits,
                      gboolean    tls)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *unix_uri = NULL;
  const char * const *uris;

  f->server = server_new (limits);
  demo_service_add_methods (f->server, NULL, NULL);
  tether_server_add_method (f->server, "work", TETHER_ACCESS_ANY, srv_work, NULL, NULL);
  tether_server_add_method (f->server, "sleep", TETHER_ACCESS_ANY, srv_sleep, NULL, NULL);
  g_signal_connect (f->server, "peer-connected", G_CALLBACK (peer_connected_cb), f);
  g_signal_connect (f->server, "peer-disconnected", G_CALLBACK (peer_disconnected_cb), f);
  g_signal_connect (f->server, "peer-misbehaved", G_CALLBACK (peer_misbehaved_cb), f);

  f->unix_path = g_build_filename (f->dir, "s.sock", NULL);
  unix_uri = g_strconcat ("unix:", f->unix_path, NULL);
  tether_server_listen (f->server, unix_uri, &error);
  g_assert_no_error (error);
  g_assert_no_errno (g_chmod (f->unix_path, 0777));
  tether_server_listen (f->server, "ws://127.0.0.1:0", &error);
  g_assert_no_error (error);
  if (tls)
    {
      g_autoptr(GTlsCertificate) cert = NULL;

      tether_test_make_certificates (f->dir);
      cert = tether_test_load_certificate (f->dir, "server");
      tether_server_set_tls_certificate (f->server, cert);
      tether_server_listen (f->server, "wss://127.0.0.1:0", &error);
      g_assert_no_error (error);
    }

  uris = tether_server_get_uris (f->server);
  f->unix_uri = g_strdup (uris[0]);
  f->ws_uri = g_strdup (uris[1]);
  f->ws_port = uri_port (f->ws_uri);
  if (tls)
    {
      f->wss_uri = g_strdup (uris[2]);
      f->wss_port = uri_port (f->wss_uri);
    }
}

/* Targets as the attackers spell them. */
static char *
unix_target (Fixture *f)
{
  return g_strconcat ("unix:", f->unix_path, NULL);
}

static char *
tcp_target (guint16 port)
{
  return g_strdup_printf ("tcp:127.0.0.1:%u", port);
}

/* -- the legitimate client --------------------------------------------------------- */

static void
cli_progress (TetherInvocation *invocation,
              gpointer          user_data)
{
  tether_invocation_return_value (invocation, g_variant_new ("a{sv}", NULL));
}

static void
cli_confirm (TetherInvocation *invocation,
             gpointer          user_data)
{
  tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
}

static void
held_cancelled_cb (GCancellable *cancellable,
                   Fixture      *f)
{
  f->held_cancelled++;
}

static void
cli_hold (TetherInvocation *invocation,
          gpointer          user_data)
{
  Fixture *f = user_data;

  g_ptr_array_add (f->held, g_object_ref (invocation));
  g_cancellable_connect (tether_invocation_get_cancellable (invocation),
                         G_CALLBACK (held_cancelled_cb), f, NULL);
}

/* A client with handlers for the demo's callbacks, not connected yet;
 * closed and checked for finalization at teardown. */
static TetherClient *
client_new (Fixture    *f,
            const char *uri)
{
  TetherClient *client = tether_client_new (uri);

  if (g_str_has_prefix (uri, "wss:"))
    {
      g_autofree char *path = g_build_filename (f->dir, "ca.pem", NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(GTlsDatabase) ca = g_tls_file_database_new (path, &error);

      g_assert_no_error (error);
      tether_client_set_tls_database (client, ca);
    }
  tether_client_add_method (client, "progress", cli_progress, f, NULL);
  tether_client_add_method (client, "confirm", cli_confirm, f, NULL);
  tether_client_add_method (client, "hold", cli_hold, f, NULL);
  g_ptr_array_add (f->clients, client);
  return client;
}

static TetherClient *
legit_client (Fixture    *f,
              const char *uri)
{
  TetherClient *client = client_new (f, uri);
  g_autoptr(GError) error = tether_test_client_connect (client);

  g_assert_no_error (error);
  return client;
}

typedef struct
{
  gboolean  done;
  gint64    started;
  gint64    elapsed_ms;
  GVariant *result;
  GError   *error;
} CallResult;

static void
client_call_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  CallResult *r = user_data;

  r->result = tether_client_call_finish (TETHER_CLIENT (source), result, &r->error);
  r->elapsed_ms = (g_get_monotonic_time () - r->started) / 1000;
  r->done = TRUE;
}

static void
call_result_clear (CallResult *r)
{
  g_clear_pointer (&r->result, g_variant_unref);
  g_clear_error (&r->error);
  r->done = FALSE;
}

static void
client_call_start (TetherClient *client,
                   const char   *method,
                   GVariant     *params,
                   int           timeout,
                   CallResult   *r)
{
  r->started = g_get_monotonic_time ();
  tether_client_call_async (client, method, params, timeout, NULL, client_call_cb, r);
}

static void
client_call (TetherClient *client,
             const char   *method,
             GVariant     *params,
             int           timeout,
             CallResult   *r)
{
  client_call_start (client, method, params, timeout, r);
  TETHER_TEST_WAIT_UNTIL (r->done);
}

static GVariant *
work_params (gint64 steps,
             gint64 delay_ms)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "steps", "x", steps);
  g_variant_dict_insert (&dict, "delay_ms", "x", delay_ms);
  return g_variant_dict_end (&dict);
}

static void
assert_echo_works (TetherClient *client)
{
  CallResult r = { 0 };

  client_call (client, "echo", g_variant_new_parsed ("['still served']"), 10000, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);
}

/* The legitimate client's steady load: one `echo` and one `work` (whose
 * progress callbacks it answers) always in flight, counted. */
typedef struct
{
  TetherClient *client;
  gboolean      running;
  guint         in_flight;
  guint         ok;
  guint         failed;
  gint64        worst_ms;
} Load;

typedef struct
{
  Load   *load;
  gint64  started;
  char   *method;
} LoadCall;

static void load_issue (Load *load, const char *method);

static void
load_call_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  LoadCall *call = user_data;
  Load *load = call->load;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = tether_client_call_finish (TETHER_CLIENT (source), result, &error);
  gint64 ms = (g_get_monotonic_time () - call->started) / 1000;

  load->in_flight--;
  load->worst_ms = MAX (load->worst_ms, ms);
  if (value != NULL)
    load->ok++;
  else
    {
      load->failed++;
      g_test_message ("legitimate %s failed after %" G_GINT64_FORMAT " ms: %s",
                      call->method, ms, error->message);
    }
  if (load->running)
    load_issue (load, call->method);
  g_free (call->method);
  g_free (call);
}

static void
load_issue (Load       *load,
            const char *method)
{
  LoadCall *call = g_new0 (LoadCall, 1);
  GVariant *params = strcmp (method, "work") == 0 ? work_params (3, 0)
                                                   : g_variant_new_parsed ("['legit']");

  call->load = load;
  call->started = g_get_monotonic_time ();
  call->method = g_strdup (method);
  load->in_flight++;
  tether_client_call_async (load->client, method, params, 10000, NULL, load_call_cb, call);
}

static void
load_start (Load         *load,
            TetherClient *client)
{
  load->client = client;
  load->running = TRUE;
  load_issue (load, "echo");
  load_issue (load, "work");
}

static void
load_stop (Load *load)
{
  load->running = FALSE;
  TETHER_TEST_WAIT_UNTIL (load->in_flight == 0);
  g_test_message ("legitimate client: %u calls succeeded, %u failed, slowest %" G_GINT64_FORMAT
                  " ms", load->ok, load->failed, load->worst_ms);
}

/* Runs the context until a spawned helper has exited: warms up GLib's
 * worker thread (child watches) before a thread baseline is taken. */
static void
warm_up_spawning (Fixture *f)
{
  Attacker *a = attacker_spawn (f, "common.py", NULL);

  TETHER_TEST_WAIT_UNTIL (a->exited);
}

/* ========================================================================= */
/* (a) Callback black holes                                                  */
/* ========================================================================= */

static void
callback_black_holes (Fixture  *f,
                      gboolean  over_tcp)
{
  const guint processes = 10, per_process = 10, total = processes * per_process;
  g_autofree char *target = NULL;
  TetherClient *client;
  Load load = { 0 };
  guint attack_peers = 0, attack_closed = 0;

  /* 100 connections of one uid (unix:) are over the default
   * max-connections-per-peer (16): that limit is another case's. */
  fixture_start_server (f, "callback-timeout=300 max-strikes=2 strike-window=60000 "
                        "max-connections-per-peer=128", FALSE);
  target = over_tcp ? tcp_target (f->ws_port) : unix_target (f);

  /* The legitimate client: root over unix:, or 127.0.0.1 over ws://. */
  client = legit_client (f, over_tcp ? f->ws_uri : f->unix_uri);
  assert_echo_works (client);
  warm_up_spawning (f);
  sampler_start (f);
  load_start (&load, client);

  for (guint p = 0; p < processes; p++)
    {
      g_autofree char *connections = g_strdup_printf ("%u", per_process);
      g_autofree char *bind = g_strdup_printf ("127.0.0.%u", 2 + p);

      attacker_spawn (f, "blackhole.py", "--target", target,
                      "--bind", over_tcp ? bind : "",
                      "--connections", connections, "--calls", "4", "--repeat",
                      "--max-seconds", "40", NULL);
    }

  /* Every attacker connection comes, strikes out and is cut off. */
  for (guint p = 0; p < processes; p++)
    {
      Attacker *a = f->attackers->pdata[p + 1];

      attacker_wait_done (a);
      g_assert_cmpuint (attacker_count (a, "ready"), ==, per_process);
      g_assert_cmpuint (attacker_count (a, "closed"), ==, per_process);
      g_assert_cmpuint (attacker_count (a, "refused"), ==, 0);
    }
  load_stop (&load);

  {
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init (&iter, f->peers);
    while (g_hash_table_iter_next (&iter, NULL, &value))
      {
        PeerRecord *record = value;

        if (strstr (record->who, over_tcp ? "tcp 127.0.0.1:" : "uid=0 ") != NULL)
          continue;
        attack_peers++;
        /* Each one was named and cut off for its callback timeouts. */
        g_assert_true (record->misbehaved & (1u << TETHER_MISBEHAVIOR_CALLBACK_TIMEOUTS));
        TETHER_TEST_WAIT_UNTIL (record->disconnected);
        attack_closed++;
      }
  }
  g_assert_cmpuint (attack_peers, ==, total);
  g_assert_cmpuint (attack_closed, ==, total);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_CALLBACK_TIMEOUTS,
                                        over_tcp ? "tcp 127.0.0." : f->attacker_tag), ==, total);

  /* One log line per action, naming who it was, as long as the log
   * limiter lets them through (TETHER_LOG_BURST per reason and window,
   * the second half for peers not named yet); then one line that says
   * how many more there were. */
  {
    guint lines = 0;

    if (over_tcp)
      for (guint p = 0; p < processes; p++)
        {
          g_autofree char *who = g_strdup_printf ("tcp 127.0.0.%u:", 2 + p);
          lines += log_count (G_LOG_LEVEL_MESSAGE, who, NULL);
        }
    else
      lines = log_count (G_LOG_LEVEL_MESSAGE, f->attacker_tag, NULL);
    g_assert_cmpuint (lines, >=, MIN (total, TETHER_LOG_BURST / 2));
    TETHER_TEST_WAIT_UNTIL (lines + log_suppressed ("callback-timeouts") == total);
  }

  /* The legitimate client was served throughout. */
  g_assert_cmpuint (load.failed, ==, 0);
  g_assert_cmpuint (load.ok, >=, 10);
  assert_echo_works (client);

  {
    g_autoptr(TetherStatistics) stats = tether_server_get_statistics (f->server);

    g_test_message ("server: %" G_GUINT64_FORMAT " callbacks timed out, %" G_GUINT64_FORMAT
                    " peers cut off, %" G_GUINT64_FORMAT " connections",
                    stats->timed_out, stats->peers_cut_off, stats->connections);
    g_assert_cmpuint (stats->peers_cut_off, >=, total);
    g_assert_cmpuint (stats->timed_out, >=, 2 * total);
    g_assert_cmpuint (stats->connections, ==, 1);
  }

  /* No thread per black hole; memory bounded. */
  assert_figures (f, "callback black holes", 30 * 1024, 2);
}

static void
test_callback_black_holes_unix (Fixture       *f,
                                gconstpointer  user_data)
{
  callback_black_holes (f, FALSE);
}

static void
test_callback_black_holes_ws (Fixture       *f,
                              gconstpointer  user_data)
{
  callback_black_holes (f, TRUE);
}

/* ========================================================================= */
/* (b) A peer that stops reading                                             */
/* ========================================================================= */

static void
test_stopped_reading (Fixture       *f,
                      gconstpointer  user_data)
{
  g_autofree char *target = NULL;
  TetherClient *client;
  Attacker *a;
  const char *line;

  fixture_start_server (f, "max-unsent-bytes=262144", FALSE);
  target = unix_target (f);
  client = legit_client (f, f->unix_uri);
  warm_up_spawning (f);
  sampler_start (f);

  /* 1000 echo requests of 64 KiB each: 64 MiB of answers, never read. */
  a = attacker_spawn (f, "stop_reading.py", "--target", target,
                      "--size", "65536", "--count", "1000", "--max-seconds", "40", NULL);
  attacker_wait_done (a);

  line = attacker_find (a, "cut-off");
  g_assert_nonnull (line);
  g_test_message ("cut off after %" G_GINT64_FORMAT " requests of 64 KiB", word_int (line, 1));
  g_assert_cmpint (word_int (line, 1), <, 1000);

  /* The server let go of it, and said whom and why, once. */
  TETHER_TEST_WAIT_UNTIL (count_peers (f, f->attacker_tag, TRUE) == 1);
  g_assert_cmpuint (count_peers (f, f->attacker_tag, FALSE), ==, 1);
  g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, f->attacker_tag, "stopped reading"), ==, 1);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_STOPPED_READING, f->attacker_tag),
                    ==, 1);
  g_assert_cmpuint (f->misbehaviors->len, ==, 1);
  {
    g_autoptr(TetherStatistics) stats = tether_server_get_statistics (f->server);

    g_assert_cmpuint (stats->peers_cut_off, ==, 1);
    g_assert_cmpuint (stats->bytes_queued, <, 262144);
  }

  assert_echo_works (client);
  /* 64 MiB were asked for; the backlog bound is 256 KiB. */
  assert_figures (f, "stopped reading", 24 * 1024, 2);
}

/* The same, driven from the server: it pushes notifications to a peer
 * that reads nothing, until the bound cuts the peer off. */
static void
test_stopped_reading_notifications (Fixture       *f,
                                    gconstpointer  user_data)
{
  g_autofree char *target = NULL;
  g_autofree char *blob = g_malloc (65536 + 1);
  g_autoptr(GVariant) params = NULL;
  TetherPeer *peer;
  Attacker *a;
  guint sent = 0;

  fixture_start_server (f, "max-unsent-bytes=262144", FALSE);
  target = unix_target (f);
  memset (blob, 'n', 65536);
  blob[65536] = '\0';
  params = g_variant_ref_sink (g_variant_new_parsed ("[%s]", blob));
  warm_up_spawning (f);
  sampler_start (f);

  /* --count 0: it upgrades, then neither sends nor reads. */
  a = attacker_spawn (f, "stop_reading.py", "--target", target, "--count", "0",
                      "--linger", "20", "--max-seconds", "30", NULL);
  TETHER_TEST_WAIT_UNTIL ((peer = find_peer (f, f->attacker_tag)) != NULL);

  /* Up to 1000 × 64 KiB, letting the socket drain between sends. */
  while (sent < 1000 && !tether_peer_is_closed (peer))
    {
      g_autoptr(GError) error = NULL;

      if (!tether_peer_send_notification (peer, "update", params, &error))
        break;
      sent++;
      while (g_main_context_iteration (f->context, FALSE))
        ;
    }
  g_test_message ("%u notifications of 64 KiB queued before the cut", sent);
  g_assert_cmpuint (sent, <, 1000);
  TETHER_TEST_WAIT_UNTIL (count_peers (f, f->attacker_tag, TRUE) == 1);
  g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, f->attacker_tag, "stopped reading"), ==, 1);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_STOPPED_READING, f->attacker_tag),
                    ==, 1);
  attacker_wait_done (a);
  assert_figures (f, "stopped reading (notifications)", 24 * 1024, 2);
}

/* ========================================================================= */
/* (c) Slowloris                                                             */
/* ========================================================================= */

/* Each connection of @a was closed after @min_ms to @max_ms. */
static void
assert_all_closed_between (Attacker *a,
                           guint     connections,
                           gint64    min_ms,
                           gint64    max_ms)
{
  guint closed = 0;

  for (guint i = 0; i < a->lines->len; i++)
    {
      const char *line = a->lines->pdata[i];

      if (!line_matches (line, "closed"))
        continue;
      closed++;
      g_assert_cmpint (word_int (line, 2), >=, min_ms);
      g_assert_cmpint (word_int (line, 2), <=, max_ms);
    }
  g_assert_cmpuint (attacker_count (a, "open"), ==, 0);
  g_assert_cmpuint (closed, ==, connections);
}

static void
test_slowloris (Fixture       *f,
                gconstpointer  user_data)
{
  g_autofree char *unix_t = NULL;
  g_autofree char *tcp_t = NULL;
  TetherClient *client;
  Attacker *half, *no_hello, *half_tcp;

  fixture_start_server (f, "handshake-timeout=300", FALSE);
  unix_t = unix_target (f);
  tcp_t = tcp_target (f->ws_port);
  client = legit_client (f, f->unix_uri);

  /* Half a request head, dripped a byte every 50 ms; an upgrade to
   * tether.v1 and no hello; the same half head over TCP from 127.0.0.2. */
  half = attacker_spawn (f, "slowloris.py", "--target", unix_t, "--mode", "half-head",
                         "--connections", "5", NULL);
  no_hello = attacker_spawn (f, "slowloris.py", "--target", unix_t, "--mode", "no-hello",
                             "--connections", "5", NULL);
  half_tcp = attacker_spawn (f, "slowloris.py", "--target", tcp_t, "--bind", "127.0.0.2",
                             "--mode", "half-head", "--connections", "5", NULL);
  attacker_wait_done (half);
  attacker_wait_done (no_hello);
  attacker_wait_done (half_tcp);

  /* Closed at the handshake deadline: not before, not much after, and
   * not kept alive by the dripping. */
  assert_all_closed_between (half, 5, 250, 3000);
  assert_all_closed_between (no_hello, 5, 250, 3000);
  assert_all_closed_between (half_tcp, 5, 250, 3000);

  /* None of them ever became a peer; each was reported, and both
   * attackers named in the log (a line each while the limiter lets them
   * through, then a count of the rest). */
  g_assert_cmpuint (count_peers (f, f->attacker_tag, FALSE), ==, 0);
  g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, f->attacker_tag, NULL), >=, 1);
  g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, "tcp 127.0.0.2:", NULL), >=, 1);
  TETHER_TEST_WAIT_UNTIL (log_count (G_LOG_LEVEL_MESSAGE, f->attacker_tag, NULL) +
                          log_count (G_LOG_LEVEL_MESSAGE, "tcp 127.0.0.2:", NULL) +
                          log_suppressed ("handshake-timeout") == 15);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_HANDSHAKE_TIMEOUT, f->attacker_tag),
                    ==, 10);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_HANDSHAKE_TIMEOUT, "tcp 127.0.0.2:"),
                    ==, 5);
  assert_echo_works (client);
}

/* Counts @a's connections closed within @fast_ms ("at once") and later. */
static void
count_closed (Attacker *a,
              gint64    fast_ms,
              guint    *at_once,
              guint    *later)
{
  for (guint i = 0; i < a->lines->len; i++)
    {
      const char *line = a->lines->pdata[i];

      if (!line_matches (line, "closed"))
        continue;
      if (word_int (line, 2) < fast_ms)
        (*at_once)++;
      else
        (*later)++;
    }
}

/* TLS slowloris, both kinds. Connections that dribble (or never send)
 * their ClientHello get no thread and no TLS slot: they cost a socket
 * until the handshake deadline, and threads stay flat. Connections that
 * send a whole ClientHello and stall hold a glib-networking thread each:
 * three per address at most, eight in all; beyond that they are refused,
 * or the heaviest address gives way, at once. A legitimate wss:// client
 * connects during both. */
static void
test_slowloris_tls (Fixture       *f,
                    gconstpointer  user_data)
{
  const guint handshake_ms = 1500;
  g_autofree char *limits = NULL;
  g_autofree char *target = NULL;
  Attacker *silent, *partial, *stall2, *stall3;
  TetherClient *client;
  GError *connect_error = NULL;
  gint64 started;
  guint at_once = 0, later = 0;

  limits = g_strdup_printf ("handshake-timeout=%u max-tls-handshakes=8 "
                            "max-tls-handshakes-per-address=3", handshake_ms);
  fixture_start_server (f, limits, TRUE);
  target = tcp_target (f->wss_port);

  /* Warm up: a TLS handshake each way has run in GLib's pool. */
  client = legit_client (f, f->wss_uri);
  assert_echo_works (client);
  warm_up_spawning (f);
  sampler_start (f);

  /* Phase 1: 8 silent connections from 127.0.0.2, 8 stuck mid-record
   * from 127.0.0.3: no whole ClientHello, so no thread, no slot. */
  silent = attacker_spawn (f, "slowloris.py", "--target", target, "--bind", "127.0.0.2",
                           "--mode", "tls-silent", "--connections", "8", NULL);
  partial = attacker_spawn (f, "slowloris.py", "--target", target, "--bind", "127.0.0.3",
                            "--mode", "tls-partial", "--connections", "8", NULL);
  TETHER_TEST_WAIT_UNTIL (attacker_count (silent, "connected") == 8 &&
                          attacker_count (partial, "connected") == 8);

  started = g_get_monotonic_time ();
  client = client_new (f, f->wss_uri);
  connect_error = tether_test_client_connect (client);
  g_assert_no_error (connect_error);
  g_test_message ("legitimate wss client connected in %" G_GINT64_FORMAT " ms during the attack",
                  (g_get_monotonic_time () - started) / 1000);
  assert_echo_works (client);

  attacker_wait_done (silent);
  attacker_wait_done (partial);
  g_assert_cmpuint (attacker_count (silent, "open") + attacker_count (partial, "open"), ==, 0);
  assert_all_closed_between (silent, 8, handshake_ms / 2, handshake_ms + 1500);
  assert_all_closed_between (partial, 8, handshake_ms / 2, handshake_ms + 1500);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_TOO_MANY_CONNECTIONS, "tls 127.0.0."), ==, 0);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_HANDSHAKE_TIMEOUT, "127.0.0.2:"), ==, 8);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_HANDSHAKE_TIMEOUT, "127.0.0.3:"), ==, 8);
  /* Not a thread for any of them (our own client's handshake aside). */
  assert_figures (f, "TLS slowloris, no ClientHello", 32 * 1024, 2);

  /* Phase 2: 8 whole ClientHellos that stall, from each of 127.0.0.4
   * and .5: three per address hold a thread, the other five of each are
   * refused at once; the held ones end at the deadline. */
  sampler_start (f);
  stall2 = attacker_spawn (f, "slowloris.py", "--target", target, "--bind", "127.0.0.4",
                           "--mode", "tls-stall", "--connections", "8", NULL);
  stall3 = attacker_spawn (f, "slowloris.py", "--target", target, "--bind", "127.0.0.5",
                           "--mode", "tls-stall", "--connections", "8", NULL);
  attacker_wait_done (stall2);
  attacker_wait_done (stall3);
  assert_all_closed_between (stall2, 8, 0, handshake_ms + 1500);
  assert_all_closed_between (stall3, 8, 0, handshake_ms + 1500);
  count_closed (stall2, handshake_ms / 2, &at_once, &later);
  count_closed (stall3, handshake_ms / 2, &at_once, &later);
  g_test_message ("phase 2: %u connections closed at once, %u at the deadline", at_once, later);
  g_assert_cmpuint (at_once, ==, 10);
  g_assert_cmpuint (later, ==, 6);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_TOO_MANY_CONNECTIONS, "127.0.0.4:"), ==, 5);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_TOO_MANY_CONNECTIONS, "127.0.0.5:"), ==, 5);

  /* Phase 3: five addresses, three stalls each (within the per-address
   * cap), fifteen against a total of eight: seven closed at once —
   * refused, or (fair shares) the heaviest address's oldest handshake
   * gave way to a newcomer's. */
  {
    Attacker *wave[5];

    at_once = later = 0;
    for (guint i = 0; i < G_N_ELEMENTS (wave); i++)
      {
        g_autofree char *bind = g_strdup_printf ("127.0.0.%u", 6 + i);

        wave[i] = attacker_spawn (f, "slowloris.py", "--target", target, "--bind", bind,
                                  "--mode", "tls-stall", "--connections", "3", NULL);
      }
    for (guint i = 0; i < G_N_ELEMENTS (wave); i++)
      {
        attacker_wait_done (wave[i]);
        assert_all_closed_between (wave[i], 3, 0, handshake_ms + 1500);
        count_closed (wave[i], handshake_ms / 2, &at_once, &later);
      }
    g_test_message ("phase 3: %u connections closed at once, %u at the deadline", at_once, later);
    g_assert_cmpuint (at_once, ==, 7);
    g_assert_cmpuint (later, ==, 8);
  }

  /* Handshake threads stayed within the cap (plus our clients' own).
   * Each handshake in progress holds a glib-networking pool thread, and
   * each such thread costs this process about 4-5 MiB of RSS (measured):
   * the cap is what bounds both. */
  assert_figures (f, "TLS slowloris, stalled handshakes", 64 * 1024, 8 + 3);

  /* Afterwards, a new client connects as ever. */
  client = legit_client (f, f->wss_uri);
  assert_echo_works (client);
}

/* ========================================================================= */
/* (d) Oversized and over-deep messages                                      */
/* ========================================================================= */

/* Runs oversize.py's @mode on its own connection, against a 256 KiB
 * message cap, and checks the server's side. */
static void
oversized (Fixture    *f,
           const char *mode)
{
  g_autofree char *target = NULL;
  g_autofree char *closed = g_strconcat ("closed ", mode, NULL);
  gboolean deep = strcmp (mode, "deep") == 0;
  TetherClient *client;
  Attacker *a;
  const char *line;
  char buffer[64];

  fixture_start_server (f, "max-message-size=262144", FALSE);
  target = unix_target (f);
  client = legit_client (f, f->unix_uri);
  warm_up_spawning (f);
  sampler_start (f);

  a = attacker_spawn (f, "oversize.py", "--target", target, "--modes", mode,
                      "--max-seconds", "30", NULL);
  attacker_wait_done (a);
  g_assert_cmpuint (attacker_count (a, "open"), ==, 0);
  TETHER_TEST_WAIT_UNTIL (count_peers (f, f->attacker_tag, TRUE) == 1);

  if (deep)
    {
      /* 100,000 '[' (200 KB, under the size cap) is answered -32600 with
       * id null, and the connection lives on. */
      line = attacker_find (a, "deep");
      g_assert_nonnull (line);
      g_assert_cmpstr (word (line, 1, buffer), ==, "-32600");
      g_assert_cmpstr (word (line, 2, buffer), ==, "null");
      g_assert_nonnull (attacker_find (a, "deep-echo ok"));
      g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, f->attacker_tag, NULL), ==, 0);
      g_assert_cmpuint (f->misbehaviors->len, ==, 0);
    }
  else
    {
      /* Closed at once: on the header that announces 1 GiB (of which
       * 64 KiB came), once 2 MiB of 1 KiB fragments pass 256 KiB, on a
       * compressed frame (never negotiated). */
      line = attacker_find (a, closed);
      g_assert_nonnull (line);
      g_assert_cmpint (word_int (line, 2), <, 2000);
      if (strcmp (mode, "fragments") == 0)
        {
          g_test_message ("%" G_GINT64_FORMAT " fragments of 1 KiB went out before the cut",
                          word_int (line, 3));
          g_assert_cmpint (word_int (line, 3), <, 2048);
        }
      /* Named once, with the evidence. */
      g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, f->attacker_tag, NULL), ==, 1);
      g_assert_cmpuint (f->misbehaviors->len, ==, 1);
      {
        Misbehavior *m = f->misbehaviors->pdata[0];
        g_autoptr(GEnumClass) reasons = g_type_class_ref (TETHER_TYPE_MISBEHAVIOR);

        g_test_message ("peer-misbehaved: %s: %s",
                        g_enum_get_value (reasons, m->reason)->value_nick, m->details);
      }
      /* Sizes are MESSAGE_TOO_LARGE; a compressed frame (RSV1 without a
       * negotiated extension) breaks RFC 6455: PROTOCOL_VIOLATION. */
      g_assert_cmpuint (count_misbehaviors (f, strcmp (mode, "compressed") == 0
                                                 ? TETHER_MISBEHAVIOR_PROTOCOL_VIOLATION
                                                 : TETHER_MISBEHAVIOR_MESSAGE_TOO_LARGE,
                                            f->attacker_tag), ==, 1);
      {
        g_autoptr(TetherStatistics) stats = tether_server_get_statistics (f->server);

        g_assert_cmpuint (stats->peers_cut_off, ==, 1);
      }
    }

  assert_echo_works (client);
  /* Far below what was announced (1 GiB) or sent (2 MiB of fragments). */
  assert_figures (f, mode, 16 * 1024, 2);
}

static void
test_oversized_big_frame (Fixture       *f,
                          gconstpointer  user_data)
{
  oversized (f, "big-frame");
}

static void
test_oversized_fragments (Fixture       *f,
                          gconstpointer  user_data)
{
  oversized (f, "fragments");
}

static void
test_oversized_compressed (Fixture       *f,
                           gconstpointer  user_data)
{
  oversized (f, "compressed");
}

static void
test_oversized_deep (Fixture       *f,
                     gconstpointer  user_data)
{
  oversized (f, "deep");
}

/* ========================================================================= */
/* (e) Too many connections from one peer                                    */
/* ========================================================================= */

static void
assert_four_of_six (Attacker *a)
{
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *ok = g_strdup_printf ("ok %u", i);
      g_autofree char *recheck = g_strdup_printf ("recheck %u ok", i);

      g_assert_nonnull (attacker_find (a, ok));
      g_assert_nonnull (attacker_find (a, recheck));
    }
  g_assert_cmpuint (attacker_count (a, "ok"), ==, 4);
  g_assert_cmpuint (attacker_count (a, "refused"), ==, 2);
}

static void
test_connections_per_peer (Fixture       *f,
                           gconstpointer  user_data)
{
  g_autofree char *unix_t = NULL;
  g_autofree char *tcp_t = NULL;
  TetherClient *client;
  Attacker *local, *remote;

  fixture_start_server (f, "max-connections-per-peer=4", FALSE);
  unix_t = unix_target (f);
  tcp_t = tcp_target (f->ws_port);
  client = legit_client (f, f->unix_uri);

  local = attacker_spawn (f, "conn_flood.py", "--target", unix_t, "--connections", "6", NULL);
  remote = attacker_spawn (f, "conn_flood.py", "--target", tcp_t, "--bind", "127.0.0.2",
                           "--connections", "6", NULL);
  TETHER_TEST_WAIT_UNTIL (attacker_find (local, "holding") != NULL &&
                          attacker_find (remote, "holding") != NULL);
  attacker_dump (local);
  attacker_dump (remote);

  /* The first four work, before and after the refusals; two refused. */
  assert_four_of_six (local);
  assert_four_of_six (remote);
  g_assert_cmpuint (count_peers (f, f->attacker_tag, FALSE), ==, 4);
  g_assert_cmpuint (count_peers (f, "tcp 127.0.0.2:", FALSE), ==, 4);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_TOO_MANY_CONNECTIONS,
                                        f->attacker_tag),
                    ==, 2);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_TOO_MANY_CONNECTIONS,
                                        "tcp 127.0.0.2:"),
                    ==, 2);
  g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, f->attacker_tag, NULL), ==, 2);
  g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, "tcp 127.0.0.2:", NULL), ==, 2);

  /* Other identities are not affected: root on unix:, 127.0.0.1 on ws://. */
  assert_echo_works (client);
  client = legit_client (f, f->ws_uri);
  assert_echo_works (client);
}

/* ========================================================================= */
/* (f) Unsolicited and duplicate responses                                   */
/* ========================================================================= */

static void
test_unsolicited_responses (Fixture       *f,
                            gconstpointer  user_data)
{
  g_autofree char *target = NULL;
  TetherPeer *peer;
  Attacker *a;

  fixture_start_server (f, "", FALSE);
  target = unix_target (f);

  a = attacker_spawn (f, "unsolicited.py", "--target", target, NULL);
  TETHER_TEST_WAIT_UNTIL (attacker_find (a, "echo") != NULL || a->eof);

  /* Ignored: never answered, and the connection kept working. */
  g_assert_nonnull (attacker_find (a, "silent"));
  g_assert_nonnull (attacker_find (a, "answered-twice"));
  g_assert_nonnull (attacker_find (a, "work ok"));
  g_assert_nonnull (attacker_find (a, "echo ok"));
  peer = find_peer (f, f->attacker_tag);
  g_assert_nonnull (peer);

  /* Logged, each of them. */
  g_assert_cmpuint (log_count (G_LOG_LEVEL_MASK, "99999", NULL), >=, 1);
  g_assert_cmpuint (log_count (G_LOG_LEVEL_MASK, "made-up", NULL), >=, 1);
  {
    g_autoptr(TetherStatistics) stats = tether_peer_get_statistics (peer);
    g_autoptr(TetherStatistics) total = tether_server_get_statistics (f->server);

    g_assert_cmpuint (stats->unsolicited_responses, ==, 3);
    g_assert_cmpuint (total->unsolicited_responses, ==, 3);
  }
  g_assert_cmpuint (f->misbehaviors->len, ==, 0);
  attacker_wait_done (a);
}

/* ========================================================================= */
/* (g) A hostile server                                                      */
/* ========================================================================= */

static void
client_disconnected_cb (TetherClient *client,
                        GError       *error,
                        GError      **out)
{
  g_assert_null (*out);
  *out = error != NULL ? g_error_copy (error)
                       : g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "(none)");
}

/* Spawns hostile_server.py with @modes and returns its ws:// URI. */
static char *
hostile_server (Fixture    *f,
                const char *modes,
                Attacker  **out)
{
  Attacker *a = attacker_spawn (f, "hostile_server.py", "--modes", modes, "--max-seconds", "40",
                                NULL);
  const char *line;

  TETHER_TEST_WAIT_UNTIL ((line = attacker_find (a, "port")) != NULL || a->eof);
  g_assert_nonnull (line);
  *out = a;
  return g_strdup_printf ("ws://127.0.0.1:%" G_GINT64_FORMAT, word_int (line, 1));
}

static void
test_hostile_server_silent (Fixture       *f,
                            gconstpointer  user_data)
{
  g_autofree char *uri = NULL;
  Attacker *a;
  TetherClient *client;
  CallResult r = { 0 };
  CallResult pending[8] = { 0 };
  GError *disconnected = NULL;

  uri = hostile_server (f, "silent", &a);
  client = client_new (f, uri);
  g_object_set (client, "max-pending-calls", 8, NULL);
  g_signal_connect (client, "disconnected", G_CALLBACK (client_disconnected_cb), &disconnected);
  g_assert_null (tether_test_client_connect (client));

  /* A call it never answers fails at its deadline. */
  client_call (client, "anything", NULL, 300, &r);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (r.elapsed_ms, >=, 250);
  g_assert_cmpint (r.elapsed_ms, <, 3000);
  call_result_clear (&r);

  /* Eight pending fill the client's bound; the ninth fails at once. */
  for (guint i = 0; i < G_N_ELEMENTS (pending); i++)
    client_call_start (client, "anything", NULL, 20000, &pending[i]);
  TETHER_TEST_WAIT_UNTIL (attacker_count (a, "request") >= 1 + G_N_ELEMENTS (pending));
  client_call (client, "one-too-many", NULL, 20000, &r);
  g_assert_error (r.error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED);
  g_assert_cmpint (r.elapsed_ms, <, 250);
  call_result_clear (&r);
  for (guint i = 0; i < G_N_ELEMENTS (pending); i++)
    g_assert_false (pending[i].done);
  {
    g_autoptr(TetherStatistics) stats = tether_client_get_statistics (client);

    g_assert_cmpuint (stats->pending_calls, ==, 8);
    g_assert_cmpuint (stats->timed_out, ==, 1);
    g_assert_cmpuint (stats->rejected, ==, 1);
  }

  /* Closing fails every pending call at once. */
  tether_client_close (client);
  for (guint i = 0; i < G_N_ELEMENTS (pending); i++)
    {
      TETHER_TEST_WAIT_UNTIL (pending[i].done);
      g_assert_nonnull (pending[i].error);
      call_result_clear (&pending[i]);
    }
  g_clear_error (&disconnected);
}

static void
test_hostile_server_flood (Fixture       *f,
                           gconstpointer  user_data)
{
  g_autofree char *uri = NULL;
  Attacker *a;
  TetherClient *client;
  gint64 started;

  uri = hostile_server (f, "flood", &a);
  client = client_new (f, uri);
  /* Incoming callbacks get at most 500 ms, whatever they ask for. */
  g_object_set (client, "max-callback-timeout", 500, "callback-timeout", 500, NULL);
  g_object_set (client, "max-invocations", 8, NULL);
  started = g_get_monotonic_time ();
  g_assert_null (tether_test_client_connect (client));

  /* 100 callbacks at once: 8 are held, 92 refused -32003 at once. */
  TETHER_TEST_WAIT_UNTIL (attacker_count (a, "response") >= 92);
  {
    guint rejected = 0;

    for (guint i = 0; i < a->lines->len; i++)
      {
        const char *line = a->lines->pdata[i];

        if (line_matches (line, "response") && word_int (line, 3) == -32003)
          {
            g_assert_cmpint (word_int (line, 4), <, 400);
            rejected++;
          }
      }
    g_assert_cmpuint (rejected, ==, 92);
  }
  g_assert_cmpuint (f->held->len, ==, 8);

  /* The enormous budget they asked for was clamped: every held callback
   * is cancelled by the client's own deadline. */
  TETHER_TEST_WAIT_UNTIL (f->held_cancelled == f->held->len);
  g_test_message ("held callbacks cancelled after %" G_GINT64_FORMAT " ms",
                  (g_get_monotonic_time () - started) / 1000);
  g_assert_cmpint ((g_get_monotonic_time () - started) / 1000, <, 5000);
  answer_held (f);
  g_assert_true (tether_client_is_connected (client));
}

static void
hostile_server_oversize (Fixture    *f,
                         const char *mode)
{
  g_autofree char *uri = NULL;
  Attacker *a;
  TetherClient *client;
  CallResult r = { 0 };
  GError *disconnected = NULL;

  uri = hostile_server (f, mode, &a);
  client = client_new (f, uri);
  g_object_set (client, "max-message-size", 65536, NULL);
  g_signal_connect (client, "disconnected", G_CALLBACK (client_disconnected_cb), &disconnected);
  g_assert_null (tether_test_client_connect (client));
  warm_up_spawning (f);
  sampler_start (f);

  /* The first call makes it send: the client closes the connection. */
  client_call (client, "trigger", NULL, 10000, &r);
  g_assert_nonnull (r.error);
  g_test_message ("%s: the call failed with %s", mode, r.error->message);
  g_assert_false (g_error_matches (r.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
  g_assert_cmpint (r.elapsed_ms, <, 5000);
  call_result_clear (&r);
  TETHER_TEST_WAIT_UNTIL (disconnected != NULL);
  g_test_message ("%s: disconnected: %s", mode, disconnected->message);
  g_assert_false (tether_client_is_connected (client));
  TETHER_TEST_WAIT_UNTIL (attacker_find (a, "closed 0") != NULL);
  g_clear_error (&disconnected);

  assert_figures (f, mode, 16 * 1024, 2);
}

static void
test_hostile_server_oversize (Fixture       *f,
                              gconstpointer  user_data)
{
  hostile_server_oversize (f, "oversize");
}

static void
test_hostile_server_fragments (Fixture       *f,
                               gconstpointer  user_data)
{
  hostile_server_oversize (f, "fragments");
}

static void
test_hostile_server_announce (Fixture       *f,
                              gconstpointer  user_data)
{
  hostile_server_oversize (f, "announce");
}

/* ========================================================================= */
/* Further limits of the specification                                       */
/* ========================================================================= */

/* Idle timeout: a peer that answers no ping is closed; one that answers
 * (pongs count) stays. */
static void
test_idle (Fixture       *f,
           gconstpointer  user_data)
{
  g_autofree char *target = NULL;
  TetherClient *client;
  Attacker *silent, *polite;

  /* libsoup pings in whole seconds: 1 s pings, a 2.5 s idle timeout. */
  fixture_start_server (f, "idle-timeout=2500 keepalive-interval=1000", FALSE);
  target = unix_target (f);
  client = legit_client (f, f->unix_uri);

  silent = attacker_spawn (f, "slowloris.py", "--target", target, "--mode", "plain-idle",
                           "--connections", "3", "--max-open", "8", NULL);
  polite = attacker_spawn (f, "conn_flood.py", "--target", target, "--connections", "1",
                           "--hold", "6", NULL);
  attacker_wait_done (silent);
  g_assert_cmpuint (attacker_count (silent, "closed"), ==, 3);
  assert_all_closed_between (silent, 3, 2400, 5500);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_IDLE_TIMEOUT, f->attacker_tag),
                    ==, 3);

  /* The polite one (python3-websockets answers pings by itself) and our
   * own idle client (libsoup answers pings) outlived two idle timeouts. */
  attacker_wait_done (polite);
  g_assert_nonnull (attacker_find (polite, "holding"));
  g_assert_true (tether_client_is_connected (client));
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_IDLE_TIMEOUT, "uid=0 "), ==, 0);
  g_assert_cmpuint (f->misbehaviors->len, ==, 3);
  assert_echo_works (client);
}

/* Concurrent incoming calls per connection: the extra ones are answered
 * -32003 at once. */
static void
test_invocations_per_peer (Fixture       *f,
                           gconstpointer  user_data)
{
  g_autofree char *target = NULL;
  Attacker *a;
  guint rejected = 0, ok = 0;

  fixture_start_server (f, "max-invocations-per-peer=8", FALSE);
  target = unix_target (f);
  a = attacker_spawn (f, "blackhole.py", "--target", target, "--method", "sleep",
                      "--params", "{\"ms\": 1500}", "--calls", "20", "--max-calls", "20",
                      "--max-seconds", "6", NULL);
  TETHER_TEST_WAIT_UNTIL (attacker_count (a, "answer") == 20);
  for (guint i = 0; i < a->lines->len; i++)
    {
      const char *line = a->lines->pdata[i];
      char buffer[64];

      if (!line_matches (line, "answer"))
        continue;
      if (strcmp (word (line, 3, buffer), "ok") == 0)
        ok++;
      else
        {
          g_assert_cmpint (word_int (line, 3), ==, -32003);
          g_assert_cmpint (word_int (line, 4), <, 1000);
          rejected++;
        }
    }
  g_assert_cmpuint (ok, ==, 8);
  g_assert_cmpuint (rejected, ==, 12);
  {
    g_autoptr(TetherStatistics) stats = tether_server_get_statistics (f->server);
    g_assert_cmpuint (stats->rejected, ==, 12);
  }
}

/* All peers together: max-total-callbacks fails the callbacks beyond it
 * at once, even where each peer is within its own bound. */
static void
test_total_callbacks (Fixture       *f,
                      gconstpointer  user_data)
{
  g_autofree char *target = NULL;
  Attacker *a;
  guint fast_rejections = 0, timeouts = 0;

  /* Strikes out of the way: this is about the quota alone. */
  fixture_start_server (f, "max-pending-callbacks=4 max-total-callbacks=6 callback-timeout=1500 "
                        "max-strikes=100", FALSE);
  target = unix_target (f);
  a = attacker_spawn (f, "blackhole.py", "--target", target, "--connections", "3",
                      "--calls", "4", "--max-calls", "4", "--max-seconds", "6", NULL);
  TETHER_TEST_WAIT_UNTIL (attacker_count (a, "answer") == 12);
  for (guint i = 0; i < a->lines->len; i++)
    {
      const char *line = a->lines->pdata[i];

      if (!line_matches (line, "answer"))
        continue;
      if (word_int (line, 3) == -32003 && word_int (line, 4) < 1000)
        fast_rejections++;
      else
        timeouts++;
    }
  g_assert_cmpuint (fast_rejections, ==, 6);
  g_assert_cmpuint (timeouts, ==, 6);
}

/* Quarantine instead of disconnection: the peer stays connected, its
 * calls are refused and callbacks to it fail at once, until the
 * quarantine ends. */
static void
peer_call_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CallResult *r = user_data;

  r->result = tether_peer_call_finish (TETHER_PEER (source), result, &r->error);
  r->elapsed_ms = (g_get_monotonic_time () - r->started) / 1000;
  r->done = TRUE;
}

static void
test_quarantine (Fixture       *f,
                 gconstpointer  user_data)
{
  g_autofree char *target = NULL;
  TetherPeer *peer;
  Attacker *a;
  CallResult r = { 0 };

  fixture_start_server (f, "callback-timeout=200 max-strikes=2 misbehavior-action=quarantine "
                        "quarantine-duration=3000", FALSE);
  target = unix_target (f);

  /* Two work calls whose callbacks it never answers: two strikes. Then
   * it keeps calling echo until --max-calls. */
  a = attacker_spawn (f, "blackhole.py", "--target", target, "--calls", "2", "--max-calls", "2",
                      "--max-seconds", "10", NULL);
  TETHER_TEST_WAIT_UNTIL ((peer = find_peer (f, f->attacker_tag)) != NULL);
  TETHER_TEST_WAIT_UNTIL (count_misbehaviors (f, TETHER_MISBEHAVIOR_CALLBACK_TIMEOUTS,
                                              f->attacker_tag) == 1);

  TETHER_TEST_WAIT_UNTIL (attacker_count (a, "answer") == 2);

  /* Quarantined, not disconnected: a callback fails at once. */
  g_assert_false (tether_peer_is_closed (peer));
  r.started = g_get_monotonic_time ();
  tether_peer_call_async (peer, "progress", NULL, 5000, NULL, peer_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_error (r.error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED);
  g_assert_cmpint (r.elapsed_ms, <, 100);
  call_result_clear (&r);
  g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, f->attacker_tag, NULL), ==, 1);

  /* And after the quarantine, callbacks are made again (and time out,
   * since it still does not answer). */
  tether_test_spin_ms (3100);
  g_assert_false (tether_peer_is_closed (peer));
  r.started = g_get_monotonic_time ();
  tether_peer_call_async (peer, "progress", NULL, 300, NULL, peer_call_cb, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  call_result_clear (&r);
}

/* Leases: a client may extend a callback's deadline while its user
 * decides, never past the server's max-callback-timeout nor past the
 * deadline of the call that caused it. */
typedef struct
{
  Fixture *f;
  guint    extend_ms;
  guint    answer_after_ms;  /* 0: never */
} Lease;

static gboolean
lease_answer_cb (gpointer user_data)
{
  TetherInvocation *invocation = user_data;

  if (!tether_invocation_has_replied (invocation))
    tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
  return G_SOURCE_REMOVE;
}

static void
cli_confirm_with_lease (TetherInvocation *invocation,
                        gpointer          user_data)
{
  Lease *lease = user_data;
  g_autoptr(GError) error = NULL;
  gboolean extended = tether_invocation_extend_deadline (invocation, lease->extend_ms, &error);

  g_test_message ("extend_deadline (%u ms): %s", lease->extend_ms,
                  extended ? "ok" : error->message);
  if (lease->answer_after_ms > 0)
    {
      GSource *source = g_timeout_source_new (lease->answer_after_ms);

      g_source_set_callback (source, lease_answer_cb, g_object_ref (invocation), g_object_unref);
      g_source_attach (source, lease->f->context);
      g_source_unref (source);
    }
  else
    cli_hold (invocation, lease->f);
}

static void
test_lease (Fixture       *f,
            gconstpointer  user_data)
{
  TetherClient *client;
  CallResult r = { 0 };
  Lease lease = { f, 0, 0 };

  fixture_start_server (f, "callback-timeout=200 max-callback-timeout=800", FALSE);
  client = client_new (f, f->unix_uri);
  tether_client_add_method (client, "confirm", cli_confirm_with_lease, &lease, NULL);
  g_assert_null (tether_test_client_connect (client));

  /* Extended by 600 ms and answered after 500: beyond the 200 ms default,
   * within the lease. */
  lease.extend_ms = 600;
  lease.answer_after_ms = 500;
  client_call (client, "ask", g_variant_new_parsed ("{'question': <'ok?'>}"), 5000, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);

  /* Extended by a minute and never answered: cut at max-callback-timeout. */
  lease.extend_ms = 60000;
  lease.answer_after_ms = 0;
  client_call (client, "ask", g_variant_new_parsed ("{'question': <'forever?'>}"), 5000, &r);
  g_assert_nonnull (r.error);
  g_test_message ("unbounded lease ended after %" G_GINT64_FORMAT " ms", r.elapsed_ms);
  g_assert_cmpint (r.elapsed_ms, >=, 700);
  g_assert_cmpint (r.elapsed_ms, <, 2000);
  call_result_clear (&r);
  answer_held (f);

  /* And never past the call that caused it (400 ms). */
  client_call (client, "ask", g_variant_new_parsed ("{'question': <'quick?'>}"), 400, &r);
  g_assert_nonnull (r.error);
  g_assert_cmpint (r.elapsed_ms, >=, 300);
  g_assert_cmpint (r.elapsed_ms, <, 750);
  call_result_clear (&r);
  answer_held (f);
}


/* ========================================================================= */
/* (g) Round two: attackers that read docs/limits.md                         */
/* ========================================================================= */

/* Open descriptors of this process. */
static guint
count_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* Five newcomers, pause_ms apart, each connects and is answered while an
 * attack goes on; returns the most descriptors open meanwhile. */
static guint
newcomers_served (Fixture    *f,
                  const char *uri,
                  guint       pause_ms)
{
  guint max_fds = 0;

  for (guint i = 0; i < 5; i++)
    {
      TetherClient *client = legit_client (f, uri);

      assert_echo_works (client);
      max_fds = MAX (max_fds, count_fds ());
      tether_client_close (client);
      tether_test_spin_ms (pause_ms);
    }
  return max_fds;
}

/* Callbacks the server waits for, all peers together. */
static guint64
server_pending_calls (Fixture *f)
{
  g_autoptr(TetherStatistics) stats = tether_server_get_statistics (f->server);

  return stats->pending_calls;
}

/* Slow drip, fair share: connections from four addresses keep the
 * server's callback pool full by answering every callback just before its
 * deadline (never a timeout, so never a strike: late answers are off
 * here, that is the other case). The legitimate client's `work` calls,
 * whose progress callbacks need a slot, still all succeed: the heaviest
 * address gives way, and is named. */
static void
test_slow_drip_fair_share (Fixture       *f,
                           gconstpointer  user_data)
{
  TetherClient *client;
  Load load = { 0 };
  g_autofree char *target = NULL;
  guint named = 0;

  fixture_start_server (f, "max-total-callbacks=32 max-pending-callbacks=4 callback-timeout=3000 "
                        "late-answer-percent=0 max-strikes=100", FALSE);
  target = tcp_target (f->ws_port);
  client = legit_client (f, f->ws_uri);
  warm_up_spawning (f);
  sampler_start (f);

  /* 4 addresses × 2 connections × 4 callbacks: the 32 slots, all held. */
  for (guint p = 0; p < 4; p++)
    {
      g_autofree char *bind = g_strdup_printf ("127.0.0.%u", 2 + p);

      attacker_spawn (f, "slow_drip.py", "--target", target, "--bind", bind, "--connections", "2",
                      "--calls", "4", "--answer-at", "0.85", "--max-seconds", "12", NULL);
    }
  TETHER_TEST_WAIT_UNTIL (server_pending_calls (f) == 32);

  /* The legitimate client works through it: every callback it needs
   * gets a slot. */
  load_start (&load, client);
  tether_test_spin_ms (4000);
  load_stop (&load);
  g_assert_cmpuint (load.failed, ==, 0);
  g_assert_cmpuint (load.ok, >=, 10);

  /* Who gave way was named, and was an attacker. */
  for (guint p = 0; p < 4; p++)
    {
      g_autofree char *who = g_strdup_printf ("tcp 127.0.0.%u:", 2 + p);

      named += count_misbehaviors (f, TETHER_MISBEHAVIOR_HOGGING, who);
    }
  g_assert_cmpuint (named, >=, 1);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_HOGGING, "tcp 127.0.0.1:"), ==, 0);
  {
    g_autoptr(TetherStatistics) stats = tether_server_get_statistics (f->server);

    g_assert_cmpuint (stats->pending_calls, <=, 32);
  }
  assert_figures (f, "slow drip (fair share)", 32 * 1024, 2);
}

/* Slow drip, late answers: the same attackers, with late answers
 * counted. Each answers after 85 % of the callback's time, beyond
 * late-answer-percent (75): three such strikes and it is cut off, named
 * for it. The legitimate client answers at once and is never counted. */
static void
test_slow_drip_late_answers (Fixture       *f,
                             gconstpointer  user_data)
{
  TetherClient *client;
  Load load = { 0 };
  g_autofree char *target = NULL;
  Attacker *a[2];

  fixture_start_server (f, "callback-timeout=1600 max-strikes=3 strike-window=60000", FALSE);
  target = tcp_target (f->ws_port);
  client = legit_client (f, f->ws_uri);
  warm_up_spawning (f);
  load_start (&load, client);

  for (guint p = 0; p < G_N_ELEMENTS (a); p++)
    {
      g_autofree char *bind = g_strdup_printf ("127.0.0.%u", 2 + p);

      a[p] = attacker_spawn (f, "slow_drip.py", "--target", target, "--bind", bind,
                             "--connections", "2", "--calls", "2", "--answer-at", "0.85",
                             "--max-seconds", "15", NULL);
    }
  for (guint p = 0; p < G_N_ELEMENTS (a); p++)
    {
      TETHER_TEST_WAIT_UNTIL (attacker_count (a[p], "closed") == 2);
      attacker_wait_done (a[p]);
    }
  load_stop (&load);

  /* Every attacker connection struck out for late answers, each address
   * named; the legitimate client never. */
  for (guint p = 0; p < G_N_ELEMENTS (a); p++)
    {
      g_autofree char *who = g_strdup_printf ("tcp 127.0.0.%u:", 2 + p);

      g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_LATE_ANSWERS, who), ==, 2);
      /* The log names each address once per window, however many of its
       * connections it cut. */
      g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, who, "late-answers"), >=, 1);
    }
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_LATE_ANSWERS, "tcp 127.0.0.1:"), ==, 0);
  g_assert_cmpuint (load.failed, ==, 0);
  g_assert_cmpuint (load.ok, >=, 4);
  assert_echo_works (client);
}

/* Notification flood: one connection sends batches of 64 `sleep`
 * notifications of ten minutes each as fast as it can. The server stops
 * reading it once 64 are in progress (its sending blocks), cuts it off
 * after flood-timeout, and names it; memory stays flat and the
 * legitimate client is served throughout. */
static void
test_notification_flood (Fixture       *f,
                         gconstpointer  user_data)
{
  TetherClient *client;
  Load load = { 0 };
  g_autofree char *target = NULL;
  Attacker *a;
  guint peak = 0;

  fixture_start_server (f, "flood-timeout=3000", FALSE);
  target = unix_target (f);
  client = legit_client (f, f->unix_uri);
  warm_up_spawning (f);
  sampler_start (f);
  load_start (&load, client);

  a = attacker_spawn (f, "notify_flood.py", "--target", target, "--batch", "64", "--seconds", "8",
                      "--max-seconds", "12", NULL);
  while (!a->exited)
    {
      g_autoptr(TetherStatistics) stats = tether_server_get_statistics (f->server);

      peak = MAX (peak, (guint) stats->invocations);
      tether_test_spin_ms (50);
    }
  load_stop (&load);
  g_test_message ("notification flood: at most %u invocations in progress on the server", peak);

  /* It was held back, then cut off and named, once. */
  g_assert_nonnull (attacker_find (a, "blocked"));
  g_assert_nonnull (attacker_find (a, "closed"));
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_FLOODING, f->attacker_tag), ==, 1);
  g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, f->attacker_tag, "flooding"), ==, 1);
  /* Never more than the bound plus one batch in progress. */
  g_assert_cmpuint (peak, <=, 64 + 64 + 2);
  g_assert_cmpuint (load.failed, ==, 0);
  g_assert_cmpuint (load.ok, >=, 10);
  assert_figures (f, "notification flood", 32 * 1024, 2);
}

/* TLS slow-loris with reconnects: four addresses keep every TLS handshake
 * slot (8) full with whole ClientHellos that stall (each holding a
 * thread), coming back the moment they are closed. A legitimate wss:// client still gets in, every time: the
 * address holding the most handshakes gives way, and is named. Threads
 * stay bounded by the cap. */
static void
test_slowloris_tls_fair_share (Fixture       *f,
                               gconstpointer  user_data)
{
  g_autofree char *target = NULL;
  guint named = 0;

  fixture_start_server (f, "max-tls-handshakes=8 handshake-timeout=1500", TRUE);
  target = tcp_target (f->wss_port);
  warm_up_spawning (f);
  sampler_start (f);

  for (guint p = 0; p < 4; p++)
    {
      g_autofree char *bind = g_strdup_printf ("127.0.0.%u", 2 + p);

      attacker_spawn (f, "slowloris.py", "--target", target, "--bind", bind, "--mode", "tls-stall",
                      "--connections", "4", "--reconnect", "--max-seconds", "10", NULL);
    }
  tether_test_spin_ms (1000);

  newcomers_served (f, f->wss_uri, 300);

  for (guint p = 0; p < 4; p++)
    {
      g_autofree char *who = g_strdup_printf ("tls 127.0.0.%u:", 2 + p);

      named += count_misbehaviors (f, TETHER_MISBEHAVIOR_HOGGING, who);
    }
  g_assert_cmpuint (named, >=, 1);
  g_assert_cmpuint (count_misbehaviors (f, TETHER_MISBEHAVIOR_HOGGING, "tls 127.0.0.1:"), ==, 0);
  /* Each handshake holds a glib-networking thread: 8, plus our clients'. */
  assert_figures (f, "TLS slowloris with reconnects", 96 * 1024, 8 + 4);
}

/* Descriptor exhaustion: with RLIMIT_NOFILE at 256, 25 addresses try to
 * hold 16 bare connections each (400), reconnecting whatever the server
 * closes. The server never runs out of descriptors (max-connections
 * derives from the limit, with room to spare), so it never spins on
 * accept; the legitimate client connects and is served; the log stays
 * small. */
static void
test_descriptors (Fixture       *f,
                  gconstpointer  user_data)
{
  struct rlimit saved, low;
  g_autofree char *target = NULL;
  Attacker *a;
  guint max_fds = 0;

  g_assert_no_errno (getrlimit (RLIMIT_NOFILE, &saved));
  low = saved;
  low.rlim_cur = MIN (saved.rlim_max, 256);
  g_assert_no_errno (setrlimit (RLIMIT_NOFILE, &low));

  /* Held open, not cut at the handshake deadline: this is about
   * descriptors, not time. */
  fixture_start_server (f, "handshake-timeout=60000", FALSE);
  target = tcp_target (f->ws_port);
  warm_up_spawning (f);

  a = attacker_spawn (f, "fd_flood.py", "--target", target, "--binds", "127.0.0.2-127.0.0.26",
                      "--connections", "16", "--seconds", "8", "--max-seconds", "12", NULL);
  tether_test_spin_ms (1500);

  max_fds = newcomers_served (f, f->ws_uri, 500);
  attacker_wait_done (a);
  g_test_message ("descriptors: at most %u open (limit %u); the attacker: %s", max_fds,
                  (guint) low.rlim_cur, (const char *) attacker_find (a, "final"));

  g_assert_no_errno (setrlimit (RLIMIT_NOFILE, &saved));
  g_assert_cmpuint (max_fds, <, low.rlim_cur);
  /* Never out of descriptors, so never a pause on accept. */
  g_assert_cmpuint (log_count (G_LOG_LEVEL_WARNING, "Not accepting connections", NULL), ==, 0);
  /* Refusals and evictions were many; their lines, few. */
  g_assert_cmpuint (log_count (G_LOG_LEVEL_MESSAGE, "too-many-connections", NULL) +
                    log_count (G_LOG_LEVEL_MESSAGE, "hogging", NULL), <=, 6 * TETHER_LOG_BURST);
}
/* ========================================================================= */

int
main (int argc, char **argv)
{
  log_records = g_ptr_array_new_with_free_func ((GDestroyNotify) log_record_free);
  log_debug = g_getenv ("TETHER_TEST_DEBUG") != NULL;
  g_log_set_writer_func (log_writer, NULL, NULL);
  g_test_init (&argc, &argv, NULL);
  gtest_log_handler = g_log_set_default_handler (quiet_log_handler, NULL);

  ADD_CASE ("/tether/security/callback-black-holes/unix", test_callback_black_holes_unix);
  ADD_CASE ("/tether/security/callback-black-holes/ws", test_callback_black_holes_ws);
  ADD_CASE ("/tether/security/stopped-reading/echo", test_stopped_reading);
  ADD_CASE ("/tether/security/stopped-reading/notifications", test_stopped_reading_notifications);
  ADD_CASE ("/tether/security/slowloris/http", test_slowloris);
  ADD_CASE ("/tether/security/slowloris/tls", test_slowloris_tls);
  ADD_CASE ("/tether/security/oversized/big-frame", test_oversized_big_frame);
  ADD_CASE ("/tether/security/oversized/fragments", test_oversized_fragments);
  ADD_CASE ("/tether/security/oversized/compressed", test_oversized_compressed);
  ADD_CASE ("/tether/security/oversized/deep", test_oversized_deep);
  ADD_CASE ("/tether/security/connections-per-peer", test_connections_per_peer);
  ADD_CASE ("/tether/security/unsolicited-responses", test_unsolicited_responses);
  ADD_CASE ("/tether/security/hostile-server/silent", test_hostile_server_silent);
  ADD_CASE ("/tether/security/hostile-server/flood", test_hostile_server_flood);
  ADD_CASE ("/tether/security/hostile-server/oversize", test_hostile_server_oversize);
  ADD_CASE ("/tether/security/hostile-server/fragments", test_hostile_server_fragments);
  ADD_CASE ("/tether/security/hostile-server/announce", test_hostile_server_announce);
  ADD_CASE ("/tether/security/idle", test_idle);
  ADD_CASE ("/tether/security/invocations-per-peer", test_invocations_per_peer);
  ADD_CASE ("/tether/security/total-callbacks", test_total_callbacks);
  ADD_CASE ("/tether/security/quarantine", test_quarantine);
  ADD_CASE ("/tether/security/lease", test_lease);
  ADD_CASE ("/tether/security/slow-drip/fair-share", test_slow_drip_fair_share);
  ADD_CASE ("/tether/security/slow-drip/late-answers", test_slow_drip_late_answers);
  ADD_CASE ("/tether/security/notification-flood", test_notification_flood);
  ADD_CASE ("/tether/security/slowloris/tls-fair-share", test_slowloris_tls_fair_share);
  ADD_CASE ("/tether/security/descriptors", test_descriptors);

  return g_test_run ();
}
