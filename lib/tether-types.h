/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <gio/gio.h>

#include "tether-version-macros.h"

G_BEGIN_DECLS

typedef struct _TetherClient     TetherClient;
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
