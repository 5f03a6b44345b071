/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <sys/socket.h>

#include "tether-accept-private.h"
#include "tether-identity-private.h"
#include "tether-proxy-header-private.h"

struct _TetherAccept
{
  TetherAcceptOptions      options;
  const TetherAcceptFuncs *funcs;
  gpointer                 user_data;
  GSocketConnection       *socket_conn;
  GIOStream               *tls;
  GCancellable            *cancellable;
  TetherIdentity          *identity;
  TetherWatch             *proxy_watch; /* waiting for the whole PROXY header */
  gsize                    proxy_seen;  /* bytes of it there at the last look */
  GInetSocketAddress      *client;      /* the client the PROXY header named */
  TetherWatch             *hello_watch; /* waiting for the whole ClientHello */
  gsize                    hello_need;  /* bytes of it awaited (SO_RCVLOWAT) */
  TetherGuardStream       *guard;
  TetherUpgrade           *upgrade;
};

#define TLS_RECORD_HEADER 5
#define TLS_MAX_RECORD    (16384 + 2048)

static void
accept_done (TetherAccept       *self,
             TetherAcceptResult  result,
             TetherWebsocket    *ws,
             const char         *reason)
{
  self->funcs->done (self, result, ws, reason, self->user_data);
}

/* The upgrade is over: a WebSocket, or a refusal already answered. */
static void
upgrade_cb (TetherUpgrade       *upgrade,
            TetherUpgradeResult  result,
            TetherWebsocket     *ws,
            const char          *reason,
            gpointer             user_data)
{
  TetherAccept *self = user_data;

  switch (result)
    {
    case TETHER_UPGRADE_OK:
      /* The guard holds the streams now. */
      g_clear_object (&self->tls);
      g_clear_object (&self->socket_conn);
      accept_done (self, TETHER_ACCEPT_OK, ws, NULL);
      break;
    case TETHER_UPGRADE_FORBIDDEN:
      accept_done (self, TETHER_ACCEPT_FORBIDDEN, NULL, reason);
      break;
    case TETHER_UPGRADE_HEALTH:
      accept_done (self, TETHER_ACCEPT_HEALTH, NULL, NULL);
      break;
    case TETHER_UPGRADE_REFUSED:
    case TETHER_UPGRADE_FAILED:
    default:
      accept_done (self, TETHER_ACCEPT_FAILED, NULL, reason);
      break;
    }
}

static void
start_http (TetherAccept *self,
            GIOStream    *base)
{
  self->guard = _tether_guard_stream_new (base, g_socket_connection_get_socket (self->socket_conn),
                                          TETHER_MAX_HANDSHAKE_BYTES,
                                          self->options.max_message_size);
  self->upgrade = _tether_upgrade_new (self->guard, self->options.scheduler,
                                       self->options.allowed_origins, self->options.draining,
                                       upgrade_cb, self);
}

static void
tls_handshake_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  TetherAccept *self = user_data;
  g_autoptr(GError) error = NULL;
  GTlsConnection *tls = G_TLS_CONNECTION (source);

  if (!g_tls_connection_handshake_finish (tls, result, &error))
    {
      /* Cancelled means the accept was already freed. */
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        accept_done (self, TETHER_ACCEPT_FAILED, NULL, error->message);
      return;
    }

  g_clear_object (&self->identity);
  self->identity = _tether_identity_new_from_socket (TETHER_TRANSPORT_TLS, self->socket_conn,
                                                     g_tls_connection_get_peer_certificate (tls),
                                                     g_tls_connection_get_peer_certificate_errors (tls) == 0);
  if (self->client != NULL)
    {
      TetherIdentity *proxied = _tether_identity_new_proxied (self->identity, self->client);

      g_object_unref (self->identity);
      self->identity = proxied;
    }
  if (!self->funcs->identified (self, self->user_data))
    {
      accept_done (self, TETHER_ACCEPT_REFUSED, NULL, NULL);
      return;
    }
  start_http (self, self->tls);
}

/* glib-networking never accepts a client certificate by itself on the
 * server side: accept exactly those that verified against the client
 * database, and nothing else. */
static gboolean
accept_client_certificate_cb (GTlsConnection       *tls,
                              GTlsCertificate      *certificate,
                              GTlsCertificateFlags  errors,
                              gpointer              user_data)
{
  return errors == 0;
}

/* The kernel wakes the watch only once this many bytes are waiting. */
static void
set_rcvlowat (GSocket *socket,
              int      bytes)
{
  g_autoptr(GError) error = NULL;

  if (!g_socket_set_option (socket, SOL_SOCKET, SO_RCVLOWAT, bytes, &error))
    g_debug ("SO_RCVLOWAT: %s", error->message);
}

/* The client's first TLS record is here whole: now the handshake may
 * have a thread (glib-networking runs each in one, blocking), if the
 * owner grants it one. */
static void
start_tls (TetherAccept *self)
{
  g_autoptr(GError) error = NULL;

  if (!self->funcs->tls_start (self, self->user_data))
    {
      accept_done (self, TETHER_ACCEPT_REFUSED, NULL, NULL);
      return;
    }

  /* Give the connection its database at construction: glib-networking
   * otherwise loads the whole system trust store into every server
   * connection (measured: 3.9 MB per idle wss:// connection), to verify
   * client certificates it never asked for. */
  self->tls = g_initable_new (g_tls_backend_get_server_connection_type (g_tls_backend_get_default ()),
                              NULL, &error,
                              "base-io-stream", self->socket_conn,
                              "certificate", self->options.tls_certificate,
                              "database", self->options.tls_client_database,
                              NULL);
  if (self->tls == NULL)
    {
      accept_done (self, TETHER_ACCEPT_FAILED, NULL, error->message);
      return;
    }
  if (self->options.tls_client_database != NULL)
    {
      g_tls_connection_set_database (G_TLS_CONNECTION (self->tls),
                                     self->options.tls_client_database);
      g_object_set (self->tls, "authentication-mode", G_TLS_AUTHENTICATION_REQUESTED, NULL);
      g_signal_connect (self->tls, "accept-certificate",
                        G_CALLBACK (accept_client_certificate_cb), NULL);
    }
  g_tls_connection_handshake_async (G_TLS_CONNECTION (self->tls), G_PRIORITY_DEFAULT,
                                    self->cancellable, tls_handshake_cb, self);
}

/* glib-networking would give the handshake a thread at once, and the
 * thread would wait on the client: a TLS slow-loris that dribbles its
 * ClientHello held a thread per connection, and honest handshakes queued
 * behind them in GIO's pool. So the first TLS record is awaited here,
 * with no thread: SO_RCVLOWAT makes the kernel wake the watch only when
 * its header (5 bytes), then the whole record, has arrived — without
 * reading it, so that GnuTLS still reads it all. A client that never
 * sends it whole is cut at the owner's deadline, having cost a socket. */
static void
hello_watch_cb (TetherWatch  *watch,
                GIOCondition  condition,
                gpointer      user_data)
{
  TetherAccept *self = user_data;
  GSocket *socket = g_socket_connection_get_socket (self->socket_conn);
  guint8 header[TLS_RECORD_HEADER];
  gssize n;
  gsize need;

  /* The kernel wakes us before the low-water mark only for the peer's
   * end of stream (or an error): then nothing more will come. */
  n = recv (g_socket_get_fd (socket), header, sizeof header, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n < (gssize) sizeof header)
    {
      accept_done (self, TETHER_ACCEPT_FAILED, NULL,
                   n < 0 ? g_strerror (errno)
                         : "the client ended the connection before its whole TLS ClientHello");
      return;
    }

  /* Anything that is not a handshake record goes to GnuTLS at once,
   * which answers it with an alert. */
  need = sizeof header + ((header[3] << 8) | header[4]);
  if (header[0] == 22 && need <= TLS_RECORD_HEADER + TLS_MAX_RECORD)
    {
      g_autofree guint8 *record = g_malloc (need);

      n = recv (g_socket_get_fd (socket), record, need, MSG_PEEK | MSG_DONTWAIT);
      if (n < (gssize) need)
        {
          if (self->hello_need == need)
            {
              accept_done (self, TETHER_ACCEPT_FAILED, NULL,
                           "the client ended the connection before its whole TLS ClientHello");
              return;
            }
          self->hello_need = need;
          set_rcvlowat (socket, (int) need);
          return;
        }
    }

  set_rcvlowat (socket, 1);
  g_clear_pointer (&self->hello_watch, _tether_watch_free);
  start_tls (self);
}

/* What comes after the PROXY header, or first without one. */
static void
start_stream (TetherAccept *self)
{
  GSocket *socket = g_socket_connection_get_socket (self->socket_conn);

  if (self->options.kind != TETHER_TRANSPORT_TLS)
    {
      start_http (self, G_IO_STREAM (self->socket_conn));
      return;
    }

  /* No thread for a client that has not sent its whole ClientHello (see
   * hello_watch_cb()). */
  set_rcvlowat (socket, TLS_RECORD_HEADER);
  self->hello_watch = _tether_scheduler_watch (self->options.scheduler, g_socket_get_fd (socket),
                                               G_IO_IN, hello_watch_cb, self);
}

/* The PROXY header is read as the ClientHello is awaited: peeked, the
 * kernel waking the watch only when more has come (SO_RCVLOWAT), and
 * consumed only once whole, so that TLS and the upgrade find their bytes
 * after it. No byte of the client's is read before it. */
static void
proxy_watch_cb (TetherWatch  *watch,
                GIOCondition  condition,
                gpointer      user_data)
{
  TetherAccept *self = user_data;
  GSocket *socket = g_socket_connection_get_socket (self->socket_conn);
  guint8 data[TETHER_PROXY_HEADER_MAX];
  TetherProxyHeader header;
  g_autoptr(GError) error = NULL;
  gsize need = 0;
  gssize n;

  n = recv (g_socket_get_fd (socket), data, sizeof data, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  /* Woken with nothing new: the peer's end of stream (or an error). */
  if (n <= (gssize) self->proxy_seen)
    {
      accept_done (self, TETHER_ACCEPT_FAILED, NULL,
                   n < 0 ? g_strerror (errno)
                         : "the connection ended before its whole PROXY protocol header");
      return;
    }
  self->proxy_seen = n;

  switch (_tether_proxy_header_parse (data, n, &header, &need, &error))
    {
    case TETHER_PROXY_NEED_MORE:
      set_rcvlowat (socket, (int) MAX (need, (gsize) n + 1));
      return;
    case TETHER_PROXY_INVALID:
      accept_done (self, TETHER_ACCEPT_FAILED, NULL, error->message);
      return;
    case TETHER_PROXY_DONE:
    default:
      break;
    }

  /* Consume the header: what follows is the client's. */
  n = recv (g_socket_get_fd (socket), data, header.length, MSG_DONTWAIT);
  set_rcvlowat (socket, 1);
  g_clear_pointer (&self->proxy_watch, _tether_watch_free);
  if (n != (gssize) header.length)
    {
      _tether_proxy_header_clear (&header);
      accept_done (self, TETHER_ACCEPT_FAILED, NULL, "the PROXY protocol header could not be read");
      return;
    }

  /* The client it names is who this is (LOCAL, the balancer's own check,
   * stays the balancer). */
  if (header.source != NULL)
    {
      TetherIdentity *proxied = _tether_identity_new_proxied (self->identity, header.source);

      self->client = g_steal_pointer (&header.source);
      g_object_unref (self->identity);
      self->identity = proxied;
      _tether_proxy_header_clear (&header);
      if (!self->funcs->identified (self, self->user_data))
        {
          accept_done (self, TETHER_ACCEPT_REFUSED, NULL, NULL);
          return;
        }
    }
  _tether_proxy_header_clear (&header);
  start_stream (self);
}

/* Only a configured balancer may say who the client is. */
static gboolean
proxy_trusted (TetherAccept *self)
{
  g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address (self->socket_conn, NULL);
  GInetAddress *address;

  if (!G_IS_INET_SOCKET_ADDRESS (remote) || self->options.trusted_proxies == NULL)
    return FALSE;
  address = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote));
  for (guint i = 0; i < self->options.trusted_proxies->len; i++)
    if (g_inet_address_mask_matches (self->options.trusted_proxies->pdata[i], address))
      return TRUE;
  return FALSE;
}

TetherAccept *
_tether_accept_new (GSocketConnection         *connection,
                    const TetherAcceptOptions *options,
                    const TetherAcceptFuncs   *funcs,
                    gpointer                   user_data)
{
  TetherAccept *self = g_new0 (TetherAccept, 1);

  self->options = *options;
  self->funcs = funcs;
  self->user_data = user_data;
  self->socket_conn = g_object_ref (connection);
  self->cancellable = g_cancellable_new ();
  _tether_socket_set_nodelay (g_socket_connection_get_socket (connection));
  self->identity = _tether_identity_new_from_socket (options->kind, connection, NULL, FALSE);
  return self;
}

void
_tether_accept_start (TetherAccept *self)
{
  GSocket *socket = g_socket_connection_get_socket (self->socket_conn);

  if (!self->options.proxy_protocol)
    {
      start_stream (self);
      return;
    }

  /* A balancer's bare TCP check connects and hangs up at once: a
   * connection gone before it is seen is not a violation. */
  if (tether_identity_get_address (self->identity)[0] == '\0')
    {
      accept_done (self, TETHER_ACCEPT_FAILED, NULL, "the connection ended as it was accepted");
      return;
    }
  if (!proxy_trusted (self))
    {
      accept_done (self, TETHER_ACCEPT_FORBIDDEN, NULL,
                   "a PROXY protocol listener takes connections from its trusted proxies only");
      return;
    }
  self->proxy_watch = _tether_scheduler_watch (self->options.scheduler, g_socket_get_fd (socket),
                                               G_IO_IN, proxy_watch_cb, self);
}

TetherIdentity *
_tether_accept_get_identity (TetherAccept *self)
{
  return self->identity;
}

const char *
_tether_accept_get_stage (TetherAccept *self)
{
  if (self->proxy_watch != NULL)
    return "no whole PROXY protocol header";
  if (self->hello_watch != NULL)
    return "no whole TLS ClientHello";
  if (self->tls != NULL && self->guard == NULL)
    return "TLS handshake not completed";
  return "WebSocket upgrade not completed";
}

TetherGuardStream *
_tether_accept_steal_guard (TetherAccept *self)
{
  return g_steal_pointer (&self->guard);
}

void
_tether_accept_free (TetherAccept *self)
{
  g_clear_pointer (&self->proxy_watch, _tether_watch_free);
  g_clear_pointer (&self->hello_watch, _tether_watch_free);
  g_clear_pointer (&self->upgrade, _tether_upgrade_free);
  g_clear_object (&self->client);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  if (self->guard != NULL)
    _tether_guard_stream_abort (self->guard);
  else if (self->socket_conn != NULL)
    g_socket_shutdown (g_socket_connection_get_socket (self->socket_conn), TRUE, TRUE, NULL);
  g_clear_object (&self->guard);
  g_clear_object (&self->tls);
  g_clear_object (&self->socket_conn);
  g_clear_object (&self->identity);
  g_free (self);
}
