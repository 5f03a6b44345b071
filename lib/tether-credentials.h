/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <gio/gio.h>

#include "tether-types.h"

G_BEGIN_DECLS

#define TETHER_TYPE_CREDENTIALS (tether_credentials_get_type ())
TETHER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (TetherCredentials, tether_credentials, TETHER, CREDENTIALS, GObject)

TETHER_AVAILABLE_IN_ALL
TetherImpersonationLevel tether_credentials_get_level    (TetherCredentials *self);
TETHER_AVAILABLE_IN_ALL
const char         *tether_credentials_get_subject       (TetherCredentials *self);
TETHER_AVAILABLE_IN_ALL
const char         *tether_credentials_get_holder        (TetherCredentials *self);
TETHER_AVAILABLE_IN_ALL
const char         *tether_credentials_get_issuer        (TetherCredentials *self);
TETHER_AVAILABLE_IN_ALL
const char         *tether_credentials_get_audience      (TetherCredentials *self);
TETHER_AVAILABLE_IN_ALL
gint64              tether_credentials_get_expiry        (TetherCredentials *self);
TETHER_AVAILABLE_IN_ALL
const char * const *tether_credentials_get_chain         (TetherCredentials *self);
TETHER_AVAILABLE_IN_ALL
const char         *tether_credentials_get_token         (TetherCredentials *self);

G_END_DECLS
