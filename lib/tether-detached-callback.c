/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * TetherDetachedCallback:
 *
 * A way for a server to call a client back after the client's connection
 * closed: the result of a job that outlives the call that started it.
 *
 * A client that runs a [class@Tether.CallbackListener] announces its
 * address in the hello ([method@Tether.Client.set_callback_listener]). A
 * server with [property@Tether.Server:allow-detached-callbacks] set checks
 * that the address belongs to the same peer — on `unix:` a socket owned
 * by the peer's kernel-verified uid, on `ws://` and `wss://` the very IP
 * address the peer connected from — and grants a session for
 * [property@Tether.Server:detached-callback-validity]; anything else is
 * refused in the hello, and never dialled.
 * [method@Tether.Peer.get_detached_callback] then returns this object,
 * which stays usable after the peer disconnected.
 *
 * [method@Tether.DetachedCallback.call_async] dials the listener with a
 * fresh connection that carries no credentials of the server's (no
 * certificate, no password), sends one request signed with the session's
 * key, returns the answer and closes. On TLS the key is derived on both
 * sides from the original connection's `tls-exporter` channel binding and
 * never sent; without TLS it is a random secret sent in the hello over
 * the original connection (a Unix socket is kernel-protected; plaintext
 * `ws://` is only as safe as loopback). The signature proves the origin to
 * the listener and is worthless anywhere else. See
 * `docs/security-detached.md`.
 *
 * Calls on one object are sent one at a time, in order (each carries a
 * sequence number the listener requires to increase); later ones wait
 * their turn, and fail at their own deadline or cancellation while they
 * wait.
 *
 * The object belongs to the main context of the server that made it;
 * use it from that context only.
 *
 * Since: 0.1
 */

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "tether-client-private.h"
#include "tether-detached-callback-private.h"
#include "tether-error.h"
#include "tether-identity-private.h"
#include "tether-message-private.h"
#include "tether-log-private.h"
#include "tether-scheduler-private.h"
#include "tether-transport-private.h"

#define MAX_QUEUED_CALLS 16

struct _TetherDetachedCallback
{
  GObject              parent_instance;

  GMainContext        *context;
  char                *uri;
  char                *peer;            /* who announced it, for logs */
  char                *session;         /* base64 */
  guint8               key[TETHER_DETACHED_KEY_SIZE];
  gint64               expires;         /* wall clock, µs: end of validity */
  guint64              seq;             /* the last one signed */
  gint64               expected_uid;    /* unix: the peer's uid; else -1 */
  GTlsDatabase        *tls_database;
  guint                default_timeout_ms;
  guint                max_timeout_ms;
  TetherScheduler     *scheduler;       /* the context's: queued calls' deadlines */
  GQueue               queue;           /* GTask*: calls waiting their turn */
  GTask               *current;         /* the call on the wire */
};

G_DEFINE_FINAL_TYPE (TetherDetachedCallback, tether_detached_callback, G_TYPE_OBJECT)

/* ---------------------------------------------------------------------- */
/* Keys and signatures (both sides)                                       */

gboolean
_tether_detached_derive_key (GBytes        *binding,
                             const guint8  *session,
                             gsize          session_len,
                             guint8        *key,
                             GError       **error)
{
  static const char info_text[] = "tether detached callback v1";
  guint8 prk[32];
  gsize binding_len;
  gnutls_datum_t ikm, salt, prk_datum, info;
  int ret;

  ikm.data = (unsigned char *) g_bytes_get_data (binding, &binding_len);
  ikm.size = binding_len;
  salt.data = (unsigned char *) session;
  salt.size = session_len;
  info.data = (unsigned char *) info_text;
  info.size = strlen (info_text);

  ret = gnutls_hkdf_extract (GNUTLS_MAC_SHA256, &ikm, &salt, prk);
  if (ret >= 0)
    {
      prk_datum.data = prk;
      prk_datum.size = sizeof prk;
      ret = gnutls_hkdf_expand (GNUTLS_MAC_SHA256, &prk_datum, &info, key,
                                TETHER_DETACHED_KEY_SIZE);
    }
  gnutls_memset (prk, 0, sizeof prk);
  if (ret < 0)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_FAILED,
                   "Deriving the detached-callback key: %s", gnutls_strerror (ret));
      return FALSE;
    }
  return TRUE;
}

gboolean
_tether_detached_mac (const guint8 *key,
                      const char   *session,
                      guint64       seq,
                      gint64        expires_ms,
                      const char   *method,
                      const char   *params_json,
                      guint8        mac[32])
{
  g_autoptr(GString) text = g_string_new ("tether-detached-v1\n");

  g_string_append_printf (text, "%s\n%" G_GUINT64_FORMAT "\n%" G_GINT64_FORMAT "\n%s\n%s",
                          session, seq, expires_ms, method, params_json);
  return gnutls_hmac_fast (GNUTLS_MAC_SHA256, key, TETHER_DETACHED_KEY_SIZE,
                           text->str, text->len, mac) >= 0;
}

char *
_tether_detached_sign (const guint8 *key,
                       const char   *session,
                       guint64       seq,
                       gint64        expires_ms,
                       const char   *method,
                       const char   *params_json)
{
  guint8 mac[32];

  if (!_tether_detached_mac (key, session, seq, expires_ms, method, params_json, mac))
    return NULL;
  return g_base64_encode (mac, sizeof mac);
}

/* ---------------------------------------------------------------------- */
/* The hello (server)                                                     */

static GVariant *
refused (const char *reason)
{
  GVariantBuilder answer;

  g_variant_builder_init (&answer, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&answer, "{sv}", "refused", g_variant_new_string (reason));
  return g_variant_builder_end (&answer);
}

static GVariant *
refuse (TetherConnection *conn,
        const char       *uri,
        const char       *reason,
        const char       *details)
{
  g_autofree char *who = tether_identity_to_string (_tether_connection_get_identity (conn));

  /* The peer learns the reason; the log also gets what the server found
   * (which the peer need not learn: stat() runs with the server's rights). */
  g_autofree char *shown = uri != NULL ? _tether_log_escape (uri, -1) : g_strdup ("(no address)");

  _tether_log_limited (_tether_connection_get_scheduler (conn), G_LOG_LEVEL_MESSAGE,
                       "detached-refused", _tether_identity_get_pool_key (_tether_connection_get_identity (conn)),
                       "Refusing detached callbacks to %s, announced by %s: %s%s%s",
                       shown, who, reason, details != NULL ? ": " : "", details != NULL ? details : "");
  return refused (reason);
}

/* The address must be the peer's own: a socket owned by its uid, or the
 * IP address it connected from. */
static GVariant *
check_address (TetherConnection *conn,
               const char       *uri,
               const TetherUri  *parsed)
{
  TetherIdentity *identity = _tether_connection_get_identity (conn);
  gint64 uid = tether_identity_get_uid (identity);

  if (parsed->kind == TETHER_TRANSPORT_UNIX)
    {
      struct stat st;
      g_autofree char *reason = NULL;

      if (uid < 0)
        return refuse (conn, uri, "a unix: callback address needs a peer connected over unix: "
                                  "(its kernel-verified uid is what shows the socket is its own)",
                       NULL);
      reason = g_strdup_printf ("%s is not a socket owned by uid %" G_GINT64_FORMAT
                                " (the peer's)", parsed->path, uid);
      /* lstat: a symbolic link is not the peer's socket, whoever owns it. */
      if (lstat (parsed->path, &st) != 0)
        {
          int saved = errno;

          return refuse (conn, uri, reason, g_strerror (saved));
        }
      if (!S_ISSOCK (st.st_mode))
        return refuse (conn, uri, reason, "not a socket");
      if ((gint64) st.st_uid != uid)
        {
          g_autofree char *owner = g_strdup_printf ("owned by uid %u", (guint) st.st_uid);

          return refuse (conn, uri, reason, owner);
        }
      return NULL;
    }
  else
    {
      const char *address = tether_identity_get_address (identity);
      const char *colon = address != NULL ? strrchr (address, ':') : NULL;
      g_autofree char *host = NULL;
      g_autoptr(GInetAddress) from = NULL;
      g_autoptr(GInetAddress) announced = g_inet_address_new_from_string (parsed->host);

      if (tether_identity_get_transport (identity) == TETHER_TRANSPORT_UNIX || colon == NULL)
        return refuse (conn, uri, "a ws:// or wss:// callback address needs a peer connected "
                                  "over ws:// or wss:// (its IP address is what shows the "
                                  "address is its own)", NULL);
      host = address[0] == '['
        ? g_strndup (address + 1, MAX (colon - address - 2, 0))
        : g_strndup (address, colon - address);
      from = g_inet_address_new_from_string (host);
      if (announced == NULL)
        return refuse (conn, uri, "the callback address must be an IP address (the one the "
                                  "peer connected from), not a host name", NULL);
      if (from == NULL || !g_inet_address_equal (from, announced))
        {
          g_autofree char *reason = g_strdup_printf ("%s is not the address this peer "
                                                     "connected from (%s)", parsed->host, host);

          return refuse (conn, uri, reason, NULL);
        }
      return NULL;
    }
}

GVariant *
_tether_detached_callback_hello (TetherConnection            *conn,
                                 GVariant                    *request,
                                 const TetherDetachedPolicy  *policy,
                                 TetherDetachedCallback     **out)
{
  const char *uri = _tether_vardict_get_string (request, "uri");
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) binding = NULL;
  TetherUri parsed;
  TetherDetachedCallback *self;
  guint8 session[TETHER_DETACHED_SESSION_SIZE];
  guint8 secret[TETHER_DETACHED_KEY_SIZE];
  GVariant *answer;
  GVariantBuilder granted;
  int ret;

  *out = NULL;

  if (!policy->allow)
    {
      g_debug ("Detached callbacks are disabled: refusing %s", uri != NULL ? uri : "(no address)");
      return refused ("detached callbacks are disabled on this server");
    }
  if (uri == NULL || strlen (uri) > 4096)
    return refuse (conn, NULL, "the \"detached\" member needs a \"uri\" string", NULL);
  if (!_tether_uri_parse (uri, &parsed, &error))
    return refuse (conn, uri, error->message, NULL);

  answer = check_address (conn, uri, &parsed);
  if (answer != NULL)
    {
      _tether_uri_clear (&parsed);
      return answer;
    }

  binding = _tether_connection_get_channel_binding (conn, &error);
  if (error != NULL)
    {
      _tether_uri_clear (&parsed);
      return refuse (conn, uri, "no TLS channel binding to derive a key from", error->message);
    }

  ret = gnutls_rnd (GNUTLS_RND_NONCE, session, sizeof session);
  if (ret >= 0)
    ret = gnutls_rnd (GNUTLS_RND_KEY, secret, sizeof secret);
  if (ret < 0)
    {
      _tether_uri_clear (&parsed);
      return refuse (conn, uri, "the server could not make a session", gnutls_strerror (ret));
    }

  self = g_object_new (TETHER_TYPE_DETACHED_CALLBACK, NULL);
  self->uri = g_strdup (uri);
  self->peer = tether_identity_to_string (_tether_connection_get_identity (conn));
  self->session = g_base64_encode (session, sizeof session);
  self->expires = g_get_real_time () + (gint64) policy->validity_ms * 1000;
  self->expected_uid = parsed.kind == TETHER_TRANSPORT_UNIX
    ? tether_identity_get_uid (_tether_connection_get_identity (conn)) : -1;
  self->tls_database = policy->tls_database != NULL ? g_object_ref (policy->tls_database) : NULL;
  self->default_timeout_ms = MIN (policy->default_timeout_ms, policy->max_timeout_ms);
  self->max_timeout_ms = policy->max_timeout_ms;
  _tether_uri_clear (&parsed);

  g_variant_builder_init (&granted, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&granted, "{sv}", "session", g_variant_new_string (self->session));
  g_variant_builder_add (&granted, "{sv}", "validity_ms", g_variant_new_int64 (policy->validity_ms));
  if (binding != NULL)
    {
      /* TLS: both sides derive the key from this channel; it is never sent. */
      if (!_tether_detached_derive_key (binding, session, sizeof session, self->key, &error))
        {
          g_variant_builder_clear (&granted);
          g_object_unref (self);
          gnutls_memset (secret, 0, sizeof secret);
          return refuse (conn, uri, "the server could not derive a key", error->message);
        }
    }
  else
    {
      /* No TLS: a random secret, over the connection the peer opened. */
      g_autofree char *encoded = g_base64_encode (secret, sizeof secret);

      memcpy (self->key, secret, sizeof secret);
      g_variant_builder_add (&granted, "{sv}", "secret", g_variant_new_string (encoded));
      gnutls_memset (encoded, 0, strlen (encoded));
    }
  gnutls_memset (secret, 0, sizeof secret);

  g_debug ("Detached-callback session %s for %s at %s", self->session, self->peer, self->uri);
  *out = self;
  return g_variant_builder_end (&granted);
}

/* ---------------------------------------------------------------------- */
/* Calls                                                                  */

typedef struct
{
  char          *method;
  GVariant      *params;
  gint64         deadline;  /* monotonic: connecting, signing, the answer */
  TetherClient  *client;
  /* While queued: the deadline in the scheduler, and the cancellable's
   * handler. A queued call fails at its own deadline or cancellation,
   * not when it reaches the front. */
  GTask         *task;      /* unowned: the task this is the data of */
  TetherDeadline queued_deadline;
  gulong         cancel_id;
} CallData;

static void
call_data_free (CallData *data)
{
  g_assert (data->cancel_id == 0 && !_tether_deadline_is_queued (&data->queued_deadline));
  g_free (data->method);
  g_clear_pointer (&data->params, g_variant_unref);
  if (data->client != NULL)
    tether_client_close (data->client);
  g_clear_object (&data->client);
  g_free (data);
}

static void detached_next (TetherDetachedCallback *self);

/* The one way a call ends. Steals @value and @error. */
static void
call_complete (TetherDetachedCallback *self,
               GTask                  *task,
               GVariant               *value,
               GError                 *error)
{
  CallData *data = g_task_get_task_data (task);

  g_object_ref (self);
  if (data->client != NULL)
    {
      tether_client_close (data->client);
      g_clear_object (&data->client);
    }
  if (self->current == task)
    self->current = NULL;

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, value, (GDestroyNotify) g_variant_unref);
  g_object_unref (task);

  detached_next (self);
  g_object_unref (self);
}

static gint64
remaining_ms (CallData *data)
{
  return (data->deadline - g_get_monotonic_time ()) / 1000;
}

/* Signs the request as it is sent (see TetherRequestSigner). */
static TetherDetachedClaim *
sign_cb (const char  *method,
         const char  *params_json,
         gint64       timeout_ms,
         gpointer     user_data,
         GError     **error)
{
  TetherDetachedCallback *self = user_data;
  gint64 now_ms = g_get_real_time () / 1000;
  gint64 end_ms = self->expires / 1000;
  gint64 expires_ms;
  g_autofree char *sig = NULL;
  TetherDetachedClaim *claim;

  if (now_ms >= end_ms)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_CALLBACK_REJECTED,
                   "The detached-callback session of %s has expired", self->peer);
      return NULL;
    }

  /* Valid no longer than the caller waits, never beyond a minute, never
   * beyond the session. */
  expires_ms = MIN (now_ms + MIN (MAX (timeout_ms, 1), TETHER_DETACHED_MAX_AHEAD_MS), end_ms);
  self->seq++;
  sig = _tether_detached_sign (self->key, self->session, self->seq, expires_ms,
                               method, params_json);
  if (sig == NULL)
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_FAILED,
                           "Could not sign the detached callback");
      return NULL;
    }
  claim = g_new0 (TetherDetachedClaim, 1);
  claim->session = g_strdup (self->session);
  claim->seq = (gint64) self->seq;
  claim->expires = expires_ms;
  claim->sig = g_steal_pointer (&sig);
  claim->valid = TRUE;
  return claim;
}

static void
reply_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  TetherDetachedCallback *self = g_task_get_source_object (task);
  GError *error = NULL;
  GVariant *value = _tether_connection_call_finish (result, reply_cb, &error);

  call_complete (self, task, value, error);
}

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  GTask *task = user_data;
  TetherDetachedCallback *self = g_task_get_source_object (task);
  CallData *data = g_task_get_task_data (task);
  TetherCallOptions options = TETHER_CALL_OPTIONS_INIT;
  GError *error = NULL;
  gint64 left;

  if (!tether_client_connect_finish (TETHER_CLIENT (source), result, &error))
    {
      g_prefix_error (&error, "Dialling the callback listener at %s: ", self->uri);
      call_complete (self, task, NULL, error);
      return;
    }

  left = remaining_ms (data);
  if (left <= 0)
    {
      call_complete (self, task, NULL,
                     g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                  "No time left for the detached callback to %s", self->uri));
      return;
    }

  /* One request, through the same call path as every other, signed. The
   * task keeps this object alive, hence the signer's data. */
  options.method = data->method;
  options.params = data->params;
  options.timeout_msec = (int) left;
  options.signer = sign_cb;
  options.signer_data = self;
  _tether_connection_call_async (_tether_client_get_connection (data->client), &options, self,
                                 reply_cb, g_task_get_cancellable (task), reply_cb, task);
}

/* Puts @task on the wire; FALSE if it was completed at once instead. */
static gboolean
call_start (TetherDetachedCallback *self,
            GTask                  *task)
{
  CallData *data = g_task_get_task_data (task);
  gint64 left = remaining_ms (data);

  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      call_complete (self, task, NULL,
                     g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                          "The detached callback was cancelled"));
      return FALSE;
    }
  if (left <= 0)
    {
      call_complete (self, task, NULL,
                     g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                  "The deadline passed while earlier detached callbacks to %s "
                                  "were on the wire", self->uri));
      return FALSE;
    }
  if (g_get_real_time () >= self->expires)
    {
      call_complete (self, task, NULL,
                     g_error_new (TETHER_ERROR, TETHER_ERROR_CALLBACK_REJECTED,
                                  "The detached-callback session of %s has expired "
                                  "(detached-callback-validity): the listener would reject it",
                                  self->peer));
      return FALSE;
    }

  self->current = task;

  /* A fresh client with nothing of the server's: no certificate, no
   * password. On unix: the listener must be served by the peer's uid. */
  g_main_context_push_thread_default (self->context);
  data->client = g_object_new (TETHER_TYPE_CLIENT,
                               "uri", self->uri,
                               "handshake-timeout", (guint) MIN (left, 600000),
                               "expected-server-uid", self->expected_uid,
                               "tls-database", self->tls_database,
                               NULL);
  tether_client_connect_async (data->client, g_task_get_cancellable (task), connect_cb, task);
  g_main_context_pop_thread_default (self->context);
  return TRUE;
}

/* @task leaves the queue: its deadline and cancellation are the dialling
 * client's and the call's from now on. */
static void
call_unqueue (TetherDetachedCallback *self,
              GTask                  *task)
{
  CallData *data = g_task_get_task_data (task);

  _tether_scheduler_remove (self->scheduler, &data->queued_deadline);
  g_cancellable_disconnect (g_task_get_cancellable (task), data->cancel_id);
  data->cancel_id = 0;
}

static void
detached_next (TetherDetachedCallback *self)
{
  GTask *task;

  while (self->current == NULL && (task = g_queue_pop_head (&self->queue)) != NULL)
    {
      call_unqueue (self, task);
      call_start (self, task);
    }
}

/* A queued call's deadline came before its turn. */
static void
queued_deadline_cb (TetherDeadline *deadline)
{
  CallData *data = G_STRUCT_MEMBER_P (deadline, -G_STRUCT_OFFSET (CallData, queued_deadline));
  GTask *task = data->task;
  TetherDetachedCallback *self = g_task_get_source_object (task);

  g_queue_remove (&self->queue, task);
  call_unqueue (self, task);
  call_complete (self, task, NULL,
                 g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                              "The deadline passed while earlier detached callbacks to %s "
                              "were on the wire", self->uri));
}

static gboolean
queued_cancelled_idle (gpointer user_data)
{
  GTask *task = user_data;
  TetherDetachedCallback *self = g_task_get_source_object (task);

  /* Its turn may have come meanwhile: then the call itself sees the
   * cancellation. */
  if (g_queue_remove (&self->queue, task))
    {
      call_unqueue (self, task);
      call_complete (self, task, NULL,
                     g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                          "The detached callback was cancelled"));
    }
  return G_SOURCE_REMOVE;
}

/* May run in any thread: only schedules the idle on the task's context. */
static void
queued_cancelled_cb (GCancellable *cancellable,
                     gpointer      user_data)
{
  g_autoptr(GSource) source = g_idle_source_new ();

  g_source_set_static_name (source, "[tether] cancel detached callback");
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_task_attach_source (user_data, source, queued_cancelled_idle);
}

/**
 * tether_detached_callback_call_async:
 * @self: a #TetherDetachedCallback
 * @method: the listener method to call
 * @params: (nullable): the parameters (a tuple travels as a JSON array,
 *   `a{sv}` as an object); a floating reference is sunk
 * @timeout_msec: the timeout in milliseconds, dialling included, or -1 for
 *   the server's [property@Tether.Server:callback-timeout]; clamped to
 *   [property@Tether.Server:max-callback-timeout]
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the answer
 * @user_data: (closure): data for @callback
 *
 * Calls the client's [class@Tether.CallbackListener]: dials the address it
 * announced, sends one request signed with the session's key, and closes
 * once the answer came. The signature is valid no longer than
 * @timeout_msec (at most a minute) and never beyond
 * [property@Tether.Server:detached-callback-validity].
 *
 * Calls on one object are sent one at a time, in the order they were
 * made; at most 16 may wait, and the next one fails at once with
 * %TETHER_ERROR_RESOURCE_EXHAUSTED. A call still waiting its turn fails
 * at its own deadline (%G_IO_ERROR_TIMED_OUT) or as soon as
 * @cancellable is cancelled, whatever is on the wire before it.
 *
 * Since: 0.1
 */
void
tether_detached_callback_call_async (TetherDetachedCallback *self,
                                     const char             *method,
                                     GVariant               *params,
                                     int                     timeout_msec,
                                     GCancellable           *cancellable,
                                     GAsyncReadyCallback     callback,
                                     gpointer                user_data)
{
  g_autoptr(GTask) task = NULL;
  CallData *data;
  guint timeout_ms;

  g_return_if_fail (TETHER_IS_DETACHED_CALLBACK (self));
  g_return_if_fail (method != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  if (params != NULL)
    g_variant_ref_sink (params);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, tether_detached_callback_call_async);
  g_task_set_name (task, "[tether] detached callback");
  data = g_new0 (CallData, 1);
  data->method = g_strdup (method);
  data->params = params;
  data->task = task;
  g_task_set_task_data (task, data, (GDestroyNotify) call_data_free);

  timeout_ms = timeout_msec < 0 ? self->default_timeout_ms
                                : MIN ((guint) timeout_msec, self->max_timeout_ms);
  data->deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  if (g_task_return_error_if_cancelled (task))
    return;
  if (timeout_ms == 0)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                               "A timeout of 0 ms leaves no time for an answer");
      return;
    }
  if (g_queue_get_length (&self->queue) >= MAX_QUEUED_CALLS)
    {
      g_task_return_new_error (task, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                               "Too many detached callbacks waiting for %s (limit %d)",
                               self->uri, MAX_QUEUED_CALLS);
      return;
    }

  _tether_scheduler_add (self->scheduler, &data->queued_deadline, data->deadline,
                         queued_deadline_cb);
  if (cancellable != NULL)
    data->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (queued_cancelled_cb),
                                             task, NULL);
  g_queue_push_tail (&self->queue, g_steal_pointer (&task));
  detached_next (self);
}

/**
 * tether_detached_callback_call_finish:
 * @self: a #TetherDetachedCallback
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Tether.DetachedCallback.call_async]. Errors the
 * listener answered with are in %TETHER_REMOTE_ERROR
 * (%TETHER_REMOTE_ERROR_CALLBACK_REJECTED if it refused the delivery);
 * %TETHER_ERROR_CALLBACK_REJECTED means the session expired before it
 * was sent; failing to dial is reported as the client's connect would
 * report it.
 *
 * Returns: (transfer full): the result, or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tether_detached_callback_call_finish (TetherDetachedCallback  *self,
                                      GAsyncResult            *result,
                                      GError                 **error)
{
  g_return_val_if_fail (TETHER_IS_DETACHED_CALLBACK (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                        tether_detached_callback_call_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * tether_detached_callback_get_uri:
 * @self: a #TetherDetachedCallback
 *
 * Gets the address the client announced, which the server checked
 * belongs to it.
 *
 * Returns: (transfer none): the listener's URI
 *
 * Since: 0.1
 */
const char *
tether_detached_callback_get_uri (TetherDetachedCallback *self)
{
  g_return_val_if_fail (TETHER_IS_DETACHED_CALLBACK (self), NULL);
  return self->uri;
}

/**
 * tether_detached_callback_get_expiration_time:
 * @self: a #TetherDetachedCallback
 *
 * Gets when the session ends: the hello's time plus
 * [property@Tether.Server:detached-callback-validity]. Calls after it fail
 * without being sent.
 *
 * Returns: the end of the session, in the time base of g_get_real_time()
 *
 * Since: 0.1
 */
gint64
tether_detached_callback_get_expiration_time (TetherDetachedCallback *self)
{
  g_return_val_if_fail (TETHER_IS_DETACHED_CALLBACK (self), 0);
  return self->expires;
}

const char *
_tether_detached_callback_get_session (TetherDetachedCallback *self)
{
  return self->session;
}

const guint8 *
_tether_detached_callback_get_key (TetherDetachedCallback *self)
{
  return self->key;
}

/* ---------------------------------------------------------------------- */
/* GObject                                                                */

static void
tether_detached_callback_finalize (GObject *object)
{
  TetherDetachedCallback *self = TETHER_DETACHED_CALLBACK (object);

  /* Every queued task holds a reference on us. */
  g_assert (self->current == NULL && g_queue_is_empty (&self->queue));
  gnutls_memset (self->key, 0, sizeof self->key);
  g_free (self->uri);
  g_free (self->peer);
  g_free (self->session);
  g_clear_object (&self->tls_database);
  _tether_scheduler_unref (self->scheduler);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (tether_detached_callback_parent_class)->finalize (object);
}

static void
tether_detached_callback_class_init (TetherDetachedCallbackClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = tether_detached_callback_finalize;
}

static void
tether_detached_callback_init (TetherDetachedCallback *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->scheduler = _tether_scheduler_new (self->context);
  self->expected_uid = -1;
  g_queue_init (&self->queue);
}
