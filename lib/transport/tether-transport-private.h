/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Sockets, TLS and the WebSocket upgrade, both ways. Tether opens and
 * accepts its own sockets and runs TLS itself; libsoup parses the HTTP
 * heads; the WebSocket itself is TetherWebsocket, over the guard stream
 * (DESIGN.md, "Transport"; tether-websocket-private.h says why not
 * libsoup's). The server's accept path lives in tether-server.c; the
 * pieces both sides use are here. */

#include "tether-types.h"
#include "tether-guard-stream-private.h"
#include "tether-protocol-private.h"
#include "tether-scheduler-private.h"
#include "tether-websocket-private.h"

G_BEGIN_DECLS

typedef struct
{
  TetherTransportKind  kind;
  char                *path;  /* unix */
  char                *host;  /* ws, wss */
  guint16              port;
} TetherUri;

gboolean  _tether_uri_parse              (const char        *uri,
                                          TetherUri         *out,
                                          GError           **error);
void      _tether_uri_clear              (TetherUri         *uri);
char     *_tether_uri_to_string          (const TetherUri   *uri);
gboolean  _tether_address_is_loopback    (GSocketAddress    *address);
void      _tether_socket_set_nodelay     (GSocket           *socket);

typedef struct
{
  char            *uri;
  GTlsDatabase    *tls_database;     /* NULL: the system's */
  GTlsCertificate *tls_certificate;  /* client certificate, optional */
  gint64           expected_uid;     /* -1: root or our own uid */
  gboolean         allow_insecure;   /* ws:// beyond loopback */
  guint            handshake_timeout_ms;
  gsize            max_message_size;
} TetherConnectOptions;

void      _tether_connect_options_clear  (TetherConnectOptions *options);

/* Connects, runs TLS and the WebSocket handshake under one deadline. */
void      _tether_transport_connect_async  (const TetherConnectOptions *options,
                                            TetherScheduler            *scheduler,
                                            GCancellable               *cancellable,
                                            GAsyncReadyCallback         callback,
                                            gpointer                    user_data);
gboolean  _tether_transport_connect_finish (GAsyncResult               *result,
                                            TetherWebsocket           **ws,
                                            TetherGuardStream         **guard,
                                            TetherIdentity            **server_identity,
                                            GError                    **error);

/* A listening socket, accepted from a watch in the scheduler. Each
 * dispatch accepts what is waiting, up to a fair share; when the process
 * runs out of descriptors (EMFILE, ENFILE) accepting pauses, with a
 * backoff from 10 ms to 1 s, instead of spinning on a socket that stays
 * readable, and says so in one rate-limited log line. Accepted sockets
 * are non-blocking. */
typedef struct _TetherListener TetherListener;
typedef void (*TetherAcceptFunc) (TetherListener    *listener,
                                  GSocketConnection *connection,
                                  gpointer           user_data);

/* Listens on @uri: `unix:/PATH` (the socket file is removed with the
 * listener), `ws://` or `wss://` on an IP address or localhost, port 0
 * picking one. Plaintext `ws://` beyond loopback only with
 * @allow_insecure; `wss://` only when @tls_ready (the caller has a
 * certificate). */
TetherListener *_tether_listener_new_for_uri (const char        *uri,
                                              gboolean           allow_insecure,
                                              gboolean           tls_ready,
                                              TetherScheduler   *scheduler,
                                              TetherAcceptFunc   func,
                                              gpointer           user_data,
                                              GError           **error);
/* Listens on @socket, already bound and listening (systemd socket
 * activation): `unix:` for a unix socket (its file is left to whoever
 * made it), else `wss://` when @tls_ready and `ws://` otherwise, with the
 * same rule for plaintext beyond loopback. A reference is taken. */
TetherListener *_tether_listener_new_for_socket (GSocket         *socket,
                                                 gboolean         allow_insecure,
                                                 gboolean         tls_ready,
                                                 TetherScheduler *scheduler,
                                                 TetherAcceptFunc func,
                                                 gpointer         user_data,
                                                 GError         **error);
TetherTransportKind _tether_listener_get_kind (TetherListener   *listener);
/* @uri with the port really bound. */
const char     *_tether_listener_get_uri     (TetherListener    *listener);
void            _tether_listener_free        (TetherListener    *listener);

/* The server's side of the upgrade: reads the HTTP head through the guard
 * (which bounds its size; the owner's deadline bounds its time), checks
 * it as RFC 6455 asks, and answers 101 — or 400 (not an upgrade Tether
 * takes), or 403 (a web Origin not in @allowed_origins; requests without
 * Origin come from programs, not web pages, and are let in). A plain
 * `GET /livez` or `GET /readyz` (no upgrade) is a health check: answered
 * 200, or for readyz 503 while *@draining, and closed. Bytes that came
 * after the head are kept for the WebSocket. Costs nothing on the
 * context while it waits: a watch in the scheduler. */
typedef enum
{
  TETHER_UPGRADE_OK,
  TETHER_UPGRADE_REFUSED,      /* a 400 (or other 4xx/5xx) went out */
  TETHER_UPGRADE_FORBIDDEN,    /* a 403 went out: the Origin */
  TETHER_UPGRADE_FAILED,       /* the connection failed or closed */
  TETHER_UPGRADE_HEALTH,       /* a health check, answered */
} TetherUpgradeResult;

typedef struct _TetherUpgrade TetherUpgrade;
/* @ws: the open WebSocket (not started) with TETHER_UPGRADE_OK, else NULL.
 * @reason: what went wrong, for the log, else NULL. Runs once; the
 * callback may free @upgrade. */
typedef void (*TetherUpgradeFunc) (TetherUpgrade       *upgrade,
                                   TetherUpgradeResult  result,
                                   TetherWebsocket     *ws,
                                   const char          *reason,
                                   gpointer             user_data);

TetherUpgrade *_tether_upgrade_new  (TetherGuardStream  *guard,
                                     TetherScheduler    *scheduler,
                                     const char * const *allowed_origins,
                                     const gboolean     *draining,
                                     TetherUpgradeFunc   func,
                                     gpointer            user_data);
/* Stops it (no callback). */
void           _tether_upgrade_free (TetherUpgrade      *upgrade);

G_END_DECLS
