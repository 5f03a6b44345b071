/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <glib.h>

#ifndef _TETHER_EXTERN
# define _TETHER_EXTERN __attribute__((visibility ("default"))) extern
#endif

#define TETHER_VERSION_0_1 (G_ENCODE_VERSION (0, 1))

#ifndef TETHER_VERSION_MIN_REQUIRED
# define TETHER_VERSION_MIN_REQUIRED TETHER_VERSION_0_1
#endif
#ifndef TETHER_VERSION_MAX_ALLOWED
# define TETHER_VERSION_MAX_ALLOWED TETHER_VERSION_0_1
#endif

#define TETHER_AVAILABLE_IN_ALL _TETHER_EXTERN
#define TETHER_AVAILABLE_IN_0_1 _TETHER_EXTERN
#define TETHER_DEPRECATED_IN_0_1 G_DEPRECATED _TETHER_EXTERN
/**
 * TETHER_DEPRECATED_IN_0_1_FOR:
 * @f: the symbol to use instead
 *
 * Marks a symbol deprecated in Tether 0.1, in favour of @f.
 *
 * Since: 0.1
 */
#define TETHER_DEPRECATED_IN_0_1_FOR(f) G_DEPRECATED_FOR (f) _TETHER_EXTERN
