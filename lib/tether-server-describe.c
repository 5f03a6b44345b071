/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* TetherServer, continued: what a server says of itself — method
 * descriptions and rpc.discover (issue #12; the document is built in
 * core/tether-discover.c). The object itself is in tether-server.c. */

#include "tether-discover-private.h"
#include "tether-method-info-private.h"
#include "tether-server-impl-private.h"

#define properties _tether_server_properties

/* ---------------------------------------------------------------------- */
/* Describing the service: rpc.discover (issue #12)                       */

static void
discover_cb (TetherInvocation *invocation,
             gpointer          user_data)
{
  TetherServer *self = user_data;
  TetherDiscoverSource source = {
    .title = self->service_title != NULL ? self->service_title
             : g_get_application_name () != NULL ? g_get_application_name () : "Tether service",
    .version = self->service_version != NULL ? self->service_version : "unspecified",
    .description = self->service_description,
    .uris = (const char * const *) self->uris->pdata,
    .methods = self->methods,
    .callbacks = self->callback_infos,
    .apply_access = TRUE,
    .caller_authenticated = _tether_discover_caller_authenticated (invocation),
    .default_timeout_ms = self->limits[TETHER_LIMIT_INCOMING_DEFAULT_TIMEOUT],
    .max_timeout_ms = self->limits[TETHER_LIMIT_INCOMING_MAX_TIMEOUT],
    .callback_timeout_ms = self->limits[TETHER_LIMIT_DEFAULT_TIMEOUT],
    .max_callback_timeout_ms = self->limits[TETHER_LIMIT_MAX_TIMEOUT],
  };

  tether_invocation_return_value (invocation, _tether_discover_document (&source));
}

void
_tether_server_discover_register (TetherServer *self)
{
  _tether_method_table_set_reserved (self->methods, "rpc.discover", "()", self->discover_access,
                                     discover_cb, self, NULL);
}

/**
 * tether_server_add_method_with_info:
 * @self: a #TetherServer
 * @info: the method's description; its name is the method's, its
 *   parameters ([method@Tether.MethodInfo.set_params]) are declared as
 *   [method@Tether.Server.add_method_full] declares them
 * @access: who may call it
 * @handler: (scope notified) (closure user_data) (destroy destroy): the handler
 * @user_data: data for @handler
 * @destroy: (nullable): frees @user_data when the method is removed
 *
 * Adds a method and its description, which `rpc.discover` gives to
 * callers that @access lets call it. Replaces any method of the same
 * name. @info is read-only from now on.
 *
 * Since: 0.2
 */
void
tether_server_add_method_with_info (TetherServer        *self,
                                    TetherMethodInfo    *info,
                                    TetherAccess         access,
                                    TetherMethodHandler  handler,
                                    gpointer             user_data,
                                    GDestroyNotify       destroy)
{
  const char *name;

  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (info != NULL);

  name = tether_method_info_get_name (info);
  _tether_method_info_seal (info);
  _tether_method_table_add (self->methods, name, tether_method_info_get_signature (info),
                            tether_method_info_get_param_names (info), access,
                            handler, user_data, destroy);
  _tether_method_table_set_info (self->methods, name, info);
}

/**
 * tether_server_describe_method:
 * @self: a #TetherServer
 * @info: the description of a method added before
 *
 * Describes a method added with [method@Tether.Server.add_method] or
 * [method@Tether.Server.add_method_full], for bindings whose own
 * `add_method` wraps the handler. If @info declares parameters they must
 * be the method's own (the same signature and names); if it declares
 * none, the method's are described. Replaces any earlier description.
 * @info is read-only from now on.
 *
 * Returns: %TRUE if the method exists and @info fits it
 *
 * Since: 0.2
 */
gboolean
tether_server_describe_method (TetherServer     *self,
                               TetherMethodInfo *info)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), FALSE);
  g_return_val_if_fail (info != NULL, FALSE);

  _tether_method_info_seal (info);
  return _tether_method_table_set_info (self->methods, tether_method_info_get_name (info), info);
}

/**
 * tether_server_add_callback_info:
 * @self: a #TetherServer
 * @info: the description of a method the server calls on its clients
 *
 * Declares a callback the server makes, such as `progress`, so that
 * `rpc.discover` tells clients what they must answer: its parameters as
 * a client would declare them, and its result. Link it to the methods
 * that make it with [method@Tether.MethodInfo.add_callback]. Replaces a
 * declaration of the same name. @info is read-only from now on.
 *
 * Since: 0.2
 */
void
tether_server_add_callback_info (TetherServer     *self,
                                 TetherMethodInfo *info)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  g_return_if_fail (info != NULL);

  _tether_method_info_seal (info);
  g_hash_table_replace (self->callback_infos, (char *) tether_method_info_get_name (info),
                        tether_method_info_ref (info));
}

static gboolean
set_string (char       **field,
            const char  *value)
{
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

/**
 * tether_server_set_service_title:
 * @self: a #TetherServer
 * @title: (nullable): the service's name, or %NULL for the program's
 *
 * Sets [property@Tether.Server:service-title].
 *
 * Since: 0.2
 */
void
tether_server_set_service_title (TetherServer *self,
                                 const char   *title)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (set_string (&self->service_title, title))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVICE_TITLE]);
}

/**
 * tether_server_get_service_title:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:service-title].
 *
 * Returns: (nullable): the title set, or %NULL
 *
 * Since: 0.2
 */
const char *
tether_server_get_service_title (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->service_title;
}

/**
 * tether_server_set_service_version:
 * @self: a #TetherServer
 * @version: (nullable): the version of the service's API
 *
 * Sets [property@Tether.Server:service-version].
 *
 * Since: 0.2
 */
void
tether_server_set_service_version (TetherServer *self,
                                   const char   *version)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (set_string (&self->service_version, version))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVICE_VERSION]);
}

/**
 * tether_server_get_service_version:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:service-version].
 *
 * Returns: (nullable): the version set, or %NULL
 *
 * Since: 0.2
 */
const char *
tether_server_get_service_version (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->service_version;
}

/**
 * tether_server_set_service_description:
 * @self: a #TetherServer
 * @description: (nullable): what the service is for (Markdown)
 *
 * Sets [property@Tether.Server:service-description].
 *
 * Since: 0.2
 */
void
tether_server_set_service_description (TetherServer *self,
                                       const char   *description)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (set_string (&self->service_description, description))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVICE_DESCRIPTION]);
}

/**
 * tether_server_get_service_description:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:service-description].
 *
 * Returns: (nullable): the description set, or %NULL
 *
 * Since: 0.2
 */
const char *
tether_server_get_service_description (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), NULL);
  return self->service_description;
}

/**
 * tether_server_set_discover_access:
 * @self: a #TetherServer
 * @access: who may call `rpc.discover`
 *
 * Sets [property@Tether.Server:discover-access].
 *
 * Since: 0.2
 */
void
tether_server_set_discover_access (TetherServer *self,
                                   TetherAccess  access)
{
  g_return_if_fail (TETHER_IS_SERVER (self));
  if (self->discover_access == access)
    return;
  self->discover_access = access;
  _tether_server_discover_register (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DISCOVER_ACCESS]);
}

/**
 * tether_server_get_discover_access:
 * @self: a #TetherServer
 *
 * Gets [property@Tether.Server:discover-access].
 *
 * Returns: who may call `rpc.discover`
 *
 * Since: 0.2
 */
TetherAccess
tether_server_get_discover_access (TetherServer *self)
{
  g_return_val_if_fail (TETHER_IS_SERVER (self), TETHER_ACCESS_AUTHENTICATED);
  return self->discover_access;
}
