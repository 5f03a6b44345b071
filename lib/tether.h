/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define TETHER_INSIDE
# include "tether-version.h"
# include "tether-version-macros.h"
# include "tether-types.h"
# include "tether-enum-types.h"
# include "tether-error.h"
# include "tether-identity.h"
# include "tether-credentials.h"
# include "tether-invocation.h"
# include "tether-method-info.h"
# include "tether-peer.h"
# include "tether-server.h"
# include "tether-client.h"
# include "tether-callback-listener.h"
# include "tether-detached-callback.h"
#undef TETHER_INSIDE
