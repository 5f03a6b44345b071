/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Impersonation levels and tokens. See tether-impersonation-private.h and
 * docs/security.md, section 3. */

#include <string.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "tether-error.h"
#include "tether-impersonation-private.h"

#define COORD_SIZE 32  /* P-256 */

gboolean
_tether_process_is_privileged (void)
{
  g_autofree char *status = NULL;
  const char *cap;

  if (geteuid () == 0)
    return TRUE;
  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return TRUE;  /* cannot tell: assume the worst */
  cap = strstr (status, "\nCapEff:");
  if (cap == NULL)
    return TRUE;
  cap += strlen ("\nCapEff:");
  return g_ascii_strtoull (cap, NULL, 16) != 0;
}

static char *
host_audience (void)
{
  g_autofree char *id = NULL;

  if (g_file_get_contents ("/etc/machine-id", &id, NULL, NULL))
    {
      g_strstrip (id);
      if (*id != '\0')
        return g_strconcat ("host:", id, NULL);
    }
  return g_strconcat ("host:", g_get_host_name (), NULL);
}

char *
_tether_identity_dup_principal (TetherIdentity *identity)
{
  const char *user, *mech, *sha;

  if (identity == NULL || !tether_identity_is_authenticated (identity))
    return NULL;
  user = tether_identity_get_username (identity);
  mech = tether_identity_get_auth_mechanism (identity);
  if (user != NULL && g_strcmp0 (mech, "ANONYMOUS") != 0)
    return g_strconcat ("user:", user, NULL);
  if (tether_identity_get_transport (identity) == TETHER_TRANSPORT_UNIX &&
      tether_identity_get_uid (identity) >= 0)
    return g_strdup_printf ("uid:%" G_GINT64_FORMAT, tether_identity_get_uid (identity));
  sha = tether_identity_get_certificate_sha256 (identity);
  if (tether_identity_get_transport (identity) == TETHER_TRANSPORT_TLS && sha != NULL)
    return g_strconcat ("x509-sha256:", sha, NULL);
  return NULL;
}

gboolean
_tether_identity_is_local (TetherIdentity *identity)
{
  const char *address;
  g_autofree char *host = NULL;
  g_autoptr(GInetAddress) inet = NULL;
  const char *colon;

  if (tether_identity_get_transport (identity) == TETHER_TRANSPORT_UNIX)
    return TRUE;
  address = tether_identity_get_address (identity);
  if (address == NULL)
    return FALSE;
  if (address[0] == '[')
    {
      const char *end = strchr (address, ']');

      if (end == NULL)
        return FALSE;
      host = g_strndup (address + 1, end - address - 1);
    }
  else
    {
      colon = strrchr (address, ':');
      host = colon != NULL ? g_strndup (address, colon - address) : g_strdup (address);
    }
  inet = g_inet_address_new_from_string (host);
  return inet != NULL && g_inet_address_get_is_loopback (inet);
}

/* ---------------------------------------------------------------------- */
/* Policy                                                                 */

TetherImpPolicy *
_tether_imp_policy_new (gboolean is_server)
{
  TetherImpPolicy *policy = g_new0 (TetherImpPolicy, 1);

  g_atomic_ref_count_init (&policy->ref);
  policy->is_server = is_server;
  policy->level = TETHER_IMPERSONATION_LEVEL_IDENTIFY;
  policy->remote_level = TETHER_IMPERSONATION_LEVEL_IDENTIFY;
  policy->privileged = is_server && _tether_process_is_privileged ();
  policy->trusted = g_ptr_array_new_with_free_func (g_object_unref);
  policy->host_id = host_audience ();
  return policy;
}

TetherImpPolicy *
_tether_imp_policy_ref (TetherImpPolicy *policy)
{
  g_atomic_ref_count_inc (&policy->ref);
  return policy;
}

static void
policy_clear_key (TetherImpPolicy *policy)
{
  g_clear_object (&policy->signing_certificate);
  g_clear_pointer ((gnutls_privkey_t *) &policy->signing_key, gnutls_privkey_deinit);
  g_clear_pointer (&policy->issuer, g_free);
  g_clear_pointer (&policy->alg, g_free);
}

void
_tether_imp_policy_unref (TetherImpPolicy *policy)
{
  if (!g_atomic_ref_count_dec (&policy->ref))
    return;
  policy_clear_key (policy);
  g_ptr_array_unref (policy->trusted);
  g_free (policy->host_id);
  g_free (policy);
}

void
_tether_imp_policy_set_host_id (TetherImpPolicy *policy,
                                const char      *host_id)
{
  g_free (policy->host_id);
  policy->host_id = host_id != NULL ? g_strconcat ("host:", host_id, NULL) : host_audience ();
}

static char *
certificate_principal (GTlsCertificate *certificate)
{
  g_autoptr(GByteArray) der = NULL;
  g_autofree char *sha = NULL;

  g_object_get (certificate, "certificate", &der, NULL);
  if (der == NULL)
    return NULL;
  sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, der->data, der->len);
  return g_strconcat ("x509-sha256:", sha, NULL);
}

/* The JWS algorithm a key is used with; the verifier pins it. */
static const char *
pubkey_alg (gnutls_pubkey_t            pub,
            gnutls_sign_algorithm_t   *sign)
{
  unsigned int bits = 0;
  int pk = gnutls_pubkey_get_pk_algorithm (pub, &bits);

  if (pk == GNUTLS_PK_ECDSA)
    {
      gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;

      if (gnutls_pubkey_export_ecc_raw (pub, &curve, NULL, NULL) == 0 &&
          curve == GNUTLS_ECC_CURVE_SECP256R1)
        {
          *sign = GNUTLS_SIGN_ECDSA_SECP256R1_SHA256;
          return "ES256";
        }
      return NULL;
    }
  if (pk == GNUTLS_PK_EDDSA_ED25519)
    {
      *sign = GNUTLS_SIGN_EDDSA_ED25519;
      return "EdDSA";
    }
  if (pk == GNUTLS_PK_RSA && bits >= 2048)
    {
      *sign = GNUTLS_SIGN_RSA_PSS_SHA256;
      return "PS256";
    }
  return NULL;
}

gboolean
_tether_imp_policy_set_signing_certificate (TetherImpPolicy *policy,
                                            GTlsCertificate *certificate,
                                            GError         **error)
{
  g_autofree char *pem = NULL;
  gnutls_privkey_t key = NULL;
  gnutls_pubkey_t pub = NULL;
  gnutls_datum_t datum;
  gnutls_sign_algorithm_t sign;
  const char *alg;
  int ret;

  policy_clear_key (policy);
  if (certificate == NULL)
    return TRUE;

  g_object_get (certificate, "private-key-pem", &pem, NULL);
  if (pem == NULL)
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                           "The signing certificate has no private key");
      return FALSE;
    }
  datum.data = (unsigned char *) pem;
  datum.size = strlen (pem);
  if ((ret = gnutls_privkey_init (&key)) < 0 ||
      (ret = gnutls_privkey_import_x509_raw (key, &datum, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0 ||
      (ret = gnutls_pubkey_init (&pub)) < 0 ||
      (ret = gnutls_pubkey_import_privkey (pub, key, 0, 0)) < 0)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                   "Cannot load the signing key: %s", gnutls_strerror (ret));
      goto fail;
    }
  alg = pubkey_alg (pub, &sign);
  if (alg == NULL)
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                           "The signing key is neither P-256, Ed25519 nor RSA (2048 bits or more)");
      goto fail;
    }
  gnutls_pubkey_deinit (pub);
  policy->signing_certificate = g_object_ref (certificate);
  policy->signing_key = key;
  policy->issuer = certificate_principal (certificate);
  policy->alg = g_strdup (alg);
  return TRUE;

fail:
  if (pub != NULL)
    gnutls_pubkey_deinit (pub);
  if (key != NULL)
    gnutls_privkey_deinit (key);
  return FALSE;
}

TetherImpersonationLevel
_tether_imp_policy_effective_level (TetherImpPolicy          *policy,
                                    TetherIdentity           *callee_identity,
                                    TetherImpersonationLevel  requested)
{
  TetherImpersonationLevel level = MIN (requested, policy->level);

  if (policy->is_server)
    {
      gboolean local = callee_identity != NULL && _tether_identity_is_local (callee_identity);

      if (!local)
        level = MIN (level, policy->remote_level);
      else if (policy->privileged && !policy->allow_privileged)
        level = MIN (level, TETHER_IMPERSONATION_LEVEL_IDENTIFY);
    }
  return level;
}

/* ---------------------------------------------------------------------- */
/* JWS                                                                    */

static char *
base64url (const guchar *data,
           gsize         len)
{
  char *s = g_base64_encode (data, len);
  char *p;

  for (p = s; *p; p++)
    if (*p == '+')
      *p = '-';
    else if (*p == '/')
      *p = '_';
  p = strchr (s, '=');
  if (p != NULL)
    *p = '\0';
  return s;
}

static void
datum_to_coord (const gnutls_datum_t *d,
                guchar               *out)
{
  const guchar *p = d->data;
  gsize n = d->size;

  while (n > COORD_SIZE && *p == 0)
    p++, n--;
  memset (out, 0, COORD_SIZE);
  if (n <= COORD_SIZE)
    memcpy (out + COORD_SIZE - n, p, n);
}

static char *
jws_sign (TetherImpPolicy *policy,
          GVariant        *claims,
          GError         **error)
{
  gnutls_privkey_t key = policy->signing_key;
  gnutls_pubkey_t pub = NULL;
  gnutls_sign_algorithm_t sign = GNUTLS_SIGN_UNKNOWN;
  g_autofree char *header_json = NULL;
  g_autofree char *claims_json = NULL;
  g_autofree char *h64 = NULL, *c64 = NULL, *s64 = NULL;
  g_autofree char *input = NULL;
  gnutls_datum_t data, sig = { NULL, 0 };
  GVariantBuilder header;
  int ret;

  gnutls_pubkey_init (&pub);
  gnutls_pubkey_import_privkey (pub, key, 0, 0);
  pubkey_alg (pub, &sign);
  gnutls_pubkey_deinit (pub);

  /* Members in sorted order, as the claims are built. */
  g_variant_builder_init (&header, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&header, "{sv}", "alg", g_variant_new_string (policy->alg));
  g_variant_builder_add (&header, "{sv}", "typ", g_variant_new_string ("JWT"));
  header_json = _tether_json_encode_value (g_variant_builder_end (&header));
  claims_json = _tether_json_encode_value (claims);
  h64 = base64url ((const guchar *) header_json, strlen (header_json));
  c64 = base64url ((const guchar *) claims_json, strlen (claims_json));
  input = g_strconcat (h64, ".", c64, NULL);
  data.data = (unsigned char *) input;
  data.size = strlen (input);

  ret = gnutls_privkey_sign_data2 (key, sign, 0, &data, &sig);
  if (ret < 0)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                   "Signing the impersonation token failed: %s", gnutls_strerror (ret));
      return NULL;
    }
  if (sign == GNUTLS_SIGN_ECDSA_SECP256R1_SHA256)
    {
      gnutls_datum_t r, s;
      guchar raw[2 * COORD_SIZE];

      ret = gnutls_decode_rs_value (&sig, &r, &s);
      gnutls_free (sig.data);
      if (ret < 0)
        {
          g_set_error (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                       "Signing the impersonation token failed: %s", gnutls_strerror (ret));
          return NULL;
        }
      datum_to_coord (&r, raw);
      datum_to_coord (&s, raw + COORD_SIZE);
      gnutls_free (r.data);
      gnutls_free (s.data);
      s64 = base64url (raw, sizeof raw);
    }
  else
    {
      s64 = base64url (sig.data, sig.size);
      gnutls_free (sig.data);
    }
  return g_strconcat (input, ".", s64, NULL);
}

static gboolean
jws_verify (const char      *token,
            GTlsCertificate *issuer_cert,
            const char      *header_alg,
            GError         **error)
{
  g_autoptr(GByteArray) der = NULL;
  gnutls_x509_crt_t crt = NULL;
  gnutls_pubkey_t pub = NULL;
  gnutls_sign_algorithm_t sign = GNUTLS_SIGN_UNKNOWN;
  const char *alg = NULL;
  const char *dot;
  g_autofree guchar *raw = NULL;
  gsize raw_len = 0;
  gnutls_datum_t data, sig, cert_datum;
  gnutls_datum_t der_sig = { NULL, 0 };
  gboolean ok = FALSE;
  int ret = 0;

  g_object_get (issuer_cert, "certificate", &der, NULL);
  cert_datum.data = der->data;
  cert_datum.size = der->len;
  if (gnutls_x509_crt_init (&crt) < 0 ||
      gnutls_x509_crt_import (crt, &cert_datum, GNUTLS_X509_FMT_DER) < 0 ||
      gnutls_pubkey_init (&pub) < 0 ||
      gnutls_pubkey_import_x509 (pub, crt, 0) < 0 ||
      (alg = pubkey_alg (pub, &sign)) == NULL)
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                           "The issuer's certificate holds no usable key");
      goto out;
    }
  /* The algorithm is the issuer key's, whatever the header says. */
  if (g_strcmp0 (header_alg, alg) != 0)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                   "The impersonation token's algorithm (%s) is not its issuer key's (%s)",
                   header_alg ? header_alg : "none", alg);
      goto out;
    }
  dot = strrchr (token, '.');
  data.data = (unsigned char *) token;
  data.size = dot - token;
  {
    GString *s = g_string_new (dot + 1);

    g_strdelimit (s->str, "-", '+');
    g_strdelimit (s->str, "_", '/');
    while (s->len % 4 != 0)
      g_string_append_c (s, '=');
    raw = g_base64_decode (s->str, &raw_len);
    g_string_free (s, TRUE);
  }
  if (sign == GNUTLS_SIGN_ECDSA_SECP256R1_SHA256)
    {
      gnutls_datum_t r, s_;

      if (raw_len != 2 * COORD_SIZE)
        {
          g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                               "The impersonation token's signature is invalid");
          goto out;
        }
      r.data = raw;
      r.size = COORD_SIZE;
      s_.data = raw + COORD_SIZE;
      s_.size = COORD_SIZE;
      if (gnutls_encode_rs_value (&der_sig, &r, &s_) < 0)
        goto bad_sig;
      sig = der_sig;
    }
  else
    {
      sig.data = raw;
      sig.size = raw_len;
    }
  ret = gnutls_pubkey_verify_data2 (pub, sign, 0, &data, &sig);
  if (ret < 0)
    goto bad_sig;
  ok = TRUE;
  goto out;

bad_sig:
  g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                       "The impersonation token's signature does not verify");
out:
  gnutls_free (der_sig.data);
  if (pub != NULL)
    gnutls_pubkey_deinit (pub);
  if (crt != NULL)
    gnutls_x509_crt_deinit (crt);
  return ok;
}

gboolean
_tether_imp_decorate (TetherImpPolicy          *policy,
                      TetherMeta               *meta,
                      TetherIdentity           *callee_identity,
                      TetherImpersonationLevel  level,
                      TetherCredentials        *act_as,
                      const char               *method,
                      gint64                    timeout_ms,
                      GError                  **error)
{
  g_autofree char *holder = NULL;
  guchar nonce[16];
  g_autofree char *jti = NULL;
  gint64 now = g_get_real_time ();
  g_autoptr(GPtrArray) chain = g_ptr_array_new ();
  const char *subject;
  GVariantBuilder claims;
  g_autoptr(GVariant) sunk = NULL;

  meta->imp = level;
  g_clear_pointer (&meta->act_as, g_free);
  if (act_as != NULL)
    meta->act_as = g_strdup (tether_credentials_get_token (act_as));
  if (level < TETHER_IMPERSONATION_LEVEL_IMPERSONATE)
    return TRUE;

  if (policy->signing_key == NULL)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                   "Granting %s needs a signing key, and there is no signing key "
                   "(set the signing-certificate property)", _tether_imp_level_to_string (level));
      return FALSE;
    }
  holder = _tether_identity_dup_principal (callee_identity);
  if (holder == NULL)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                   "Granting %s needs an authenticated callee to name as the token's holder",
                   _tether_imp_level_to_string (level));
      return FALSE;
    }
  gnutls_rnd (GNUTLS_RND_NONCE, nonce, sizeof nonce);
  jti = base64url (nonce, sizeof nonce);

  if (act_as != NULL && tether_credentials_get_level (act_as) == TETHER_IMPERSONATION_LEVEL_DELEGATE &&
      level == TETHER_IMPERSONATION_LEVEL_DELEGATE)
    {
      /* Passing delegated authority on: same subject, one more hop. */
      const char * const *hops = tether_credentials_get_chain (act_as);

      for (guint i = 0; hops[i] != NULL; i++)
        g_ptr_array_add (chain, (gpointer) hops[i]);
      subject = tether_credentials_get_subject (act_as);
    }
  else
    {
      g_ptr_array_add (chain, policy->issuer);
      subject = policy->issuer;
    }

  /* The claims in sorted order: the token's text is the same whoever
   * writes it. */
  g_variant_builder_init (&claims, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&claims, "{sv}", "aud",
                         g_variant_new_string (level == TETHER_IMPERSONATION_LEVEL_IMPERSONATE
                                                 ? policy->host_id : "*"));
  g_variant_builder_add (&claims, "{sv}", "chain",
                         g_variant_new_strv ((const char * const *) chain->pdata, chain->len));
  /* Rounded down: never later than the call's deadline. */
  g_variant_builder_add (&claims, "{sv}", "exp",
                         g_variant_new_int64 ((now + timeout_ms * 1000) / G_USEC_PER_SEC));
  g_variant_builder_add (&claims, "{sv}", "holder", g_variant_new_string (holder));
  g_variant_builder_add (&claims, "{sv}", "iss", g_variant_new_string (policy->issuer));
  g_variant_builder_add (&claims, "{sv}", "jti", g_variant_new_string (jti));
  g_variant_builder_add (&claims, "{sv}", "lvl",
                         g_variant_new_string (_tether_imp_level_to_string (level)));
  g_variant_builder_add (&claims, "{sv}", "mth", g_variant_new_string (method));
  g_variant_builder_add (&claims, "{sv}", "nbf", g_variant_new_int64 (now / G_USEC_PER_SEC));
  g_variant_builder_add (&claims, "{sv}", "sub", g_variant_new_string (subject));
  sunk = g_variant_ref_sink (g_variant_builder_end (&claims));

  g_clear_pointer (&meta->token, g_free);
  meta->token = jws_sign (policy, sunk, error);
  return meta->token != NULL;
}

TetherCredentials *
_tether_imp_verify (TetherImpPolicy  *policy,
                    const char       *token,
                    TetherIdentity   *presenter,
                    GError          **error)
{
  g_autoptr(TetherCredentials) creds = NULL;
  GTlsCertificate *issuer_cert = NULL;
  g_autoptr(GVariant) header = NULL;
  g_autoptr(GVariant) claims = NULL;
  g_autofree char *presenter_principal = NULL;
  const char *iss;
  const char *alg = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gint64 nbf;
  gboolean ok = FALSE;

  creds = _tether_credentials_new_from_token (token, error);
  if (creds == NULL)
    return NULL;
  if (!_tether_jws_split (token, &header, &claims, error))
    return NULL;

  iss = tether_credentials_get_issuer (creds);
  for (guint i = 0; i < policy->trusted->len; i++)
    {
      g_autofree char *p = certificate_principal (g_ptr_array_index (policy->trusted, i));

      if (g_strcmp0 (p, iss) == 0)
        issuer_cert = g_ptr_array_index (policy->trusted, i);
    }
  if (issuer_cert == NULL)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                   "The impersonation token's issuer (%s) is not trusted here", iss);
      goto out;
    }
  g_variant_lookup (header, "alg", "&s", &alg);
  if (!jws_verify (token, issuer_cert, alg, error))
    goto out;

  presenter_principal = _tether_identity_dup_principal (presenter);
  if (g_strcmp0 (presenter_principal, tether_credentials_get_holder (creds)) != 0)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                   "The impersonation token was issued to %s, not to the peer presenting it (%s)",
                   tether_credentials_get_holder (creds),
                   presenter_principal ? presenter_principal : "unauthenticated");
      goto out;
    }
  if (tether_credentials_get_level (creds) == TETHER_IMPERSONATION_LEVEL_IMPERSONATE)
    {
      if (g_strcmp0 (tether_credentials_get_audience (creds), policy->host_id) != 0)
        {
          g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                               "The impersonation token is for another host (level impersonate "
                               "is honoured on its issuer's host only)");
          goto out;
        }
      if (!_tether_identity_is_local (presenter))
        {
          g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                               "Level impersonate is honoured only over a local connection");
          goto out;
        }
    }
  if (now >= tether_credentials_get_expiry (creds))
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                           "The impersonation token has expired");
      goto out;
    }
  if (g_variant_lookup (claims, "nbf", "x", &nbf) && now + 60 < nbf)
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED,
                           "The impersonation token is not valid yet");
      goto out;
    }
  ok = TRUE;

out:
  return ok ? g_steal_pointer (&creds) : NULL;
}
