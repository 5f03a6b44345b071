/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The OpenRPC document of rpc.discover (see tether-discover-private.h and
 * docs/protocol.md, "Describing a service"). Everything is built as a{sv}
 * and av values, which the wire writer turns into the JSON objects and
 * arrays of the document: no JSON is built here. */

#include "tether-discover-private.h"
#include "tether-connection-private.h"
#include "tether-enum-types.h"
#include "tether-error.h"
#include "tether-identity.h"
#include "tether-invocation-private.h"
#include "tether-json-schema-private.h"

/* Tether's error codes (TetherRemoteError), for components.errors. Every
 * value of the enum is here; the tests hold the two together. */
static const struct
{
  int         code;
  const char *name;
  const char *message;
} errors[] = {
  { TETHER_REMOTE_ERROR_PARSE_ERROR, "ParseError", "Parse error" },
  { TETHER_REMOTE_ERROR_INVALID_REQUEST, "InvalidRequest", "Invalid Request" },
  { TETHER_REMOTE_ERROR_METHOD_NOT_FOUND, "MethodNotFound", "Method not found" },
  { TETHER_REMOTE_ERROR_INVALID_PARAMS, "InvalidParams", "Invalid params" },
  { TETHER_REMOTE_ERROR_INTERNAL_ERROR, "InternalError", "Internal error" },
  { TETHER_REMOTE_ERROR_DEADLINE_EXCEEDED, "DeadlineExceeded",
    "The deadline passed before the call was answered" },
  { TETHER_REMOTE_ERROR_CANCELLED, "Cancelled", "Cancelled" },
  { TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED, "ResourceExhausted",
    "A limit was reached: too many calls in progress" },
  { TETHER_REMOTE_ERROR_UNAUTHENTICATED, "Unauthenticated",
    "This method needs an authenticated caller" },
  { TETHER_REMOTE_ERROR_PERMISSION_DENIED, "PermissionDenied", "Permission denied" },
  { TETHER_REMOTE_ERROR_IMPERSONATION_DENIED, "ImpersonationDenied",
    "The impersonation level or token was refused" },
  { TETHER_REMOTE_ERROR_CALLBACK_REJECTED, "CallbackRejected", "Callback rejected" },
  { TETHER_REMOTE_ERROR_CHANNEL_BINDING_FAILED, "ChannelBindingFailed",
    "Channel binding failed" },
  { TETHER_REMOTE_ERROR_UNAVAILABLE, "Unavailable", "The service is unavailable" },
};

gboolean
_tether_discover_may_see (TetherAccess access,
                          gboolean     authenticated)
{
  return access == TETHER_ACCESS_ANY || authenticated;
}

gboolean
_tether_discover_caller_authenticated (TetherInvocation *invocation)
{
  TetherConnection *conn = _tether_invocation_get_connection (invocation);

  return conn != NULL && tether_identity_is_authenticated (_tether_connection_get_identity (conn));
}

static const char *
error_name (int code)
{
  for (gsize i = 0; i < G_N_ELEMENTS (errors); i++)
    if (errors[i].code == code)
      return errors[i].name;
  g_return_val_if_reached (NULL);
}

static void
add_error_ref (GVariantBuilder *list,
               int              code)
{
  g_autofree char *ref = g_strconcat ("#/components/errors/", error_name (code), NULL);
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "$ref", g_variant_new_string (ref));
  g_variant_builder_add (list, "v", g_variant_builder_end (&b));
}

static GVariant *
deadline_ms (guint default_ms,
             guint max_ms)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "default", g_variant_new_int64 (default_ms));
  g_variant_builder_add (&b, "{sv}", "maximum", g_variant_new_int64 (max_ms));
  return g_variant_builder_end (&b);
}

static const char *
enum_nick (GType type,
           int   value)
{
  GEnumClass *klass = g_type_class_ref (type);
  const char *nick = g_enum_get_value (klass, value)->value_nick;

  /* Nicks are static strings; the class stays alive while its type is
   * registered. */
  g_type_class_unref (klass);
  return nick;
}

static void
add_string (GVariantBuilder *b,
            const char      *key,
            const char      *value)
{
  if (value != NULL)
    g_variant_builder_add (b, "{sv}", key, g_variant_new_string (value));
}

/* One content descriptor: OpenRPC's name, schema, required. */
static GVariant *
content_descriptor (const char *name,
                    const char *description,
                    GVariant   *schema,
                    gboolean    required)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "name", g_variant_new_string (name));
  add_string (&b, "description", description);
  g_variant_builder_add (&b, "{sv}", "schema", schema);
  if (required)
    g_variant_builder_add (&b, "{sv}", "required", g_variant_new_boolean (TRUE));
  return g_variant_builder_end (&b);
}

/* The params of a method or callback: OpenRPC's params and paramStructure
 * where it can say them (a tuple), x-tether-params where it cannot (an
 * undeclared method, a signature converted as a whole). */
static void
add_params (GVariantBuilder    *method,
            TetherMethodInfo   *info,
            const char         *signature,
            const char * const *names)
{
  g_autoptr(GVariantType) type = signature != NULL ? g_variant_type_new (signature) : NULL;
  GVariantBuilder params;
  const char *structure;

  g_variant_builder_init (&params, G_VARIANT_TYPE ("av"));
  if (type != NULL && g_variant_type_is_tuple (type))
    {
      gsize n_required = _tether_json_params_n_required (type);
      const GVariantType *item;
      guint i = 0;

      for (item = g_variant_type_first (type); item != NULL; item = g_variant_type_next (item), i++)
        {
          g_autofree char *arg = g_strdup_printf ("arg%u", i + 1);
          const char *name = names != NULL ? names[i] : arg;
          const char *text = info != NULL ? tether_method_info_get_param_description (info, name)
                                          : NULL;
          GVariant *schema = _tether_json_schema_for_type (item, TETHER_SCHEMA_ACCEPTED);

          g_variant_builder_add (&params, "v",
                                 content_descriptor (name, text, schema, i < n_required));
        }
      structure = names != NULL || g_variant_type_n_items (type) == 0 ? "either" : "by-position";
    }
  else
    {
      if (type == NULL)
        structure = "either";
      else if (g_variant_type_is_subtype_of (type, G_VARIANT_TYPE ("a{s*}")))
        structure = "by-name";
      else
        structure = "by-position";
    }
  g_variant_builder_add (method, "{sv}", "paramStructure", g_variant_new_string (structure));
  g_variant_builder_add (method, "{sv}", "params", g_variant_builder_end (&params));
  if (type == NULL || !g_variant_type_is_tuple (type))
    g_variant_builder_add (method, "{sv}", "x-tether-params",
                           _tether_json_schema_for_params (signature, names));
  if (signature != NULL)
    g_variant_builder_add (method, "{sv}", "x-tether-signature", g_variant_new_string (signature));
}

static void
add_result (GVariantBuilder  *method,
            TetherMethodInfo *info)
{
  const char *signature = info != NULL ? tether_method_info_get_result_signature (info) : NULL;
  g_autoptr(GVariantType) type = signature != NULL ? g_variant_type_new (signature) : NULL;
  GVariant *schema;

  schema = type != NULL ? _tether_json_schema_for_type (type, TETHER_SCHEMA_WRITTEN)
                        : g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
  g_variant_builder_add (method, "{sv}", "result",
                         content_descriptor ("result",
                                             info != NULL
                                               ? tether_method_info_get_result_description (info)
                                               : NULL,
                                             schema, FALSE));
  if (signature != NULL)
    g_variant_builder_add (method, "{sv}", "x-tether-result-signature",
                           g_variant_new_string (signature));
}

static void
add_text (GVariantBuilder  *method,
          TetherMethodInfo *info)
{
  if (info == NULL)
    return;
  add_string (method, "summary", tether_method_info_get_summary (info));
  add_string (method, "description", tether_method_info_get_description (info));
  if (tether_method_info_get_deprecated (info))
    g_variant_builder_add (method, "{sv}", "deprecated", g_variant_new_boolean (TRUE));
}

static GVariant *
method_object (const TetherDiscoverSource *source,
               const TetherMethod         *method)
{
  GVariantBuilder b, errs;
  const char * const *callbacks = method->info != NULL
                                    ? tether_method_info_get_callbacks (method->info) : NULL;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "name", g_variant_new_string (method->name));
  add_text (&b, method->info);
  add_params (&b, method->info, method->signature, (const char * const *) method->param_names);
  add_result (&b, method->info);

  g_variant_builder_init (&errs, G_VARIANT_TYPE ("av"));
  add_error_ref (&errs, TETHER_REMOTE_ERROR_INVALID_PARAMS);
  add_error_ref (&errs, TETHER_REMOTE_ERROR_INTERNAL_ERROR);
  add_error_ref (&errs, TETHER_REMOTE_ERROR_DEADLINE_EXCEEDED);
  add_error_ref (&errs, TETHER_REMOTE_ERROR_CANCELLED);
  add_error_ref (&errs, TETHER_REMOTE_ERROR_RESOURCE_EXHAUSTED);
  if (source->apply_access && method->access == TETHER_ACCESS_AUTHENTICATED)
    add_error_ref (&errs, TETHER_REMOTE_ERROR_UNAUTHENTICATED);
  if (source->apply_access && method->access == TETHER_ACCESS_CUSTOM)
    add_error_ref (&errs, TETHER_REMOTE_ERROR_PERMISSION_DENIED);
  g_variant_builder_add (&b, "{sv}", "errors", g_variant_builder_end (&errs));

  if (source->apply_access)
    g_variant_builder_add (&b, "{sv}", "x-tether-access",
                           g_variant_new_string (enum_nick (TETHER_TYPE_ACCESS, method->access)));
  g_variant_builder_add (&b, "{sv}", "x-tether-deadline-ms",
                         deadline_ms (source->default_timeout_ms, source->max_timeout_ms));
  if (callbacks != NULL && callbacks[0] != NULL)
    g_variant_builder_add (&b, "{sv}", "x-tether-callbacks", g_variant_new_strv (callbacks, -1));
  return g_variant_builder_end (&b);
}

static GVariant *
callback_object (const TetherDiscoverSource *source,
                 TetherMethodInfo           *info,
                 GPtrArray                  *made_by)
{
  GVariantBuilder b, errs;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "name",
                         g_variant_new_string (tether_method_info_get_name (info)));
  add_text (&b, info);
  add_params (&b, info, tether_method_info_get_signature (info),
              tether_method_info_get_param_names (info));
  add_result (&b, info);
  g_variant_builder_init (&errs, G_VARIANT_TYPE ("av"));
  add_error_ref (&errs, TETHER_REMOTE_ERROR_INVALID_PARAMS);
  add_error_ref (&errs, TETHER_REMOTE_ERROR_INTERNAL_ERROR);
  add_error_ref (&errs, TETHER_REMOTE_ERROR_DEADLINE_EXCEEDED);
  add_error_ref (&errs, TETHER_REMOTE_ERROR_CANCELLED);
  g_variant_builder_add (&b, "{sv}", "errors", g_variant_builder_end (&errs));
  g_variant_builder_add (&b, "{sv}", "x-tether-deadline-ms",
                         deadline_ms (source->callback_timeout_ms,
                                      source->max_callback_timeout_ms));
  if (made_by->len > 0)
    g_variant_builder_add (&b, "{sv}", "x-tether-made-by",
                           g_variant_new_strv ((const char * const *) made_by->pdata,
                                               made_by->len));
  return g_variant_builder_end (&b);
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (*(const char **) a, *(const char **) b);
}

/* The callbacks the server declared, each listed unless every method
 * that makes it is hidden from this caller. */
static GVariant *
callbacks_list (const TetherDiscoverSource *source,
                GPtrArray                  *all_methods)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  GVariantBuilder list;
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, source->callbacks);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (names, key);
  g_ptr_array_sort (names, compare_strings);
  g_variant_builder_init (&list, G_VARIANT_TYPE ("av"));
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      g_autoptr(GPtrArray) made_by = g_ptr_array_new ();
      gboolean made_at_all = FALSE;

      for (guint j = 0; j < all_methods->len; j++)
        {
          const TetherMethod *method = all_methods->pdata[j];

          if (method->info == NULL ||
              !g_strv_contains (tether_method_info_get_callbacks (method->info), name))
            continue;
          made_at_all = TRUE;
          if (!source->apply_access ||
              _tether_discover_may_see (method->access, source->caller_authenticated))
            g_ptr_array_add (made_by, method->name);
        }
      if (made_at_all && made_by->len == 0)
        continue;
      g_variant_builder_add (&list, "v",
                             callback_object (source, g_hash_table_lookup (source->callbacks, name),
                                              made_by));
    }
  return g_variant_builder_end (&list);
}

GVariant *
_tether_discover_document (const TetherDiscoverSource *source)
{
  g_autoptr(GPtrArray) all_methods = _tether_method_table_list (source->methods);
  GVariantBuilder doc, info, servers, methods, components, errs;

  g_variant_builder_init (&doc, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&doc, "{sv}", "openrpc", g_variant_new_string (TETHER_OPENRPC_VERSION));

  g_variant_builder_init (&info, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&info, "{sv}", "title", g_variant_new_string (source->title));
  add_string (&info, "description", source->description);
  g_variant_builder_add (&info, "{sv}", "version", g_variant_new_string (source->version));
  g_variant_builder_add (&doc, "{sv}", "info", g_variant_builder_end (&info));

  if (source->uris != NULL)
    {
      g_variant_builder_init (&servers, G_VARIANT_TYPE ("av"));
      for (guint i = 0; source->uris[i] != NULL; i++)
        {
          g_autofree char *scheme = g_uri_parse_scheme (source->uris[i]);
          GVariantBuilder server;

          g_variant_builder_init (&server, G_VARIANT_TYPE_VARDICT);
          add_string (&server, "name", scheme);
          g_variant_builder_add (&server, "{sv}", "url", g_variant_new_string (source->uris[i]));
          g_variant_builder_add (&servers, "v", g_variant_builder_end (&server));
        }
      g_variant_builder_add (&doc, "{sv}", "servers", g_variant_builder_end (&servers));
    }

  g_variant_builder_init (&methods, G_VARIANT_TYPE ("av"));
  for (guint i = 0; i < all_methods->len; i++)
    {
      const TetherMethod *method = all_methods->pdata[i];

      if (source->apply_access &&
          !_tether_discover_may_see (method->access, source->caller_authenticated))
        continue;
      g_variant_builder_add (&methods, "v", method_object (source, method));
    }
  g_variant_builder_add (&doc, "{sv}", "methods", g_variant_builder_end (&methods));

  g_variant_builder_init (&errs, G_VARIANT_TYPE_VARDICT);
  for (gsize i = 0; i < G_N_ELEMENTS (errors); i++)
    {
      GVariantBuilder e;

      g_variant_builder_init (&e, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&e, "{sv}", "code", g_variant_new_int64 (errors[i].code));
      g_variant_builder_add (&e, "{sv}", "message", g_variant_new_string (errors[i].message));
      g_variant_builder_add (&errs, "{sv}", errors[i].name, g_variant_builder_end (&e));
    }
  g_variant_builder_init (&components, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&components, "{sv}", "errors", g_variant_builder_end (&errs));
  g_variant_builder_add (&doc, "{sv}", "components", g_variant_builder_end (&components));

  if (source->callbacks != NULL)
    g_variant_builder_add (&doc, "{sv}", "x-tether-callbacks",
                           callbacks_list (source, all_methods));
  return g_variant_builder_end (&doc);
}
