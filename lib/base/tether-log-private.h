/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Log lines that remote input can trigger: an outsider must not be able
 * to flood the log, nor write into it what it likes.
 *
 * _tether_log_limited() lets through at most TETHER_LOG_BURST lines per
 * @reason in each TETHER_LOG_WINDOW_MS window (per process), the second
 * half of them only for a @who (the peer's identity) the window has not
 * named yet — so that many connections of one peer cannot hide the
 * others — counts the rest, and says how many were suppressed once the window is over — at
 * the next line of that reason, or from a deadline in @scheduler's
 * context, so the summary comes even when the flood stops. @reason is a
 * static string of the code's, never anything the peer chose.
 *
 * _tether_log_escape() makes text a peer chose (a method name, a session
 * id, a user name, an address it announced) safe to quote: valid UTF-8,
 * control characters and stray bytes escaped, at most
 * TETHER_LOG_MAX_QUOTED bytes of it, with the length of the rest. */

#include <glib.h>

#include "tether-scheduler-private.h"

G_BEGIN_DECLS

#define TETHER_LOG_BURST      20
#define TETHER_LOG_WINDOW_MS  10000
#define TETHER_LOG_MAX_QUOTED 80

void  _tether_log_limited (TetherScheduler *scheduler,
                           GLogLevelFlags   level,
                           const char      *reason,
                           const char      *who,
                           const char      *format,
                           ...) G_GNUC_PRINTF (5, 6);
/* The same decision, for a caller that writes its lines itself (the
 * tether tool): whether a line of @reason may go out now; *@summary is
 * set (to free) when a window with suppressed lines has just ended. */
gboolean _tether_log_allow (TetherScheduler  *scheduler,
                            const char       *reason,
                            const char       *who,
                            char            **summary);
/* Summaries of every reason whose window is over (the scheduler's
 * deadline calls it). */
void  _tether_log_flush   (void);
char *_tether_log_escape  (const char      *text,
                           gssize           len);
/* Forgets all counts, and sets the window (0: the default). Tests. */
void  _tether_log_reset   (guint            window_ms);

G_END_DECLS
