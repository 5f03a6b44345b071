/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <gio/gio.h>

#include "tether-types.h"

G_BEGIN_DECLS

#define TETHER_TYPE_CALLBACK_LISTENER (tether_callback_listener_get_type ())
TETHER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (TetherCallbackListener, tether_callback_listener,
                      TETHER, CALLBACK_LISTENER, GObject)

TETHER_AVAILABLE_IN_ALL
TetherCallbackListener *tether_callback_listener_new         (void);
TETHER_AVAILABLE_IN_ALL
gboolean            tether_callback_listener_listen          (TetherCallbackListener  *self,
                                                              const char              *uri,
                                                              GError                 **error);
TETHER_AVAILABLE_IN_ALL
const char * const *tether_callback_listener_get_uris        (TetherCallbackListener  *self);
TETHER_AVAILABLE_IN_ALL
void                tether_callback_listener_add_method      (TetherCallbackListener  *self,
                                                              const char              *name,
                                                              TetherMethodHandler      handler,
                                                              gpointer                 user_data,
                                                              GDestroyNotify           destroy);
TETHER_AVAILABLE_IN_ALL
void                tether_callback_listener_set_tls_certificate (TetherCallbackListener *self,
                                                              GTlsCertificate         *certificate);
TETHER_AVAILABLE_IN_ALL
GTlsCertificate    *tether_callback_listener_get_tls_certificate (TetherCallbackListener *self);
TETHER_AVAILABLE_IN_ALL
void                tether_callback_listener_close           (TetherCallbackListener  *self);

G_END_DECLS
