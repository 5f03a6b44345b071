/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* TetherServer's insides, for the files that make it up:
 * tether-server.c (the object, listening, connections, methods, drain),
 * tether-server-describe.c (rpc.discover and method descriptions) and
 * tether-server-security.c (users, impersonation). Nothing else includes
 * this; GTK shares GtkWidget's private struct among its files the same
 * way. */

#include "tether-admission-private.h"
#include "tether-auth-private.h"
#include "tether-handshake-private.h"
#include "tether-impersonation-private.h"
#include "tether-limits-private.h"
#include "tether-method-table-private.h"
#include "tether-server.h"

G_BEGIN_DECLS

struct _TetherServer
{
  GObject            parent_instance;

  GMainContext      *context;
  TetherScheduler   *scheduler;
  TetherMethodTable *methods;
  GPtrArray         *listeners;
  GPtrArray         *uris;          /* NULL-terminated */
  GPtrArray         *trusted_proxies; /* GInetAddressMask*: may send PROXY headers */
  GHashTable        *connections;   /* TetherConnection* → TetherPeer* */
  gboolean           closed;
  gboolean           draining;      /* /readyz answers 503 */
  GTask             *shutdown;      /* tether_server_shutdown_async() under way */
  TetherAdmission   *admission;     /* who gets in; the connection and TLS pools */
  /* The shared pools, charged per identity (see tether-pool-private.h). */
  TetherPool        *callback_pool;   /* callbacks waiting for an answer */
  TetherPool        *invocation_pool; /* incoming calls and notifications in progress */
  TetherAuthPolicy  *auth_policy;
  TetherStatistics   closed_stats;   /* counters of connections gone */

  GTlsCertificate   *tls_certificate;
  GTlsDatabase      *tls_client_database;
  gboolean           allow_insecure_remote;
  char             **allowed_origins;
  gboolean           allow_detached_callbacks;
  GTlsDatabase      *detached_callback_tls_database;

  guint              limits[TETHER_N_LIMITS]; /* the limit properties (tether-limits.c);
                                               * max-connections 0: from RLIMIT_NOFILE */
  TetherMisbehaviorAction misbehavior_action;
  TetherHelloExtension detached_extension; /* the hello's "detached" member */
  GPtrArray         *hello_extensions;   /* TetherHelloExtension*, shared by the connections */
  TetherImpPolicy   *imp_policy;

  /* rpc.discover (tether-discover.c) */
  char              *service_title;
  char              *service_version;
  char              *service_description;
  TetherAccess       discover_access;
  GHashTable        *callback_infos;     /* name → TetherMethodInfo* the server calls */
};

enum {
  PROP_0,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_CLIENT_DATABASE,
  PROP_ALLOW_INSECURE_REMOTE,
  PROP_ALLOWED_ORIGINS,
  PROP_ALLOW_PLAIN_SCRAM,
  PROP_ALLOW_ANONYMOUS,
  PROP_MISBEHAVIOR_ACTION,
  PROP_ALLOW_DETACHED_CALLBACKS,
  PROP_DETACHED_CALLBACK_TLS_DATABASE,
  PROP_CALLBACK_IMPERSONATION_LEVEL,
  PROP_REMOTE_CALLBACK_IMPERSONATION_LEVEL,
  PROP_DANGEROUSLY_ALLOW_PRIVILEGED_IMPERSONATION,
  PROP_SIGNING_CERTIFICATE,
  PROP_SERVICE_TITLE,
  PROP_SERVICE_VERSION,
  PROP_SERVICE_DESCRIPTION,
  PROP_DISCOVER_ACCESS,
  N_PROPS
};

/* The properties, for notification from every file. */
extern GParamSpec *_tether_server_properties[N_PROPS];

/* tether-server-describe.c: (re)registers rpc.discover with the access
 * the discover-access property gives it. */
void _tether_server_discover_register (TetherServer *self);

G_END_DECLS
