/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-error.h"
#include "tether-types.h"

/* The domain strings are frozen: bindings and applications match on them. */
/**
 * tether_error_quark:
 *
 * The error domain of Tether's own local failures, %TETHER_ERROR.
 *
 * Returns: the quark of [error@Tether.Error]
 *
 * Since: 0.1
 */
G_DEFINE_QUARK (tether-error-quark, tether_error)

/**
 * tether_remote_error_quark:
 *
 * The error domain of the errors a peer answered with,
 * %TETHER_REMOTE_ERROR.
 *
 * Returns: the quark of [error@Tether.RemoteError]
 *
 * Since: 0.1
 */
G_DEFINE_QUARK (tether-remote-error-quark, tether_remote_error)

/**
 * tether_statistics_copy:
 * @self: a #TetherStatistics
 *
 * Copies @self.
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
