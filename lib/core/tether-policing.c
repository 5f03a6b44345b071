/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include "tether-policing-private.h"

/* An answer that came within this is never late, whatever its share of
 * a short deadline: scheduling noise is not an attack. */
#define LATE_ANSWER_MIN_US (1000 * 1000)

void
_tether_policing_init (TetherPolicing     *self,
                       const TetherLimits *limits)
{
  memset (self, 0, sizeof *self);
  self->limits = limits;
  self->strikes = g_array_new (FALSE, FALSE, sizeof (gint64));
}

void
_tether_policing_clear (TetherPolicing *self)
{
  g_clear_pointer (&self->strikes, g_array_unref);
}

gboolean
_tether_policing_is_quarantined (const TetherPolicing *self)
{
  return self->quarantined_until > g_get_monotonic_time ();
}

/* Enough callbacks that timed out within the window and the peer is cut
 * off or quarantined: a black hole costs a bounded number of timeouts,
 * not the server's patience. */
TetherVerdict
_tether_policing_strike (TetherPolicing  *self,
                         const char      *method,
                         gboolean         late,
                         char           **details)
{
  const TetherLimits *limits = self->limits;
  gint64 now = g_get_monotonic_time ();
  gint64 window = (gint64) limits->strike_window_ms * 1000;

  if (limits->max_strikes == 0 || _tether_policing_is_quarantined (self))
    return TETHER_VERDICT_NONE;

  while (self->strikes->len > 0 && g_array_index (self->strikes, gint64, 0) < now - window)
    g_array_remove_index (self->strikes, 0);
  g_array_append_val (self->strikes, now);
  if (self->strikes->len < limits->max_strikes)
    return TETHER_VERDICT_NONE;

  *details = late
    ? g_strdup_printf ("%u callbacks timed out or were answered late (after %u%% of their time, "
                       "without a lease) within %u ms (the last: %s, late)",
                       self->strikes->len, limits->late_answer_percent,
                       limits->strike_window_ms, method)
    : g_strdup_printf ("%u callbacks timed out within %u ms (the last: %s)",
                       self->strikes->len, limits->strike_window_ms, method);
  g_array_set_size (self->strikes, 0);

  if (limits->misbehavior_action == TETHER_MISBEHAVIOR_ACTION_QUARANTINE)
    {
      self->quarantined_until = now + (gint64) limits->quarantine_ms * 1000;
      return TETHER_VERDICT_QUARANTINE;
    }
  return TETHER_VERDICT_DISCONNECT;
}

/* Answered in the last part of its time without asking for a lease (an
 * honest client whose user takes time asks for one): a late answer holds
 * the server's slot as surely as none. */
gboolean
_tether_policing_is_late (const TetherPolicing *self,
                          gint64                took,
                          gint64                budget_us)
{
  return self->limits->late_answer_percent > 0 && took >= LATE_ANSWER_MIN_US &&
         took * 100 >= budget_us * self->limits->late_answer_percent;
}

guint
_tether_policing_count_strikes (const TetherPolicing *self)
{
  gint64 window_start = g_get_monotonic_time () - (gint64) self->limits->strike_window_ms * 1000;
  guint strikes = 0;

  for (guint i = 0; i < self->strikes->len; i++)
    if (g_array_index (self->strikes, gint64, i) >= window_start)
      strikes++;
  return strikes;
}

void
_tether_policing_abandon (TetherPolicing *self,
                          guint64         id)
{
  self->abandoned[self->abandoned_next++ % G_N_ELEMENTS (self->abandoned)] = id;
}

gboolean
_tether_policing_take_abandoned (TetherPolicing *self,
                                 guint64         id)
{
  for (guint i = 0; i < G_N_ELEMENTS (self->abandoned); i++)
    if (self->abandoned[i] == id)
      {
        self->abandoned[i] = 0;
        return TRUE;
      }
  return FALSE;
}
