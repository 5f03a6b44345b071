/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * TetherIdentity:
 *
 * Who is at the other end of a connection, and how that was proven.
 *
 * An identity is captured once, when the connection is accepted or
 * established, and never changes: on `unix:` the peer's uid, gid and pid
 * as the kernel reported them (`SO_PEERCRED`); on `wss://` the peer's
 * certificate when it presented one that verified; on TCP the peer's
 * address.
 *
 * Behind a load balancer that sends the PROXY protocol (a listener made
 * with %TETHER_LISTEN_FLAGS_PROXY_PROTOCOL), the address is the client's,
 * from the balancer's header, and
 * [property@Tether.Identity:proxy-address] is the balancer's.
 *
 * On `unix:` the kernel-verified uid makes the peer authenticated; on
 * `wss://` a verified client certificate does; a `ws://` peer is
 * anonymous.
 *
 * Since: 0.1
 */

#include <string.h>
#include <sys/socket.h>
#include <gio/gunixsocketaddress.h>

#include "tether-enum-types.h"
#include "tether-identity-private.h"
#include "tether-log-private.h"

struct _TetherIdentity
{
  GObject              parent_instance;

  TetherTransportKind  transport;
  gboolean             authenticated;
  gint64               uid;
  gint64               gid;
  gint64               pid;
  char                *address;
  char                *proxy_address;
  GTlsCertificate     *certificate;
  char                *certificate_sha256;
  char                *username;
  char                *auth_mechanism;
  char                *pool_key;
};

G_DEFINE_FINAL_TYPE (TetherIdentity, tether_identity, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_TRANSPORT,
  PROP_AUTHENTICATED,
  PROP_UID,
  PROP_GID,
  PROP_PID,
  PROP_ADDRESS,
  PROP_CERTIFICATE,
  PROP_CERTIFICATE_SHA256,
  PROP_USERNAME,
  PROP_AUTH_MECHANISM,
  PROP_PROXY_ADDRESS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
tether_identity_finalize (GObject *object)
{
  TetherIdentity *self = TETHER_IDENTITY (object);

  g_clear_pointer (&self->address, g_free);
  g_clear_pointer (&self->proxy_address, g_free);
  g_clear_object (&self->certificate);
  g_clear_pointer (&self->certificate_sha256, g_free);
  g_clear_pointer (&self->username, g_free);
  g_clear_pointer (&self->auth_mechanism, g_free);
  g_clear_pointer (&self->pool_key, g_free);

  G_OBJECT_CLASS (tether_identity_parent_class)->finalize (object);
}

static void
tether_identity_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  TetherIdentity *self = TETHER_IDENTITY (object);

  switch (prop_id)
    {
    case PROP_TRANSPORT:
      g_value_set_enum (value, self->transport);
      break;
    case PROP_AUTHENTICATED:
      g_value_set_boolean (value, self->authenticated);
      break;
    case PROP_UID:
      g_value_set_int64 (value, self->uid);
      break;
    case PROP_GID:
      g_value_set_int64 (value, self->gid);
      break;
    case PROP_PID:
      g_value_set_int64 (value, self->pid);
      break;
    case PROP_ADDRESS:
      g_value_set_string (value, self->address);
      break;
    case PROP_CERTIFICATE:
      g_value_set_object (value, self->certificate);
      break;
    case PROP_CERTIFICATE_SHA256:
      g_value_set_string (value, self->certificate_sha256);
      break;
    case PROP_USERNAME:
      g_value_set_string (value, self->username);
      break;
    case PROP_AUTH_MECHANISM:
      g_value_set_string (value, self->auth_mechanism);
      break;
    case PROP_PROXY_ADDRESS:
      g_value_set_string (value, self->proxy_address);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tether_identity_class_init (TetherIdentityClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

  object_class->finalize = tether_identity_finalize;
  object_class->get_property = tether_identity_get_property;

  /**
   * TetherIdentity:transport:
   *
   * The transport the connection runs on.
   *
   * Since: 0.1
   */
  properties[PROP_TRANSPORT] =
    g_param_spec_enum ("transport", NULL, NULL, TETHER_TYPE_TRANSPORT_KIND,
                       TETHER_TRANSPORT_UNIX, flags);

  /**
   * TetherIdentity:authenticated:
   *
   * Whether the peer's identity was proven: by the kernel on `unix:`, by a
   * verified certificate on `wss://`.
   *
   * Since: 0.1
   */
  properties[PROP_AUTHENTICATED] =
    g_param_spec_boolean ("authenticated", NULL, NULL, FALSE, flags);

  /**
   * TetherIdentity:uid:
   *
   * The peer's user id on `unix:`, or -1.
   *
   * Since: 0.1
   */
  properties[PROP_UID] =
    g_param_spec_int64 ("uid", NULL, NULL, -1, G_MAXINT64, -1, flags);

  /**
   * TetherIdentity:gid:
   *
   * The peer's group id on `unix:`, or -1.
   *
   * Since: 0.1
   */
  properties[PROP_GID] =
    g_param_spec_int64 ("gid", NULL, NULL, -1, G_MAXINT64, -1, flags);

  /**
   * TetherIdentity:pid:
   *
   * The peer's process id on `unix:` at connection time, or -1. Use it
   * for logs only: a pid can be reused once the process exits.
   *
   * Since: 0.1
   */
  properties[PROP_PID] =
    g_param_spec_int64 ("pid", NULL, NULL, -1, G_MAXINT64, -1, flags);

  /**
   * TetherIdentity:address:
   *
   * The peer's address: `host:port` on TCP and TLS, the socket path (or
   * an empty string) on `unix:`.
   *
   * Since: 0.1
   */
  properties[PROP_ADDRESS] =
    g_param_spec_string ("address", NULL, NULL, NULL, flags);

  /**
   * TetherIdentity:certificate:
   *
   * The certificate the peer presented on `wss://`, if any.
   *
   * Since: 0.1
   */
  properties[PROP_CERTIFICATE] =
    g_param_spec_object ("certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE, flags);

  /**
   * TetherIdentity:certificate-sha256:
   *
   * The SHA-256 fingerprint of [property@Tether.Identity:certificate]
   * (DER), as lowercase hex, if there is a certificate.
   *
   * Since: 0.1
   */
  properties[PROP_CERTIFICATE_SHA256] =
    g_param_spec_string ("certificate-sha256", NULL, NULL, NULL, flags);

  /**
   * TetherIdentity:username:
   *
   * The user name the peer authenticated as in the hello (SASL), if it
   * did.
   *
   * Since: 0.1
   */
  properties[PROP_USERNAME] =
    g_param_spec_string ("username", NULL, NULL, NULL, flags);

  /**
   * TetherIdentity:auth-mechanism:
   *
   * The SASL mechanism the peer authenticated with in the hello
   * (`SCRAM-SHA-256-PLUS`, `SCRAM-SHA-256`, `EXTERNAL`, `ANONYMOUS`), if
   * any.
   *
   * Since: 0.1
   */
  properties[PROP_AUTH_MECHANISM] =
    g_param_spec_string ("auth-mechanism", NULL, NULL, NULL, flags);

  /**
   * TetherIdentity:proxy-address:
   *
   * The address of the load balancer the connection came through, when
   * its listener takes the PROXY protocol and the balancer named the
   * client ([property@Tether.Identity:address] is then the client's);
   * %NULL otherwise.
   *
   * Since: 0.2
   */
  properties[PROP_PROXY_ADDRESS] =
    g_param_spec_string ("proxy-address", NULL, NULL, NULL, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
tether_identity_init (TetherIdentity *self)
{
  self->uid = -1;
  self->gid = -1;
  self->pid = -1;
}

static char *
certificate_sha256 (GTlsCertificate *certificate)
{
  g_autoptr(GByteArray) der = NULL;

  g_object_get (certificate, "certificate", &der, NULL);
  if (der == NULL)
    return NULL;
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, der->data, der->len);
}

static char *
address_to_string (GSocketAddress *address)
{
  if (G_IS_INET_SOCKET_ADDRESS (address))
    {
      GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (address);
      g_autofree char *host = g_inet_address_to_string (g_inet_socket_address_get_address (inet));
      guint16 port = g_inet_socket_address_get_port (inet);

      if (strchr (host, ':') != NULL)
        return g_strdup_printf ("[%s]:%u", host, port);
      return g_strdup_printf ("%s:%u", host, port);
    }
  if (G_IS_UNIX_SOCKET_ADDRESS (address))
    return g_strdup (g_unix_socket_address_get_path (G_UNIX_SOCKET_ADDRESS (address)));
  return g_strdup ("");
}

/* The host of "HOST:PORT" or "[HOST]:PORT", as one identity: an IPv4
 * address whole, an IPv6 one by its /64 prefix (the block one subscriber
 * gets: a single host may hold all of it). */
static char *
address_pool_key (const char *address)
{
  const char *colon = strrchr (address, ':');
  g_autofree char *host = NULL;
  g_autoptr(GInetAddress) inet = NULL;

  if (address[0] == '[')
    host = g_strndup (address + 1, (colon != NULL && colon > address + 1 ? colon - 1 : address + strlen (address)) - (address + 1));
  else
    host = g_strndup (address, colon != NULL ? (gsize) (colon - address) : strlen (address));
  inet = g_inet_address_new_from_string (host);
  if (inet != NULL && g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6)
    {
      const guint8 *b = g_inet_address_to_bytes (inet);
      static const guint8 v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

      if (memcmp (b, v4_mapped, sizeof v4_mapped) == 0)
        return g_strdup_printf ("ip:%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
      return g_strdup_printf ("ip6:%x:%x:%x:%x::/64", (b[0] << 8) | b[1], (b[2] << 8) | b[3],
                              (b[4] << 8) | b[5], (b[6] << 8) | b[7]);
    }
  return g_strconcat ("ip:", host, NULL);
}

/* Who this is, for the server's shared pools and per-identity caps: the
 * strongest proof there is. */
static char *
compute_pool_key (TetherIdentity *self)
{
  if (self->uid >= 0)
    return g_strdup_printf ("uid:%" G_GINT64_FORMAT, self->uid);
  if (self->username != NULL && self->authenticated && g_strcmp0 (self->auth_mechanism, "ANONYMOUS") != 0)
    return g_strdup_printf ("user:%s", self->username);
  if (self->certificate_sha256 != NULL && self->authenticated)
    return g_strdup_printf ("cert:%s", self->certificate_sha256);
  return address_pool_key (self->address);
}

const char *
_tether_identity_get_pool_key (TetherIdentity *self)
{
  if (self->pool_key == NULL)
    self->pool_key = compute_pool_key (self);
  return self->pool_key;
}

TetherIdentity *
_tether_identity_new_from_socket (TetherTransportKind  transport,
                                  GSocketConnection   *connection,
                                  GTlsCertificate     *peer_certificate,
                                  gboolean             certificate_verified)
{
  TetherIdentity *self = g_object_new (TETHER_TYPE_IDENTITY, NULL);
  GSocket *socket = g_socket_connection_get_socket (connection);
  g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address (connection, NULL);

  self->transport = transport;
  self->address = remote != NULL ? address_to_string (remote) : g_strdup ("");

  if (transport == TETHER_TRANSPORT_UNIX)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GCredentials) creds = g_socket_get_credentials (socket, &error);

      if (creds != NULL)
        {
          uid_t uid = g_credentials_get_unix_user (creds, NULL);
          pid_t pid = g_credentials_get_unix_pid (creds, NULL);
          struct ucred *ucred = g_credentials_get_native (creds, G_CREDENTIALS_TYPE_LINUX_UCRED);

          self->uid = uid;
          self->pid = pid;
          if (ucred != NULL)
            self->gid = ucred->gid;
          self->authenticated = TRUE;
        }
      else
        g_debug ("No peer credentials on Unix socket: %s", error->message);
    }

  if (peer_certificate != NULL)
    {
      self->certificate = g_object_ref (peer_certificate);
      self->certificate_sha256 = certificate_sha256 (peer_certificate);
      if (certificate_verified)
        self->authenticated = TRUE;
    }

  return self;
}

TetherIdentity *
_tether_identity_new_proxied (TetherIdentity     *seen,
                             GInetSocketAddress *client)
{
  TetherIdentity *self = _tether_identity_new_authenticated (seen, seen->username, seen->auth_mechanism);

  g_free (self->proxy_address);
  self->proxy_address = g_steal_pointer (&self->address);
  self->address = address_to_string (G_SOCKET_ADDRESS (client));
  return self;
}

TetherIdentity *
_tether_identity_new_anonymous (TetherTransportKind transport)
{
  TetherIdentity *self = g_object_new (TETHER_TYPE_IDENTITY, NULL);

  self->transport = transport;
  self->address = g_strdup ("");
  return self;
}

TetherIdentity *
_tether_identity_new_authenticated (TetherIdentity *transport,
                                    const char     *username,
                                    const char     *mechanism)
{
  TetherIdentity *self = g_object_new (TETHER_TYPE_IDENTITY, NULL);

  self->transport = transport->transport;
  self->uid = transport->uid;
  self->gid = transport->gid;
  self->pid = transport->pid;
  self->address = g_strdup (transport->address);
  self->proxy_address = g_strdup (transport->proxy_address);
  g_set_object (&self->certificate, transport->certificate);
  self->certificate_sha256 = g_strdup (transport->certificate_sha256);
  self->username = g_strdup (username);
  self->auth_mechanism = g_strdup (mechanism);
  /* ANONYMOUS proves nothing; the transport's own proof still stands. */
  self->authenticated = transport->authenticated ||
                        (username != NULL && g_strcmp0 (mechanism, "ANONYMOUS") != 0);
  return self;
}

/**
 * tether_identity_get_username:
 * @self: a #TetherIdentity
 *
 * Gets the user name the peer authenticated as in the hello.
 *
 * Returns: (transfer none) (nullable): the user name authenticated in the
 *   hello
 *
 * Since: 0.1
 */
const char *
tether_identity_get_username (TetherIdentity *self)
{
  g_return_val_if_fail (TETHER_IS_IDENTITY (self), NULL);
  return self->username;
}

/**
 * tether_identity_get_auth_mechanism:
 * @self: a #TetherIdentity
 *
 * Gets the SASL mechanism the peer authenticated with in the hello.
 *
 * Returns: (transfer none) (nullable): the SASL mechanism used in the
 *   hello
 *
 * Since: 0.1
 */
const char *
tether_identity_get_auth_mechanism (TetherIdentity *self)
{
  g_return_val_if_fail (TETHER_IS_IDENTITY (self), NULL);
  return self->auth_mechanism;
}

/**
 * tether_identity_get_transport:
 * @self: a #TetherIdentity
 *
 * Gets the transport the peer connected over.
 *
 * Returns: the transport of the connection
 *
 * Since: 0.1
 */
TetherTransportKind
tether_identity_get_transport (TetherIdentity *self)
{
  g_return_val_if_fail (TETHER_IS_IDENTITY (self), TETHER_TRANSPORT_UNIX);
  return self->transport;
}

/**
 * tether_identity_is_authenticated:
 * @self: a #TetherIdentity
 *
 * Tells whether the peer is authenticated.
 *
 * Returns: whether the peer's identity was proven
 *
 * Since: 0.1
 */
gboolean
tether_identity_is_authenticated (TetherIdentity *self)
{
  g_return_val_if_fail (TETHER_IS_IDENTITY (self), FALSE);
  return self->authenticated;
}

/**
 * tether_identity_get_uid:
 * @self: a #TetherIdentity
 *
 * Gets the peer's user id, as the kernel reported it on a Unix socket.
 *
 * Returns: the peer's uid on `unix:`, or -1
 *
 * Since: 0.1
 */
gint64
tether_identity_get_uid (TetherIdentity *self)
{
  g_return_val_if_fail (TETHER_IS_IDENTITY (self), -1);
  return self->uid;
}

/**
 * tether_identity_get_gid:
 * @self: a #TetherIdentity
 *
 * Gets the peer's group id, as the kernel reported it on a Unix socket.
 *
 * Returns: the peer's gid on `unix:`, or -1
 *
 * Since: 0.1
 */
gint64
tether_identity_get_gid (TetherIdentity *self)
{
  g_return_val_if_fail (TETHER_IS_IDENTITY (self), -1);
  return self->gid;
}

/**
 * tether_identity_get_pid:
 * @self: a #TetherIdentity
 *
 * Gets the peer's process id, as the kernel reported it on a Unix socket.
 *
 * Returns: the peer's pid on `unix:` at connection time, or -1
 *
 * Since: 0.1
 */
gint64
tether_identity_get_pid (TetherIdentity *self)
{
  g_return_val_if_fail (TETHER_IS_IDENTITY (self), -1);
  return self->pid;
}

/**
 * tether_identity_get_address:
 * @self: a #TetherIdentity
 *
 * Gets the peer's address, as the transport reported it.
 *
 * Returns: (transfer none): the peer's address
 *
 * Since: 0.1
 */
const char *
tether_identity_get_address (TetherIdentity *self)
{
  g_return_val_if_fail (TETHER_IS_IDENTITY (self), NULL);
  return self->address;
}

/**
 * tether_identity_get_certificate:
 * @self: a #TetherIdentity
 *
 * Gets the certificate the peer presented on TLS, if any.
 *
 * Returns: (transfer none) (nullable): the peer's certificate
 *
 * Since: 0.1
 */
GTlsCertificate *
tether_identity_get_certificate (TetherIdentity *self)
{
  g_return_val_if_fail (TETHER_IS_IDENTITY (self), NULL);
  return self->certificate;
}

/**
 * tether_identity_get_certificate_sha256:
 * @self: a #TetherIdentity
 *
 * Gets the SHA-256 hash of the peer's certificate, in hexadecimal.
 *
 * Returns: (transfer none) (nullable): the SHA-256 fingerprint of the
 *   peer's certificate, as lowercase hex
 *
 * Since: 0.1
 */
const char *
tether_identity_get_certificate_sha256 (TetherIdentity *self)
{
  g_return_val_if_fail (TETHER_IS_IDENTITY (self), NULL);
  return self->certificate_sha256;
}

/**
 * tether_identity_to_string:
 * @self: a #TetherIdentity
 *
 * Describes the identity for logs, e.g. `unix uid=1000 gid=1000 pid=4242`
 * or `tls 127.0.0.1:50312 cert=sha256:ab12…`.
 *
 * Returns: (transfer full): a description
 *
 * Since: 0.1
 */
char *
tether_identity_to_string (TetherIdentity *self)
{
  GString *str;

  g_return_val_if_fail (TETHER_IS_IDENTITY (self), NULL);

  str = g_string_new (NULL);
  switch (self->transport)
    {
    case TETHER_TRANSPORT_UNIX:
      g_string_append_printf (str, "unix uid=%" G_GINT64_FORMAT " gid=%" G_GINT64_FORMAT
                              " pid=%" G_GINT64_FORMAT,
                              self->uid, self->gid, self->pid);
      break;
    case TETHER_TRANSPORT_TCP:
      g_string_append_printf (str, "tcp %s", self->address);
      break;
    case TETHER_TRANSPORT_TLS:
      g_string_append_printf (str, "tls %s", self->address);
      break;
    default:
      g_assert_not_reached ();
    }
  if (self->username != NULL)
    {
      /* A user name can be the peer's choice (SASL ANONYMOUS): quoted
       * safely, since this string goes into logs. */
      g_autofree char *shown = _tether_log_escape (self->username, -1);

      g_string_append_printf (str, " user=%s (%s)", shown, self->auth_mechanism);
    }
  if (self->certificate_sha256 != NULL)
    g_string_append_printf (str, " cert=sha256:%.16s%s", self->certificate_sha256,
                            self->authenticated ? "" : " (unverified)");
  if (!self->authenticated)
    g_string_append (str, " anonymous");
  if (self->proxy_address != NULL)
    g_string_append_printf (str, " via %s", self->proxy_address);
  return g_string_free (str, FALSE);
}

/**
 * tether_identity_get_proxy_address:
 * @self: a #TetherIdentity
 *
 * Gets the address of the load balancer the connection came through
 * (see [property@Tether.Identity:proxy-address]).
 *
 * Returns: (transfer none) (nullable): the balancer's address, or %NULL
 *
 * Since: 0.2
 */
const char *
tether_identity_get_proxy_address (TetherIdentity *self)
{
  g_return_val_if_fail (TETHER_IS_IDENTITY (self), NULL);
  return self->proxy_address;
}
