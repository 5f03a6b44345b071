/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <gio/gio.h>

#include "tether-types.h"

G_BEGIN_DECLS

#define TETHER_TYPE_DETACHED_CALLBACK (tether_detached_callback_get_type ())
TETHER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (TetherDetachedCallback, tether_detached_callback,
                      TETHER, DETACHED_CALLBACK, GObject)

TETHER_AVAILABLE_IN_ALL
const char *tether_detached_callback_get_uri             (TetherDetachedCallback *self);
TETHER_AVAILABLE_IN_ALL
gint64      tether_detached_callback_get_expiration_time (TetherDetachedCallback *self);
TETHER_AVAILABLE_IN_ALL
void        tether_detached_callback_call_async          (TetherDetachedCallback *self,
                                                          const char             *method,
                                                          GVariant               *params,
                                                          int                     timeout_msec,
                                                          GCancellable           *cancellable,
                                                          GAsyncReadyCallback     callback,
                                                          gpointer                user_data);
TETHER_AVAILABLE_IN_ALL
GVariant   *tether_detached_callback_call_finish         (TetherDetachedCallback *self,
                                                          GAsyncResult           *result,
                                                          GError                **error);

G_END_DECLS
