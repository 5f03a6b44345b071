/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * TetherServer:
 *
 * Serves methods to clients and calls them back.
 *
 * A server listens on any number of URIs — `unix:/PATH`,
 * `ws://HOST:PORT` (loopback only unless
 * [property@Tether.Server:allow-insecure-remote] is set: plaintext beyond
 * loopback loses every verification guarantee) and `wss://HOST:PORT` (with
 * [property@Tether.Server:tls-certificate]). Port 0 picks a free port;
 * [method@Tether.Server.get_uris] tells the real ones.
 *
 * Methods are added with [method@Tether.Server.add_method], which also
 * declares who may call them. Each connected client is a
 * [class@Tether.Peer], announced by [signal@Tether.Server::peer-connected];
 * the server calls it back through the peer, or through the
 * [class@Tether.Invocation] of the call being handled.
 *
 * Tether accepts its sockets, runs TLS and the WebSocket itself, and puts
 * a guard stream between the socket and the WebSocket, so that limits
 * hold whatever a client sends (see `docs/limits.md`). An idle connection
 * costs memory, never work on the main loop iterations that serve others.
 *
 * All I/O, signals and handlers run on the main context that was
 * thread-default when the server was created.
 *
 * Since: 0.1
 */

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/resource.h>
#include "tether-enum-types.h"
#include <sys/stat.h>

#include "tether-auth-private.h"
#include "tether-connection-private.h"
#include "tether-handshake-private.h"
#include "tether-error.h"
#include "tether-identity-private.h"
#include "tether-impersonation-private.h"
#include "tether-invocation.h"
#include "tether-log-private.h"
#include "tether-method-table-private.h"
#include "tether-method-info-private.h"
#include "tether-discover-private.h"
#include "tether-detached-private.h"
#include "tether-peer-private.h"
#include "tether-server-private.h"
#include "tether-server.h"
#include "tether-accept-private.h"
#include "tether-transport-private.h"

typedef struct
{
  TetherServer        *server;  /* unowned */
  TetherListener      *listener;
} Listener;

typedef struct _Handshake Handshake;

/* A connection's place in the server's connection pool, from accept to
 * close: its handshake holds it, then the connection (as object data). */
typedef struct
{
  TetherPoolEntry   entry;   /* first */
  TetherServer     *server;  /* unowned */
  Handshake        *hs;      /* while handshaking */
  TetherConnection *conn;    /* once open (unowned: the server's table holds it) */
} Slot;

/* A connection between accept and an open WebSocket: the transport's
 * accept does the work, the server charges its pools and keeps the
 * deadline. */
struct _Handshake
{
  TetherDeadline       deadline;  /* first: the scheduler hands it back */
  TetherServer        *server;    /* unowned: the server frees us first */
  TetherAccept        *accept;
  Slot                *slot;      /* in the connection pool */
  TetherPoolEntry      tls_slot;  /* in the TLS handshake pool, during TLS */
};

struct _TetherServer
{
  GObject            parent_instance;

  GMainContext      *context;
  TetherScheduler   *scheduler;
  TetherMethodTable *methods;
  GPtrArray         *listeners;
  GPtrArray         *uris;          /* NULL-terminated */
  GHashTable        *handshakes;    /* Handshake* set */
  GHashTable        *connections;   /* TetherConnection* → TetherPeer* */
  gboolean           closed;
  /* The shared pools, charged per identity (see tether-pool-private.h). */
  TetherPool        *connection_pool; /* handshakes and connections */
  TetherPool        *tls_pool;        /* TLS handshakes in progress */
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

G_DEFINE_FINAL_TYPE (TetherServer, tether_server, G_TYPE_OBJECT)

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

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_PEER_CONNECTED,
  SIGNAL_PEER_DISCONNECTED,
  SIGNAL_AUTHORIZE_CALL,
  SIGNAL_PEER_MISBEHAVED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];


static void
server_limits (TetherServer *self,
               TetherLimits *limits)
{
  _tether_limits_fill (self->limits, limits);
  limits->misbehavior_action = self->misbehavior_action;
}

/* Every action taken against a peer: one log line naming it and the
 * evidence, and the signal, so an operator learns who it was. */
static void
server_report (TetherServer      *self,
               TetherPeer        *peer,
               TetherIdentity    *identity,
               TetherMisbehavior  reason,
               const char        *details,
               const char        *action)
{
  g_autofree char *who = tether_identity_to_string (identity);
  g_autoptr(GEnumClass) reasons = g_type_class_ref (TETHER_TYPE_MISBEHAVIOR);

  /* The nick is static, as the limiter wants its reasons. */
  _tether_log_limited (self->scheduler, G_LOG_LEVEL_MESSAGE, g_enum_get_value (reasons, reason)->value_nick,
                       _tether_identity_get_pool_key (identity),
                       "Peer %s misbehaved (%s): %s; %s", who,
                       g_enum_get_value (reasons, reason)->value_nick, details, action);
  g_signal_emit (self, signals[SIGNAL_PEER_MISBEHAVED], 0, peer, identity, reason, details);
}

/* ---------------------------------------------------------------------- */
/* Connections                                                            */

static gboolean
connection_authorize (gpointer          owner,
                      TetherConnection *conn,
                      TetherInvocation *invocation)
{
  TetherServer *self = owner;
  gboolean allowed = FALSE;

  g_signal_emit (self, signals[SIGNAL_AUTHORIZE_CALL], 0,
                 _tether_connection_get_public (conn), invocation, &allowed);
  return allowed;
}

static void
connection_ready (gpointer          owner,
                  TetherConnection *conn)
{
  TetherServer *self = owner;
  TetherPeer *peer = g_hash_table_lookup (self->connections, conn);

  g_object_set_data (G_OBJECT (peer), "tether-announced", GINT_TO_POINTER (TRUE));
  g_signal_emit (self, signals[SIGNAL_PEER_CONNECTED], 0, peer);
}

static void
connection_closed (gpointer          owner,
                   TetherConnection *conn,
                   const GError     *error)
{
  TetherServer *self = owner;
  g_autoptr(TetherPeer) peer = NULL;

  if (!g_hash_table_steal_extended (self->connections, conn, NULL, (gpointer *) &peer))
    return;

  g_debug ("Peer disconnected: %s", error ? error->message : "closed");
  _tether_connection_add_statistics (conn, &self->closed_stats);
  self->closed_stats.connections--;
  /* Its place in the connection pool goes with it. */
  g_object_set_data (G_OBJECT (conn), "tether-slot", NULL);
  if (g_object_get_data (G_OBJECT (peer), "tether-announced") != NULL)
    g_signal_emit (self, signals[SIGNAL_PEER_DISCONNECTED], 0, peer);
  g_object_unref (conn);
}

static void
connection_misbehaved (gpointer           owner,
                       TetherConnection  *conn,
                       TetherMisbehavior  reason,
                       const char        *details,
                       const char        *action)
{
  TetherServer *self = owner;

  server_report (self, g_hash_table_lookup (self->connections, conn),
                 _tether_connection_get_identity (conn), reason, details, action);
}

/* A client announced a callback listener in its hello. */
/* The hello's "detached" member: a session for detached callbacks, if
 * this server allows them (see tether-detached-callback.c). */
static GVariant *
hello_detached_answer (TetherConnection *conn,
                       GVariant         *request,
                       gpointer          user_data)
{
  TetherServer *self = user_data;
  TetherPeer *peer = g_hash_table_lookup (self->connections, conn);
  g_autoptr(TetherDetachedCallback) detached = NULL;
  TetherDetachedPolicy policy = {
    .allow = self->allow_detached_callbacks,
    .validity_ms = self->limits[TETHER_LIMIT_DETACHED_CALLBACK_VALIDITY],
    .default_timeout_ms = self->limits[TETHER_LIMIT_DEFAULT_TIMEOUT],
    .max_timeout_ms = self->limits[TETHER_LIMIT_MAX_TIMEOUT],
    .tls_database = self->detached_callback_tls_database != NULL
                      ? self->detached_callback_tls_database : self->tls_client_database,
  };
  GVariant *answer;

  if (peer == NULL)
    return NULL;
  answer = _tether_detached_callback_hello (conn, request, &policy, &detached);
  _tether_peer_set_detached_callback (peer, detached);
  return answer;
}

static const TetherConnectionOwnerFuncs server_owner_funcs = {
  .authorize = connection_authorize,
  .ready = connection_ready,
  .closed = connection_closed,
  .misbehaved = connection_misbehaved,
};

/* ---------------------------------------------------------------------- */
/* Accepting                                                              */

/* The effective max-connections: the property, or what the descriptor
 * limit leaves once the service's own files have their share (a
 * sixteenth, at least 64). */
static guint
effective_max_connections (TetherServer *self)
{
  struct rlimit limit;
  rlim_t headroom;

  if (self->limits[TETHER_LIMIT_MAX_CONNECTIONS] > 0)
    return self->limits[TETHER_LIMIT_MAX_CONNECTIONS];
  if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return G_MAXUINT;
  headroom = MAX (limit.rlim_cur / 16, 64);
  return limit.rlim_cur > headroom + 16 ? (guint) MIN (limit.rlim_cur - headroom, G_MAXUINT) : 16;
}

static void
slot_free (Slot *slot)
{
  _tether_pool_release (&slot->entry);
  g_free (slot);
}

static void
handshake_free (Handshake *hs)
{
  _tether_pool_release (&hs->tls_slot);
  g_clear_pointer (&hs->slot, slot_free);
  if (hs->server != NULL)
    _tether_scheduler_remove (hs->server->scheduler, &hs->deadline);
  g_clear_pointer (&hs->accept, _tether_accept_free);
  g_free (hs);
}

static TetherIdentity *
handshake_identity (Handshake *hs)
{
  return _tether_accept_get_identity (hs->accept);
}

/* The connection pool was full and this identity held the most: its
 * newest connection gives way to another identity's. */
static void
slot_evicted (TetherPoolEntry *entry)
{
  Slot *slot = (Slot *) entry;
  TetherServer *self = slot->server;
  g_autofree char *details = g_strdup_printf ("holds the most of the server's %u connections, "
                                              "which are all in use: its newest gave way to "
                                              "another peer's", _tether_pool_get_max (self->connection_pool));

  if (slot->hs != NULL)
    {
      server_report (self, NULL, handshake_identity (slot->hs), TETHER_MISBEHAVIOR_HOGGING, details,
                     "closing that connection");
      g_hash_table_remove (self->handshakes, slot->hs);
    }
  else if (slot->conn != NULL)
    {
      g_autoptr(TetherConnection) conn = g_object_ref (slot->conn);
      g_autoptr(GError) error = g_error_new (TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                                             "The server is full, and this peer's identity holds "
                                             "the most of its connections");

      server_report (self, g_hash_table_lookup (self->connections, conn),
                     _tether_connection_get_identity (conn), TETHER_MISBEHAVIOR_HOGGING, details,
                     "closing that connection");
      _tether_connection_close (conn, error);
    }
}

/* The TLS handshake pool was full and this address held the most: its
 * oldest handshake gives way to another address's. */
static void
tls_slot_evicted (TetherPoolEntry *entry)
{
  Handshake *hs = G_STRUCT_MEMBER_P (entry, -G_STRUCT_OFFSET (Handshake, tls_slot));
  g_autofree char *details = g_strdup_printf ("holds the most of the server's %u TLS handshake "
                                              "slots, which are all in use: its oldest handshake "
                                              "gave way to another address's",
                                              _tether_pool_get_max (hs->server->tls_pool));

  server_report (hs->server, NULL, handshake_identity (hs), TETHER_MISBEHAVIOR_HOGGING, details,
                 "closing that connection");
  g_hash_table_remove (hs->server->handshakes, hs);
}

static void
handshake_deadline_cb (TetherDeadline *deadline)
{
  Handshake *hs = (Handshake *) deadline;
  g_autofree char *reason = g_strdup_printf ("%s within %u ms", _tether_accept_get_stage (hs->accept),
                                             hs->server->limits[TETHER_LIMIT_HANDSHAKE_TIMEOUT]);

  server_report (hs->server, NULL, handshake_identity (hs), TETHER_MISBEHAVIOR_HANDSHAKE_TIMEOUT,
                 reason, "disconnecting");
  g_hash_table_remove (hs->server->handshakes, hs);
}

/* Charges @pool for @hs's identity; FALSE (reported) if refused. */
static gboolean
handshake_acquire (Handshake       *hs,
                   TetherPool      *pool,
                   TetherPoolEntry *entry,
                   guint            share,
                   void           (*evicted) (TetherPoolEntry *entry),
                   const char      *over_share,
                   const char      *full)
{
  TetherServer *self = hs->server;
  const char *refusal = NULL;

  switch (_tether_pool_acquire (pool, entry, _tether_identity_get_pool_key (handshake_identity (hs)),
                                share, evicted))
    {
    case TETHER_POOL_GRANTED:
      return TRUE;
    case TETHER_POOL_OVER_SHARE:
      refusal = over_share;
      break;
    case TETHER_POOL_FULL:
    default:
      refusal = full;
      break;
    }
  self->closed_stats.rejected++;
  server_report (self, NULL, handshake_identity (hs), TETHER_MISBEHAVIOR_TOO_MANY_CONNECTIONS,
                 refusal, "refusing the connection");
  return FALSE;
}

/* The ClientHello is whole: the TLS handshake takes a glib-networking
 * thread, within the TLS handshake pool. */
static gboolean
accept_tls_start_cb (TetherAccept *accept,
                     gpointer      user_data)
{
  Handshake *hs = user_data;

  return handshake_acquire (hs, hs->server->tls_pool, &hs->tls_slot,
                            hs->server->limits[TETHER_LIMIT_MAX_TLS_HANDSHAKES_PER_ADDRESS],
                            tls_slot_evicted,
                            "too many TLS handshakes in progress from this address",
                            "too many TLS handshakes in progress on the server, and this "
                            "address has as many as any");
}

/* TLS is done: a verified certificate is who this is now, so count it,
 * not the address. */
static gboolean
accept_identified_cb (TetherAccept *accept,
                      gpointer      user_data)
{
  Handshake *hs = user_data;
  guint share = hs->server->limits[TETHER_LIMIT_MAX_CONNECTIONS_PER_PEER];
  g_autofree char *details = NULL;

  _tether_pool_release (&hs->tls_slot);
  if (g_strcmp0 (_tether_identity_get_pool_key (handshake_identity (hs)),
                 _tether_pool_entry_get_key (&hs->slot->entry)) == 0)
    return TRUE;

  _tether_pool_release (&hs->slot->entry);
  details = g_strdup_printf ("more than %u connections", share);
  return handshake_acquire (hs, hs->server->connection_pool, &hs->slot->entry, share,
                            slot_evicted, details, details);
}

static void
accept_done_cb (TetherAccept       *accept,
                TetherAcceptResult  result,
                TetherWebsocket    *ws,
                const char         *reason,
                gpointer            user_data)
{
  Handshake *hs = user_data;
  TetherServer *self = hs->server;
  TetherConnection *conn;
  TetherPeer *peer;
  TetherLimits limits;
  g_autoptr(TetherGuardStream) guard = NULL;

  switch (result)
    {
    case TETHER_ACCEPT_OK:
      break;
    case TETHER_ACCEPT_FORBIDDEN:
      server_report (self, NULL, handshake_identity (hs), TETHER_MISBEHAVIOR_PROTOCOL_VIOLATION,
                     reason, "refusing the connection");
      g_hash_table_remove (self->handshakes, hs);
      return;
    case TETHER_ACCEPT_REFUSED:
      /* The hook reported it. */
      g_hash_table_remove (self->handshakes, hs);
      return;
    case TETHER_ACCEPT_FAILED:
    default:
      {
        g_autofree char *who = tether_identity_to_string (handshake_identity (hs));

        _tether_log_limited (self->scheduler, G_LOG_LEVEL_MESSAGE, "handshake-failed",
                             _tether_identity_get_pool_key (handshake_identity (hs)),
                             "Handshake with %s failed: %s", who, reason);
        g_hash_table_remove (self->handshakes, hs);
        return;
      }
    }

  server_limits (self, &limits);
  conn = _tether_connection_new (TETHER_CONNECTION_ROLE_SERVER, self->scheduler, &limits,
                                 self->callback_pool, self->auth_policy, self->methods,
                                 &server_owner_funcs, self);
  /* The connection now holds its place in the pool. */
  hs->slot->hs = NULL;
  hs->slot->conn = conn;
  g_object_set_data_full (G_OBJECT (conn), "tether-slot", g_steal_pointer (&hs->slot),
                          (GDestroyNotify) slot_free);
  _tether_connection_set_imp_policy (conn, self->imp_policy);
  _tether_connection_set_invocation_pool (conn, self->invocation_pool);
  _tether_connection_set_hello_extensions (conn, self->hello_extensions);
  peer = _tether_peer_new (conn);
  g_hash_table_insert (self->connections, conn, peer);

  /* The handshake's deadline bounds the hello from here. */
  guard = _tether_accept_steal_guard (accept);
  _tether_connection_start (conn, ws, guard, handshake_identity (hs), hs->deadline.when);
  g_hash_table_remove (self->handshakes, hs);
}

static const TetherAcceptFuncs accept_funcs = {
  .tls_start = accept_tls_start_cb,
  .identified = accept_identified_cb,
  .done = accept_done_cb,
};

static void
incoming_cb (TetherListener    *tether_listener,
             GSocketConnection *connection,
             gpointer           user_data)
{
  Listener *listener = user_data;
  TetherServer *self = listener->server;
  TetherAcceptOptions options = {
    .kind = _tether_listener_get_kind (tether_listener),
    .scheduler = self->scheduler,
    .tls_certificate = self->tls_certificate,
    .tls_client_database = self->tls_client_database,
    .allowed_origins = (const char * const *) self->allowed_origins,
    .max_message_size = self->limits[TETHER_LIMIT_MAX_MESSAGE_SIZE],
  };
  Handshake *hs;

  if (self->closed)
    return;

  hs = g_new0 (Handshake, 1);
  hs->server = self;
  hs->accept = _tether_accept_new (connection, &options, &accept_funcs, hs);

  /* Refused at once, before any work: the server is full and this
   * identity is among those holding the most (otherwise the heaviest
   * gives way), or it has its share of connections already; or, over
   * TLS, of handshakes (each holds a glib-networking pool thread). */
  hs->slot = g_new0 (Slot, 1);
  hs->slot->server = self;
  hs->slot->hs = hs;
  _tether_pool_set_max (self->connection_pool, effective_max_connections (self));
  if (!handshake_acquire (hs, self->connection_pool, &hs->slot->entry,
                          self->limits[TETHER_LIMIT_MAX_CONNECTIONS_PER_PEER], slot_evicted,
                          "too many connections from this peer",
                          "too many connections on the server, and this peer holds as many "
                          "as any"))
    {
      handshake_free (hs);
      return;
    }

  g_hash_table_add (self->handshakes, hs);
  _tether_scheduler_add (self->scheduler, &hs->deadline,
                         g_get_monotonic_time () + (gint64) self->limits[TETHER_LIMIT_HANDSHAKE_TIMEOUT] * 1000,
                         handshake_deadline_cb);
  _tether_accept_start (hs->accept);
}

/* ---------------------------------------------------------------------- */
/* Listening                                                              */

static void
listener_free (Listener *listener)
{
  _tether_listener_free (listener->listener);
  g_free (listener);
}

/**
 * tether_server_listen:
 * @self: a #TetherServer
 * @uri: where to listen: `unix:/PATH`, `ws://HOST:PORT` or `wss://HOST:PORT`
 * @error: return location for a #GError
 *
 * Starts listening on @uri. Port 0 picks a free port; see
 * [method@Tether.Server.get_uris]. `ws://` on a non-loopback address is
 * refused with %TETHER_ERROR_INSECURE_TRANSPORT unless
 * [property@Tether.Server:allow-insecure-remote] is set; `wss://` needs
 * [property@Tether.Server:tls-certificate].
 *
 * Returns: %TRUE if the server is listening on @uri
 *
 * Since: 0.1
 */
gboolean
tether_server_listen (TetherServer  *self,
                      const char    *uri,
                      GError       **error)
{
  Listener *listener;

  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  g_return_val_if_fail (uri != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_return_val_if_fail (!self->closed, FALSE);

  listener = g_new0 (Listener, 1);
  listener->server = self;
  listener->listener = _tether_listener_new_for_uri (uri, self->allow_insecure_remote,
                                                     self->tls_certificate != NULL,
                                                     self->scheduler, incoming_cb, listener, error);
  if (listener->listener == NULL)
    {
      g_free (listener);
      return FALSE;
    }
  g_ptr_array_add (self->listeners, listener);
  g_ptr_array_insert (self->uris, self->uris->len - 1,
                      g_strdup (_tether_listener_get_uri (listener->listener)));
  return TRUE;
}

/**
 * tether_server_get_uris:
 * @self: a #TetherServer
 *
 * Gets the URIs the server listens on, with the ports really bound.
 *
 * Returns: (transfer none) (array zero-terminated=1): the URIs
 *
 * Since: 0.1
 */
const char * const *
tether_server_get_uris (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return (const char * const *) self->uris->pdata;
}

/* ---------------------------------------------------------------------- */
/* Methods                                                                */

/**
 * tether_server_add_method:
 * @self: a #TetherServer
 * @name: the method name (not starting with `rpc.`, which is reserved)
 * @access: who may call it
 * @handler: (scope notified) (closure user_data) (destroy destroy): the handler
 * @user_data: data for @handler
 * @destroy: (nullable): frees @user_data when the method is removed
 *
 * Adds a method without a declared signature: the handler receives named
 * parameters as `a{sv}` and positional ones as `av`. Replaces any method
 * of the same name.
 *
 * Since: 0.1
 */
void
tether_server_add_method (TetherServer        *self,
                          const char          *name,
                          TetherAccess         access,
                          TetherMethodHandler  handler,
                          gpointer             user_data,
                          GDestroyNotify       destroy)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  _tether_method_table_add (self->methods, name, NULL, NULL, access, handler, user_data, destroy);
}

/**
 * tether_server_add_method_full:
 * @self: a #TetherServer
 * @name: the method name (not starting with `rpc.`, which is reserved)
 * @signature: (nullable): the GVariant type the parameters must have, such
 *   as `(si)`, or %NULL for none
 * @param_names: (nullable) (array zero-terminated=1): with a tuple
 *   @signature, one name per member, so that callers may pass named
 *   parameters
 * @access: who may call it
 * @handler: (scope notified) (closure user_data) (destroy destroy): the handler
 * @user_data: data for @handler
 * @destroy: (nullable): frees @user_data when the method is removed
 *
 * Adds a method with declared parameters. Positional parameters fill the
 * tuple by position, named ones by @param_names; a mismatch is answered
 * with -32602 naming the offending parameter, and the handler never runs.
 *
 * Since: 0.1
 */
void
tether_server_add_method_full (TetherServer        *self,
                               const char          *name,
                               const char          *signature,
                               const char * const  *param_names,
                               TetherAccess         access,
                               TetherMethodHandler  handler,
                               gpointer             user_data,
                               GDestroyNotify       destroy)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  _tether_method_table_add (self->methods, name, signature, param_names, access,
                            handler, user_data, destroy);
}

/**
 * tether_server_remove_method:
 * @self: a #TetherServer
 * @name: the method name
 *
 * Removes a method. Calls in progress are not affected.
 *
 * Returns: %TRUE if there was such a method
 *
 * Since: 0.1
 */
gboolean
tether_server_remove_method (TetherServer *self,
                             const char   *name)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  return _tether_method_table_remove (self->methods, name);
}

void
_tether_server_set_fallback_method (TetherServer        *self,
                                    TetherMethodHandler  handler,
                                    gpointer             user_data,
                                    GDestroyNotify       destroy)
{
  _tether_method_table_set_fallback (self->methods, handler, user_data, destroy);
  /* A server that answers every name itself (the callback listener,
   * which verifies each delivery first) has nothing to describe. */
  if (handler != NULL)
    _tether_method_table_set_reserved (self->methods, "rpc.discover", NULL, 0, NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------- */
/* Describing the service: rpc.discover (issue #12)                       */

static void
discover_cb (TetherInvocation *invocation,
             gpointer          user_data)
{
  TetherServer *self = user_data;
  TetherDiscoverSource source = {
    .title = self->service_title != NULL ? self->service_title
             : g_get_application_name () != NULL ? g_get_application_name () : "Tether service",
    .version = self->service_version != NULL ? self->service_version : "unspecified",
    .description = self->service_description,
    .uris = (const char * const *) self->uris->pdata,
    .methods = self->methods,
    .callbacks = self->callback_infos,
    .apply_access = TRUE,
    .caller_authenticated = _tether_discover_caller_authenticated (invocation),
    .default_timeout_ms = self->limits[TETHER_LIMIT_INCOMING_DEFAULT_TIMEOUT],
    .max_timeout_ms = self->limits[TETHER_LIMIT_INCOMING_MAX_TIMEOUT],
    .callback_timeout_ms = self->limits[TETHER_LIMIT_DEFAULT_TIMEOUT],
    .max_callback_timeout_ms = self->limits[TETHER_LIMIT_MAX_TIMEOUT],
  };

  tether_invocation_return_value (invocation, _tether_discover_document (&source));
}

static void
discover_register (TetherServer *self)
{
  _tether_method_table_set_reserved (self->methods, "rpc.discover", "()", self->discover_access,
                                     discover_cb, self, NULL);
}

/**
 * tether_server_add_method_with_info:
 * @self: a #TetherServer
 * @info: the method's description; its name is the method's, its
 *   parameters ([method@Tether.MethodInfo.set_params]) are declared as
 *   [method@Tether.Server.add_method_full] declares them
 * @access: who may call it
 * @handler: (scope notified) (closure user_data) (destroy destroy): the handler
 * @user_data: data for @handler
 * @destroy: (nullable): frees @user_data when the method is removed
 *
 * Adds a method and its description, which `rpc.discover` gives to
 * callers that @access lets call it. Replaces any method of the same
 * name. @info is read-only from now on.
 *
 * Since: 0.2
 */
void
tether_server_add_method_with_info (TetherServer        *self,
                                    TetherMethodInfo    *info,
                                    TetherAccess         access,
                                    TetherMethodHandler  handler,
                                    gpointer             user_data,
                                    GDestroyNotify       destroy)
{
  const char *name;

  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (info != NULL);

  name = tether_method_info_get_name (info);
  _tether_method_info_seal (info);
  _tether_method_table_add (self->methods, name, tether_method_info_get_signature (info),
                            tether_method_info_get_param_names (info), access,
                            handler, user_data, destroy);
  _tether_method_table_set_info (self->methods, name, info);
}

/**
 * tether_server_describe_method:
 * @self: a #TetherServer
 * @info: the description of a method added before
 *
 * Describes a method added with [method@Tether.Server.add_method] or
 * [method@Tether.Server.add_method_full], for bindings whose own
 * `add_method` wraps the handler. If @info declares parameters they must
 * be the method's own (the same signature and names); if it declares
 * none, the method's are described. Replaces any earlier description.
 * @info is read-only from now on.
 *
 * Returns: %TRUE if the method exists and @info fits it
 *
 * Since: 0.2
 */
gboolean
tether_server_describe_method (TetherServer     *self,
                               TetherMethodInfo *info)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  g_return_val_if_fail (info != NULL, FALSE);

  _tether_method_info_seal (info);
  return _tether_method_table_set_info (self->methods, tether_method_info_get_name (info), info);
}

/**
 * tether_server_add_callback_info:
 * @self: a #TetherServer
 * @info: the description of a method the server calls on its clients
 *
 * Declares a callback the server makes, such as `progress`, so that
 * `rpc.discover` tells clients what they must answer: its parameters as
 * a client would declare them, and its result. Link it to the methods
 * that make it with [method@Tether.MethodInfo.add_callback]. Replaces a
 * declaration of the same name. @info is read-only from now on.
 *
 * Since: 0.2
 */
void
tether_server_add_callback_info (TetherServer     *self,
                                 TetherMethodInfo *info)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (info != NULL);

  _tether_method_info_seal (info);
  g_hash_table_replace (self->callback_infos, (char *) tether_method_info_get_name (info),
                        tether_method_info_ref (info));
}

static gboolean
set_string (char       **field,
            const char  *value)
{
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

/**
 * tether_server_set_service_title:
 * @self: a #TetherServer
 * @title: (nullable): the service's name, or %NULL for the program's
 *
 * Sets [property@Tether.Server:service-title].
 *
 * Since: 0.2
 */
void
tether_server_set_service_title (TetherServer *self,
                                 const char   *title)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (set_string (&self->service_title, title))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVICE_TITLE]);
}

/**
 * tether_server_get_service_title:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:service-title].
 *
 * Returns: (nullable): the title set, or %NULL
 *
 * Since: 0.2
 */
const char *
tether_server_get_service_title (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->service_title;
}

/**
 * tether_server_set_service_version:
 * @self: a #TetherServer
 * @version: (nullable): the version of the service's API
 *
 * Sets [property@Tether.Server:service-version].
 *
 * Since: 0.2
 */
void
tether_server_set_service_version (TetherServer *self,
                                   const char   *version)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (set_string (&self->service_version, version))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVICE_VERSION]);
}

/**
 * tether_server_get_service_version:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:service-version].
 *
 * Returns: (nullable): the version set, or %NULL
 *
 * Since: 0.2
 */
const char *
tether_server_get_service_version (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->service_version;
}

/**
 * tether_server_set_service_description:
 * @self: a #TetherServer
 * @description: (nullable): what the service is for (Markdown)
 *
 * Sets [property@Tether.Server:service-description].
 *
 * Since: 0.2
 */
void
tether_server_set_service_description (TetherServer *self,
                                       const char   *description)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (set_string (&self->service_description, description))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVICE_DESCRIPTION]);
}

/**
 * tether_server_get_service_description:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:service-description].
 *
 * Returns: (nullable): the description set, or %NULL
 *
 * Since: 0.2
 */
const char *
tether_server_get_service_description (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->service_description;
}

/**
 * tether_server_set_discover_access:
 * @self: a #TetherServer
 * @access: who may call `rpc.discover`
 *
 * Sets [property@Tether.Server:discover-access].
 *
 * Since: 0.2
 */
void
tether_server_set_discover_access (TetherServer *self,
                                   TetherAccess  access)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (self->discover_access == access)
    return;
  self->discover_access = access;
  discover_register (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DISCOVER_ACCESS]);
}

/**
 * tether_server_get_discover_access:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:discover-access].
 *
 * Returns: who may call `rpc.discover`
 *
 * Since: 0.2
 */
TetherAccess
tether_server_get_discover_access (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), TETHER_ACCESS_AUTHENTICATED);
  return self->discover_access;
}

/**
 * tether_server_get_peers:
 * @self: a #TetherServer
 *
 * Lists the connected peers.
 *
 * Returns: (transfer container) (element-type TetherPeer): the connected
 *   peers that completed their handshake
 *
 * Since: 0.1
 */
GPtrArray *
tether_server_get_peers (TetherServer *self)
{
  GPtrArray *peers;
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);

  peers = g_ptr_array_new_with_free_func (g_object_unref);
  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (g_object_get_data (value, "tether-announced") != NULL)
      g_ptr_array_add (peers, g_object_ref (value));
  return peers;
}

/**
 * tether_server_close:
 * @self: a #TetherServer
 *
 * Stops listening, drops handshakes in progress and closes every peer
 * (each gets [signal@Tether.Server::peer-disconnected]). Idempotent; also
 * done when the server is disposed.
 *
 * Since: 0.1
 */
void
tether_server_close (TetherServer *self)
{
  g_autoptr(GPtrArray) conns = NULL;
  GHashTableIter iter;
  gpointer key;

  g_return_if_fail (TETHER_IS_SERVER (self));

  if (self->closed)
    return;
  self->closed = TRUE;

  g_ptr_array_set_size (self->listeners, 0);
  g_hash_table_remove_all (self->handshakes);

  conns = g_ptr_array_new_with_free_func (g_object_unref);
  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (conns, g_object_ref (key));
  for (guint i = 0; i < conns->len; i++)
    _tether_connection_close (conns->pdata[i], NULL);
}

/* ---------------------------------------------------------------------- */
/* TLS                                                                    */

/**
 * tether_server_set_tls_certificate:
 * @self: a #TetherServer
 * @certificate: (nullable): the certificate (with its private key)
 *
 * Sets [property@Tether.Server:tls-certificate].
 *
 * Since: 0.1
 */
void
tether_server_set_tls_certificate (TetherServer    *self,
                                   GTlsCertificate *certificate)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (g_set_object (&self->tls_certificate, certificate))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TLS_CERTIFICATE]);
}

/**
 * tether_server_get_tls_certificate:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:tls-certificate].
 *
 * Returns: (transfer none) (nullable): the server's TLS certificate
 *
 * Since: 0.1
 */
GTlsCertificate *
tether_server_get_tls_certificate (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->tls_certificate;
}

/**
 * tether_server_set_tls_client_database:
 * @self: a #TetherServer
 * @database: (nullable): the database that verifies client certificates
 *
 * Sets [property@Tether.Server:tls-client-database].
 *
 * Since: 0.1
 */
void
tether_server_set_tls_client_database (TetherServer *self,
                                       GTlsDatabase *database)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (g_set_object (&self->tls_client_database, database))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TLS_CLIENT_DATABASE]);
}

/**
 * tether_server_get_tls_client_database:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:tls-client-database].
 *
 * Returns: (transfer none) (nullable): the client certificate database
 *
 * Since: 0.1
 */
GTlsDatabase *
tether_server_get_tls_client_database (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->tls_client_database;
}

/* ---------------------------------------------------------------------- */
/* GObject                                                                */

static void
tether_server_dispose (GObject *object)
{
  TetherServer *self = TETHER_SERVER (object);

  tether_server_close (self);

  G_OBJECT_CLASS (tether_server_parent_class)->dispose (object);
}

static void
tether_server_finalize (GObject *object)
{
  TetherServer *self = TETHER_SERVER (object);

  g_ptr_array_unref (self->listeners);
  g_ptr_array_unref (self->hello_extensions);
  g_ptr_array_unref (self->uris);
  g_hash_table_unref (self->handshakes);
  g_hash_table_unref (self->connections);
  _tether_pool_unref (self->connection_pool);
  _tether_pool_unref (self->tls_pool);
  _tether_pool_unref (self->callback_pool);
  _tether_pool_unref (self->invocation_pool);
  _tether_auth_policy_unref (self->auth_policy);
  _tether_imp_policy_unref (self->imp_policy);
  _tether_method_table_free (self->methods);
  g_hash_table_unref (self->callback_infos);
  g_free (self->service_title);
  g_free (self->service_version);
  g_free (self->service_description);
  g_clear_object (&self->tls_certificate);
  g_clear_object (&self->tls_client_database);
  g_strfreev (self->allowed_origins);
  g_clear_object (&self->detached_callback_tls_database);
  _tether_scheduler_unref (self->scheduler);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (tether_server_parent_class)->finalize (object);
}

static void
tether_server_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  TetherServer *self = TETHER_SERVER (object);
  int limit = _tether_limits_row (N_PROPS, prop_id);

  if (limit >= 0)
    {
      g_value_set_uint (value, self->limits[limit]);
      return;
    }

  switch (prop_id)
    {
    case PROP_TLS_CERTIFICATE:
      g_value_set_object (value, self->tls_certificate);
      break;
    case PROP_TLS_CLIENT_DATABASE:
      g_value_set_object (value, self->tls_client_database);
      break;
    case PROP_ALLOW_INSECURE_REMOTE:
      g_value_set_boolean (value, self->allow_insecure_remote);
      break;
    case PROP_MISBEHAVIOR_ACTION:
      g_value_set_enum (value, self->misbehavior_action);
      break;
    case PROP_CALLBACK_IMPERSONATION_LEVEL:
      g_value_set_enum (value, self->imp_policy->level);
      break;
    case PROP_REMOTE_CALLBACK_IMPERSONATION_LEVEL:
      g_value_set_enum (value, self->imp_policy->remote_level);
      break;
    case PROP_DANGEROUSLY_ALLOW_PRIVILEGED_IMPERSONATION:
      g_value_set_boolean (value, self->imp_policy->allow_privileged);
      break;
    case PROP_SIGNING_CERTIFICATE:
      g_value_set_object (value, self->imp_policy->signing_certificate);
      break;
    case PROP_ALLOWED_ORIGINS:
      g_value_set_boxed (value, self->allowed_origins);
      break;
    case PROP_ALLOW_PLAIN_SCRAM:
      g_value_set_boolean (value, self->auth_policy->allow_plain_scram);
      break;
    case PROP_ALLOW_ANONYMOUS:
      g_value_set_boolean (value, self->auth_policy->allow_anonymous);
      break;
    case PROP_ALLOW_DETACHED_CALLBACKS:
      g_value_set_boolean (value, self->allow_detached_callbacks);
      break;
    case PROP_DETACHED_CALLBACK_TLS_DATABASE:
      g_value_set_object (value, self->detached_callback_tls_database);
      break;
    case PROP_SERVICE_TITLE:
      g_value_set_string (value, self->service_title);
      break;
    case PROP_SERVICE_VERSION:
      g_value_set_string (value, self->service_version);
      break;
    case PROP_SERVICE_DESCRIPTION:
      g_value_set_string (value, self->service_description);
      break;
    case PROP_DISCOVER_ACCESS:
      g_value_set_enum (value, self->discover_access);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tether_server_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  TetherServer *self = TETHER_SERVER (object);
  int limit = _tether_limits_row (N_PROPS, prop_id);

  if (limit >= 0)
    {
      guint v = g_value_get_uint (value);

      if (self->limits[limit] != v)
        {
          self->limits[limit] = v;
          if (limit == TETHER_LIMIT_MAX_TOTAL_CALLBACKS)
            _tether_pool_set_max (self->callback_pool, v);
          else if (limit == TETHER_LIMIT_MAX_TOTAL_INVOCATIONS)
            _tether_pool_set_max (self->invocation_pool, v);
          else if (limit == TETHER_LIMIT_MAX_TLS_HANDSHAKES)
            _tether_pool_set_max (self->tls_pool, v);
          else if (limit == TETHER_LIMIT_MAX_CONNECTIONS)
            _tether_pool_set_max (self->connection_pool, effective_max_connections (self));
          g_object_notify_by_pspec (object, pspec);
        }
      return;
    }

  switch (prop_id)
    {
    case PROP_TLS_CERTIFICATE:
      tether_server_set_tls_certificate (self, g_value_get_object (value));
      break;
    case PROP_TLS_CLIENT_DATABASE:
      tether_server_set_tls_client_database (self, g_value_get_object (value));
      break;
    case PROP_ALLOW_INSECURE_REMOTE:
      if (self->allow_insecure_remote != g_value_get_boolean (value))
        {
          self->allow_insecure_remote = g_value_get_boolean (value);
          if (self->allow_insecure_remote)
            g_warning ("allow-insecure-remote is set: plaintext ws:// beyond loopback "
                       "has no verification guarantees");
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_ALLOW_PLAIN_SCRAM:
      self->auth_policy->allow_plain_scram = g_value_get_boolean (value);
      g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_ALLOW_ANONYMOUS:
      self->auth_policy->allow_anonymous = g_value_get_boolean (value);
      g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_ALLOW_DETACHED_CALLBACKS:
      if (self->allow_detached_callbacks != g_value_get_boolean (value))
        {
          self->allow_detached_callbacks = g_value_get_boolean (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_DETACHED_CALLBACK_TLS_DATABASE:
      if (g_set_object (&self->detached_callback_tls_database, g_value_get_object (value)))
        g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_ALLOWED_ORIGINS:
      g_strfreev (self->allowed_origins);
      self->allowed_origins = g_value_dup_boxed (value);
      g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_CALLBACK_IMPERSONATION_LEVEL:
      tether_server_set_callback_impersonation_level (self, g_value_get_enum (value));
      break;
    case PROP_REMOTE_CALLBACK_IMPERSONATION_LEVEL:
      tether_server_set_remote_callback_impersonation_level (self, g_value_get_enum (value));
      break;
    case PROP_DANGEROUSLY_ALLOW_PRIVILEGED_IMPERSONATION:
      tether_server_set_dangerously_allow_privileged_impersonation (self, g_value_get_boolean (value));
      break;
    case PROP_SIGNING_CERTIFICATE:
      tether_server_set_signing_certificate (self, g_value_get_object (value));
      break;
    case PROP_MISBEHAVIOR_ACTION:
      if (self->misbehavior_action != (TetherMisbehaviorAction) g_value_get_enum (value))
        {
          self->misbehavior_action = g_value_get_enum (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_SERVICE_TITLE:
      tether_server_set_service_title (self, g_value_get_string (value));
      break;
    case PROP_SERVICE_VERSION:
      tether_server_set_service_version (self, g_value_get_string (value));
      break;
    case PROP_SERVICE_DESCRIPTION:
      tether_server_set_service_description (self, g_value_get_string (value));
      break;
    case PROP_DISCOVER_ACCESS:
      tether_server_set_discover_access (self, g_value_get_enum (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tether_server_class_init (TetherServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  GParamFlags limit = rw | G_PARAM_CONSTRUCT;

  object_class->dispose = tether_server_dispose;
  object_class->finalize = tether_server_finalize;
  object_class->get_property = tether_server_get_property;
  object_class->set_property = tether_server_set_property;

  /**
   * TetherServer:tls-certificate:
   *
   * The certificate (with its private key) served on `wss://`.
   *
   * Since: 0.1
   */
  properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE, rw);

  /**
   * TetherServer:tls-client-database:
   *
   * When set, `wss://` clients are asked for a certificate, which must
   * verify against this database; a client that presents one is
   * authenticated by it (mutual TLS).
   *
   * Since: 0.1
   */
  properties[PROP_TLS_CLIENT_DATABASE] =
    g_param_spec_object ("tls-client-database", NULL, NULL, G_TYPE_TLS_DATABASE, rw);

  /**
   * TetherServer:allow-insecure-remote:
   *
   * Allows `ws://` on non-loopback addresses. Plaintext beyond loopback
   * loses every verification guarantee; setting this logs a warning.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOW_INSECURE_REMOTE] =
    g_param_spec_boolean ("allow-insecure-remote", NULL, NULL, FALSE, rw);

  /**
   * TetherServer:allow-plain-scram:
   *
   * Offers SCRAM-SHA-256 (not bound to a TLS channel) on transports
   * without TLS. Over TLS only SCRAM-SHA-256-PLUS is ever offered.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOW_PLAIN_SCRAM] =
    g_param_spec_boolean ("allow-plain-scram", NULL, NULL, FALSE, rw);

  /**
   * TetherServer:allow-anonymous:
   *
   * Accepts the ANONYMOUS SASL mechanism in the hello. A peer that sends
   * no authentication at all is anonymous anyway (unless its transport
   * proved who it is); this only allows saying so explicitly.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOW_ANONYMOUS] =
    g_param_spec_boolean ("allow-anonymous", NULL, NULL, FALSE, rw);

  /**
   * TetherServer:allowed-origins:
   *
   * The web origins (such as `https://app.example.org`) whose pages may
   * open a WebSocket to this server. Browsers send an `Origin` header;
   * an upgrade carrying one that is not listed is refused with 403, so
   * that a web page cannot call a local service because its user
   * browsed there. Clients that are not browsers send no `Origin` and are
   * not affected. Default: none.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOWED_ORIGINS] =
    g_param_spec_boxed ("allowed-origins", NULL, NULL, G_TYPE_STRV, rw);

  /**
   * TetherServer:default-timeout:
   *
   * The deadline, in milliseconds, of an incoming call whose caller sent
   * no budget (plain JSON-RPC clients).
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-timeout:
   *
   * The longest budget, in milliseconds, an incoming call may ask for;
   * longer ones are clamped. Nothing is infinite.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:callback-timeout:
   *
   * The default deadline, in milliseconds, of a callback to a client.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-callback-timeout:
   *
   * The longest deadline, in milliseconds, a callback may have.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:handshake-timeout:
   *
   * How long, in milliseconds, a new connection has to finish TLS, the
   * WebSocket upgrade and the hello.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-message-size:
   *
   * The largest message, in bytes, across all its WebSocket fragments.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-depth:
   *
   * The deepest JSON nesting a message may have.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-pending-callbacks:
   *
   * How many callbacks may wait for an answer from one peer; the next one
   * fails at once with %TETHER_ERROR_RESOURCE_EXHAUSTED.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-unsent-bytes:
   *
   * How many bytes may wait to be written to one peer; a peer that stops
   * reading is cut off when its backlog passes this.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-total-callbacks:
   *
   * How many callbacks may wait for an answer from all peers together;
   * the next one fails at once with %TETHER_ERROR_RESOURCE_EXHAUSTED.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-invocations-per-peer:
   *
   * How many calls and notifications from one peer may be in progress at
   * once. The next call is answered -32003 at once; a notification, which
   * cannot be answered, makes the server stop reading that peer until one
   * ends (see [property@Tether.Server:flood-timeout]). Notifications count
   * since 0.2.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-total-invocations:
   *
   * How many calls and notifications from all peers may be in progress at
   * once. When they are, the identity with the most gives way: a newcomer's
   * call is served and the heaviest identity's oldest is answered -32003
   * and cancelled, unless the newcomer already has about as many (then
   * its call is answered -32003, and its notifications make the server
   * stop reading it). See `docs/limits.md`.
   *
   * Since: 0.2
   */

  /**
   * TetherServer:max-batch-size:
   *
   * How many requests one incoming JSON-RPC batch may hold; a larger
   * batch is answered with one -32600 error and nothing in it runs.
   *
   * Since: 0.2
   */

  /**
   * TetherServer:flood-timeout:
   *
   * How long, in milliseconds, a peer may keep the server from reading it
   * — it has [property@Tether.Server:max-invocations-per-peer] calls and
   * notifications in progress — before it is cut off (a notification
   * flood); 0 never cuts it off.
   *
   * Since: 0.2
   */

  /**
   * TetherServer:late-answer-percent:
   *
   * A callback answered after this share of its time, in percent, without
   * a lease ([method@Tether.Invocation.extend_deadline]) and after a
   * second or more, counts as a strike, as a callback that times out does:
   * a peer that answers at the last moment holds the server's callback
   * slots as surely as one that never answers. 0 turns it off.
   *
   * Since: 0.2
   */

  /**
   * TetherServer:max-strikes:
   *
   * How many of a peer's callbacks may time out within
   * [property@Tether.Server:strike-window] before
   * [property@Tether.Server:misbehavior-action] is taken; 0 never strikes
   * a peer out.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:strike-window:
   *
   * The window, in milliseconds, in which strikes count.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:misbehavior-action:
   *
   * What happens to a peer that struck out: disconnected (the default) or
   * quarantined.
   *
   * Since: 0.1
   */
  properties[PROP_MISBEHAVIOR_ACTION] =
    g_param_spec_enum ("misbehavior-action", NULL, NULL, TETHER_TYPE_MISBEHAVIOR_ACTION,
                       TETHER_MISBEHAVIOR_ACTION_DISCONNECT, limit);

  /**
   * TetherServer:quarantine-duration:
   *
   * How long, in milliseconds, a quarantined peer's callbacks fail and
   * its calls are refused.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:idle-timeout:
   *
   * A connection from which nothing at all arrives (keepalive pongs
   * included) for this many milliseconds is closed; 0 disables it.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:keepalive-interval:
   *
   * How often, in milliseconds, the server checks on each connection: a
   * connection whose peer sent nothing of its own since the last check
   * (pongs aside) gets a WebSocket ping; 0 sends none. Keep it below
   * [property@Tether.Server:idle-timeout], and below the clients' own
   * interval (30 s by default for a [class@Tether.Client]) so that the
   * server does the pinging, in batches.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-connections-per-peer:
   *
   * How many connections one peer identity may hold, handshakes
   * included: the uid on `unix:`, the verified client certificate on
   * `wss://`, else the IP address.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-connections:
   *
   * How many connections the server holds in all, handshakes included;
   * 0 (the default) derives it from the process's descriptor limit
   * (`RLIMIT_NOFILE`), keeping a sixteenth of it (64 at least) for the
   * service's own files, as it is when a connection arrives.
   *
   * When the server is full, the identity holding the most connections
   * gives way: a newcomer's connection is accepted and the heaviest
   * identity's newest connection is closed, unless the newcomer already
   * holds about as many (then it is refused). See `docs/limits.md`.
   *
   * Since: 0.2
   */

  /**
   * TetherServer:max-tls-handshakes:
   *
   * How many TLS handshakes may be in progress at once. glib-networking
   * runs each in a thread of a shared pool, so this bounds the threads a
   * TLS slowloris can hold.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:max-tls-handshakes-per-address:
   *
   * How many TLS handshakes one IP address may have in progress.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:allow-detached-callbacks:
   *
   * Grants a session to clients that announce a
   * [class@Tether.CallbackListener] in their hello, so that the server can
   * call them back after they disconnected
   * ([method@Tether.Peer.get_detached_callback]). Off by default: dialling
   * out to an address a client chose is itself an attack on a privileged
   * server. Even when on, only an address that is the client's own is
   * accepted (a socket owned by its uid on `unix:`, the IP address it
   * connected from on `ws://` and `wss://`), and the server presents
   * none of its credentials there.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOW_DETACHED_CALLBACKS] =
    g_param_spec_boolean ("allow-detached-callbacks", NULL, NULL, FALSE, rw);

  /**
   * TetherServer:detached-callback-validity:
   *
   * How long, in milliseconds after the hello, a detached-callback
   * session lasts: the server sends nothing after it, and the listener
   * accepts nothing after it. Default: one hour.
   *
   * Since: 0.1
   */

  /**
   * TetherServer:detached-callback-tls-database:
   *
   * The database that verifies the certificate of a client's
   * [class@Tether.CallbackListener] on `wss://` when the server dials it.
   * %NULL (the default) uses [property@Tether.Server:tls-client-database]
   * when that is set, else the system's trust store. Verification cannot
   * be turned off.
   *
   * Since: 0.1
   */
  properties[PROP_DETACHED_CALLBACK_TLS_DATABASE] =
    g_param_spec_object ("detached-callback-tls-database", NULL, NULL, G_TYPE_TLS_DATABASE, rw);

  /**
   * TetherServer:callback-impersonation-level:
   *
   * The most the server grants clients on its callbacks (see
   * [enum@Tether.ImpersonationLevel]). Callbacks to peers on other hosts
   * are further capped by
   * [property@Tether.Server:remote-callback-impersonation-level], and a
   * privileged server grants local clients no more than
   * %TETHER_IMPERSONATION_LEVEL_IDENTIFY unless
   * [property@Tether.Server:dangerously-allow-privileged-impersonation] is
   * set. The level each callback carries is logged (debug) and given by
   * [method@Tether.Peer.get_callback_impersonation_level]. Granting
   * %TETHER_IMPERSONATION_LEVEL_IMPERSONATE or more needs
   * [property@Tether.Server:signing-certificate].
   *
   * Since: 0.1
   */
  properties[PROP_CALLBACK_IMPERSONATION_LEVEL] =
    g_param_spec_enum ("callback-impersonation-level", NULL, NULL,
                       TETHER_TYPE_IMPERSONATION_LEVEL, TETHER_IMPERSONATION_LEVEL_IDENTIFY,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * TetherServer:remote-callback-impersonation-level:
   *
   * The cap on the level callbacks to peers that are not on this host
   * (anything but `unix:` and loopback addresses) carry.
   *
   * Since: 0.1
   */
  properties[PROP_REMOTE_CALLBACK_IMPERSONATION_LEVEL] =
    g_param_spec_enum ("remote-callback-impersonation-level", NULL, NULL,
                       TETHER_TYPE_IMPERSONATION_LEVEL, TETHER_IMPERSONATION_LEVEL_IDENTIFY,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * TetherServer:dangerously-allow-privileged-impersonation:
   *
   * Lets a privileged server (effective uid 0 or any effective capability)
   * call local clients back above %TETHER_IMPERSONATION_LEVEL_IDENTIFY,
   * which hands them its privileges towards every Tether service that
   * trusts its signing certificate. Setting it logs a warning.
   *
   * Since: 0.1
   */
  properties[PROP_DANGEROUSLY_ALLOW_PRIVILEGED_IMPERSONATION] =
    g_param_spec_boolean ("dangerously-allow-privileged-impersonation", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * TetherServer:signing-certificate:
   *
   * A certificate with its private key (P-256, Ed25519 or RSA) that signs
   * the impersonation tokens the server grants on callbacks. It may be the
   * TLS certificate or a separate one, on any transport.
   *
   * Since: 0.1
   */
  properties[PROP_SIGNING_CERTIFICATE] =
    g_param_spec_object ("signing-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * TetherServer:service-title:
   *
   * The service's name in the description it gives of itself
   * (`rpc.discover`, OpenRPC's `info.title`). %NULL: the application's
   * name ([func@GLib.get_application_name]).
   *
   * Since: 0.2
   */
  properties[PROP_SERVICE_TITLE] =
    g_param_spec_string ("service-title", NULL, NULL, NULL, rw);

  /**
   * TetherServer:service-version:
   *
   * The version of the service's API in its description (OpenRPC's
   * `info.version`; not Tether's version). %NULL: `unspecified`.
   *
   * Since: 0.2
   */
  properties[PROP_SERVICE_VERSION] =
    g_param_spec_string ("service-version", NULL, NULL, NULL, rw);

  /**
   * TetherServer:service-description:
   *
   * What the service is for, in its description (OpenRPC's
   * `info.description`, Markdown), or %NULL.
   *
   * Since: 0.2
   */
  properties[PROP_SERVICE_DESCRIPTION] =
    g_param_spec_string ("service-description", NULL, NULL, NULL, rw);

  /**
   * TetherServer:discover-access:
   *
   * Who may call `rpc.discover`, the method that answers the service's
   * description (an OpenRPC document; see `docs/protocol.md`). Like any
   * method's access: authenticated peers by default;
   * %TETHER_ACCESS_CUSTOM asks [signal@Tether.Server::authorize-call]
   * (with the method name `rpc.discover`), and with no handler nobody
   * may. Plain JSON-RPC clients may call it too. Whoever calls it sees
   * only the methods they may call: those open to any peer, and to an
   * authenticated caller the others too.
   *
   * Since: 0.2
   */
  properties[PROP_DISCOVER_ACCESS] =
    g_param_spec_enum ("discover-access", NULL, NULL, TETHER_TYPE_ACCESS,
                       TETHER_ACCESS_AUTHENTICATED, rw);

  g_object_class_install_properties (object_class, N_PROPS, properties);
  /* The limits, from the one table: the ids after N_PROPS. */
  _tether_limits_install (object_class, TETHER_LIMITS_SERVER, N_PROPS);

  /**
   * TetherServer::peer-misbehaved:
   * @self: the server
   * @peer: (nullable): the peer, or %NULL if it never got past the
   *   handshake
   * @identity: who it is, as the transport proved it
   * @reason: what it did
   * @details: the evidence, for people
   *
   * The server acted against a peer: cut it off, quarantined it, or
   * refused its connection. A log line with the same facts is written.
   *
   * Since: 0.1
   */
  signals[SIGNAL_PEER_MISBEHAVED] =
    g_signal_new ("peer-misbehaved", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 4, TETHER_TYPE_PEER, TETHER_TYPE_IDENTITY,
                  TETHER_TYPE_MISBEHAVIOR, G_TYPE_STRING);

  /**
   * TetherServer::peer-connected:
   * @self: the server
   * @peer: the new peer
   *
   * A client connected and finished its handshake.
   *
   * Since: 0.1
   */
  signals[SIGNAL_PEER_CONNECTED] =
    g_signal_new ("peer-connected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, TETHER_TYPE_PEER);

  /**
   * TetherServer::peer-disconnected:
   * @self: the server
   * @peer: the peer that left
   *
   * A client's connection closed. Its pending callbacks have failed and its
   * invocations have been cancelled.
   *
   * Since: 0.1
   */
  signals[SIGNAL_PEER_DISCONNECTED] =
    g_signal_new ("peer-disconnected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, TETHER_TYPE_PEER);

  /**
   * TetherServer::authorize-call:
   * @self: the server
   * @peer: the calling peer
   * @invocation: the call
   *
   * Decides whether @peer may call a method added with
   * %TETHER_ACCESS_CUSTOM. The first handler to run decides; with no
   * handler the call is denied (-32005).
   *
   * Returns: %TRUE to allow the call
   *
   * Since: 0.1
   */
  signals[SIGNAL_AUTHORIZE_CALL] =
    g_signal_new ("authorize-call", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  g_signal_accumulator_first_wins, NULL, NULL,
                  G_TYPE_BOOLEAN, 2, TETHER_TYPE_PEER, TETHER_TYPE_INVOCATION);
}

static void
tether_server_init (TetherServer *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->scheduler = _tether_scheduler_new (self->context);
  _tether_limits_init_values (TETHER_LIMITS_SERVER, self->limits);
  self->detached_extension.member = "detached";
  self->detached_extension.answer = hello_detached_answer;
  self->detached_extension.user_data = self;
  self->hello_extensions = g_ptr_array_new ();
  g_ptr_array_add (self->hello_extensions, &self->detached_extension);
  self->methods = _tether_method_table_new ();
  self->callback_infos = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                (GDestroyNotify) tether_method_info_unref);
  self->discover_access = TETHER_ACCESS_AUTHENTICATED;
  discover_register (self);
  self->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);
  self->uris = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (self->uris, NULL);
  self->handshakes = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) handshake_free, NULL);
  self->connections = g_hash_table_new_full (NULL, NULL, g_object_unref, g_object_unref);
  self->connection_pool = _tether_pool_new (G_MAXUINT, TETHER_POOL_EVICT_NEWEST);
  self->tls_pool = _tether_pool_new (self->limits[TETHER_LIMIT_MAX_TLS_HANDSHAKES],
                                     TETHER_POOL_EVICT_OLDEST);
  self->callback_pool = _tether_pool_new (self->limits[TETHER_LIMIT_MAX_TOTAL_CALLBACKS],
                                          TETHER_POOL_EVICT_OLDEST);
  self->invocation_pool = _tether_pool_new (self->limits[TETHER_LIMIT_MAX_TOTAL_INVOCATIONS],
                                            TETHER_POOL_EVICT_OLDEST);
  self->auth_policy = _tether_auth_policy_new ();
  self->imp_policy = _tether_imp_policy_new (TRUE);
}

/**
 * tether_server_new:
 *
 * Creates a server on the thread-default main context.
 *
 * Returns: (transfer full): a new #TetherServer
 *
 * Since: 0.1
 */
TetherServer *
tether_server_new (void)
{
  return g_object_new (TETHER_TYPE_SERVER, NULL);
}

/**
 * tether_server_get_statistics:
 * @self: a #TetherServer
 *
 * Sums the counters of every connection the server has had, live or
 * closed; `pending_calls`, `invocations`, `bytes_queued`, `strikes` and
 * `connections` count live connections only.
 *
 * Returns: (transfer full): a snapshot of the server's counters
 *
 * Since: 0.1
 */
TetherStatistics *
tether_server_get_statistics (TetherServer *self)
{
  TetherStatistics *stats;
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);

  stats = tether_statistics_copy (&self->closed_stats);
  stats->connections = 0;
  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    _tether_connection_add_statistics (key, stats);
  return stats;
}

/**
 * tether_server_add_user:
 * @self: a #TetherServer
 * @username: the user name
 * @secrets: the user's SCRAM secrets, as made by
 *   tether_scram_secrets_from_password():
 *   `SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY` (base64 fields)
 * @error: return location for a #GError
 *
 * Adds or replaces a user who may authenticate with SCRAM-SHA-256-PLUS
 * (or SCRAM-SHA-256 where [property@Tether.Server:allow-plain-scram]
 * allows it). The server never holds a password, only what verifies one.
 *
 * Returns: %TRUE if @secrets were valid
 *
 * Since: 0.1
 */
gboolean
tether_server_add_user (TetherServer  *self,
                        const char    *username,
                        const char    *secrets,
                        GError       **error)
{
  g_auto(GStrv) fields = NULL;

  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  g_return_val_if_fail (username != NULL && *username != '\0', FALSE);
  g_return_val_if_fail (secrets != NULL, FALSE);

  fields = g_strsplit_set (secrets, "$:", -1);
  if (!g_str_has_prefix (secrets, "SCRAM-SHA-256$") || g_strv_length (fields) != 5 ||
      g_ascii_strtoull (fields[1], NULL, 10) < 4096)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_FAILED,
                   "Invalid SCRAM secrets for “%s” (expected SCRAM-SHA-256$ITERATIONS:SALT$"
                   "STOREDKEY:SERVERKEY with at least 4096 iterations)", username);
      return FALSE;
    }
  g_hash_table_replace (self->auth_policy->users, g_strdup (username), g_strdup (secrets));
  return TRUE;
}

/**
 * tether_server_load_users:
 * @self: a #TetherServer
 * @path: a users file: one `USERNAME:SECRETS` line per user (as written
 *   by `tether passwd`); empty lines and lines starting with `#` are
 *   skipped
 * @error: return location for a #GError
 *
 * Adds every user of @path with tether_server_add_user().
 *
 * Returns: %TRUE if the whole file was valid
 *
 * Since: 0.1
 */
gboolean
tether_server_load_users (TetherServer  *self,
                          const char    *path,
                          GError       **error)
{
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;

  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  if (!g_file_get_contents (path, &contents, NULL, error))
    return FALSE;
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      char *colon = strchr (line, ':');

      if (*line == '\0' || *line == '#')
        continue;
      if (colon == NULL)
        {
          g_set_error (error, TETHER_ERROR, TETHER_ERROR_FAILED, "%s:%u: expected USERNAME:SECRETS",
                       path, i + 1);
          return FALSE;
        }
      *colon = '\0';
      if (!tether_server_add_user (self, line, colon + 1, error))
        {
          g_prefix_error (error, "%s:%u: ", path, i + 1);
          return FALSE;
        }
    }
  return TRUE;
}

/**
 * tether_scram_secrets_from_password:
 * @password: the password
 * @iterations: PBKDF2 iterations, at least 4096 (600000 is a sound
 *   default today)
 * @error: return location for a #GError
 *
 * Derives what a server needs to verify @password with SCRAM-SHA-256,
 * and no more: `SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY`
 * (PostgreSQL's format; base64 fields) with a fresh random salt. Give it
 * to tether_server_add_user(); the password itself is not kept.
 *
 * Returns: (transfer full): the secrets, or %NULL with @error set
 *
 * Since: 0.1
 */
char *
tether_scram_secrets_from_password (const char  *password,
                                    guint        iterations,
                                    GError     **error)
{
  g_return_val_if_fail (password != NULL, NULL);
  return _tether_scram_secrets_from_password (password, iterations, error);
}

/* ---------------------------------------------------------------------- */
/* Impersonation                                                          */

/**
 * tether_server_set_callback_impersonation_level:
 * @self: a #TetherServer
 * @level: the level
 *
 * Sets [property@Tether.Server:callback-impersonation-level].
 *
 * Since: 0.1
 */
void
tether_server_set_callback_impersonation_level (TetherServer             *self,
                                                TetherImpersonationLevel  level)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (level <= TETHER_IMPERSONATION_LEVEL_DELEGATE);

  if (self->imp_policy->level == level)
    return;
  self->imp_policy->level = level;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CALLBACK_IMPERSONATION_LEVEL]);
}

/**
 * tether_server_get_callback_impersonation_level:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:callback-impersonation-level].
 *
 * Returns: the most the server grants clients on callbacks
 *
 * Since: 0.1
 */
TetherImpersonationLevel
tether_server_get_callback_impersonation_level (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  return self->imp_policy->level;
}

/**
 * tether_server_set_remote_callback_impersonation_level:
 * @self: a #TetherServer
 * @level: the level
 *
 * Sets [property@Tether.Server:remote-callback-impersonation-level].
 *
 * Since: 0.1
 */
void
tether_server_set_remote_callback_impersonation_level (TetherServer             *self,
                                                       TetherImpersonationLevel  level)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (level <= TETHER_IMPERSONATION_LEVEL_DELEGATE);

  if (self->imp_policy->remote_level == level)
    return;
  self->imp_policy->remote_level = level;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REMOTE_CALLBACK_IMPERSONATION_LEVEL]);
}

/**
 * tether_server_get_remote_callback_impersonation_level:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:remote-callback-impersonation-level].
 *
 * Returns: the cap on callbacks to peers on other hosts
 *
 * Since: 0.1
 */
TetherImpersonationLevel
tether_server_get_remote_callback_impersonation_level (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  return self->imp_policy->remote_level;
}

/**
 * tether_server_set_dangerously_allow_privileged_impersonation:
 * @self: a #TetherServer
 * @allow: whether a privileged server may grant local clients more than
 *   %TETHER_IMPERSONATION_LEVEL_IDENTIFY
 *
 * Sets [property@Tether.Server:dangerously-allow-privileged-impersonation].
 * Allowing it logs a warning.
 *
 * Since: 0.1
 */
void
tether_server_set_dangerously_allow_privileged_impersonation (TetherServer *self,
                                                              gboolean      allow)
{
  g_return_if_fail (TETHER_IS_SERVER (self));

  allow = !!allow;
  if (self->imp_policy->allow_privileged == allow)
    return;
  self->imp_policy->allow_privileged = allow;
  if (allow)
    g_warning ("dangerously-allow-privileged-impersonation is set: %s may grant local "
               "clients impersonate or delegate on callbacks, handing them its privileges",
               self->imp_policy->privileged ? "this privileged server" : "this server");
  g_object_notify_by_pspec (G_OBJECT (self),
                            properties[PROP_DANGEROUSLY_ALLOW_PRIVILEGED_IMPERSONATION]);
}

/**
 * tether_server_get_dangerously_allow_privileged_impersonation:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:dangerously-allow-privileged-impersonation].
 *
 * Returns: whether the privileged clamp is lifted
 *
 * Since: 0.1
 */
gboolean
tether_server_get_dangerously_allow_privileged_impersonation (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  return self->imp_policy->allow_privileged;
}

/**
 * tether_server_is_privileged:
 * @self: a #TetherServer
 *
 * Tells whether the server counts as privileged (effective uid 0 or any
 * effective capability, read when the server was made), and so clamps
 * its callbacks to local clients at %TETHER_IMPERSONATION_LEVEL_IDENTIFY
 * unless [property@Tether.Server:dangerously-allow-privileged-impersonation]
 * is set.
 *
 * Returns: %TRUE if the server's process is privileged
 *
 * Since: 0.1
 */
gboolean
tether_server_is_privileged (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), TRUE);
  return self->imp_policy->privileged;
}

/**
 * tether_server_set_signing_certificate:
 * @self: a #TetherServer
 * @certificate: (nullable): a certificate with its private key
 *
 * Sets [property@Tether.Server:signing-certificate]. A certificate whose
 * key cannot be used is refused with a warning (and tokens cannot be
 * granted).
 *
 * Since: 0.1
 */
void
tether_server_set_signing_certificate (TetherServer    *self,
                                       GTlsCertificate *certificate)
{
  g_autoptr(GError) error = NULL;

  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (certificate == NULL || G_IS_TLS_CERTIFICATE (certificate));

  if (self->imp_policy->signing_certificate == certificate)
    return;
  if (!_tether_imp_policy_set_signing_certificate (self->imp_policy, certificate, &error))
    g_warning ("Signing certificate refused: %s", error->message);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SIGNING_CERTIFICATE]);
}

/**
 * tether_server_get_signing_certificate:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:signing-certificate].
 *
 * Returns: (transfer none) (nullable): the signing certificate
 *
 * Since: 0.1
 */
GTlsCertificate *
tether_server_get_signing_certificate (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->imp_policy->signing_certificate;
}

/**
 * tether_server_add_trusted_issuer:
 * @self: a #TetherServer
 * @certificate: the certificate an issuer signs impersonation tokens with
 *
 * Trusts tokens signed with @certificate's key: a peer that presents one
 * (and is its holder, within its audience and expiry) may act as its
 * subject; handlers see it through
 * [method@Tether.Invocation.get_acting_as]. Only the certificate's public
 * key is used; the algorithm is pinned to that key's.
 *
 * Since: 0.1
 */
void
tether_server_add_trusted_issuer (TetherServer    *self,
                                  GTlsCertificate *certificate)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (G_IS_TLS_CERTIFICATE (certificate));

  g_ptr_array_add (self->imp_policy->trusted, g_object_ref (certificate));
}

void
_tether_server_set_host_id (TetherServer *self,
                            const char   *host_id)
{
  _tether_imp_policy_set_host_id (self->imp_policy, host_id);
}
