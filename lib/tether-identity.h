/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <gio/gio.h>

#include "tether-types.h"

G_BEGIN_DECLS

#define TETHER_TYPE_IDENTITY (tether_identity_get_type ())
TETHER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (TetherIdentity, tether_identity, TETHER, IDENTITY, GObject)

TETHER_AVAILABLE_IN_ALL
TetherTransportKind  tether_identity_get_transport          (TetherIdentity *self);
TETHER_AVAILABLE_IN_ALL
gboolean             tether_identity_is_authenticated       (TetherIdentity *self);
TETHER_AVAILABLE_IN_ALL
gint64               tether_identity_get_uid                (TetherIdentity *self);
TETHER_AVAILABLE_IN_ALL
gint64               tether_identity_get_gid                (TetherIdentity *self);
TETHER_AVAILABLE_IN_ALL
gint64               tether_identity_get_pid                (TetherIdentity *self);
TETHER_AVAILABLE_IN_ALL
const char          *tether_identity_get_address            (TetherIdentity *self);
TETHER_AVAILABLE_IN_ALL
GTlsCertificate     *tether_identity_get_certificate        (TetherIdentity *self);
TETHER_AVAILABLE_IN_ALL
const char          *tether_identity_get_certificate_sha256 (TetherIdentity *self);
TETHER_AVAILABLE_IN_ALL
const char          *tether_identity_get_username           (TetherIdentity *self);
TETHER_AVAILABLE_IN_ALL
const char          *tether_identity_get_auth_mechanism     (TetherIdentity *self);
TETHER_AVAILABLE_IN_ALL
char                *tether_identity_to_string              (TetherIdentity *self);
TETHER_AVAILABLE_IN_0_2
const char          *tether_identity_get_proxy_address      (TetherIdentity *self);

G_END_DECLS
