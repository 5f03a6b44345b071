/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <tether.h>

G_BEGIN_DECLS

/* Iterates the thread-default context until @cond holds; a give-up timer
 * fails the test instead of hanging. Nothing sleeps. */
#define TETHER_TEST_WAIT_UNTIL(cond) \
  G_STMT_START { \
    GSource *_give_up = tether_test_give_up_source_new (#cond, __FILE__, __LINE__); \
    while (!(cond)) \
      g_main_context_iteration (g_main_context_get_thread_default (), TRUE); \
    g_source_destroy (_give_up); \
    g_source_unref (_give_up); \
  } G_STMT_END

GSource *tether_test_give_up_source_new (const char *what,
                                         const char *file,
                                         int         line);

/* Runs the thread-default context for @ms milliseconds. */
void     tether_test_spin_ms            (guint       ms);

/* Writes a test CA and certificates signed by it into @dir, generated
 * fresh by GnuTLS (no private key is ever committed):
 * ca.pem, server.pem + server-key.pem (SAN localhost, 127.0.0.1),
 * client.pem + client-key.pem, relay.pem + relay-key.pem (another server
 * certificate from the same CA), signer.pem + signer-key.pem and
 * signer2.pem + signer2-key.pem (ECDSA P-256 token-signing certificates),
 * signer-ed25519.pem + signer-ed25519-key.pem (an Ed25519 one),
 * and other-ca.pem + other-server.pem (an
 * unrelated CA). */
void     tether_test_make_certificates  (const char *dir);

/* @dir/@name.pem with its key @dir/@name-key.pem (as made above). */
GTlsCertificate *tether_test_load_certificate (const char *dir,
                                               const char *name);
/* A database trusting the certificates in @dir/@file. */
GTlsDatabase    *tether_test_load_ca          (const char *dir,
                                               const char *file);

/* Handlers several suites share: "echo" answers its params (null without
 * any), "subtract" answers minuend − subtrahend for "(xx)". */
void     tether_test_echo               (TetherInvocation *invocation,
                                         gpointer          user_data);
void     tether_test_subtract           (TetherInvocation *invocation,
                                         gpointer          user_data);

/* Connects @client and waits: NULL on success, else the error. */
GError  *tether_test_client_connect     (TetherClient *client);

/* A GSpawnChildSetupFunc (or a part of one, after any setuid(), which
 * clears it): the child is killed when the test process dies, whatever
 * happens to the test. */
void     tether_test_die_with_parent    (gpointer     user_data);

G_END_DECLS
