/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Admission: who gets into a server, from the accepted socket to an open
 * WebSocket. Every connection holds a place in the server's connection
 * pool, charged to its identity, from accept until it closes; a TLS
 * handshake also holds a place in the TLS handshake pool (each takes a
 * glib-networking thread); accept, TLS, the upgrade and the hello share
 * one deadline. The transport does the work (TetherAccept); this decides,
 * and says through its owner what it refused and why. */

#include "tether-accept-private.h"
#include "tether-connection-private.h"
#include "tether-limits-private.h"

G_BEGIN_DECLS

typedef struct _TetherAdmission TetherAdmission;
/* A connection's place in the connection pool. */
typedef struct _TetherAdmissionPlace TetherAdmissionPlace;

typedef struct
{
  /* An action taken against @identity (@conn once it is in, else NULL):
   * the owner logs it and signals. */
  void (*report)   (gpointer           owner,
                    TetherConnection  *conn,
                    TetherIdentity    *identity,
                    TetherMisbehavior  reason,
                    const char        *details,
                    const char        *action);
  /* In: the owner makes the engine and starts it on @ws, with the hello
   * due by @hello_deadline, and hands it @place with
   * _tether_admission_place_set_connection(); it frees @place when the
   * connection is gone. */
  void (*admitted) (gpointer           owner,
                    TetherWebsocket   *ws,
                    TetherGuardStream *guard,
                    TetherIdentity    *identity,
                    gint64             hello_deadline,
                    TetherAdmissionPlace *place);
} TetherAdmissionFuncs;

/* @limits: the owner's limits (tether-limits.c), read when needed; tell
 * _tether_admission_limits_changed() when they change. */
TetherAdmission *_tether_admission_new             (TetherScheduler            *scheduler,
                                                    const guint                *limits,
                                                    const TetherAdmissionFuncs *funcs,
                                                    gpointer                    owner);
void             _tether_admission_free            (TetherAdmission            *self);
void             _tether_admission_limits_changed  (TetherAdmission            *self);
/* A connection a listener accepted. Refused at once when it has no place
 * in the pool; otherwise accepted (TLS, upgrade) within the deadline. */
void             _tether_admission_offer           (TetherAdmission            *self,
                                                    GSocketConnection          *connection,
                                                    const TetherAcceptOptions  *options);
/* Drops every connection not yet in. */
void             _tether_admission_drop_pending    (TetherAdmission            *self);
/* Connections refused at the door so far. */
guint64          _tether_admission_get_rejected    (TetherAdmission            *self);

/* The place is @conn's now: when the pool evicts it, @conn is closed. */
void             _tether_admission_place_set_connection (TetherAdmissionPlace  *place,
                                                         TetherConnection      *conn);
void             _tether_admission_place_free      (TetherAdmissionPlace       *place);

G_END_DECLS
