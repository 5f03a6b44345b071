/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The PROXY protocol (issue #11): the header parser on every valid and
 * broken form, and a server behind a relay that does what HAProxy's
 * send-proxy(-v2) does — writes a header, then passes bytes through —
 * so that TLS (and SCRAM-SHA-256-PLUS bound to it) runs end to end. The
 * identity names the client from the header, limits count it, and what
 * is not from a trusted proxy, has no header, or a broken or half one,
 * is refused. tests/security/haproxy.py runs the real HAProxy. */

#include <string.h>

#include "tether-proxy-header-private.h"
#include "tether-test-common.h"

/* ---------------------------------------------------------------------- */
/* The parser                                                             */

static const guint8 v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* A version 2 header: @command (0 LOCAL, 1 PROXY), @fam_proto, then
 * @body of @body_len bytes. */
static GByteArray *
v2_header (guint8        command,
           guint8        fam_proto,
           const guint8 *body,
           gsize         body_len)
{
  GByteArray *b = g_byte_array_new ();
  guint8 head[4] = { 0x20 | command, fam_proto, body_len >> 8, body_len & 0xff };

  g_byte_array_append (b, v2_sig, sizeof v2_sig);
  g_byte_array_append (b, head, sizeof head);
  if (body_len > 0)
    g_byte_array_append (b, body, body_len);
  return b;
}

/* 203.0.113.7:4242 → 192.0.2.1:443, and @extra bytes of TLVs. */
static GByteArray *
v2_tcp4 (gsize extra)
{
  guint8 body[12 + 64] = { 203, 0, 113, 7, 192, 0, 2, 1, 0x10, 0x92, 0x01, 0xbb };

  g_assert_cmpuint (extra, <=, 64);
  for (gsize i = 0; i < extra; i++)
    body[12 + i] = (guint8) i;
  return v2_header (1, 0x11, body, 12 + extra);
}

static char *
address_string (GInetSocketAddress *address)
{
  g_autofree char *host = g_inet_address_to_string (g_inet_socket_address_get_address (address));

  return g_strdup_printf ("%s %u", host, g_inet_socket_address_get_port (address));
}

/* Every proper prefix of a valid header asks for more, never refuses. */
static void
assert_prefixes_need_more (const guint8 *data,
                           gsize         len)
{
  for (gsize i = 0; i < len; i++)
    {
      TetherProxyHeader header;
      gsize need = 0;
      g_autoptr(GError) error = NULL;

      g_assert_cmpint (_tether_proxy_header_parse (data, i, &header, &need, &error), ==,
                       TETHER_PROXY_NEED_MORE);
      g_assert_no_error (error);
      g_assert_cmpuint (need, >, i);
      g_assert_cmpuint (need, <=, len);
      _tether_proxy_header_clear (&header);
    }
}

static void
test_parse_v2 (void)
{
  g_autoptr(GByteArray) tcp4 = v2_tcp4 (9);
  TetherProxyHeader header;
  g_autoptr(GError) error = NULL;
  g_autofree char *src = NULL, *dst = NULL;
  guint8 body6[36] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1, 0x20, 0x01, 0x0d, 0xb8, [31] = 2,
                       0x00, 0x50, 0x01, 0xbb };
  g_autoptr(GByteArray) tcp6 = v2_header (1, 0x21, body6, sizeof body6);
  guint8 unix_body[216] = { '/', 'x' };
  g_autoptr(GByteArray) unx = v2_header (1, 0x31, unix_body, sizeof unix_body);
  g_autoptr(GByteArray) local = v2_header (0, 0x00, NULL, 0);
  g_autoptr(GByteArray) unspec = v2_header (1, 0x00, NULL, 0);
  g_autoptr(GByteArray) with_tail = v2_tcp4 (0);

  g_assert_cmpint (_tether_proxy_header_parse (tcp4->data, tcp4->len, &header, NULL, &error), ==,
                   TETHER_PROXY_DONE);
  g_assert_no_error (error);
  g_assert_cmpuint (header.version, ==, 2);
  g_assert_cmpuint (header.length, ==, tcp4->len);
  g_assert_false (header.local);
  src = address_string (header.source);
  dst = address_string (header.destination);
  g_assert_cmpstr (src, ==, "203.0.113.7 4242");
  g_assert_cmpstr (dst, ==, "192.0.2.1 443");
  _tether_proxy_header_clear (&header);
  assert_prefixes_need_more (tcp4->data, tcp4->len);

  /* What follows the header is not the header's. */
  g_byte_array_append (with_tail, (const guint8 *) "GET / HTTP/1.1\r\n", 16);
  g_assert_cmpint (_tether_proxy_header_parse (with_tail->data, with_tail->len, &header, NULL, NULL), ==,
                   TETHER_PROXY_DONE);
  g_assert_cmpuint (header.length, ==, 28);
  _tether_proxy_header_clear (&header);

  g_assert_cmpint (_tether_proxy_header_parse (tcp6->data, tcp6->len, &header, NULL, NULL), ==,
                   TETHER_PROXY_DONE);
  g_free (src);
  src = address_string (header.source);
  g_assert_cmpstr (src, ==, "2001:db8::1 80");
  _tether_proxy_header_clear (&header);

  /* LOCAL, and what PROXY may leave unsaid: the connection's own
   * addresses stand. */
  g_assert_cmpint (_tether_proxy_header_parse (local->data, local->len, &header, NULL, NULL), ==,
                   TETHER_PROXY_DONE);
  g_assert_true (header.local);
  g_assert_null (header.source);
  _tether_proxy_header_clear (&header);
  g_assert_cmpint (_tether_proxy_header_parse (unspec->data, unspec->len, &header, NULL, NULL), ==,
                   TETHER_PROXY_DONE);
  g_assert_null (header.source);
  _tether_proxy_header_clear (&header);
  g_assert_cmpint (_tether_proxy_header_parse (unx->data, unx->len, &header, NULL, NULL), ==,
                   TETHER_PROXY_DONE);
  g_assert_null (header.source);
  _tether_proxy_header_clear (&header);
}

static void
test_parse_v1 (void)
{
  static const struct
  {
    const char *text;
    const char *source;   /* NULL: none said */
  } good[] = {
    { "PROXY TCP4 203.0.113.7 192.0.2.1 4242 443\r\n", "203.0.113.7 4242" },
    { "PROXY TCP6 2001:db8::1 2001:db8::2 0 65535\r\n", "2001:db8::1 0" },
    { "PROXY UNKNOWN\r\n", NULL },
    { "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      TetherProxyHeader header;
      g_autoptr(GError) error = NULL;
      gsize len = strlen (good[i].text);

      g_assert_cmpint (_tether_proxy_header_parse ((const guint8 *) good[i].text, len, &header, NULL,
                                                   &error), ==, TETHER_PROXY_DONE);
      g_assert_no_error (error);
      g_assert_cmpuint (header.version, ==, 1);
      g_assert_cmpuint (header.length, ==, len);
      if (good[i].source == NULL)
        g_assert_null (header.source);
      else
        {
          g_autofree char *src = address_string (header.source);

          g_assert_cmpstr (src, ==, good[i].source);
        }
      _tether_proxy_header_clear (&header);
      assert_prefixes_need_more ((const guint8 *) good[i].text, len);
    }
}

static void
test_parse_invalid (void)
{
  static const char * const bad_v1[] = {
    "GET / HTTP/1.1\r\n",                                   /* no header at all */
    "\x16\x03\x01\x02\x00",                                 /* a TLS ClientHello */
    "PROXY TCP4 203.0.113.7 192.0.2.1 4242\r\n",            /* a port short */
    "PROXY TCP4 203.0.113.7 192.0.2.1 4242 443 9\r\n",      /* one too many */
    "PROXY TCP4 2001:db8::1 192.0.2.1 4242 443\r\n",        /* wrong family */
    "PROXY TCP6 203.0.113.7 2001:db8::2 4242 443\r\n",
    "PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n",       /* port too big */
    "PROXY TCP4 203.0.113.7 192.0.2.1 04242 443\r\n",       /* leading zero */
    "PROXY TCP4 203.0.113.7 192.0.2.1 -1 443\r\n",
    "PROXY UDP4 203.0.113.7 192.0.2.1 4242 443\r\n",
    "PROXY TCP4 host.example 192.0.2.1 4242 443\r\n",
    "PROXY TCP4 203.0.113.7  192.0.2.1 4242 443\r\n",       /* two spaces */
    "PROXY TCP4 203.0.113.7\n",                             /* a bare LF */
  };
  g_autoptr(GByteArray) long_v1 = g_byte_array_new ();
  g_autoptr(GByteArray) bad_version = v2_tcp4 (0);
  g_autoptr(GByteArray) bad_command = v2_tcp4 (0);
  g_autoptr(GByteArray) bad_family = v2_tcp4 (0);
  g_autoptr(GByteArray) short_body = v2_header (1, 0x11, (const guint8 *) "\1\2\3\4", 4);
  g_autoptr(GByteArray) too_long = v2_header (1, 0x11, NULL, 0);

  for (guint i = 0; i < G_N_ELEMENTS (bad_v1); i++)
    {
      TetherProxyHeader header;
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", bad_v1[i]);
      g_assert_cmpint (_tether_proxy_header_parse ((const guint8 *) bad_v1[i], strlen (bad_v1[i]),
                                                   &header, NULL, &error), ==, TETHER_PROXY_INVALID);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_assert_null (header.source);
    }

  /* A version 1 line with no end within 107 bytes. */
  g_byte_array_append (long_v1, (const guint8 *) "PROXY TCP4 ", 11);
  while (long_v1->len < 107)
    g_byte_array_append (long_v1, (const guint8 *) "1", 1);
  {
    TetherProxyHeader header;

    g_assert_cmpint (_tether_proxy_header_parse (long_v1->data, long_v1->len, &header, NULL, NULL), ==,
                     TETHER_PROXY_INVALID);
  }

  bad_version->data[12] = 0x11;
  bad_command->data[12] = 0x22;
  bad_family->data[13] = 0x41;
  too_long->data[14] = 0x10;   /* 4096 bytes of body: past what Tether reads */
  {
    GByteArray *cases[] = { bad_version, bad_command, bad_family, short_body, too_long };

    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        TetherProxyHeader header;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint (_tether_proxy_header_parse (cases[i]->data, cases[i]->len, &header, NULL,
                                                     &error), ==, TETHER_PROXY_INVALID);
        g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      }
  }
}

/* ---------------------------------------------------------------------- */
/* A server behind a relay                                                */

typedef struct
{
  char             *dir;
  TetherServer     *server;
  char             *server_host_port;   /* where the relay connects */
  GSocketService   *relay;
  char             *relay_uri;
  GBytes           *header;             /* what the relay writes first, or NULL */
  gboolean          half_then_hang;     /* write half the header and stop */
  GPtrArray        *links;              /* GIOStream*, kept until the end */
  guint             misbehaved;
  TetherMisbehavior last_reason;
  char             *last_details;
  char             *seen_address;
  char             *seen_proxy;
  char             *seen_user;
} Fixture;

typedef struct
{
  Fixture           *f;
  GSocketConnection *incoming;
} Link;

static void
spliced_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_io_stream_splice_finish (result, NULL);
}

static void
relay_connected_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  Link *link = user_data;
  Fixture *f = link->f;
  g_autoptr(GSocketConnection) out = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, NULL);
  GOutputStream *os;

  if (out == NULL)
    {
      g_object_unref (link->incoming);
      g_free (link);
      return;
    }
  os = g_io_stream_get_output_stream (G_IO_STREAM (out));
  if (f->header != NULL)
    {
      gsize len;
      const guint8 *data = g_bytes_get_data (f->header, &len);

      g_assert_true (g_output_stream_write_all (os, data, f->half_then_hang ? len / 2 : len, NULL,
                                                NULL, NULL));
    }
  g_ptr_array_add (f->links, g_object_ref (out));
  g_ptr_array_add (f->links, g_object_ref (link->incoming));
  if (!f->half_then_hang)
    g_io_stream_splice_async (G_IO_STREAM (link->incoming), G_IO_STREAM (out),
                              G_IO_STREAM_SPLICE_CLOSE_STREAM1 | G_IO_STREAM_SPLICE_CLOSE_STREAM2,
                              G_PRIORITY_DEFAULT, NULL, spliced_cb, NULL);
  g_object_unref (link->incoming);
  g_free (link);
}

static gboolean
relay_incoming_cb (GSocketService    *service,
                   GSocketConnection *connection,
                   GObject           *source,
                   gpointer           user_data)
{
  Fixture *f = user_data;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  Link *link = g_new0 (Link, 1);

  link->f = f;
  link->incoming = g_object_ref (connection);
  g_socket_client_connect_to_host_async (client, f->server_host_port, 0, NULL, relay_connected_cb, link);
  return TRUE;
}

static void
peer_misbehaved_cb (TetherServer      *server,
                    TetherPeer        *peer,
                    TetherIdentity    *identity,
                    TetherMisbehavior  reason,
                    const char        *details,
                    Fixture           *f)
{
  f->misbehaved++;
  f->last_reason = reason;
  g_free (f->last_details);
  f->last_details = g_strdup (details);
}

/* Says who called: the identity's address, its proxy, its user. */
static void
whoami (TetherInvocation *invocation,
        gpointer          user_data)
{
  Fixture *f = user_data;
  TetherIdentity *identity = tether_invocation_get_identity (invocation);

  g_free (f->seen_address);
  g_free (f->seen_proxy);
  g_free (f->seen_user);
  f->seen_address = g_strdup (tether_identity_get_address (identity));
  f->seen_proxy = g_strdup (tether_identity_get_proxy_address (identity));
  f->seen_user = g_strdup (tether_identity_get_username (identity));
  tether_invocation_return_value (invocation, NULL);
}

/* A server listening with the PROXY protocol on @scheme (ws or wss), the
 * relay (127.0.0.1) trusted unless @trusted says otherwise, and a relay
 * in front of it. */
static void
fixture_start (Fixture    *f,
               const char *scheme,
               const char *trusted)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = g_strdup_printf ("%s://127.0.0.1:0", scheme);
  const char *bound;
  guint16 port;

  f->dir = g_dir_make_tmp ("tether-proxy-XXXXXX", &error);
  g_assert_no_error (error);
  f->server = tether_server_new ();
  g_object_set (f->server, "handshake-timeout", 1000, NULL);
  if (strcmp (scheme, "wss") == 0)
    {
      g_autoptr(GTlsCertificate) cert = NULL;

      tether_test_make_certificates (f->dir);
      cert = tether_test_load_certificate (f->dir, "server");
      tether_server_set_tls_certificate (f->server, cert);
    }
  tether_server_add_method (f->server, "whoami", TETHER_ACCESS_ANY, whoami, f, NULL);
  g_signal_connect (f->server, "peer-misbehaved", G_CALLBACK (peer_misbehaved_cb), f);
  g_assert_true (tether_server_add_trusted_proxy (f->server, trusted, &error));
  g_assert_no_error (error);
  g_assert_true (tether_server_listen_full (f->server, uri, TETHER_LISTEN_FLAGS_PROXY_PROTOCOL, &error));
  g_assert_no_error (error);
  bound = tether_server_get_uris (f->server)[0];
  f->server_host_port = g_strdup (strstr (bound, "://") + 3);

  f->links = g_ptr_array_new_with_free_func (g_object_unref);
  f->relay = g_socket_service_new ();
  port = g_socket_listener_add_any_inet_port (G_SOCKET_LISTENER (f->relay), NULL, &error);
  g_assert_no_error (error);
  f->relay_uri = g_strdup_printf ("%s://127.0.0.1:%u", scheme, port);
  g_signal_connect (f->relay, "incoming", G_CALLBACK (relay_incoming_cb), f);
  g_socket_service_start (f->relay);
}

static void
fixture_stop (Fixture *f)
{
  g_socket_service_stop (f->relay);
  g_socket_listener_close (G_SOCKET_LISTENER (f->relay));
  g_clear_object (&f->relay);
  for (guint i = 0; i < f->links->len; i++)
    g_io_stream_close (f->links->pdata[i], NULL, NULL);
  g_ptr_array_unref (f->links);
  tether_server_close (f->server);
  g_clear_object (&f->server);
  g_clear_pointer (&f->header, g_bytes_unref);
  g_free (f->server_host_port);
  g_free (f->relay_uri);
  g_free (f->last_details);
  g_free (f->seen_address);
  g_free (f->seen_proxy);
  g_free (f->seen_user);
  if (f->dir != NULL)
    {
      g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->dir);

      g_assert_cmpint (system (cmd), ==, 0);
      g_free (f->dir);
    }
  memset (f, 0, sizeof *f);
}

static TetherClient *
client_new (Fixture *f)
{
  TetherClient *client = tether_client_new (f->relay_uri);

  if (g_str_has_prefix (f->relay_uri, "wss:"))
    {
      g_autoptr(GTlsDatabase) ca = tether_test_load_ca (f->dir, "ca.pem");

      tether_client_set_tls_database (client, ca);
    }
  g_object_set (client, "handshake-timeout", 2000, NULL);
  return client;
}

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GError **error = user_data;
  g_autoptr(GVariant) value = tether_client_call_finish (TETHER_CLIENT (source), result, error);

  if (*error == NULL)
    *error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_EXISTS, "ok");
}

/* Calls whoami and waits: NULL on success, else the error. */
static GError *
whoami_sync (TetherClient *client)
{
  GError *error = NULL;

  tether_client_call_async (client, "whoami", NULL, -1, NULL, call_done_cb, &error);
  TETHER_TEST_WAIT_UNTIL (error != NULL);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
    g_clear_error (&error);
  return error;
}

static void
set_header (Fixture    *f,
            GByteArray *header)
{
  g_clear_pointer (&f->header, g_bytes_unref);
  f->header = g_bytes_new (header->data, header->len);
}

/* Over wss:// with SCRAM-SHA-256-PLUS: the relay passes TLS through, so
 * the channel binding holds; the server sees the header's client. */
static void
test_relayed_scram_plus (void)
{
  Fixture f = { 0 };
  g_autoptr(GByteArray) header = v2_tcp4 (5);
  g_autoptr(GError) error = NULL;
  g_autofree char *secrets = tether_scram_secrets_from_password ("s3cret", 4096, &error);
  g_autoptr(TetherClient) client = NULL;

  fixture_start (&f, "wss", "127.0.0.0/8");
  g_assert_true (tether_server_add_user (f.server, "alice", secrets, &error));
  set_header (&f, header);
  client = client_new (&f);
  tether_client_set_credentials (client, "alice", "s3cret");
  error = tether_test_client_connect (client);
  g_assert_no_error (error);
  error = whoami_sync (client);
  g_assert_no_error (error);
  g_assert_cmpstr (f.seen_address, ==, "203.0.113.7:4242");
  g_assert_nonnull (f.seen_proxy);
  g_assert_true (g_str_has_prefix (f.seen_proxy, "127.0.0.1:"));
  g_assert_cmpstr (f.seen_user, ==, "alice");
  g_assert_cmpuint (f.misbehaved, ==, 0);
  tether_client_close (client);
  fixture_stop (&f);
}

/* Version 1 over ws://, and LOCAL (the balancer's own check): the
 * connection's own address stands. */
static void
test_relayed_v1_and_local (void)
{
  Fixture f = { 0 };
  const char *v1 = "PROXY TCP6 2001:db8::7 2001:db8::1 5000 80\r\n";
  g_autoptr(GByteArray) local = v2_header (0, 0, NULL, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(TetherClient) client = NULL;

  fixture_start (&f, "ws", "127.0.0.1");
  f.header = g_bytes_new (v1, strlen (v1));
  client = client_new (&f);
  error = tether_test_client_connect (client);
  g_assert_no_error (error);
  error = whoami_sync (client);
  g_assert_no_error (error);
  g_assert_cmpstr (f.seen_address, ==, "[2001:db8::7]:5000");
  tether_client_close (client);
  g_clear_object (&client);

  set_header (&f, local);
  client = client_new (&f);
  error = tether_test_client_connect (client);
  g_assert_no_error (error);
  error = whoami_sync (client);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (f.seen_address, "127.0.0.1:"));
  g_assert_null (f.seen_proxy);
  tether_client_close (client);
  fixture_stop (&f);
}

/* Per-address limits count the client the header names, not the relay:
 * one connection per peer, two clients behind one relay both get in, a
 * second connection of the same client does not. */
static void
test_limits_use_client_address (void)
{
  Fixture f = { 0 };
  g_autoptr(GByteArray) a = v2_tcp4 (0);
  g_autoptr(GByteArray) b = v2_tcp4 (0);
  g_autoptr(GError) error = NULL;
  g_autoptr(TetherClient) c1 = NULL;
  g_autoptr(TetherClient) c2 = NULL;
  g_autoptr(TetherClient) c3 = NULL;

  fixture_start (&f, "ws", "127.0.0.1");
  g_object_set (f.server, "max-connections-per-peer", 1, NULL);
  b->data[19] = 8;  /* 203.0.113.8 */

  set_header (&f, a);
  c1 = client_new (&f);
  error = tether_test_client_connect (c1);
  g_assert_no_error (error);
  set_header (&f, b);
  c2 = client_new (&f);
  error = tether_test_client_connect (c2);
  g_assert_no_error (error);
  g_assert_cmpuint (f.misbehaved, ==, 0);

  set_header (&f, a);
  c3 = client_new (&f);
  error = tether_test_client_connect (c3);
  g_assert_nonnull (error);
  g_assert_cmpuint (f.misbehaved, ==, 1);
  g_assert_cmpint (f.last_reason, ==, TETHER_MISBEHAVIOR_TOO_MANY_CONNECTIONS);

  tether_client_close (c1);
  tether_client_close (c2);
  fixture_stop (&f);
}

/* Not from a trusted proxy; no header; a garbage header; half a header
 * (cut at the handshake deadline): each refused, and said why. */
static void
test_refusals (void)
{
  Fixture f = { 0 };
  g_autoptr(GByteArray) header = v2_tcp4 (0);
  g_autoptr(GError) error = NULL;
  g_autoptr(TetherClient) client = NULL;
  g_autoptr(TetherServer) other = tether_server_new ();

  /* Listening needs a trusted proxy, and a TCP listener. */
  g_assert_false (tether_server_listen_full (other, "ws://127.0.0.1:0", TETHER_LISTEN_FLAGS_PROXY_PROTOCOL,
                                             &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_true (tether_server_add_trusted_proxy (other, "127.0.0.1", &error));
  g_assert_false (tether_server_listen_full (other, "unix:/tmp/tether-proxy-never.sock",
                                             TETHER_LISTEN_FLAGS_PROXY_PROTOCOL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  g_assert_false (tether_server_add_trusted_proxy (other, "not-a-network", &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* The relay is not trusted. */
  fixture_start (&f, "ws", "10.0.0.0/8");
  set_header (&f, header);
  client = client_new (&f);
  error = tether_test_client_connect (client);
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_cmpuint (f.misbehaved, ==, 1);
  g_assert_cmpint (f.last_reason, ==, TETHER_MISBEHAVIOR_PROTOCOL_VIOLATION);
  g_assert_nonnull (strstr (f.last_details, "trusted proxies"));
  g_clear_object (&client);
  fixture_stop (&f);

  /* No header: the client's own upgrade request is not one. */
  fixture_start (&f, "ws", "127.0.0.1");
  client = client_new (&f);
  error = tether_test_client_connect (client);
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_clear_object (&client);

  /* Garbage, then the client. */
  f.header = g_bytes_new_static ("\r\n\r\n\0\r\nQUIX\nxxxxxxxxxxxxxxxxxxx", 28);
  client = client_new (&f);
  error = tether_test_client_connect (client);
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_clear_object (&client);
  g_assert_cmpuint (f.misbehaved, ==, 0);  /* failed handshakes are logged, not signalled */

  /* Half a header, then nothing: cut at the deadline, and said where. */
  set_header (&f, header);
  f.half_then_hang = TRUE;
  client = client_new (&f);
  g_object_set (client, "handshake-timeout", 5000, NULL);
  error = tether_test_client_connect (client);
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_cmpuint (f.misbehaved, ==, 1);
  g_assert_cmpint (f.last_reason, ==, TETHER_MISBEHAVIOR_HANDSHAKE_TIMEOUT);
  g_assert_nonnull (strstr (f.last_details, "PROXY protocol header"));
  fixture_stop (&f);
}

/* A socket bound and listening elsewhere (socket activation) is served
 * as ws:// on loopback; what is not a listening stream socket is
 * refused. */
static void
test_listen_socket (void)
{
  g_autoptr(TetherServer) server = tether_server_new ();
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_DEFAULT, NULL);
  g_autoptr(GSocket) idle = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                          G_SOCKET_PROTOCOL_DEFAULT, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(TetherClient) client = NULL;
  g_autofree char *expected = NULL;
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (socket, any_port, TRUE, &error));
  g_assert_true (g_socket_listen (socket, &error));
  bound = g_socket_get_local_address (socket, &error);
  expected = g_strdup_printf ("ws://127.0.0.1:%u", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));

  /* Not listening: refused. */
  g_assert_false (tether_server_listen_socket (server, idle, TETHER_LISTEN_FLAGS_NONE, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_true (tether_server_listen_socket (server, socket, TETHER_LISTEN_FLAGS_NONE, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (tether_server_get_uris (server)[0], ==, expected);
  tether_server_add_method (server, "echo", TETHER_ACCESS_ANY, tether_test_echo, NULL, NULL);
  client = tether_client_new (expected);
  error = tether_test_client_connect (client);
  g_assert_no_error (error);
  tether_client_close (client);
  tether_server_close (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/proxy/parse/v2", test_parse_v2);
  g_test_add_func ("/proxy/parse/v1", test_parse_v1);
  g_test_add_func ("/proxy/parse/invalid", test_parse_invalid);
  g_test_add_func ("/proxy/relayed/scram-plus", test_relayed_scram_plus);
  g_test_add_func ("/proxy/relayed/v1-and-local", test_relayed_v1_and_local);
  g_test_add_func ("/proxy/relayed/limits-use-client-address", test_limits_use_client_address);
  g_test_add_func ("/proxy/relayed/refusals", test_refusals);
  g_test_add_func ("/listen/socket", test_listen_socket);

  return g_test_run ();
}
