/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tether-server.h"

G_BEGIN_DECLS

/* Answers every method the server does not hold (undeclared parameters,
 * any peer): the callback listener verifies each delivery before it
 * dispatches to its own methods. */
void _tether_server_set_fallback_method (TetherServer        *self,
                                         TetherMethodHandler  handler,
                                         gpointer             user_data,
                                         GDestroyNotify       destroy);

/* Tests: the host this server answers to as an audience ("host:<id>");
 * NULL restores /etc/machine-id. */
void _tether_server_set_host_id (TetherServer *self,
                                 const char   *host_id);

G_END_DECLS
