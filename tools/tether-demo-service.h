/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <tether.h>

G_BEGIN_DECLS

/* Where the service reports what it sees from its side (cancellations,
 * deadlines), so the demo can show evidence from the other end. */
typedef void (*DemoLogFunc) (const char *message, gpointer user_data);

void demo_service_add_methods (TetherServer *server,
                               DemoLogFunc   log,
                               gpointer      log_data);

G_END_DECLS
