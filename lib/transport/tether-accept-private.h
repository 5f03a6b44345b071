/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The server's side of one new connection, from the accepted socket to
 * an upgraded WebSocket with its guard and the peer's identity: the
 * mirror of _tether_transport_connect_async(). Over TLS it waits for the
 * whole ClientHello without a thread, runs the handshake and identifies
 * the peer by its certificate; then the guard stream and the HTTP
 * upgrade. Behind a load balancer that speaks the PROXY protocol, its
 * header comes first (required, and only from a trusted proxy), and the
 * identity is the client's it names. Policy stays with the owner: the
 * hooks let it charge its pools
 * (and refuse) before a TLS handshake spends a thread and once the
 * identity is known, and the owner's deadline bounds the whole of it. */

#include "tether-transport-private.h"

G_BEGIN_DECLS

typedef struct _TetherAccept TetherAccept;

typedef struct
{
  TetherTransportKind  kind;
  TetherScheduler     *scheduler;
  GTlsCertificate     *tls_certificate;      /* wss:// */
  GTlsDatabase        *tls_client_database;  /* NULL: no client certificates */
  const char * const  *allowed_origins;
  const gboolean      *draining;             /* the owner's: /readyz answers 503 */
  guint                max_message_size;
  /* A PROXY protocol header must come first, from one of these. */
  gboolean             proxy_protocol;
  GPtrArray           *trusted_proxies;      /* GInetAddressMask* */
} TetherAcceptOptions;

typedef enum
{
  TETHER_ACCEPT_OK,         /* the WebSocket is open */
  TETHER_ACCEPT_REFUSED,    /* a hook said no */
  TETHER_ACCEPT_FORBIDDEN,  /* a 403 went out (a web Origin not allowed), or an untrusted proxy */
  TETHER_ACCEPT_FAILED,     /* TLS, the upgrade or the connection failed */
  TETHER_ACCEPT_HEALTH,     /* a health check (/livez, /readyz), answered */
} TetherAcceptResult;

typedef struct
{
  /* TLS: the ClientHello is whole, and the handshake would now take a
   * thread. FALSE refuses the connection (the hook said why). */
  gboolean (*tls_start)  (TetherAccept *accept, gpointer user_data);
  /* The identity may have changed: a PROXY header named the client, or
   * the TLS handshake verified a certificate. FALSE refuses the
   * connection. */
  gboolean (*identified) (TetherAccept *accept, gpointer user_data);
  /* Once, at the end, unless the accept was freed first. With
   * TETHER_ACCEPT_OK take the guard with _tether_accept_steal_guard();
   * @reason says what went wrong otherwise (NULL for REFUSED). The
   * callback may free @accept. */
  void     (*done)       (TetherAccept       *accept,
                          TetherAcceptResult  result,
                          TetherWebsocket    *ws,
                          const char         *reason,
                          gpointer            user_data);
} TetherAcceptFuncs;

/* Identifies the peer from @connection at once (peer credentials, or
 * the address); nothing else happens before _tether_accept_start(). */
TetherAccept      *_tether_accept_new          (GSocketConnection         *connection,
                                                const TetherAcceptOptions *options,
                                                const TetherAcceptFuncs   *funcs,
                                                gpointer                   user_data);
void               _tether_accept_start        (TetherAccept              *accept);
/* Who the peer is, as far as is known yet. */
TetherIdentity    *_tether_accept_get_identity (TetherAccept              *accept);
/* What it is waiting for, for a log line when the owner gives up. */
const char        *_tether_accept_get_stage    (TetherAccept              *accept);
/* After TETHER_ACCEPT_OK: the guard stream, which holds the streams. */
TetherGuardStream *_tether_accept_steal_guard  (TetherAccept              *accept);
/* Stops and closes whatever is left (no callback). */
void               _tether_accept_free         (TetherAccept              *accept);

G_END_DECLS
