/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tether-identity.h"

G_BEGIN_DECLS

/* Captured once, at accept or connect, from the socket itself: never
 * re-read later from a raw pid. */
TetherIdentity *_tether_identity_new_from_socket (TetherTransportKind  transport,
                                                  GSocketConnection   *connection,
                                                  GTlsCertificate     *peer_certificate,
                                                  gboolean             certificate_verified);

G_END_DECLS
