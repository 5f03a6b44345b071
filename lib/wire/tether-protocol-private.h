/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Wire constants that more than one layer needs (docs/protocol.md). */

/* The version in rpc.tether.hello. */
#define TETHER_PROTOCOL_VERSION 1
/* The WebSocket subprotocol a Tether peer offers and a server selects. */
#define TETHER_SUBPROTOCOL      "tether.v1"
/* The largest HTTP head (upgrade request or answer) either side reads. */
#define TETHER_MAX_HANDSHAKE_BYTES (16 * 1024)
/* The hello's feature that turns binary frames on (tether-binary-private.h). */
#define TETHER_FEATURE_BINARY   "binary"
