/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* SASL sessions end to end in-process (the wire comes in test-rpc):
 * SCRAM-SHA-256-PLUS with matching and mismatching channel bindings, wrong
 * passwords and unknown users failing alike, no downgrade over TLS, and the
 * client's minimum iteration count. */

#include <string.h>

#include "tether-test-common.h"
#include "tether-auth-private.h"

static char *alice_secrets;

static const char *
lookup (const char *username,
        gpointer    user_data)
{
  return strcmp (username, "alice") == 0 ? alice_secrets : NULL;
}

/* Runs a whole exchange; returns the final status and the server's error. */
static TetherAuthStatus
exchange (const char  *mechanism,
          const char  *username,
          const char  *password,
          GBytes      *server_cb,
          GBytes      *client_cb,
          char       **authenticated,
          GError     **server_error,
          GError     **client_error)
{
  g_autoptr(TetherAuthSession) server = NULL;
  g_autoptr(TetherAuthSession) client = NULL;
  g_autofree char *to_server = NULL;
  TetherAuthStatus cs, ss = TETHER_AUTH_CONTINUE;

  client = _tether_auth_client_new (mechanism, username, password, client_cb, client_error);
  if (client == NULL)
    return TETHER_AUTH_FAILED;
  server = _tether_auth_server_new (mechanism, server_cb, lookup, NULL, "fake-key", server_error);
  if (server == NULL)
    return TETHER_AUTH_FAILED;

  cs = _tether_auth_step (client, "", &to_server, client_error);
  for (guint round = 0; round < 5; round++)
    {
      g_autofree char *to_client = NULL;
      g_autofree char *next = NULL;

      g_assert_cmpint (cs, !=, TETHER_AUTH_FAILED);
      ss = _tether_auth_step (server, to_server, &to_client, server_error);
      if (ss == TETHER_AUTH_FAILED)
        return ss;
      cs = _tether_auth_step (client, to_client, &next, client_error);
      if (cs == TETHER_AUTH_FAILED)
        return cs;
      if (ss == TETHER_AUTH_OK)
        {
          /* Mutual: the client checked the server's proof too. */
          g_assert_cmpint (cs, ==, TETHER_AUTH_OK);
          *authenticated = g_strdup (_tether_auth_get_username (server));
          return ss;
        }
      g_free (to_server);
      to_server = g_steal_pointer (&next);
    }
  g_assert_not_reached ();
}

static void
test_scram_plus (void)
{
  g_autoptr(GBytes) cb = g_bytes_new_static ("0123456789abcdef0123456789abcdef", 32);
  g_autoptr(GBytes) other = g_bytes_new_static ("ffffffffffffffffffffffffffffffff", 32);
  g_autoptr(GError) serr = NULL;
  g_autoptr(GError) cerr = NULL;
  g_autofree char *who = NULL;

  g_assert_cmpint (exchange ("SCRAM-SHA-256-PLUS", "alice", "s3cret", cb, cb, &who, &serr, &cerr),
                   ==, TETHER_AUTH_OK);
  g_assert_no_error (serr);
  g_assert_no_error (cerr);
  g_assert_cmpstr (who, ==, "alice");

  /* A man in the middle: two TLS channels, two bindings. The server names
   * the failure. */
  g_assert_cmpint (exchange ("SCRAM-SHA-256-PLUS", "alice", "s3cret", cb, other, &who, &serr, &cerr),
                   ==, TETHER_AUTH_FAILED);
  g_assert_error (serr, TETHER_ERROR, TETHER_ERROR_CHANNEL_BINDING_FAILED);
  g_clear_error (&serr);

  /* Without TLS there is nothing to bind to. */
  g_assert_cmpint (exchange ("SCRAM-SHA-256-PLUS", "alice", "s3cret", NULL, NULL, &who, &serr, &cerr),
                   ==, TETHER_AUTH_FAILED);
  g_assert_error (cerr, TETHER_ERROR, TETHER_ERROR_CHANNEL_BINDING_FAILED);
  g_clear_error (&cerr);

  /* Over TLS the unbound mechanism is refused: no downgrade. */
  g_assert_cmpint (exchange ("SCRAM-SHA-256", "alice", "s3cret", cb, cb, &who, &serr, &cerr),
                   ==, TETHER_AUTH_FAILED);
  g_assert_error (cerr, TETHER_ERROR, TETHER_ERROR_CHANNEL_BINDING_FAILED);
}

static void
test_wrong_password_and_unknown_user (void)
{
  g_autoptr(GBytes) cb = g_bytes_new_static ("0123456789abcdef0123456789abcdef", 32);
  g_autoptr(GError) wrong = NULL;
  g_autoptr(GError) unknown = NULL;
  g_autoptr(GError) cerr = NULL;
  g_autofree char *who = NULL;

  g_assert_cmpint (exchange ("SCRAM-SHA-256-PLUS", "alice", "guess", cb, cb, &who, &wrong, &cerr),
                   ==, TETHER_AUTH_FAILED);
  g_assert_cmpint (exchange ("SCRAM-SHA-256-PLUS", "mallory", "guess", cb, cb, &who, &unknown, &cerr),
                   ==, TETHER_AUTH_FAILED);
  /* Indistinguishable: same domain, code and text. */
  g_assert_error (wrong, TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED);
  g_assert_error (unknown, TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED);
  g_assert_cmpstr (wrong->message, ==, unknown->message);
  g_assert_null (who);
}

static void
test_plain_scram (void)
{
  g_autoptr(GError) serr = NULL;
  g_autoptr(GError) cerr = NULL;
  g_autofree char *who = NULL;

  g_assert_cmpint (exchange ("SCRAM-SHA-256", "alice", "s3cret", NULL, NULL, &who, &serr, &cerr),
                   ==, TETHER_AUTH_OK);
  g_assert_cmpstr (who, ==, "alice");
}

static void
test_secrets_format (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *secrets = _tether_scram_secrets_from_password ("pw", 4096, &error);
  g_auto(GStrv) parts = NULL;

  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (secrets, "SCRAM-SHA-256$4096:"));
  parts = g_strsplit (secrets, "$", -1);
  g_assert_cmpuint (g_strv_length (parts), ==, 3);
  /* Base64 keys of 32 bytes: 44 characters (not hex, whatever gsasl.h says). */
  g_assert_cmpuint (strlen (strchr (parts[2], ':') + 1), ==, 44);
  g_assert_null (_tether_scram_secrets_from_password ("pw", 10, &error));
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_FAILED);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  alice_secrets = _tether_scram_secrets_from_password ("s3cret", TETHER_SCRAM_MIN_ITERATIONS, &error);
  g_assert_no_error (error);

  g_test_add_func ("/tether/auth/scram-plus", test_scram_plus);
  g_test_add_func ("/tether/auth/wrong-password-like-unknown-user", test_wrong_password_and_unknown_user);
  g_test_add_func ("/tether/auth/plain-scram-without-tls", test_plain_scram);
  g_test_add_func ("/tether/auth/secrets-format", test_secrets_format);

  ret = g_test_run ();
  g_free (alice_secrets);
  return ret;
}
