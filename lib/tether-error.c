/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-error.h"
#include "tether-types.h"

/* The domain strings are frozen: bindings and applications match on them. */
G_DEFINE_QUARK (tether-error-quark, tether_error)
G_DEFINE_QUARK (tether-remote-error-quark, tether_remote_error)

/**
 * tether_statistics_copy:
 * @self: a #TetherStatistics
 *
 * Returns: (transfer full): a copy of @self
 *
 * Since: 0.1
 */
TetherStatistics *
tether_statistics_copy (const TetherStatistics *self)
{
  return g_memdup2 (self, sizeof *self);
}

/**
 * tether_statistics_free:
 * @self: a #TetherStatistics
 *
 * Frees @self.
 *
 * Since: 0.1
 */
void
tether_statistics_free (TetherStatistics *self)
{
  g_free (self);
}

G_DEFINE_BOXED_TYPE (TetherStatistics, tether_statistics, tether_statistics_copy, tether_statistics_free)
