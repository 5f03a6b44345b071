/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Detached callbacks (DESIGN.md, "Callback verification"): a server calls
 * a client's TetherCallbackListener back after the client disconnected,
 * and the listener hears nobody else. Over unix: and wss:// (and ws://
 * where the case applies): the delivery after the disconnect; forgeries
 * by a separate process that knows the address but not the key; a replay
 * of a captured delivery; another client's session; expired deliveries
 * and sessions; another uid on unix:; a server that does not allow
 * detached callbacks; and addresses that are not the peer's own, which
 * the server refuses to dial; calls waiting behind a slow one, which fail
 * at their own deadline or cancellation. See docs/security-detached.md. */

#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

#include "tether-test-common.h"
#include "tether-callback-listener-private.h"
#include "tether-detached-callback-private.h"
#include "tether-invocation-private.h"
#include "tether-json-private.h"
#include "tether-log-private.h"
#include "tether-scheduler-private.h"

#define ATTACKER TETHER_TEST_SRCDIR "/attackers/detached-deliver.py"

typedef struct
{
  TetherTransportKind kind;
} FixtureData;

static const FixtureData unix_data = { TETHER_TRANSPORT_UNIX };
static const FixtureData tcp_data = { TETHER_TRANSPORT_TCP };
static const FixtureData tls_data = { TETHER_TRANSPORT_TLS };

typedef struct
{
  GMainContext           *context;
  char                   *dir;
  TetherTransportKind     kind;
  TetherServer           *server;
  GPtrArray              *peers;        /* in the order they connected */
  guint                   peers_disconnected;
  TetherCallbackListener *listener;
  guint                   delivered;    /* reached the listener's handler */
  gint64                  delivered_uid;
  char                   *captured;     /* the last delivery, as sent */
  guint                   rejected;
  char                   *rejected_origin;
  char                   *rejected_reason;
  TetherInvocation       *stalled;      /* a "stall" call, unanswered */
} Fixture;

/* -- helpers ----------------------------------------------------------- */

/* The listener's one method: records what arrived and how, and answers
 * with the params it got. */
static void
job_done (TetherInvocation *invocation,
          gpointer          user_data)
{
  Fixture *f = user_data;
  g_autofree char *params = _tether_invocation_dup_params_json (invocation);
  const TetherDetachedClaim *claim = _tether_invocation_get_claim (invocation);
  g_autofree char *meta = NULL;

  g_assert_nonnull (claim);
  meta = g_strdup_printf ("{\"detached\":{\"session\":\"%s\",\"seq\":%" G_GINT64_FORMAT ","
                          "\"expires\":%" G_GINT64_FORMAT ",\"sig\":\"%s\"}}",
                          claim->session, claim->seq, claim->expires, claim->sig);

  f->delivered++;
  f->delivered_uid = tether_identity_get_uid (tether_invocation_get_identity (invocation));
  /* What a man in the middle would have seen: the same signed request. */
  g_free (f->captured);
  f->captured = g_strdup_printf ("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"%s\","
                                 "\"params\":%s,\"tether\":%s}",
                                 tether_invocation_get_method_name (invocation), params, meta);
  tether_invocation_return_value (invocation, tether_invocation_get_parameters (invocation));
}

/* The listener's slow method: answered only when the test says so. */
static void
stall (TetherInvocation *invocation,
       gpointer          user_data)
{
  Fixture *f = user_data;

  g_assert_null (f->stalled);
  f->stalled = g_object_ref (invocation);
}

static void
callback_rejected_cb (TetherCallbackListener *listener,
                      const char             *claimed_origin,
                      const char             *reason,
                      Fixture                *f)
{
  g_assert_nonnull (reason);
  f->rejected++;
  g_free (f->rejected_origin);
  f->rejected_origin = g_strdup (claimed_origin);
  g_free (f->rejected_reason);
  f->rejected_reason = g_strdup (reason);
}

/* A listener on @kind; on unix: at DIR/@name.sock. */
static TetherCallbackListener *
listener_new (Fixture             *f,
              TetherTransportKind  kind,
              const char          *name)
{
  TetherCallbackListener *listener = tether_callback_listener_new ();
  g_autofree char *uri = NULL;
  g_autoptr(GError) error = NULL;

  tether_callback_listener_add_method (listener, "job-done", job_done, f, NULL);
  tether_callback_listener_add_method (listener, "stall", stall, f, NULL);
  g_signal_connect (listener, "callback-rejected", G_CALLBACK (callback_rejected_cb), f);
  switch (kind)
    {
    case TETHER_TRANSPORT_UNIX:
      uri = g_strdup_printf ("unix:%s/%s.sock", f->dir, name);
      break;
    case TETHER_TRANSPORT_TCP:
      uri = g_strdup ("ws://127.0.0.1:0");
      break;
    case TETHER_TRANSPORT_TLS:
      {
        g_autoptr(GTlsCertificate) cert = tether_test_load_certificate (f->dir, "server");

        tether_callback_listener_set_tls_certificate (listener, cert);
        g_assert_true (tether_callback_listener_get_tls_certificate (listener) == cert);
        uri = g_strdup ("wss://127.0.0.1:0");
      }
      break;
    default:
      g_assert_not_reached ();
    }
  g_assert_true (tether_callback_listener_listen (listener, uri, &error));
  g_assert_no_error (error);
  return listener;
}

/* A client of the fixture's server announcing @listener, connected
 * (as @username, if not NULL). */
static TetherClient *
client_connect_as (Fixture                *f,
                   TetherCallbackListener *listener,
                   const char             *username,
                   const char             *password)
{
  TetherClient *client = tether_client_new (tether_server_get_uris (f->server)[0]);
  GError *error = NULL;
  guint peers = f->peers->len;

  if (f->kind == TETHER_TRANSPORT_TLS)
    {
      g_autoptr(GTlsDatabase) ca = tether_test_load_ca (f->dir, "ca.pem");

      tether_client_set_tls_database (client, ca);
    }
  tether_client_set_callback_listener (client, listener);
  g_assert_true (tether_client_get_callback_listener (client) == listener);
  if (username != NULL)
    tether_client_set_credentials (client, username, password);

  error = tether_test_client_connect (client);
  g_assert_no_error (error);
  TETHER_TEST_WAIT_UNTIL (f->peers->len == peers + 1);
  return client;
}

static TetherClient *
client_connect (Fixture                *f,
                TetherCallbackListener *listener)
{
  return client_connect_as (f, listener, NULL, NULL);
}

static void
client_close (Fixture      *f,
              TetherClient *client)
{
  guint gone = f->peers_disconnected;

  tether_client_close (client);
  g_assert_finalize_object (client);
  TETHER_TEST_WAIT_UNTIL (f->peers_disconnected == gone + 1);
}

typedef struct
{
  GVariant *value;
  GError   *error;
  gboolean  done;
} CallResult;

static void
call_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  CallResult *r = user_data;

  r->value = tether_detached_callback_call_finish (TETHER_DETACHED_CALLBACK (source), result,
                                                   &r->error);
  r->done = TRUE;
}

/* Calls back through @detached and waits for the outcome. */
static void
detached_call (TetherDetachedCallback *detached,
               int                     timeout_msec,
               CallResult             *r)
{
  memset (r, 0, sizeof *r);
  tether_detached_callback_call_async (detached, "job-done",
                                       g_variant_new ("(sx)", "job-42", (gint64) 7),
                                       timeout_msec, NULL, call_cb, r);
  g_assert_false (r->done);  /* never before _async returns */
  TETHER_TEST_WAIT_UNTIL (r->done);
  g_assert_true ((r->value != NULL) != (r->error != NULL));
}

static void
call_result_clear (CallResult *r)
{
  g_clear_pointer (&r->value, g_variant_unref);
  g_clear_error (&r->error);
}

typedef struct
{
  char    *out;
  GError  *error;
  gboolean done;
} Attacker;

static void
attacker_done_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Attacker *a = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &a->out, NULL, &a->error);
  a->done = TRUE;
}

/* Runs the attacker (a separate process) against @uri with @args, while
 * this process serves; returns its answer lines, one per message. */
static char **
attacker_run (const char         *uri,
              const char * const *args)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  Attacker a = { 0 };
  char **lines;

  g_ptr_array_add (argv, (char *) "/usr/bin/python3");
  g_ptr_array_add (argv, (char *) ATTACKER);
  /* Options first (--uid UID, --forge SESSION METHOD), then the URI,
   * then the messages. */
  while (args != NULL && *args != NULL && g_str_has_prefix (*args, "--"))
    {
      guint n = strcmp (*args, "--forge") == 0 ? 3 : 2;

      for (guint j = 0; j < n; j++)
        g_ptr_array_add (argv, (char *) *args++);
    }
  g_ptr_array_add (argv, (char *) uri);
  while (args != NULL && *args != NULL)
    g_ptr_array_add (argv, (char *) *args++);
  g_ptr_array_add (argv, NULL);

  g_subprocess_launcher_set_child_setup (launcher, tether_test_die_with_parent, NULL, NULL);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, attacker_done_cb, &a);
  TETHER_TEST_WAIT_UNTIL (a.done);
  g_assert_no_error (a.error);
  g_subprocess_wait_check (process, NULL, &error);
  g_assert_no_error (error);

  lines = g_strsplit (g_strstrip (a.out), "\n", -1);
  g_free (a.out);
  return lines;
}

/* A delivery made here, signed with @key as the server would sign it:
 * what only the holder of the key can make. */
static char *
craft (const char   *session,
       const guint8 *key,
       guint64       seq,
       gint64        expires_ms)
{
  const char *params = "[\"crafted\",1]";
  g_autofree char *sig = _tether_detached_sign (key, session, seq, expires_ms, "job-done", params);

  return g_strdup_printf ("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"job-done\",\"params\":%s,"
                          "\"tether\":{\"detached\":{\"session\":\"%s\",\"seq\":%" G_GUINT64_FORMAT
                          ",\"expires\":%" G_GINT64_FORMAT ",\"sig\":\"%s\"}}}",
                          params, session, seq, expires_ms, sig);
}

static gint64
now_ms (void)
{
  return g_get_real_time () / 1000;
}

#define ASSERT_REJECTED(line) \
  g_assert_true (g_str_has_prefix ((line), "error -32007 "))

/* -- fixture ----------------------------------------------------------- */

static void
peer_connected_cb (TetherServer *server,
                   TetherPeer   *peer,
                   Fixture      *f)
{
  g_ptr_array_add (f->peers, g_object_ref (peer));
}

static void
peer_disconnected_cb (TetherServer *server,
                      TetherPeer   *peer,
                      Fixture      *f)
{
  f->peers_disconnected++;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  user_data)
{
  const FixtureData *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;

  /* Each case expects its own log lines: the limiter's counts start at
   * zero. */
  _tether_log_reset (0);

  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);
  f->dir = g_dir_make_tmp ("tether-detached-XXXXXX", &error);
  g_assert_no_error (error);
  f->kind = data->kind;
  f->peers = g_ptr_array_new_with_free_func (g_object_unref);
  f->delivered_uid = -2;

  f->server = tether_server_new ();
  g_object_set (f->server, "allow-detached-callbacks", TRUE, NULL);
  switch (data->kind)
    {
    case TETHER_TRANSPORT_UNIX:
      uri = g_strdup_printf ("unix:%s/server.sock", f->dir);
      break;
    case TETHER_TRANSPORT_TCP:
      uri = g_strdup ("ws://127.0.0.1:0");
      break;
    case TETHER_TRANSPORT_TLS:
      {
        g_autoptr(GTlsCertificate) cert = NULL;
        g_autoptr(GTlsDatabase) ca = NULL;

        tether_test_make_certificates (f->dir);
        cert = tether_test_load_certificate (f->dir, "server");
        ca = tether_test_load_ca (f->dir, "ca.pem");
        tether_server_set_tls_certificate (f->server, cert);
        /* What verifies the listener's certificate when the server dials. */
        g_object_set (f->server, "detached-callback-tls-database", ca, NULL);
        uri = g_strdup ("wss://127.0.0.1:0");
      }
      break;
    default:
      g_assert_not_reached ();
    }
  g_signal_connect (f->server, "peer-connected", G_CALLBACK (peer_connected_cb), f);
  g_signal_connect (f->server, "peer-disconnected", G_CALLBACK (peer_disconnected_cb), f);
  tether_server_listen (f->server, uri, &error);
  g_assert_no_error (error);

  f->listener = listener_new (f, data->kind, "listener");
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  user_data)
{
  tether_callback_listener_close (f->listener);
  g_assert_finalize_object (g_steal_pointer (&f->listener));
  g_ptr_array_unref (f->peers);
  tether_server_close (f->server);
  g_assert_finalize_object (g_steal_pointer (&f->server));

  /* Closing connections finish their close handshake (bounded); then no
   * Tether source is left on the context. */
  TETHER_TEST_WAIT_UNTIL (_tether_debug_get_attached_sources () == 0);
  tether_test_spin_ms (5);

  g_free (f->captured);
  g_free (f->rejected_origin);
  g_free (f->rejected_reason);
  g_main_context_pop_thread_default (f->context);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_unref (f->context);

  {
    g_autoptr(GDir) dir = g_dir_open (f->dir, 0, NULL);
    const char *name;

    while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *path = g_build_filename (f->dir, name, NULL);
        g_unlink (path);
      }
  }
  g_rmdir (f->dir);
  g_free (f->dir);
}

/* Connects a client announcing the fixture's listener, checks the server
 * granted a session, and disconnects: the detached callback is all that
 * is left of it. */
static TetherDetachedCallback *
session_after_disconnect (Fixture *f)
{
  TetherClient *client = client_connect (f, f->listener);
  TetherPeer *peer = f->peers->pdata[f->peers->len - 1];
  TetherDetachedCallback *detached = tether_peer_get_detached_callback (peer);
  guint sessions = _tether_callback_listener_get_n_sessions (f->listener);

  g_assert_nonnull (detached);
  g_assert_cmpstr (tether_detached_callback_get_uri (detached), ==,
                   tether_callback_listener_get_uris (f->listener)[0]);
  g_assert_cmpint (tether_detached_callback_get_expiration_time (detached), >, g_get_real_time ());
  g_assert_cmpuint (sessions, >=, 1);
  client_close (f, client);
  g_assert_cmpuint (_tether_callback_listener_get_n_sessions (f->listener), ==, sessions);
  return detached;
}

/* -- (a) a delivery after the client disconnected ----------------------- */

static void
test_after_disconnect (Fixture       *f,
                       gconstpointer  user_data)
{
  g_autoptr(TetherDetachedCallback) detached = session_after_disconnect (f);
  g_autofree char *text = NULL;
  CallResult r;

  /* The peer is gone; its detached callback is not. */
  g_assert_true (tether_peer_is_closed (f->peers->pdata[0]));
  g_ptr_array_set_size (f->peers, 0);

  detached_call (detached, -1, &r);
  g_assert_no_error (r.error);
  text = g_variant_print (r.value, FALSE);
  g_assert_nonnull (strstr (text, "job-42"));
  call_result_clear (&r);
  g_assert_cmpuint (f->delivered, ==, 1);
  g_assert_cmpuint (f->rejected, ==, 0);
  /* On unix: the delivery came from the server's own uid; elsewhere the
   * dialler is anonymous: it presented nothing of the server's. */
  g_assert_cmpint (f->delivered_uid, ==,
                   f->kind == TETHER_TRANSPORT_UNIX ? (gint64) getuid () : -1);

  /* Each delivery is signed afresh: the next one is accepted too. */
  detached_call (detached, 5000, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);
  g_assert_cmpuint (f->delivered, ==, 2);
  g_assert_nonnull (strstr (f->captured, "\"seq\":2"));
}

/* With SCRAM-SHA-256-PLUS in the hello, the session is granted in the
 * hello's reply and registered once authentication completed. */
static void
test_authenticated (Fixture       *f,
                    gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *secrets = tether_scram_secrets_from_password ("s3cret", 4096, &error);
  g_autoptr(TetherDetachedCallback) detached = NULL;
  TetherClient *client;
  CallResult r;

  g_assert_no_error (error);
  g_assert_true (tether_server_add_user (f->server, "alice", secrets, &error));
  g_assert_no_error (error);
  client = client_connect_as (f, f->listener, "alice", "s3cret");
  g_assert_cmpstr (tether_identity_get_username (tether_peer_get_identity (f->peers->pdata[0])),
                   ==, "alice");
  detached = tether_peer_get_detached_callback (f->peers->pdata[0]);
  g_assert_nonnull (detached);
  g_assert_cmpuint (_tether_callback_listener_get_n_sessions (f->listener), ==, 1);
  client_close (f, client);

  detached_call (detached, -1, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);
  g_assert_cmpuint (f->delivered, ==, 1);
}

/* The wss:// listener's certificate is verified: with a database that
 * does not trust it, the server does not get through, and nothing is
 * delivered. */
static void
test_untrusted_listener (Fixture       *f,
                         gconstpointer  user_data)
{
  g_autoptr(TetherDetachedCallback) detached = NULL;
  g_autoptr(GTlsDatabase) other = tether_test_load_ca (f->dir, "other-ca.pem");
  CallResult r;

  g_object_set (f->server, "detached-callback-tls-database", other, NULL);
  detached = session_after_disconnect (f);
  detached_call (detached, -1, &r);
  g_assert_error (r.error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  call_result_clear (&r);
  g_assert_cmpuint (f->delivered, ==, 0);
}

/* -- (b) forged by someone who knows the address, not the key ---------- */

static void
test_forged (Fixture       *f,
             gconstpointer  user_data)
{
  g_autoptr(TetherDetachedCallback) detached = session_after_disconnect (f);
  const char *session = _tether_detached_callback_get_session (detached);
  const char *args[] = { "--forge", session, "job-done", NULL };
  g_auto(GStrv) lines = NULL;
  CallResult r;

  /* Unsigned; claiming the real session (learned somehow) with a key of
   * its own; claiming a session it made up. Each is answered -32007,
   * logged once naming who connected, and signalled. */
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE,
                         "Rejected a detached callback (job-done) from * "
                         "claiming session (none): unsigned*");
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE,
                         "Rejected a detached callback (job-done) from * "
                         "claiming session *: wrong signature");
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE,
                         "Rejected a detached callback (job-done) from * "
                         "claiming session *: unknown session");
  lines = attacker_run (tether_callback_listener_get_uris (f->listener)[0], args);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  for (guint i = 0; i < 3; i++)
    ASSERT_REJECTED (lines[i]);
  g_assert_nonnull (strstr (lines[0], "unsigned"));
  g_assert_nonnull (strstr (lines[1], "wrong signature"));
  g_assert_nonnull (strstr (lines[2], "unknown session"));
  g_assert_cmpuint (f->rejected, ==, 3);
  g_assert_nonnull (f->rejected_origin);
  g_assert_cmpstr (f->rejected_origin, !=, session);   /* the invented one */
  g_assert_cmpuint (f->delivered, ==, 0);

  /* The forgeries cost the real server nothing: its first delivery
   * (seq 1) still goes through. */
  detached_call (detached, -1, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);
  g_assert_cmpuint (f->delivered, ==, 1);
  g_assert_cmpuint (f->rejected, ==, 3);
}

/* A forgery claiming a 100 KB session id: rejected like any other, and
 * the log line quotes the id cut short, not 100 KB of the sender's
 * choosing per forgery. */
static void
test_forged_long_session (Fixture       *f,
                          gconstpointer  user_data)
{
  g_autofree char *session = g_strnfill (100000, 'A');
  g_autofree char *message = g_strdup_printf ("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"job-done\","
                                              "\"params\":[],\"tether\":{\"detached\":{\"session\":\"%s\","
                                              "\"seq\":1,\"expires\":1,\"sig\":\"x\"}}}", session);
  const char *args[] = { message, NULL };
  g_auto(GStrv) lines = NULL;

  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE,
                         "Rejected a detached callback (job-done) from * claiming session "
                         "AAAAAAAAAA*… (100000 bytes in all): *");
  lines = attacker_run (tether_callback_listener_get_uris (f->listener)[0], args);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (g_strv_length (lines), ==, 1);
  ASSERT_REJECTED (lines[0]);
  g_assert_cmpuint (f->rejected, ==, 1);
}

static void
test_forged_claims (Fixture       *f,
                    gconstpointer  user_data)
{
  g_autoptr(TetherDetachedCallback) detached = session_after_disconnect (f);
  const char *session = _tether_detached_callback_get_session (detached);
  g_autofree char *wrong = NULL;
  const char *args[2] = { NULL, NULL };
  g_auto(GStrv) lines = NULL;
  guint8 key[TETHER_DETACHED_KEY_SIZE];

  /* The signal names the claimed origin: here the real session, signed
   * with a key that is not its key. */
  memset (key, 0x5a, sizeof key);
  wrong = craft (session, key, 1, now_ms () + 30000);
  args[0] = wrong;
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE,
                         "Rejected a detached callback*wrong signature");
  lines = attacker_run (tether_callback_listener_get_uris (f->listener)[0], args);
  g_test_assert_expected_messages ();
  ASSERT_REJECTED (lines[0]);
  g_assert_cmpuint (f->rejected, ==, 1);
  g_assert_cmpstr (f->rejected_origin, ==, session);
  g_assert_cmpstr (f->rejected_reason, ==, "wrong signature");
}

/* -- (c) a replay of a captured delivery ------------------------------- */

static void
test_replay (Fixture       *f,
             gconstpointer  user_data)
{
  g_autoptr(TetherDetachedCallback) detached = session_after_disconnect (f);
  g_autofree char *tampered = NULL;
  const char *args[3] = { NULL, NULL, NULL };
  g_auto(GStrv) lines = NULL;
  char *at;
  CallResult r;

  detached_call (detached, -1, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);
  g_assert_cmpuint (f->delivered, ==, 1);
  g_assert_nonnull (f->captured);

  /* The captured request sent again, byte for byte; and once more with
   * its params changed (7 → 8) under the same signature. */
  tampered = g_strdup (f->captured);
  at = strstr (tampered, "\"job-42\",7]");
  g_assert_nonnull (at);
  at[strlen ("\"job-42\",")] = '8';
  args[0] = f->captured;
  args[1] = tampered;
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, "Rejected a detached callback*replayed*");
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE,
                         "Rejected a detached callback*wrong signature");
  lines = attacker_run (tether_callback_listener_get_uris (f->listener)[0], args);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (g_strv_length (lines), ==, 2);
  ASSERT_REJECTED (lines[0]);
  g_assert_nonnull (strstr (lines[0], "replayed"));
  ASSERT_REJECTED (lines[1]);
  g_assert_nonnull (strstr (lines[1], "wrong signature"));
  g_assert_cmpuint (f->delivered, ==, 1);
  g_assert_cmpuint (f->rejected, ==, 2);
  g_assert_cmpstr (f->rejected_origin, ==, _tether_detached_callback_get_session (detached));

  /* The server's own next delivery is not a replay. */
  detached_call (detached, -1, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);
  g_assert_cmpuint (f->delivered, ==, 2);
}

/* -- (d) another client's session -------------------------------------- */

static void
test_other_session (Fixture       *f,
                    gconstpointer  user_data)
{
  g_autoptr(TetherDetachedCallback) first = session_after_disconnect (f);
  g_autoptr(TetherCallbackListener) listener2 = listener_new (f, f->kind, "listener2");
  g_autoptr(TetherDetachedCallback) second = NULL;
  g_autofree char *cross_key = NULL;
  g_autofree char *cross_listener = NULL;
  const char *args[2] = { NULL, NULL };
  char **lines;
  TetherClient *client;
  CallResult r;

  client = client_connect (f, listener2);
  second = tether_peer_get_detached_callback (f->peers->pdata[f->peers->len - 1]);
  g_assert_nonnull (second);
  client_close (f, client);
  g_assert_cmpstr (_tether_detached_callback_get_session (first), !=,
                   _tether_detached_callback_get_session (second));
  g_assert_cmpuint (_tether_callback_listener_get_n_sessions (listener2), ==, 1);

  /* The second client's session signed with the first's key: refused by
   * the second client's listener. */
  cross_key = craft (_tether_detached_callback_get_session (second),
                     _tether_detached_callback_get_key (first), 1, now_ms () + 30000);
  args[0] = cross_key;
  lines = attacker_run (tether_callback_listener_get_uris (listener2)[0], args);
  ASSERT_REJECTED (lines[0]);
  g_assert_nonnull (strstr (lines[0], "wrong signature"));
  g_strfreev (lines);

  /* The second client's session, correctly signed, delivered to the
   * first client's listener: a session it never had. */
  cross_listener = craft (_tether_detached_callback_get_session (second),
                          _tether_detached_callback_get_key (second), 1, now_ms () + 30000);
  args[0] = cross_listener;
  lines = attacker_run (tether_callback_listener_get_uris (f->listener)[0], args);
  ASSERT_REJECTED (lines[0]);
  g_assert_nonnull (strstr (lines[0], "unknown session"));
  g_strfreev (lines);
  g_assert_cmpuint (f->rejected, ==, 2);
  g_assert_cmpuint (f->delivered, ==, 0);

  /* Each server-side session delivers to its own listener (seq 1 each:
   * the refusals above consumed nothing). */
  detached_call (first, -1, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);
  detached_call (second, -1, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);
  g_assert_cmpuint (f->delivered, ==, 2);

  /* Control: the crafted delivery, with the next sequence number, where
   * it belongs is accepted (so the refusals above were about the session,
   * not the crafting). */
  g_free (cross_listener);
  cross_listener = craft (_tether_detached_callback_get_session (second),
                          _tether_detached_callback_get_key (second), 2, now_ms () + 30000);
  args[0] = cross_listener;
  lines = attacker_run (tether_callback_listener_get_uris (listener2)[0], args);
  g_assert_true (g_str_has_prefix (lines[0], "result "));
  g_strfreev (lines);
  g_assert_cmpuint (f->delivered, ==, 3);

  tether_callback_listener_close (listener2);
  g_assert_finalize_object (g_steal_pointer (&listener2));
}

/* -- (e) expired ------------------------------------------------------- */

static void
test_expired (Fixture       *f,
              gconstpointer  user_data)
{
  g_autoptr(TetherDetachedCallback) detached = session_after_disconnect (f);
  g_autoptr(TetherDetachedCallback) brief = NULL;
  const char *session = _tether_detached_callback_get_session (detached);
  const guint8 *key = _tether_detached_callback_get_key (detached);
  g_autofree char *past = craft (session, key, 100, now_ms () - 2000);
  g_autofree char *far = craft (session, key, 101, now_ms () + 10 * 60000);
  g_autofree char *late = NULL;
  const char *args[3] = { past, far, NULL };
  char **lines;
  CallResult r;

  /* Correctly signed, fresh sequence numbers, but expired, or claiming
   * to stay valid for ten minutes. */
  lines = attacker_run (tether_callback_listener_get_uris (f->listener)[0], args);
  ASSERT_REJECTED (lines[0]);
  g_assert_nonnull (strstr (lines[0], "expired"));
  ASSERT_REJECTED (lines[1]);
  g_assert_nonnull (strstr (lines[1], "too far ahead"));
  g_strfreev (lines);
  g_assert_cmpuint (f->rejected, ==, 2);

  /* A session whose validity ran out: the server sends nothing, and the
   * listener accepts nothing, however well signed. */
  g_object_set (f->server, "detached-callback-validity", 300, NULL);
  brief = session_after_disconnect (f);
  while (g_get_real_time () <= tether_detached_callback_get_expiration_time (brief))
    tether_test_spin_ms (50);
  detached_call (brief, -1, &r);
  g_assert_error (r.error, TETHER_ERROR, TETHER_ERROR_CALLBACK_REJECTED);
  call_result_clear (&r);
  g_assert_cmpuint (f->rejected, ==, 2);   /* nothing was sent */

  late = craft (_tether_detached_callback_get_session (brief),
                _tether_detached_callback_get_key (brief), 1, now_ms () + 30000);
  args[0] = late;
  args[1] = NULL;
  lines = attacker_run (tether_callback_listener_get_uris (f->listener)[0], args);
  ASSERT_REJECTED (lines[0]);
  g_assert_nonnull (strstr (lines[0], "validity ended"));
  g_strfreev (lines);
  g_assert_cmpuint (f->rejected, ==, 3);
  g_assert_cmpuint (f->delivered, ==, 0);

  /* The long session is unaffected. */
  detached_call (detached, -1, &r);
  g_assert_no_error (r.error);
  call_result_clear (&r);
  g_assert_cmpuint (f->delivered, ==, 1);
}

/* -- calls queued behind a slow one ------------------------------------ */

/* Calls on one object go out one at a time; one waiting behind a call
 * that takes a minute still fails at its own 1 s deadline, and one
 * cancelled while waiting fails at once, while the slow one is still on
 * the wire. */
static void
test_queued_deadline (Fixture       *f,
                      gconstpointer  user_data)
{
  g_autoptr(TetherDetachedCallback) detached = session_after_disconnect (f);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  CallResult slow = { 0 }, quick = { 0 }, cancelled = { 0 };

  tether_detached_callback_call_async (detached, "stall", NULL, 60000, NULL, call_cb, &slow);
  TETHER_TEST_WAIT_UNTIL (f->stalled != NULL);

  tether_detached_callback_call_async (detached, "job-done",
                                       g_variant_new ("(sx)", "job-1", (gint64) 1),
                                       1000, NULL, call_cb, &quick);
  tether_detached_callback_call_async (detached, "job-done",
                                       g_variant_new ("(sx)", "job-2", (gint64) 2),
                                       60000, cancellable, call_cb, &cancelled);
  g_cancellable_cancel (cancellable);
  TETHER_TEST_WAIT_UNTIL (cancelled.done);
  g_assert_error (cancelled.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (slow.done);

  TETHER_TEST_WAIT_UNTIL (quick.done);
  g_assert_error (quick.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_false (slow.done);
  g_assert_cmpuint (f->delivered, ==, 0);

  /* The slow one is unaffected, and the queue is empty behind it. */
  tether_invocation_return_value (f->stalled, g_variant_new ("(s)", "late"));
  g_clear_object (&f->stalled);
  TETHER_TEST_WAIT_UNTIL (slow.done);
  g_assert_no_error (slow.error);
  call_result_clear (&slow);
  call_result_clear (&quick);
  call_result_clear (&cancelled);
  g_assert_cmpuint (f->delivered, ==, 0);
}

/* -- on unix: another uid, with the right key --------------------------- */

static void
test_other_uid (Fixture       *f,
                gconstpointer  user_data)
{
  g_autoptr(TetherDetachedCallback) detached = NULL;
  const char *path = tether_callback_listener_get_uris (f->listener)[0] + strlen ("unix:");
  g_autofree char *valid = NULL;
  const char *args[4] = { "--uid", "65534", NULL, NULL };
  char **lines;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root to deliver as another uid");
      return;
    }

  detached = session_after_disconnect (f);
  valid = craft (_tether_detached_callback_get_session (detached),
                 _tether_detached_callback_get_key (detached), 1, now_ms () + 30000);

  /* The key leaked to another user (nobody): a perfectly signed delivery
   * from a process that is not the server's uid is still refused. */
  g_assert_cmpint (g_chmod (f->dir, 0755), ==, 0);
  g_assert_cmpint (g_chmod (path, 0777), ==, 0);
  args[2] = valid;
  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE,
                         "Rejected a detached callback (job-done) from unix uid=65534 *: "
                         "delivered by uid 65534, but the session's server * runs as uid 0");
  lines = attacker_run (tether_callback_listener_get_uris (f->listener)[0], args);
  g_test_assert_expected_messages ();
  ASSERT_REJECTED (lines[0]);
  g_assert_nonnull (strstr (lines[0], "delivered by uid 65534"));
  g_strfreev (lines);
  g_assert_cmpuint (f->delivered, ==, 0);

  /* The same bytes from the server's uid pass: it was the uid. */
  lines = attacker_run (tether_callback_listener_get_uris (f->listener)[0], args + 2);
  g_assert_true (g_str_has_prefix (lines[0], "result "));
  g_strfreev (lines);
  g_assert_cmpuint (f->delivered, ==, 1);
}

/* -- (f) a server that does not allow detached callbacks ---------------- */

static void
test_disabled (Fixture       *f,
               gconstpointer  user_data)
{
  gboolean allowed = TRUE;
  TetherClient *client;

  g_object_set (f->server, "allow-detached-callbacks", FALSE, NULL);
  g_object_get (f->server, "allow-detached-callbacks", &allowed, NULL);
  g_assert_false (allowed);

  /* The client still connects; it says it has no session. */
  g_test_expect_message ("Tether", G_LOG_LEVEL_WARNING,
                         "*refused detached callbacks: detached callbacks are disabled*");
  client = client_connect (f, f->listener);
  g_test_assert_expected_messages ();
  g_assert_true (tether_client_is_connected (client));
  g_assert_null (tether_peer_get_detached_callback (f->peers->pdata[0]));
  g_assert_cmpuint (_tether_callback_listener_get_n_sessions (f->listener), ==, 0);
  client_close (f, client);
}

/* -- (g) an address that is not the peer's own --------------------------- */

/* Connects a client announcing @listener, which the server must refuse
 * (its log matching @logged) without ever dialling it. */
static void
assert_refused (Fixture                *f,
                TetherCallbackListener *listener,
                const char             *logged)
{
  g_autoptr(TetherStatistics) stats = NULL;
  TetherClient *client;

  g_test_expect_message ("Tether", G_LOG_LEVEL_MESSAGE, logged);
  g_test_expect_message ("Tether", G_LOG_LEVEL_WARNING, "*refused detached callbacks*");
  client = client_connect (f, listener);
  g_test_assert_expected_messages ();
  g_assert_true (tether_client_is_connected (client));
  g_assert_null (tether_peer_get_detached_callback (f->peers->pdata[f->peers->len - 1]));
  g_assert_cmpuint (_tether_callback_listener_get_n_sessions (listener), ==, 0);
  client_close (f, client);

  /* Never dialled: the listener never even got a hello. */
  stats = tether_server_get_statistics (_tether_callback_listener_get_server (listener));
  g_assert_cmpuint (stats->calls_received, ==, 0);
}

static void
test_refused_other_host (Fixture       *f,
                         gconstpointer  user_data)
{
  g_autoptr(TetherCallbackListener) listener = tether_callback_listener_new ();
  g_autoptr(TetherCallbackListener) named = tether_callback_listener_new ();
  g_autoptr(GError) error = NULL;

  /* The peer connects from 127.0.0.1 and points at 127.0.0.2 — another
   * host, as far as the server can tell. */
  g_assert_true (tether_callback_listener_listen (listener, "ws://127.0.0.2:0", &error));
  g_assert_no_error (error);
  assert_refused (f, listener, "Refusing detached callbacks to ws://127.0.0.2:*"
                               "127.0.0.2 is not the address this peer connected from (127.0.0.1)");

  /* A host name proves nothing (it is resolved later, by whoever): only
   * the address itself is accepted. */
  g_assert_true (tether_callback_listener_listen (named, "ws://localhost:0", &error));
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (tether_callback_listener_get_uris (named)[0],
                                   "ws://localhost:"));
  assert_refused (f, named,
                  "Refusing detached callbacks to ws://localhost:*must be an IP address*");

  tether_callback_listener_close (listener);
  g_assert_finalize_object (g_steal_pointer (&listener));
  tether_callback_listener_close (named);
  g_assert_finalize_object (g_steal_pointer (&named));
}

static void
test_refused_other_user (Fixture       *f,
                         gconstpointer  user_data)
{
  g_autoptr(TetherCallbackListener) other = NULL;
  g_autoptr(TetherCallbackListener) linked = NULL;
  g_autoptr(TetherCallbackListener) tcp = NULL;
  g_autofree char *path = g_build_filename (f->dir, "other.sock", NULL);
  g_autofree char *link = g_build_filename (f->dir, "linked.sock", NULL);
  g_autofree char *moved = g_build_filename (f->dir, "moved.sock", NULL);
  g_autofree char *logged = NULL;
  g_autoptr(GError) error = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root to chown a socket to another user");
      return;
    }

  /* A socket that belongs to another user (nobody), while the peer is
   * root: the server refuses to dial it. */
  other = listener_new (f, TETHER_TRANSPORT_UNIX, "other");
  g_assert_cmpint (chown (path, 65534, 65534), ==, 0);
  logged = g_strdup_printf ("Refusing detached callbacks to unix:%s, announced by unix uid=0 *: "
                            "%s is not a socket owned by uid 0 (the peer's): owned by uid 65534",
                            path, path);
  assert_refused (f, other, logged);
  g_clear_pointer (&logged, g_free);

  /* A symbolic link is not the peer's socket, even when it points at a
   * socket of the peer's own: the link could be turned elsewhere. */
  linked = listener_new (f, TETHER_TRANSPORT_UNIX, "linked");
  g_assert_cmpint (g_rename (link, moved), ==, 0);
  g_assert_cmpint (symlink (moved, link), ==, 0);
  logged = g_strdup_printf ("Refusing detached callbacks to unix:%s, *: not a socket", link);
  assert_refused (f, linked, logged);

  /* A peer on unix: has no IP address to match a ws:// address with. */
  tcp = tether_callback_listener_new ();
  g_assert_true (tether_callback_listener_listen (tcp, "ws://127.0.0.1:0", &error));
  g_assert_no_error (error);
  assert_refused (f, tcp, "Refusing detached callbacks to ws://127.0.0.1:*needs a peer connected "
                          "over ws:// or wss://*");

  tether_callback_listener_close (other);
  g_assert_finalize_object (g_steal_pointer (&other));
  tether_callback_listener_close (linked);
  g_assert_finalize_object (g_steal_pointer (&linked));
  tether_callback_listener_close (tcp);
  g_assert_finalize_object (g_steal_pointer (&tcp));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/tether/detached/unix/after-disconnect", Fixture, &unix_data, fixture_set_up,
              test_after_disconnect, fixture_tear_down);
  g_test_add ("/tether/detached/ws/after-disconnect", Fixture, &tcp_data, fixture_set_up,
              test_after_disconnect, fixture_tear_down);
  g_test_add ("/tether/detached/wss/after-disconnect", Fixture, &tls_data, fixture_set_up,
              test_after_disconnect, fixture_tear_down);
  g_test_add ("/tether/detached/wss/authenticated", Fixture, &tls_data, fixture_set_up,
              test_authenticated, fixture_tear_down);
  g_test_add ("/tether/detached/wss/untrusted-listener", Fixture, &tls_data, fixture_set_up,
              test_untrusted_listener, fixture_tear_down);
  g_test_add ("/tether/detached/unix/forged", Fixture, &unix_data, fixture_set_up,
              test_forged, fixture_tear_down);
  g_test_add ("/tether/detached/wss/forged", Fixture, &tls_data, fixture_set_up,
              test_forged, fixture_tear_down);
  g_test_add ("/tether/detached/unix/forged-long-session", Fixture, &unix_data, fixture_set_up,
              test_forged_long_session, fixture_tear_down);
  g_test_add ("/tether/detached/unix/forged-claims", Fixture, &unix_data, fixture_set_up,
              test_forged_claims, fixture_tear_down);
  g_test_add ("/tether/detached/unix/replay", Fixture, &unix_data, fixture_set_up,
              test_replay, fixture_tear_down);
  g_test_add ("/tether/detached/wss/replay", Fixture, &tls_data, fixture_set_up,
              test_replay, fixture_tear_down);
  g_test_add ("/tether/detached/unix/other-session", Fixture, &unix_data, fixture_set_up,
              test_other_session, fixture_tear_down);
  g_test_add ("/tether/detached/wss/other-session", Fixture, &tls_data, fixture_set_up,
              test_other_session, fixture_tear_down);
  g_test_add ("/tether/detached/unix/expired", Fixture, &unix_data, fixture_set_up,
              test_expired, fixture_tear_down);
  g_test_add ("/tether/detached/wss/expired", Fixture, &tls_data, fixture_set_up,
              test_expired, fixture_tear_down);
  g_test_add ("/tether/detached/unix/queued-deadline", Fixture, &unix_data, fixture_set_up,
              test_queued_deadline, fixture_tear_down);
  g_test_add ("/tether/detached/wss/queued-deadline", Fixture, &tls_data, fixture_set_up,
              test_queued_deadline, fixture_tear_down);
  g_test_add ("/tether/detached/unix/other-uid", Fixture, &unix_data, fixture_set_up,
              test_other_uid, fixture_tear_down);
  g_test_add ("/tether/detached/unix/disabled", Fixture, &unix_data, fixture_set_up,
              test_disabled, fixture_tear_down);
  g_test_add ("/tether/detached/wss/disabled", Fixture, &tls_data, fixture_set_up,
              test_disabled, fixture_tear_down);
  g_test_add ("/tether/detached/ws/refused-other-host", Fixture, &tcp_data, fixture_set_up,
              test_refused_other_host, fixture_tear_down);
  g_test_add ("/tether/detached/unix/refused-other-user", Fixture, &unix_data, fixture_set_up,
              test_refused_other_user, fixture_tear_down);

  return g_test_run ();
}
