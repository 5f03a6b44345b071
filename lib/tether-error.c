/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-error.h"

/* The domain strings are frozen: bindings and applications match on them. */
G_DEFINE_QUARK (tether-error-quark, tether_error)
G_DEFINE_QUARK (tether-remote-error-quark, tether_remote_error)
