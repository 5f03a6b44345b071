/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <gio/gio.h>

#include "tether-types.h"

G_BEGIN_DECLS

#define TETHER_TYPE_PEER (tether_peer_get_type ())
TETHER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (TetherPeer, tether_peer, TETHER, PEER, GObject)

TETHER_AVAILABLE_IN_ALL
void            tether_peer_call_async         (TetherPeer           *self,
                                                const char           *method,
                                                GVariant             *params,
                                                int                   timeout_msec,
                                                GCancellable         *cancellable,
                                                GAsyncReadyCallback   callback,
                                                gpointer              user_data);
TETHER_AVAILABLE_IN_ALL
GVariant       *tether_peer_call_finish        (TetherPeer           *self,
                                                GAsyncResult         *result,
                                                GError              **error);
TETHER_AVAILABLE_IN_ALL
void            tether_peer_call_full_async    (TetherPeer               *self,
                                                const char               *method,
                                                GVariant                 *params,
                                                TetherImpersonationLevel  level,
                                                TetherCredentials        *act_as,
                                                int                       timeout_msec,
                                                GCancellable             *cancellable,
                                                GAsyncReadyCallback       callback,
                                                gpointer                  user_data);
TETHER_AVAILABLE_IN_ALL
GVariant       *tether_peer_call_full_finish   (TetherPeer           *self,
                                                GAsyncResult         *result,
                                                GError              **error);
TETHER_AVAILABLE_IN_ALL
gboolean        tether_peer_send_notification  (TetherPeer           *self,
                                                const char           *method,
                                                GVariant             *params,
                                                GError              **error);
TETHER_AVAILABLE_IN_ALL
TetherIdentity *tether_peer_get_identity       (TetherPeer           *self);
TETHER_AVAILABLE_IN_ALL
gboolean        tether_peer_is_tether          (TetherPeer           *self);
TETHER_AVAILABLE_IN_ALL
gboolean        tether_peer_is_closed          (TetherPeer           *self);
TETHER_AVAILABLE_IN_ALL
guint           tether_peer_get_n_pending_calls (TetherPeer          *self);
TETHER_AVAILABLE_IN_ALL
void            tether_peer_close              (TetherPeer           *self);
TETHER_AVAILABLE_IN_ALL
TetherStatistics *tether_peer_get_statistics   (TetherPeer           *self);
TETHER_AVAILABLE_IN_ALL
gboolean        tether_peer_is_quarantined     (TetherPeer           *self);
TETHER_AVAILABLE_IN_ALL
TetherDetachedCallback *tether_peer_get_detached_callback (TetherPeer *self);

TETHER_AVAILABLE_IN_ALL
TetherImpersonationLevel tether_peer_get_callback_impersonation_level (TetherPeer *self);

G_END_DECLS
