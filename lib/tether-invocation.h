/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <gio/gio.h>

#include "tether-types.h"

G_BEGIN_DECLS

#define TETHER_TYPE_INVOCATION (tether_invocation_get_type ())
TETHER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (TetherInvocation, tether_invocation, TETHER, INVOCATION, GObject)

TETHER_AVAILABLE_IN_ALL
const char     *tether_invocation_get_method_name   (TetherInvocation     *self);
TETHER_AVAILABLE_IN_ALL
GVariant       *tether_invocation_get_parameters    (TetherInvocation     *self);
TETHER_AVAILABLE_IN_ALL
gboolean        tether_invocation_is_notification   (TetherInvocation     *self);
TETHER_AVAILABLE_IN_ALL
TetherPeer     *tether_invocation_get_peer          (TetherInvocation     *self);
TETHER_AVAILABLE_IN_ALL
TetherIdentity *tether_invocation_get_identity      (TetherInvocation     *self);
TETHER_AVAILABLE_IN_ALL
TetherImpersonationLevel tether_invocation_get_impersonation_level (TetherInvocation *self);
TETHER_AVAILABLE_IN_ALL
TetherCredentials *tether_invocation_impersonate    (TetherInvocation     *self,
                                                     GError              **error);
TETHER_AVAILABLE_IN_ALL
TetherCredentials *tether_invocation_get_acting_as  (TetherInvocation     *self);
TETHER_AVAILABLE_IN_ALL
gint64          tether_invocation_get_deadline      (TetherInvocation     *self);
TETHER_AVAILABLE_IN_ALL
gint64          tether_invocation_get_remaining_ms  (TetherInvocation     *self);
TETHER_AVAILABLE_IN_ALL
GCancellable   *tether_invocation_get_cancellable   (TetherInvocation     *self);

TETHER_AVAILABLE_IN_ALL
void            tether_invocation_call_peer_async   (TetherInvocation     *self,
                                                     const char           *method,
                                                     GVariant             *params,
                                                     int                   timeout_msec,
                                                     GCancellable         *cancellable,
                                                     GAsyncReadyCallback   callback,
                                                     gpointer              user_data);
TETHER_AVAILABLE_IN_ALL
GVariant       *tether_invocation_call_peer_finish  (TetherInvocation     *self,
                                                     GAsyncResult         *result,
                                                     GError              **error);

TETHER_AVAILABLE_IN_ALL
void            tether_invocation_call_peer_full_async (TetherInvocation         *self,
                                                     const char               *method,
                                                     GVariant                 *params,
                                                     TetherImpersonationLevel  level,
                                                     TetherCredentials        *act_as,
                                                     int                       timeout_msec,
                                                     GCancellable             *cancellable,
                                                     GAsyncReadyCallback       callback,
                                                     gpointer                  user_data);
TETHER_AVAILABLE_IN_ALL
GVariant       *tether_invocation_call_peer_full_finish (TetherInvocation  *self,
                                                     GAsyncResult      *result,
                                                     GError           **error);

TETHER_AVAILABLE_IN_ALL
void            tether_invocation_return_value      (TetherInvocation     *self,
                                                     GVariant             *value);
TETHER_AVAILABLE_IN_ALL
void            tether_invocation_return_error_literal (TetherInvocation  *self,
                                                     int                   code,
                                                     const char           *message);
TETHER_AVAILABLE_IN_ALL
void            tether_invocation_return_error      (TetherInvocation     *self,
                                                     int                   code,
                                                     const char           *format,
                                                     ...) G_GNUC_PRINTF (3, 4);
TETHER_AVAILABLE_IN_ALL
void            tether_invocation_return_gerror     (TetherInvocation     *self,
                                                     const GError         *error);
TETHER_AVAILABLE_IN_ALL
gboolean        tether_invocation_has_replied       (TetherInvocation     *self);
TETHER_AVAILABLE_IN_ALL
gboolean        tether_invocation_extend_deadline   (TetherInvocation     *self,
                                                     guint                 timeout_msec,
                                                     GError              **error);

G_END_DECLS
