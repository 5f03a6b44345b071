/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Sockets, TLS and the WebSocket upgrade. Tether opens and accepts its
 * own sockets and runs TLS itself; libsoup only sees the guard stream
 * (DESIGN.md, "Transport"). The server's accept path lives in
 * tether-server.c; the pieces both sides use are here. */

#include <libsoup/soup.h>

#include "tether-types.h"
#include "tether-guard-stream-private.h"
#include "tether-scheduler-private.h"

G_BEGIN_DECLS

#define TETHER_MAX_HANDSHAKE_BYTES (16 * 1024)

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
                                            SoupWebsocketConnection   **ws,
                                            TetherGuardStream         **guard,
                                            TetherIdentity            **server_identity,
                                            GError                    **error);

G_END_DECLS
