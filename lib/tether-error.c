/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-error-private.h"
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

/* Tether's own errors and the wire codes that stand for them. The first
 * row of a code is the one a wire code maps back to. */
static const struct
{
  TetherError       local;
  TetherRemoteError wire;
} wire_codes[] = {
  { TETHER_ERROR_INVALID_MESSAGE, TETHER_REMOTE_ERROR_INVALID_REQUEST },
  { TETHER_ERROR_MESSAGE_TOO_LARGE, TETHER_REMOTE_ERROR_INVALID_REQUEST },
  { TETHER_ERROR_TOO_DEEP, TETHER_REMOTE_ERROR_INVALID_REQUEST },
  { TETHER_ERROR_NO_SUCH_METHOD, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND },
  { TETHER_ERROR_INVALID_PARAMS, TETHER_REMOTE_ERROR_INVALID_PARAMS },
  { TETHER_ERROR_RESOURCE_EXHAUSTED, TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED },
  { TETHER_ERROR_UNAUTHENTICATED, TETHER_REMOTE_ERROR_UNAUTHENTICATED },
  { TETHER_ERROR_PERMISSION_DENIED, TETHER_REMOTE_ERROR_PERMISSION_DENIED },
  { TETHER_ERROR_IMPERSONATION_DENIED, TETHER_REMOTE_ERROR_IMPERSONATION_DENIED },
  { TETHER_ERROR_CALLBACK_REJECTED, TETHER_REMOTE_ERROR_CALLBACK_REJECTED },
  { TETHER_ERROR_CHANNEL_BINDING_FAILED, TETHER_REMOTE_ERROR_CHANNEL_BINDING_FAILED },
};

int
_tether_error_to_wire_code (const GError *error)
{
  if (error->domain == TETHER_REMOTE_ERROR)
    return error->code;

  if (error->domain == TETHER_ERROR)
    {
      for (guint i = 0; i < G_N_ELEMENTS (wire_codes); i++)
        if (wire_codes[i].local == (TetherError) error->code)
          return wire_codes[i].wire;
      return TETHER_REMOTE_ERROR_INTERNAL_ERROR;
    }

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return TETHER_REMOTE_ERROR_CANCELLED;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return TETHER_REMOTE_ERROR_DEADLINE_EXCEEDED;

  return TETHER_REMOTE_ERROR_INTERNAL_ERROR;
}

TetherError
_tether_error_from_wire_code (int code)
{
  for (guint i = 0; i < G_N_ELEMENTS (wire_codes); i++)
    if ((int) wire_codes[i].wire == code)
      return wire_codes[i].local;
  return TETHER_ERROR_FAILED;
}

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
