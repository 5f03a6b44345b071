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

/* The same transport facts, plus who authenticated in the hello. */
TetherIdentity *_tether_identity_new_authenticated (TetherIdentity *transport,
                                                   const char     *username,
                                                   const char     *mechanism);

/* Who this is for the server's shared pools and per-identity caps: the
 * uid on unix:, an authenticated user or verified certificate where there
 * is one, else the client's address (IPv6 by its /64 prefix). */
const char     *_tether_identity_get_pool_key (TetherIdentity *self);

/* @seen (the connection's own) as a PROXY protocol header from a trusted
 * proxy says: the client at @client, through the proxy @seen names. */
TetherIdentity *_tether_identity_new_proxied (TetherIdentity     *seen,
                                             GInetSocketAddress *client);

/* Names nobody: what an ANONYMOUS call shows its handler. */
TetherIdentity *_tether_identity_new_anonymous (TetherTransportKind transport);

G_END_DECLS
