/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tether-peer.h"
#include "tether-connection-private.h"

G_BEGIN_DECLS

TetherPeer       *_tether_peer_new            (TetherConnection *conn);
TetherConnection *_tether_peer_get_connection (TetherPeer       *self);
void              _tether_peer_set_detached_callback (TetherPeer             *self,
                                                      TetherDetachedCallback *detached);

G_END_DECLS
