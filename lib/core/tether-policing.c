/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include "tether-engine-private.h"
#include "tether-error.h"
#include "tether-identity-private.h"
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

/* ---------------------------------------------------------------------- */
/* The watches on a connection                                            */

void
_tether_policing_check_backlog (TetherConnection *self)
{
  guint64 written = _tether_guard_stream_get_bytes_written (self->guard);
  guint64 backlog = self->bytes_handed > written ? self->bytes_handed - written : 0;

  if (backlog > self->limits.max_unsent_bytes)
    {
      g_autoptr(GError) error = NULL;

      g_set_error (&error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                   "Peer stopped reading: %" G_GUINT64_FORMAT " bytes unsent "
                   "(limit %u)",
                   backlog, self->limits.max_unsent_bytes);
      _tether_connection_report (self, TETHER_MISBEHAVIOR_STOPPED_READING, error->message, "disconnecting");
      _tether_connection_teardown (self, error);
    }
}

/* The peer kept the connection full for flood-timeout: it keeps the
 * server from reading it (a notification flood), and is cut off. */
static void
flood_deadline_cb (TetherDeadline *deadline)
{
  TetherConnection *self = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (TetherConnection, flood_deadline));
  g_autoptr(GError) error = NULL;
  g_autofree char *details = g_strdup_printf ("kept %u calls and notifications in progress, the "
                                              "most allowed, for %u ms: the server stopped reading "
                                              "it", self->limits.max_invocations,
                                              self->limits.flood_timeout_ms);

  error = g_error_new (TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED, "Disconnected: %s", details);
  _tether_connection_report (self, TETHER_MISBEHAVIOR_FLOODING, details, "disconnecting");
  _tether_connection_teardown (self, error);
}

/* Backpressure for what cannot be refused: while the peer has as many
 * calls and notifications in progress as it may (or the server's pool of
 * them is full and it holds its share), the connection reads nothing
 * more — its messages wait in the kernel, and its own sending blocks —
 * until one of them ends; one that stays full for flood-timeout is cut
 * off. Memory per peer stays bounded whatever it sends. */
void
_tether_policing_check_room (TetherConnection *self)
{
  gboolean full;

  if (self->ws == NULL || self->state == STATE_CLOSED)
    return;
  if (self->pool_full && self->invocation_pool != NULL &&
      _tether_pool_get_used (self->invocation_pool) < _tether_pool_get_max (self->invocation_pool))
    self->pool_full = FALSE;
  /* Calls over the bound are refused at once (nothing waits); only
   * notifications in progress make the connection stop reading. */
  full = (g_hash_table_size (self->notifications) > 0 &&
          _tether_connection_n_invocations (self) >= self->limits.max_invocations) || self->pool_full;
  if (full == !_tether_websocket_get_reading (self->ws))
    return;
  _tether_websocket_set_reading (self->ws, !full);
  if (full && self->limits.flood_timeout_ms > 0)
    _tether_scheduler_add (self->scheduler, &self->flood_deadline,
                           g_get_monotonic_time () + (gint64) self->limits.flood_timeout_ms * 1000,
                           flood_deadline_cb);
  else if (!full)
    _tether_scheduler_remove (self->scheduler, &self->flood_deadline);
  _tether_scheduler_remove (self->scheduler, &self->age_deadline);
}

static void
handshake_deadline_cb (TetherDeadline *deadline)
{
  TetherConnection *self = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (TetherConnection, handshake_deadline));
  g_autoptr(GError) error = NULL;

  error = g_error_new (TETHER_ERROR, TETHER_ERROR_HANDSHAKE_FAILED,
                       "No rpc.tether.hello within %u ms", self->limits.handshake_timeout_ms);
  _tether_connection_report (self, TETHER_MISBEHAVIOR_HANDSHAKE_TIMEOUT, error->message, "disconnecting");
  _tether_connection_teardown (self, error);
}

/* How often the liveness check runs: every keepalive interval, or every
 * idle timeout when keepalives are off; 0 when both are. */
static guint
liveness_period_ms (TetherConnection *self)
{
  return self->limits.keepalive_interval_ms > 0 ? self->limits.keepalive_interval_ms
                                                : self->limits.idle_timeout_ms;
}

/* The next check, a period from @now, rounded down to a grid of a
 * sixteenth of the period: the checks of connections opened at about the
 * same time fall on the same instants, so their pings go out, and their
 * pongs come back, in one main loop iteration rather than one each
 * (each wake-up of an idle process costs more than the ping). */
static gint64
liveness_next (TetherConnection *self,
               gint64            now)
{
  gint64 period = (gint64) liveness_period_ms (self) * 1000;
  gint64 grid = MAX (period / 16, 1000);
  gint64 next = now + period;

  return MAX (next - next % grid, now + 1);
}

/* Keepalive and idle check in one deadline per connection, in the one
 * scheduler: nothing per connection runs on iterations that serve
 * others.
 *
 * A connection whose peer sent nothing of its own since the last check
 * (pongs aside) is pinged. So between a server and a client the side
 * with the shorter interval does all the pinging — the server, with the
 * defaults (20 s, the client's 30 s), in batches — and the other only
 * answers; a peer that talks, or pings us, is never pinged. A connection
 * that brought nothing at all (pongs included: the guard counts every
 * byte) for the idle timeout is gone or playing dead, and is cut off. */
static void
idle_deadline_cb (TetherDeadline *deadline)
{
  TetherConnection *self = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (TetherConnection, idle_deadline));
  guint64 read = _tether_guard_stream_get_bytes_read (self->guard);
  guint64 frames = _tether_websocket_get_frames_heard (self->ws);
  gint64 now = g_get_monotonic_time ();
  g_autoptr(GError) error = NULL;

  if (read != self->idle_bytes)
    {
      self->idle_bytes = read;
      self->last_heard = now;
    }
  else if (self->limits.idle_timeout_ms > 0 &&
           now - self->last_heard >= (gint64) self->limits.idle_timeout_ms * 1000)
    {
      error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                           "Nothing received for %u ms", self->limits.idle_timeout_ms);
      _tether_connection_report (self, TETHER_MISBEHAVIOR_IDLE_TIMEOUT, error->message, "disconnecting");
      _tether_connection_teardown (self, error);
      return;
    }

  if (frames == self->idle_frames && self->limits.keepalive_interval_ms > 0)
    _tether_websocket_ping (self->ws);
  self->idle_frames = frames;

  _tether_scheduler_add (self->scheduler, &self->idle_deadline, liveness_next (self, now),
                         idle_deadline_cb);
}

/* max-connection-age: the connection has lasted long enough, and is
 * sent away as a drain would (rpc.tether.goaway), so that a client that
 * follows connects again — behind a balancer, perhaps elsewhere. */
static void
age_deadline_cb (TetherDeadline *deadline)
{
  TetherConnection *self = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (TetherConnection, age_deadline));

  g_debug ("Connection of %s reached max-connection-age: going away",
           tether_identity_get_address (self->identity));
  _tether_connection_go_away (self, g_get_monotonic_time () +
                                    (gint64) self->limits.max_connection_age_grace_ms * 1000);
}

void
_tether_policing_watch (TetherConnection *self,
                        gint64            hello_deadline)
{
  /* A check that heard nothing pings, and the answer is heard by the
   * next: a quiet live peer is silent for one period at most when a check
   * looks, so the idle timeout must be longer than a period. */
  if (self->limits.idle_timeout_ms > 0 && self->limits.keepalive_interval_ms > 0 &&
      self->limits.keepalive_interval_ms >= self->limits.idle_timeout_ms)
    g_warning ("keepalive-interval (%u ms) does not fit in idle-timeout (%u ms): "
               "live peers that stay quiet will be cut off",
               self->limits.keepalive_interval_ms, self->limits.idle_timeout_ms);
  if (liveness_period_ms (self) > 0)
    {
      self->idle_bytes = _tether_guard_stream_get_bytes_read (self->guard);
      self->last_heard = g_get_monotonic_time ();
      _tether_scheduler_add (self->scheduler, &self->idle_deadline,
                             liveness_next (self, self->last_heard), idle_deadline_cb);
    }
  if (hello_deadline > 0)
    _tether_scheduler_add (self->scheduler, &self->handshake_deadline, hello_deadline,
                           handshake_deadline_cb);
  /* ±10 %: connections made together do not all go together. */
  if (self->role == TETHER_CONNECTION_ROLE_SERVER && self->limits.max_connection_age_ms > 0)
    {
      gint64 age_us = (gint64) self->limits.max_connection_age_ms * 1000;

      age_us += g_random_int_range (-100, 101) * (age_us / 1000);
      _tether_scheduler_add (self->scheduler, &self->age_deadline,
                             g_get_monotonic_time () + MAX (age_us, 1), age_deadline_cb);
    }
}

void
_tether_policing_hello_done (TetherConnection *self)
{
  _tether_scheduler_remove (self->scheduler, &self->handshake_deadline);
}

void
_tether_policing_unwatch (TetherConnection *self)
{
  _tether_scheduler_remove (self->scheduler, &self->handshake_deadline);
  _tether_scheduler_remove (self->scheduler, &self->idle_deadline);
  _tether_scheduler_remove (self->scheduler, &self->flood_deadline);
  _tether_scheduler_remove (self->scheduler, &self->age_deadline);
}
