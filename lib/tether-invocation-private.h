/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>

#include "tether-invocation.h"
#include "tether-connection-private.h"

G_BEGIN_DECLS

/* Takes over @params (a full reference) and steals @id (a jansson reference). */
TetherInvocation *_tether_invocation_new          (TetherConnection *conn,
                                                   const char       *method,
                                                   GVariant         *params,
                                                   json_t           *id,
                                                   char             *id_key,
                                                   gint64            deadline,
                                                   gpointer          batch);
/* Cancels the invocation's cancellable. @suppress_reply: the caller will
 * not read an answer any more (it cancelled, or the connection closed). */
void              _tether_invocation_cancel       (TetherInvocation *self,
                                                   gboolean          suppress_reply);
void              _tether_invocation_set_peer     (TetherInvocation *self,
                                                   TetherPeer       *peer);

G_END_DECLS
