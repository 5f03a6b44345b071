/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The message model's plumbing: ids, payloads, metadata. The codecs are
 * tether-json-codec.c and tether-binary.c. */

#include <string.h>

#include "tether-binary-private.h"
#include "tether-error.h"
#include "tether-json-private.h"
#include "tether-message-private.h"

void
_tether_message_id_clear (TetherMessageId *id)
{
  g_clear_pointer (&id->str, g_free);
  id->kind = TETHER_ID_ABSENT;
  id->num = 0;
}

void
_tether_message_id_copy (TetherMessageId       *dest,
                         const TetherMessageId *src)
{
  dest->kind = src->kind;
  dest->num = src->num;
  dest->str = g_strdup (src->str);
}

char *
_tether_message_id_key (const TetherMessageId *id)
{
  if (id->kind == TETHER_ID_INT)
    return g_strdup_printf ("i%" G_GINT64_FORMAT, id->num);
  return g_strconcat ("s", id->str, NULL);
}

char *
_tether_message_id_to_string (const TetherMessageId *id)
{
  GString *out;

  switch (id->kind)
    {
    case TETHER_ID_INT:
      return g_strdup_printf ("%" G_GINT64_FORMAT, id->num);
    case TETHER_ID_STRING:
      out = g_string_new (NULL);
      _tether_json_write_string (out, id->str, strlen (id->str));
      return g_string_free (out, FALSE);
    case TETHER_ID_INVALID:
      return g_strdup (id->str);
    case TETHER_ID_ABSENT:
    default:
      return g_strdup ("(none)");
    }
}

void
_tether_payload_clear (TetherPayload *payload)
{
  if (payload->codec == TETHER_CODEC_JSON)
    json_decref (payload->data);
  else if (payload->codec == TETHER_CODEC_BINARY)
    g_variant_unref (payload->data);
  payload->codec = TETHER_CODEC_NONE;
  payload->data = NULL;
}

GVariant *
_tether_payload_to_params (const TetherPayload  *payload,
                           const char           *signature,
                           const char * const   *param_names,
                           guint                 max_depth,
                           GError              **error)
{
  if (payload->codec == TETHER_CODEC_BINARY)
    return _tether_binary_params_to_variant (payload->data, signature, param_names, max_depth,
                                             error);
  /* JSON was held to the depth limit when it was parsed. */
  return _tether_json_params_to_variant (payload->data, signature, param_names, error);
}

GVariant *
_tether_payload_to_result (const TetherPayload  *payload,
                           guint                 max_depth,
                           GError              **error)
{
  if (payload->codec == TETHER_CODEC_BINARY)
    return _tether_binary_result_to_variant (payload->data, max_depth, error);
  if (payload->codec == TETHER_CODEC_NONE)
    {
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE,
                           "The peer's response has no result");
      return NULL;
    }
  return _tether_json_to_variant (payload->data, NULL, error);
}

char *
_tether_payload_dup_json (const TetherPayload *payload)
{
  if (payload->codec == TETHER_CODEC_BINARY)
    return NULL;
  if (payload->codec == TETHER_CODEC_NONE)
    return g_strdup ("null");
  return _tether_json_dump (payload->data, NULL);
}

void
_tether_detached_claim_free (TetherDetachedClaim *claim)
{
  g_free (claim->session);
  g_free (claim->sig);
  g_free (claim);
}

void
_tether_message_init (TetherMessage *message)
{
  memset (message, 0, sizeof *message);
  message->meta.timeout_ms = -1;
  message->meta.imp = -1;
}

void
_tether_message_clear (TetherMessage *message)
{
  _tether_message_id_clear (&message->id);
  g_clear_pointer (&message->method, g_free);
  g_clear_pointer (&message->value, g_variant_unref);
  _tether_payload_clear (&message->payload);
  g_clear_pointer (&message->text, g_free);
  g_clear_pointer (&message->meta.act_as, g_free);
  g_clear_pointer (&message->meta.token, g_free);
  g_clear_pointer (&message->meta.detached, _tether_detached_claim_free);
  _tether_message_init (message);
}

char *
_tether_json_encode_value (GVariant *value)
{
  GString *out = g_string_sized_new (256);

  _tether_json_write_variant (out, value);
  return g_string_free (out, FALSE);
}

GVariant *
_tether_json_decode_object (const char  *data,
                            gsize        len,
                            GError     **error)
{
  json_t *json = _tether_json_parse (data, len, 0, error);
  GVariant *value;

  if (json == NULL)
    return NULL;
  if (!json_is_object (json))
    {
      json_decref (json);
      g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE,
                           "Not a JSON object");
      return NULL;
    }
  value = _tether_json_to_variant (json, NULL, error);
  json_decref (json);
  return value;
}

static gboolean
is_vardict (GVariant *dict)
{
  return dict != NULL && g_variant_is_of_type (dict, G_VARIANT_TYPE_VARDICT);
}

const char *
_tether_vardict_get_string (GVariant   *dict,
                            const char *key)
{
  const char *value = NULL;

  if (is_vardict (dict))
    g_variant_lookup (dict, key, "&s", &value);
  return value;
}

gboolean
_tether_vardict_get_int (GVariant   *dict,
                         const char *key,
                         gint64     *value)
{
  return is_vardict (dict) && g_variant_lookup (dict, key, "x", value);
}

gboolean
_tether_vardict_lists (GVariant   *dict,
                       const char *key,
                       const char *item)
{
  g_autoptr(GVariant) list = is_vardict (dict) ? g_variant_lookup_value (dict, key, NULL) : NULL;
  gsize n;

  if (list == NULL || !g_variant_is_of_type (list, G_VARIANT_TYPE_ARRAY))
    return FALSE;
  n = g_variant_n_children (list);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (list, i);
      g_autoptr(GVariant) inner = g_variant_is_of_type (child, G_VARIANT_TYPE_VARIANT)
                                    ? g_variant_get_variant (child) : g_variant_ref (child);

      if (g_variant_is_of_type (inner, G_VARIANT_TYPE_STRING) &&
          strcmp (g_variant_get_string (inner, NULL), item) == 0)
        return TRUE;
    }
  return FALSE;
}

static const char * const level_names[] = { "anonymous", "identify", "impersonate", "delegate" };

const char *
_tether_imp_level_to_string (TetherImpersonationLevel level)
{
  g_return_val_if_fail (level <= TETHER_IMPERSONATION_LEVEL_DELEGATE, "anonymous");
  return level_names[level];
}

gboolean
_tether_imp_level_from_string (const char               *str,
                               TetherImpersonationLevel *level)
{
  for (guint i = 0; i < G_N_ELEMENTS (level_names); i++)
    if (g_strcmp0 (str, level_names[i]) == 0)
      {
        *level = i;
        return TRUE;
      }
  return FALSE;
}
