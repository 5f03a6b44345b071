/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* TetherConnection: the engine under TetherPeer and TetherClient. A call
 * is a call whichever way it goes: one code path sends requests, tracks
 * them (one pending table, deadlines in the owner's one scheduler),
 * dispatches incoming requests to the owner's method table, and tears
 * everything down in one place when the WebSocket closes. */

#include "tether-types.h"
#include "tether-auth-private.h"
#include "tether-guard-stream-private.h"
#include "tether-limits-private.h"
#include "tether-message-private.h"
#include "tether-method-table-private.h"
#include "tether-pool-private.h"
#include "tether-protocol-private.h"
#include "tether-scheduler-private.h"
#include "tether-websocket-private.h"

G_BEGIN_DECLS

typedef enum
{
  TETHER_CONNECTION_ROLE_SERVER,
  TETHER_CONNECTION_ROLE_CLIENT,
} TetherConnectionRole;




#define TETHER_TYPE_CONNECTION (_tether_connection_get_type ())
G_DECLARE_FINAL_TYPE (TetherConnection, _tether_connection, TETHER, CONNECTION, GObject)

typedef struct
{
  /* TETHER_ACCESS_CUSTOM: may the caller run this method? */
  gboolean (*authorize) (gpointer owner, TetherConnection *conn, TetherInvocation *invocation);
  /* Server: the hello arrived (or a plain peer's WebSocket opened). */
  void     (*ready)     (gpointer owner, TetherConnection *conn);
  /* The connection is gone; @error says why. Called once. */
  void     (*closed)    (gpointer owner, TetherConnection *conn, const GError *error);
  /* Client: the server said it is going away (rpc.tether.goaway), and
   * will cancel what is left in @deadline_ms. Optional. */
  void     (*going_away) (gpointer owner, TetherConnection *conn, guint deadline_ms);
  /* The peer misbehaved; @action says what the connection does about it
   * ("disconnect" or "quarantine"). The owner logs and signals; NULL
   * means the connection logs itself. */
  void     (*misbehaved) (gpointer owner, TetherConnection *conn, TetherMisbehavior reason,
                          const char *details, const char *action);
} TetherConnectionOwnerFuncs;

TetherConnection *_tether_connection_new            (TetherConnectionRole               role,
                                                     TetherScheduler                   *scheduler,
                                                     const TetherLimits                *limits,
                                                     TetherPool                        *callback_pool,
                                                     TetherAuthPolicy                  *auth_policy,
                                                     TetherMethodTable                 *methods,
                                                     const TetherConnectionOwnerFuncs  *owner_funcs,
                                                     gpointer                           owner);
/* Starts the engine on an open WebSocket. */
/* @handshake_deadline: when the hello must have arrived (server), the
 * same deadline that bounded accept, TLS and the upgrade: one window. */
void              _tether_connection_start          (TetherConnection        *self,
                                                     TetherWebsocket         *ws,
                                                     TetherGuardStream       *guard,
                                                     TetherIdentity          *identity,
                                                     gint64                   handshake_deadline);
/* Server: the pool its peers' incoming calls and notifications share
 * (a new reference is taken). */
void              _tether_connection_set_invocation_pool (TetherConnection *self,
                                                          TetherPool       *pool);
/* The owner is going away: no more callbacks into it. */
void              _tether_connection_detach_owner   (TetherConnection        *self);
void              _tether_connection_set_public     (TetherConnection        *self,
                                                     TetherPeer              *peer);
TetherPeer       *_tether_connection_get_public     (TetherConnection        *self);
TetherIdentity   *_tether_connection_get_identity   (TetherConnection        *self);
/* The owner's impersonation policy (shared; a new reference is taken). */
struct _TetherImpPolicy;
void              _tether_connection_set_imp_policy (TetherConnection        *self,
                                                     struct _TetherImpPolicy *policy);
struct _TetherImpPolicy *_tether_connection_get_imp_policy (TetherConnection *self);
gboolean          _tether_connection_is_tether      (TetherConnection        *self);
gboolean          _tether_connection_is_closed      (TetherConnection        *self);
GMainContext     *_tether_connection_get_context    (TetherConnection        *self);
TetherScheduler  *_tether_connection_get_scheduler  (TetherConnection        *self);
guint             _tether_connection_get_n_pending  (TetherConnection        *self);
/* Adds this connection's counters to @stats. */
void              _tether_connection_add_statistics (TetherConnection        *self,
                                                     TetherStatistics        *stats);
gboolean          _tether_connection_is_quarantined (TetherConnection        *self);
/* The TLS channel's tls-exporter binding, or NULL without TLS. */
GBytes           *_tether_connection_get_channel_binding (TetherConnection  *self,
                                                     GError                 **error);


/* Signs an outgoing request (detached callbacks): given exactly what is
 * sent — the method, the compact JSON of its params ("null" without) and
 * the budget it carries — returns the signature it carries, or NULL with
 * @error set to fail the call. */
typedef TetherDetachedClaim *(*TetherRequestSigner)    (const char              *method,
                                                     const char              *params_json,
                                                     gint64                   timeout_ms,
                                                     gpointer                 user_data,
                                                     GError                 **error);

/* What one outgoing call asks of the engine. Start from
 * TETHER_CALL_OPTIONS_INIT and set what applies. */
typedef struct
{
  const char              *method;
  GVariant                *params;       /* NULL, or sunk if floating */
  int                      timeout_msec; /* -1: the default; clamped to the maximum */
  /* A callback made while serving @parent: it ends no later than it and
   * is cancelled with it. */
  TetherInvocation        *parent;
  /* The most this call grants; the owner's impersonation policy caps it. */
  TetherImpersonationLevel max_level;
  TetherCredentials       *act_as;       /* credentials to present, or NULL */
  TetherRequestSigner      signer;       /* signs the request (detached callbacks) */
  gpointer                 signer_data;
} TetherCallOptions;

#define TETHER_CALL_OPTIONS_INIT \
  { .timeout_msec = -1, .max_level = TETHER_IMPERSONATION_LEVEL_DELEGATE }

/* The one entry point for every outgoing call: client calls, server
 * callbacks, callbacks made under an invocation, detached callbacks and
 * the client's hello. The task's source object is @source_object and its
 * tag @source_tag, which the finish function checks. The result is the
 * GVariant the answer maps to (the undeclared mapping). */
void              _tether_connection_call_async     (TetherConnection        *self,
                                                     const TetherCallOptions *options,
                                                     gpointer                 source_object,
                                                     gpointer                 source_tag,
                                                     GCancellable            *cancellable,
                                                     GAsyncReadyCallback      callback,
                                                     gpointer                 user_data);
GVariant         *_tether_connection_call_finish    (GAsyncResult            *result,
                                                     gpointer                 source_tag,
                                                     GError                 **error);
gboolean          _tether_connection_send_notification (TetherConnection     *self,
                                                     const char              *method,
                                                     GVariant                *params,
                                                     GError                 **error);
/* Server: this connection is drained. A Tether peer is told
 * (rpc.tether.goaway, with the time left to @deadline, monotonic µs); new
 * calls from the peer are refused (-32009) while calls and callbacks in
 * progress go on. The connection closes (1001) once nothing is left, or
 * at @deadline, when what is left is cancelled: callees' cancellables
 * fire, callers are answered -32009, callbacks fail. */
void              _tether_connection_go_away        (TetherConnection        *self,
                                                     gint64                   deadline);
gboolean          _tether_connection_is_going_away  (TetherConnection        *self);
/* Closes politely (close frame) when @error is NULL, at once otherwise;
 * pending calls fail and invocations are cancelled either way. */
void              _tether_connection_close          (TetherConnection        *self,
                                                     const GError            *error);

/* For TetherInvocation: @result (a floating reference is sunk), or if it
 * is NULL the error. */
/* Client: the server's hello accepted binary frames. */
void              _tether_connection_set_binary     (TetherConnection        *self);
/* Server: @extensions (TetherHelloExtension*, tether-handshake-private.h;
 * the owner's, shared: a reference is taken and dropped once the hello
 * was handled) answer the members of the hello they name. Before the
 * hello arrives. */
typedef struct _TetherHelloExtension TetherHelloExtension;
void              _tether_connection_set_hello_extensions (TetherConnection *self,
                                                           GPtrArray        *extensions);
/* Whether the connection runs over TLS. */
gboolean          _tether_connection_is_tls         (TetherConnection        *self);
void              _tether_connection_send_reply     (TetherConnection        *self,
                                                     gpointer                 batch,
                                                     const TetherMessageId   *id,
                                                     GVariant                *result,
                                                     int                      error_code,
                                                     const char              *error_message);
void              _tether_connection_forget_invocation (TetherConnection     *self,
                                                     const char              *id_key,
                                                     TetherInvocation        *invocation);

/* For tether_invocation_extend_deadline(): tells the caller. */
gboolean          _tether_connection_send_extend    (TetherConnection        *self,
                                                     const TetherMessageId   *id,
                                                     guint                    timeout_ms,
                                                     GError                 **error);
guint             _tether_connection_get_incoming_max_timeout (TetherConnection *self);


G_END_DECLS
