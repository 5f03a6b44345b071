/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tether-invocation.h"
#include "tether-connection-private.h"
#include "tether-message-private.h"

G_BEGIN_DECLS

/* Takes over @params (a full reference), @id's contents (ABSENT for a
 * notification) and @id_key. */
TetherInvocation *_tether_invocation_new          (TetherConnection *conn,
                                                   const char       *method,
                                                   GVariant         *params,
                                                   TetherMessageId  *id,
                                                   char             *id_key,
                                                   gint64            deadline,
                                                   gpointer          batch);
/* Cancels the invocation's cancellable. @suppress_reply: the caller will
 * not read an answer any more (it cancelled, or the connection closed). */
/* A call made on behalf of an invocation (a callback): cancelled with it.
 * Embedded in the call; the invocation does not own it, and forgets it
 * when it is disposed (the call then just runs to its deadline). */
typedef struct _TetherChildCall TetherChildCall;
struct _TetherChildCall
{
  GList              link;    /* in the parent's children; data = this */
  TetherInvocation  *parent;  /* unowned; NULL once removed or detached */
  void             (*cancel) (TetherChildCall *child);
};

/* Whether the invocation was cancelled, without making its cancellable. */
gboolean          _tether_invocation_is_cancelled  (TetherInvocation *self);
void              _tether_invocation_add_child     (TetherInvocation *self,
                                                    TetherChildCall  *child);
void              _tether_invocation_remove_child  (TetherChildCall  *child);
void              _tether_invocation_cancel       (TetherInvocation *self,
                                                   gboolean          suppress_reply);
void              _tether_invocation_set_peer     (TetherInvocation *self,
                                                   TetherPeer       *peer);
/* A signed request (detached callbacks) keeps its signature and the
 * compact JSON of its params as they arrived (NULL: they came in a
 * binary frame), for the listener to verify. Takes both. */
void              _tether_invocation_set_signed   (TetherInvocation    *self,
                                                   TetherDetachedClaim *claim,
                                                   char                *params_json);
/* The request's signature, if it had one, else NULL. */
const TetherDetachedClaim *_tether_invocation_get_claim (TetherInvocation *self);
/* Its place in the server's pool of incoming work; released when it is
 * answered. */
TetherPoolEntry  *_tether_invocation_get_pool_entry  (TetherInvocation *self);
TetherInvocation *_tether_invocation_from_pool_entry (TetherPoolEntry  *entry);
/* The connection the call came on (NULL once it is gone). */
TetherConnection *_tether_invocation_get_connection   (TetherInvocation *self);
/* The compact JSON of a signed request's params as they arrived ("null"
 * without), or NULL. */
char             *_tether_invocation_dup_params_json (TetherInvocation *self);

/* What the caller granted: @token is the request's token (may be NULL),
 * @acting_as its verified "act_as" credentials (may be NULL). */
void              _tether_invocation_set_impersonation (TetherInvocation         *self,
                                                        TetherImpersonationLevel  level,
                                                        const char               *token,
                                                        TetherCredentials        *acting_as);

G_END_DECLS
