/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Impersonation: the level each outgoing request grants, the JWS tokens
 * that carry IMPERSONATE and DELEGATE, and their verification when a peer
 * presents one to "act as" someone ("act_as" in the request's "tether"
 * member). One policy per server or client, shared with its connections
 * and changed by its owner at any time (properties). */

#include "tether-credentials.h"
#include "tether-identity.h"
#include "tether-message-private.h"

G_BEGIN_DECLS

typedef struct _TetherImpPolicy TetherImpPolicy;

struct _TetherImpPolicy
{
  gatomicrefcount           ref;
  gboolean                  is_server;
  /* What this side grants on its outgoing requests. */
  TetherImpersonationLevel  level;
  /* Server: cap for callbacks to peers that are not on this host. */
  TetherImpersonationLevel  remote_level;
  /* Server: the process is privileged (euid 0 or capabilities). */
  gboolean                  privileged;
  gboolean                  allow_privileged;
  /* Grantor key (NULL: cannot grant IMPERSONATE or more). */
  GTlsCertificate          *signing_certificate;
  gpointer                  signing_key;      /* gnutls_privkey_t */
  char                     *issuer;           /* "x509-sha256:…" */
  char                     *alg;              /* "ES256", "EdDSA", "PS256" */
  /* Verifier: trusted issuer certificates. */
  GPtrArray                *trusted;          /* GTlsCertificate */
  char                     *host_id;          /* "host:<machine-id>" */
};

TetherImpPolicy *_tether_imp_policy_new       (gboolean          is_server);
TetherImpPolicy *_tether_imp_policy_ref       (TetherImpPolicy  *policy);
void             _tether_imp_policy_unref     (TetherImpPolicy  *policy);
gboolean         _tether_imp_policy_set_signing_certificate (TetherImpPolicy *policy,
                                                             GTlsCertificate *certificate,
                                                             GError         **error);
void             _tether_imp_policy_set_host_id (TetherImpPolicy *policy,
                                                 const char      *host_id);

/* The level a request to @callee_identity actually carries, once the
 * policy's caps and clamps are applied to @requested. */
TetherImpersonationLevel _tether_imp_policy_effective_level (TetherImpPolicy          *policy,
                                                             TetherIdentity           *callee_identity,
                                                             TetherImpersonationLevel  requested);

/* Sets @meta's level (and the token from IMPERSONATE up, "act_as" when
 * @act_as is given) for a request of @method that ends in @timeout_ms. */
gboolean         _tether_imp_decorate        (TetherImpPolicy          *policy,
                                              TetherMeta               *meta,
                                              TetherIdentity           *callee_identity,
                                              TetherImpersonationLevel  level,
                                              TetherCredentials        *act_as,
                                              const char               *method,
                                              gint64                    timeout_ms,
                                              GError                  **error);

/* Verifies an "act_as" token presented by @presenter. */
TetherCredentials *_tether_imp_verify        (TetherImpPolicy          *policy,
                                              const char               *token,
                                              TetherIdentity           *presenter,
                                              GError                  **error);

/* Who the identity is, as a token names it ("uid:…", "user:…",
 * "x509-sha256:…"), or NULL if nothing authenticated it. */
char            *_tether_identity_dup_principal (TetherIdentity *identity);
/* unix:, or TCP/TLS from a loopback address. */
gboolean         _tether_identity_is_local      (TetherIdentity *identity);
gboolean         _tether_process_is_privileged  (void);

/* TetherCredentials: parses a compact JWS (no signature check). */
TetherCredentials *_tether_credentials_new_from_token (const char  *token,
                                                       GError     **error);

G_END_DECLS
G_BEGIN_DECLS
/* Splits a compact JWS into its decoded header and claims (a{sv}, new
 * references). */
gboolean _tether_jws_split (const char  *token,
                            GVariant   **header,
                            GVariant   **claims,
                            GError     **error);
G_END_DECLS
