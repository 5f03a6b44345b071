/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-method-table-private.h"
#include "tether-message-private.h"

struct _TetherMethodTable
{
  GHashTable   *methods;  /* name → TetherMethod* */
  TetherMethod *fallback; /* any other name, or NULL */
};

static void
method_free (TetherMethod *method)
{
  if (method->destroy != NULL)
    method->destroy (method->user_data);
  g_free (method->name);
  g_free (method->signature);
  g_clear_pointer (&method->type, g_variant_type_free);
  g_clear_pointer (&method->type_anchor, g_variant_unref);
  g_strfreev (method->param_names);
  g_free (method);
}

TetherMethodTable *
_tether_method_table_new (void)
{
  TetherMethodTable *self = g_new0 (TetherMethodTable, 1);

  self->methods = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) method_free);
  return self;
}

void
_tether_method_table_free (TetherMethodTable *self)
{
  g_hash_table_unref (self->methods);
  g_clear_pointer (&self->fallback, method_free);
  g_free (self);
}

void
_tether_method_table_add (TetherMethodTable   *self,
                          const char          *name,
                          const char          *signature,
                          const char * const  *param_names,
                          TetherAccess         access,
                          TetherMethodHandler  handler,
                          gpointer             user_data,
                          GDestroyNotify       destroy)
{
  TetherMethod *method;

  g_return_if_fail (name != NULL && *name != '\0');
  g_return_if_fail (!g_str_has_prefix (name, "rpc."));
  g_return_if_fail (handler != NULL);
  g_return_if_fail (signature == NULL || g_variant_type_string_is_valid (signature));
  /* Parameters are built from JSON: the type must say exactly what. */
  g_return_if_fail (signature == NULL || g_variant_type_is_definite ((const GVariantType *) signature));

  if (signature != NULL && param_names != NULL)
    {
      g_autoptr(GVariantType) type = g_variant_type_new (signature);

      /* Names fill a tuple by position, so there must be one per member. */
      g_return_if_fail (g_variant_type_is_tuple (type));
      g_return_if_fail (g_strv_length ((char **) param_names) == g_variant_type_n_items (type));
    }

  method = g_new0 (TetherMethod, 1);
  method->name = g_strdup (name);
  method->signature = g_strdup (signature);
  method->type = signature != NULL ? g_variant_type_new (signature) : NULL;
  method->type_anchor = signature != NULL ? _tether_variant_type_anchor (method->type) : NULL;
  method->param_names = g_strdupv ((char **) param_names);
  method->access = access;
  method->handler = handler;
  method->user_data = user_data;
  method->destroy = destroy;

  g_hash_table_replace (self->methods, method->name, method);
}

gboolean
_tether_method_table_remove (TetherMethodTable *self,
                             const char        *name)
{
  return g_hash_table_remove (self->methods, name);
}

const TetherMethod *
_tether_method_table_lookup (TetherMethodTable *self,
                             const char        *name)
{
  const TetherMethod *method = g_hash_table_lookup (self->methods, name);

  return method != NULL ? method : self->fallback;
}

void
_tether_method_table_set_fallback (TetherMethodTable   *self,
                                   TetherMethodHandler  handler,
                                   gpointer             user_data,
                                   GDestroyNotify       destroy)
{
  g_clear_pointer (&self->fallback, method_free);
  if (handler == NULL)
    return;
  self->fallback = g_new0 (TetherMethod, 1);
  self->fallback->name = g_strdup ("*");
  self->fallback->access = TETHER_ACCESS_ANY;
  self->fallback->handler = handler;
  self->fallback->user_data = user_data;
  self->fallback->destroy = destroy;
}
