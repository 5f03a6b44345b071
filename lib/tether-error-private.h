/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* GError ⇄ JSON-RPC error code, in one place for both directions
 * (tether-error.c). */

#include "tether-error.h"

G_BEGIN_DECLS

/* The code a peer is answered with for @error: TETHER_REMOTE_ERROR codes
 * travel as they are, Tether's own errors and GIO's cancellation and
 * timeout map to their wire codes, anything else is -32603. */
int          _tether_error_to_wire_code   (const GError *error);
/* The local TetherError a peer's @code stands for (what this side would
 * have raised itself), or TETHER_ERROR_FAILED when none does. */
TetherError  _tether_error_from_wire_code (int           code);

G_END_DECLS
