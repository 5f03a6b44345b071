/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Fuzz target: the JSON codec and the JSON ⇄ GVariant mapping.
 *
 * The input is one raw message, as a peer would send it. It is parsed
 * with the wire's depth limit (64), and whatever parses must survive
 * every mapping the library has:
 *
 *  1. parse: a failure is a TETHER_ERROR (invalid message, too deep) with
 *     a UTF-8 message; a value is no deeper than the limit, and parsing
 *     without Tether's limit agrees with it. Tether's own reader accepts
 *     nothing jansson refuses and reads what it accepts as an equal value;
 *     reading an object's members directly agrees with parsing it.
 *  2. dump: the compact text parses again to an equal value and dumps to
 *     the same bytes (the dump is canonical).
 *  3. undeclared mapping: JSON → GVariant never fails on a parsed value,
 *     gives the documented type (object → a{sv}, array → av, …), is
 *     byte for byte the tree-built value's normal form, and
 *     GVariant → JSON gives back an equal value that dumps to the same
 *     bytes as step 2.
 *  4. typed mappings, over a fixed list of types plus one the input may
 *     choose (a two-element array whose first element is a type string:
 *     ["a(sx)", [["a", 1]]]): a failure is TETHER_ERROR_INVALID_PARAMS
 *     naming a "params" path; a success has the requested type and comes
 *     back identical (g_variant_equal) through JSON and the same type.
 *  5. params: _tether_json_params_to_variant() with "(xx)" and the names
 *     minuend/subtrahend (positional and named), "(sa{sv})" (with and
 *     without names), "av" and no signature; a success maps back to the
 *     params (or, for named params, to the named members in order).
 *  7. messages: the input decoded by each codec (JSON text, binary frame)
 *     gives a message or an INVALID one with a JSON-RPC code and a
 *     UTF-8 reason; a request or result, with its payload turned into a
 *     GVariant, encodes (by JSON, and by frame when it fits) to bytes that
 *     decode to the same kind, id, method and metadata, and the same value.
 *  6. binary frames: the raw input read as a frame never crashes, and
 *     read as an untrusted a{sv}, av or v (a frame's value) it means what
 *     JSON would make of it: a value taken as it arrived has bytes in
 *     GLib's normal form and equals the JSON mapping's value.
 *
 * Equality is jansson's json_equal(), so reals compare by value: the one
 * legitimate difference a round trip may show is -0.0 against 0.0, and
 * the mapping keeps the sign anyway (d holds -0.0, dumped as "-0.0").
 * Reals otherwise come back exactly: they are dumped with 17 significant
 * digits. Integers never turn into reals on these paths (only a GVariant
 * 't' above INT64_MAX would, and JSON cannot produce one).
 *
 * A finding is a crash: g_assert*() (kept in every build, see
 * tests/fuzz/meson.build) or a sanitizer report. */

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "tether-error.h"
#include "tether-binary-private.h"
#include "tether-json-private.h"
#include "tether-message-private.h"

#define MAX_DEPTH 64

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);

/* Types tried on every parsed value. Each one maps back to JSON and then
 * to the same GVariant: nothing here loses information. */
static const char * const typed_signatures[] = {
  "v", "s", "o", "g", "b", "d", "y", "n", "q", "i", "u", "x", "t", "h",
  "ms", "mv", "mmx", "av", "as", "ax", "ay", "ad", "ab", "aav",
  "a{sv}", "a{ss}", "a{sx}", "a{sav}", "a{sa{sv}}", "aa{sv}",
  "()", "(s)", "(xx)", "(sa{sv})", "(bdsx)", "a(sv)", "(ia(sx)mv)",
};

static void
check_error_message (const GError *error)
{
  g_assert_nonnull (error->message);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
}

static void
assert_json_equal (json_t *a,
                   json_t *b)
{
  if (!json_equal (a, b))
    {
      g_autofree char *ta = _tether_json_dump (a, NULL);
      g_autofree char *tb = _tether_json_dump (b, NULL);

      g_error ("values differ:\n  %s\n  %s", ta, tb);
    }
}

static json_t *
reparse (const char *text,
         gsize       len)
{
  g_autoptr(GError) error = NULL;
  json_t *value = _tether_json_parse (text, len, MAX_DEPTH, &error);

  if (value == NULL)
    g_error ("own output does not parse: %s\n  %.*s", error->message, (int) len, text);
  return value;
}

/* 4: a typed conversion that succeeds round-trips exactly. */
static void
check_typed (json_t     *value,
             const char *signature)
{
  const GVariantType *type = G_VARIANT_TYPE (signature);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) variant = NULL;
  g_autoptr(GVariant) again = NULL;
  json_t *json;

  variant = _tether_json_to_variant (value, type, &error);
  if (variant == NULL)
    {
      g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
      check_error_message (error);
      g_assert_true (g_str_has_prefix (error->message, "params"));
      return;
    }
  g_assert_no_error (error);
  g_assert_false (g_variant_is_floating (variant));
  g_assert_true (g_variant_is_of_type (variant, type));
  g_assert_true (g_variant_is_normal_form (variant));

  json = _tether_variant_to_json (variant);
  g_assert_nonnull (json);
  again = _tether_json_to_variant (json, type, &error);
  if (again == NULL)
    g_error ("'%s' does not map back: %s", signature, error->message);
  if (!g_variant_equal (variant, again))
    {
      g_autofree char *a = g_variant_print (variant, TRUE);
      g_autofree char *b = g_variant_print (again, TRUE);

      g_error ("'%s' round trip differs:\n  %s\n  %s", signature, a, b);
    }
  json_decref (json);
}

/* 5: params through a signature. @expected is what the result must map
 * back to when it succeeds (NULL: don't compare). */
static void
check_params (json_t             *params,
              const char         *signature,
              const char * const *names,
              json_t             *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) variant = NULL;
  json_t *json;

  variant = _tether_json_params_to_variant (params, signature, names, &error);
  if (variant == NULL)
    {
      g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
      check_error_message (error);
      return;
    }
  g_assert_no_error (error);
  g_assert_false (g_variant_is_floating (variant));
  if (signature != NULL)
    g_assert_true (g_variant_is_of_type (variant, G_VARIANT_TYPE (signature)));
  /* Params are structured: never a lone scalar, whatever the signature. */
  g_assert_true (json_is_array (params) || json_is_object (params));

  json = _tether_variant_to_json (variant);
  if (expected != NULL)
    assert_json_equal (json, expected);
  json_decref (json);
}

static void
check_all_params (json_t *value)
{
  static const char * const xx_names[] = { "minuend", "subtrahend", NULL };
  static const char * const sa_names[] = { "name", "options", NULL };
  json_t *named = NULL;

  /* Positional: the result is the params themselves. Named: the members
   * in signature order. */
  check_params (value, "(xx)", NULL, json_is_array (value) ? value : NULL);
  if (json_is_object (value) && json_object_size (value) == 2)
    named = json_pack ("[OO]", json_object_get (value, "minuend") ?: json_null (),
                       json_object_get (value, "subtrahend") ?: json_null ());
  check_params (value, "(xx)", xx_names, json_is_array (value) ? value : named);
  g_clear_pointer (&named, json_decref);

  check_params (value, "(sa{sv})", NULL, json_is_array (value) ? value : NULL);
  if (json_is_object (value) && json_object_size (value) == 2)
    named = json_pack ("[OO]", json_object_get (value, "name") ?: json_null (),
                       json_object_get (value, "options") ?: json_null ());
  check_params (value, "(sa{sv})", sa_names, json_is_array (value) ? value : named);
  g_clear_pointer (&named, json_decref);

  check_params (value, "av", NULL, value);
  check_params (value, NULL, NULL, value);
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  /* A g_return_if_fail() in the library is a finding too. */
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  return 0;
}

/* 6. */
static void
check_binary (const uint8_t *data,
              size_t         size)
{
  static const char * const types[] = { "a{sv}", "av", "v" };
  g_autoptr(GBytes) bytes = g_bytes_new (data, size);
  TetherFrame frame;

  if (_tether_frame_parse (bytes, &frame, NULL))
    _tether_frame_clear (&frame);

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autoptr(GVariant) value =
        g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (types[i]), bytes, FALSE));
      g_autoptr(GVariant) meaning = _tether_binary_result_to_variant (value, MAX_DEPTH, NULL);
      g_autoptr(GString) text = g_string_new ("[");
      json_t *json;
      g_autoptr(GVariant) via_json = NULL;

      if (meaning != value)
        continue;
      {
        g_autoptr(GBytes) copy = g_bytes_new (g_variant_get_data (value), g_variant_get_size (value));
        g_autoptr(GVariant) fresh =
          g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (types[i]), copy, FALSE));

        g_assert_true (g_variant_is_normal_form (fresh));
      }
      _tether_json_write_variant (text, value);
      g_string_append_c (text, ']');
      json = _tether_json_parse (text->str, text->len, MAX_DEPTH, NULL);
      g_assert_nonnull (json);
      via_json = _tether_json_to_variant (json_array_get (json, 0), NULL, NULL);
      json_decref (json);
      g_assert_nonnull (via_json);
      g_assert_true (g_variant_equal (via_json, value));
    }
}

/* 7. A decoded message survives encoding and decoding again. */
static void
check_reencoded (TetherMessage *m,
                 gboolean       binary)
{
  TetherMessage again;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) value_again = NULL;

  if (m->kind == TETHER_MESSAGE_INVALID)
    {
      g_assert_true (m->code == -32700 || m->code == -32600);
      g_assert_true (g_utf8_validate (m->text, -1, NULL));
      return;
    }
  if (m->kind == TETHER_MESSAGE_ERROR)
    return;

  value = m->kind == TETHER_MESSAGE_RESULT ? _tether_payload_to_result (&m->payload, MAX_DEPTH, NULL)
                                           : _tether_payload_to_params (&m->payload, NULL, NULL, MAX_DEPTH,
                                                                        NULL);
  /* Only lone values that JSON wraps in [ ] change shape: skip them. */
  if (value != NULL && m->kind == TETHER_MESSAGE_REQUEST &&
      !g_variant_is_of_type (value, G_VARIANT_TYPE_VARDICT) &&
      !g_variant_is_of_type (value, G_VARIANT_TYPE ("av")))
    return;
  if (m->kind == TETHER_MESSAGE_RESULT && value == NULL)
    return;
  m->value = value != NULL ? g_variant_ref (value) : NULL;
  if (binary && _tether_frame_fits (m))
    {
      GString *frame = _tether_frame_encode (m);
      gsize len = frame->len;
      g_autoptr(GBytes) bytes = g_bytes_new_take (g_string_free (frame, FALSE), len);

      _tether_frame_decode (bytes, &again);
    }
  else
    {
      g_autoptr(GString) text = g_string_new (NULL);
      g_autoptr(GPtrArray) batch = NULL;

      _tether_json_encode (text, m);
      _tether_json_decode (text->str, text->len, 0, 0, &again, &batch);
      g_assert_null (batch);
    }
  g_assert_cmpint (again.kind, ==, m->kind);
  g_assert_cmpint (again.id.kind, ==, m->id.kind);
  g_assert_cmpint (again.id.num, ==, m->id.num);
  g_assert_cmpstr (again.id.str, ==, m->id.str);
  g_assert_cmpstr (again.method, ==, m->method);
  if (m->has_meta)
    {
      g_assert_cmpint (again.meta.timeout_ms, ==, m->meta.timeout_ms);
      g_assert_cmpint (again.meta.imp, ==, m->meta.imp);
    }
  value_again = again.kind == TETHER_MESSAGE_RESULT
    ? _tether_payload_to_result (&again.payload, MAX_DEPTH, NULL)
    : _tether_payload_to_params (&again.payload, NULL, NULL, MAX_DEPTH, NULL);
  g_assert_true ((value == NULL) == (value_again == NULL));
  if (value != NULL)
    g_assert_true (g_variant_equal (value, value_again));
  _tether_message_clear (&again);
}

static void
check_messages (const uint8_t *data,
                size_t         size)
{
  TetherMessage m;
  g_autoptr(GPtrArray) batch = NULL;
  g_autoptr(GBytes) bytes = g_bytes_new (data, size);

  _tether_json_decode ((const char *) data, size, MAX_DEPTH, 16, &m, &batch);
  if (batch != NULL)
    {
      g_assert_cmpuint (batch->len, >, 0);
      g_assert_cmpuint (batch->len, <=, 16);
      for (guint i = 0; i < batch->len; i++)
        check_reencoded (batch->pdata[i], FALSE);
    }
  else
    check_reencoded (&m, FALSE);
  _tether_message_clear (&m);

  _tether_frame_decode (bytes, &m);
  check_reencoded (&m, TRUE);
  _tether_message_clear (&m);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) variant = NULL;
  g_autofree char *dump = NULL;
  g_autofree char *dump2 = NULL;
  json_t *value, *unlimited, *again, *back;
  gsize dump_len, dump2_len;

  check_binary (data, size);
  check_messages (data, size);

  /* 1. Parse. */
  {
    json_t *ours = _tether_json_read ((const char *) data, size, G_MAXUINT);
    json_t *theirs = json_loadb ((const char *) data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                                 NULL);

    if (ours != NULL)
      {
        g_assert_nonnull (theirs);
        assert_json_equal (ours, theirs);
        json_decref (ours);
      }
    if (theirs != NULL)
      json_decref (theirs);
  }
  value = _tether_json_parse ((const char *) data, size, MAX_DEPTH, &error);

  /* Reading a message's members without the object gives what parsing
   * it and looking them up gives, or declines. */
  {
    static const char * const names[] = { "jsonrpc", "id", "method", "params", "result", NULL };
    json_t *members[G_N_ELEMENTS (names) - 1];

    if (_tether_json_read_members ((const char *) data, size, MAX_DEPTH, names, members))
      {
        g_assert_true (json_is_object (value));
        g_assert_cmpuint (json_object_size (value), <=, G_N_ELEMENTS (members));
        for (guint i = 0; i < G_N_ELEMENTS (members); i++)
          {
            json_t *expected = json_object_get (value, names[i]);

            g_assert_true ((members[i] == NULL) == (expected == NULL));
            if (expected != NULL)
              {
                assert_json_equal (members[i], expected);
                json_decref (members[i]);
              }
          }
      }
  }
  unlimited = _tether_json_parse ((const char *) data, size, 0, NULL);
  if (value == NULL)
    {
      g_assert_nonnull (error);
      g_assert_true (error->domain == TETHER_ERROR);
      g_assert_true (error->code == TETHER_ERROR_INVALID_MESSAGE ||
                     error->code == TETHER_ERROR_TOO_DEEP);
      check_error_message (error);
      /* Only Tether's own limit may refuse what jansson accepts. */
      if (error->code == TETHER_ERROR_INVALID_MESSAGE)
        g_assert_null (unlimited);
      else if (unlimited != NULL)
        g_assert_cmpuint (_tether_json_depth (unlimited), >, MAX_DEPTH);
      g_clear_pointer (&unlimited, json_decref);
      return 0;
    }
  g_assert_no_error (error);
  g_assert_nonnull (unlimited);
  assert_json_equal (value, unlimited);
  json_decref (unlimited);
  g_assert_cmpuint (_tether_json_depth (value), <=, MAX_DEPTH);

  /* 2. Dump, parse again, dump again. */
  dump = _tether_json_dump (value, &dump_len);
  g_assert_nonnull (dump);
  g_assert_cmpuint (strlen (dump), ==, dump_len);
  g_assert_true (g_utf8_validate (dump, dump_len, NULL));
  again = reparse (dump, dump_len);
  assert_json_equal (value, again);
  dump2 = _tether_json_dump (again, &dump2_len);
  g_assert_cmpstr (dump, ==, dump2);
  json_decref (again);
  g_clear_pointer (&dump2, g_free);

  /* 3. The undeclared mapping and back. */
  variant = _tether_json_to_variant (value, NULL, &error);
  if (variant == NULL)
    g_error ("undeclared mapping failed: %s\n  %s", error->message, dump);
  g_assert_false (g_variant_is_floating (variant));
  switch (json_typeof (value))
    {
    case JSON_OBJECT:
      g_assert_true (g_variant_is_of_type (variant, G_VARIANT_TYPE_VARDICT));
      break;
    case JSON_ARRAY:
      g_assert_true (g_variant_is_of_type (variant, G_VARIANT_TYPE ("av")));
      break;
    case JSON_STRING:
      g_assert_true (g_variant_is_of_type (variant, G_VARIANT_TYPE_STRING));
      break;
    case JSON_INTEGER:
      g_assert_true (g_variant_is_of_type (variant, G_VARIANT_TYPE_INT64));
      break;
    case JSON_REAL:
      g_assert_true (g_variant_is_of_type (variant, G_VARIANT_TYPE_DOUBLE));
      break;
    case JSON_TRUE:
    case JSON_FALSE:
      g_assert_true (g_variant_is_of_type (variant, G_VARIANT_TYPE_BOOLEAN));
      break;
    case JSON_NULL:
      g_assert_true (g_variant_is_of_type (variant, G_VARIANT_TYPE ("mv")));
      g_assert_cmpuint (g_variant_n_children (variant), ==, 0);
      break;
    default:
      g_assert_not_reached ();
    }
  back = _tether_variant_to_json (variant);
  assert_json_equal (value, back);
  /* Serialised directly (up to 32 levels: deeper is built as a tree,
   * which GLib cannot flatten past 128 GVariant levels), it is the tree's
   * normal form, byte for byte. */
  if (_tether_json_depth (value) <= 32)
  {
    g_autoptr(GVariant) built = _tether_json_to_variant_built (value);

    g_assert_nonnull (built);
    g_assert_true (g_variant_is_normal_form (variant));
    g_assert_cmpuint (g_variant_get_size (variant), ==, g_variant_get_size (built));
    /* Empty values have no data (NULL), which memcmp() must not see. */
    g_assert_true (g_variant_get_size (built) == 0 ||
                   memcmp (g_variant_get_data (variant), g_variant_get_data (built),
                           g_variant_get_size (built)) == 0);
  }
  dump2 = _tether_json_dump (back, &dump2_len);
  g_assert_cmpstr (dump, ==, dump2);
  again = reparse (dump2, dump2_len);
  assert_json_equal (back, again);
  json_decref (again);
  json_decref (back);

  /* 4. Typed mappings, fixed and chosen by the input. */
  for (gsize i = 0; i < G_N_ELEMENTS (typed_signatures); i++)
    check_typed (value, typed_signatures[i]);
  if (json_is_array (value) && json_array_size (value) == 2 &&
      json_is_string (json_array_get (value, 0)))
    {
      const char *signature = json_string_value (json_array_get (value, 0));

      if (strlen (signature) <= 64 && g_variant_type_string_is_valid (signature) &&
          g_variant_type_is_definite (G_VARIANT_TYPE (signature)))
        check_typed (json_array_get (value, 1), signature);
    }

  /* 5. Params through the signatures methods declare. */
  check_all_params (value);

  json_decref (value);
  return 0;
}
