/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* TetherServer, continued: who may authenticate (users and their SCRAM
 * secrets) and what callbacks grant (impersonation). The object itself
 * is in tether-server.c. */

#include <string.h>

#include "tether-error.h"
#include "tether-server-impl-private.h"
#include "tether-server-private.h"

#define properties _tether_server_properties

/**
 * tether_server_add_user:
 * @self: a #TetherServer
 * @username: the user name
 * @secrets: the user's SCRAM secrets, as made by
 *   tether_scram_secrets_from_password():
 *   `SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY` (base64 fields)
 * @error: return location for a #GError
 *
 * Adds or replaces a user who may authenticate with SCRAM-SHA-256-PLUS
 * (or SCRAM-SHA-256 where [property@Tether.Server:allow-plain-scram]
 * allows it). The server never holds a password, only what verifies one.
 *
 * Returns: %TRUE if @secrets were valid
 *
 * Since: 0.1
 */
gboolean
tether_server_add_user (TetherServer  *self,
                        const char    *username,
                        const char    *secrets,
                        GError       **error)
{
  g_auto(GStrv) fields = NULL;

  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  g_return_val_if_fail (username != NULL && *username != '\0', FALSE);
  g_return_val_if_fail (secrets != NULL, FALSE);

  fields = g_strsplit_set (secrets, "$:", -1);
  if (!g_str_has_prefix (secrets, "SCRAM-SHA-256$") || g_strv_length (fields) != 5 ||
      g_ascii_strtoull (fields[1], NULL, 10) < 4096)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_FAILED,
                   "Invalid SCRAM secrets for “%s” (expected SCRAM-SHA-256$ITERATIONS:SALT$"
                   "STOREDKEY:SERVERKEY with at least 4096 iterations)", username);
      return FALSE;
    }
  g_hash_table_replace (self->auth_policy->users, g_strdup (username), g_strdup (secrets));
  return TRUE;
}

/**
 * tether_server_load_users:
 * @self: a #TetherServer
 * @path: a users file: one `USERNAME:SECRETS` line per user (as written
 *   by `tether passwd`); empty lines and lines starting with `#` are
 *   skipped
 * @error: return location for a #GError
 *
 * Adds every user of @path with tether_server_add_user().
 *
 * Returns: %TRUE if the whole file was valid
 *
 * Since: 0.1
 */
gboolean
tether_server_load_users (TetherServer  *self,
                          const char    *path,
                          GError       **error)
{
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;

  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  if (!g_file_get_contents (path, &contents, NULL, error))
    return FALSE;
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      char *colon = strchr (line, ':');

      if (*line == '\0' || *line == '#')
        continue;
      if (colon == NULL)
        {
          g_set_error (error, TETHER_ERROR, TETHER_ERROR_FAILED, "%s:%u: expected USERNAME:SECRETS",
                       path, i + 1);
          return FALSE;
        }
      *colon = '\0';
      if (!tether_server_add_user (self, line, colon + 1, error))
        {
          g_prefix_error (error, "%s:%u: ", path, i + 1);
          return FALSE;
        }
    }
  return TRUE;
}

/**
 * tether_scram_secrets_from_password:
 * @password: the password
 * @iterations: PBKDF2 iterations, at least 4096 (600000 is a sound
 *   default today)
 * @error: return location for a #GError
 *
 * Derives what a server needs to verify @password with SCRAM-SHA-256,
 * and no more: `SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY`
 * (PostgreSQL's format; base64 fields) with a fresh random salt. Give it
 * to tether_server_add_user(); the password itself is not kept.
 *
 * Returns: (transfer full): the secrets, or %NULL with @error set
 *
 * Since: 0.1
 */
char *
tether_scram_secrets_from_password (const char  *password,
                                    guint        iterations,
                                    GError     **error)
{
  g_return_val_if_fail (password != NULL, NULL);
  return _tether_scram_secrets_from_password (password, iterations, error);
}

/* ---------------------------------------------------------------------- */
/* Impersonation                                                          */

/**
 * tether_server_set_callback_impersonation_level:
 * @self: a #TetherServer
 * @level: the level
 *
 * Sets [property@Tether.Server:callback-impersonation-level].
 *
 * Since: 0.1
 */
void
tether_server_set_callback_impersonation_level (TetherServer             *self,
                                                TetherImpersonationLevel  level)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (level <= TETHER_IMPERSONATION_LEVEL_DELEGATE);

  if (self->imp_policy->level == level)
    return;
  self->imp_policy->level = level;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CALLBACK_IMPERSONATION_LEVEL]);
}

/**
 * tether_server_get_callback_impersonation_level:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:callback-impersonation-level].
 *
 * Returns: the most the server grants clients on callbacks
 *
 * Since: 0.1
 */
TetherImpersonationLevel
tether_server_get_callback_impersonation_level (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  return self->imp_policy->level;
}

/**
 * tether_server_set_remote_callback_impersonation_level:
 * @self: a #TetherServer
 * @level: the level
 *
 * Sets [property@Tether.Server:remote-callback-impersonation-level].
 *
 * Since: 0.1
 */
void
tether_server_set_remote_callback_impersonation_level (TetherServer             *self,
                                                       TetherImpersonationLevel  level)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (level <= TETHER_IMPERSONATION_LEVEL_DELEGATE);

  if (self->imp_policy->remote_level == level)
    return;
  self->imp_policy->remote_level = level;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REMOTE_CALLBACK_IMPERSONATION_LEVEL]);
}

/**
 * tether_server_get_remote_callback_impersonation_level:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:remote-callback-impersonation-level].
 *
 * Returns: the cap on callbacks to peers on other hosts
 *
 * Since: 0.1
 */
TetherImpersonationLevel
tether_server_get_remote_callback_impersonation_level (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), TETHER_IMPERSONATION_LEVEL_ANONYMOUS);
  return self->imp_policy->remote_level;
}

/**
 * tether_server_set_dangerously_allow_privileged_impersonation:
 * @self: a #TetherServer
 * @allow: whether a privileged server may grant local clients more than
 *   %TETHER_IMPERSONATION_LEVEL_IDENTIFY
 *
 * Sets [property@Tether.Server:dangerously-allow-privileged-impersonation].
 * Allowing it logs a warning.
 *
 * Since: 0.1
 */
void
tether_server_set_dangerously_allow_privileged_impersonation (TetherServer *self,
                                                              gboolean      allow)
{
  g_return_if_fail (TETHER_IS_SERVER (self));

  allow = !!allow;
  if (self->imp_policy->allow_privileged == allow)
    return;
  self->imp_policy->allow_privileged = allow;
  if (allow)
    g_warning ("dangerously-allow-privileged-impersonation is set: %s may grant local "
               "clients impersonate or delegate on callbacks, handing them its privileges",
               self->imp_policy->privileged ? "this privileged server" : "this server");
  g_object_notify_by_pspec (G_OBJECT (self),
                            properties[PROP_DANGEROUSLY_ALLOW_PRIVILEGED_IMPERSONATION]);
}

/**
 * tether_server_get_dangerously_allow_privileged_impersonation:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:dangerously-allow-privileged-impersonation].
 *
 * Returns: whether the privileged clamp is lifted
 *
 * Since: 0.1
 */
gboolean
tether_server_get_dangerously_allow_privileged_impersonation (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  return self->imp_policy->allow_privileged;
}

/**
 * tether_server_is_privileged:
 * @self: a #TetherServer
 *
 * Tells whether the server counts as privileged (effective uid 0 or any
 * effective capability, read when the server was made), and so clamps
 * its callbacks to local clients at %TETHER_IMPERSONATION_LEVEL_IDENTIFY
 * unless [property@Tether.Server:dangerously-allow-privileged-impersonation]
 * is set.
 *
 * Returns: %TRUE if the server's process is privileged
 *
 * Since: 0.1
 */
gboolean
tether_server_is_privileged (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), TRUE);
  return self->imp_policy->privileged;
}

/**
 * tether_server_set_signing_certificate:
 * @self: a #TetherServer
 * @certificate: (nullable): a certificate with its private key
 *
 * Sets [property@Tether.Server:signing-certificate]. A certificate whose
 * key cannot be used is refused with a warning (and tokens cannot be
 * granted).
 *
 * Since: 0.1
 */
void
tether_server_set_signing_certificate (TetherServer    *self,
                                       GTlsCertificate *certificate)
{
  g_autoptr(GError) error = NULL;

  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (certificate == NULL || G_IS_TLS_CERTIFICATE (certificate));

  if (self->imp_policy->signing_certificate == certificate)
    return;
  if (!_tether_imp_policy_set_signing_certificate (self->imp_policy, certificate, &error))
    g_warning ("Signing certificate refused: %s", error->message);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SIGNING_CERTIFICATE]);
}

/**
 * tether_server_get_signing_certificate:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:signing-certificate].
 *
 * Returns: (transfer none) (nullable): the signing certificate
 *
 * Since: 0.1
 */
GTlsCertificate *
tether_server_get_signing_certificate (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->imp_policy->signing_certificate;
}

/**
 * tether_server_add_trusted_issuer:
 * @self: a #TetherServer
 * @certificate: the certificate an issuer signs impersonation tokens with
 *
 * Trusts tokens signed with @certificate's key: a peer that presents one
 * (and is its holder, within its audience and expiry) may act as its
 * subject; handlers see it through
 * [method@Tether.Invocation.get_acting_as]. Only the certificate's public
 * key is used; the algorithm is pinned to that key's.
 *
 * Since: 0.1
 */
void
tether_server_add_trusted_issuer (TetherServer    *self,
                                  GTlsCertificate *certificate)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (G_IS_TLS_CERTIFICATE (certificate));

  g_ptr_array_add (self->imp_policy->trusted, g_object_ref (certificate));
}

void
_tether_server_set_host_id (TetherServer *self,
                            const char   *host_id)
{
  _tether_imp_policy_set_host_id (self->imp_policy, host_id);
}
