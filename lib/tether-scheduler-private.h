/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One ordered structure and one GSource for every deadline of an owner
 * (a server with all its connections, or a client): with 10,000 calls
 * pending the context still holds one timer, not 10,000 (GDBus's per-call
 * timers slowed everybody else 2.6× in that situation).
 *
 * Entries are embedded in the caller's own structures (no allocation per
 * deadline); the heap stores pointers and each entry knows its index, so
 * removal is O(log n). */

#include <glib.h>

G_BEGIN_DECLS

typedef struct _TetherScheduler TetherScheduler;
typedef struct _TetherDeadline  TetherDeadline;

typedef void (*TetherDeadlineFunc) (TetherDeadline *deadline);

struct _TetherDeadline
{
  gint64             when;   /* monotonic µs */
  guint              index;  /* position in the heap + 1; 0 = not queued */
  TetherDeadlineFunc func;
};

TetherScheduler *_tether_scheduler_new    (GMainContext    *context);
TetherScheduler *_tether_scheduler_ref    (TetherScheduler *self);
void             _tether_scheduler_unref  (TetherScheduler *self);
/* Queues @deadline (re-queues it if already queued) to run @func at @when.
 * @func runs on the scheduler's context, after the entry was removed. */
void             _tether_scheduler_add    (TetherScheduler *self,
                                           TetherDeadline  *deadline,
                                           gint64           when,
                                           TetherDeadlineFunc func);
/* Removes @deadline if queued; harmless otherwise. */
void             _tether_scheduler_remove (TetherScheduler *self,
                                           TetherDeadline  *deadline);
guint            _tether_scheduler_get_length (TetherScheduler *self);

static inline gboolean
_tether_deadline_is_queued (const TetherDeadline *deadline)
{
  return deadline->index != 0;
}

/* Number of GSources Tether currently has attached to any context, for the
 * tests' "one timer" check. */
int              _tether_debug_get_attached_sources (void);
void             _tether_debug_source_attached      (void);
void             _tether_debug_source_detached      (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TetherScheduler, _tether_scheduler_unref)

G_END_DECLS
