/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>

#include "tether-test-common.h"

typedef struct
{
  const char *what;
  const char *file;
  int         line;
} GiveUp;

static gboolean
give_up_cb (gpointer user_data)
{
  GiveUp *give_up = user_data;

  g_error ("%s:%d: gave up waiting for %s", give_up->file, give_up->line, give_up->what);
  return G_SOURCE_REMOVE;
}

GSource *
tether_test_give_up_source_new (const char *what,
                                const char *file,
                                int         line)
{
  GSource *source = g_timeout_source_new_seconds (30);
  GiveUp *give_up = g_new0 (GiveUp, 1);

  give_up->what = what;
  give_up->file = file;
  give_up->line = line;
  g_source_set_callback (source, give_up_cb, give_up, g_free);
  g_source_set_static_name (source, "[test] give up");
  g_source_attach (source, g_main_context_get_thread_default ());
  return source;
}

static gboolean
set_flag_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

void
tether_test_spin_ms (guint ms)
{
  gboolean done = FALSE;
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, set_flag_cb, &done, NULL);
  g_source_attach (source, g_main_context_get_thread_default ());
  TETHER_TEST_WAIT_UNTIL (done);
  g_source_unref (source);
}

#define CHECK(expr) G_STMT_START { int _r = (expr); if (_r < 0) g_error ("%s: %s", #expr, gnutls_strerror (_r)); } G_STMT_END

static void
write_datum (const char     *dir,
             const char     *name,
             gnutls_datum_t *datum)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  if (!g_file_set_contents (path, (const char *) datum->data, datum->size, &error))
    g_error ("%s", error->message);
  gnutls_free (datum->data);
}

static gnutls_x509_privkey_t
new_key_ed25519 (gboolean ed25519)
{
  gnutls_x509_privkey_t key;

  CHECK (gnutls_x509_privkey_init (&key));
  if (ed25519)
    CHECK (gnutls_x509_privkey_generate (key, GNUTLS_PK_EDDSA_ED25519,
                                         GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_ED25519), 0));
  else
    CHECK (gnutls_x509_privkey_generate (key, GNUTLS_PK_ECDSA,
                                         GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0));
  return key;
}

static gnutls_x509_privkey_t
new_key (void)
{
  return new_key_ed25519 (FALSE);
}

static gnutls_x509_crt_t
new_cert (gnutls_x509_privkey_t  key,
          const char            *dn,
          guint                  serial,
          gboolean               is_ca)
{
  gnutls_x509_crt_t crt;
  const char *err = NULL;
  guint8 serial_bytes[4] = { serial >> 24, serial >> 16, serial >> 8, serial };
  time_t now = time (NULL);

  CHECK (gnutls_x509_crt_init (&crt));
  CHECK (gnutls_x509_crt_set_version (crt, 3));
  CHECK (gnutls_x509_crt_set_serial (crt, serial_bytes, sizeof serial_bytes));
  CHECK (gnutls_x509_crt_set_activation_time (crt, now - 3600));
  CHECK (gnutls_x509_crt_set_expiration_time (crt, now + 7 * 86400));
  CHECK (gnutls_x509_crt_set_dn (crt, dn, &err));
  CHECK (gnutls_x509_crt_set_key (crt, key));
  CHECK (gnutls_x509_crt_set_basic_constraints (crt, is_ca, -1));
  CHECK (gnutls_x509_crt_set_key_usage (crt, is_ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
                                                   : GNUTLS_KEY_DIGITAL_SIGNATURE));
  return crt;
}

static void
make_ca (const char             *dir,
         const char             *name,
         const char             *cn,
         gnutls_x509_crt_t      *crt_out,
         gnutls_x509_privkey_t  *key_out)
{
  gnutls_datum_t out;
  g_autofree char *dn = g_strdup_printf ("CN=%s", cn);
  gnutls_x509_privkey_t key = new_key ();
  gnutls_x509_crt_t crt = new_cert (key, dn, g_random_int () >> 1, TRUE);

  CHECK (gnutls_x509_crt_sign2 (crt, crt, key, GNUTLS_DIG_SHA256, 0));
  CHECK (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &out));
  write_datum (dir, name, &out);
  *crt_out = crt;
  *key_out = key;
}

static void
make_leaf_full (const char            *dir,
                const char            *prefix,
                const char            *cn,
                gboolean               server,
                gboolean               ed25519,
                gnutls_x509_crt_t      ca,
                gnutls_x509_privkey_t  ca_key)
{
  gnutls_datum_t out;
  g_autofree char *dn = g_strdup_printf ("CN=%s", cn);
  g_autofree char *cert_name = g_strconcat (prefix, ".pem", NULL);
  g_autofree char *key_name = g_strconcat (prefix, "-key.pem", NULL);
  gnutls_x509_privkey_t key = new_key_ed25519 (ed25519);
  gnutls_x509_crt_t crt = new_cert (key, dn, g_random_int () >> 1, FALSE);

  if (server)
    {
      const guint8 loopback[4] = { 127, 0, 0, 1 };

      CHECK (gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_SERVER, 0));
      CHECK (gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME, "localhost",
                                                   strlen ("localhost"), GNUTLS_FSAN_APPEND));
      CHECK (gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_IPADDRESS, loopback,
                                                   sizeof loopback, GNUTLS_FSAN_APPEND));
    }
  else
    CHECK (gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_CLIENT, 0));

  CHECK (gnutls_x509_crt_sign2 (crt, ca, ca_key, GNUTLS_DIG_SHA256, 0));
  CHECK (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &out));
  write_datum (dir, cert_name, &out);
  CHECK (gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &out));
  write_datum (dir, key_name, &out);
  gnutls_x509_crt_deinit (crt);
  gnutls_x509_privkey_deinit (key);
}

static void
make_leaf (const char            *dir,
           const char            *prefix,
           const char            *cn,
           gboolean               server,
           gnutls_x509_crt_t      ca,
           gnutls_x509_privkey_t  ca_key)
{
  make_leaf_full (dir, prefix, cn, server, FALSE, ca, ca_key);
}

void
tether_test_make_certificates (const char *dir)
{
  gnutls_x509_crt_t ca, other;
  gnutls_x509_privkey_t ca_key, other_key;

  make_ca (dir, "ca.pem", "Tether Test CA", &ca, &ca_key);
  make_leaf (dir, "server", "localhost", TRUE, ca, ca_key);
  make_leaf (dir, "client", "Tether Test Client", FALSE, ca, ca_key);
  /* A second server certificate from the same CA: what a TLS-terminating
   * man in the middle the client trusts would present. */
  make_leaf (dir, "relay", "localhost", TRUE, ca, ca_key);
  /* Impersonation-token signing certificates (ECDSA P-256). */
  make_leaf (dir, "signer", "Tether Test Signer", FALSE, ca, ca_key);
  make_leaf (dir, "signer2", "Tether Test Signer 2", FALSE, ca, ca_key);
  /* An Ed25519 one (tokens signed with EdDSA). */
  make_leaf_full (dir, "signer-ed25519", "Tether Test Ed25519 Signer", FALSE, TRUE, ca, ca_key);
  make_ca (dir, "other-ca.pem", "Unrelated CA", &other, &other_key);
  make_leaf (dir, "other-server", "localhost", TRUE, other, other_key);

  gnutls_x509_crt_deinit (ca);
  gnutls_x509_privkey_deinit (ca_key);
  gnutls_x509_crt_deinit (other);
  gnutls_x509_privkey_deinit (other_key);
}

GTlsCertificate *
tether_test_load_certificate (const char *dir,
                              const char *name)
{
  g_autofree char *cert = g_strdup_printf ("%s/%s.pem", dir, name);
  g_autofree char *key = g_strdup_printf ("%s/%s-key.pem", dir, name);
  g_autoptr(GError) error = NULL;
  GTlsCertificate *certificate = g_tls_certificate_new_from_files (cert, key, &error);

  g_assert_no_error (error);
  return certificate;
}

GTlsDatabase *
tether_test_load_ca (const char *dir,
                     const char *file)
{
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_autoptr(GError) error = NULL;
  GTlsDatabase *database = g_tls_file_database_new (path, &error);

  g_assert_no_error (error);
  return database;
}

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  GError **error = user_data;

  /* Success is a placeholder error, so that waiting has one condition. */
  if (!tether_client_connect_finish (TETHER_CLIENT (source), result, error))
    g_assert_nonnull (*error);
  else
    *error = g_error_new_literal (G_IO_ERROR, 0, "ok");
}

GError *
tether_test_client_connect (TetherClient *client)
{
  GError *error = NULL;

  tether_client_connect_async (client, NULL, connect_cb, &error);
  TETHER_TEST_WAIT_UNTIL (error != NULL);
  if (error->domain == G_IO_ERROR && error->code == 0)
    g_clear_error (&error);
  return error;
}

void
tether_test_die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

void
tether_test_echo (TetherInvocation *invocation,
                  gpointer          user_data)
{
  tether_invocation_return_value (invocation, tether_invocation_get_parameters (invocation));
}

void
tether_test_subtract (TetherInvocation *invocation,
                      gpointer          user_data)
{
  gint64 a, b;

  g_variant_get (tether_invocation_get_parameters (invocation), "(xx)", &a, &b);
  tether_invocation_return_value (invocation, g_variant_new_int64 (a - b));
}
