/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tether-client.h"
#include "tether-connection-private.h"

G_BEGIN_DECLS

/* The open connection, or NULL (detached callbacks sign through it). */
TetherConnection *_tether_client_get_connection (TetherClient *self);

G_END_DECLS
