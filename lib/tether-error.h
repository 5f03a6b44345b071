/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <glib.h>

#include "tether-version-macros.h"

G_BEGIN_DECLS

/**
 * TETHER_ERROR:
 *
 * Error domain for Tether's own local failures. Errors in this domain are
 * from the [error@Tether.Error] enumeration.
 *
 * Since: 0.1
 */
#define TETHER_ERROR (tether_error_quark ())

/**
 * TETHER_REMOTE_ERROR:
 *
 * Error domain for errors the peer answered with. The code is the JSON-RPC
 * error code from the wire (the well-known ones are in
 * [error@Tether.RemoteError]) and the message is the peer's text.
 *
 * Since: 0.1
 */
#define TETHER_REMOTE_ERROR (tether_remote_error_quark ())

/**
 * TetherError:
 * @TETHER_ERROR_FAILED: generic failure.
 * @TETHER_ERROR_INVALID_MESSAGE: a message was not valid JSON-RPC 2.0.
 * @TETHER_ERROR_MESSAGE_TOO_LARGE: a message was larger than allowed.
 * @TETHER_ERROR_TOO_DEEP: a message was nested deeper than allowed.
 * @TETHER_ERROR_UNSUPPORTED_VERSION: the peer speaks an unsupported protocol
 *   version.
 * @TETHER_ERROR_NO_SUCH_METHOD: no such method is registered.
 * @TETHER_ERROR_INVALID_PARAMS: parameters did not match the declared
 *   signature.
 * @TETHER_ERROR_RESOURCE_EXHAUSTED: a limit was reached; nothing was queued.
 * @TETHER_ERROR_UNAUTHENTICATED: the peer is not authenticated.
 * @TETHER_ERROR_PERMISSION_DENIED: the peer may not do this.
 * @TETHER_ERROR_IMPERSONATION_DENIED: the caller did not grant the
 *   impersonation level this needs.
 * @TETHER_ERROR_CALLBACK_REJECTED: a callback failed verification.
 * @TETHER_ERROR_CHANNEL_BINDING_FAILED: channel binding did not match.
 * @TETHER_ERROR_HANDSHAKE_FAILED: the WebSocket or hello handshake failed.
 * @TETHER_ERROR_INSECURE_TRANSPORT: a plaintext transport beyond loopback
 *   was refused.
 * @TETHER_ERROR_PEER_NOT_TRUSTED: the process serving a Unix socket is not
 *   the expected user.
 * @TETHER_ERROR_INVALID_URI: a URI could not be understood.
 *
 * Tether's own local failures. Values are never renumbered.
 *
 * Since: 0.1
 */
typedef enum
{
  TETHER_ERROR_FAILED,
  TETHER_ERROR_INVALID_MESSAGE,
  TETHER_ERROR_MESSAGE_TOO_LARGE,
  TETHER_ERROR_TOO_DEEP,
  TETHER_ERROR_UNSUPPORTED_VERSION,
  TETHER_ERROR_NO_SUCH_METHOD,
  TETHER_ERROR_INVALID_PARAMS,
  TETHER_ERROR_RESOURCE_EXHAUSTED,
  TETHER_ERROR_UNAUTHENTICATED,
  TETHER_ERROR_PERMISSION_DENIED,
  TETHER_ERROR_IMPERSONATION_DENIED,
  TETHER_ERROR_CALLBACK_REJECTED,
  TETHER_ERROR_CHANNEL_BINDING_FAILED,
  TETHER_ERROR_HANDSHAKE_FAILED,
  TETHER_ERROR_INSECURE_TRANSPORT,
  TETHER_ERROR_PEER_NOT_TRUSTED,
  TETHER_ERROR_INVALID_URI,
} TetherError;

/**
 * TetherRemoteError:
 * @TETHER_REMOTE_ERROR_PARSE_ERROR: -32700, the peer could not parse JSON.
 * @TETHER_REMOTE_ERROR_INVALID_REQUEST: -32600, not a valid request.
 * @TETHER_REMOTE_ERROR_METHOD_NOT_FOUND: -32601, no such method.
 * @TETHER_REMOTE_ERROR_INVALID_PARAMS: -32602, invalid parameters.
 * @TETHER_REMOTE_ERROR_INTERNAL_ERROR: -32603, internal error.
 * @TETHER_REMOTE_ERROR_DEADLINE_EXCEEDED: -32001, the deadline passed.
 * @TETHER_REMOTE_ERROR_CANCELLED: -32002, the call was cancelled.
 * @TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED: -32003, a limit was reached.
 * @TETHER_REMOTE_ERROR_UNAUTHENTICATED: -32004, authentication needed.
 * @TETHER_REMOTE_ERROR_PERMISSION_DENIED: -32005, not allowed.
 * @TETHER_REMOTE_ERROR_IMPERSONATION_DENIED: -32006, impersonation level
 *   not granted.
 * @TETHER_REMOTE_ERROR_CALLBACK_REJECTED: -32007, callback rejected.
 * @TETHER_REMOTE_ERROR_CHANNEL_BINDING_FAILED: -32008, channel binding
 *   failed.
 * @TETHER_REMOTE_ERROR_UNAVAILABLE: -32009, the service is unavailable.
 *
 * The well-known JSON-RPC error codes. Errors in the
 * %TETHER_REMOTE_ERROR domain carry the peer's wire code, which may be any
 * integer: applications use codes outside -32768…-32000.
 *
 * Since: 0.1
 */
typedef enum
{
  TETHER_REMOTE_ERROR_PARSE_ERROR = -32700,
  TETHER_REMOTE_ERROR_INVALID_REQUEST = -32600,
  TETHER_REMOTE_ERROR_METHOD_NOT_FOUND = -32601,
  TETHER_REMOTE_ERROR_INVALID_PARAMS = -32602,
  TETHER_REMOTE_ERROR_INTERNAL_ERROR = -32603,
  TETHER_REMOTE_ERROR_DEADLINE_EXCEEDED = -32001,
  TETHER_REMOTE_ERROR_CANCELLED = -32002,
  TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED = -32003,
  TETHER_REMOTE_ERROR_UNAUTHENTICATED = -32004,
  TETHER_REMOTE_ERROR_PERMISSION_DENIED = -32005,
  TETHER_REMOTE_ERROR_IMPERSONATION_DENIED = -32006,
  TETHER_REMOTE_ERROR_CALLBACK_REJECTED = -32007,
  TETHER_REMOTE_ERROR_CHANNEL_BINDING_FAILED = -32008,
  TETHER_REMOTE_ERROR_UNAVAILABLE = -32009,
} TetherRemoteError;

TETHER_AVAILABLE_IN_ALL
GQuark tether_error_quark        (void);
TETHER_AVAILABLE_IN_ALL
GQuark tether_remote_error_quark (void);

G_END_DECLS
