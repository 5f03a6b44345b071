/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>
#include <gio/gunixsocketaddress.h>
#include <libsoup/soup.h>

#include "tether-error.h"
#include "tether-identity-private.h"
#include "tether-log-private.h"
#include "tether-transport-private.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---------------------------------------------------------------------- */
/* URIs                                                                   */

void
_tether_uri_clear (TetherUri *uri)
{
  g_clear_pointer (&uri->path, g_free);
  g_clear_pointer (&uri->host, g_free);
}

gboolean
_tether_uri_parse (const char  *uri,
                   TetherUri   *out,
                   GError     **error)
{
  g_autoptr(GUri) parsed = NULL;
  g_autoptr(GError) local_error = NULL;
  const char *scheme;
  int port;

  memset (out, 0, sizeof *out);

  if (g_str_has_prefix (uri, "unix:"))
    {
      const char *path = uri + strlen ("unix:");

      if (*path != '/')
        {
          g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_URI,
                       "“%s”: a unix: URI needs an absolute path, e.g. unix:/run/app.sock", uri);
          return FALSE;
        }
      out->kind = TETHER_TRANSPORT_UNIX;
      out->path = g_strdup (path);
      return TRUE;
    }

  parsed = g_uri_parse (uri, G_URI_FLAGS_NONE, &local_error);
  if (parsed == NULL)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_URI,
                   "“%s” is not a valid URI: %s", uri, local_error->message);
      return FALSE;
    }

  scheme = g_uri_get_scheme (parsed);
  if (g_ascii_strcasecmp (scheme, "ws") == 0)
    out->kind = TETHER_TRANSPORT_TCP;
  else if (g_ascii_strcasecmp (scheme, "wss") == 0)
    out->kind = TETHER_TRANSPORT_TLS;
  else
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_URI,
                   "“%s”: unsupported scheme (use unix:, ws:// or wss://)", uri);
      return FALSE;
    }

  port = g_uri_get_port (parsed);
  if (g_uri_get_host (parsed) == NULL || *g_uri_get_host (parsed) == '\0' || port < 0)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_URI,
                   "“%s”: a host and a port are needed, e.g. %s://127.0.0.1:0",
                   uri, scheme);
      return FALSE;
    }

  out->host = g_strdup (g_uri_get_host (parsed));
  out->port = port;
  return TRUE;
}

char *
_tether_uri_to_string (const TetherUri *uri)
{
  if (uri->kind == TETHER_TRANSPORT_UNIX)
    return g_strconcat ("unix:", uri->path, NULL);

  return g_strdup_printf ("%s://%s%s%s:%u",
                          uri->kind == TETHER_TRANSPORT_TLS ? "wss" : "ws",
                          strchr (uri->host, ':') ? "[" : "", uri->host,
                          strchr (uri->host, ':') ? "]" : "", uri->port);
}

gboolean
_tether_address_is_loopback (GSocketAddress *address)
{
  if (G_IS_UNIX_SOCKET_ADDRESS (address))
    return TRUE;
  if (G_IS_INET_SOCKET_ADDRESS (address))
    return g_inet_address_get_is_loopback (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
  return FALSE;
}

void
_tether_socket_set_nodelay (GSocket *socket)
{
  g_autoptr(GError) error = NULL;

  if (g_socket_get_family (socket) == G_SOCKET_FAMILY_UNIX)
    return;
  /* Small request/response messages: Nagle would add a delayed-ACK wait. */
  if (!g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, &error))
    g_debug ("TCP_NODELAY: %s", error->message);
}

void
_tether_connect_options_clear (TetherConnectOptions *options)
{
  g_clear_pointer (&options->uri, g_free);
  g_clear_object (&options->tls_database);
  g_clear_object (&options->tls_certificate);
}

/* ---------------------------------------------------------------------- */
/* Client connect                                                         */

typedef struct
{
  TetherDeadline        deadline;       /* first: the scheduler hands it back */
  TetherConnectOptions  options;
  TetherUri             uri;
  TetherScheduler      *scheduler;
  GCancellable         *cancellable;    /* ours: user cancel or deadline */
  GCancellable         *user_cancellable;
  gulong                user_cancel_id;
  gboolean              timed_out;
  GSocketConnection    *socket_conn;
  GIOStream            *tls;
  TetherGuardStream    *guard;
  TetherIdentity       *identity;
  char                 *key;
  char                 *request;
  GByteArray           *head;
  TetherWatch          *watch;          /* reading the answer's head */
  GSource              *cancel_source;  /* while the watch waits */
  GTask                *task;           /* unowned, while the watch waits */
} ConnectData;

static void
connect_data_stop_reading (ConnectData *data)
{
  g_clear_pointer (&data->watch, _tether_watch_free);
  if (data->cancel_source != NULL)
    g_source_destroy (data->cancel_source);
  g_clear_pointer (&data->cancel_source, g_source_unref);
  data->task = NULL;
}

static void
connect_data_free (ConnectData *data)
{
  connect_data_stop_reading (data);
  _tether_scheduler_remove (data->scheduler, &data->deadline);
  if (data->user_cancel_id != 0)
    g_cancellable_disconnect (data->user_cancellable, data->user_cancel_id);
  _tether_connect_options_clear (&data->options);
  _tether_uri_clear (&data->uri);
  _tether_scheduler_unref (data->scheduler);
  g_clear_object (&data->cancellable);
  g_clear_object (&data->user_cancellable);
  g_clear_object (&data->socket_conn);
  g_clear_object (&data->tls);
  if (data->guard != NULL)
    _tether_guard_stream_abort (data->guard);
  g_clear_object (&data->guard);
  g_clear_object (&data->identity);
  g_free (data->key);
  g_free (data->request);
  g_clear_pointer (&data->head, g_byte_array_unref);
  g_free (data);
}

typedef struct
{
  TetherWebsocket   *ws;
  TetherGuardStream *guard;
  TetherIdentity    *identity;
} ConnectResult;

static void
connect_result_free (ConnectResult *result)
{
  g_clear_pointer (&result->ws, _tether_websocket_unref);
  g_clear_object (&result->guard);
  g_clear_object (&result->identity);
  g_free (result);
}

static void
connect_fail (GTask  *task,
              GError *error)
{
  ConnectData *data = g_task_get_task_data (task);

  if (data->timed_out && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_clear_error (&error);
      error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                           "Connecting to %s took longer than %u ms",
                           data->options.uri, data->options.handshake_timeout_ms);
    }
  g_task_return_error (task, error);
  g_object_unref (task);
}

static void
connect_deadline_cb (TetherDeadline *deadline)
{
  ConnectData *data = (ConnectData *) deadline;

  data->timed_out = TRUE;
  g_cancellable_cancel (data->cancellable);
}

static void
user_cancelled_cb (GCancellable *user_cancellable,
                   GCancellable *ours)
{
  g_cancellable_cancel (ours);
}

/* Sec-WebSocket-Accept for @key (RFC 6455 §4.2.2). */
static char *
compute_accept (const char *key)
{
  g_autoptr(GChecksum) sha1 = g_checksum_new (G_CHECKSUM_SHA1);
  guint8 digest[20];
  gsize len = sizeof digest;

  g_checksum_update (sha1, (const guchar *) key, -1);
  g_checksum_update (sha1, (const guchar *) WS_GUID, -1);
  g_checksum_get_digest (sha1, digest, &len);
  return g_base64_encode (digest, len);
}

static gboolean
check_accept_header (const char *key,
                     const char *accept)
{
  g_autofree char *expected = compute_accept (key);

  return accept != NULL && strcmp (expected, accept) == 0;
}

static gboolean
check_upgrade_response (ConnectData  *data,
                        const char   *head,
                        gsize         len,
                        GError      **error)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autofree char *reason = NULL;
  const char *protocol;
  guint status = 0;

  if (!soup_headers_parse_response (head, len, headers, NULL, &status, &reason))
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_HANDSHAKE_FAILED,
                           "The server's answer to the WebSocket upgrade is not HTTP");
      return FALSE;
    }

  if (status != 101)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_HANDSHAKE_FAILED,
                   "The server refused the WebSocket upgrade: %u %s", status, reason);
      return FALSE;
    }

  if (!soup_message_headers_header_equals (headers, "Upgrade", "websocket") ||
      !soup_message_headers_header_contains (headers, "Connection", "upgrade") ||
      !check_accept_header (data->key, soup_message_headers_get_one (headers, "Sec-WebSocket-Accept")))
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_HANDSHAKE_FAILED,
                           "The server's WebSocket upgrade answer is invalid");
      return FALSE;
    }

  if (soup_message_headers_get_one (headers, "Sec-WebSocket-Extensions") != NULL)
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_HANDSHAKE_FAILED,
                           "The server negotiated a WebSocket extension nobody asked for");
      return FALSE;
    }

  protocol = soup_message_headers_get_one (headers, "Sec-WebSocket-Protocol");
  if (g_strcmp0 (protocol, TETHER_SUBPROTOCOL) != 0)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_HANDSHAKE_FAILED,
                   "The server does not speak %s", TETHER_SUBPROTOCOL);
      return FALSE;
    }

  return TRUE;
}

/* The server's answer arrived whole: check it, keep what came after it,
 * and hand over the WebSocket. */
static void
head_complete (GTask *task,
               gsize  head_len)
{
  ConnectData *data = g_task_get_task_data (task);
  GError *error = NULL;
  ConnectResult *ret;

  if (!check_upgrade_response (data, (const char *) data->head->data, head_len, &error))
    {
      connect_fail (task, error);
      return;
    }

  /* A server may send frames in the same read as its 101. */
  if (data->head->len > head_len)
    _tether_guard_stream_push_back (data->guard, data->head->data + head_len,
                                    data->head->len - head_len);

  ret = g_new0 (ConnectResult, 1);
  ret->ws = _tether_websocket_new (data->guard, TRUE, TETHER_SUBPROTOCOL);
  ret->guard = g_steal_pointer (&data->guard);
  ret->identity = g_steal_pointer (&data->identity);
  g_task_return_pointer (task, ret, (GDestroyNotify) connect_result_free);
  g_object_unref (task);
}

/* Reads what the socket has, from a watch in the scheduler (a client
 * process with thousands of connections polls none of them while they
 * wait), until the head is complete. */
static void
head_watch_cb (TetherWatch  *watch,
               GIOCondition  condition,
               gpointer      user_data)
{
  ConnectData *data = user_data;
  GTask *task = data->task;
  GPollableInputStream *input = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (data->guard)));

  for (;;)
    {
      GError *error = NULL;
      guint8 buffer[4096];
      gssize n = g_pollable_input_stream_read_nonblocking (input, buffer, sizeof buffer, NULL, &error);
      const guint8 *end;

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_error_free (error);
          return;
        }
      if (n <= 0)
        {
          connect_data_stop_reading (data);
          connect_fail (task, n < 0 ? error
                                    : g_error_new_literal (TETHER_ERROR, TETHER_ERROR_HANDSHAKE_FAILED,
                                                           "The server closed the connection during "
                                                           "the WebSocket upgrade"));
          return;
        }

      g_byte_array_append (data->head, buffer, n);
      end = memmem (data->head->data, data->head->len, "\r\n\r\n", 4);
      if (end != NULL)
        {
          connect_data_stop_reading (data);
          head_complete (task, end + 4 - data->head->data);
          return;
        }
      if (data->head->len > TETHER_MAX_HANDSHAKE_BYTES)
        {
          connect_data_stop_reading (data);
          connect_fail (task, g_error_new (TETHER_ERROR, TETHER_ERROR_HANDSHAKE_FAILED,
                                           "The server's upgrade answer is larger than %d bytes",
                                           TETHER_MAX_HANDSHAKE_BYTES));
          return;
        }
    }
}

/* The user's cancellable or the deadline fired while the head was
 * awaited. */
static gboolean
head_cancelled_cb (GCancellable *cancellable,
                   gpointer      user_data)
{
  ConnectData *data = user_data;
  GTask *task = data->task;

  connect_data_stop_reading (data);
  connect_fail (task, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "Cancelled"));
  return G_SOURCE_REMOVE;
}

static void
read_head (GTask *task)
{
  ConnectData *data = g_task_get_task_data (task);

  data->task = task;
  data->watch = _tether_scheduler_watch (data->scheduler,
                                         g_socket_get_fd (g_socket_connection_get_socket (data->socket_conn)),
                                         G_IO_IN, head_watch_cb, data);
  /* The answer may already be in GnuTLS's buffer, not on the socket. */
  _tether_watch_again (data->watch);
  data->cancel_source = g_cancellable_source_new (data->cancellable);
  g_source_set_callback (data->cancel_source, (GSourceFunc) (void (*) (void)) head_cancelled_cb, data, NULL);
  g_source_set_static_name (data->cancel_source, "[tether] connect cancelled");
  g_source_attach (data->cancel_source, g_task_get_context (task));
}

static void
write_request_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      connect_fail (task, error);
      return;
    }
  read_head (task);
}

static void
start_upgrade (GTask     *task,
               GIOStream *base)
{
  ConnectData *data = g_task_get_task_data (task);
  guint8 nonce[16];
  g_autofree char *host = NULL;

  data->guard = _tether_guard_stream_new (base, g_socket_connection_get_socket (data->socket_conn),
                                          TETHER_MAX_HANDSHAKE_BYTES,
                                          data->options.max_message_size);

  for (guint i = 0; i < sizeof nonce; i++)
    nonce[i] = g_random_int_range (0, 256);
  data->key = g_base64_encode (nonce, sizeof nonce);

  if (data->uri.kind == TETHER_TRANSPORT_UNIX)
    host = g_strdup ("localhost");
  else if (strchr (data->uri.host, ':') != NULL)
    host = g_strdup_printf ("[%s]:%u", data->uri.host, data->uri.port);
  else
    host = g_strdup_printf ("%s:%u", data->uri.host, data->uri.port);

  /* No Sec-WebSocket-Extensions: compression is never negotiated. */
  data->request = g_strdup_printf ("GET / HTTP/1.1\r\n"
                                   "Host: %s\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: %s\r\n"
                                   "Sec-WebSocket-Version: 13\r\n"
                                   "Sec-WebSocket-Protocol: " TETHER_SUBPROTOCOL "\r\n"
                                   "\r\n", host, data->key);
  data->head = g_byte_array_new ();

  g_output_stream_write_all_async (g_io_stream_get_output_stream (G_IO_STREAM (data->guard)),
                                   data->request, strlen (data->request), G_PRIORITY_DEFAULT,
                                   data->cancellable, write_request_cb, task);
}

static void
tls_handshake_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;
  ConnectData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error))
    {
      connect_fail (task, error);
      return;
    }

  data->identity = _tether_identity_new_from_socket (TETHER_TRANSPORT_TLS, data->socket_conn,
                                                     g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (source)),
                                                     TRUE);
  start_upgrade (task, data->tls);
}

static void
socket_connect_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GTask *task = user_data;
  ConnectData *data = g_task_get_task_data (task);
  GError *error = NULL;
  GSocket *socket;
  g_autoptr(GSocketAddress) remote = NULL;

  data->socket_conn = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  if (data->socket_conn == NULL)
    {
      connect_fail (task, error);
      return;
    }

  socket = g_socket_connection_get_socket (data->socket_conn);
  _tether_socket_set_nodelay (socket);
  remote = g_socket_connection_get_remote_address (data->socket_conn, NULL);

  if (data->uri.kind == TETHER_TRANSPORT_TCP && !data->options.allow_insecure &&
      (remote == NULL || !_tether_address_is_loopback (remote)))
    {
      connect_fail (task, g_error_new (TETHER_ERROR, TETHER_ERROR_INSECURE_TRANSPORT,
                                       "Refusing plaintext ws:// beyond loopback (%s): "
                                       "use wss://, or allow insecure transports explicitly",
                                       data->options.uri));
      return;
    }

  if (data->uri.kind == TETHER_TRANSPORT_UNIX)
    {
      gint64 uid;

      data->identity = _tether_identity_new_from_socket (TETHER_TRANSPORT_UNIX, data->socket_conn,
                                                         NULL, FALSE);
      uid = tether_identity_get_uid (data->identity);

      /* A socket path can be squatted: check who serves it before we say
       * anything. */
      if (uid < 0 ||
          !(data->options.expected_uid >= 0 ? uid == data->options.expected_uid
                                            : (uid == 0 || uid == (gint64) geteuid ())))
        {
          connect_fail (task, g_error_new (TETHER_ERROR, TETHER_ERROR_PEER_NOT_TRUSTED,
                                           "%s is served by uid %" G_GINT64_FORMAT
                                           ", not by %s", data->options.uri, uid,
                                           data->options.expected_uid >= 0
                                             ? "the expected user" : "root or this user"));
          return;
        }
      start_upgrade (task, G_IO_STREAM (data->socket_conn));
      return;
    }

  if (data->uri.kind == TETHER_TRANSPORT_TCP)
    {
      data->identity = _tether_identity_new_from_socket (TETHER_TRANSPORT_TCP, data->socket_conn,
                                                         NULL, FALSE);
      start_upgrade (task, G_IO_STREAM (data->socket_conn));
      return;
    }

  {
    g_autoptr(GSocketConnectable) identity = g_network_address_new (data->uri.host, data->uri.port);

    data->tls = g_tls_client_connection_new (G_IO_STREAM (data->socket_conn), identity, &error);
    if (data->tls == NULL)
      {
        connect_fail (task, error);
        return;
      }
    /* Verification is never skipped: only the database can change. */
    if (data->options.tls_database != NULL)
      g_tls_connection_set_database (G_TLS_CONNECTION (data->tls), data->options.tls_database);
    if (data->options.tls_certificate != NULL)
      g_tls_connection_set_certificate (G_TLS_CONNECTION (data->tls), data->options.tls_certificate);
    g_tls_connection_handshake_async (G_TLS_CONNECTION (data->tls), G_PRIORITY_DEFAULT,
                                      data->cancellable, tls_handshake_cb, task);
  }
}

void
_tether_transport_connect_async (const TetherConnectOptions *options,
                                 TetherScheduler            *scheduler,
                                 GCancellable               *cancellable,
                                 GAsyncReadyCallback         callback,
                                 gpointer                    user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  ConnectData *data = g_new0 (ConnectData, 1);
  g_autoptr(GSocketClient) client = NULL;
  g_autoptr(GSocketConnectable) connectable = NULL;
  GError *error = NULL;

  g_task_set_source_tag (task, _tether_transport_connect_async);
  g_task_set_name (task, "[tether] connect");
  g_task_set_task_data (task, data, (GDestroyNotify) connect_data_free);

  data->options.uri = g_strdup (options->uri);
  g_set_object (&data->options.tls_database, options->tls_database);
  g_set_object (&data->options.tls_certificate, options->tls_certificate);
  data->options.expected_uid = options->expected_uid;
  data->options.allow_insecure = options->allow_insecure;
  data->options.handshake_timeout_ms = options->handshake_timeout_ms;
  data->options.max_message_size = options->max_message_size;
  data->scheduler = _tether_scheduler_ref (scheduler);
  data->cancellable = g_cancellable_new ();

  if (!_tether_uri_parse (options->uri, &data->uri, &error))
    {
      connect_fail (task, error);
      return;
    }

  if (cancellable != NULL)
    {
      data->user_cancellable = g_object_ref (cancellable);
      data->user_cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (user_cancelled_cb),
                                                    data->cancellable, NULL);
    }

  _tether_scheduler_add (scheduler, &data->deadline,
                         g_get_monotonic_time () + (gint64) options->handshake_timeout_ms * 1000,
                         connect_deadline_cb);

  if (data->uri.kind == TETHER_TRANSPORT_UNIX)
    connectable = G_SOCKET_CONNECTABLE (g_unix_socket_address_new (data->uri.path));
  else
    connectable = g_network_address_new (data->uri.host, data->uri.port);

  client = g_socket_client_new ();
  g_socket_client_connect_async (client, connectable, data->cancellable, socket_connect_cb, task);
}

gboolean
_tether_transport_connect_finish (GAsyncResult             *result,
                                  TetherWebsocket         **ws,
                                  TetherGuardStream       **guard,
                                  TetherIdentity          **server_identity,
                                  GError                  **error)
{
  ConnectResult *ret = g_task_propagate_pointer (G_TASK (result), error);

  if (ret == NULL)
    return FALSE;

  *ws = g_steal_pointer (&ret->ws);
  *guard = g_steal_pointer (&ret->guard);
  *server_identity = g_steal_pointer (&ret->identity);
  connect_result_free (ret);
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* Server upgrade                                                         */

typedef enum
{
  UPGRADE_READING,
  UPGRADE_WRITING,
  UPGRADE_DONE,
} UpgradeState;

struct _TetherUpgrade
{
  TetherGuardStream   *guard;
  TetherWatch         *watch;
  char               **allowed_origins;
  const gboolean      *draining;  /* the owner's: /readyz says 503 */
  TetherUpgradeFunc    func;
  gpointer             user_data;
  UpgradeState         state;
  GByteArray          *head;      /* what was read so far */
  GString             *answer;    /* what is being written */
  gsize                answer_pos;
  TetherUpgradeResult  result;
  TetherWebsocket     *ws;
  char                *reason;
};

static void
upgrade_done (TetherUpgrade       *self,
              TetherUpgradeResult  result,
              const char          *reason)
{
  g_autoptr(TetherWebsocket) ws = g_steal_pointer (&self->ws);

  self->state = UPGRADE_DONE;
  g_clear_pointer (&self->watch, _tether_watch_free);
  self->func (self, result, result == TETHER_UPGRADE_OK ? ws : NULL, reason, self->user_data);
}

/* Writes what is left of the answer; when it is all out, reports. */
static void
upgrade_write (TetherUpgrade *self)
{
  while (self->answer_pos < self->answer->len)
    {
      g_autoptr(GError) error = NULL;
      GPollableOutputStream *output = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (G_IO_STREAM (self->guard)));
      gssize n = g_pollable_output_stream_write_nonblocking (output, self->answer->str + self->answer_pos,
                                                             self->answer->len - self->answer_pos,
                                                             NULL, &error);

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          _tether_watch_set_events (self->watch, G_IO_OUT);
          return;
        }
      if (n < 0)
        {
          /* A refusal that cannot be written is a refusal all the same. */
          if (self->result == TETHER_UPGRADE_OK)
            {
              g_autofree char *reason = g_strdup_printf ("writing the upgrade answer: %s", error->message);

              upgrade_done (self, TETHER_UPGRADE_FAILED, reason);
            }
          else
            upgrade_done (self, self->result, self->reason);
          return;
        }
      self->answer_pos += n;
    }
  upgrade_done (self, self->result, self->reason);
}

/* @body: what the client is told; @reason: what the log says (the body
 * when NULL). */
static void
upgrade_answer (TetherUpgrade       *self,
                TetherUpgradeResult  result,
                guint                status,
                const char          *body,
                const char          *reason,
                const char          *extra_headers)
{
  self->result = result;
  self->reason = g_strdup (reason != NULL ? reason : body);
  self->answer = g_string_new (NULL);
  if (status == SOUP_STATUS_SWITCHING_PROTOCOLS)
    g_string_append_printf (self->answer, "HTTP/1.1 101 Switching Protocols\r\n%s\r\n", extra_headers);
  else
    /* The reason is ours, not the client's: no client text is echoed. */
    g_string_append_printf (self->answer,
                            "HTTP/1.1 %u %s\r\n"
                            "Connection: close\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: %" G_GSIZE_FORMAT "\r\n"
                            "%s\r\n"
                            "%s\n",
                            status, soup_status_get_phrase (status), strlen (body) + 1,
                            extra_headers != NULL ? extra_headers : "", body);
  self->state = UPGRADE_WRITING;
  upgrade_write (self);
}

/* Whether the comma-separated list @value holds @token (HTTP tokens are
 * case-insensitive). */
static gboolean
list_has_token (const char *value,
                const char *token)
{
  g_auto(GStrv) items = value != NULL ? g_strsplit (value, ",", -1) : NULL;

  for (guint i = 0; items != NULL && items[i] != NULL; i++)
    if (g_ascii_strcasecmp (g_strstrip (items[i]), token) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
valid_key (const char *key)
{
  gsize len = 0;
  g_autofree guchar *raw = NULL;

  /* Base64 of 16 bytes: 24 characters, "==" at the end. */
  if (key == NULL || strlen (key) != 24 || key[22] != '=' || key[23] != '=')
    return FALSE;
  for (guint i = 0; i < 22; i++)
    if (!g_ascii_isalnum (key[i]) && key[i] != '+' && key[i] != '/')
      return FALSE;
  raw = g_base64_decode (key, &len);
  return len == 16;
}

static void
upgrade_check (TetherUpgrade *self,
               const char    *head,
               gsize          head_len)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autofree char *method = NULL;
  g_autofree char *path = NULL;
  g_autofree char *accept = NULL;
  g_autofree char *extra = NULL;
  const char *origin;
  const char *protocols;
  const char *chosen = NULL;
  SoupHTTPVersion version;
  guint status;

  status = soup_headers_parse_request (head, head_len, headers, &method, &path, &version);
  if (status != SOUP_STATUS_OK)
    {
      upgrade_answer (self, TETHER_UPGRADE_REFUSED, status, "Not a valid HTTP request", NULL, NULL);
      return;
    }

  /* Health checks (a balancer's, Kubernetes', a watchdog's): a plain GET,
   * answered at once; ready stops being true the moment a drain starts. */
  if (strcmp (method, "GET") == 0 && soup_message_headers_get_one (headers, "Upgrade") == NULL &&
      (strcmp (path, "/livez") == 0 || strcmp (path, "/readyz") == 0))
    {
      gboolean ready = strcmp (path, "/livez") == 0 || self->draining == NULL || !*self->draining;

      upgrade_answer (self, TETHER_UPGRADE_HEALTH,
                      ready ? SOUP_STATUS_OK : SOUP_STATUS_SERVICE_UNAVAILABLE,
                      ready ? "ok" : "draining", NULL, NULL);
      return;
    }

  /* Browsers send Origin with every WebSocket upgrade; other clients
   * don't. A web page must not reach a local service's methods just
   * because its user browsed there: any Origin not explicitly allowed is
   * refused. */
  origin = soup_message_headers_get_one (headers, "Origin");
  if (origin != NULL &&
      (self->allowed_origins == NULL ||
       !g_strv_contains ((const char * const *) self->allowed_origins, origin)))
    {
      g_autofree char *shown = g_utf8_make_valid (origin, MIN (strlen (origin), 200));
      g_autofree char *reason = g_strdup_printf ("WebSocket upgrade from the web origin “%s”, which "
                                                 "is not in allowed-origins", shown);

      upgrade_answer (self, TETHER_UPGRADE_FORBIDDEN, SOUP_STATUS_FORBIDDEN,
                      "This web origin may not use this service", reason, NULL);
      return;
    }

  if (strcmp (method, "GET") != 0 ||
      !soup_message_headers_header_equals (headers, "Upgrade", "websocket") ||
      !list_has_token (soup_message_headers_get_list (headers, "Connection"), "upgrade"))
    {
      upgrade_answer (self, TETHER_UPGRADE_REFUSED, SOUP_STATUS_BAD_REQUEST,
                      "WebSocket handshake expected", NULL, NULL);
      return;
    }
  if (!soup_message_headers_header_equals (headers, "Sec-WebSocket-Version", "13"))
    {
      upgrade_answer (self, TETHER_UPGRADE_REFUSED, SOUP_STATUS_BAD_REQUEST,
                      "Unsupported WebSocket version", NULL, "Sec-WebSocket-Version: 13\r\n");
      return;
    }
  if (!valid_key (soup_message_headers_get_one (headers, "Sec-WebSocket-Key")))
    {
      upgrade_answer (self, TETHER_UPGRADE_REFUSED, SOUP_STATUS_BAD_REQUEST,
                      "Invalid WebSocket key", NULL, NULL);
      return;
    }

  /* A client that offers subprotocols must offer ours; one that offers
   * none is a plain JSON-RPC peer. Extensions are never negotiated. */
  protocols = soup_message_headers_get_list (headers, "Sec-WebSocket-Protocol");
  if (protocols != NULL && *protocols != '\0')
    {
      if (!list_has_token (protocols, TETHER_SUBPROTOCOL))
        {
          upgrade_answer (self, TETHER_UPGRADE_REFUSED, SOUP_STATUS_BAD_REQUEST,
                          "Unsupported WebSocket subprotocol (this server speaks " TETHER_SUBPROTOCOL ")",
                          NULL, NULL);
          return;
        }
      chosen = TETHER_SUBPROTOCOL;
    }

  accept = compute_accept (soup_message_headers_get_one (headers, "Sec-WebSocket-Key"));
  extra = g_strdup_printf ("Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: %s\r\n"
                           "%s%s%s",
                           accept,
                           chosen != NULL ? "Sec-WebSocket-Protocol: " : "",
                           chosen != NULL ? chosen : "",
                           chosen != NULL ? "\r\n" : "");
  self->ws = _tether_websocket_new (self->guard, FALSE, chosen);
  upgrade_answer (self, TETHER_UPGRADE_OK, SOUP_STATUS_SWITCHING_PROTOCOLS, NULL, NULL, extra);
}

static void
upgrade_read (TetherUpgrade *self)
{
  GPollableInputStream *input = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (self->guard)));

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      guint8 buffer[4096];
      gssize n = g_pollable_input_stream_read_nonblocking (input, buffer, sizeof buffer, NULL, &error);
      const guint8 *end;
      gsize head_len;

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return;
      if (n < 0)
        {
          /* The guard's own refusal (a head over its limit) says why. */
          g_autofree char *reason = g_strdup_printf ("reading the upgrade request: %s", error->message);

          upgrade_done (self, TETHER_UPGRADE_FAILED, reason);
          return;
        }
      if (n == 0)
        {
          upgrade_done (self, TETHER_UPGRADE_FAILED, "the client closed the connection during the upgrade");
          return;
        }

      g_byte_array_append (self->head, buffer, n);
      end = memmem (self->head->data, self->head->len, "\r\n\r\n", 4);
      if (end == NULL)
        continue;

      /* A client may send frames in the same read as its request. */
      head_len = end + 4 - self->head->data;
      if (self->head->len > head_len)
        _tether_guard_stream_push_back (self->guard, self->head->data + head_len,
                                        self->head->len - head_len);
      upgrade_check (self, (const char *) self->head->data, head_len);
      return;
    }
}

static void
upgrade_watch_cb (TetherWatch  *watch,
                  GIOCondition  condition,
                  gpointer      user_data)
{
  TetherUpgrade *self = user_data;

  if (self->state == UPGRADE_READING)
    upgrade_read (self);
  else if (self->state == UPGRADE_WRITING)
    upgrade_write (self);
}

TetherUpgrade *
_tether_upgrade_new (TetherGuardStream  *guard,
                     TetherScheduler    *scheduler,
                     const char * const *allowed_origins,
                     const gboolean     *draining,
                     TetherUpgradeFunc   func,
                     gpointer            user_data)
{
  TetherUpgrade *self = g_new0 (TetherUpgrade, 1);

  self->guard = g_object_ref (guard);
  self->allowed_origins = g_strdupv ((char **) allowed_origins);
  self->draining = draining;
  self->func = func;
  self->user_data = user_data;
  self->head = g_byte_array_new ();
  self->watch = _tether_scheduler_watch (scheduler, g_socket_get_fd (_tether_guard_stream_get_socket (guard)),
                                         G_IO_IN, upgrade_watch_cb, self);
  /* TLS may already hold the request (read with the handshake). */
  _tether_watch_again (self->watch);
  return self;
}

void
_tether_upgrade_free (TetherUpgrade *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->watch, _tether_watch_free);
  g_clear_pointer (&self->ws, _tether_websocket_unref);
  g_clear_object (&self->guard);
  g_strfreev (self->allowed_origins);
  g_byte_array_unref (self->head);
  if (self->answer != NULL)
    g_string_free (self->answer, TRUE);
  g_free (self->reason);
  g_free (self);
}

/* ---------------------------------------------------------------------- */
/* Listening                                                              */

/* Connections accepted per dispatch: a burst does not hold the loop. */
#define ACCEPT_BUDGET 64
#define ACCEPT_BACKOFF_MIN_MS 10
#define ACCEPT_BACKOFF_MAX_MS 1000

struct _TetherListener
{
  TetherDeadline    resume;      /* first: the scheduler hands it back */
  GSocket          *socket;
  GSocketAddress   *address;
  TetherScheduler  *scheduler;
  TetherWatch      *watch;
  TetherAcceptFunc  func;
  gpointer          user_data;
  guint             backoff_ms;  /* 0 unless paused for lack of descriptors */
  TetherTransportKind kind;
  char             *uri;         /* with the port really bound */
  char             *unix_path;   /* removed with the listener */
};

static void
listener_resume_cb (TetherDeadline *deadline)
{
  TetherListener *self = (TetherListener *) deadline;

  _tether_watch_set_events (self->watch, G_IO_IN);
}

static void
listener_watch_cb (TetherWatch  *watch,
                   GIOCondition  condition,
                   gpointer      user_data)
{
  TetherListener *self = user_data;

  for (guint i = 0; i < ACCEPT_BUDGET; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) socket = g_socket_accept (self->socket, NULL, &error);
      g_autoptr(GSocketConnection) connection = NULL;

      if (socket == NULL)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              self->backoff_ms = 0;
              return;
            }
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES) ||
              g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE))
            {
              /* The socket stays readable: wait for descriptors to come
               * back instead of asking again at once. */
              self->backoff_ms = CLAMP (self->backoff_ms * 2, ACCEPT_BACKOFF_MIN_MS,
                                        ACCEPT_BACKOFF_MAX_MS);
              _tether_watch_set_events (self->watch, 0);
              _tether_scheduler_add (self->scheduler, &self->resume,
                                     g_get_monotonic_time () + (gint64) self->backoff_ms * 1000,
                                     listener_resume_cb);
              _tether_log_limited (self->scheduler, G_LOG_LEVEL_WARNING, "accept-paused", NULL,
                                   "Not accepting connections for %u ms: %s (raise RLIMIT_NOFILE, "
                                   "or lower max-connections)", self->backoff_ms, error->message);
              return;
            }
          /* The peer gave up before we got to it (ECONNABORTED), and the
           * like: nothing to do but go on. */
          g_debug ("accept: %s", error->message);
          continue;
        }
      self->backoff_ms = 0;
      g_socket_set_blocking (socket, FALSE);
      connection = g_socket_connection_factory_create_connection (socket);
      self->func (self, connection, self->user_data);
    }
  /* More may be waiting: the watch is level-triggered, it comes back. */
}

/* Watches @socket (listening, non-blocking). */
static TetherListener *
listener_watch (GSocket          *socket,
                GSocketAddress   *address,
                TetherScheduler  *scheduler,
                TetherAcceptFunc  func,
                gpointer          user_data)
{
  TetherListener *self = g_new0 (TetherListener, 1);

  self->socket = g_object_ref (socket);
  self->address = g_socket_get_local_address (self->socket, NULL);
  if (self->address == NULL && address != NULL)
    self->address = g_object_ref (address);
  self->scheduler = _tether_scheduler_ref (scheduler);
  self->func = func;
  self->user_data = user_data;
  self->watch = _tether_scheduler_watch (scheduler, g_socket_get_fd (self->socket), G_IO_IN,
                                         listener_watch_cb, self);
  return self;
}

static TetherListener *
listener_new (GSocketAddress   *address,
              TetherScheduler  *scheduler,
              TetherAcceptFunc  func,
              gpointer          user_data,
              GError          **error)
{
  g_autoptr(GSocket) socket = NULL;

  socket = g_socket_new (g_socket_address_get_family (address), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return NULL;
  g_socket_set_blocking (socket, FALSE);
  /* GLib's default backlog of 10 overflows under a burst of connections
   * (an attack, or just many clients): the kernel then refuses or delays
   * legitimate ones before Tether can apply its own limits. */
  g_socket_set_listen_backlog (socket, 1024);
  if (!g_socket_bind (socket, address, TRUE, error) || !g_socket_listen (socket, error))
    {
      g_prefix_error (error, "Error binding to address: ");
      return NULL;
    }
  return listener_watch (socket, address, scheduler, func, user_data);
}

static GInetAddress *
resolve_listen_host (const char  *host,
                     GError     **error)
{
  GInetAddress *address;

  if (g_ascii_strcasecmp (host, "localhost") == 0)
    return g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);

  address = g_inet_address_new_from_string (host);
  if (address == NULL)
    g_set_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_URI,
                 "“%s”: listen on an IP address (or localhost), not a host name", host);
  return address;
}

TetherListener *
_tether_listener_new_for_uri (const char        *uri,
                              gboolean           allow_insecure,
                              gboolean           tls_ready,
                              TetherScheduler   *scheduler,
                              TetherAcceptFunc   func,
                              gpointer           user_data,
                              GError           **error)
{
  TetherUri parsed;
  g_autoptr(GSocketAddress) address = NULL;
  TetherListener *self = NULL;

  if (!_tether_uri_parse (uri, &parsed, error))
    return NULL;

  if (parsed.kind == TETHER_TRANSPORT_UNIX)
    address = g_unix_socket_address_new (parsed.path);
  else
    {
      g_autoptr(GInetAddress) inet = resolve_listen_host (parsed.host, error);

      if (inet == NULL)
        goto out;
      if (parsed.kind == TETHER_TRANSPORT_TCP && !g_inet_address_get_is_loopback (inet) &&
          !allow_insecure)
        {
          g_set_error (error, TETHER_ERROR, TETHER_ERROR_INSECURE_TRANSPORT,
                       "Refusing to serve plaintext ws:// beyond loopback (%s): use wss://, "
                       "or set allow-insecure-remote (and lose every verification guarantee)",
                       uri);
          goto out;
        }
      if (parsed.kind == TETHER_TRANSPORT_TLS && !tls_ready)
        {
          g_set_error (error, TETHER_ERROR, TETHER_ERROR_FAILED,
                       "wss:// needs a TLS certificate (the tls-certificate property)");
          goto out;
        }
      address = g_inet_socket_address_new (inet, parsed.port);
    }

  self = listener_new (address, scheduler, func, user_data, error);
  if (self == NULL)
    goto out;
  self->kind = parsed.kind;
  if (parsed.kind == TETHER_TRANSPORT_UNIX)
    self->unix_path = g_strdup (parsed.path);
  else
    parsed.port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (self->address));
  self->uri = _tether_uri_to_string (&parsed);

out:
  _tether_uri_clear (&parsed);
  return self;
}

TetherListener *
_tether_listener_new_for_socket (GSocket          *socket,
                                 gboolean          allow_insecure,
                                 gboolean          tls_ready,
                                 TetherScheduler  *scheduler,
                                 TetherAcceptFunc  func,
                                 gpointer          user_data,
                                 GError          **error)
{
  g_autoptr(GSocketAddress) address = g_socket_get_local_address (socket, error);
  TetherListener *self;
  TetherUri parsed = { 0 };
  int listening = 0;

  if (address == NULL)
    return NULL;
  if (g_socket_get_socket_type (socket) != G_SOCKET_TYPE_STREAM ||
      !g_socket_get_option (socket, SOL_SOCKET, SO_ACCEPTCONN, &listening, NULL) || !listening)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "Not a listening stream socket");
      return NULL;
    }

  if (G_IS_UNIX_SOCKET_ADDRESS (address))
    {
      parsed.kind = TETHER_TRANSPORT_UNIX;
      parsed.path = g_strdup (g_unix_socket_address_get_path (G_UNIX_SOCKET_ADDRESS (address)));
    }
  else if (G_IS_INET_SOCKET_ADDRESS (address))
    {
      GInetAddress *inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address));

      parsed.kind = tls_ready ? TETHER_TRANSPORT_TLS : TETHER_TRANSPORT_TCP;
      if (parsed.kind == TETHER_TRANSPORT_TCP && !g_inet_address_get_is_loopback (inet) &&
          !allow_insecure)
        {
          g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_INSECURE_TRANSPORT,
                               "Refusing to serve plaintext ws:// beyond loopback on the socket "
                               "given: give the server a TLS certificate for wss://, or set "
                               "allow-insecure-remote");
          return NULL;
        }
      parsed.host = g_inet_address_to_string (inet);
      parsed.port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address));
    }
  else
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           "Only unix and TCP sockets can be served");
      return NULL;
    }

  g_socket_set_blocking (socket, FALSE);
  self = listener_watch (socket, address, scheduler, func, user_data);
  self->kind = parsed.kind;
  self->uri = _tether_uri_to_string (&parsed);
  _tether_uri_clear (&parsed);
  return self;
}

TetherTransportKind
_tether_listener_get_kind (TetherListener *self)
{
  return self->kind;
}

const char *
_tether_listener_get_uri (TetherListener *self)
{
  return self->uri;
}

void
_tether_listener_free (TetherListener *self)
{
  if (self == NULL)
    return;
  _tether_scheduler_remove (self->scheduler, &self->resume);
  g_clear_pointer (&self->watch, _tether_watch_free);
  g_socket_close (self->socket, NULL);
  g_clear_object (&self->socket);
  g_clear_object (&self->address);
  if (self->unix_path != NULL)
    unlink (self->unix_path);
  g_free (self->unix_path);
  g_free (self->uri);
  _tether_scheduler_unref (self->scheduler);
  g_free (self);
}
