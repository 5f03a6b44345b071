/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-log-private.h"

#include <string.h>

/* One entry per reason: a static string of the code's, so the table stays
 * as small as the number of places that log. */
typedef struct
{
  gint64      window_start;
  guint       lines;       /* let through in this window */
  guint       suppressed;  /* held back in this window */
  GHashTable *named;       /* who the lines let through named (at most TETHER_LOG_BURST) */
} Reason;

static void
reason_free (Reason *r)
{
  g_clear_pointer (&r->named, g_hash_table_unref);
  g_free (r);
}

static GMutex lock;
static GHashTable *reasons;   /* const char* (static) → Reason* */
static gint64 window_us = (gint64) TETHER_LOG_WINDOW_MS * 1000;

/* Under the lock: the summary of @r's window if it is over, reset. */
static char *
reason_roll (const char *key,
             Reason     *r,
             gint64      now)
{
  char *summary = NULL;

  if (now - r->window_start < window_us)
    return NULL;
  if (r->suppressed > 0)
    summary = g_strdup_printf ("%u more “%s” lines suppressed in the last %u s",
                               r->suppressed, key,
                               (guint) ((now - r->window_start) / G_USEC_PER_SEC));
  r->window_start = now;
  r->lines = 0;
  r->suppressed = 0;
  if (r->named != NULL)
    g_hash_table_remove_all (r->named);
  return summary;
}

gboolean
_tether_log_allow (TetherScheduler  *scheduler,
                   const char       *reason,
                   const char       *who,
                   char            **summary)
{
  gint64 now = g_get_monotonic_time ();
  gboolean allowed;
  gint64 flush_at = 0;
  Reason *r;

  g_mutex_lock (&lock);
  if (reasons == NULL)
    reasons = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) reason_free);
  r = g_hash_table_lookup (reasons, reason);
  if (r == NULL)
    {
      r = g_new0 (Reason, 1);
      r->window_start = now;
      g_hash_table_insert (reasons, (gpointer) reason, r);
    }
  *summary = reason_roll (reason, r, now);
  /* The second half of a window's lines goes to peers it has not named
   * yet: many connections of one peer cannot hide the others. */
  allowed = r->lines < TETHER_LOG_BURST &&
            (r->lines < TETHER_LOG_BURST / 2 || who == NULL || r->named == NULL ||
             !g_hash_table_contains (r->named, who));
  if (allowed)
    {
      r->lines++;
      if (who != NULL)
        {
          if (r->named == NULL)
            r->named = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
          g_hash_table_add (r->named, g_strdup (who));
        }
    }
  else if (r->suppressed++ == 0)
    flush_at = r->window_start + window_us;
  g_mutex_unlock (&lock);

  if (flush_at != 0 && scheduler != NULL)
    _tether_scheduler_flush_log_at (scheduler, flush_at);
  return allowed;
}

void
_tether_log_limited (TetherScheduler *scheduler,
                     GLogLevelFlags   level,
                     const char      *reason,
                     const char      *who,
                     const char      *format,
                     ...)
{
  g_autofree char *summary = NULL;
  gboolean allowed = _tether_log_allow (scheduler, reason, who, &summary);
  va_list args;

  if (summary != NULL)
    g_log (G_LOG_DOMAIN, level, "%s", summary);
  if (allowed)
    {
      va_start (args, format);
      g_logv (G_LOG_DOMAIN, level, format, args);
      va_end (args);
    }
}

void
_tether_log_flush (void)
{
  gint64 now = g_get_monotonic_time ();
  g_autoptr(GPtrArray) summaries = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key, value;

  g_mutex_lock (&lock);
  if (reasons != NULL)
    {
      g_hash_table_iter_init (&iter, reasons);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          Reason *r = value;
          char *summary = r->suppressed > 0 ? reason_roll (key, r, now) : NULL;

          if (summary != NULL)
            g_ptr_array_add (summaries, summary);
        }
    }
  g_mutex_unlock (&lock);

  for (guint i = 0; i < summaries->len; i++)
    g_message ("%s", (const char *) summaries->pdata[i]);
}

void
_tether_log_reset (guint window_ms)
{
  g_mutex_lock (&lock);
  g_clear_pointer (&reasons, g_hash_table_unref);
  window_us = (gint64) (window_ms > 0 ? window_ms : TETHER_LOG_WINDOW_MS) * 1000;
  g_mutex_unlock (&lock);
}

char *
_tether_log_escape (const char *text,
                    gssize      len)
{
  GString *out;
  const char *p;
  const char *end;

  if (text == NULL)
    return g_strdup ("(null)");
  if (len < 0)
    len = strlen (text);

  out = g_string_sized_new (MIN ((gsize) len, TETHER_LOG_MAX_QUOTED) + 16);
  p = text;
  end = text + len;
  while (p < end && out->len < TETHER_LOG_MAX_QUOTED)
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);

      if (c == (gunichar) -1 || c == (gunichar) -2)
        {
          g_string_append_printf (out, "\\x%02x", (guchar) *p);
          p++;
        }
      else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == '\\' ||
               c == 0x2028 || c == 0x2029)
        {
          g_string_append_printf (out, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
          p = g_utf8_next_char (p);
        }
      else
        {
          const char *next = g_utf8_next_char (p);

          g_string_append_len (out, p, next - p);
          p = next;
        }
    }
  if (p < end)
    g_string_append_printf (out, "… (%" G_GSIZE_FORMAT " bytes in all)", (gsize) len);
  return g_string_free (out, FALSE);
}
