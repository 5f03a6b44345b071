/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-scheduler-private.h"

typedef struct
{
  GSource          source;
  TetherScheduler *scheduler; /* unowned: the scheduler owns the source */
} SchedulerSource;

struct _TetherScheduler
{
  gatomicrefcount  ref_count;
  GPtrArray       *heap;      /* TetherDeadline*, min-heap on ->when */
  GSource         *source;
};

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

static void
scheduler_update_source (TetherScheduler *self)
{
  if (self->heap->len == 0)
    g_source_set_ready_time (self->source, -1);
  else
    g_source_set_ready_time (self->source, HEAP_AT (self->heap, 0)->when);
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

  /* Bounded: entries queued by the callbacks themselves wait for the next
   * dispatch, so a callback that re-arms at "now" cannot spin here. */
  while (budget-- > 0 && self->heap->len > 0 && HEAP_AT (self->heap, 0)->when <= now)
    {
      TetherDeadline *d = HEAP_AT (self->heap, 0);

      _tether_scheduler_remove (self, d);
      d->func (d);
    }

  scheduler_update_source (self);
  _tether_scheduler_unref (self);

  return G_SOURCE_CONTINUE;
}

static void
scheduler_source_finalize (GSource *source)
{
  _tether_debug_source_detached ();
}

static GSourceFuncs scheduler_source_funcs = {
  .dispatch = scheduler_source_dispatch,
  .finalize = scheduler_source_finalize,
};

TetherScheduler *
_tether_scheduler_new (GMainContext *context)
{
  TetherScheduler *self = g_new0 (TetherScheduler, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->heap = g_ptr_array_new ();
  self->source = g_source_new (&scheduler_source_funcs, sizeof (SchedulerSource));
  ((SchedulerSource *) self->source)->scheduler = self;
  g_source_set_static_name (self->source, "[tether] deadlines");
  g_source_set_ready_time (self->source, -1);
  g_source_attach (self->source, context);
  _tether_debug_source_attached ();

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
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  /* Owners remove their entries before dropping the scheduler. */
  g_warn_if_fail (self->heap->len == 0);
  for (guint i = 0; i < self->heap->len; i++)
    HEAP_AT (self->heap, i)->index = 0;
  g_source_destroy (self->source);
  g_source_unref (self->source);
  g_ptr_array_unref (self->heap);
  g_free (self);
}

void
_tether_scheduler_add (TetherScheduler    *self,
                       TetherDeadline     *deadline,
                       gint64              when,
                       TetherDeadlineFunc  func)
{
  gint64 ready;

  _tether_scheduler_remove (self, deadline);
  deadline->when = when;
  deadline->func = func;
  g_ptr_array_add (self->heap, deadline);
  heap_sift_up (self->heap, self->heap->len - 1);

  /* Only ever earlier: moving the ready time wakes the context through its
   * eventfd (a write, and a read on the next iteration), which per call
   * would cost more than the rest of the scheduler. A ready time left
   * early by removed entries costs one idle wake-up, which re-arms. */
  ready = g_source_get_ready_time (self->source);
  if (ready == -1 || when < ready)
    g_source_set_ready_time (self->source, when);
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

  /* The source is re-armed lazily: an early wake-up finds nothing due and
   * re-arms; this keeps removal cheap on the hot path. */
}

guint
_tether_scheduler_get_length (TetherScheduler *self)
{
  return self->heap->len;
}
