/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Detached callbacks, the parts both sides share: the session a server
 * grants in the hello, the key (HKDF from the TLS channel binding, or a
 * random secret without TLS) and the signature every delivery carries.
 * See docs/security-detached.md. */

#include "tether-connection-private.h"
#include "tether-detached-callback.h"

G_BEGIN_DECLS

#define TETHER_DETACHED_KEY_SIZE     32
#define TETHER_DETACHED_SESSION_SIZE 16
/* A delivery's "expires" is at most this far ahead of its sending. */
#define TETHER_DETACHED_MAX_AHEAD_MS 60000

/* What the server allows (its properties, when the hello arrives). */
typedef struct
{
  gboolean      allow;
  guint         validity_ms;
  guint         default_timeout_ms;  /* the server's callback-timeout */
  guint         max_timeout_ms;      /* its max-callback-timeout */
  GTlsDatabase *tls_database;        /* verifies a wss:// listener; NULL: the system's */
} TetherDetachedPolicy;

/* Server: the hello of @conn announced @request ({"uri": U}, as a{sv}).
 * Decides, logs a refusal, and returns the reply's "detached" member (a
 * floating a{sv}): {"session", "validity_ms"[, "secret"]} or {"refused"}.
 * On success *@out gets the new callback object. */
GVariant *_tether_detached_callback_hello (TetherConnection            *conn,
                                           GVariant                    *request,
                                           const TetherDetachedPolicy  *policy,
                                           TetherDetachedCallback     **out);

/* @key (TETHER_DETACHED_KEY_SIZE bytes) = HKDF-SHA-256 (IKM = @binding,
 * salt = @session, info = "tether detached callback v1"). */
gboolean  _tether_detached_derive_key      (GBytes                      *binding,
                                            const guint8                *session,
                                            gsize                        session_len,
                                            guint8                      *key,
                                            GError                     **error);
/* HMAC-SHA-256 (key, "tether-detached-v1\n" S "\n" N "\n" E "\n" method
 * "\n" params_json). */
gboolean  _tether_detached_mac             (const guint8                *key,
                                            const char                  *session,
                                            guint64                      seq,
                                            gint64                       expires_ms,
                                            const char                  *method,
                                            const char                  *params_json,
                                            guint8                       mac[32]);
/* The same, base64 (what travels as "sig"). */
char     *_tether_detached_sign            (const guint8                *key,
                                            const char                  *session,
                                            guint64                      seq,
                                            gint64                       expires_ms,
                                            const char                  *method,
                                            const char                  *params_json);

/* For the tests. */
const char   *_tether_detached_callback_get_session (TetherDetachedCallback *self);
const guint8 *_tether_detached_callback_get_key     (TetherDetachedCallback *self);

G_END_DECLS
