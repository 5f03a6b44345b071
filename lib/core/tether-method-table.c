/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

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
  g_clear_pointer (&method->info, tether_method_info_unref);
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

static TetherMethod *
method_new (const char          *name,
            const char          *signature,
            const char * const  *param_names,
            TetherAccess         access,
            TetherMethodHandler  handler,
            gpointer             user_data,
            GDestroyNotify       destroy)
{
  TetherMethod *method = g_new0 (TetherMethod, 1);

  method->name = g_strdup (name);
  method->signature = g_strdup (signature);
  method->type = signature != NULL ? g_variant_type_new (signature) : NULL;
  method->type_anchor = signature != NULL ? _tether_variant_type_anchor (method->type) : NULL;
  method->param_names = g_strdupv ((char **) param_names);
  method->access = access;
  method->handler = handler;
  method->user_data = user_data;
  method->destroy = destroy;
  return method;
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

  method = method_new (name, signature, param_names, access, handler, user_data, destroy);
  g_hash_table_replace (self->methods, method->name, method);
}

gboolean
_tether_method_table_remove (TetherMethodTable *self,
                             const char        *name)
{
  if (g_str_has_prefix (name, "rpc."))
    return FALSE;
  return g_hash_table_remove (self->methods, name);
}

static gboolean
strv_equal0 (const char * const *a,
             const char * const *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return g_strv_equal (a, b);
}

gboolean
_tether_method_table_set_info (TetherMethodTable *self,
                               const char        *name,
                               TetherMethodInfo  *info)
{
  TetherMethod *method;
  const char *signature = tether_method_info_get_signature (info);

  if (g_str_has_prefix (name, "rpc."))
    return FALSE;
  method = g_hash_table_lookup (self->methods, name);
  if (method == NULL)
    return FALSE;
  if (signature != NULL &&
      (g_strcmp0 (signature, method->signature) != 0 ||
       !strv_equal0 ((const char * const *) method->param_names,
                       tether_method_info_get_param_names (info))))
    return FALSE;

  tether_method_info_ref (info);
  g_clear_pointer (&method->info, tether_method_info_unref);
  method->info = info;
  return TRUE;
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  const TetherMethod *ma = *(const TetherMethod **) a;
  const TetherMethod *mb = *(const TetherMethod **) b;

  return strcmp (ma->name, mb->name);
}

GPtrArray *
_tether_method_table_list (TetherMethodTable *self)
{
  GPtrArray *list = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->methods);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (!g_str_has_prefix (((TetherMethod *) value)->name, "rpc."))
      g_ptr_array_add (list, value);
  g_ptr_array_sort (list, compare_names);
  return list;
}

void
_tether_method_table_set_reserved (TetherMethodTable   *self,
                                   const char          *name,
                                   const char          *signature,
                                   TetherAccess         access,
                                   TetherMethodHandler  handler,
                                   gpointer             user_data,
                                   GDestroyNotify       destroy)
{
  TetherMethod *method;

  g_return_if_fail (g_str_has_prefix (name, "rpc."));

  if (handler == NULL)
    {
      g_hash_table_remove (self->methods, name);
      return;
    }
  method = method_new (name, signature, NULL, access, handler, user_data, destroy);
  g_hash_table_replace (self->methods, method->name, method);
}

gboolean
_tether_method_table_has_reserved (TetherMethodTable *self,
                                   const char        *name)
{
  return self != NULL && g_hash_table_contains (self->methods, name);
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
