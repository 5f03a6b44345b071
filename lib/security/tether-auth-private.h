/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SASL for the hello, through GNU SASL: SCRAM-SHA-256-PLUS bound to the
 * TLS channel (RFC 9266 tls-exporter), plain SCRAM-SHA-256 where a server
 * allows it without TLS, EXTERNAL (the transport's own proof: kernel uid
 * or verified certificate) and ANONYMOUS. Messages travel base64-encoded.
 *
 * GNU SASL 2.2 facts this relies on (DESIGN.md): the server holds only
 * StoredKey/ServerKey (base64), salt (base64) and the iteration count; on
 * a channel-binding mismatch its server fails and says nothing, so Tether
 * compares the binding itself first, to name the failure; an unknown user
 * gets a stable fake salt and fails like a wrong password; the client
 * accepts any iteration count, so Tether enforces a minimum. */

#include <glib.h>

G_BEGIN_DECLS

#define TETHER_SCRAM_MIN_ITERATIONS 4096
#define TETHER_SCRAM_DEFAULT_ITERATIONS 600000

typedef enum
{
  TETHER_AUTH_CONTINUE,
  TETHER_AUTH_OK,
  TETHER_AUTH_FAILED,
} TetherAuthStatus;

/* Looks up a user's secrets, "SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY"
 * (base64 fields, PostgreSQL's format); NULL for an unknown user. */
typedef const char *(*TetherScramLookup) (const char *username, gpointer user_data);

typedef struct _TetherAuthSession TetherAuthSession;

/* @channel_binding: the tls-exporter data of this connection, or NULL
 * without TLS (then -PLUS mechanisms are refused). */
TetherAuthSession *_tether_auth_server_new  (const char         *mechanism,
                                             GBytes             *channel_binding,
                                             TetherScramLookup   lookup,
                                             gpointer            lookup_data,
                                             const char         *fake_salt_key,
                                             GError            **error);
TetherAuthSession *_tether_auth_client_new  (const char         *mechanism,
                                             const char         *username,
                                             const char         *password,
                                             GBytes             *channel_binding,
                                             GError            **error);
/* One step: @input and *@output are base64 (either may be empty). On
 * failure @error says why: TETHER_ERROR_CHANNEL_BINDING_FAILED for a
 * binding mismatch, TETHER_ERROR_UNAUTHENTICATED otherwise (unknown user
 * and wrong password alike). */
TetherAuthStatus   _tether_auth_step        (TetherAuthSession  *self,
                                             const char         *input,
                                             char              **output,
                                             GError            **error);
/* After TETHER_AUTH_OK on a server: who authenticated. */
const char        *_tether_auth_get_username (TetherAuthSession *self);
const char        *_tether_auth_get_mechanism (TetherAuthSession *self);
void               _tether_auth_free        (TetherAuthSession  *self);

/* "SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY" for @password. */
char              *_tether_scram_secrets_from_password (const char  *password,
                                                        guint        iterations,
                                                        GError     **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TetherAuthSession, _tether_auth_free)

/* Who may authenticate how (server): shared by the server and its
 * connections, and changed by the server at any time. */
typedef struct
{
  GHashTable *users;            /* name → "SCRAM-SHA-256$…" secrets */
  char       *fake_salt_key;    /* per server, random */
  gboolean    allow_plain_scram;
  gboolean    allow_anonymous;
} TetherAuthPolicy;

TetherAuthPolicy *_tether_auth_policy_new   (void);
TetherAuthPolicy *_tether_auth_policy_ref   (TetherAuthPolicy *policy);
void              _tether_auth_policy_unref (TetherAuthPolicy *policy);

G_END_DECLS
