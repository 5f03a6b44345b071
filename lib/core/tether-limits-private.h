/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One table of limits (tether-limits.c): every numeric limit property of
 * TetherClient and TetherServer — name, range, default — and the field of
 * TetherLimits each one feeds on each side. The objects install their
 * properties from it and hand the engine a TetherLimits made from it, so
 * a new limit is one row (and its property's doc comment). */

#include <glib-object.h>

#include "tether-types.h"

G_BEGIN_DECLS

/* What the engine of one connection obeys, from its owner's properties. */
typedef struct
{
  /* Outgoing calls (or callbacks, on the server). */
  guint  default_timeout_ms;
  guint  max_timeout_ms;
  /* Incoming calls: the budget a caller may ask for is clamped to this;
   * a caller that sends no budget gets the default. */
  guint  incoming_default_timeout_ms;
  guint  incoming_max_timeout_ms;
  guint  max_message_size;
  guint  max_depth;
  guint  max_pending_calls;  /* outgoing calls in flight on this connection */
  guint  max_unsent_bytes;   /* backlog before the peer is cut off */
  guint  handshake_timeout_ms;
  guint  max_invocations;    /* incoming calls and notifications in progress here */
  guint  max_batch_size;     /* requests in one incoming batch */
  guint  flood_timeout_ms;   /* not reading for lack of room this long: cut off (0: never) */
  guint  idle_timeout_ms;    /* 0: none */
  guint  keepalive_interval_ms; /* 0: no pings */
  /* Strikes (server only): callbacks that timed out within the window. */
  guint  max_strikes;        /* 0: never strike out */
  guint  strike_window_ms;
  guint  late_answer_percent; /* an answer after this share of its time strikes (0: never) */
  guint  quarantine_ms;
  /* Server: a connection older than this (±10 %) is sent away, with the
   * grace to finish (0: never). */
  guint  max_connection_age_ms;
  guint  max_connection_age_grace_ms;
  TetherMisbehaviorAction misbehavior_action;
} TetherLimits;

typedef enum
{
  TETHER_LIMITS_CLIENT,
  TETHER_LIMITS_SERVER,
} TetherLimitsSide;

/* The rows of the table. The object stores one value per row (guint
 * values[TETHER_N_LIMITS]); a row a side has no property for keeps that
 * side's default, which is what its engine gets. */
typedef enum
{
  TETHER_LIMIT_DEFAULT_TIMEOUT,          /* outgoing: client calls, server callbacks */
  TETHER_LIMIT_MAX_TIMEOUT,
  TETHER_LIMIT_INCOMING_DEFAULT_TIMEOUT, /* incoming: server calls, client callbacks */
  TETHER_LIMIT_INCOMING_MAX_TIMEOUT,
  TETHER_LIMIT_HANDSHAKE_TIMEOUT,
  TETHER_LIMIT_MAX_MESSAGE_SIZE,
  TETHER_LIMIT_MAX_DEPTH,
  TETHER_LIMIT_MAX_PENDING_CALLS,
  TETHER_LIMIT_MAX_UNSENT_BYTES,
  TETHER_LIMIT_MAX_INVOCATIONS,
  TETHER_LIMIT_MAX_BATCH_SIZE,
  TETHER_LIMIT_FLOOD_TIMEOUT,
  TETHER_LIMIT_IDLE_TIMEOUT,
  TETHER_LIMIT_KEEPALIVE_INTERVAL,
  TETHER_LIMIT_MAX_STRIKES,
  TETHER_LIMIT_STRIKE_WINDOW,
  TETHER_LIMIT_LATE_ANSWER_PERCENT,
  TETHER_LIMIT_QUARANTINE_DURATION,
  /* The server's own, not the engine's: its pools and sessions. */
  TETHER_LIMIT_MAX_TOTAL_CALLBACKS,
  TETHER_LIMIT_MAX_TOTAL_INVOCATIONS,
  TETHER_LIMIT_MAX_CONNECTIONS_PER_PEER,
  TETHER_LIMIT_MAX_CONNECTIONS,
  TETHER_LIMIT_MAX_TLS_HANDSHAKES,
  TETHER_LIMIT_MAX_TLS_HANDSHAKES_PER_ADDRESS,
  TETHER_LIMIT_DETACHED_CALLBACK_VALIDITY,
  TETHER_LIMIT_MAX_CONNECTION_AGE,
  TETHER_LIMIT_MAX_CONNECTION_AGE_GRACE,
  /* The client's own: following a server that goes away. */
  TETHER_LIMIT_MAX_QUEUED_CALLS,
  TETHER_LIMIT_RECONNECT_MIN_DELAY,
  TETHER_LIMIT_RECONNECT_MAX_DELAY,
  TETHER_N_LIMITS
} TetherLimit;

/* @values: the defaults of @side. */
void         _tether_limits_init_values (TetherLimitsSide  side,
                                         guint            *values);
/* Installs @side's limit properties on @klass, the one for row L with the
 * id @first_id + L. */
void         _tether_limits_install     (GObjectClass     *klass,
                                         TetherLimitsSide  side,
                                         guint             first_id);
/* The row of a property id from _tether_limits_install(), or -1. */
static inline int
_tether_limits_row (guint first_id,
                    guint prop_id)
{
  return prop_id >= first_id && prop_id < first_id + TETHER_N_LIMITS ? (int) (prop_id - first_id) : -1;
}
/* What the engine gets from @values: a default is never above its
 * maximum. The misbehaviour action is the caller's to set. */
void         _tether_limits_fill        (const guint      *values,
                                         TetherLimits     *limits);

G_END_DECLS
