/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The single-timer deadline heap: order, removal from anywhere, re-arming,
 * and one source whatever the number of deadlines. */

#include "tether-test-common.h"
#include "tether-scheduler-private.h"

typedef struct
{
  TetherDeadline deadline;
  int            id;
  GArray        *fired;
} Entry;

static void
entry_fired (TetherDeadline *deadline)
{
  Entry *entry = (Entry *) deadline;

  g_array_append_val (entry->fired, entry->id);
}

static void
test_order (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GArray) fired = g_array_new (FALSE, FALSE, sizeof (int));
  TetherScheduler *scheduler;
  Entry entries[200];
  gint64 now;
  int sources;

  g_main_context_push_thread_default (context);
  sources = _tether_debug_get_attached_sources ();
  scheduler = _tether_scheduler_new (context);
  g_assert_cmpint (_tether_debug_get_attached_sources (), ==, sources + 1);
  now = g_get_monotonic_time ();

  /* Deadlines in a scrambled order, 1..200 ms from now. */
  for (int i = 0; i < 200; i++)
    {
      int ms = 1 + (i * 37) % 200;

      entries[i].id = ms;
      entries[i].fired = fired;
      entries[i].deadline.index = 0;
      _tether_scheduler_add (scheduler, &entries[i].deadline, now + ms * 1000, entry_fired);
    }
  g_assert_cmpuint (_tether_scheduler_get_length (scheduler), ==, 200);
  /* Still one source. */
  g_assert_cmpint (_tether_debug_get_attached_sources (), ==, sources + 1);

  /* Remove every third from wherever it sits in the heap. */
  for (int i = 0; i < 200; i += 3)
    _tether_scheduler_remove (scheduler, &entries[i].deadline);
  /* Removing twice is harmless. */
  _tether_scheduler_remove (scheduler, &entries[0].deadline);
  /* Re-arming moves an entry: entry 1 now fires last. */
  _tether_scheduler_add (scheduler, &entries[1].deadline, now + 250 * 1000, entry_fired);
  entries[1].id = 1000;

  TETHER_TEST_WAIT_UNTIL (_tether_scheduler_get_length (scheduler) == 0);

  g_assert_cmpuint (fired->len, ==, 200 - 67);
  for (guint i = 1; i < fired->len; i++)
    g_assert_cmpint (g_array_index (fired, int, i - 1), <, g_array_index (fired, int, i));
  g_assert_cmpint (g_array_index (fired, int, fired->len - 1), ==, 1000);
  /* Nothing fires early. */
  g_assert_cmpint (g_get_monotonic_time () - now, >=, 250 * 1000);

  _tether_scheduler_unref (scheduler);
  g_assert_cmpint (_tether_debug_get_attached_sources (), ==, sources);
  g_main_context_pop_thread_default (context);
}

typedef struct
{
  TetherDeadline   deadline;
  TetherScheduler *scheduler;
  guint            count;
} Rearm;

static void
rearm_fired (TetherDeadline *deadline)
{
  Rearm *rearm = (Rearm *) deadline;

  /* Re-arming at "now" from inside a dispatch must not spin forever. */
  if (++rearm->count < 5)
    _tether_scheduler_add (rearm->scheduler, deadline, g_get_monotonic_time (), rearm_fired);
}

static void
test_rearm_from_callback (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Rearm rearm = { 0 };

  g_main_context_push_thread_default (context);
  rearm.scheduler = _tether_scheduler_new (context);
  _tether_scheduler_add (rearm.scheduler, &rearm.deadline, g_get_monotonic_time (), rearm_fired);
  TETHER_TEST_WAIT_UNTIL (rearm.count == 5);
  g_assert_false (_tether_deadline_is_queued (&rearm.deadline));
  _tether_scheduler_unref (rearm.scheduler);
  g_main_context_pop_thread_default (context);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tether/scheduler/order", test_order);
  g_test_add_func ("/tether/scheduler/rearm-from-callback", test_rearm_from_callback);

  return g_test_run ();
}
