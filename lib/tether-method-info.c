/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * TetherMethodInfo:
 *
 * What a method is for and what it takes: the description a service
 * gives of itself in answer to `rpc.discover` (see `docs/protocol.md`).
 *
 * Make one with [ctor@Tether.MethodInfo.new], fill it with the setters,
 * then give it to [method@Tether.Server.add_method_with_info] (or
 * [method@Tether.Server.describe_method] for a method already added), to
 * [method@Tether.Server.add_callback_info] for a callback the server
 * makes, or to [method@Tether.Client.add_method_with_info] for a callback
 * a client accepts. Its parameters are the method's declared parameters
 * ([method@Tether.Server.add_method_full]): one signature checks the calls
 * and describes them, so the description cannot drift from what the
 * method accepts. Who may call the method and its deadlines are what the
 * method already has: the access it was added with, and the server's
 * `default-timeout` and `max-timeout` (`callback-timeout` and
 * `max-callback-timeout` for callbacks).
 *
 * ```c
 * g_autoptr(TetherMethodInfo) info = tether_method_info_new ("work");
 * const char *names[] = { "steps", "delay_ms", NULL };
 *
 * tether_method_info_set_summary (info, "Works in steps, reporting progress");
 * tether_method_info_set_params (info, "(mxmx)", names);
 * tether_method_info_set_result (info, "a{sv}", "{\"done\": steps}");
 * tether_method_info_add_callback (info, "progress");
 * tether_server_add_method_with_info (server, info, TETHER_ACCESS_ANY,
 *                                     handle_work, NULL, NULL);
 * ```
 *
 * Once given to a server or a client the description is read-only (the
 * setters then fail with a critical warning), so it can be shared, and
 * read from any thread. Until then it belongs to the thread filling it.
 *
 * Since: 0.2
 */

#include <string.h>

#include "tether-method-info.h"
#include "tether-method-info-private.h"

struct _TetherMethodInfo
{
  gatomicrefcount  ref_count;
  gboolean         sealed;
  char            *name;
  char            *summary;
  char            *description;
  char            *signature;          /* NULL: undeclared */
  char           **param_names;        /* NULL, or one per tuple member */
  GHashTable      *param_descriptions; /* name → text, or NULL */
  char            *result_signature;   /* NULL: undeclared */
  char            *result_description;
  gboolean         deprecated;
  GPtrArray       *callbacks;          /* char*, NULL-terminated */
};

G_DEFINE_BOXED_TYPE (TetherMethodInfo, tether_method_info,
                     tether_method_info_ref, tether_method_info_unref)

gboolean
_tether_method_info_check_name (const char *name)
{
  return name != NULL && *name != '\0' && !g_str_has_prefix (name, "rpc.") &&
         g_utf8_validate (name, -1, NULL);
}

gboolean
_tether_method_info_check_params (const char         *signature,
                                  const char * const *param_names)
{
  g_autoptr(GVariantType) type = NULL;

  if (signature == NULL)
    return param_names == NULL;
  /* Parameters are built from JSON: the type must say exactly what. */
  if (!g_variant_type_string_is_valid (signature) ||
      !g_variant_type_is_definite ((const GVariantType *) signature))
    return FALSE;
  if (param_names == NULL)
    return TRUE;

  /* Names fill a tuple by position, so there must be one per member. */
  type = g_variant_type_new (signature);
  if (!g_variant_type_is_tuple (type) ||
      g_strv_length ((char **) param_names) != g_variant_type_n_items (type))
    return FALSE;
  for (guint i = 0; param_names[i] != NULL; i++)
    {
      if (*param_names[i] == '\0' || !g_utf8_validate (param_names[i], -1, NULL))
        return FALSE;
      for (guint j = 0; j < i; j++)
        if (strcmp (param_names[i], param_names[j]) == 0)
          return FALSE;
    }
  return TRUE;
}

/**
 * tether_method_info_new:
 * @name: the method's name (not starting with `rpc.`, which is reserved)
 *
 * Makes an empty description of the method @name: no summary, undeclared
 * parameters and result, not deprecated, no callbacks.
 *
 * Returns: (transfer full): a new description
 *
 * Since: 0.2
 */
TetherMethodInfo *
tether_method_info_new (const char *name)
{
  TetherMethodInfo *self;

  g_return_val_if_fail (_tether_method_info_check_name (name), NULL);

  self = g_new0 (TetherMethodInfo, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->name = g_strdup (name);
  self->callbacks = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (self->callbacks, NULL);
  return self;
}

/**
 * tether_method_info_ref:
 * @self: a #TetherMethodInfo
 *
 * Takes a reference.
 *
 * Returns: (transfer full): @self
 *
 * Since: 0.2
 */
TetherMethodInfo *
tether_method_info_ref (TetherMethodInfo *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

/**
 * tether_method_info_unref:
 * @self: (transfer full): a #TetherMethodInfo
 *
 * Drops a reference; the last one frees the description.
 *
 * Since: 0.2
 */
void
tether_method_info_unref (TetherMethodInfo *self)
{
  g_return_if_fail (self != NULL);
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;
  g_free (self->name);
  g_free (self->summary);
  g_free (self->description);
  g_free (self->signature);
  g_strfreev (self->param_names);
  g_clear_pointer (&self->param_descriptions, g_hash_table_unref);
  g_free (self->result_signature);
  g_free (self->result_description);
  g_ptr_array_unref (self->callbacks);
  g_free (self);
}

void
_tether_method_info_seal (TetherMethodInfo *self)
{
  self->sealed = TRUE;
}

/**
 * tether_method_info_get_name:
 * @self: a #TetherMethodInfo
 *
 * Gets the method's name.
 *
 * Returns: the name
 *
 * Since: 0.2
 */
const char *
tether_method_info_get_name (TetherMethodInfo *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->name;
}

static void
replace_string (char       **field,
                const char  *value)
{
  char *copy = g_strdup (value);

  g_free (*field);
  *field = copy;
}

/**
 * tether_method_info_set_summary:
 * @self: a #TetherMethodInfo
 * @summary: (nullable): what the method does, in a line
 *
 * Sets the summary (OpenRPC's `summary`).
 *
 * Since: 0.2
 */
void
tether_method_info_set_summary (TetherMethodInfo *self,
                                const char       *summary)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (!self->sealed);
  g_return_if_fail (summary == NULL || g_utf8_validate (summary, -1, NULL));
  replace_string (&self->summary, summary);
}

/**
 * tether_method_info_get_summary:
 * @self: a #TetherMethodInfo
 *
 * Gets the summary.
 *
 * Returns: (nullable): the summary
 *
 * Since: 0.2
 */
const char *
tether_method_info_get_summary (TetherMethodInfo *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->summary;
}

/**
 * tether_method_info_set_description:
 * @self: a #TetherMethodInfo
 * @description: (nullable): what the method does, at length (Markdown)
 *
 * Sets the description (OpenRPC's `description`).
 *
 * Since: 0.2
 */
void
tether_method_info_set_description (TetherMethodInfo *self,
                                    const char       *description)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (!self->sealed);
  g_return_if_fail (description == NULL || g_utf8_validate (description, -1, NULL));
  replace_string (&self->description, description);
}

/**
 * tether_method_info_get_description:
 * @self: a #TetherMethodInfo
 *
 * Gets the description.
 *
 * Returns: (nullable): the description
 *
 * Since: 0.2
 */
const char *
tether_method_info_get_description (TetherMethodInfo *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->description;
}

/**
 * tether_method_info_set_params:
 * @self: a #TetherMethodInfo
 * @signature: (nullable): the GVariant type the parameters must have,
 *   such as `(si)`, or %NULL for undeclared parameters
 * @param_names: (nullable) (array zero-terminated=1): with a tuple
 *   @signature, one distinct name per member, so that callers may pass
 *   named parameters
 *
 * Declares the parameters, as [method@Tether.Server.add_method_full]
 * does: a method added with this description checks its calls against
 * them. Members of a maybe type (`mx`, `ms`, …) are optional: a caller
 * may leave them out, and the handler sees Nothing.
 *
 * Since: 0.2
 */
void
tether_method_info_set_params (TetherMethodInfo   *self,
                               const char         *signature,
                               const char * const *param_names)
{
  char **names;

  g_return_if_fail (self != NULL);
  g_return_if_fail (!self->sealed);
  g_return_if_fail (_tether_method_info_check_params (signature, param_names));

  names = g_strdupv ((char **) param_names);
  replace_string (&self->signature, signature);
  g_strfreev (self->param_names);
  self->param_names = names;
}

/**
 * tether_method_info_get_signature:
 * @self: a #TetherMethodInfo
 *
 * Gets the declared type of the parameters.
 *
 * Returns: (nullable): the signature, or %NULL if undeclared
 *
 * Since: 0.2
 */
const char *
tether_method_info_get_signature (TetherMethodInfo *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->signature;
}

/**
 * tether_method_info_get_param_names:
 * @self: a #TetherMethodInfo
 *
 * Gets the parameters' names.
 *
 * Returns: (nullable) (transfer none) (array zero-terminated=1): one name
 *   per member of the signature, or %NULL
 *
 * Since: 0.2
 */
const char * const *
tether_method_info_get_param_names (TetherMethodInfo *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return (const char * const *) self->param_names;
}

/**
 * tether_method_info_set_param_description:
 * @self: a #TetherMethodInfo
 * @param_name: a parameter's name; for parameters without names, `arg1`,
 *   `arg2`, … (as the description names them)
 * @description: (nullable): what the parameter means, its unit, its range
 *
 * Describes one parameter.
 *
 * Since: 0.2
 */
void
tether_method_info_set_param_description (TetherMethodInfo *self,
                                          const char       *param_name,
                                          const char       *description)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (!self->sealed);
  g_return_if_fail (param_name != NULL);
  g_return_if_fail (description == NULL || g_utf8_validate (description, -1, NULL));

  if (description == NULL)
    {
      if (self->param_descriptions != NULL)
        g_hash_table_remove (self->param_descriptions, param_name);
      return;
    }
  if (self->param_descriptions == NULL)
    self->param_descriptions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_hash_table_replace (self->param_descriptions, g_strdup (param_name), g_strdup (description));
}

/**
 * tether_method_info_get_param_description:
 * @self: a #TetherMethodInfo
 * @param_name: a parameter's name
 *
 * Gets what [method@Tether.MethodInfo.set_param_description] set.
 *
 * Returns: (nullable): the parameter's description
 *
 * Since: 0.2
 */
const char *
tether_method_info_get_param_description (TetherMethodInfo *self,
                                          const char       *param_name)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (param_name != NULL, NULL);
  return self->param_descriptions != NULL
           ? g_hash_table_lookup (self->param_descriptions, param_name) : NULL;
}

/**
 * tether_method_info_set_result:
 * @self: a #TetherMethodInfo
 * @signature: (nullable): the GVariant type of the value the handler
 *   answers with, or %NULL if it varies
 * @description: (nullable): what the value means
 *
 * Describes the result. The type is a promise of the handler's, which
 * Tether does not check: the description says what JSON the value
 * becomes (see `docs/json.md`).
 *
 * Since: 0.2
 */
void
tether_method_info_set_result (TetherMethodInfo *self,
                               const char       *signature,
                               const char       *description)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (!self->sealed);
  g_return_if_fail (signature == NULL ||
                    (g_variant_type_string_is_valid (signature) &&
                     g_variant_type_is_definite ((const GVariantType *) signature)));
  g_return_if_fail (description == NULL || g_utf8_validate (description, -1, NULL));
  replace_string (&self->result_signature, signature);
  replace_string (&self->result_description, description);
}

/**
 * tether_method_info_get_result_signature:
 * @self: a #TetherMethodInfo
 *
 * Gets the type of the result.
 *
 * Returns: (nullable): the result's signature, or %NULL if undeclared
 *
 * Since: 0.2
 */
const char *
tether_method_info_get_result_signature (TetherMethodInfo *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->result_signature;
}

/**
 * tether_method_info_get_result_description:
 * @self: a #TetherMethodInfo
 *
 * Gets what the result means.
 *
 * Returns: (nullable): the result's description
 *
 * Since: 0.2
 */
const char *
tether_method_info_get_result_description (TetherMethodInfo *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->result_description;
}

/**
 * tether_method_info_set_deprecated:
 * @self: a #TetherMethodInfo
 * @deprecated: whether callers should stop using the method
 *
 * Marks the method deprecated (OpenRPC's `deprecated`). It still works.
 *
 * Since: 0.2
 */
void
tether_method_info_set_deprecated (TetherMethodInfo *self,
                                   gboolean          deprecated)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (!self->sealed);
  self->deprecated = !!deprecated;
}

/**
 * tether_method_info_get_deprecated:
 * @self: a #TetherMethodInfo
 *
 * Gets whether the method is deprecated.
 *
 * Returns: %TRUE if deprecated
 *
 * Since: 0.2
 */
gboolean
tether_method_info_get_deprecated (TetherMethodInfo *self)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return self->deprecated;
}

/**
 * tether_method_info_add_callback:
 * @self: a #TetherMethodInfo
 * @callback_name: the name of a method the server calls on the client
 *   while handling this one, as declared with
 *   [method@Tether.Server.add_callback_info]
 *
 * Says that the method calls the client back: `work` makes `progress`,
 * `ask` makes `confirm`. A client that calls the method must answer
 * those. Adding a name twice adds it once.
 *
 * Since: 0.2
 */
void
tether_method_info_add_callback (TetherMethodInfo *self,
                                 const char       *callback_name)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (!self->sealed);
  g_return_if_fail (_tether_method_info_check_name (callback_name));

  if (g_strv_contains ((const char * const *) self->callbacks->pdata, callback_name))
    return;
  g_ptr_array_insert (self->callbacks, self->callbacks->len - 1, g_strdup (callback_name));
}

/**
 * tether_method_info_get_callbacks:
 * @self: a #TetherMethodInfo
 *
 * Gets the callbacks the method makes.
 *
 * Returns: (transfer none) (array zero-terminated=1): the callbacks'
 *   names, in the order they were added
 *
 * Since: 0.2
 */
const char * const *
tether_method_info_get_callbacks (TetherMethodInfo *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return (const char * const *) self->callbacks->pdata;
}
