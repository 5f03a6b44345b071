/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Log lines remote input can trigger: rate-limited per reason with a
 * summary of what was held back, and peer-chosen text quoted safely. */

#include "tether-test-common.h"
#include "tether-log-private.h"

static GPtrArray *lines;

static void
capture (const char     *domain,
         GLogLevelFlags  level,
         const char     *message,
         gpointer        user_data)
{
  g_ptr_array_add (lines, g_strdup (message));
}

static guint
count_lines (const char *prefix)
{
  guint n = 0;

  for (guint i = 0; i < lines->len; i++)
    if (g_str_has_prefix (lines->pdata[i], prefix))
      n++;
  return n;
}

static void
test_limited (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  TetherScheduler *scheduler;
  guint handler;

  g_main_context_push_thread_default (context);
  scheduler = _tether_scheduler_new (context);
  lines = g_ptr_array_new_with_free_func (g_free);
  handler = g_log_set_handler ("Tether", G_LOG_LEVEL_MESSAGE, capture, NULL);
  _tether_log_reset (200);

  /* A flood of one reason: the first TETHER_LOG_BURST go through. */
  for (guint i = 0; i < 1000; i++)
    _tether_log_limited (scheduler, G_LOG_LEVEL_MESSAGE, "flood", NULL, "flood line %u", i);
  /* Another reason is not held back by the first. */
  _tether_log_limited (scheduler, G_LOG_LEVEL_MESSAGE, "other", NULL, "other line");
  g_assert_cmpuint (count_lines ("flood line"), ==, TETHER_LOG_BURST);
  g_assert_cmpuint (count_lines ("other line"), ==, 1);
  g_assert_cmpuint (count_lines ("980 more"), ==, 0);

  /* The flood stops; its summary comes from the scheduler once the
   * window is over, with nothing else logged. */
  TETHER_TEST_WAIT_UNTIL (count_lines ("980 more “flood” lines suppressed") == 1);
  g_assert_cmpuint (lines->len, ==, TETHER_LOG_BURST + 2);

  /* One peer named again and again takes half a window's lines at most;
   * the other half is for peers not named yet. */
  _tether_log_reset (200);
  for (guint i = 0; i < TETHER_LOG_BURST; i++)
    _tether_log_limited (scheduler, G_LOG_LEVEL_MESSAGE, "named", "peer-a", "named peer-a %u", i);
  _tether_log_limited (scheduler, G_LOG_LEVEL_MESSAGE, "named", "peer-b", "named peer-b");
  g_assert_cmpuint (count_lines ("named peer-a"), ==, TETHER_LOG_BURST / 2);
  g_assert_cmpuint (count_lines ("named peer-b"), ==, 1);
  TETHER_TEST_WAIT_UNTIL (count_lines ("10 more “named” lines suppressed") == 1);

  /* A new window lets lines through again. */
  _tether_log_limited (scheduler, G_LOG_LEVEL_MESSAGE, "flood", NULL, "flood line again");
  g_assert_cmpuint (count_lines ("flood line again"), ==, 1);

  g_log_remove_handler ("Tether", handler);
  g_clear_pointer (&lines, g_ptr_array_unref);
  _tether_log_reset (0);
  _tether_scheduler_unref (scheduler);
  g_main_context_pop_thread_default (context);
}

static void
test_escape (void)
{
  static const struct
  {
    const char *in;
    gssize      len;
    const char *out;
  } cases[] = {
    { "plain", -1, "plain" },
    { "é and 日本", -1, "é and 日本" },
    { "new\nline\r\x1b[31m", -1, "new\\x0aline\\x0d\\x1b[31m" },
    { "back\\slash", -1, "back\\x5cslash" },
    { "bad \xff\xfe utf8", -1, "bad \\xff\\xfe utf8" },
    { "nul\0inside", 10, "nul\\x00inside" },
    { "sep\xe2\x80\xa8line", -1, "sep\\u2028line" },
  };
  g_autofree char *long_text = g_strnfill (100000, 'a');
  g_autofree char *shown = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *out = _tether_log_escape (cases[i].in, cases[i].len);

      g_assert_cmpstr (out, ==, cases[i].out);
      g_assert_true (g_utf8_validate (out, -1, NULL));
    }

  /* 100 KB of the peer's text: bounded, and says how long it was. */
  shown = _tether_log_escape (long_text, -1);
  g_assert_cmpuint (strlen (shown), <, TETHER_LOG_MAX_QUOTED + 40);
  g_assert_true (g_str_has_suffix (shown, "… (100000 bytes in all)"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tether/log/limited", test_limited);
  g_test_add_func ("/tether/log/escape", test_escape);

  return g_test_run ();
}
