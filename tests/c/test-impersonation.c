/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Impersonation levels (issue #5): what a callee gets of its caller.
 *
 * CI and dev machines run as root, so both sides are covered on purpose:
 * the privileged service (A) runs in this process as root; the peer that
 * replays someone else's token runs in a child that drops to uid 65534.
 * "Remote" for IMPERSONATE tokens: ws://127.0.0.1 counts as loopback, so
 * the remote case gives the verifying server another host id (a private,
 * test-only setter) — exactly what a service on another machine sees.
 *
 * Also covered: an unprivileged server (this binary's --serve mode in a
 * child at uid 65534) is not clamped, unlike root A with the same
 * settings; per-call levels on callbacks (tether_peer_call_full_async,
 * tether_invocation_call_peer_full_async) only lower the server's level;
 * EdDSA tokens from an Ed25519 issuer verify, and a token whose header
 * names another algorithm than its issuer key's is refused (-32006);
 * DELEGATE over wss:// with client certificates (the holder is
 * x509-sha256:<client certificate>), passed on one more hop with the
 * whole chain. */

#include <string.h>
#include <unistd.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

#include "tether-test-common.h"
#include "tether-impersonation-private.h"
#include "tether-json-private.h"
#include "tether-server-private.h"

#define NOBODY 65534

typedef struct
{
  char              *dir;
  GTlsCertificate   *signer;
  GTlsCertificate   *signer2;
  TetherServer      *a;        /* the privileged service */
  TetherServer      *b;        /* a second local service, trusts A */
  char              *a_uri;
  char              *b_uri;
  int                cb_timeout;
  gboolean           cb_full;     /* "callme" uses call_peer_full_async */
  TetherImpersonationLevel cb_level;
  /* What the handlers saw. */
  TetherImpersonationLevel seen_level;
  gboolean           seen_peer;
  gboolean           seen_authenticated;
  gint64             seen_uid;
  TetherCredentials *creds;       /* from the callback */
  GError            *imp_error;
  TetherCredentials *acting_as;   /* what B's handler saw */
  TetherCredentials *onward;      /* what C's handler got to pass on */
} Fixture;

static GTlsCertificate *
load (Fixture *f, const char *name)
{
  g_autofree char *cert = g_strdup_printf ("%s/%s.pem", f->dir, name);
  g_autofree char *key = g_strdup_printf ("%s/%s-key.pem", f->dir, name);
  g_autoptr(GError) error = NULL;
  GTlsCertificate *c = g_tls_certificate_new_from_files (cert, key, &error);

  g_assert_no_error (error);
  return c;
}

static void
srv_whoami (TetherInvocation *inv, gpointer user_data)
{
  Fixture *f = user_data;
  TetherIdentity *id = tether_invocation_get_identity (inv);

  f->seen_level = tether_invocation_get_impersonation_level (inv);
  f->seen_peer = tether_invocation_get_peer (inv) != NULL;
  f->seen_authenticated = tether_identity_is_authenticated (id);
  f->seen_uid = tether_identity_get_uid (id);
  tether_invocation_return_value (inv, NULL);
}

static void
callme_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  TetherInvocation *inv = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = tether_invocation_call_peer_finish (inv, res, &error);

  if (error != NULL)
    tether_invocation_return_gerror (inv, error);
  else
    tether_invocation_return_value (inv, NULL);
  g_object_unref (inv);
}

static void
callme_full_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  TetherInvocation *inv = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = tether_invocation_call_peer_full_finish (inv, res, &error);

  if (error != NULL)
    tether_invocation_return_gerror (inv, error);
  else
    tether_invocation_return_value (inv, NULL);
  g_object_unref (inv);
}

static void
srv_callme (TetherInvocation *inv, gpointer user_data)
{
  Fixture *f = user_data;

  if (f->cb_full)
    tether_invocation_call_peer_full_async (inv, "cb", NULL, f->cb_level, NULL, f->cb_timeout,
                                            NULL, callme_full_done, g_object_ref (inv));
  else
    tether_invocation_call_peer_async (inv, "cb", NULL, f->cb_timeout, NULL, callme_done,
                                       g_object_ref (inv));
}

static void
srv_act (TetherInvocation *inv, gpointer user_data)
{
  Fixture *f = user_data;

  g_set_object (&f->acting_as, tether_invocation_get_acting_as (inv));
  tether_invocation_return_value (inv, NULL);
}

static void
cli_cb (TetherInvocation *inv, gpointer user_data)
{
  Fixture *f = user_data;

  f->seen_level = tether_invocation_get_impersonation_level (inv);
  f->seen_uid = tether_identity_get_uid (tether_invocation_get_identity (inv));
  g_clear_object (&f->creds);
  g_clear_error (&f->imp_error);
  f->creds = tether_invocation_impersonate (inv, &f->imp_error);
  tether_invocation_return_value (inv, NULL);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *a_path = NULL, *b_path = NULL;

  f->dir = g_dir_make_tmp ("tether-imp-XXXXXX", &error);
  g_assert_no_error (error);
  g_chmod (f->dir, 0755);  /* the uid-65534 child connects to B */
  tether_test_make_certificates (f->dir);
  f->signer = load (f, "signer");
  f->signer2 = load (f, "signer2");
  f->cb_timeout = -1;

  f->a = tether_server_new ();
  a_path = g_build_filename (f->dir, "a.sock", NULL);
  f->a_uri = g_strconcat ("unix:", a_path, NULL);
  g_assert_true (tether_server_listen (f->a, f->a_uri, &error));
  g_assert_no_error (error);
  tether_server_add_method (f->a, "whoami", TETHER_ACCESS_AUTHENTICATED, srv_whoami, f, NULL);
  tether_server_add_method (f->a, "callme", TETHER_ACCESS_AUTHENTICATED, srv_callme, f, NULL);
  tether_server_set_signing_certificate (f->a, f->signer);
  tether_server_set_callback_impersonation_level (f->a, TETHER_IMPERSONATION_LEVEL_IMPERSONATE);

  f->b = tether_server_new ();
  b_path = g_build_filename (f->dir, "b.sock", NULL);
  f->b_uri = g_strconcat ("unix:", b_path, NULL);
  g_assert_true (tether_server_listen (f->b, f->b_uri, &error));
  g_assert_no_error (error);
  g_chmod (b_path, 0777);
  tether_server_add_method (f->b, "act", TETHER_ACCESS_ANY, srv_act, f, NULL);
  tether_server_add_trusted_issuer (f->b, f->signer);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  tether_server_close (f->a);
  tether_server_close (f->b);
  g_assert_finalize_object (f->a);
  g_assert_finalize_object (f->b);
  g_clear_object (&f->signer);
  g_clear_object (&f->signer2);
  g_clear_object (&f->creds);
  g_clear_object (&f->acting_as);
  g_clear_object (&f->onward);
  g_clear_error (&f->imp_error);
  g_free (f->a_uri);
  g_free (f->b_uri);
  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->dir);
    g_assert_cmpint (system (cmd), ==, 0);
  }
  g_free (f->dir);
}

typedef struct { gboolean done; GVariant *value; GError *error; } Result;

static void
call_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Result *r = user_data;

  if (TETHER_IS_CLIENT (source))
    r->value = tether_client_call_full_finish (TETHER_CLIENT (source), res, &r->error);
  else if (TETHER_IS_PEER (source))
    r->value = tether_peer_call_full_finish (TETHER_PEER (source), res, &r->error);
  r->done = TRUE;
}

static GError *
call (TetherClient *client, const char *method, TetherImpersonationLevel level,
      TetherCredentials *act_as)
{
  Result r = { 0 };

  tether_client_call_full_async (client, method, NULL, level, act_as, -1, NULL, call_done, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_clear_pointer (&r.value, g_variant_unref);
  return r.error;
}

static void
connect_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Result *r = user_data;

  tether_client_connect_finish (TETHER_CLIENT (source), res, &r->error);
  r->done = TRUE;
}

static TetherClient *
connect_client (Fixture *f, const char *uri)
{
  TetherClient *client = tether_client_new (uri);
  Result r = { 0 };

  tether_client_add_method (client, "cb", cli_cb, f, NULL);
  tether_client_connect_async (client, NULL, connect_done, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);
  return client;
}

static void
close_client (TetherClient *client)
{
  tether_client_close (client);
  g_assert_finalize_object (client);
}

/* ANONYMOUS hides the caller even though the transport proved it. */
static void
test_anonymous (Fixture *f, gconstpointer data)
{
  TetherClient *c = connect_client (f, f->a_uri);
  GError *error;

  g_assert_cmpint (tether_client_get_impersonation_level (c), ==, TETHER_IMPERSONATION_LEVEL_IDENTIFY);
  error = call (c, "whoami", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_IDENTIFY);
  g_assert_true (f->seen_peer);
  g_assert_true (f->seen_authenticated);
  g_assert_cmpint (f->seen_uid, ==, geteuid ());

  /* "whoami" needs an authenticated caller: the server's own check still
   * uses the transport identity; the handler sees nobody. */
  error = call (c, "whoami", TETHER_IMPERSONATION_LEVEL_ANONYMOUS, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  g_assert_false (f->seen_peer);
  g_assert_false (f->seen_authenticated);
  g_assert_cmpint (f->seen_uid, ==, -1);

  /* The property caps; a call cannot raise it. */
  tether_client_set_impersonation_level (c, TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  error = call (c, "whoami", TETHER_IMPERSONATION_LEVEL_DELEGATE, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  close_client (c);
}

/* Asking for IMPERSONATE without a key fails; it is never downgraded. */
static void
test_no_signing_key (Fixture *f, gconstpointer data)
{
  TetherClient *c = connect_client (f, f->a_uri);
  g_autoptr(GError) error = NULL;

  tether_client_set_impersonation_level (c, TETHER_IMPERSONATION_LEVEL_IMPERSONATE);
  error = call (c, "whoami", TETHER_IMPERSONATION_LEVEL_IMPERSONATE, NULL);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED);
  g_assert_nonnull (strstr (error->message, "no signing key"));
  g_clear_error (&error);

  /* With a key the server gets the level (and a token). */
  tether_client_set_signing_certificate (c, f->signer2);
  error = call (c, "whoami", TETHER_IMPERSONATION_LEVEL_IMPERSONATE, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_IMPERSONATE);
  close_client (c);
}

/* A DELEGATE token for @holder signed with @signer. */
static TetherCredentials *
make_token (GTlsCertificate *signer, TetherIdentity *holder)
{
  TetherImpPolicy *policy = _tether_imp_policy_new (FALSE);
  g_autoptr(GError) error = NULL;
  TetherMessage request = TETHER_MESSAGE_INIT;
  g_autoptr(GString) text = g_string_new (NULL);
  json_t *message, *meta;
  TetherCredentials *creds;

  g_assert_true (_tether_imp_policy_set_signing_certificate (policy, signer, &error));
  request.kind = TETHER_MESSAGE_REQUEST;
  request.id.kind = TETHER_ID_INT;
  request.id.num = 1;
  request.method = g_strdup ("act");
  request.has_meta = TRUE;
  request.meta.timeout_ms = 10000;
  g_assert_true (_tether_imp_decorate (policy, &request.meta, holder,
                                       TETHER_IMPERSONATION_LEVEL_DELEGATE, NULL, "act", 10000,
                                       &error));
  g_assert_no_error (error);
  /* The request as it travels carries the level and the token. */
  _tether_json_encode (text, &request);
  _tether_message_clear (&request);
  message = _tether_json_parse (text->str, text->len, 0, &error);
  g_assert_no_error (error);
  meta = json_object_get (message, "tether");
  g_assert_cmpstr (json_string_value (json_object_get (meta, "imp")), ==, "delegate");
  creds = _tether_credentials_new_from_token (json_string_value (json_object_get (meta, "token")),
                                              &error);
  g_assert_no_error (error);
  json_decref (message);
  _tether_imp_policy_unref (policy);
  return creds;
}

/* A token of the client's own making, claiming to be A: refused by B. */
static TetherCredentials *
forge (Fixture *f, TetherIdentity *holder)
{
  return make_token (f->signer2, holder);
}

/* The seed's escalation, with the defaults: a privileged service calls a
 * local client back; the client learns who called, gets no token, and
 * cannot act as the service towards another local service. */
static void
test_privileged_clamp (Fixture *f, gconstpointer data)
{
  TetherClient *c, *cb;
  g_autoptr(GError) error = NULL;
  g_autoptr(TetherCredentials) forged = NULL;
  g_autoptr(GPtrArray) peers = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("the privileged side needs root");
      return;
    }
  g_assert_true (tether_server_is_privileged (f->a));
  c = connect_client (f, f->a_uri);
  peers = tether_server_get_peers (f->a);
  g_assert_cmpuint (peers->len, ==, 1);
  /* Asked for IMPERSONATE, clamped for a privileged server. */
  g_assert_cmpint (tether_peer_get_callback_impersonation_level (g_ptr_array_index (peers, 0)),
                   ==, TETHER_IMPERSONATION_LEVEL_IDENTIFY);

  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_IDENTIFY);
  g_assert_cmpint (f->seen_uid, ==, 0);
  g_assert_null (f->creds);
  g_assert_error (f->imp_error, TETHER_ERROR, TETHER_ERROR_IMPERSONATION_DENIED);

  /* Its attempt to act as A towards B anyway (a token it signed): refused. */
  cb = connect_client (f, f->b_uri);
  forged = forge (f, tether_client_get_server_identity (c));
  error = call (cb, "act", TETHER_IMPERSONATION_LEVEL_IDENTIFY, forged);
  g_assert_error (error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_IMPERSONATION_DENIED);
  g_assert_nonnull (strstr (error->message, "not trusted"));
  g_assert_null (f->acting_as);
  close_client (cb);
  close_client (c);
}

/* With the loud opt-in the escalation happens (so the test above can
 * fail), and the warning is logged. Then the token's limits. */
static void
test_privileged_opt_in (Fixture *f, gconstpointer data)
{
  TetherClient *c, *cb;
  g_autoptr(GError) error = NULL;
  const char * const *chain;
  g_autofree char *issuer = NULL;

  g_test_expect_message ("Tether", G_LOG_LEVEL_WARNING, "*dangerously-allow-privileged-impersonation*");
  tether_server_set_dangerously_allow_privileged_impersonation (f->a, TRUE);
  g_test_assert_expected_messages ();

  c = connect_client (f, f->a_uri);
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_IMPERSONATE);
  g_assert_no_error (f->imp_error);
  g_assert_nonnull (f->creds);
  g_assert_cmpint (tether_credentials_get_level (f->creds), ==, TETHER_IMPERSONATION_LEVEL_IMPERSONATE);
  g_assert_cmpstr (tether_credentials_get_holder (f->creds), ==,
                   geteuid () == 0 ? "uid:0" : tether_credentials_get_holder (f->creds));
  g_assert_true (g_str_has_prefix (tether_credentials_get_audience (f->creds), "host:"));
  g_assert_cmpint (tether_credentials_get_expiry (f->creds), <=,
                   g_get_real_time () / G_USEC_PER_SEC + 10);
  issuer = g_strdup (tether_credentials_get_issuer (f->creds));
  g_assert_cmpstr (tether_credentials_get_subject (f->creds), ==, issuer);

  /* Acting as A towards B: accepted, and B's handler sees the chain. */
  cb = connect_client (f, f->b_uri);
  error = call (cb, "act", TETHER_IMPERSONATION_LEVEL_IDENTIFY, f->creds);
  g_assert_no_error (error);
  g_assert_nonnull (f->acting_as);
  g_assert_cmpstr (tether_credentials_get_subject (f->acting_as), ==, issuer);
  chain = tether_credentials_get_chain (f->acting_as);
  g_assert_cmpuint (g_strv_length ((char **) chain), ==, 2);
  g_assert_cmpstr (chain[0], ==, issuer);
  g_assert_cmpstr (chain[1], ==, tether_credentials_get_holder (f->creds));
  g_clear_object (&f->acting_as);

  /* An IMPERSONATE token is for this host only: a service elsewhere (here
   * B told it is another host) refuses it. */
  _tether_server_set_host_id (f->b, "elsewhere");
  error = call (cb, "act", TETHER_IMPERSONATION_LEVEL_IDENTIFY, f->creds);
  g_assert_error (error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_IMPERSONATION_DENIED);
  g_assert_nonnull (strstr (error->message, "another host"));
  g_clear_error (&error);

  /* A DELEGATE token is honoured there, and the chain shows the hops. */
  tether_server_set_callback_impersonation_level (f->a, TETHER_IMPERSONATION_LEVEL_DELEGATE);
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (tether_credentials_get_level (f->creds), ==, TETHER_IMPERSONATION_LEVEL_DELEGATE);
  g_assert_cmpstr (tether_credentials_get_audience (f->creds), ==, "*");
  error = call (cb, "act", TETHER_IMPERSONATION_LEVEL_IDENTIFY, f->creds);
  g_assert_no_error (error);
  g_assert_nonnull (f->acting_as);
  chain = tether_credentials_get_chain (f->acting_as);
  g_assert_cmpuint (g_strv_length ((char **) chain), ==, 2);
  g_assert_cmpstr (chain[0], ==, issuer);
  g_clear_object (&f->acting_as);
  _tether_server_set_host_id (f->b, NULL);

  /* Tokens expire with the call that granted them. */
  f->cb_timeout = 1200;
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_nonnull (f->creds);
  tether_test_spin_ms (2300);
  error = call (cb, "act", TETHER_IMPERSONATION_LEVEL_IDENTIFY, f->creds);
  g_assert_error (error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_IMPERSONATION_DENIED);
  g_assert_nonnull (strstr (error->message, "expired"));
  g_clear_error (&error);

  close_client (cb);
  close_client (c);
}

static void
communicate_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  char **out = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), res, out, NULL, &error));
  g_assert_no_error (error);
  if (*out == NULL)
    *out = g_strdup ("");
}

/* The frames themselves: below IMPERSONATE no token is ever sent. */
static char *
capture_frames (Fixture *f)
{
  const char *argv[] = { "/usr/bin/python3", TETHER_TEST_SRCDIR "/attackers/imp-capture.py",
                         f->a_uri, "callme", NULL };
  g_autoptr(GSubprocess) p = NULL;
  g_autoptr(GError) error = NULL;
  char *out = NULL;

  p = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (p, NULL, NULL, communicate_done, &out);
  TETHER_TEST_WAIT_UNTIL (out != NULL);
  g_assert_nonnull (strstr (out, "done"));
  return out;
}

static void
test_wire (Fixture *f, gconstpointer data)
{
  g_autofree char *clamped = NULL;
  g_autofree char *granted = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("the privileged side needs root");
      return;
    }
  clamped = capture_frames (f);
  g_assert_nonnull (strstr (clamped, "\"cb\""));
  g_assert_nonnull (strstr (clamped, "\"imp\":\"identify\""));
  g_assert_null (strstr (clamped, "token"));

  g_test_expect_message ("Tether", G_LOG_LEVEL_WARNING, "*dangerously-allow-privileged-impersonation*");
  tether_server_set_dangerously_allow_privileged_impersonation (f->a, TRUE);
  g_test_assert_expected_messages ();
  granted = capture_frames (f);
  g_assert_nonnull (strstr (granted, "\"imp\":\"impersonate\""));
  g_assert_nonnull (strstr (granted, "\"token\""));
}

/* A token replayed by another peer (uid 65534, in a child) is refused. */
static void
child_setup (gpointer user_data)
{
  if (setgroups (0, NULL) != 0 || setgid (NOBODY) != 0 || setuid (NOBODY) != 0)
    _exit (99);
  /* After setuid, which clears it. */
  tether_test_die_with_parent (NULL);
}

static void
test_replay (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) p = NULL;
  char *out = NULL;
  TetherClient *c;
  const char *argv[6];
  g_autofree char *self_exe = g_file_read_link ("/proc/self/exe", NULL);

  if (geteuid () != 0)
    {
      g_test_skip ("dropping to another uid needs root");
      return;
    }
  g_test_expect_message ("Tether", G_LOG_LEVEL_WARNING, "*dangerously-allow-privileged-impersonation*");
  tether_server_set_dangerously_allow_privileged_impersonation (f->a, TRUE);
  g_test_assert_expected_messages ();
  c = connect_client (f, f->a_uri);
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_nonnull (f->creds);

  argv[0] = self_exe;
  argv[1] = "--present";
  argv[2] = f->b_uri;
  argv[3] = tether_credentials_get_token (f->creds);
  argv[4] = NULL;
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  p = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (p, NULL, NULL, communicate_done, &out);
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, "*Refused act*issued to uid:0*");
  TETHER_TEST_WAIT_UNTIL (out != NULL);
  g_test_assert_expected_messages ();
  g_assert_nonnull (strstr (out, "error -32006"));
  g_assert_nonnull (strstr (out, "issued to uid:0"));
  g_assert_null (f->acting_as);
  g_free (out);
  close_client (c);
}

/* Per-call levels on callbacks: they only lower what the server grants
 * (after its caps and clamp), as tether_client_call_full_async() does. */
static void
test_callback_level (Fixture *f, gconstpointer data)
{
  TetherClient *c = connect_client (f, f->a_uri);
  g_autoptr(GPtrArray) peers = tether_server_get_peers (f->a);
  TetherPeer *peer;
  TetherImpersonationLevel granted;
  GError *error;
  Result r = { 0 };

  g_assert_cmpuint (peers->len, ==, 1);
  peer = g_ptr_array_index (peers, 0);
  granted = tether_peer_get_callback_impersonation_level (peer);
  g_assert_cmpint (granted, >=, TETHER_IMPERSONATION_LEVEL_IDENTIFY);
  f->cb_full = TRUE;

  /* Lowered to ANONYMOUS: the client's handler does not learn who called. */
  f->cb_level = TETHER_IMPERSONATION_LEVEL_ANONYMOUS;
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  g_assert_cmpint (f->seen_uid, ==, -1);
  g_assert_null (f->creds);

  /* Asking for more than the server grants: capped, never raised. */
  f->cb_level = TETHER_IMPERSONATION_LEVEL_DELEGATE;
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, granted);
  g_assert_cmpint (f->seen_uid, ==, geteuid ());

  /* The same through the peer, outside of any call. */
  tether_peer_call_full_async (peer, "cb", NULL, TETHER_IMPERSONATION_LEVEL_ANONYMOUS, NULL, -1,
                               NULL, call_done, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);
  g_clear_pointer (&r.value, g_variant_unref);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  g_assert_cmpint (f->seen_uid, ==, -1);
  memset (&r, 0, sizeof r);
  tether_peer_call_full_async (peer, "cb", NULL, TETHER_IMPERSONATION_LEVEL_DELEGATE, NULL, -1,
                               NULL, call_done, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);
  g_clear_pointer (&r.value, g_variant_unref);
  g_assert_cmpint (f->seen_level, ==, granted);
  close_client (c);
}

/* A per-call level that needs a key the server lacks fails (never
 * downgraded); a lower one still goes through. */
static void
test_callback_level_refused (Fixture *f, gconstpointer data)
{
  TetherClient *c;
  g_autoptr(GError) error = NULL;

  if (tether_server_is_privileged (f->a))
    {
      g_test_expect_message ("Tether", G_LOG_LEVEL_WARNING, "*dangerously-allow-privileged-impersonation*");
      tether_server_set_dangerously_allow_privileged_impersonation (f->a, TRUE);
      g_test_assert_expected_messages ();
    }
  c = connect_client (f, f->a_uri);
  f->cb_full = TRUE;
  f->cb_level = TETHER_IMPERSONATION_LEVEL_IMPERSONATE;
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_IMPERSONATE);
  g_assert_nonnull (f->creds);
  f->cb_level = TETHER_IMPERSONATION_LEVEL_IDENTIFY;
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_IDENTIFY);
  g_assert_null (f->creds);

  tether_server_set_signing_certificate (f->a, NULL);
  f->cb_level = TETHER_IMPERSONATION_LEVEL_IMPERSONATE;
  f->seen_level = TETHER_IMPERSONATION_LEVEL_DELEGATE;
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_error (error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_IMPERSONATION_DENIED);
  g_assert_nonnull (strstr (error->message, "no signing key"));
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_DELEGATE);  /* not called */
  g_clear_error (&error);
  f->cb_level = TETHER_IMPERSONATION_LEVEL_ANONYMOUS;
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  close_client (c);
}

static char *
header_alg (const char *token)
{
  g_autoptr(GVariant) header = NULL;
  g_autoptr(GVariant) claims = NULL;
  g_autoptr(GError) error = NULL;
  char *alg = NULL;

  g_assert_true (_tether_jws_split (token, &header, &claims, &error));
  g_assert_true (g_variant_lookup (header, "alg", "s", &alg));
  return alg;
}

static char *
b64url (const char *s)
{
  char *out = g_base64_encode ((const guchar *) s, strlen (s));

  g_strdelimit (out, "+", '-');
  g_strdelimit (out, "/", '_');
  if (strchr (out, '=') != NULL)
    *strchr (out, '=') = '\0';
  return out;
}

/* The peer B sees (what it names as a presenter). */
static TetherIdentity *
b_peer_identity (Fixture *f)
{
  g_autoptr(GPtrArray) peers = tether_server_get_peers (f->b);

  g_assert_cmpuint (peers->len, ==, 1);
  return tether_peer_get_identity (g_ptr_array_index (peers, 0));
}

/* Ed25519 issuers sign with EdDSA, and such tokens verify. */
static void
test_token_ed25519 (Fixture *f, gconstpointer data)
{
  g_autoptr(GTlsCertificate) ed = load (f, "signer-ed25519");
  TetherClient *cb = connect_client (f, f->b_uri);
  g_autoptr(TetherCredentials) creds = make_token (ed, b_peer_identity (f));
  g_autofree char *alg = header_alg (tether_credentials_get_token (creds));
  GError *error;

  g_assert_cmpstr (alg, ==, "EdDSA");
  /* Not trusted yet. */
  error = call (cb, "act", TETHER_IMPERSONATION_LEVEL_IDENTIFY, creds);
  g_assert_error (error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_IMPERSONATION_DENIED);
  g_clear_error (&error);
  tether_server_add_trusted_issuer (f->b, ed);
  error = call (cb, "act", TETHER_IMPERSONATION_LEVEL_IDENTIFY, creds);
  g_assert_no_error (error);
  g_assert_nonnull (f->acting_as);
  g_assert_cmpstr (tether_credentials_get_subject (f->acting_as), ==,
                   tether_credentials_get_issuer (creds));
  close_client (cb);
}

/* The algorithm is the issuer key's: a header claiming another one (even
 * with the signature left as it was) is refused. */
static void
test_token_alg_mismatch (Fixture *f, gconstpointer data)
{
  const char *headers[] = { "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"alg\":\"none\",\"typ\":\"JWT\"}",
                            "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", "{\"typ\":\"JWT\"}" };
  TetherClient *cb = connect_client (f, f->b_uri);
  g_autoptr(TetherCredentials) good = make_token (f->signer, b_peer_identity (f));
  const char *token = tether_credentials_get_token (good);
  g_autofree char *alg = header_alg (token);
  GError *error;

  g_assert_cmpstr (alg, ==, "ES256");
  error = call (cb, "act", TETHER_IMPERSONATION_LEVEL_IDENTIFY, good);
  g_assert_no_error (error);
  g_clear_object (&f->acting_as);

  for (guint i = 0; i < G_N_ELEMENTS (headers); i++)
    for (guint keep_sig = 0; keep_sig < 2; keep_sig++)
      {
        g_autofree char *h = b64url (headers[i]);
        const char *rest = strchr (token, '.');
        g_autofree char *body = keep_sig ? g_strdup (rest) : g_strndup (rest, strrchr (token, '.') + 1 - rest);
        g_autofree char *tampered = g_strconcat (h, body, NULL);
        g_autoptr(TetherCredentials) creds = _tether_credentials_new_from_token (tampered, &error);

        g_assert_no_error (error);
        error = call (cb, "act", TETHER_IMPERSONATION_LEVEL_IDENTIFY, creds);
        g_assert_error (error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_IMPERSONATION_DENIED);
        g_assert_cmpint (error->code, ==, -32006);
        g_assert_nonnull (strstr (error->message, "algorithm"));
        g_clear_error (&error);
        g_assert_null (f->acting_as);
      }
  close_client (cb);
}

static void
read_line_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  char **line = user_data;
  g_autoptr(GError) error = NULL;

  *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), res, NULL, &error);
  g_assert_no_error (error);
  if (*line == NULL)
    *line = g_strdup ("");
}

/* An unprivileged server (a child at uid 65534) is not clamped: with a
 * signing certificate and callback-impersonation-level IMPERSONATE, a
 * local client gets IMPERSONATE and a token B honours; the privileged
 * (root) A with the same settings only gets to IDENTIFY. */
static void
test_unprivileged_server (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) p = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autofree char *self_exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *udir = g_build_filename (f->dir, "u", NULL);
  g_autofree char *uri = NULL;
  g_autofree char *line = NULL;
  g_autofree char *issuer = NULL;
  const char *argv[4];
  const char * const *chain;
  const char *files[] = { "signer.pem", "signer-key.pem" };
  TetherClient *c, *cb;
  Result r = { 0 };

  if (geteuid () != 0)
    {
      g_test_skip ("dropping to another uid needs root");
      return;
    }
  /* The child owns its socket's directory and reads the signer. */
  g_assert_cmpint (g_mkdir (udir, 0755), ==, 0);
  g_assert_cmpint (chown (udir, NOBODY, NOBODY), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (f->dir, files[i], NULL);

      g_assert_cmpint (g_chmod (path, 0644), ==, 0);
    }

  argv[0] = self_exe;
  argv[1] = "--serve";
  argv[2] = f->dir;
  argv[3] = NULL;
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  p = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (p));
  g_data_input_stream_read_line_async (out, G_PRIORITY_DEFAULT, NULL, read_line_done, &line);
  TETHER_TEST_WAIT_UNTIL (line != NULL);
  /* The child knows it is not privileged. */
  g_assert_cmpstr (line, ==, "ready privileged=0");

  uri = g_strdup_printf ("unix:%s/u.sock", udir);
  c = tether_client_new (uri);
  g_object_set (c, "expected-server-uid", (gint64) NOBODY, NULL);
  tether_client_add_method (c, "cb", cli_cb, f, NULL);
  tether_client_connect_async (c, NULL, connect_done, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);

  g_clear_pointer (&error, g_error_free);
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_IMPERSONATE);
  g_assert_cmpint (f->seen_uid, ==, NOBODY);
  g_assert_no_error (f->imp_error);
  g_assert_nonnull (f->creds);
  g_assert_cmpint (tether_credentials_get_level (f->creds), ==, TETHER_IMPERSONATION_LEVEL_IMPERSONATE);
  g_assert_cmpstr (tether_credentials_get_holder (f->creds), ==, "uid:0");
  issuer = g_strdup (tether_credentials_get_issuer (f->creds));
  g_assert_cmpstr (tether_credentials_get_subject (f->creds), ==, issuer);

  /* The token is honoured by B (which trusts the signer). */
  cb = connect_client (f, f->b_uri);
  error = call (cb, "act", TETHER_IMPERSONATION_LEVEL_IDENTIFY, f->creds);
  g_assert_no_error (error);
  g_assert_nonnull (f->acting_as);
  g_assert_cmpstr (tether_credentials_get_subject (f->acting_as), ==, issuer);
  chain = tether_credentials_get_chain (f->acting_as);
  g_assert_cmpuint (g_strv_length ((char **) chain), ==, 2);
  g_assert_cmpstr (chain[0], ==, issuer);
  g_assert_cmpstr (chain[1], ==, "uid:0");
  close_client (cb);
  close_client (c);

  /* The root A, same signer and level: clamped. */
  g_assert_true (tether_server_is_privileged (f->a));
  c = connect_client (f, f->a_uri);
  error = call (c, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_IDENTIFY);
  g_assert_null (f->creds);
  close_client (c);

  g_subprocess_force_exit (p);
  g_subprocess_wait (p, NULL, NULL);
}

static TetherServer *
wss_server (Fixture *f)
{
  TetherServer *s = tether_server_new ();
  g_autoptr(GTlsCertificate) cert = load (f, "server");
  g_autoptr(GTlsDatabase) ca = tether_test_load_ca (f->dir, "ca.pem");
  g_autoptr(GError) error = NULL;

  tether_server_set_tls_certificate (s, cert);
  tether_server_set_tls_client_database (s, ca);
  g_assert_true (tether_server_listen (s, "wss://127.0.0.1:0", &error));
  g_assert_no_error (error);
  return s;
}

static TetherClient *
wss_client (Fixture *f, TetherServer *s)
{
  TetherClient *client = tether_client_new (tether_server_get_uris (s)[0]);
  g_autoptr(GTlsCertificate) cert = load (f, "client");
  g_autoptr(GTlsDatabase) ca = tether_test_load_ca (f->dir, "ca.pem");
  Result r = { 0 };

  tether_client_set_tls_database (client, ca);
  tether_client_set_tls_certificate (client, cert);
  tether_client_add_method (client, "cb", cli_cb, f, NULL);
  tether_client_connect_async (client, NULL, connect_done, &r);
  TETHER_TEST_WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);
  return client;
}

static void
srv_act_onward (TetherInvocation *inv, gpointer user_data)
{
  Fixture *f = user_data;

  g_set_object (&f->acting_as, tether_invocation_get_acting_as (inv));
  g_clear_object (&f->onward);
  g_clear_error (&f->imp_error);
  f->onward = tether_invocation_impersonate (inv, &f->imp_error);
  tether_invocation_return_value (inv, NULL);
}

/* DELEGATE over wss:// with a client certificate: service A grants it to
 * client X on a callback (the holder is X's certificate, which every
 * service X connects to sees); X presents it to service C, on "another
 * host", and passes the delegation on one more hop: C sees the chain
 * A → X, and the token X granted C carries A → X → C. */
static void
test_delegate_wss (Fixture *f, gconstpointer data)
{
  g_autoptr(GTlsCertificate) client_cert = load (f, "client");
  g_autoptr(GByteArray) der = NULL;
  g_autofree char *client_sha = NULL;
  g_autofree char *issuer = NULL;
  g_autofree char *x = NULL;
  TetherServer *a, *c;
  TetherClient *xa, *xc;
  const char * const *chain;
  GError *error;

  g_object_get (client_cert, "certificate", &der, NULL);
  client_sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, der->data, der->len);

  a = wss_server (f);
  tether_server_add_method (a, "callme", TETHER_ACCESS_AUTHENTICATED, srv_callme, f, NULL);
  tether_server_set_signing_certificate (a, f->signer);
  tether_server_set_callback_impersonation_level (a, TETHER_IMPERSONATION_LEVEL_DELEGATE);
  if (tether_server_is_privileged (a))
    {
      g_test_expect_message ("Tether", G_LOG_LEVEL_WARNING, "*dangerously-allow-privileged-impersonation*");
      tether_server_set_dangerously_allow_privileged_impersonation (a, TRUE);
      g_test_assert_expected_messages ();
    }
  c = wss_server (f);
  tether_server_add_method (c, "act", TETHER_ACCESS_AUTHENTICATED, srv_act_onward, f, NULL);
  tether_server_add_trusted_issuer (c, f->signer);
  _tether_server_set_host_id (c, "elsewhere");

  xa = wss_client (f, a);
  error = call (xa, "callme", TETHER_IMPERSONATION_LEVEL_IDENTIFY, NULL);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_level, ==, TETHER_IMPERSONATION_LEVEL_DELEGATE);
  g_assert_no_error (f->imp_error);
  g_assert_nonnull (f->creds);
  g_assert_cmpint (tether_credentials_get_level (f->creds), ==, TETHER_IMPERSONATION_LEVEL_DELEGATE);
  g_assert_cmpstr (tether_credentials_get_audience (f->creds), ==, "*");
  x = g_strdup (tether_credentials_get_holder (f->creds));
  {
    g_autofree char *expected = g_strconcat ("x509-sha256:", client_sha, NULL);

    g_assert_cmpstr (x, ==, expected);
  }
  issuer = g_strdup (tether_credentials_get_issuer (f->creds));

  /* X passes it on, granting DELEGATE itself (its own key). */
  xc = wss_client (f, c);
  tether_client_set_signing_certificate (xc, f->signer2);
  tether_client_set_impersonation_level (xc, TETHER_IMPERSONATION_LEVEL_DELEGATE);
  error = call (xc, "act", TETHER_IMPERSONATION_LEVEL_DELEGATE, f->creds);
  g_assert_no_error (error);
  g_assert_nonnull (f->acting_as);
  g_assert_cmpstr (tether_credentials_get_subject (f->acting_as), ==, issuer);
  chain = tether_credentials_get_chain (f->acting_as);
  g_assert_cmpuint (g_strv_length ((char **) chain), ==, 2);
  g_assert_cmpstr (chain[0], ==, issuer);
  g_assert_cmpstr (chain[1], ==, x);

  g_assert_no_error (f->imp_error);
  g_assert_nonnull (f->onward);
  g_assert_cmpint (tether_credentials_get_level (f->onward), ==, TETHER_IMPERSONATION_LEVEL_DELEGATE);
  g_assert_cmpstr (tether_credentials_get_subject (f->onward), ==, issuer);
  g_assert_cmpstr (tether_credentials_get_issuer (f->onward), !=, issuer);
  chain = tether_credentials_get_chain (f->onward);
  g_assert_cmpuint (g_strv_length ((char **) chain), ==, 3);
  g_assert_cmpstr (chain[0], ==, issuer);
  g_assert_cmpstr (chain[1], ==, x);
  g_assert_cmpstr (chain[2], ==, tether_credentials_get_holder (f->onward));

  close_client (xc);
  close_client (xa);
  tether_server_close (a);
  tether_server_close (c);
  g_assert_finalize_object (a);
  g_assert_finalize_object (c);
}

/* Child mode: present TOKEN to URI as whoever this process is. */
static int
present_main (const char *uri, const char *token)
{
  Fixture f = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(TetherCredentials) creds = _tether_credentials_new_from_token (token, &error);
  TetherClient *c = tether_client_new (uri);
  Result r = { 0 };

  g_object_set (c, "expected-server-uid", (gint64) 0, NULL);
  tether_client_add_method (c, "cb", cli_cb, &f, NULL);
  tether_client_connect_async (c, NULL, connect_done, &r);
  while (!r.done)
    g_main_context_iteration (NULL, TRUE);
  if (r.error != NULL)
    {
      g_print ("connect-error %s\n", r.error->message);
      return 1;
    }
  r.done = FALSE;
  tether_client_call_full_async (c, "act", NULL, TETHER_IMPERSONATION_LEVEL_IDENTIFY, creds, -1,
                                 NULL, call_done, &r);
  while (!r.done)
    g_main_context_iteration (NULL, TRUE);
  if (r.error != NULL)
    g_print ("error %d %s\n", r.error->code, r.error->message);
  else
    g_print ("ok\n");
  g_object_unref (c);
  return 0;
}

/* Child mode: as whoever this process is (uid 65534), serve "callme" on
 * DIR/u/u.sock with DIR's signer and callbacks at IMPERSONATE. */
static int
serve_main (const char *dir)
{
  static Fixture f = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(TetherServer) server = tether_server_new ();
  g_autofree char *path = g_build_filename (dir, "u", "u.sock", NULL);
  g_autofree char *uri = g_strconcat ("unix:", path, NULL);
  g_autoptr(GTlsCertificate) signer = NULL;

  f.dir = (char *) dir;
  f.cb_timeout = -1;
  signer = load (&f, "signer");
  if (!tether_server_listen (server, uri, &error))
    {
      g_print ("listen-error %s\n", error->message);
      return 1;
    }
  g_chmod (path, 0777);
  tether_server_add_method (server, "callme", TETHER_ACCESS_AUTHENTICATED, srv_callme, &f, NULL);
  tether_server_set_signing_certificate (server, signer);
  tether_server_set_callback_impersonation_level (server, TETHER_IMPERSONATION_LEVEL_IMPERSONATE);
  g_print ("ready privileged=%d\n", tether_server_is_privileged (server));
  fflush (stdout);
  for (;;)
    g_main_context_iteration (NULL, TRUE);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc == 4 && strcmp (argv[1], "--present") == 0)
    return present_main (argv[2], argv[3]);
  if (argc == 3 && strcmp (argv[1], "--serve") == 0)
    return serve_main (argv[2]);

  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/tether/impersonation/anonymous", test_anonymous);
  ADD ("/tether/impersonation/no-signing-key", test_no_signing_key);
  ADD ("/tether/impersonation/privileged-clamp", test_privileged_clamp);
  ADD ("/tether/impersonation/privileged-opt-in", test_privileged_opt_in);
  ADD ("/tether/impersonation/wire", test_wire);
  ADD ("/tether/impersonation/replay", test_replay);
  ADD ("/tether/impersonation/callback-level", test_callback_level);
  ADD ("/tether/impersonation/callback-level-refused", test_callback_level_refused);
  ADD ("/tether/impersonation/token-ed25519", test_token_ed25519);
  ADD ("/tether/impersonation/token-alg-mismatch", test_token_alg_mismatch);
  ADD ("/tether/impersonation/unprivileged-server", test_unprivileged_server);
  ADD ("/tether/impersonation/delegate-wss", test_delegate_wss);
  return g_test_run ();
}
