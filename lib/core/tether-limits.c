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

/* The two sides' names differ where the direction does: a server's
 * outgoing calls are its callbacks. Each property's documentation is at
 * the end of this file (g-ir-scanner reads it here), so that a new limit
 * is one row and its two comments. */
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
  [TETHER_LIMIT_MAX_CONNECTION_AGE] = { FIELD (max_connection_age_ms), {
    NONE (0),
    { "max-connection-age", 0, 7 * DAY_MS, 0 } } },
  [TETHER_LIMIT_MAX_CONNECTION_AGE_GRACE] = { FIELD (max_connection_age_grace_ms), {
    NONE (0),
    { "max-connection-age-grace", 0, DAY_MS, 30000 } } },
  [TETHER_LIMIT_MAX_QUEUED_CALLS] = { -1, {
    { "max-queued-calls", 0, 1000000, 1024 },
    NONE (0) } },
  [TETHER_LIMIT_RECONNECT_MIN_DELAY] = { -1, {
    { "reconnect-min-delay", 1, 600000, 100 },
    NONE (0) } },
  [TETHER_LIMIT_RECONNECT_MAX_DELAY] = { -1, {
    { "reconnect-max-delay", 1, 600000, 30000 },
    NONE (0) } },
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

/* ---------------------------------------------------------------------- */
/* The limit properties, as gi-docgen shows them                          */

/**
 * TetherServer:default-timeout:
 *
 * The deadline, in milliseconds, of an incoming call whose caller sent
 * no budget (plain JSON-RPC clients).
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-timeout:
 *
 * The longest budget, in milliseconds, an incoming call may ask for;
 * longer ones are clamped. Nothing is infinite.
 *
 * Since: 0.1
 */

/**
 * TetherServer:callback-timeout:
 *
 * The default deadline, in milliseconds, of a callback to a client.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-callback-timeout:
 *
 * The longest deadline, in milliseconds, a callback may have.
 *
 * Since: 0.1
 */

/**
 * TetherServer:handshake-timeout:
 *
 * How long, in milliseconds, a new connection has to finish TLS, the
 * WebSocket upgrade and the hello.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-message-size:
 *
 * The largest message, in bytes, across all its WebSocket fragments.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-depth:
 *
 * The deepest JSON nesting a message may have.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-pending-callbacks:
 *
 * How many callbacks may wait for an answer from one peer; the next one
 * fails at once with %TETHER_ERROR_RESOURCE_EXHAUSTED.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-unsent-bytes:
 *
 * How many bytes may wait to be written to one peer; a peer that stops
 * reading is cut off when its backlog passes this.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-total-callbacks:
 *
 * How many callbacks may wait for an answer from all peers together;
 * the next one fails at once with %TETHER_ERROR_RESOURCE_EXHAUSTED.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-invocations-per-peer:
 *
 * How many calls and notifications from one peer may be in progress at
 * once. The next call is answered -32003 at once; a notification, which
 * cannot be answered, makes the server stop reading that peer until one
 * ends (see [property@Tether.Server:flood-timeout]). Notifications count
 * since 0.2.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-total-invocations:
 *
 * How many calls and notifications from all peers may be in progress at
 * once. When they are, the identity with the most gives way: a newcomer's
 * call is served and the heaviest identity's oldest is answered -32003
 * and cancelled, unless the newcomer already has about as many (then
 * its call is answered -32003, and its notifications make the server
 * stop reading it). See `docs/limits.md`.
 *
 * Since: 0.2
 */

/**
 * TetherServer:max-batch-size:
 *
 * How many requests one incoming JSON-RPC batch may hold; a larger
 * batch is answered with one -32600 error and nothing in it runs.
 *
 * Since: 0.2
 */

/**
 * TetherServer:flood-timeout:
 *
 * How long, in milliseconds, a peer may keep the server from reading it
 * — it has [property@Tether.Server:max-invocations-per-peer] calls and
 * notifications in progress — before it is cut off (a notification
 * flood); 0 never cuts it off.
 *
 * Since: 0.2
 */

/**
 * TetherServer:late-answer-percent:
 *
 * A callback answered after this share of its time, in percent, without
 * a lease ([method@Tether.Invocation.extend_deadline]) and after a
 * second or more, counts as a strike, as a callback that times out does:
 * a peer that answers at the last moment holds the server's callback
 * slots as surely as one that never answers. 0 turns it off.
 *
 * Since: 0.2
 */

/**
 * TetherServer:max-strikes:
 *
 * How many of a peer's callbacks may time out within
 * [property@Tether.Server:strike-window] before
 * [property@Tether.Server:misbehavior-action] is taken; 0 never strikes
 * a peer out.
 *
 * Since: 0.1
 */

/**
 * TetherServer:strike-window:
 *
 * The window, in milliseconds, in which strikes count.
 *
 * Since: 0.1
 */

/**
 * TetherServer:quarantine-duration:
 *
 * How long, in milliseconds, a quarantined peer's callbacks fail and
 * its calls are refused.
 *
 * Since: 0.1
 */

/**
 * TetherServer:idle-timeout:
 *
 * A connection from which nothing at all arrives (keepalive pongs
 * included) for this many milliseconds is closed; 0 disables it.
 *
 * Since: 0.1
 */

/**
 * TetherServer:keepalive-interval:
 *
 * How often, in milliseconds, the server checks on each connection: a
 * connection whose peer sent nothing of its own since the last check
 * (pongs aside) gets a WebSocket ping; 0 sends none. Keep it below
 * [property@Tether.Server:idle-timeout], and below the clients' own
 * interval (30 s by default for a [class@Tether.Client]) so that the
 * server does the pinging, in batches.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-connections-per-peer:
 *
 * How many connections one peer identity may hold, handshakes
 * included: the uid on `unix:`, the verified client certificate on
 * `wss://`, else the IP address.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-connections:
 *
 * How many connections the server holds in all, handshakes included;
 * 0 (the default) derives it from the process's descriptor limit
 * (`RLIMIT_NOFILE`), keeping a sixteenth of it (64 at least) for the
 * service's own files, as it is when a connection arrives.
 *
 * When the server is full, the identity holding the most connections
 * gives way: a newcomer's connection is accepted and the heaviest
 * identity's newest connection is closed, unless the newcomer already
 * holds about as many (then it is refused). See `docs/limits.md`.
 *
 * Since: 0.2
 */

/**
 * TetherServer:max-tls-handshakes:
 *
 * How many TLS handshakes may be in progress at once. glib-networking
 * runs each in a thread of a shared pool, so this bounds the threads a
 * TLS slowloris can hold.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-tls-handshakes-per-address:
 *
 * How many TLS handshakes one IP address may have in progress.
 *
 * Since: 0.1
 */

/**
 * TetherServer:detached-callback-validity:
 *
 * How long, in milliseconds after the hello, a detached-callback
 * session lasts: the server sends nothing after it, and the listener
 * accepts nothing after it. Default: one hour.
 *
 * Since: 0.1
 */

/**
 * TetherServer:max-connection-age:
 *
 * How long, in milliseconds, a connection may last: once it is this old
 * (give or take 10 %, so that connections made together do not all go
 * together) the server sends its peer away as a drain does
 * (`rpc.tether.goaway`, see tether_server_shutdown_async()), with
 * [property@Tether.Server:max-connection-age-grace] for what is in
 * progress, and a client that follows ([property@Tether.Client:reconnect])
 * connects again, behind a load balancer perhaps to another instance.
 * Long-lived connections rebalance that way. 0 (the default) never.
 *
 * Since: 0.2
 */

/**
 * TetherServer:max-connection-age-grace:
 *
 * How long, in milliseconds, calls and callbacks in progress on a
 * connection sent away for its age may go on before they are cancelled.
 *
 * Since: 0.2
 */

/**
 * TetherClient:default-timeout:
 *
 * The deadline, in milliseconds, of a call made with a timeout of -1.
 *
 * Since: 0.1
 */

/**
 * TetherClient:max-timeout:
 *
 * The longest deadline, in milliseconds, a call may have; longer ones
 * are clamped.
 *
 * Since: 0.1
 */

/**
 * TetherClient:callback-timeout:
 *
 * The deadline, in milliseconds, of a callback from a server that sent
 * no budget.
 *
 * Since: 0.1
 */

/**
 * TetherClient:max-callback-timeout:
 *
 * The longest budget, in milliseconds, a server's callback may ask for.
 *
 * Since: 0.1
 */

/**
 * TetherClient:handshake-timeout:
 *
 * How long, in milliseconds, connecting may take, hello included.
 *
 * Since: 0.1
 */

/**
 * TetherClient:max-message-size:
 *
 * The largest message, in bytes, accepted from the server.
 *
 * Since: 0.1
 */

/**
 * TetherClient:max-depth:
 *
 * The deepest JSON nesting accepted from the server.
 *
 * Since: 0.1
 */

/**
 * TetherClient:max-pending-calls:
 *
 * How many calls may wait for an answer at once; the next one fails at
 * once with %TETHER_ERROR_RESOURCE_EXHAUSTED.
 *
 * Since: 0.1
 */

/**
 * TetherClient:max-unsent-bytes:
 *
 * How many bytes may wait to be written to the server before the
 * connection is cut.
 *
 * Since: 0.1
 */

/**
 * TetherClient:max-invocations:
 *
 * How many of the server's callbacks and notifications may be in
 * progress at once. The next callback is answered -32003 at once; a
 * notification makes the client stop reading the server until one ends
 * (see [property@Tether.Client:flood-timeout]). Notifications count
 * since 0.2.
 *
 * Since: 0.1
 */

/**
 * TetherClient:max-batch-size:
 *
 * How many requests one JSON-RPC batch from the server may hold; a
 * larger batch is answered with one -32600 error and nothing in it
 * runs.
 *
 * Since: 0.2
 */

/**
 * TetherClient:flood-timeout:
 *
 * How long, in milliseconds, the server may keep the client from reading
 * it — it has [property@Tether.Client:max-invocations] callbacks and
 * notifications in progress — before the client disconnects; 0 never.
 *
 * Since: 0.2
 */

/**
 * TetherClient:idle-timeout:
 *
 * The connection is closed when nothing at all arrives from the server
 * (keepalive pongs included) for this many milliseconds; 0 disables it.
 *
 * Since: 0.1
 */

/**
 * TetherClient:keepalive-interval:
 *
 * How often, in milliseconds, the client checks on its connection: if
 * the server sent nothing of its own since the last check (pongs
 * aside), it sends a WebSocket ping; 0 sends none.
 *
 * The default, 30 s, is longer than the server's 20 s on purpose: a
 * Tether server then does all the pinging, in batches, and its clients
 * only answer. The client pings a server that says nothing for longer.
 *
 * Since: 0.1
 */

/**
 * TetherClient:max-queued-calls:
 *
 * How many calls may wait for a new connection while
 * [property@Tether.Client:reconnect] follows a server that went away;
 * the next one fails at once with %TETHER_ERROR_RESOURCE_EXHAUSTED.
 *
 * Since: 0.2
 */

/**
 * TetherClient:reconnect-min-delay:
 *
 * The delay, in milliseconds, before the second attempt to connect again
 * (the first is made at once); each later one waits twice as long as
 * the one before, up to [property@Tether.Client:reconnect-max-delay],
 * and a random part of it (full jitter), so that the clients of one
 * server do not all come back at the same moment.
 *
 * Since: 0.2
 */

/**
 * TetherClient:reconnect-max-delay:
 *
 * The longest delay, in milliseconds, between two attempts to connect
 * again.
 *
 * Since: 0.2
 */
