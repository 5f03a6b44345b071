/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The engine's insides, shared by the files of core/ that make it up
 * (docs/architecture.md): tether-connection.c (the object, sending,
 * lifecycle and teardown), tether-calls.c (calls out: pending calls,
 * deadlines, cancellation, answers), tether-dispatch.c (messages in:
 * requests and notifications to the method table), tether-handshake.c
 * (the hello and SASL, both sides) and tether-policing.c (what a peer may
 * not do, and what is done about it). Nothing outside core/ includes
 * this: the rest of the library has tether-connection-private.h. */

#include "tether-connection-private.h"
#include "tether-handshake-private.h"
#include "tether-impersonation-private.h"
#include "tether-invocation-private.h"
#include "tether-policing-private.h"

G_BEGIN_DECLS

typedef enum
{
  STATE_NEW,
  STATE_HELLO,    /* server: tether.v1 peer, waiting for rpc.tether.hello */
  STATE_AUTH,     /* server: SASL under way in rpc.tether.auth steps */
  STATE_OPEN,
  STATE_CLOSING,  /* close frame sent, waiting for the peer's */
  STATE_CLOSED,
} ConnectionState;

/* A call in flight. Small on purpose (DESIGN.md: under 1 KiB per pending
 * call, everything included): no timer of its own, just a heap slot. */
typedef struct
{
  TetherDeadline    deadline;   /* first: the scheduler hands it back */
  guint64           id;
  GTask            *task;
  TetherConnection *conn;       /* unowned: the table is the conn's */
  TetherChildCall   child;        /* of the invocation it was made for */
  gint64            hard_deadline; /* leases never extend past this */
  gulong            cancel_id;
  guint             leased : 1;     /* the callee asked for more time */
  /* The time it was given, µs (at most max-callback-timeout, 600 s):
   * without a lease it started at deadline.when - budget_us. */
  guint32           budget_us;
  TetherPoolEntry   slot;       /* server: its place in the callback pool */
} PendingCall;

/* The responses of one incoming batch, sent together once every request
 * in it was answered (JSON-RPC 2.0 §6). */
typedef struct
{
  int               refs;
  GString          *responses; /* "[r1,r2" so far; NULL before the first */
  TetherConnection *conn;
} Batch;

struct _TetherConnection
{
  GObject                            parent_instance;

  TetherConnectionRole               role;
  ConnectionState                    state;
  GMainContext                      *context;
  TetherScheduler                   *scheduler;
  TetherLimits                       limits;
  TetherMethodTable                 *methods;     /* the owner's */
  const TetherConnectionOwnerFuncs  *owner_funcs;
  gpointer                           owner;       /* unowned */
  TetherPeer                        *public;      /* unowned */
  TetherImpPolicy                   *imp_policy;  /* the owner's, shared */

  TetherWebsocket                   *ws;
  TetherGuardStream                 *guard;
  TetherIdentity                    *identity;
  gulong                             guard_violation_id;
  gboolean                           tether;      /* peer speaks tether.v1 */
  gboolean                           binary;      /* both hellos listed "binary"; used once open */
  gboolean                           pool_full;   /* a notification ran uncharged: wait for room */

  GHashTable                        *pending;     /* &id → PendingCall* */
  guint64                            next_id;
  GHashTable                        *incoming;    /* id key → TetherInvocation* (unowned) */
  GHashTable                        *notifications; /* TetherInvocation* (unowned) still held */

  TetherPool                        *callback_pool; /* server: all its peers' callbacks */
  TetherPool                        *invocation_pool; /* server: all its peers' incoming work */
  TetherDeadline                     flood_deadline; /* not reading for lack of room since */
  TetherAuthPolicy                  *auth_policy; /* server */
  TetherHelloServer                 *hello;       /* server: until the peer is in */
  GPtrArray                         *hello_extensions; /* the owner's, until the hello */
  TetherDeadline                     handshake_deadline;
  TetherDeadline                     idle_deadline; /* keepalive and idle check */
  guint64                            idle_bytes;  /* bytes read at the last check */
  gint64                             last_heard;  /* when a check last found new bytes */
  guint64                            idle_frames; /* frames heard (pongs aside) then */
  TetherPolicing                     policing;    /* strikes, quarantine, abandoned ids */
  gboolean                           warned_unsolicited;
  TetherStatistics                   stats;       /* counters kept here; bytes from the guard */
  TetherDeadline                     close_deadline;
  gboolean                           closing;     /* polite close in progress */
  gushort                            close_code;  /* of the polite close: 1000, or 1001 */
  gboolean                           going_away;  /* draining: no new calls from the peer */
  /* The goaway's ping is not answered yet: what the peer sends until the
   * pong it sent before it read the goaway, and is served. */
  gboolean                           goaway_unacked;
  gint64                             goaway_end;  /* when what is left is cancelled */
  TetherDeadline                     goaway_deadline; /* a check, or the end */
  TetherDeadline                     age_deadline; /* server: max-connection-age */
  GError                            *close_error;
  guint64                            bytes_handed; /* to the WebSocket, framing included */
};

/* tether-connection.c */
gboolean  _tether_connection_can_send       (TetherConnection       *self);
/* Binary frames go only to a peer that asked for them, once open. */
gboolean  _tether_connection_binary         (TetherConnection       *self);
gboolean  _tether_connection_send_message   (TetherConnection       *self,
                                             const TetherMessage    *message,
                                             GError                **error);
/* Answers a request Tether itself refused (no invocation was made). */
void      _tether_connection_reply_error    (TetherConnection       *self,
                                             Batch                  *batch,
                                             const TetherMessageId  *id,
                                             int                     code,
                                             const char             *message);
void      _tether_batch_unref               (Batch                  *batch);
/* One log line (or the owner's signal and log line) per action taken
 * against the peer; taking it is the caller's. */
void      _tether_connection_report         (TetherConnection       *self,
                                             TetherMisbehavior       reason,
                                             const char             *details,
                                             const char             *action);
/* The single teardown path (see tether-connection.c). */
void      _tether_connection_teardown       (TetherConnection       *self,
                                             const GError           *error);

/* Draining: once nothing is in progress, the connection closes (1001).
 * Called when a call or an invocation ends. */
void      _tether_connection_check_drained  (TetherConnection       *self);

/* tether-calls.c */
void      _tether_connection_handle_response (TetherConnection      *self,
                                              TetherMessage         *message);
void      _tether_connection_handle_extend  (TetherConnection       *self,
                                             TetherMessage          *message);
/* Teardown: every pending call fails with @reason. */
void      _tether_connection_fail_pending   (TetherConnection       *self,
                                             const char             *reason);

/* tether-dispatch.c */
void      _tether_connection_on_message     (gpointer                user_data,
                                             gboolean                binary,
                                             GBytes                 *bytes);
/* Tether's own requests carry small objects: their params as a{sv}, or
 * NULL when they are not an object. */
GVariant *_tether_connection_control_params (TetherConnection       *self,
                                             TetherMessage          *message);
/* Incoming calls and notifications in progress. */
guint     _tether_connection_n_invocations  (TetherConnection       *self);

/* tether-handshake.c: the server's side of rpc.tether.hello and
 * rpc.tether.auth on the engine. */
void      _tether_connection_handle_hello   (TetherConnection       *self,
                                             Batch                  *batch,
                                             TetherMessage          *message);
void      _tether_connection_handle_auth    (TetherConnection       *self,
                                             Batch                  *batch,
                                             TetherMessage          *message);

/* tether-policing.c: the watches on a connection. */
/* Past max-unsent-bytes the peer is cut off (after every send). */
void      _tether_policing_check_backlog    (TetherConnection       *self);
/* Reads on while there is room for the peer's work; stops, and starts
 * the flood timer, while there is not. */
void      _tether_policing_check_room       (TetherConnection       *self);
/* The keepalive and idle check, and (server, Tether peer) the deadline
 * for the hello. */
void      _tether_policing_watch            (TetherConnection       *self,
                                             gint64                  hello_deadline);
/* The hello is done: its deadline goes. */
void      _tether_policing_hello_done       (TetherConnection       *self);
/* Every watch stops. */
void      _tether_policing_unwatch          (TetherConnection       *self);

G_END_DECLS
