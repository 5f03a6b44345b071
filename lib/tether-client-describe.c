/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* TetherClient, continued: the methods a client offers its server (its
 * callbacks) and their descriptions, which it answers rpc.discover with.
 * The object itself is in tether-client.c. */

#include "tether-client-impl-private.h"
#include "tether-discover-private.h"
#include "tether-method-info-private.h"

#define properties _tether_client_properties

/**
 * tether_client_add_method:
 * @self: a #TetherClient
 * @name: the method name (not starting with `rpc.`)
 * @handler: (scope notified) (closure user_data) (destroy destroy): the handler
 * @user_data: data for @handler
 * @destroy: (nullable): frees @user_data when the method is removed
 *
 * Adds a method the server may call back, with undeclared parameters
 * (`a{sv}` for named, `av` for positional).
 *
 * Since: 0.1
 */
void
tether_client_add_method (TetherClient        *self,
                          const char          *name,
                          TetherMethodHandler  handler,
                          gpointer             user_data,
                          GDestroyNotify       destroy)
{
  g_return_if_fail (TETHER_IS_CLIENT (self));
  _tether_method_table_add (self->methods, name, NULL, NULL, TETHER_ACCESS_ANY,
                            handler, user_data, destroy);
}

/**
 * tether_client_add_method_full:
 * @self: a #TetherClient
 * @name: the method name (not starting with `rpc.`)
 * @signature: (nullable): the GVariant type of the parameters, e.g. `(ii)`
 * @param_names: (nullable) (array zero-terminated=1): one name per tuple
 *   member, for named parameters
 * @handler: (scope notified) (closure user_data) (destroy destroy): the handler
 * @user_data: data for @handler
 * @destroy: (nullable): frees @user_data when the method is removed
 *
 * Adds a callback method with declared parameters, as
 * [method@Tether.Server.add_method_full] does for servers.
 *
 * Since: 0.1
 */
void
tether_client_add_method_full (TetherClient        *self,
                               const char          *name,
                               const char          *signature,
                               const char * const  *param_names,
                               TetherMethodHandler  handler,
                               gpointer             user_data,
                               GDestroyNotify       destroy)
{
  g_return_if_fail (TETHER_IS_CLIENT (self));
  _tether_method_table_add (self->methods, name, signature, param_names, TETHER_ACCESS_ANY,
                            handler, user_data, destroy);
}

/**
 * tether_client_add_method_with_info:
 * @self: a #TetherClient
 * @info: the callback's description; its name is the method's, its
 *   parameters are declared as [method@Tether.Client.add_method_full]
 *   declares them
 * @handler: (scope notified) (closure user_data) (destroy destroy): the handler
 * @user_data: data for @handler
 * @destroy: (nullable): frees @user_data when the method is removed
 *
 * Adds a method the server may call back, with its description: the
 * client answers its server's `rpc.discover` with the callbacks it
 * accepts, described. @info is read-only from now on.
 *
 * Since: 0.2
 */
void
tether_client_add_method_with_info (TetherClient        *self,
                                    TetherMethodInfo    *info,
                                    TetherMethodHandler  handler,
                                    gpointer             user_data,
                                    GDestroyNotify       destroy)
{
  const char *name;

  g_return_if_fail (TETHER_IS_CLIENT (self));
  g_return_if_fail (info != NULL);

  name = tether_method_info_get_name (info);
  _tether_method_info_seal (info);
  _tether_method_table_add (self->methods, name, tether_method_info_get_signature (info),
                            tether_method_info_get_param_names (info), TETHER_ACCESS_ANY,
                            handler, user_data, destroy);
  _tether_method_table_set_info (self->methods, name, info);
}

/**
 * tether_client_describe_method:
 * @self: a #TetherClient
 * @info: the description of a method added before
 *
 * Describes a callback added with [method@Tether.Client.add_method] or
 * [method@Tether.Client.add_method_full], as
 * [method@Tether.Server.describe_method] does for servers.
 *
 * Returns: %TRUE if the method exists and @info fits it
 *
 * Since: 0.2
 */
gboolean
tether_client_describe_method (TetherClient     *self,
                               TetherMethodInfo *info)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (info != NULL, FALSE);

  _tether_method_info_seal (info);
  return _tether_method_table_set_info (self->methods, tether_method_info_get_name (info), info);
}

/* rpc.discover from the server: the callbacks this client accepts. */
void
_tether_client_discover_cb (TetherInvocation *invocation,
                            gpointer          user_data)
{
  TetherClient *self = user_data;
  TetherDiscoverSource source = {
    .title = g_get_application_name () != NULL ? g_get_application_name () : "Tether client",
    .version = "unspecified",
    .methods = self->methods,
    .default_timeout_ms = self->limits[TETHER_LIMIT_INCOMING_DEFAULT_TIMEOUT],
    .max_timeout_ms = self->limits[TETHER_LIMIT_INCOMING_MAX_TIMEOUT],
  };

  tether_invocation_return_value (invocation, _tether_discover_document (&source));
}

/**
 * tether_client_remove_method:
 * @self: a #TetherClient
 * @name: the method name
 *
 * Removes a method added with [method@Tether.Client.add_method] or
 * [method@Tether.Client.add_method_full]; calls to it are answered -32601
 * from then on.
 *
 * Returns: %TRUE if there was such a method
 *
 * Since: 0.1
 */
gboolean
tether_client_remove_method (TetherClient *self,
                             const char   *name)
{
  g_return_val_if_fail (TETHER_IS_CLIENT (self), FALSE);
  return _tether_method_table_remove (self->methods, name);
}
