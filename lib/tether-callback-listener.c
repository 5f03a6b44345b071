/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * TetherCallbackListener:
 *
 * Where a client receives detached callbacks: calls from a server that
 * arrive outside the client's own connection, such as the result of a job
 * that finishes after the client disconnected.
 *
 * Make a listener, add its methods with
 * [method@Tether.CallbackListener.add_method], listen with
 * [method@Tether.CallbackListener.listen] (`unix:/PATH`, `ws://HOST:PORT`
 * or `wss://HOST:PORT`, the latter with
 * [method@Tether.CallbackListener.set_tls_certificate]), and give it to a
 * client with [method@Tether.Client.set_callback_listener]: the client
 * announces the listener's first address in its hello, and registers the
 * session the server grants in its answer here.
 *
 * Knowing the address is not enough to be heard. Every delivery must be
 * signed for a session registered here (HMAC-SHA-256 with the session's
 * key: derived from the TLS channel binding of the client's connection on
 * `wss://`, a random secret the server sent over the client's connection
 * otherwise), with a sequence number greater than any accepted before for
 * that session, before its own expiry and within the session's validity;
 * on `unix:` the delivering process must also run as the uid that served
 * the client's connection. Anything else — unsigned, mis-signed, for an
 * unknown or another client's session, replayed, expired, or from the
 * wrong uid — is answered with error -32007
 * (%TETHER_REMOTE_ERROR_CALLBACK_REJECTED), logged once with the
 * identity of whoever connected, and reported with
 * [signal@Tether.CallbackListener::callback-rejected]; no handler runs.
 * Accepted deliveries reach the handlers as ordinary
 * [class@Tether.Invocation]s. See `docs/security-detached.md`.
 *
 * All I/O, signals and handlers run on the main context that was
 * thread-default when the listener was created.
 *
 * Since: 0.1
 */

#include <string.h>

#include <gnutls/gnutls.h>

#include "tether-callback-listener-private.h"
#include "tether-detached-callback-private.h"
#include "tether-error.h"
#include "tether-handshake-private.h"
#include "tether-identity-private.h"
#include "tether-invocation-private.h"
#include "tether-log-private.h"
#include "tether-method-table-private.h"
#include "tether-server-private.h"

#define MAX_SESSIONS          1024
#define MAX_VALIDITY_MS       (7 * (gint64) 86400000)
/* Clocks of one host agree; a little slack for the time on the wire. */
#define CLOCK_SLACK_MS        5000

typedef struct
{
  char    *id;
  guint8   key[TETHER_DETACHED_KEY_SIZE];
  gint64   expires_ms;    /* wall clock: the session's validity ends */
  guint64  last_seq;      /* the last accepted */
  gint64   expected_uid;  /* unix: the server's uid; else -1 */
  char    *origin;        /* the server, for logs */
} Session;

struct _TetherCallbackListener
{
  GObject            parent_instance;

  GMainContext      *context;
  TetherServer      *server;
  TetherMethodTable *methods;
  GHashTable        *sessions;  /* id → Session* */
};

static void hello_extender_init (TetherHelloExtenderInterface *iface);

/* It extends the hello of the clients it is set on (detached callbacks'
 * "detached" member): they need not know it. */
G_DEFINE_FINAL_TYPE_WITH_CODE (TetherCallbackListener, tether_callback_listener, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (TETHER_TYPE_HELLO_EXTENDER, hello_extender_init))

enum {
  SIGNAL_CALLBACK_REJECTED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
session_free (Session *session)
{
  gnutls_memset (session->key, 0, sizeof session->key);
  g_free (session->id);
  g_free (session->origin);
  g_free (session);
}

static gint64
now_ms (void)
{
  return g_get_real_time () / 1000;
}

/* ---------------------------------------------------------------------- */
/* Sessions (registered by the client)                                    */

static void
sessions_prune (TetherCallbackListener *self)
{
  GHashTableIter iter;
  gpointer value;
  gint64 now = now_ms ();

  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((Session *) value)->expires_ms <= now)
      g_hash_table_iter_remove (&iter);

  /* Still full: the session that would end first makes room. */
  while (g_hash_table_size (self->sessions) >= MAX_SESSIONS)
    {
      Session *first = NULL;

      g_hash_table_iter_init (&iter, self->sessions);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (first == NULL || ((Session *) value)->expires_ms < first->expires_ms)
          first = value;
      g_debug ("Too many detached-callback sessions: dropping %s", first->id);
      g_hash_table_remove (self->sessions, first->id);
    }
}

/* The hello's offer: where the server may call us back after the
 * connection closed. */
static GVariant *
hello_offer (TetherHelloExtender  *extender,
             const char           *server_uri,
             const char          **member)
{
  TetherCallbackListener *self = TETHER_CALLBACK_LISTENER (extender);
  const char * const *uris = tether_callback_listener_get_uris (self);
  GVariantDict detached;

  if (uris[0] == NULL)
    {
      g_warning ("The callback listener listens nowhere: no detached callbacks for %s", server_uri);
      return NULL;
    }
  g_variant_dict_init (&detached, NULL);
  g_variant_dict_insert (&detached, "uri", "s", uris[0]);
  *member = "detached";
  return g_variant_dict_end (&detached);
}

/* The server's answer: a session to register, or why there is none. */
static void
hello_answered (TetherHelloExtender *extender,
                TetherConnection    *conn,
                const char          *server_uri,
                GVariant            *answer)
{
  TetherCallbackListener *self = TETHER_CALLBACK_LISTENER (extender);
  TetherIdentity *server_identity = _tether_connection_get_identity (conn);
  const char *refused = _tether_vardict_get_string (answer, "refused");
  const char *id = _tether_vardict_get_string (answer, "session");
  gint64 validity = 0;
  gboolean has_validity = _tether_vardict_get_int (answer, "validity_ms", &validity);
  g_autoptr(GVariant) secret_value = answer != NULL && g_variant_is_of_type (answer, G_VARIANT_TYPE_VARDICT)
                                       ? g_variant_lookup_value (answer, "secret", NULL) : NULL;
  const char *secret = _tether_vardict_get_string (answer, "secret");
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) binding = NULL;
  g_autofree guint8 *session_bytes = NULL;
  g_autofree char *canonical = NULL;
  g_autofree char *who = tether_identity_to_string (server_identity);
  gsize session_len = 0;
  Session *session;

  if (refused != NULL)
    {
      g_autofree char *shown = _tether_log_escape (refused, -1);

      _tether_log_limited (_tether_connection_get_scheduler (conn), G_LOG_LEVEL_WARNING,
                           "detached-session", NULL, "%s refused detached callbacks: %s", server_uri, shown);
      return;
    }
  if (id == NULL || !has_validity || validity <= 0 || (secret_value != NULL && secret == NULL))
    {
      _tether_log_limited (_tether_connection_get_scheduler (conn), G_LOG_LEVEL_WARNING,
                           "detached-session", NULL, "%s gave no valid detached-callback session in "
                           "its hello: no detached callbacks", server_uri);
      return;
    }

  session_bytes = g_base64_decode (id, &session_len);
  canonical = g_base64_encode (session_bytes, session_len);
  if (session_len != TETHER_DETACHED_SESSION_SIZE ||
      strcmp (canonical, id) != 0)
    {
      _tether_log_limited (_tether_connection_get_scheduler (conn), G_LOG_LEVEL_WARNING,
                           "detached-session", NULL, "%s gave a malformed detached-callback session "
                           "id: no detached callbacks", server_uri);
      return;
    }

  binding = _tether_connection_get_channel_binding (conn, &error);
  if (error != NULL)
    {
      g_warning ("No detached callbacks from %s: no TLS channel binding to derive the key "
                 "from: %s", server_uri, error->message);
      return;
    }

  session = g_new0 (Session, 1);
  session->id = g_strdup (id);
  session->expires_ms = now_ms () + MIN (validity, MAX_VALIDITY_MS);
  session->expected_uid = tether_identity_get_uid (server_identity);
  session->origin = g_strdup_printf ("%s (%s)", server_uri, who);

  if (binding != NULL)
    {
      /* TLS: the key is this channel's, never on the wire. A server that
       * sends one anyway is not doing what it says. */
      if (secret != NULL ||
          !_tether_detached_derive_key (binding, session_bytes, session_len, session->key, &error))
        {
          g_warning ("No detached callbacks from %s: %s", server_uri,
                     secret != NULL ? "it sent a key over TLS, where the key must come from "
                                      "the channel binding" : error->message);
          session_free (session);
          return;
        }
    }
  else
    {
      g_autofree guint8 *key = NULL;
      gsize key_len = 0;

      if (secret != NULL)
        key = g_base64_decode (secret, &key_len);
      if (key_len != TETHER_DETACHED_KEY_SIZE)
        {
          g_warning ("No detached callbacks from %s: without TLS the server must send a "
                     "%d-byte secret", server_uri, TETHER_DETACHED_KEY_SIZE);
          if (key != NULL)
            gnutls_memset (key, 0, key_len);
          session_free (session);
          return;
        }
      memcpy (session->key, key, sizeof session->key);
      gnutls_memset (key, 0, key_len);
    }

  sessions_prune (self);
  g_debug ("Detached-callback session %s from %s", session->id, session->origin);
  g_hash_table_replace (self->sessions, session->id, session);
}

/* ---------------------------------------------------------------------- */
/* Deliveries                                                             */

static void
reject (TetherCallbackListener *self,
        TetherInvocation       *invocation,
        const char             *claimed,
        const char             *reason)
{
  g_autofree char *who = tether_identity_to_string (tether_invocation_get_identity (invocation));

  g_autofree char *shown = claimed != NULL ? _tether_log_escape (claimed, -1) : g_strdup ("(none)");

  /* The claimed session is the sender's choice: quoted safely. */
  TetherConnection *conn = _tether_invocation_get_connection (invocation);

  _tether_log_limited (conn != NULL ? _tether_connection_get_scheduler (conn) : NULL,
                       G_LOG_LEVEL_MESSAGE, "detached-rejected",
                       _tether_identity_get_pool_key (tether_invocation_get_identity (invocation)),
                       "Rejected a detached callback (%s) from %s claiming session %s: %s",
                       tether_invocation_get_method_name (invocation), who, shown, reason);
  g_signal_emit (self, signals[SIGNAL_CALLBACK_REJECTED], 0, claimed, reason);
  tether_invocation_return_error (invocation, TETHER_REMOTE_ERROR_CALLBACK_REJECTED,
                                  "Callback rejected: %s", reason);
}

static gboolean
mac_equal (const guint8 *a,
           const guint8 *b,
           gsize         len)
{
  guint8 diff = 0;

  for (gsize i = 0; i < len; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

/* Returns NULL if @invocation may be dispatched, else why not (and
 * *@claimed the session it claimed, if any). */
static char *
verify (TetherCallbackListener  *self,
        TetherInvocation        *invocation,
        const char             **claimed)
{
  const TetherDetachedClaim *claim = _tether_invocation_get_claim (invocation);
  g_autofree char *params_json = NULL;
  g_autofree guint8 *sent_mac = NULL;
  gsize sent_len = 0;
  guint8 mac[32];
  Session *session;
  gint64 now = now_ms ();
  gint64 uid;

  *claimed = NULL;
  if (claim == NULL)
    return g_strdup ("unsigned: no \"detached\" signature in its \"tether\" member");

  *claimed = claim->session;
  if (!claim->valid)
    return g_strdup ("malformed signature: \"detached\" needs \"session\", \"seq\" (from 1), "
                     "\"expires\" and \"sig\"");

  session = g_hash_table_lookup (self->sessions, claim->session);
  if (session == NULL)
    return g_strdup ("unknown session");

  params_json = _tether_invocation_dup_params_json (invocation);
  sent_mac = g_base64_decode (claim->sig, &sent_len);
  if (params_json == NULL ||
      !_tether_detached_mac (session->key, session->id, (guint64) claim->seq, claim->expires,
                             tether_invocation_get_method_name (invocation), params_json, mac) ||
      sent_len != sizeof mac || !mac_equal (sent_mac, mac, sizeof mac))
    return g_strdup ("wrong signature");

  /* Signed by the server: now whether this delivery may still count. */
  uid = tether_identity_get_uid (tether_invocation_get_identity (invocation));
  if (session->expected_uid >= 0 && uid != session->expected_uid)
    return g_strdup_printf ("delivered by uid %" G_GINT64_FORMAT ", but the session's server "
                            "(%s) runs as uid %" G_GINT64_FORMAT,
                            uid, session->origin, session->expected_uid);
  if (now >= session->expires_ms)
    return g_strdup ("expired: the session's validity ended");
  if (claim->expires < now)
    return g_strdup_printf ("expired %" G_GINT64_FORMAT " ms ago", now - claim->expires);
  if (claim->expires > now + TETHER_DETACHED_MAX_AHEAD_MS + CLOCK_SLACK_MS)
    return g_strdup ("expires too far ahead (at most a minute)");
  if ((guint64) claim->seq <= session->last_seq)
    return g_strdup_printf ("replayed: seq %" G_GINT64_FORMAT " after %" G_GUINT64_FORMAT,
                            claim->seq, session->last_seq);

  session->last_seq = (guint64) claim->seq;
  return NULL;
}

/* Every call to the listener's server comes here first. */
static void
dispatch (TetherInvocation *invocation,
          gpointer          user_data)
{
  TetherCallbackListener *self = user_data;
  const TetherMethod *method;
  g_autofree char *reason = NULL;
  const char *claimed = NULL;

  reason = verify (self, invocation, &claimed);
  if (reason != NULL)
    {
      reject (self, invocation, claimed, reason);
      return;
    }

  method = _tether_method_table_lookup (self->methods,
                                        tether_invocation_get_method_name (invocation));
  if (method == NULL)
    {
      tether_invocation_return_error_literal (invocation, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND,
                                              "Method not found");
      return;
    }
  method->handler (invocation, method->user_data);
}

/* ---------------------------------------------------------------------- */
/* API                                                                    */

/**
 * tether_callback_listener_new:
 *
 * Creates a listener on the thread-default main context. It receives
 * nothing until it listens and a client registers a session with it.
 *
 * Returns: (transfer full): a new #TetherCallbackListener
 *
 * Since: 0.1
 */
TetherCallbackListener *
tether_callback_listener_new (void)
{
  return g_object_new (TETHER_TYPE_CALLBACK_LISTENER, NULL);
}

/**
 * tether_callback_listener_listen:
 * @self: a #TetherCallbackListener
 * @uri: where to listen: `unix:/PATH`, `ws://HOST:PORT` or
 *   `wss://HOST:PORT`
 * @error: return location for a #GError
 *
 * Starts listening on @uri, as [method@Tether.Server.listen] does (port 0
 * picks a free port; see [method@Tether.CallbackListener.get_uris]). The
 * first address is the one a client announces, and the server accepts it
 * only if it is the client's own: on `unix:` a socket the client's uid
 * owns, on `ws://` and `wss://` the IP address the client connects to the
 * server from. `wss://` needs
 * [method@Tether.CallbackListener.set_tls_certificate]. Plaintext `ws://`
 * shows the deliveries to anyone on the path: keep it on loopback.
 *
 * Returns: %TRUE if the listener is listening on @uri
 *
 * Since: 0.1
 */
gboolean
tether_callback_listener_listen (TetherCallbackListener  *self,
                                 const char              *uri,
                                 GError                 **error)
{
  g_return_val_if_fail (TETHER_IS_CALLBACK_LISTENER (self), FALSE);
  g_return_val_if_fail (uri != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return tether_server_listen (self->server, uri, error);
}

/**
 * tether_callback_listener_get_uris:
 * @self: a #TetherCallbackListener
 *
 * Gets the URIs the listener listens on, with the ports really bound.
 *
 * Returns: (transfer none) (array zero-terminated=1): the URIs
 *
 * Since: 0.1
 */
const char * const *
tether_callback_listener_get_uris (TetherCallbackListener *self)
{
  g_return_val_if_fail (TETHER_IS_CALLBACK_LISTENER (self), NULL);
  return tether_server_get_uris (self->server);
}

/**
 * tether_callback_listener_add_method:
 * @self: a #TetherCallbackListener
 * @name: the method name (not starting with `rpc.`)
 * @handler: (scope notified) (closure user_data) (destroy destroy): the handler
 * @user_data: data for @handler
 * @destroy: (nullable): frees @user_data when the listener is finalized
 *   or the method replaced
 *
 * Adds a method servers may call through a detached callback, with
 * undeclared parameters (`a{sv}` for named, `av` for positional), as
 * [method@Tether.Client.add_method] does. The handler only ever sees
 * deliveries that passed verification.
 *
 * Since: 0.1
 */
void
tether_callback_listener_add_method (TetherCallbackListener *self,
                                     const char             *name,
                                     TetherMethodHandler     handler,
                                     gpointer                user_data,
                                     GDestroyNotify          destroy)
{
  g_return_if_fail (TETHER_IS_CALLBACK_LISTENER (self));
  _tether_method_table_add (self->methods, name, NULL, NULL, TETHER_ACCESS_ANY,
                            handler, user_data, destroy);
}

/**
 * tether_callback_listener_set_tls_certificate:
 * @self: a #TetherCallbackListener
 * @certificate: (nullable): the certificate (with its private key) served
 *   on `wss://`
 *
 * Sets the certificate a `wss://` listener serves; the server that dials
 * it verifies it (see [property@Tether.Server:detached-callback-tls-database]).
 * Set it before [method@Tether.CallbackListener.listen].
 *
 * Since: 0.1
 */
void
tether_callback_listener_set_tls_certificate (TetherCallbackListener *self,
                                              GTlsCertificate        *certificate)
{
  g_return_if_fail (TETHER_IS_CALLBACK_LISTENER (self));
  g_return_if_fail (certificate == NULL || G_IS_TLS_CERTIFICATE (certificate));
  tether_server_set_tls_certificate (self->server, certificate);
}

/**
 * tether_callback_listener_get_tls_certificate:
 * @self: a #TetherCallbackListener
 *
 * Gets the certificate set with
 * [method@Tether.CallbackListener.set_tls_certificate].
 *
 * Returns: (transfer none) (nullable): the certificate served on `wss://`
 *
 * Since: 0.1
 */
GTlsCertificate *
tether_callback_listener_get_tls_certificate (TetherCallbackListener *self)
{
  g_return_val_if_fail (TETHER_IS_CALLBACK_LISTENER (self), NULL);
  return tether_server_get_tls_certificate (self->server);
}

/**
 * tether_callback_listener_close:
 * @self: a #TetherCallbackListener
 *
 * Stops listening and closes the connections in progress; deliveries are
 * no longer possible. Idempotent; also done when the listener is
 * disposed.
 *
 * Since: 0.1
 */
void
tether_callback_listener_close (TetherCallbackListener *self)
{
  g_return_if_fail (TETHER_IS_CALLBACK_LISTENER (self));
  if (self->server != NULL)
    tether_server_close (self->server);
}

guint
_tether_callback_listener_get_n_sessions (TetherCallbackListener *self)
{
  return g_hash_table_size (self->sessions);
}

TetherServer *
_tether_callback_listener_get_server (TetherCallbackListener *self)
{
  return self->server;
}

/* ---------------------------------------------------------------------- */
/* GObject                                                                */

static void
tether_callback_listener_dispose (GObject *object)
{
  TetherCallbackListener *self = TETHER_CALLBACK_LISTENER (object);

  if (self->server != NULL)
    {
      tether_server_close (self->server);
      g_clear_object (&self->server);
    }

  G_OBJECT_CLASS (tether_callback_listener_parent_class)->dispose (object);
}

static void
tether_callback_listener_finalize (GObject *object)
{
  TetherCallbackListener *self = TETHER_CALLBACK_LISTENER (object);

  g_hash_table_unref (self->sessions);
  _tether_method_table_free (self->methods);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (tether_callback_listener_parent_class)->finalize (object);
}

static void
hello_extender_init (TetherHelloExtenderInterface *iface)
{
  iface->offer = hello_offer;
  iface->answered = hello_answered;
}

static void
tether_callback_listener_class_init (TetherCallbackListenerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = tether_callback_listener_dispose;
  object_class->finalize = tether_callback_listener_finalize;

  /**
   * TetherCallbackListener::callback-rejected:
   * @self: the listener
   * @claimed_origin: (nullable): the session the delivery claimed to come
   *   from (its base64 session id), or %NULL if it claimed none
   * @reason: why it was rejected, for people
   *
   * A delivery failed verification: unsigned, wrongly signed, for a
   * session unknown here (another client's, or invented), replayed,
   * expired, or, on `unix:`, sent by another uid than the server's. The
   * sender was answered -32007 and the rejection was logged; no handler
   * ran.
   *
   * Since: 0.1
   */
  signals[SIGNAL_CALLBACK_REJECTED] =
    g_signal_new ("callback-rejected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
}

static void
tether_callback_listener_init (TetherCallbackListener *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->methods = _tether_method_table_new ();
  self->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) session_free);
  /* The listener is a server: each delivery is one connection. Who may
   * be heard is decided per delivery, by its signature, in dispatch(). */
  self->server = tether_server_new ();
  _tether_server_set_fallback_method (self->server, dispatch, self, NULL);
}
