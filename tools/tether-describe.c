/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* tether describe: a service's own description (rpc.discover), like
 * gdbus introspect; and the check `tether call` makes with it. The
 * document arrives as Tether reads any result (objects as a{sv}, arrays
 * as av); the check runs the library's own codec on the declared
 * signature, so it says what the service would say, before sending. */

#include <stdlib.h>
#include <string.h>

#include "tether-describe.h"
#include "tether-json-private.h"

/* -- reading the document ------------------------------------------------ */

static const char *
get_string (GVariant   *object,
            const char *key)
{
  g_autoptr(GVariant) value = object != NULL ? g_variant_lookup_value (object, key, NULL) : NULL;

  /* The string lives in @object, which outlives this call. */
  return value != NULL && g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
           ? g_variant_get_string (value, NULL) : NULL;
}

static GVariant *
get_member (GVariant   *object,
            const char *key)
{
  return object != NULL ? g_variant_lookup_value (object, key, NULL) : NULL;
}

static gint64
get_int (GVariant   *object,
         const char *key,
         gint64      fallback)
{
  g_autoptr(GVariant) value = get_member (object, key);

  return value != NULL && g_variant_is_of_type (value, G_VARIANT_TYPE_INT64)
           ? g_variant_get_int64 (value) : fallback;
}

/* Element @i of a list (av, or as), unboxed. */
static GVariant *
list_item (GVariant *list,
           gsize     i)
{
  GVariant *item = g_variant_get_child_value (list, i);

  if (g_variant_is_of_type (item, G_VARIANT_TYPE_VARIANT))
    {
      GVariant *inner = g_variant_get_variant (item);

      g_variant_unref (item);
      return inner;
    }
  return item;
}

static gsize
list_length (GVariant *list)
{
  return list != NULL && g_variant_is_container (list) ? g_variant_n_children (list) : 0;
}

/* The list @key of @object as "a, b, c", or NULL when empty. */
static char *
joined_strings (GVariant   *object,
                const char *key)
{
  g_autoptr(GVariant) list = get_member (object, key);
  GString *out = NULL;

  for (gsize i = 0; i < list_length (list); i++)
    {
      g_autoptr(GVariant) item = list_item (list, i);

      if (!g_variant_is_of_type (item, G_VARIANT_TYPE_STRING))
        continue;
      if (out == NULL)
        out = g_string_new (NULL);
      else
        g_string_append (out, ", ");
      g_string_append (out, g_variant_get_string (item, NULL));
    }
  return out != NULL ? g_string_free (out, FALSE) : NULL;
}

static GVariant *
find_method (GVariant   *doc,
             const char *name)
{
  g_autoptr(GVariant) methods = get_member (doc, "methods");

  for (gsize i = 0; i < list_length (methods); i++)
    {
      g_autoptr(GVariant) method = list_item (methods, i);

      if (g_variant_is_of_type (method, G_VARIANT_TYPE_VARDICT) &&
          g_strcmp0 (get_string (method, "name"), name) == 0)
        return g_steal_pointer (&method);
    }
  return NULL;
}

/* The declared parameter names, from the content descriptors. */
static GStrv
param_names (GVariant *method)
{
  g_autoptr(GVariant) params = get_member (method, "params");
  g_autoptr(GStrvBuilder) names = g_strv_builder_new ();

  if (list_length (params) == 0)
    return NULL;
  for (gsize i = 0; i < list_length (params); i++)
    {
      g_autoptr(GVariant) param = list_item (params, i);
      const char *name = get_string (param, "name");

      g_strv_builder_add (names, name != NULL ? name : "?");
    }
  return g_strv_builder_end (names);
}

/* -- fetching ------------------------------------------------------------ */

typedef struct
{
  gboolean  done;
  GVariant *result;
  GError   *error;
} Pending;

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Pending *pending = user_data;

  pending->result = tether_client_call_finish (TETHER_CLIENT (source), result, &pending->error);
  pending->done = TRUE;
}

GVariant *
describe_fetch (TetherClient  *client,
                int            timeout_ms,
                GError       **error)
{
  Pending pending = { 0 };

  tether_client_call_async (client, "rpc.discover", NULL, timeout_ms, NULL, call_done_cb,
                            &pending);
  while (!pending.done)
    g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
  if (pending.error != NULL)
    {
      g_propagate_error (error, pending.error);
      return NULL;
    }
  if (!g_variant_is_of_type (pending.result, G_VARIANT_TYPE_VARDICT))
    {
      g_variant_unref (pending.result);
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE,
                           "rpc.discover did not answer with an object");
      return NULL;
    }
  return pending.result;
}

/* -- checking ------------------------------------------------------------ */

gboolean
describe_check_params (GVariant    *doc,
                       const char  *method_name,
                       const char  *params_json,
                       GError     **error)
{
  g_autoptr(GVariant) method = find_method (doc, method_name);
  const char *signature = get_string (method, "x-tether-signature");
  g_auto(GStrv) names = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GVariant) params = NULL;
  json_t *json = NULL;

  if (method == NULL || signature == NULL ||
      !g_variant_type_string_is_valid (signature) ||
      !g_variant_type_is_definite (G_VARIANT_TYPE (signature)))
    return TRUE;

  /* Names only where the description gives them for a tuple. */
  if (g_variant_type_is_tuple (G_VARIANT_TYPE (signature)) &&
      g_strcmp0 (get_string (method, "paramStructure"), "by-position") != 0)
    {
      names = param_names (method);
      if (names != NULL &&
          g_strv_length (names) != g_variant_type_n_items (G_VARIANT_TYPE (signature)))
        return TRUE;
    }

  if (params_json != NULL)
    {
      json = _tether_json_parse (params_json, strlen (params_json), 0, &local_error);
      if (json == NULL)
        return TRUE;  /* the caller reports its own parse errors */
      /* What `tether call` sends for a lone value: a one-element array. */
      if (!json_is_array (json) && !json_is_object (json))
        {
          json_t *wrapped = json_array ();

          json_array_append_new (wrapped, json);
          json = wrapped;
        }
    }

  params = _tether_json_params_to_variant (json, signature, (const char * const *) names,
                                           &local_error);
  if (json != NULL)
    json_decref (json);
  if (params == NULL && local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  return TRUE;
}

/* -- printing ------------------------------------------------------------ */

/* "(steps: x?, delay_ms: x?)": names with their types, optional ones
 * marked, from the declared signature. */
static char *
format_params (GVariant *method)
{
  const char *signature = get_string (method, "x-tether-signature");
  g_auto(GStrv) names = param_names (method);
  g_autoptr(GVariant) descriptors = get_member (method, "params");
  GString *out = g_string_new ("(");
  const GVariantType *item;
  guint i = 0;

  if (signature == NULL || !g_variant_type_string_is_valid (signature))
    {
      g_string_append (out, "...");
    }
  else if (!g_variant_type_is_tuple (G_VARIANT_TYPE (signature)))
    {
      g_string_append (out, signature);
    }
  else
    {
      for (item = g_variant_type_first (G_VARIANT_TYPE (signature));
           item != NULL;
           item = g_variant_type_next (item), i++)
        {
          g_autoptr(GVariant) descriptor = i < list_length (descriptors)
                                             ? list_item (descriptors, i) : NULL;
          gboolean required = FALSE;  /* OpenRPC's default */
          gboolean optional;
          const GVariantType *shown;

          if (descriptor != NULL)
            g_variant_lookup (descriptor, "required", "b", &required);
          /* Optional: it may be left out (and is then Nothing). */
          optional = !required && g_variant_type_is_maybe (item);
          shown = optional ? g_variant_type_element (item) : item;

          if (i > 0)
            g_string_append (out, ", ");
          g_string_append_printf (out, "%s: %.*s%s",
                                  names != NULL && i < g_strv_length (names) ? names[i] : "?",
                                  (int) g_variant_type_get_string_length (shown),
                                  g_variant_type_peek_string (shown),
                                  optional ? "?" : "");
        }
    }
  g_string_append_c (out, ')');
  return g_string_free (out, FALSE);
}

static void
print_deadline (GVariant   *method,
                const char *access,
                FILE       *out)
{
  g_autoptr(GVariant) deadline = get_member (method, "x-tether-deadline-ms");
  g_autofree char *deadline_text = NULL;

  if (deadline != NULL)
    deadline_text = g_strdup_printf ("deadline %" G_GINT64_FORMAT " ms, at most %"
                                     G_GINT64_FORMAT " ms",
                                     get_int (deadline, "default", 0),
                                     get_int (deadline, "maximum", 0));
  if (access != NULL)
    fprintf (out, "      %s%s%s\n",
             strcmp (access, "any") == 0 ? "any peer"
             : strcmp (access, "authenticated") == 0 ? "authenticated peers"
             : strcmp (access, "custom") == 0 ? "decided per call"
             : access,
             deadline_text != NULL ? "; " : "", deadline_text != NULL ? deadline_text : "");
  else if (deadline_text != NULL)
    fprintf (out, "      %s\n", deadline_text);
}

static void
print_method (GVariant *method,
              gboolean  callback,
              FILE     *out)
{
  g_autofree char *params = format_params (method);
  g_autoptr(GVariant) result = get_member (method, "result");
  g_autoptr(GVariant) list = get_member (method, "params");
  g_autofree char *callbacks = joined_strings (method, "x-tether-callbacks");
  g_autofree char *made_by = joined_strings (method, "x-tether-made-by");
  const char *result_signature = get_string (method, "x-tether-result-signature");
  const char *text;
  gboolean deprecated = FALSE;

  g_variant_lookup (method, "deprecated", "b", &deprecated);
  fprintf (out, "  %s%s -> %s%s\n", get_string (method, "name"), params,
           result_signature != NULL ? result_signature : "any",
           deprecated ? "   (deprecated)" : "");
  if ((text = get_string (method, "summary")) != NULL)
    fprintf (out, "      %s\n", text);
  if ((text = get_string (method, "description")) != NULL)
    fprintf (out, "      %s\n", text);
  for (gsize i = 0; i < list_length (list); i++)
    {
      g_autoptr(GVariant) param = list_item (list, i);

      if ((text = get_string (param, "description")) != NULL)
        fprintf (out, "      %s: %s\n", get_string (param, "name"), text);
    }
  if ((text = get_string (result, "description")) != NULL)
    fprintf (out, "      returns: %s\n", text);
  if (callbacks != NULL)
    fprintf (out, "      calls back: %s\n", callbacks);
  if (made_by != NULL)
    fprintf (out, "      made by: %s\n", made_by);
  print_deadline (method, callback ? NULL : get_string (method, "x-tether-access"), out);
}

void
describe_print (GVariant *doc,
                FILE     *out)
{
  g_autoptr(GVariant) info = get_member (doc, "info");
  g_autoptr(GVariant) servers = get_member (doc, "servers");
  g_autoptr(GVariant) methods = get_member (doc, "methods");
  g_autoptr(GVariant) callbacks = get_member (doc, "x-tether-callbacks");
  const char *text;

  fprintf (out, "%s, version %s (OpenRPC %s)\n",
           get_string (info, "title") != NULL ? get_string (info, "title") : "?",
           get_string (info, "version") != NULL ? get_string (info, "version") : "?",
           get_string (doc, "openrpc") != NULL ? get_string (doc, "openrpc") : "?");
  if ((text = get_string (info, "description")) != NULL)
    fprintf (out, "  %s\n", text);

  if (list_length (servers) > 0)
    {
      fprintf (out, "\nservers:\n");
      for (gsize i = 0; i < list_length (servers); i++)
        {
          g_autoptr(GVariant) server = list_item (servers, i);

          fprintf (out, "  %s\n", get_string (server, "url"));
        }
    }

  fprintf (out, "\nmethods (the ones this caller may call):\n");
  if (list_length (methods) == 0)
    fprintf (out, "  (none)\n");
  for (gsize i = 0; i < list_length (methods); i++)
    {
      g_autoptr(GVariant) method = list_item (methods, i);

      if (g_variant_is_of_type (method, G_VARIANT_TYPE_VARDICT))
        print_method (method, FALSE, out);
    }

  if (list_length (callbacks) > 0)
    {
      fprintf (out, "\ncallbacks (the service calls its client; a client of the methods "
                    "that make them must answer):\n");
      for (gsize i = 0; i < list_length (callbacks); i++)
        {
          g_autoptr(GVariant) callback = list_item (callbacks, i);

          if (g_variant_is_of_type (callback, G_VARIANT_TYPE_VARDICT))
            print_method (callback, TRUE, out);
        }
    }
}

/* -- tether describe ------------------------------------------------------ */

typedef struct
{
  gboolean  done;
  GError   *error;
} Connecting;

static void
connect_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Connecting *c = user_data;

  tether_client_connect_finish (TETHER_CLIENT (source), result, &c->error);
  c->done = TRUE;
}

static void
print_error (const GError *error)
{
  if (error->domain == TETHER_REMOTE_ERROR)
    g_printerr ("tether describe: the service answered error %d: %s\n", error->code,
                error->message);
  else
    g_printerr ("tether describe: %s\n", error->message);
}

int
describe_main (int    argc,
               char **argv)
{
  gboolean as_json = FALSE;
  int timeout = -1;
  g_autofree char *cacert = NULL;
  g_autofree char *cert = NULL;
  g_autofree char *key = NULL;
  g_autofree char *user = NULL;
  g_autofree char *password_file = NULL;
  g_autofree char *pin = NULL;
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &as_json, "Print the OpenRPC document itself", NULL },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout, "Deadline in milliseconds", "MS" },
    { "cacert", 0, 0, G_OPTION_ARG_FILENAME, &cacert, "CA that verifies the server", "FILE" },
    { "cert", 0, 0, G_OPTION_ARG_FILENAME, &cert, "Client certificate (PEM)", "FILE" },
    { "key", 0, 0, G_OPTION_ARG_FILENAME, &key, "Client private key (PEM)", "FILE" },
    { "user", 0, 0, G_OPTION_ARG_STRING, &user, "Authenticate as this user", "NAME" },
    { "password-file", 0, 0, G_OPTION_ARG_FILENAME, &password_file, "File holding the password", "FILE" },
    { "pin", 0, 0, G_OPTION_ARG_STRING, &pin, "The server certificate's SHA-256 (hex)", "SHA256" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, "URI" },
    { NULL }
  };
  g_autoptr(GOptionContext) context =
    g_option_context_new ("URI - describe a service (rpc.discover)");
  g_autoptr(GError) error = NULL;
  g_autoptr(TetherClient) client = NULL;
  g_autoptr(GVariant) doc = NULL;
  Connecting connecting = { 0 };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("tether describe: %s\n", error->message);
      return 2;
    }
  if (args == NULL || g_strv_length (args) != 1)
    {
      g_printerr ("Usage: tether describe URI [--json] [--timeout MS] [--cacert FILE]\n"
                  "                       [--cert FILE --key FILE] [--user NAME --password-file FILE]\n"
                  "                       [--pin SHA256]\n");
      return 2;
    }
  if ((cert == NULL) != (key == NULL) || (user == NULL) != (password_file == NULL))
    {
      g_printerr ("tether describe: --cert and --key go together, "
                  "as do --user and --password-file\n");
      return 2;
    }

  client = tether_client_new (args[0]);
  if (cert != NULL)
    {
      g_autoptr(GTlsCertificate) certificate = g_tls_certificate_new_from_files (cert, key, &error);

      if (certificate == NULL)
        {
          print_error (error);
          return 1;
        }
      tether_client_set_tls_certificate (client, certificate);
    }
  if (cacert != NULL)
    {
      g_autoptr(GTlsDatabase) database = g_tls_file_database_new (cacert, &error);

      if (database == NULL)
        {
          print_error (error);
          return 1;
        }
      tether_client_set_tls_database (client, database);
    }
  if (pin != NULL)
    g_object_set (client, "tls-pinned-sha256", pin, NULL);
  if (user != NULL)
    {
      g_autofree char *password = NULL;

      if (!g_file_get_contents (password_file, &password, NULL, &error))
        {
          print_error (error);
          return 1;
        }
      g_strchomp (password);
      tether_client_set_credentials (client, user, password);
    }

  tether_client_connect_async (client, NULL, connect_done_cb, &connecting);
  while (!connecting.done)
    g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
  if (connecting.error != NULL)
    {
      g_printerr ("tether describe: cannot connect: %s\n", connecting.error->message);
      g_error_free (connecting.error);
      return 1;
    }

  doc = describe_fetch (client, timeout, &error);
  if (doc == NULL)
    {
      print_error (error);
      if (g_error_matches (error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND))
        g_printerr ("tether describe: this service does not describe itself\n");
      tether_client_close (client);
      return 1;
    }

  if (as_json)
    {
      json_t *json = _tether_variant_to_json (doc);
      char *text = json_dumps (json, JSON_INDENT (2) | JSON_REAL_PRECISION (17));

      g_print ("%s\n", text);
      free (text);
      json_decref (json);
    }
  else
    {
      describe_print (doc, stdout);
    }
  tether_client_close (client);
  return 0;
}
