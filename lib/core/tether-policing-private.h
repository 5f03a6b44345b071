/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a connection remembers about its peer's behaviour, and the
 * verdicts drawn from it (docs/limits.md): strikes for callbacks that
 * timed out or were answered late, quarantine, and the calls we stopped
 * waiting for (whose answers are late, not unsolicited). It decides; the
 * engine reports and acts. Embedded in the connection, no allocation per
 * call. */

#include "tether-limits-private.h"

G_BEGIN_DECLS

typedef struct
{
  const TetherLimits *limits;           /* the connection's */
  GArray             *strikes;          /* gint64 times, within the window */
  gint64              quarantined_until;
  /* A small ring: late answers come soon. */
  guint64             abandoned[32];
  guint               abandoned_next;
} TetherPolicing;

typedef enum
{
  TETHER_VERDICT_NONE,
  TETHER_VERDICT_QUARANTINE,   /* done: quarantined from now */
  TETHER_VERDICT_DISCONNECT,
} TetherVerdict;

void          _tether_policing_init          (TetherPolicing       *self,
                                              const TetherLimits   *limits);
void          _tether_policing_clear         (TetherPolicing       *self);
gboolean      _tether_policing_is_quarantined (const TetherPolicing *self);
/* A callback to @method timed out (or, @late, was answered late). With
 * enough strikes in the window: the verdict, and @details (newly
 * allocated) saying why; the strikes start again. */
TetherVerdict _tether_policing_strike        (TetherPolicing       *self,
                                              const char           *method,
                                              gboolean              late,
                                              char                **details);
/* Whether an answer @took µs into a budget of @budget_us, without a
 * lease, is late. */
gboolean      _tether_policing_is_late       (const TetherPolicing *self,
                                              gint64                took,
                                              gint64                budget_us);
/* Strikes within the window now. */
guint         _tether_policing_count_strikes (const TetherPolicing *self);
void          _tether_policing_abandon       (TetherPolicing       *self,
                                              guint64               id);
/* Whether @id was abandoned (then forgotten: one late answer each). */
gboolean      _tether_policing_take_abandoned (TetherPolicing      *self,
                                              guint64               id);

G_END_DECLS
