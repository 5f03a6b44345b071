/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* TetherClient's insides, for the files that make it up: tether-client.c
 * (the object, connecting, calls), tether-client-follow.c (following a
 * server that goes away: reconnecting, and the calls that wait for the
 * new connection) and tether-client-describe.c (its methods and their
 * descriptions). Nothing else includes this; as with TetherServer
 * (tether-server-impl-private.h), GTK shares GtkWidget's struct so. */

#include "tether-callback-listener.h"
#include "tether-client.h"
#include "tether-connection-private.h"
#include "tether-impersonation-private.h"
#include "tether-limits-private.h"
#include "tether-method-table-private.h"

G_BEGIN_DECLS

struct _TetherClient
{
  GObject            parent_instance;

  GMainContext      *context;
  TetherScheduler   *scheduler;
  TetherMethodTable *methods;
  char              *uri;
  TetherConnection  *conn;         /* set once the hello succeeded */
  GTask             *connecting;   /* the connect in progress */
  TetherIdentity    *server_identity;

  GTlsDatabase      *tls_database;
  GTlsCertificate   *tls_certificate;
  gint64             expected_server_uid;
  gboolean           allow_insecure;
  guint              limits[TETHER_N_LIMITS]; /* the limit properties (tether-limits.c) */
  TetherStatistics   closed_stats;   /* counters of earlier connections */
  char              *username;
  char              *password;
  gboolean           require_channel_binding;
  gboolean           binary_frames;
  char              *pinned_sha256;
  char              *auth_mechanism;
  TetherCallbackListener *callback_listener;
  TetherImpPolicy   *imp_policy;

  /* Following a server that goes away (reconnect): the connections sent
   * away, finishing their calls; the calls waiting for a new connection
   * (GTask*, each with its deadline in the scheduler); the next attempt. */
  gboolean           reconnect;
  gboolean           reconnecting;  /* from a loss until a new connection */
  gboolean           closing;       /* inside tether_client_close() */
  GPtrArray         *retired;       /* TetherConnection* */
  GQueue             queue;
  TetherDeadline     retry_deadline;
  guint              attempts;
  GCancellable      *retry_cancellable;
};


enum {
  PROP_0,
  PROP_URI,
  PROP_TLS_DATABASE,
  PROP_TLS_CERTIFICATE,
  PROP_EXPECTED_SERVER_UID,
  PROP_ALLOW_INSECURE,
  PROP_CONNECTED,
  PROP_REQUIRE_CHANNEL_BINDING,
  PROP_BINARY_FRAMES,
  PROP_TLS_PINNED_SHA256,
  PROP_AUTH_MECHANISM,
  PROP_IMPERSONATION_LEVEL,
  PROP_SIGNING_CERTIFICATE,
  PROP_RECONNECT,
  N_PROPS
};

extern GParamSpec *_tether_client_properties[N_PROPS];

enum {
  SIGNAL_DISCONNECTED,
  SIGNAL_GOING_AWAY,
  SIGNAL_RECONNECTED,
  N_SIGNALS
};

extern guint _tether_client_signals[N_SIGNALS];

/* tether-client-describe.c: answers the server's rpc.discover. */
void     _tether_client_discover_cb        (TetherInvocation *invocation,
                                            gpointer          user_data);

/* tether-client-follow.c */
void     _tether_client_reconnect_schedule (TetherClient  *self);
/* Stops following: no more attempts, and the waiting calls fail. */
void     _tether_client_reconnect_stop     (TetherClient  *self,
                                            const char    *message);
/* A connection is up: the waiting calls go out on it. */
void     _tether_client_queue_flush        (TetherClient  *self);
void     _tether_client_queue_fail_all     (TetherClient  *self,
                                            const char    *message);
/* No usable connection: with reconnect following, the call waits (TRUE);
 * otherwise FALSE and the caller fails it. */
gboolean _tether_client_call_without_connection (TetherClient             *self,
                                                 const char               *method,
                                                 GVariant                 *params,
                                                 TetherImpersonationLevel  level,
                                                 TetherCredentials        *act_as,
                                                 int                       timeout_msec,
                                                 GCancellable             *cancellable,
                                                 gpointer                  source_tag,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);

G_END_DECLS
