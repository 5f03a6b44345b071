/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "tether-limits-private.h"

typedef struct
{
  const char *name;  /* the property; NULL: this side has none */
  guint       min;
  guint       max;
  guint       def;
} Spec;

typedef struct
{
  gssize field;      /* offset of the guint in TetherLimits; -1: the object's own */
  Spec   side[2];    /* TetherLimitsSide */
} Row;

#define FIELD(f) G_STRUCT_OFFSET (TetherLimits, f)
#define DAY_MS   86400000u
#define NONE(def) { NULL, 0, 0, def }

/* The property docs are on the objects (tether-client.c, tether-server.c),
 * where gi-docgen looks for them. The two sides' names differ where the
 * direction does: a server's outgoing calls are its callbacks. */
static const Row rows[TETHER_N_LIMITS] = {
  [TETHER_LIMIT_DEFAULT_TIMEOUT] = { FIELD (default_timeout_ms), {
    { "default-timeout", 1, 600000, 30000 },
    { "callback-timeout", 1, 60000, 10000 } } },
  [TETHER_LIMIT_MAX_TIMEOUT] = { FIELD (max_timeout_ms), {
    { "max-timeout", 1, 600000, 600000 },
    { "max-callback-timeout", 1, 60000, 60000 } } },
  [TETHER_LIMIT_INCOMING_DEFAULT_TIMEOUT] = { FIELD (incoming_default_timeout_ms), {
    { "callback-timeout", 1, 60000, 10000 },
    { "default-timeout", 1, 600000, 30000 } } },
  [TETHER_LIMIT_INCOMING_MAX_TIMEOUT] = { FIELD (incoming_max_timeout_ms), {
    { "max-callback-timeout", 1, 600000, 60000 },
    { "max-timeout", 1, 600000, 600000 } } },
  [TETHER_LIMIT_HANDSHAKE_TIMEOUT] = { FIELD (handshake_timeout_ms), {
    { "handshake-timeout", 1, 600000, 10000 },
    { "handshake-timeout", 1, 600000, 10000 } } },
  [TETHER_LIMIT_MAX_MESSAGE_SIZE] = { FIELD (max_message_size), {
    { "max-message-size", 1024, G_MAXINT32, 1024 * 1024 },
    { "max-message-size", 1024, G_MAXINT32, 1024 * 1024 } } },
  [TETHER_LIMIT_MAX_DEPTH] = { FIELD (max_depth), {
    { "max-depth", 2, 1024, 64 },
    { "max-depth", 2, 1024, 64 } } },
  [TETHER_LIMIT_MAX_PENDING_CALLS] = { FIELD (max_pending_calls), {
    { "max-pending-calls", 1, 1000000, 4096 },
    { "max-pending-callbacks", 1, 1000000, 16 } } },
  [TETHER_LIMIT_MAX_UNSENT_BYTES] = { FIELD (max_unsent_bytes), {
    { "max-unsent-bytes", 4096, G_MAXINT32, 4 * 1024 * 1024 },
    { "max-unsent-bytes", 4096, G_MAXINT32, 4 * 1024 * 1024 } } },
  [TETHER_LIMIT_MAX_INVOCATIONS] = { FIELD (max_invocations), {
    { "max-invocations", 1, 1000000, 64 },
    { "max-invocations-per-peer", 1, 1000000, 64 } } },
  [TETHER_LIMIT_MAX_BATCH_SIZE] = { FIELD (max_batch_size), {
    { "max-batch-size", 1, 1000000, 64 },
    { "max-batch-size", 1, 1000000, 64 } } },
  [TETHER_LIMIT_FLOOD_TIMEOUT] = { FIELD (flood_timeout_ms), {
    { "flood-timeout", 0, DAY_MS, 30000 },
    { "flood-timeout", 0, DAY_MS, 30000 } } },
  [TETHER_LIMIT_IDLE_TIMEOUT] = { FIELD (idle_timeout_ms), {
    { "idle-timeout", 0, DAY_MS, 60000 },
    { "idle-timeout", 0, DAY_MS, 60000 } } },
  /* The client's is longer on purpose: the server does the pinging. */
  [TETHER_LIMIT_KEEPALIVE_INTERVAL] = { FIELD (keepalive_interval_ms), {
    { "keepalive-interval", 0, DAY_MS, 30000 },
    { "keepalive-interval", 0, DAY_MS, 20000 } } },
  /* Strikes are the server's: a client's own calls just time out. */
  [TETHER_LIMIT_MAX_STRIKES] = { FIELD (max_strikes), {
    NONE (0),
    { "max-strikes", 0, 1000, 3 } } },
  [TETHER_LIMIT_STRIKE_WINDOW] = { FIELD (strike_window_ms), {
    NONE (1),
    { "strike-window", 1, DAY_MS, 60000 } } },
  [TETHER_LIMIT_LATE_ANSWER_PERCENT] = { FIELD (late_answer_percent), {
    NONE (0),
    { "late-answer-percent", 0, 100, 75 } } },
  [TETHER_LIMIT_QUARANTINE_DURATION] = { FIELD (quarantine_ms), {
    NONE (0),
    { "quarantine-duration", 1, DAY_MS, 60000 } } },
  [TETHER_LIMIT_MAX_TOTAL_CALLBACKS] = { -1, {
    NONE (0),
    { "max-total-callbacks", 1, 10000000, 4096 } } },
  [TETHER_LIMIT_MAX_TOTAL_INVOCATIONS] = { -1, {
    NONE (0),
    { "max-total-invocations", 1, 10000000, 4096 } } },
  [TETHER_LIMIT_MAX_CONNECTIONS_PER_PEER] = { -1, {
    NONE (0),
    { "max-connections-per-peer", 1, 1000000, 16 } } },
  /* 0: derived from RLIMIT_NOFILE (tether-server.c). */
  [TETHER_LIMIT_MAX_CONNECTIONS] = { -1, {
    NONE (0),
    { "max-connections", 0, G_MAXUINT, 0 } } },
  [TETHER_LIMIT_MAX_TLS_HANDSHAKES] = { -1, {
    NONE (0),
    { "max-tls-handshakes", 1, 100000, 64 } } },
  [TETHER_LIMIT_MAX_TLS_HANDSHAKES_PER_ADDRESS] = { -1, {
    NONE (0),
    { "max-tls-handshakes-per-address", 1, 100000, 8 } } },
  [TETHER_LIMIT_DETACHED_CALLBACK_VALIDITY] = { -1, {
    NONE (0),
    { "detached-callback-validity", 1, 7 * DAY_MS, 3600000 } } },
};

void
_tether_limits_init_values (TetherLimitsSide  side,
                            guint            *values)
{
  for (guint i = 0; i < TETHER_N_LIMITS; i++)
    values[i] = rows[i].side[side].def;
}

void
_tether_limits_install (GObjectClass     *klass,
                        TetherLimitsSide  side,
                        guint             first_id)
{
  /* Set at construction, so a subclass-free object starts at the
   * defaults the table says. */
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS |
                      G_PARAM_CONSTRUCT;

  for (guint i = 0; i < TETHER_N_LIMITS; i++)
    {
      const Spec *spec = &rows[i].side[side];

      if (spec->name != NULL)
        g_object_class_install_property (klass, first_id + i,
                                         g_param_spec_uint (spec->name, NULL, NULL, spec->min,
                                                            spec->max, spec->def, flags));
    }
}

void
_tether_limits_fill (const guint  *values,
                     TetherLimits *limits)
{
  for (guint i = 0; i < TETHER_N_LIMITS; i++)
    if (rows[i].field >= 0)
      G_STRUCT_MEMBER (guint, limits, rows[i].field) = values[i];

  /* A default above its maximum is the maximum. */
  limits->default_timeout_ms = MIN (limits->default_timeout_ms, limits->max_timeout_ms);
  limits->incoming_default_timeout_ms = MIN (limits->incoming_default_timeout_ms,
                                             limits->incoming_max_timeout_ms);
}
