/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-scheduler-private.h"
#include "tether-log-private.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>

/* Events handled per dispatch: the rest stay ready (level-triggered) and
 * are handled at the next iteration, after other sources had a turn. */
#define MAX_EVENTS 64

typedef struct
{
  GSource          source;
  TetherScheduler *scheduler; /* unowned: the scheduler owns the source */
} SchedulerSource;

struct _TetherScheduler
{
  gatomicrefcount  ref_count;
  GMainContext    *context;   /* unowned: the key in the registry */
  GPtrArray       *heap;      /* TetherDeadline*, min-heap on ->when */
  GSource         *source;
  int              epoll_fd;
  gpointer         epoll_tag;
  guint            n_watches;
  guint64          n_watch_calls;
  GPtrArray       *again;     /* TetherWatch* to run at the next dispatch */
  GPtrArray       *dead;      /* TetherWatch* freed during a dispatch */
  guint            depth;     /* dispatches in progress (nested loops) */
  TetherDeadline   log_flush; /* when suppressed log lines are summed up */
};

struct _TetherWatch
{
  TetherScheduler *scheduler;
  int              fd;
  GIOCondition     events;
  gboolean         in_epoll;
  gboolean         in_again;
  gboolean         dead;
  gboolean         running;   /* its callback is on the stack */
  gboolean         paused;    /* out of epoll until that callback returns */
  TetherWatchFunc  func;
  gpointer         user_data;
};

/* One scheduler per context: GMainContext has no data of its own. */
static GHashTable *schedulers;
G_LOCK_DEFINE_STATIC (schedulers);

static int attached_sources;

int
_tether_debug_get_attached_sources (void)
{
  return g_atomic_int_get (&attached_sources);
}

void
_tether_debug_source_attached (void)
{
  g_atomic_int_inc (&attached_sources);
}

void
_tether_debug_source_detached (void)
{
  g_atomic_int_dec_and_test (&attached_sources);
}

#define HEAP_AT(h, i) ((TetherDeadline *) g_ptr_array_index ((h), (i)))

static void
heap_set (GPtrArray *heap, guint i, TetherDeadline *d)
{
  heap->pdata[i] = d;
  d->index = i + 1;
}

static void
heap_sift_up (GPtrArray *heap, guint i)
{
  TetherDeadline *d = HEAP_AT (heap, i);

  while (i > 0)
    {
      guint parent = (i - 1) / 2;

      if (HEAP_AT (heap, parent)->when <= d->when)
        break;
      heap_set (heap, i, HEAP_AT (heap, parent));
      i = parent;
    }
  heap_set (heap, i, d);
}

static void
heap_sift_down (GPtrArray *heap, guint i)
{
  TetherDeadline *d = HEAP_AT (heap, i);
  guint n = heap->len;

  for (;;)
    {
      guint child = 2 * i + 1;

      if (child >= n)
        break;
      if (child + 1 < n && HEAP_AT (heap, child + 1)->when < HEAP_AT (heap, child)->when)
        child++;
      if (d->when <= HEAP_AT (heap, child)->when)
        break;
      heap_set (heap, i, HEAP_AT (heap, child));
      i = child;
    }
  heap_set (heap, i, d);
}


static GIOCondition
condition_from_epoll (guint32 events)
{
  return ((events & EPOLLIN) ? G_IO_IN : 0) | ((events & EPOLLOUT) ? G_IO_OUT : 0) |
         ((events & EPOLLHUP) ? G_IO_HUP : 0) | ((events & EPOLLERR) ? G_IO_ERR : 0);
}

static void watch_update_epoll (TetherWatch *watch);

/* Runs @watch's callback unless it is already on the stack: a nested main
 * loop inside a callback (a modal dialog in a handler, say) dispatches
 * the scheduler again, and the same socket must not be read under its
 * own reader. Such a watch leaves the epoll set until its callback
 * returns, so the nested loop does not spin on it. */
static void
watch_run (TetherScheduler *self,
           TetherWatch     *watch,
           GIOCondition     condition)
{
  if (watch->dead)
    return;
  if (watch->running)
    {
      if (!watch->paused)
        {
          watch->paused = TRUE;
          watch_update_epoll (watch);
        }
      return;
    }

  self->n_watch_calls++;
  watch->running = TRUE;
  watch->func (watch, condition, watch->user_data);
  watch->running = FALSE;
  if (watch->paused && !watch->dead)
    {
      watch->paused = FALSE;
      watch_update_epoll (watch);
      /* What happened meanwhile is still there (level-triggered); bytes
       * above the socket are not: look again. */
      _tether_watch_again (watch);
    }
}

static void
run_watches (TetherScheduler *self)
{
  struct epoll_event events[MAX_EVENTS];
  g_autoptr(GPtrArray) again = NULL;
  int n = 0;

  if (self->epoll_tag != NULL &&
      (g_source_query_unix_fd (self->source, self->epoll_tag) & G_IO_IN) != 0)
    {
      do
        n = epoll_wait (self->epoll_fd, events, MAX_EVENTS, 0);
      while (n < 0 && errno == EINTR);
      if (n < 0)
        {
          g_critical ("epoll_wait: %s", g_strerror (errno));
          n = 0;
        }
    }

  /* Watches asked for again now; those asking during this dispatch wait
   * for the next one. */
  if (self->again->len > 0)
    {
      again = g_steal_pointer (&self->again);
      self->again = g_ptr_array_new ();
    }

  for (int i = 0; i < n; i++)
    watch_run (self, events[i].data.ptr, condition_from_epoll (events[i].events));

  for (guint i = 0; again != NULL && i < again->len; i++)
    {
      TetherWatch *watch = again->pdata[i];

      watch->in_again = FALSE;
      watch_run (self, watch, 0);
    }
}

static void
free_dead_watches (TetherScheduler *self)
{
  for (guint i = 0; i < self->dead->len; i++)
    {
      TetherWatch *watch = self->dead->pdata[i];

      if (!watch->in_again)
        {
          g_free (watch);
          g_ptr_array_remove_index_fast (self->dead, i--);
        }
    }
}

/* The next deadline is the poll timeout, computed here at every
 * iteration rather than kept as the source's ready time: GLib 2.74 wakes
 * the context up (an eventfd write, a read, one more iteration) whenever
 * a ready time changes, which per call would cost more than all the
 * rest of the scheduler. Deadlines are only ever added by the thread
 * that runs the context, and so before its next prepare. */
static gboolean
scheduler_source_prepare (GSource *source,
                          int     *timeout)
{
  TetherScheduler *self = ((SchedulerSource *) source)->scheduler;
  gint64 now;
  gint64 when;

  *timeout = -1;
  if (self->again->len > 0)
    {
      *timeout = 0;
      return TRUE;
    }
  if (self->heap->len == 0)
    return FALSE;

  when = HEAP_AT (self->heap, 0)->when;
  now = g_source_get_time (source);
  if (when <= now)
    {
      *timeout = 0;
      return TRUE;
    }
  *timeout = (int) MIN ((when - now + 999) / 1000, (gint64) G_MAXINT);
  return FALSE;
}

static gboolean
scheduler_source_check (GSource *source)
{
  TetherScheduler *self = ((SchedulerSource *) source)->scheduler;

  return self->again->len > 0 ||
         (self->heap->len > 0 && HEAP_AT (self->heap, 0)->when <= g_source_get_time (source)) ||
         (self->epoll_tag != NULL && (g_source_query_unix_fd (source, self->epoll_tag) & G_IO_IN) != 0);
}

static gboolean
scheduler_source_dispatch (GSource     *source,
                           GSourceFunc  callback,
                           gpointer     user_data)
{
  TetherScheduler *self = ((SchedulerSource *) source)->scheduler;
  gint64 now = g_source_get_time (source);
  guint budget = self->heap->len;

  /* Keep the scheduler alive while callbacks drop their owners. */
  _tether_scheduler_ref (self);
  self->depth++;

  /* Bounded: entries queued by the callbacks themselves wait for the next
   * dispatch, so a callback that re-arms at "now" cannot spin here. */
  while (budget-- > 0 && self->heap->len > 0 && HEAP_AT (self->heap, 0)->when <= now)
    {
      TetherDeadline *d = HEAP_AT (self->heap, 0);

      _tether_scheduler_remove (self, d);
      d->func (d);
    }

  /* After the deadlines: a watch they freed is out of the epoll set. */
  run_watches (self);

  if (--self->depth == 0)
    free_dead_watches (self);
  _tether_scheduler_unref (self);

  return G_SOURCE_CONTINUE;
}

static void
scheduler_source_finalize (GSource *source)
{
  _tether_debug_source_detached ();
}

static GSourceFuncs scheduler_source_funcs = {
  .prepare = scheduler_source_prepare,
  .check = scheduler_source_check,
  .dispatch = scheduler_source_dispatch,
  .finalize = scheduler_source_finalize,
};

TetherScheduler *
_tether_scheduler_new (GMainContext *context)
{
  TetherScheduler *self;

  if (context == NULL)
    context = g_main_context_default ();

  G_LOCK (schedulers);
  if (schedulers == NULL)
    schedulers = g_hash_table_new (NULL, NULL);
  self = g_hash_table_lookup (schedulers, context);
  if (self != NULL)
    {
      _tether_scheduler_ref (self);
      G_UNLOCK (schedulers);
      return self;
    }

  self = g_new0 (TetherScheduler, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->context = context;
  self->heap = g_ptr_array_new ();
  self->again = g_ptr_array_new ();
  self->dead = g_ptr_array_new ();
  self->epoll_fd = -1;
  self->source = g_source_new (&scheduler_source_funcs, sizeof (SchedulerSource));
  ((SchedulerSource *) self->source)->scheduler = self;
  g_source_set_static_name (self->source, "[tether] scheduler");
  /* Not blocked while it dispatches: GLib would take the epoll descriptor
   * out of the poll and put it back (two wake-ups of the context) at
   * every dispatch; and a nested main loop in a callback still gets its
   * deadlines and other sockets (watch_run() keeps a socket from being
   * read under its own reader). */
  g_source_set_can_recurse (self->source, TRUE);
  g_source_attach (self->source, context);
  _tether_debug_source_attached ();
  g_hash_table_insert (schedulers, context, self);
  G_UNLOCK (schedulers);

  return self;
}

TetherScheduler *
_tether_scheduler_ref (TetherScheduler *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
_tether_scheduler_unref (TetherScheduler *self)
{
  /* Under the registry's lock, so that nobody finds a dying scheduler. */
  G_LOCK (schedulers);
  if (!g_atomic_ref_count_dec (&self->ref_count))
    {
      G_UNLOCK (schedulers);
      return;
    }
  g_hash_table_remove (schedulers, self->context);
  G_UNLOCK (schedulers);

  _tether_scheduler_remove (self, &self->log_flush);
  /* Owners remove their entries and watches before dropping the
   * scheduler. */
  g_warn_if_fail (self->heap->len == 0);
  g_warn_if_fail (self->n_watches == 0);
  for (guint i = 0; i < self->heap->len; i++)
    HEAP_AT (self->heap, i)->index = 0;
  g_source_destroy (self->source);
  g_source_unref (self->source);
  g_ptr_array_unref (self->heap);
  for (guint i = 0; i < self->again->len; i++)
    ((TetherWatch *) self->again->pdata[i])->in_again = FALSE;
  g_ptr_array_unref (self->again);
  free_dead_watches (self);
  g_ptr_array_unref (self->dead);
  if (self->epoll_fd >= 0)
    close (self->epoll_fd);
  g_free (self);
}

void
_tether_scheduler_add (TetherScheduler    *self,
                       TetherDeadline     *deadline,
                       gint64              when,
                       TetherDeadlineFunc  func)
{
  _tether_scheduler_remove (self, deadline);
  deadline->when = when;
  deadline->func = func;
  g_ptr_array_add (self->heap, deadline);
  heap_sift_up (self->heap, self->heap->len - 1);
}

void
_tether_scheduler_remove (TetherScheduler *self,
                          TetherDeadline  *deadline)
{
  guint i;
  TetherDeadline *last;

  if (deadline->index == 0)
    return;

  i = deadline->index - 1;
  g_assert (i < self->heap->len && HEAP_AT (self->heap, i) == deadline);
  deadline->index = 0;

  last = g_ptr_array_steal_index (self->heap, self->heap->len - 1);
  if (last != deadline)
    {
      heap_set (self->heap, i, last);
      if (i > 0 && HEAP_AT (self->heap, (i - 1) / 2)->when > last->when)
        heap_sift_up (self->heap, i);
      else
        heap_sift_down (self->heap, i);
    }

}

guint
_tether_scheduler_get_length (TetherScheduler *self)
{
  return self->heap->len;
}

/* ---------------------------------------------------------------------- */
/* Watches                                                                */

static void
watch_update_epoll (TetherWatch *watch)
{
  TetherScheduler *self = watch->scheduler;
  struct epoll_event ev = { 0 };
  GIOCondition events = watch->paused ? 0 : watch->events;
  int op;

  if (events == 0)
    {
      if (!watch->in_epoll)
        return;
      op = EPOLL_CTL_DEL;
    }
  else
    op = watch->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

  ev.events = ((events & G_IO_IN) ? EPOLLIN : 0) | ((events & G_IO_OUT) ? EPOLLOUT : 0);
  ev.data.ptr = watch;
  if (epoll_ctl (self->epoll_fd, op, watch->fd, &ev) < 0)
    {
      /* Only a bad fd can fail here: the caller's bug. */
      g_critical ("epoll_ctl (%d, fd %d): %s", op, watch->fd, g_strerror (errno));
      return;
    }
  watch->in_epoll = op != EPOLL_CTL_DEL;
}

TetherWatch *
_tether_scheduler_watch (TetherScheduler *self,
                         int              fd,
                         GIOCondition     events,
                         TetherWatchFunc  func,
                         gpointer         user_data)
{
  TetherWatch *watch;

  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (func != NULL, NULL);

  if (self->epoll_fd < 0)
    {
      self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
      if (self->epoll_fd < 0)
        g_error ("epoll_create1: %s", g_strerror (errno));
      self->epoll_tag = g_source_add_unix_fd (self->source, self->epoll_fd, G_IO_IN);
    }

  watch = g_new0 (TetherWatch, 1);
  watch->scheduler = _tether_scheduler_ref (self);
  watch->fd = fd;
  watch->func = func;
  watch->user_data = user_data;
  self->n_watches++;
  _tether_watch_set_events (watch, events);

  return watch;
}

void
_tether_watch_set_events (TetherWatch  *watch,
                          GIOCondition  events)
{
  events &= G_IO_IN | G_IO_OUT;
  if (watch->dead || events == watch->events)
    return;
  watch->events = events;
  watch_update_epoll (watch);
}

GIOCondition
_tether_watch_get_events (TetherWatch *watch)
{
  return watch->events;
}

void
_tether_watch_again (TetherWatch *watch)
{
  if (watch->dead || watch->in_again)
    return;
  watch->in_again = TRUE;
  g_ptr_array_add (watch->scheduler->again, watch);
}

void
_tether_watch_free (TetherWatch *watch)
{
  TetherScheduler *self;

  if (watch == NULL)
    return;

  self = watch->scheduler;
  g_return_if_fail (!watch->dead);
  watch->events = 0;
  watch_update_epoll (watch);
  watch->dead = TRUE;
  self->n_watches--;

  /* Events already taken from epoll, or a place in the list of watches
   * asked again, may still point here: free at the end of the dispatch. */
  if (watch->in_again && self->depth == 0)
    {
      g_ptr_array_remove_fast (self->again, watch);
      watch->in_again = FALSE;
    }
  if (self->depth > 0 || watch->in_again)
    g_ptr_array_add (self->dead, watch);
  else
    g_free (watch);
  _tether_scheduler_unref (self);
}

guint
_tether_scheduler_get_n_watches (TetherScheduler *self)
{
  return self->n_watches;
}

guint64
_tether_scheduler_get_n_watch_calls (TetherScheduler *self)
{
  return self->n_watch_calls;
}

static void
log_flush_cb (TetherDeadline *deadline)
{
  _tether_log_flush ();
}

void
_tether_scheduler_flush_log_at (TetherScheduler *self,
                                gint64           when)
{
  if (!_tether_deadline_is_queued (&self->log_flush) || self->log_flush.when > when)
    _tether_scheduler_add (self, &self->log_flush, when, log_flush_cb);
}
