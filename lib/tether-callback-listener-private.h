/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tether-callback-listener.h"
#include "tether-server.h"

G_BEGIN_DECLS

/* For the tests. */
guint         _tether_callback_listener_get_n_sessions (TetherCallbackListener *self);
TetherServer *_tether_callback_listener_get_server     (TetherCallbackListener *self);

G_END_DECLS
