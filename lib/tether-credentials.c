/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * TetherCredentials:
 *
 * An impersonation token: what a caller granted at
 * %TETHER_IMPERSONATION_LEVEL_IMPERSONATE or
 * %TETHER_IMPERSONATION_LEVEL_DELEGATE.
 *
 * A callee gets one from [method@Tether.Invocation.impersonate] when its
 * caller granted at least %TETHER_IMPERSONATION_LEVEL_IMPERSONATE, and may
 * present it on a call of its own ([method@Tether.Client.call_full_async])
 * to act as the token's subject. A server that receives it checks the
 * signature against its trusted issuers
 * ([method@Tether.Server.add_trusted_issuer]), that the peer presenting it
 * is the token's holder, its audience (this host only for
 * %TETHER_IMPERSONATION_LEVEL_IMPERSONATE) and its expiry; the handler then
 * sees it through [method@Tether.Invocation.get_acting_as].
 *
 * The token is a JWS in compact serialization (RFC 7515) signed by the
 * grantor's signing certificate. The accessors read its claims; they do
 * not verify it (verification is the business of whoever it is presented
 * to). Principals are written `uid:<n>` (kernel-verified on `unix:`),
 * `user:<name>` (authenticated in the hello) or `x509-sha256:<hex>` (a
 * certificate).
 *
 * Linux has no kernel impersonation token: these credentials are honoured
 * only by Tether services that trust their issuer, and grant nothing
 * elsewhere.
 *
 * Credentials are immutable and may be used from any thread.
 *
 * Since: 0.1
 */

#include <string.h>

#include "tether-credentials.h"
#include "tether-error.h"
#include "tether-impersonation-private.h"

struct _TetherCredentials
{
  GObject                   parent_instance;

  TetherImpersonationLevel  level;
  char                     *subject;
  char                     *holder;
  char                     *issuer;
  char                     *audience;
  gint64                    expiry;
  char                    **chain;
  char                     *token;
};

G_DEFINE_FINAL_TYPE (TetherCredentials, tether_credentials, G_TYPE_OBJECT)

static void
tether_credentials_finalize (GObject *object)
{
  TetherCredentials *self = TETHER_CREDENTIALS (object);

  g_clear_pointer (&self->subject, g_free);
  g_clear_pointer (&self->holder, g_free);
  g_clear_pointer (&self->issuer, g_free);
  g_clear_pointer (&self->audience, g_free);
  g_clear_pointer (&self->chain, g_strfreev);
  g_clear_pointer (&self->token, g_free);

  G_OBJECT_CLASS (tether_credentials_parent_class)->finalize (object);
}

static void
tether_credentials_class_init (TetherCredentialsClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = tether_credentials_finalize;
}

static void
tether_credentials_init (TetherCredentials *self)
{
}

static guchar *
base64url_decode (const char *in,
                  gsize       len,
                  gsize      *out_len)
{
  GString *s = g_string_sized_new (len + 4);

  for (gsize i = 0; i < len; i++)
    {
      char c = in[i];

      if (c == '-')
        c = '+';
      else if (c == '_')
        c = '/';
      else if (!g_ascii_isalnum (c))
        {
          g_string_free (s, TRUE);
          return NULL;
        }
      g_string_append_c (s, c);
    }
  while (s->len % 4 != 0)
    g_string_append_c (s, '=');
  {
    guchar *out = g_base64_decode (s->str, out_len);

    g_string_free (s, TRUE);
    return out;
  }
}

/* Splits a compact JWS into its decoded header and claims (new
 * references). */
gboolean
_tether_jws_split (const char  *token,
                   GVariant   **header,
                   GVariant   **claims,
                   GError     **error)
{
  const char *dot1, *dot2;
  g_autofree guchar *h = NULL;
  g_autofree guchar *c = NULL;
  gsize hlen, clen;

  *header = *claims = NULL;
  dot1 = token != NULL ? strchr (token, '.') : NULL;
  dot2 = dot1 != NULL ? strchr (dot1 + 1, '.') : NULL;
  if (dot2 == NULL || strchr (dot2 + 1, '.') != NULL || strlen (token) > 16384)
    goto bad;
  h = base64url_decode (token, dot1 - token, &hlen);
  c = base64url_decode (dot1 + 1, dot2 - dot1 - 1, &clen);
  if (h == NULL || c == NULL)
    goto bad;
  *header = _tether_json_decode_object ((const char *) h, hlen, NULL);
  *claims = _tether_json_decode_object ((const char *) c, clen, NULL);
  if (*header != NULL && *claims != NULL)
    return TRUE;
  g_clear_pointer (header, g_variant_unref);
  g_clear_pointer (claims, g_variant_unref);
bad:
  g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                       "The impersonation token is not a compact JWS");
  return FALSE;
}

TetherCredentials *
_tether_credentials_new_from_token (const char  *token,
                                    GError     **error)
{
  g_autoptr(TetherCredentials) self = NULL;
  g_autoptr(GVariant) header = NULL;
  g_autoptr(GVariant) claims = NULL;
  g_autoptr(GVariant) chain = NULL;
  const char *lvl = NULL;

  if (!_tether_jws_split (token, &header, &claims, error))
    return NULL;

  self = g_object_new (TETHER_TYPE_CREDENTIALS, NULL);
  g_variant_lookup (claims, "lvl", "&s", &lvl);
  if (lvl == NULL || !_tether_imp_level_from_string (lvl, &self->level) ||
      self->level < TETHER_IMPERSONATION_LEVEL_IMPERSONATE ||
      !g_variant_lookup (claims, "iss", "s", &self->issuer) ||
      !g_variant_lookup (claims, "sub", "s", &self->subject) ||
      !g_variant_lookup (claims, "holder", "s", &self->holder) ||
      !g_variant_lookup (claims, "aud", "s", &self->audience) ||
      !g_variant_lookup (claims, "exp", "x", &self->expiry))
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                           "The impersonation token lacks a required claim");
      return NULL;
    }
  chain = g_variant_lookup_value (claims, "chain", G_VARIANT_TYPE ("av"));
  {
    GPtrArray *hops = g_ptr_array_new ();

    for (gsize i = 0; chain != NULL && i < g_variant_n_children (chain); i++)
      {
        g_autoptr(GVariant) hop = g_variant_get_child_value (chain, i);
        g_autoptr(GVariant) inner = g_variant_get_variant (hop);

        if (g_variant_is_of_type (inner, G_VARIANT_TYPE_STRING))
          g_ptr_array_add (hops, g_variant_dup_string (inner, NULL));
      }
    /* The chain ends with the holder: every hop the authority took. */
    g_ptr_array_add (hops, g_strdup (self->holder));
    g_ptr_array_add (hops, NULL);
    self->chain = (char **) g_ptr_array_free (hops, FALSE);
  }
  self->token = g_strdup (token);
  return g_steal_pointer (&self);
}

/**
 * tether_credentials_get_level:
 * @self: a #TetherCredentials
 *
 * Gets the level the token grants:
 * %TETHER_IMPERSONATION_LEVEL_IMPERSONATE (this host only) or
 * %TETHER_IMPERSONATION_LEVEL_DELEGATE (any host).
 *
 * Returns: the level granted
 *
 * Since: 0.1
 */
TetherImpersonationLevel
tether_credentials_get_level (TetherCredentials *self)
{
  g_return_val_if_fail (TETHER_IS_CREDENTIALS (self), TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  return self->level;
}

/**
 * tether_credentials_get_subject:
 * @self: a #TetherCredentials
 *
 * Gets who may be acted as (the token's `sub` claim).
 *
 * Returns: (transfer none): the subject's principal
 *
 * Since: 0.1
 */
const char *
tether_credentials_get_subject (TetherCredentials *self)
{
  g_return_val_if_fail (TETHER_IS_CREDENTIALS (self), NULL);
  return self->subject;
}

/**
 * tether_credentials_get_holder:
 * @self: a #TetherCredentials
 *
 * Gets who may present the token (the `holder` claim): the callee as the
 * grantor's connection authenticated it.
 *
 * Returns: (transfer none): the holder's principal
 *
 * Since: 0.1
 */
const char *
tether_credentials_get_holder (TetherCredentials *self)
{
  g_return_val_if_fail (TETHER_IS_CREDENTIALS (self), NULL);
  return self->holder;
}

/**
 * tether_credentials_get_issuer:
 * @self: a #TetherCredentials
 *
 * Gets who signed the token (the `iss` claim): `x509-sha256:` and the
 * SHA-256 of the grantor's signing certificate.
 *
 * Returns: (transfer none): the issuer
 *
 * Since: 0.1
 */
const char *
tether_credentials_get_issuer (TetherCredentials *self)
{
  g_return_val_if_fail (TETHER_IS_CREDENTIALS (self), NULL);
  return self->issuer;
}

/**
 * tether_credentials_get_audience:
 * @self: a #TetherCredentials
 *
 * Gets where the token may be used (the `aud` claim): `host:` and the
 * machine id for %TETHER_IMPERSONATION_LEVEL_IMPERSONATE, `*` for
 * %TETHER_IMPERSONATION_LEVEL_DELEGATE.
 *
 * Returns: (transfer none): the audience
 *
 * Since: 0.1
 */
const char *
tether_credentials_get_audience (TetherCredentials *self)
{
  g_return_val_if_fail (TETHER_IS_CREDENTIALS (self), NULL);
  return self->audience;
}

/**
 * tether_credentials_get_expiry:
 * @self: a #TetherCredentials
 *
 * Gets when the token expires, no later than the deadline of the call that
 * granted it.
 *
 * Returns: the expiry, in seconds since the Unix epoch (wall clock)
 *
 * Since: 0.1
 */
gint64
tether_credentials_get_expiry (TetherCredentials *self)
{
  g_return_val_if_fail (TETHER_IS_CREDENTIALS (self), 0);
  return self->expiry;
}

/**
 * tether_credentials_get_chain:
 * @self: a #TetherCredentials
 *
 * Gets every hop the authority took, from the subject to the holder: for
 * a token granted directly, `[issuer, holder]`; for a delegated one, each
 * intermediate party in order.
 *
 * Returns: (transfer none) (array zero-terminated=1): the chain
 *
 * Since: 0.1
 */
const char * const *
tether_credentials_get_chain (TetherCredentials *self)
{
  g_return_val_if_fail (TETHER_IS_CREDENTIALS (self), NULL);
  return (const char * const *) self->chain;
}

/**
 * tether_credentials_get_token:
 * @self: a #TetherCredentials
 *
 * Gets the token itself, a JWS in compact serialization.
 *
 * Returns: (transfer none): the compact JWS
 *
 * Since: 0.1
 */
const char *
tether_credentials_get_token (TetherCredentials *self)
{
  g_return_val_if_fail (TETHER_IS_CREDENTIALS (self), NULL);
  return self->token;
}
