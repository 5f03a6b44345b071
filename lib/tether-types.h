/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <gio/gio.h>

#include "tether-version-macros.h"

G_BEGIN_DECLS

typedef struct _TetherCallbackListener TetherCallbackListener;
typedef struct _TetherClient     TetherClient;
typedef struct _TetherCredentials TetherCredentials;
typedef struct _TetherDetachedCallback TetherDetachedCallback;
typedef struct _TetherIdentity   TetherIdentity;
typedef struct _TetherInvocation TetherInvocation;
typedef struct _TetherPeer       TetherPeer;
typedef struct _TetherServer     TetherServer;

/**
 * TetherAccess:
 * @TETHER_ACCESS_AUTHENTICATED: only authenticated peers may call the method
 *   (the default): on `unix:` the kernel-verified uid counts, on `wss://` a
 *   verified client certificate counts, on `ws://` nobody is authenticated
 *   until authentication lands in the hello.
 * @TETHER_ACCESS_ANY: any accepted peer may call the method, anonymous ones
 *   included.
 * @TETHER_ACCESS_CUSTOM: the method's owner decides per call, through the
 *   `authorize-call` signal of [class@Tether.Server] (on a client every call
 *   comes from the server it connected to and is allowed).
 *
 * Who may call a method, declared when the method is added.
 *
 * Since: 0.1
 */
typedef enum
{
  TETHER_ACCESS_AUTHENTICATED,
  TETHER_ACCESS_ANY,
  TETHER_ACCESS_CUSTOM,
} TetherAccess;

/**
 * TetherTransportKind:
 * @TETHER_TRANSPORT_UNIX: WebSocket over a Unix domain socket (`unix:`).
 * @TETHER_TRANSPORT_TCP: WebSocket over plaintext TCP (`ws://`).
 * @TETHER_TRANSPORT_TLS: WebSocket over TLS (`wss://`).
 *
 * The transport a connection runs on.
 *
 * Since: 0.1
 */
typedef enum
{
  TETHER_TRANSPORT_UNIX,
  TETHER_TRANSPORT_TCP,
  TETHER_TRANSPORT_TLS,
} TetherTransportKind;

/**
 * TetherMisbehavior:
 * @TETHER_MISBEHAVIOR_CALLBACK_TIMEOUTS: the peer let callbacks time out
 *   repeatedly (strikes).
 * @TETHER_MISBEHAVIOR_STOPPED_READING: the peer's unsent backlog passed
 *   its bound.
 * @TETHER_MISBEHAVIOR_MESSAGE_TOO_LARGE: a message was larger than
 *   allowed.
 * @TETHER_MISBEHAVIOR_PROTOCOL_VIOLATION: the peer broke the WebSocket or
 *   Tether protocol: a compressed frame (never negotiated), a reserved
 *   opcode or bit, a web origin not allowed.
 * @TETHER_MISBEHAVIOR_HANDSHAKE_TIMEOUT: TLS, the upgrade or the hello did
 *   not finish in time.
 * @TETHER_MISBEHAVIOR_IDLE_TIMEOUT: nothing arrived within the idle
 *   timeout, keepalive pings included.
 * @TETHER_MISBEHAVIOR_TOO_MANY_CONNECTIONS: the peer's identity already
 *   had the maximum number of connections, or of TLS handshakes in
 *   progress.
 * @TETHER_MISBEHAVIOR_HOGGING: a server-wide pool (connections, TLS
 *   handshakes, callbacks, incoming work) was full and the peer's
 *   identity held the most of it: one of its entries gave way to another
 *   peer's (see `docs/limits.md`, "Fair shares"). Since: 0.2
 * @TETHER_MISBEHAVIOR_LATE_ANSWERS: the peer answered callbacks in the
 *   last part of their time, without asking for a lease, often enough to
 *   strike out. Since: 0.2
 * @TETHER_MISBEHAVIOR_FLOODING: the peer kept the server from reading it
 *   (its notifications in progress at the per-peer bound) for too long.
 *   Since: 0.2
 *
 * Why a peer was acted against; see [signal@Tether.Server::peer-misbehaved].
 *
 * Since: 0.1
 */
typedef enum
{
  TETHER_MISBEHAVIOR_CALLBACK_TIMEOUTS,
  TETHER_MISBEHAVIOR_STOPPED_READING,
  TETHER_MISBEHAVIOR_MESSAGE_TOO_LARGE,
  TETHER_MISBEHAVIOR_PROTOCOL_VIOLATION,
  TETHER_MISBEHAVIOR_HANDSHAKE_TIMEOUT,
  TETHER_MISBEHAVIOR_IDLE_TIMEOUT,
  TETHER_MISBEHAVIOR_TOO_MANY_CONNECTIONS,
  TETHER_MISBEHAVIOR_HOGGING TETHER_AVAILABLE_ENUMERATOR_IN_0_2,
  TETHER_MISBEHAVIOR_LATE_ANSWERS TETHER_AVAILABLE_ENUMERATOR_IN_0_2,
  TETHER_MISBEHAVIOR_FLOODING TETHER_AVAILABLE_ENUMERATOR_IN_0_2,
} TetherMisbehavior;

/**
 * TetherMisbehaviorAction:
 * @TETHER_MISBEHAVIOR_ACTION_DISCONNECT: close the peer's connection.
 * @TETHER_MISBEHAVIOR_ACTION_QUARANTINE: keep the connection, but fail the
 *   peer's new callbacks and refuse its calls (-32003) for
 *   [property@Tether.Server:quarantine-duration].
 *
 * What the server does to a peer that struck out.
 *
 * Since: 0.1
 */
typedef enum
{
  TETHER_MISBEHAVIOR_ACTION_DISCONNECT,
  TETHER_MISBEHAVIOR_ACTION_QUARANTINE,
} TetherMisbehaviorAction;

/**
 * TetherListenFlags:
 * @TETHER_LISTEN_FLAGS_NONE: nothing special.
 * @TETHER_LISTEN_FLAGS_PROXY_PROTOCOL: every connection starts with a
 *   PROXY protocol header (version 1 or 2, as HAProxy's `send-proxy` and
 *   `send-proxy-v2` write it) naming the client, and comes from one of
 *   the server's trusted proxies
 *   ([method@Tether.Server.add_trusted_proxy]). The header is required:
 *   a connection without one, with a malformed one, or from anywhere
 *   else is refused and logged. `ws://` and `wss://` only.
 *
 * How [method@Tether.Server.listen_full] listens.
 *
 * Since: 0.2
 */
typedef enum /*< flags >*/
{
  TETHER_LISTEN_FLAGS_NONE           = 0,
  TETHER_LISTEN_FLAGS_PROXY_PROTOCOL = 1 << 0,
} TetherListenFlags TETHER_AVAILABLE_TYPE_IN_0_2;

/**
 * TetherImpersonationLevel:
 * @TETHER_IMPERSONATION_LEVEL_ANONYMOUS: the callee learns nothing of the
 *   caller: [method@Tether.Invocation.get_identity] names nobody and
 *   [method@Tether.Invocation.get_peer] returns %NULL.
 * @TETHER_IMPERSONATION_LEVEL_IDENTIFY: the callee sees who called, as the
 *   transport and authentication proved it, and nothing more (the
 *   default).
 * @TETHER_IMPERSONATION_LEVEL_IMPERSONATE: the callee also gets a signed
 *   token ([class@Tether.Credentials]) it may present to Tether services on
 *   this host that trust the caller's signing certificate, to act as the
 *   caller there.
 * @TETHER_IMPERSONATION_LEVEL_DELEGATE: like
 *   %TETHER_IMPERSONATION_LEVEL_IMPERSONATE, but the token is honoured by
 *   such services on any host.
 *
 * How much of the caller a call grants the callee, as in RPC. The levels
 * are ordered: each grants everything the one before it does. Linux has no
 * kernel impersonation token: a Tether token is honoured only by Tether
 * services that trust its issuer, and grants nothing elsewhere.
 *
 * Since: 0.1
 */
typedef enum
{
  TETHER_IMPERSONATION_LEVEL_ANONYMOUS,
  TETHER_IMPERSONATION_LEVEL_IDENTIFY,
  TETHER_IMPERSONATION_LEVEL_IMPERSONATE,
  TETHER_IMPERSONATION_LEVEL_DELEGATE,
} TetherImpersonationLevel;

/**
 * TetherStatistics:
 * @calls_received: requests received (calls on a server, callbacks on a
 *   client)
 * @calls_sent: requests sent
 * @pending_calls: requests sent and not answered yet
 * @invocations: requests received and not answered yet, notifications in
 *   progress included (since 0.2)
 * @timed_out: requests sent whose deadline passed
 * @rejected: requests refused at once because a limit was reached, in
 *   either direction
 * @unsolicited_responses: responses for ids never sent or already
 *   answered; ignored
 * @invalid_messages: messages that were not valid JSON-RPC
 * @bytes_received: bytes read from the socket (after TLS)
 * @bytes_sent: bytes written to the socket (before TLS)
 * @bytes_queued: bytes handed to the connection and not written yet
 * @strikes: callback timeouts within the current strike window
 * @connections: connections counted (1 for a peer; live connections for a
 *   server)
 * @peers_cut_off: peers disconnected or quarantined for misbehaving
 *
 * A snapshot of counters, for one peer or summed over a server. Counters
 * of a server include its closed connections.
 *
 * Since: 0.1
 */
typedef struct _TetherStatistics TetherStatistics;

struct _TetherStatistics
{
  guint64 calls_received;
  guint64 calls_sent;
  guint64 pending_calls;
  guint64 invocations;
  guint64 timed_out;
  guint64 rejected;
  guint64 unsolicited_responses;
  guint64 invalid_messages;
  guint64 bytes_received;
  guint64 bytes_sent;
  guint64 bytes_queued;
  guint64 strikes;
  guint64 connections;
  guint64 peers_cut_off;
};

#define TETHER_TYPE_STATISTICS (tether_statistics_get_type ())

TETHER_AVAILABLE_IN_ALL
GType             tether_statistics_get_type (void) G_GNUC_CONST;
TETHER_AVAILABLE_IN_ALL
TetherStatistics *tether_statistics_copy     (const TetherStatistics *self);
TETHER_AVAILABLE_IN_ALL
void              tether_statistics_free     (TetherStatistics       *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TetherStatistics, tether_statistics_free)

TETHER_AVAILABLE_IN_ALL
char             *tether_scram_secrets_from_password (const char  *password,
                                                      guint        iterations,
                                                      GError     **error);

/**
 * TetherMethodHandler:
 * @invocation: (transfer none): the incoming call
 * @user_data: (closure): data given when the method was added
 *
 * Handles one incoming call. The handler answers with
 * [method@Tether.Invocation.return_value] or one of the error variants,
 * either before returning or later (take a reference to @invocation to
 * answer later). An invocation that is finalized without an answer is
 * answered with -32603 and a warning that names the method.
 *
 * Since: 0.1
 */
typedef void (*TetherMethodHandler) (TetherInvocation *invocation,
                                     gpointer          user_data);

G_END_DECLS
