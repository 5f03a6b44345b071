/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One scheduler per GMainContext, shared by every Tether object on it,
 * and one GSource for all of it: every deadline (calls, callbacks,
 * handshakes, idle checks, keepalives) and the readiness of every socket.
 *
 * Deadlines: one ordered structure and one timer: with 10,000 calls
 * pending the context still holds one timer, not 10,000 (GDBus's per-call
 * timers slowed everybody else 2.6× in that situation). Entries are
 * embedded in the caller's own structures (no allocation per deadline);
 * the heap stores pointers and each entry knows its index, so removal is
 * O(log n).
 *
 * Sockets: one epoll set. GLib 2.74's main loop prepares, checks and
 * polls every source and file descriptor on every iteration, so a
 * GSource or a poll record per connection makes each call pay for every
 * idle connection (measured: 1,000 idle connections made a call 12×
 * slower). A socket is a TetherWatch here instead: the context polls the
 * one epoll descriptor, and a watch's callback runs only when its own
 * socket is ready. */

#include <gio/gio.h>

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

/* The scheduler of @context (a new reference; made on first use). */
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

/* Socket readiness. A watch's callback runs on the scheduler's context
 * with what the socket is ready for (G_IO_IN, G_IO_OUT, G_IO_HUP,
 * G_IO_ERR; level-triggered: again at every iteration while it lasts),
 * or with 0 after _tether_watch_again(). HUP and ERR are reported even
 * when not asked for, except while @events is 0. The callback may free
 * any watch, its own included. Free the watch before closing its fd. */
typedef struct _TetherWatch TetherWatch;
typedef void (*TetherWatchFunc) (TetherWatch  *watch,
                                 GIOCondition  condition,
                                 gpointer      user_data);

TetherWatch     *_tether_scheduler_watch  (TetherScheduler *self,
                                           int              fd,
                                           GIOCondition     events,
                                           TetherWatchFunc  func,
                                           gpointer         user_data);
/* G_IO_IN and/or G_IO_OUT, or 0 to hear nothing for now. */
void             _tether_watch_set_events (TetherWatch     *watch,
                                           GIOCondition     events);
GIOCondition     _tether_watch_get_events (TetherWatch     *watch);
/* Runs the callback at the next dispatch whatever the socket says: for
 * bytes already read into a buffer (pushed back, or held by GnuTLS), or
 * for work left over after a dispatch's fair share. */
void             _tether_watch_again      (TetherWatch     *watch);
void             _tether_watch_free       (TetherWatch     *watch);
/* Makes sure _tether_log_flush() runs at @when or before (tether-log.c). */
void             _tether_scheduler_flush_log_at (TetherScheduler *self,
                                                 gint64           when);
/* Watches registered on @self, and callbacks run so far: for the tests. */
guint            _tether_scheduler_get_n_watches (TetherScheduler *self);
guint64          _tether_scheduler_get_n_watch_calls (TetherScheduler *self);

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
