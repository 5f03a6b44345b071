/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <string.h>

#include "tether-error.h"
#include "tether-json-private.h"

/* Tests for the strict JSON layer and the GVariant ⇄ JSON mapping
 * (lib/wire/tether-json-private.h), plus the y_/n_ conformance corpus in
 * tests/json-corpus/. */

#define CORPUS_MAX_DEPTH 64

G_DEFINE_AUTOPTR_CLEANUP_FUNC (json_t, json_decref)

static json_t *
parse_ok (const char *text)
{
  g_autoptr(GError) error = NULL;
  json_t *value = _tether_json_parse (text, strlen (text), CORPUS_MAX_DEPTH, &error);

  g_assert_no_error (error);
  g_assert_nonnull (value);
  return value;
}

static void
assert_parse_fails (const char *text,
                    gsize       len,
                    guint       max_depth,
                    int         code)
{
  g_autoptr(GError) error = NULL;
  json_t *value = _tether_json_parse (text, len, max_depth, &error);

  g_assert_error (error, TETHER_ERROR, code);
  g_assert_null (value);
}

static char *
dump (json_t *value)
{
  gsize len = 0;
  char *text = _tether_json_dump (value, &len);

  g_assert_nonnull (text);
  g_assert_cmpuint (strlen (text), ==, len);
  return text;
}

static char *
nested (const char *open,
        const char *middle,
        const char *close,
        guint       depth)
{
  GString *s = g_string_new (NULL);
  guint i;

  for (i = 0; i < depth; i++)
    g_string_append (s, open);
  g_string_append (s, middle);
  for (i = 0; i < depth; i++)
    g_string_append (s, close);
  return g_string_free (s, FALSE);
}

/* ---------------------------------------------------------------------- */
/* Conformance corpus                                                       */
/* ---------------------------------------------------------------------- */

static char *
corpus_dir (void)
{
  const char *srcdir = g_getenv ("G_TEST_SRCDIR");
  const char *candidates[] = { "json-corpus", "../json-corpus" };
  gsize i;

#ifdef TETHER_TEST_SRCDIR
  if (srcdir == NULL)
    srcdir = TETHER_TEST_SRCDIR;
#endif
  if (srcdir == NULL)
    srcdir = g_test_get_dir (G_TEST_DIST);

  for (i = 0; i < G_N_ELEMENTS (candidates); i++)
    {
      g_autofree char *dir = g_build_filename (srcdir, candidates[i], NULL);

      if (g_file_test (dir, G_FILE_TEST_IS_DIR))
        return g_steal_pointer (&dir);
    }
  return NULL;
}

/* The undeclared mapping is lossless for parsed values: JSON → GVariant
 * → JSON must give back an equal value. */
static void
assert_undeclared_round_trip (json_t *value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) variant = _tether_json_to_variant (value, NULL, &error);
  g_autoptr(json_t) back = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (variant);
  g_assert_false (g_variant_is_floating (variant));
  back = _tether_variant_to_json (variant);
  g_assert_true (json_equal (value, back));

  /* Written straight from the GVariant, it is the same text. */
  {
    g_autoptr(GString) direct = g_string_new (NULL);
    g_autofree char *via_json = dump (back);

    _tether_json_write_variant (direct, variant);
    g_assert_cmpstr (direct->str, ==, via_json);
  }

  /* Serialised directly (up to 32 levels; deeper goes the tree's way),
   * it is the tree's normal form, byte for byte. Last: g_variant_get_data()
   * flattens a tree, and GLib reads a flat value no deeper than 128
   * GVariant levels, three per JSON level. */
  if (_tether_json_depth (value) <= 32)
    {
      g_autoptr(GVariant) built = _tether_json_to_variant_built (value);

      g_assert_nonnull (built);
      g_assert_true (g_variant_is_normal_form (variant));
      g_assert_cmpstr (g_variant_get_type_string (variant), ==, g_variant_get_type_string (built));
      g_assert_cmpuint (g_variant_get_size (variant), ==, g_variant_get_size (built));
      /* Empty values have no data (NULL), which memcmp() must not see. */
      g_assert_true (g_variant_get_size (built) == 0 ||
                     memcmp (g_variant_get_data (variant), g_variant_get_data (built),
                             g_variant_get_size (built)) == 0);
      g_assert_true (g_variant_equal (variant, built));
    }
}

static void
test_corpus_file (gconstpointer data)
{
  const char *path = data;
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(json_t) value = NULL;
  gsize len;

  g_file_get_contents (path, &contents, &len, &error);
  g_assert_no_error (error);

  value = _tether_json_parse (contents, len, CORPUS_MAX_DEPTH, &error);

  /* Tether's reader and jansson agree: same verdict, equal values. The
   * corpus stays within the reader's depth and number lengths, so it
   * never has to hand over to jansson here. */
  {
    g_autoptr(json_t) ours = _tether_json_read (contents, len, CORPUS_MAX_DEPTH);
    g_autoptr(json_t) theirs = json_loadb (contents, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                                           NULL);

    if (strstr (base, "depth") == NULL)
      g_assert_true ((ours != NULL) == (theirs != NULL));
    if (ours != NULL)
      g_assert_true (json_equal (ours, theirs));
  }

  if (g_str_has_prefix (base, "y_"))
    {
      g_autofree char *text = NULL;
      g_autofree char *text2 = NULL;
      g_autoptr(json_t) again = NULL;

      g_assert_no_error (error);
      g_assert_nonnull (value);

      /* What we write, we read back as the same value and the same text. */
      text = dump (value);
      again = _tether_json_parse (text, strlen (text), CORPUS_MAX_DEPTH, &error);
      g_assert_no_error (error);
      g_assert_true (json_equal (value, again));
      text2 = dump (again);
      g_assert_cmpstr (text, ==, text2);

      /* Tether's writer says it writes what jansson's would. */
      {
        g_autofree char *jansson = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY |
                                                      JSON_REAL_PRECISION (17));

        g_assert_cmpstr (text, ==, jansson);
      }

      assert_undeclared_round_trip (value);
    }
  else
    {
      g_assert_true (g_str_has_prefix (base, "n_"));
      g_assert_null (value);
      g_assert_nonnull (error);
      g_assert_true (error->domain == TETHER_ERROR);
      if (strstr (base, "depth") != NULL)
        g_assert_error (error, TETHER_ERROR, TETHER_ERROR_TOO_DEEP);
      else
        g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
    }
}

/* Framing offsets grow from 1 to 2 to 4 bytes as containers pass 255
 * and 65535 bytes: the direct serialisation must switch exactly where
 * GVariant does, at every level. */
static void
test_to_variant_serialised_sizes (void)
{
  const gsize lengths[] = { 0, 1, 7, 8, 200, 240, 250, 260, 300, 65000, 65530, 65536, 70000 };

  for (gsize i = 0; i < G_N_ELEMENTS (lengths); i++)
    for (guint n = 1; n <= 3; n++)
      {
        g_autoptr(json_t) array = json_array ();
        g_autoptr(json_t) object = json_object ();
        g_autoptr(json_t) nested = NULL;
        g_autofree char *text = g_strnfill (lengths[i], 'x');
        json_t *values[3];

        for (guint k = 0; k < n; k++)
          {
            g_autofree char *key = g_strdup_printf ("%s%u", text, k);

            json_array_append_new (array, json_string (text));
            json_array_append_new (array, json_integer (k));
            json_array_append_new (array, json_null ());
            json_object_set_new (object, key, json_real (k + 0.5));
          }
        nested = json_pack ("{s:O, s:O, s:[O, b]}", "a", array, "o", object, "l", array, TRUE);
        values[0] = array;
        values[1] = object;
        values[2] = nested;
        for (guint k = 0; k < G_N_ELEMENTS (values); k++)
          assert_undeclared_round_trip (values[k]);
      }
}

static const char * const members[] = { "a", "b", "c", NULL };

/* _tether_json_read_members() gives what parsing the whole object and
 * looking the members up gives, or declines. */
static void
assert_members (const char *json,
                guint       max_depth,
                gboolean    expect_read)
{
  json_t *values[3];
  gboolean read = _tether_json_read_members (json, strlen (json), max_depth, members, values);

  g_assert_cmpint (read, ==, expect_read);
  if (!read)
    {
      for (guint i = 0; i < G_N_ELEMENTS (values); i++)
        g_assert_null (values[i]);
      return;
    }
  {
    g_autoptr(json_t) whole = _tether_json_parse (json, strlen (json), max_depth, NULL);

    g_assert_true (json_is_object (whole));
    for (guint i = 0; i < G_N_ELEMENTS (values); i++)
      {
        json_t *expected = json_object_get (whole, members[i]);

        g_assert_true ((values[i] == NULL) == (expected == NULL));
        if (expected != NULL)
          g_assert_true (json_equal (values[i], expected));
        g_clear_pointer (&values[i], json_decref);
      }
  }
}

static void
test_parse_members (void)
{
  assert_members ("{}", 64, TRUE);
  assert_members (" { \"a\" : 1 , \"c\":[true, {\"x\": null}] } ", 64, TRUE);
  assert_members ("{\"b\":\"\\u00e9\\n\",\"a\":{\"a\":1.5}}", 64, TRUE);
  assert_members ("{\"\\u0061\":2}", 64, TRUE);      /* the key, unescaped */
  /* Declined: another member, a repeated one, not an object, bad or
   * trailing input, too deep (the object counts as 1). */
  assert_members ("{\"a\":1,\"d\":2}", 64, FALSE);
  assert_members ("{\"a\":1,\"a\":2}", 64, FALSE);
  assert_members ("{\"a\":1,\"\\u0061\":2}", 64, FALSE);
  assert_members ("[1]", 64, FALSE);
  assert_members ("1", 64, FALSE);
  assert_members ("{\"a\":1,}", 64, FALSE);
  assert_members ("{\"a\":1} x", 64, FALSE);
  assert_members ("{\"a\":[1}", 64, FALSE);
  assert_members ("{\"a\":[[1]]}", 3, TRUE);
  assert_members ("{\"a\":[[1]]}", 2, FALSE);
  assert_members ("{}", 1, TRUE);
}

static void
test_corpus_present (gconstpointer data)
{
  const GPtrArray *files = data;
  guint n_y = 0, n_n = 0, i;

  /* A missing corpus must fail, not pass with nothing run. */
  for (i = 0; i < files->len; i++)
    {
      g_autofree char *base = g_path_get_basename (files->pdata[i]);

      if (g_str_has_prefix (base, "y_"))
        n_y++;
      else if (g_str_has_prefix (base, "n_"))
        n_n++;
    }
  g_assert_cmpuint (n_y, >=, 30);
  g_assert_cmpuint (n_n, >=, 60);
}

/* ---------------------------------------------------------------------- */
/* Parsing                                                                  */
/* ---------------------------------------------------------------------- */

static void
test_parse_scalars (void)
{
  g_autoptr(json_t) s = parse_ok ("\"x\"");
  g_autoptr(json_t) i = parse_ok ("-7");
  g_autoptr(json_t) r = parse_ok ("2.5");
  g_autoptr(json_t) t = parse_ok ("true");
  g_autoptr(json_t) n = parse_ok ("null");

  g_assert_cmpstr (json_string_value (s), ==, "x");
  g_assert_cmpint (json_integer_value (i), ==, -7);
  g_assert_cmpfloat (json_real_value (r), ==, 2.5);
  g_assert_true (json_is_true (t));
  g_assert_true (json_is_null (n));
}

static void
test_parse_int64_limits (void)
{
  g_autoptr(json_t) max = parse_ok ("9223372036854775807");
  g_autoptr(json_t) min = parse_ok ("-9223372036854775808");
  g_autoptr(GError) error = NULL;

  g_assert_true (json_is_integer (max));
  g_assert_cmpint (json_integer_value (max), ==, G_MAXINT64);
  g_assert_true (json_is_integer (min));
  g_assert_cmpint (json_integer_value (min), ==, G_MININT64);

  assert_parse_fails ("9223372036854775808", 19, 64, TETHER_ERROR_INVALID_MESSAGE);
  assert_parse_fails ("-9223372036854775809", 20, 64, TETHER_ERROR_INVALID_MESSAGE);
  assert_parse_fails ("1e999", 5, 64, TETHER_ERROR_INVALID_MESSAGE);

  g_assert_null (_tether_json_parse ("[18446744073709551616]", 22, 64, &error));
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE);
  g_assert_nonnull (strstr (error->message, "too big integer"));
}

static void
test_parse_error_messages (void)
{
  g_autoptr(GError) error = NULL;

  g_assert_null (_tether_json_parse ("{\n  \"a\": 01\n}", 13, 64, &error));
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE);
  g_assert_true (g_str_has_prefix (error->message, "Invalid JSON at line 2, column "));
  g_assert_nonnull (strstr (error->message, "invalid token"));
  g_clear_error (&error);

  g_assert_null (_tether_json_parse ("{\"a\":1,\"a\":2}", 13, 64, &error));
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE);
  g_assert_nonnull (strstr (error->message, "duplicate object key"));
  g_clear_error (&error);

  g_assert_null (_tether_json_parse ("[\"\\u0000\"]", 10, 64, &error));
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE);
  g_clear_error (&error);

  /* jansson quotes raw input after "near"; the message stays UTF-8. */
  g_assert_null (_tether_json_parse ("[\xff]", 3, 64, &error));
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_clear_error (&error);

  g_assert_null (_tether_json_parse ("\xef\xbb\xbf[\xc3", 5, 64, &error));
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_MESSAGE);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
}

static void
test_parse_length (void)
{
  const char buffer[] = "[1,2]garbage";
  g_autoptr(json_t) value = NULL;
  g_autoptr(GError) error = NULL;

  /* Only @len bytes count: the buffer needs no terminating NUL. */
  value = _tether_json_parse (buffer, 5, 64, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (json_array_size (value), ==, 2);

  assert_parse_fails (buffer, sizeof buffer - 1, 64, TETHER_ERROR_INVALID_MESSAGE);
  assert_parse_fails (buffer, 4, 64, TETHER_ERROR_INVALID_MESSAGE);
  assert_parse_fails (NULL, 0, 64, TETHER_ERROR_INVALID_MESSAGE);
  assert_parse_fails ("", 0, 64, TETHER_ERROR_INVALID_MESSAGE);
  /* An embedded NUL ends nothing: it is garbage. */
  assert_parse_fails ("[1]\0[2]", 7, 64, TETHER_ERROR_INVALID_MESSAGE);
}

static void
test_parse_depth_limit (void)
{
  const guint limits[] = { 1, 2, 64, 100 };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (limits); i++)
    {
      guint max = limits[i];
      g_autofree char *at = nested ("[", "", "]", max);
      g_autofree char *over = nested ("[", "", "]", max + 1);
      g_autofree char *obj_at = nested ("{\"k\":", "1", "}", max);
      g_autofree char *obj_over = nested ("{\"k\":", "1", "}", max + 1);
      g_autofree char *mixed_over = nested ("[{\"k\":", "[]", "}]", (max + 1) / 2);
      g_autoptr(GError) error = NULL;
      g_autoptr(json_t) value = NULL;
      g_autoptr(json_t) obj = NULL;

      value = _tether_json_parse (at, strlen (at), max, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (_tether_json_depth (value), ==, max);

      obj = _tether_json_parse (obj_at, strlen (obj_at), max, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (_tether_json_depth (obj), ==, max);

      assert_parse_fails (over, strlen (over), max, TETHER_ERROR_TOO_DEEP);
      assert_parse_fails (obj_over, strlen (obj_over), max, TETHER_ERROR_TOO_DEEP);
      assert_parse_fails (mixed_over, strlen (mixed_over), max, TETHER_ERROR_TOO_DEEP);
    }

  /* Scalars have no depth, so even a limit of 1 takes them. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(json_t) value = _tether_json_parse ("[1,{\"a\":\"b\"}]", 13, 2, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (_tether_json_depth (value), ==, 2);
    assert_parse_fails ("[1,{\"a\":[]}]", 12, 2, TETHER_ERROR_TOO_DEEP);
  }
}

static void
test_parse_depth_late_branch (void)
{
  /* The deep branch comes after wide shallow ones: the walk must not stop
   * early, and must unwind correctly between siblings. */
  g_autoptr(GString) s = g_string_new ("[");
  g_autofree char *deep = nested ("[", "", "]", 63);
  guint i;

  for (i = 0; i < 1000; i++)
    g_string_append (s, "[1,{\"a\":[2]}],");
  g_string_append (s, deep);
  g_string_append (s, "]");

  {
    g_autoptr(GError) error = NULL;
    g_autoptr(json_t) value = _tether_json_parse (s->str, s->len, 64, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (_tether_json_depth (value), ==, 64);
  }
  assert_parse_fails (s->str, s->len, 63, TETHER_ERROR_TOO_DEEP);
}

static void
test_parse_very_deep (void)
{
  g_autofree char *open = g_strnfill (100000, '[');
  g_autofree char *balanced = nested ("[", "", "]", 100000);
  g_autofree char *objects = nested ("{\"a\":", "0", "}", 100000);
  g_autoptr(GError) error = NULL;

  /* jansson gives up at its own cap (2048) before Tether's walk runs;
   * either way the answer is TOO_DEEP, not a crash. */
  assert_parse_fails (open, 100000, 64, TETHER_ERROR_TOO_DEEP);
  assert_parse_fails (balanced, 200000, 64, TETHER_ERROR_TOO_DEEP);
  assert_parse_fails (objects, strlen (objects), 64, TETHER_ERROR_TOO_DEEP);
  assert_parse_fails (open, 100000, 0, TETHER_ERROR_TOO_DEEP);

  g_assert_null (_tether_json_parse (open, 100000, 64, &error));
  g_assert_nonnull (strstr (error->message, "maximum parsing depth"));
}

static void
test_parse_jansson_cap (void)
{
  g_autofree char *at = nested ("[", "", "]", 2048);
  g_autofree char *over = nested ("[", "", "]", 2049);
  g_autoptr(GError) error = NULL;
  g_autoptr(json_t) value = NULL;
  g_autoptr(json_t) value0 = NULL;

  /* A limit above jansson's leaves jansson's; 0 means no limit of ours. */
  value = _tether_json_parse (at, strlen (at), 5000, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (_tether_json_depth (value), ==, 2048);
  value0 = _tether_json_parse (at, strlen (at), 0, &error);
  g_assert_no_error (error);

  assert_parse_fails (over, strlen (over), 5000, TETHER_ERROR_TOO_DEEP);
  assert_parse_fails (over, strlen (over), 0, TETHER_ERROR_TOO_DEEP);
  assert_parse_fails (at, strlen (at), 2047, TETHER_ERROR_TOO_DEEP);
}

static void
test_depth (void)
{
  const struct { const char *json; guint depth; } cases[] = {
    { "1", 0 },
    { "\"[[[\"", 0 },
    { "null", 0 },
    { "[]", 1 },
    { "{}", 1 },
    { "[[]]", 2 },
    { "{\"a\":[{}]}", 3 },
    { "[1,[2,[3]],[]]", 3 },
    { "[[[[]]],[],{\"a\":{\"b\":{}}}]", 4 },
    { "{\"a\":1,\"b\":[[[]]],\"c\":[]}", 4 },
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(json_t) value = parse_ok (cases[i].json);

      g_assert_cmpuint (_tether_json_depth (value), ==, cases[i].depth);
    }
}

static void
test_depth_built (void)
{
  /* Values built in code are not bounded by jansson's parser: the depth
   * walk must not recurse on the C stack. */
  json_t *root = json_array ();
  json_t *cur = root;
  guint i;

  for (i = 1; i < 5000; i++)
    {
      json_t *child = json_array ();

      json_array_append_new (cur, child);
      cur = child;
    }
  json_array_append_new (cur, json_object ());

  g_assert_cmpuint (_tether_json_depth (root), ==, 5001);

  /* Tear down from the bottom: json_decref() itself recurses. */
  while (json_array_size (root) > 0)
    {
      json_t *child = json_incref (json_array_get (root, 0));

      json_array_clear (root);
      json_decref (root);
      root = child;
      if (!json_is_array (root))
        break;
    }
  json_decref (root);
}

/* ---------------------------------------------------------------------- */
/* Serialising                                                              */
/* ---------------------------------------------------------------------- */

static void
test_dump_compact (void)
{
  g_autoptr(json_t) value = parse_ok ("{ \"b\" : [ 1 , 2.5 , true , null ] ,\n"
                                      "  \"a\" : \"\xc3\xa9\\u20ac/\\n\" }");
  g_autofree char *text = NULL;
  gsize len = 0;

  text = _tether_json_dump (value, &len);
  /* Compact, member order kept, non-ASCII literal, '/' not escaped. */
  g_assert_cmpstr (text, ==, "{\"b\":[1,2.5,true,null],\"a\":\"\xc3\xa9\xe2\x82\xac/\\n\"}");
  g_assert_cmpuint (len, ==, strlen (text));
  g_assert_false (g_str_has_suffix (text, "\n"));

  g_clear_pointer (&text, g_free);
  text = _tether_json_dump (value, NULL);
  g_assert_nonnull (text);
}

static void
test_dump_large (void)
{
  g_autoptr(json_t) array = json_array ();
  g_autofree char *text = NULL;
  g_autoptr(json_t) back = NULL;
  gsize len = 0;
  guint i;

  /* Past the stack buffer: the output moves to the heap intact. */
  for (i = 0; i < 5000; i++)
    json_array_append_new (array, json_sprintf ("item %u \xc3\xa9", i));
  text = _tether_json_dump (array, &len);
  g_assert_cmpuint (len, ==, strlen (text));
  g_assert_cmpuint (len, >, 50000);
  back = parse_ok (text);
  g_assert_true (json_equal (array, back));
}

static void
test_dump_scalars (void)
{
  const struct { const char *in, *out; } cases[] = {
    { "42", "42" },
    { "-9223372036854775808", "-9223372036854775808" },
    { "\"x\"", "\"x\"" },
    { "\"\\u0001\\\"\\\\\"", "\"\\u0001\\\"\\\\\"" },
    { "true", "true" },
    { "null", "null" },
    { "1.0", "1.0" },
    { "-0.0", "-0.0" },
    { "1e2", "100.0" },
    { "[]", "[]" },
    { "{}", "{}" },
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(json_t) value = parse_ok (cases[i].in);
      g_autofree char *text = dump (value);

      g_assert_cmpstr (text, ==, cases[i].out);
    }
}

static void
test_dump_unencodable (void)
{
  /* Only a _nocheck constructor can make a string that is not UTF-8: the
   * writer still writes valid JSON (U+FFFD for the bad byte). */
  g_autoptr(json_t) bad = json_stringn_nocheck ("a\xff", 2);
  g_autoptr(json_t) loop = json_array ();
  json_t *inner = json_array ();
  g_autofree char *text = NULL;
  gsize len = 42;

  text = _tether_json_dump (bad, &len);
  g_assert_cmpstr (text, ==, "\"a\xef\xbf\xbd\"");
  g_assert_cmpuint (len, ==, 6);

  /* A reference loop (only code can build one) is refused, not followed. */
  json_array_append_new (loop, inner);
  json_array_append (inner, loop);
  len = 42;
  g_assert_null (_tether_json_dump (loop, &len));
  g_assert_cmpuint (len, ==, 0);
  json_array_clear (inner);
}

static void
test_dump_reals_round_trip (void)
{
  const double values[] = {
    0.1, 1.0 / 3.0, 1e300, -1e-300, 5e-324, 2.2250738585072014e-308,
    1.7976931348623157e308, 123456789.123456789, 9007199254740993.0,
    18446744073709551615.0, -0.0, 0.0,
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(json_t) value = json_real (values[i]);
      g_autofree char *text = dump (value);
      g_autoptr(json_t) back = parse_ok (text);

      g_assert_true (json_is_real (back));
      g_assert_true (memcmp (&values[i], &(double) { json_real_value (back) },
                             sizeof (double)) == 0);
    }
}

static const char * const subtract_names[] = { "minuend", "subtrahend", NULL };

static void assert_params_fail (const char         *json,
                                const char         *signature,
                                const char * const *names,
                                const char         *message);

/* ---------------------------------------------------------------------- */
/* JSON → GVariant                                                          */
/* ---------------------------------------------------------------------- */

/* Converts @json to @type (NULL: undeclared) and compares the result with
 * @expected, in GVariant text format. */
static void
assert_converts (const char *json,
                 const char *type,
                 const char *expected)
{
  g_autoptr(json_t) value = parse_ok (json);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) variant = NULL;
  g_autoptr(GVariant) want = NULL;

  variant = _tether_json_to_variant (value,
                                     type != NULL ? G_VARIANT_TYPE (type) : NULL,
                                     &error);
  g_assert_no_error (error);
  g_assert_nonnull (variant);
  g_assert_false (g_variant_is_floating (variant));
  if (type != NULL)
    g_assert_cmpstr (g_variant_get_type_string (variant), ==, type);

  want = g_variant_parse (type != NULL ? G_VARIANT_TYPE (type) : NULL,
                          expected, NULL, NULL, &error);
  g_assert_no_error (error);
  if (!g_variant_equal (variant, want))
    {
      g_autofree char *got = g_variant_print (variant, TRUE);

      g_error ("%s as %s: got %s, want %s", json, type, got, expected);
    }
}

static void
assert_converts_fails (const char *json,
                       const char *type,
                       const char *message)
{
  g_autoptr(json_t) value = parse_ok (json);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) variant = NULL;

  variant = _tether_json_to_variant (value, G_VARIANT_TYPE (type), &error);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
  g_assert_null (variant);
  if (message != NULL)
    g_assert_cmpstr (error->message, ==, message);
}

static void
test_to_variant_undeclared (void)
{
  assert_converts ("{\"a\":1,\"b\":\"x\"}", NULL, "@a{sv} {'a': <int64 1>, 'b': <'x'>}");
  assert_converts ("[1,\"x\",true]", NULL, "@av [<int64 1>, <'x'>, <true>]");
  assert_converts ("[]", NULL, "@av []");
  assert_converts ("{}", NULL, "@a{sv} {}");
  assert_converts ("\"s\"", NULL, "'s'");
  assert_converts ("-5", NULL, "int64 -5");
  assert_converts ("2.5", NULL, "2.5");
  assert_converts ("1.0", NULL, "1.0");
  assert_converts ("false", NULL, "false");
  assert_converts ("null", NULL, "@mv nothing");
  assert_converts ("[null,{\"n\":null}]", NULL,
                   "@av [<@mv nothing>, <@a{sv} {'n': <@mv nothing>}>]");
  assert_converts ("[[1],[[]]]", NULL,
                   "@av [<@av [<int64 1>]>, <@av [<@av []>]>]");
}

static void
test_to_variant_basic (void)
{
  assert_converts ("true", "b", "true");
  assert_converts ("\"text\"", "s", "'text'");
  assert_converts ("\"\xc3\xa9\\ud83d\\ude00\"", "s", "'\xc3\xa9\xf0\x9f\x98\x80'");
  assert_converts ("\"/org/example/Obj\"", "o", "objectpath '/org/example/Obj'");
  assert_converts ("\"a{sv}\"", "g", "signature 'a{sv}'");
  assert_converts ("3", "d", "3.0");
  assert_converts ("-3.25", "d", "-3.25");
  assert_converts ("9223372036854775807", "d", "9.2233720368547758e18");
  assert_converts ("7", "h", "handle 7");
  assert_converts ("{\"x\":[1,\"a\"]}", "v", "<@a{sv} {'x': <@av [<int64 1>, <'a'>]>}>");
  assert_converts ("null", "v", "<@mv nothing>");
  assert_converts ("9223372036854775807", "t", "uint64 9223372036854775807");
  assert_converts ("-9223372036854775808", "x", "int64 -9223372036854775808");

  assert_converts_fails ("1", "b", "params: expected a boolean, got an integer");
  assert_converts_fails ("\"true\"", "b", "params: expected a boolean, got a string");
  assert_converts_fails ("1.5", "i", "params: expected an integer, got a real number");
  assert_converts_fails ("1.0", "x", "params: expected an integer, got a real number");
  assert_converts_fails ("\"1\"", "i", "params: expected an integer, got a string");
  assert_converts_fails ("true", "d", "params: expected a number, got a boolean");
  assert_converts_fails ("null", "s", "params: expected a string, got null");
  assert_converts_fails ("1", "o", "params: expected an object path, got an integer");
  assert_converts_fails ("[]", "g", "params: expected a type signature, got an array");
  assert_converts_fails ("\"not/a/path\"", "o",
                         "params: expected an object path, got a string that is not one");
  assert_converts_fails ("\"a{\"", "g",
                         "params: expected a type signature, got a string that is not one");
  assert_converts_fails ("-1", "t", "params: expected an integer from 0 to "
                         "9223372036854775807, got -1");
}

static void
test_to_variant_integer_ranges (void)
{
  const struct { const char *type; gint64 min, max; } ranges[] = {
    { "y", 0, G_MAXUINT8 },
    { "n", G_MININT16, G_MAXINT16 },
    { "q", 0, G_MAXUINT16 },
    { "i", G_MININT32, G_MAXINT32 },
    { "u", 0, G_MAXUINT32 },
    { "h", G_MININT32, G_MAXINT32 },
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (ranges); i++)
    {
      const char *type = ranges[i].type;
      gint64 bounds[] = { ranges[i].min, ranges[i].max };
      gsize j;

      for (j = 0; j < G_N_ELEMENTS (bounds); j++)
        {
          g_autofree char *json = g_strdup_printf ("%" G_GINT64_FORMAT, bounds[j]);
          g_autofree char *outside = g_strdup_printf ("%" G_GINT64_FORMAT,
                                                      j == 0 ? bounds[j] - 1 : bounds[j] + 1);
          g_autofree char *message = NULL;
          g_autofree char *array_type = g_strconcat ("a", type, NULL);
          g_autofree char *array_json = g_strdup_printf ("[0,%s]", outside);
          g_autoptr(json_t) value = parse_ok (json);
          g_autoptr(GVariant) variant = _tether_json_to_variant (value, G_VARIANT_TYPE (type), NULL);
          gint64 got;

          g_assert_nonnull (variant);
          switch (type[0])
            {
            case 'y': got = g_variant_get_byte (variant); break;
            case 'n': got = g_variant_get_int16 (variant); break;
            case 'q': got = g_variant_get_uint16 (variant); break;
            case 'i': got = g_variant_get_int32 (variant); break;
            case 'u': got = g_variant_get_uint32 (variant); break;
            default: got = g_variant_get_handle (variant); break;
            }
          g_assert_cmpint (got, ==, bounds[j]);

          message = g_strdup_printf ("params: expected an integer from %" G_GINT64_FORMAT
                                     " to %" G_GINT64_FORMAT ", got %s",
                                     ranges[i].min, ranges[i].max, outside);
          assert_converts_fails (outside, type, message);

          /* The same limits through the packed-array path. */
          g_clear_pointer (&message, g_free);
          message = g_strdup_printf ("params[1]: expected an integer from %" G_GINT64_FORMAT
                                     " to %" G_GINT64_FORMAT ", got %s",
                                     ranges[i].min, ranges[i].max, outside);
          assert_converts_fails (array_json, array_type, message);
        }
    }
}

static void
test_to_variant_fixed_arrays (void)
{
  assert_converts ("[0,255,7]", "ay", "[byte 0, 255, 7]");
  assert_converts ("[-32768,32767]", "an", "[int16 -32768, 32767]");
  assert_converts ("[65535]", "aq", "[uint16 65535]");
  assert_converts ("[-2147483648,2147483647]", "ai", "[-2147483648, 2147483647]");
  assert_converts ("[4294967295]", "au", "[uint32 4294967295]");
  assert_converts ("[-9223372036854775808,9223372036854775807]", "ax",
                   "[int64 -9223372036854775808, 9223372036854775807]");
  assert_converts ("[0,9223372036854775807]", "at", "[uint64 0, 9223372036854775807]");
  assert_converts ("[1,2.5,-0.0]", "ad", "[1.0, 2.5, -0.0]");
  assert_converts ("[true,false,true]", "ab", "[true, false, true]");
  assert_converts ("[3]", "ah", "[handle 3]");
  assert_converts ("[]", "ay", "@ay []");
  assert_converts ("[]", "ad", "@ad []");
  assert_converts ("[[1,2],[],[3]]", "aai", "[[1, 2], [], [3]]");
  assert_converts ("[[1,true],[2,false]]", "a(yb)", "[(byte 1, true), (2, false)]");

  assert_converts_fails ("[true,1]", "ab", "params[1]: expected a boolean, got an integer");
  assert_converts_fails ("[1,\"2\"]", "ad", "params[1]: expected a number, got a string");
  assert_converts_fails ("[1,2.0]", "ax", "params[1]: expected an integer, got a real number");
  assert_converts_fails ("{}", "ai", "params: expected an array, got an object");
  assert_converts_fails ("[[1],[2,\"x\"]]", "aai",
                         "params[1][1]: expected an integer, got a string");
}

static void
test_to_variant_containers (void)
{
  assert_converts ("{\"a\":1,\"b\":[\"x\"]}", "a{sv}",
                   "{'a': <int64 1>, 'b': <@av [<'x'>]>}");
  assert_converts ("{\"a\":1,\"b\":2}", "a{si}", "{'a': 1, 'b': 2}");
  assert_converts ("{}", "a{ss}", "@a{ss} {}");
  assert_converts ("[[\"a\",\"b\"],[],[\"c\"]]", "aas", "[['a', 'b'], [], ['c']]");
  assert_converts ("[\"name\",{\"k\":true}]", "(sa{sv})", "('name', {'k': <true>})");
  assert_converts ("[]", "()", "()");
  assert_converts ("[[1,[\"x\"]]]", "((ias))", "((1, ['x']),)");
  assert_converts ("null", "mv", "@mv nothing");
  assert_converts ("5", "mv", "@mv <int64 5>");
  assert_converts ("null", "ms", "@ms nothing");
  assert_converts ("\"x\"", "ms", "@ms 'x'");
  assert_converts ("[null,1]", "ami", "[nothing, just 1]");
  assert_converts ("{\"a\":null,\"b\":\"x\"}", "a{sms}", "{'a': nothing, 'b': just 'x'}");
  assert_converts ("[{\"o\":\"/a\"}]", "aa{so}", "[{'o': objectpath '/a'}]");

  assert_converts_fails ("[1,2]", "(iii)", "params: expected an array of 3 elements, got 2");
  assert_converts_fails ("[1,2]", "(i)", "params: expected an array of 1 element, got 2");
  assert_converts_fails ("{\"a\":1}", "(i)", "params: expected an array, got an object");
  assert_converts_fails ("[1]", "a{sv}", "params: expected an object, got an array");
  assert_converts_fails ("{\"a\":\"x\"}", "a{si}", "params.a: expected an integer, got a string");
  assert_converts_fails ("{\"two words\":\"x\"}", "a{si}",
                         "params[\"two words\"]: expected an integer, got a string");
  assert_converts_fails ("{\"q\\\"\\n\":\"x\"}", "a{si}",
                         "params[\"q\\\"\\u000a\"]: expected an integer, got a string");
  assert_converts_fails ("[\"n\",{\"k\":[1,\"x\"]}]", "(sa{sai})",
                         "params[1].k[1]: expected an integer, got a string");
  assert_converts_fails ("[[1,{}]]", "a(ii)",
                         "params[0][1]: expected an integer, got an object");
  assert_converts_fails ("1.5", "ms", "params: expected a string, got a real number");
  assert_converts_fails ("[1]", "()", "params: expected an array of 0 elements, got 1");
}

static void
test_to_variant_long_key (void)
{
  g_autofree char *key = g_strnfill (200, 'k');
  g_autofree char *json = g_strdup_printf ("{\"%s\":\"x\"}", key);
  g_autofree char *message = g_strdup_printf ("params[\"%.64s…\"]: expected an integer, "
                                              "got a string", key);

  /* Peer-chosen names are truncated in messages. */
  assert_converts_fails (json, "a{si}", message);
}

static void
test_to_variant_unsupported (void)
{
  assert_converts_fails ("[\"a\",1]", "{si}", "params: type '{si}' has no JSON mapping");
  assert_converts_fails ("{\"1\":2}", "a{ii}", "params: type 'a{ii}' has no JSON mapping");
  assert_converts_fails ("{\"/a\":2}", "a{oi}", "params: type 'a{oi}' has no JSON mapping");
  assert_converts_fails ("[[\"a\",1]]", "a{si}", "params: expected an object, got an array");
}

static void
test_to_variant_bad_strings (void)
{
  g_autoptr(json_t) nul = json_stringn ("a\0b", 3);
  g_autoptr(json_t) bad_utf8 = json_stringn_nocheck ("\xff", 1);
  g_autoptr(json_t) array = json_pack ("[O]", nul);
  g_autoptr(json_t) object = json_object ();
  g_autoptr(json_t) bad_key = json_object ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = NULL;

  /* Parsing never yields these, but values built in code can. */
  json_object_set (object, "k", nul);
  json_object_setn_new_nocheck (bad_key, "a\0b", 3, json_integer (1));

  v = _tether_json_to_variant (nul, G_VARIANT_TYPE_STRING, &error);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
  g_assert_cmpstr (error->message, ==,
                   "params: string contains a NUL character or invalid UTF-8");
  g_clear_error (&error);

  v = _tether_json_to_variant (nul, NULL, &error);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
  g_clear_error (&error);

  v = _tether_json_to_variant (bad_utf8, G_VARIANT_TYPE ("o"), &error);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
  g_clear_error (&error);

  v = _tether_json_to_variant (array, NULL, &error);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
  g_assert_cmpstr (error->message, ==,
                   "params[0]: string contains a NUL character or invalid UTF-8");
  g_clear_error (&error);

  v = _tether_json_to_variant (object, G_VARIANT_TYPE ("a{ss}"), &error);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
  g_clear_error (&error);

  v = _tether_json_to_variant (bad_key, NULL, &error);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_assert_true (g_str_has_prefix (error->message, "params[\"a\\u0000b\"]: string contains"));
  g_clear_error (&error);

  g_assert_null (v);
}

static void
test_to_variant_quoting (void)
{
  g_autoptr(json_t) object = json_object ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = NULL;

  /* Non-ASCII names are kept, bytes that are not UTF-8 are escaped. */
  json_object_setn_new_nocheck (object, "\xc3\xa9\xff\xe2\x82", 5, json_true ());
  v = _tether_json_to_variant (object, G_VARIANT_TYPE ("a{sv}"), &error);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
  g_assert_cmpstr (error->message, ==, "params[\"\xc3\xa9\\xff\\xe2\\x82\"]: "
                   "string contains a NUL character or invalid UTF-8");
  g_clear_error (&error);

  assert_params_fail ("{\"minuend\":1,\"\xc3\xa9\":2}", "(ii)", subtract_names,
                      "unknown parameter '\xc3\xa9'");

  /* A name with a NUL in it matches no parameter, not even a prefix. */
  {
    g_autoptr(json_t) named = json_pack ("{si}", "minuend", 1);

    json_object_setn_new_nocheck (named, "subtrahend\0x", 12, json_integer (2));
    g_clear_pointer (&v, g_variant_unref);
    v = _tether_json_params_to_variant (named, "(ii)", subtract_names, &error);
    g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
    g_assert_cmpstr (error->message, ==, "unknown parameter 'subtrahend\\u0000x'");
    g_clear_error (&error);
  }

  /* Failing without a GError to fill is fine too. */
  v = _tether_json_to_variant (object, G_VARIANT_TYPE ("a{si}"), NULL);
  g_assert_null (v);
}

static void
test_to_variant_error_cleanup (void)
{
  /* A failure deep inside a large container frees what was built so far
   * (checked by the leak sanitizer). */
  g_autoptr(GString) s = g_string_new ("{");
  guint i;

  for (i = 0; i < 100; i++)
    g_string_append_printf (s, "\"k%u\":[\"a\",{\"x\":[1,2,3]}],", i);
  g_string_append (s, "\"last\":[\"a\",{\"x\":[1,\"oops\"]}]}");

  assert_converts_fails (s->str, "a{s(sa{sai})}",
                         "params.last[1].x[1]: expected an integer, got a string");
  assert_converts_fails (s->str, "a{s(sa{sax})}",
                         "params.last[1].x[1]: expected an integer, got a string");
  {
    g_autoptr(json_t) value = parse_ok (s->str);
    g_autoptr(GVariant) v = _tether_json_to_variant (value, NULL, NULL);

    g_assert_cmpuint (g_variant_n_children (v), ==, 101);
  }
}

/* ---------------------------------------------------------------------- */
/* Params                                                                   */
/* ---------------------------------------------------------------------- */

static GVariant *
params (const char         *json,
        const char         *signature,
        const char * const *names,
        GError            **error)
{
  g_autoptr(json_t) value = json != NULL ? parse_ok (json) : NULL;
  GVariant *result = _tether_json_params_to_variant (value, signature, names, error);

  if (result != NULL)
    g_assert_false (g_variant_is_floating (result));
  return result;
}

static void
assert_params_fail (const char         *json,
                    const char         *signature,
                    const char * const *names,
                    const char         *message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = params (json, signature, names, &error);

  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
  g_assert_null (result);
  g_assert_cmpstr (error->message, ==, message);
}

static void
test_params_subtract (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) positional = params ("[42,23]", "(ii)", subtract_names, &error);
  g_autoptr(GVariant) named = NULL;
  g_autoptr(GVariant) named_reordered = NULL;
  gint32 a, b;

  g_assert_no_error (error);
  g_variant_get (positional, "(ii)", &a, &b);
  g_assert_cmpint (a, ==, 42);
  g_assert_cmpint (b, ==, 23);

  named = params ("{\"minuend\":42,\"subtrahend\":23}", "(ii)", subtract_names, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (named, positional));

  named_reordered = params ("{\"subtrahend\":23,\"minuend\":42}", "(ii)", subtract_names, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (named_reordered, positional));
}

static void
test_params_errors (void)
{
  assert_params_fail ("[42,\"23\"]", "(ii)", subtract_names,
                      "parameter 'subtrahend' (#2): expected an integer, got a string");
  assert_params_fail ("{\"minuend\":42,\"subtrahend\":\"23\"}", "(ii)", subtract_names,
                      "parameter 'subtrahend' (#2): expected an integer, got a string");
  assert_params_fail ("{\"minuend\":4.2,\"subtrahend\":23}", "(ii)", subtract_names,
                      "parameter 'minuend' (#1): expected an integer, got a real number");
  assert_params_fail ("{\"subtrahend\":23}", "(ii)", subtract_names,
                      "missing parameter 'minuend'");
  assert_params_fail ("{}", "(ii)", subtract_names, "missing parameter 'minuend'");
  assert_params_fail ("{\"minuend\":42,\"subtrahend\":23,\"foo\":1}", "(ii)", subtract_names,
                      "unknown parameter 'foo'");
  /* A misspelt name is reported as unknown, not as the missing one. */
  assert_params_fail ("{\"minuend\":42,\"subtrahnd\":23}", "(ii)", subtract_names,
                      "unknown parameter 'subtrahnd'");
  assert_params_fail ("{\"minuend\":42,\"it's\\n\":23}", "(ii)", subtract_names,
                      "unknown parameter 'it\\'s\\u000a'");
  assert_params_fail ("[42,23,1]", "(ii)", subtract_names, "expected 2 parameters, got 3");
  assert_params_fail ("[42]", "(ii)", subtract_names, "expected 2 parameters, got 1");
  assert_params_fail ("[]", "(i)", NULL, "expected 1 parameter, got 0");
  assert_params_fail (NULL, "(ii)", subtract_names, "expected 2 parameters, got none");
  assert_params_fail ("42", "(ii)", subtract_names,
                      "params must be an array or an object, got an integer");
  assert_params_fail ("null", "(ii)", subtract_names,
                      "params must be an array or an object, got null");
  assert_params_fail ("\"x\"", NULL, NULL,
                      "params must be an array or an object, got a string");
  assert_params_fail ("[1]", "()", NULL, "expected 0 parameters, got 1");
  assert_params_fail ("{\"a\":1}", "()", NULL, "unknown parameter 'a'");
}

/* Issue #12: trailing maybe-typed members are optional (OpenRPC's
 * "required": false): named params may leave them out, positional ones
 * may stop before them; they are then Nothing, as null would be. */
static void
assert_params_equal (const char         *json,
                     const char         *signature,
                     const char * const *names,
                     const char         *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) got = params (json, signature, names, &error);
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  text = g_variant_print (got, TRUE);
  g_assert_cmpstr (text, ==, expected);
}

static void
test_params_optional (void)
{
  const char *work_names[] = { "steps", "delay_ms", NULL };
  const char *mixed_names[] = { "question", "timeout", NULL };

  assert_params_equal ("{\"steps\":3}", "(mxmx)", work_names, "(@mx 3, @mx nothing)");
  assert_params_equal ("{\"delay_ms\":5}", "(mxmx)", work_names, "(@mx nothing, @mx 5)");
  assert_params_equal ("{}", "(mxmx)", work_names, "(@mx nothing, @mx nothing)");
  assert_params_equal ("[]", "(mxmx)", work_names, "(@mx nothing, @mx nothing)");
  assert_params_equal ("[2]", "(mxmx)", work_names, "(@mx 2, @mx nothing)");
  assert_params_equal ("[2,1]", "(mxmx)", work_names, "(@mx 2, @mx 1)");
  assert_params_equal ("[null,1]", "(mxmx)", work_names, "(@mx nothing, @mx 1)");
  assert_params_equal (NULL, "(mxmx)", work_names, "(@mx nothing, @mx nothing)");
  assert_params_equal ("[\"ok?\"]", "(sms)", mixed_names, "('ok?', @ms nothing)");
  assert_params_equal ("{\"question\":\"ok?\"}", "(sms)", mixed_names,
                       "('ok?', @ms nothing)");

  assert_params_fail ("[1,2,3]", "(mxmx)", work_names, "expected 0 to 2 parameters, got 3");
  assert_params_fail ("[]", "(sms)", mixed_names, "expected 1 to 2 parameters, got 0");
  assert_params_fail (NULL, "(sms)", mixed_names, "expected 1 to 2 parameters, got none");
  assert_params_fail ("{\"timeout\":\"x\"}", "(sms)", mixed_names,
                      "missing parameter 'question'");
  assert_params_fail ("{\"steps\":3,\"delay\":1}", "(mxmx)", work_names,
                      "unknown parameter 'delay'");
  /* Only trailing members are optional, by position and by name alike:
   * a maybe before a required member must be given (null will do). */
  assert_params_fail ("[1]", "(mxx)", NULL, "expected 2 parameters, got 1");
  assert_params_fail ("{\"b\":1}", "(mxx)", (const char *[]) { "a", "b", NULL },
                      "missing parameter 'a'");
  assert_params_equal ("{\"a\":null,\"b\":1}", "(mxx)", (const char *[]) { "a", "b", NULL },
                       "(@mx nothing, int64 1)");
  assert_params_fail ("[\"x\"]", "(mxmx)", work_names,
                      "parameter 'steps' (#1): expected an integer, got a string");
}

static void
test_params_nested (void)
{
  static const char * const names[] = { "name", "options", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GVariant) want = NULL;

  v = params ("{\"options\":{\"n\":[1,2],\"m\":null},\"name\":\"x\"}", "(sa{sv})", names, &error);
  g_assert_no_error (error);
  want = g_variant_parse (NULL, "('x', {'n': <@av [<int64 1>, <int64 2>]>, 'm': <@mv nothing>})",
                          NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (v, want));

  assert_params_fail ("[\"x\",[1]]", "(sa{sv})", names,
                      "parameter 'options' (#2): expected an object, got an array");
  assert_params_fail ("{\"name\":\"x\",\"options\":{\"n\":[1,\"z\"]}}", "(sa{sai})", names,
                      "parameter 'options' (#2) at .n[1]: expected an integer, got a string");
  assert_params_fail ("[\"x\",{\"a b\":[true]}]", "(sa{sai})", names,
                      "parameter 'options' (#2) at [\"a b\"][0]: expected an integer, "
                      "got a boolean");
}

static void
test_params_no_names (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = params ("[1,\"a\"]", "(is)", NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (v), ==, "(is)");

  assert_params_fail ("[1,2]", "(is)", NULL,
                      "parameter #2: expected a string, got an integer");
  assert_params_fail ("{\"a\":1,\"b\":\"x\"}", "(is)", NULL,
                      "this method takes positional parameters only");
}

static void
test_params_empty_tuple (void)
{
  const char *inputs[] = { NULL, "[]", "{}" };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (inputs); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) v = params (inputs[i], "()", NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (g_variant_get_type_string (v), ==, "()");
    }
}

static void
test_params_undeclared (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) absent = params (NULL, NULL, NULL, &error);
  g_autoptr(GVariant) array = NULL;
  g_autoptr(GVariant) object = NULL;

  /* Absent params are not an error, and give no value. */
  g_assert_no_error (error);
  g_assert_null (absent);

  array = params ("[1,\"a\"]", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (array), ==, "av");
  g_assert_cmpuint (g_variant_n_children (array), ==, 2);

  object = params ("{\"a\":1}", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (object), ==, "a{sv}");
}

static void
test_params_whole (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) dict = params ("{\"a\":1}", "a{sv}", NULL, &error);
  g_autoptr(GVariant) strv = NULL;

  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (dict), ==, "a{sv}");

  strv = params ("[\"a\",\"b\"]", "as", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (strv), ==, "as");

  assert_params_fail ("[\"a\",1]", "as", NULL, "params[1]: expected a string, got an integer");
  assert_params_fail ("[1]", "a{sv}", NULL, "params: expected an object, got an array");
  assert_params_fail (NULL, "a{sv}", NULL, "missing params");
}

static void
test_params_many (void)
{
  /* More members than fit on the stack. */
  static const char * const names[] = {
    "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9",
    "p10", "p11", "p12", "p13", "p14", "p15", "p16", "p17", "p18", "p19", NULL
  };
  g_autoptr(GString) object = g_string_new ("{");
  g_autoptr(GString) array = g_string_new ("[");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) a = NULL;
  g_autoptr(GVariant) b = NULL;
  guint i;

  for (i = 20; i > 0; i--)
    g_string_append_printf (object, "%s\"p%u\":%u", i < 20 ? "," : "", i - 1, i - 1);
  g_string_append_c (object, '}');
  for (i = 0; i < 20; i++)
    g_string_append_printf (array, "%s%u", i > 0 ? "," : "", i);
  g_string_append_c (array, ']');

  a = params (object->str, "(iiiiiiiiiiiiiiiiiiii)", names, &error);
  g_assert_no_error (error);
  b = params (array->str, "(iiiiiiiiiiiiiiiiiiii)", names, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (a, b));
  {
    g_autoptr(GVariant) last = g_variant_get_child_value (a, 19);

    g_assert_cmpint (g_variant_get_int32 (last), ==, 19);
  }

  assert_params_fail ("{\"p0\":0}", "(iiiiiiiiiiiiiiiiiiii)", names, "missing parameter 'p1'");
}

/* ---------------------------------------------------------------------- */
/* GVariant → JSON                                                          */
/* ---------------------------------------------------------------------- */

/* Converts the GVariant text @gvariant and compares the compact dump. */
static void
assert_to_json (const char *gvariant,
                const char *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = g_variant_parse (NULL, gvariant, NULL, NULL, &error);
  g_autoptr(json_t) json = NULL;
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  json = _tether_variant_to_json (v);
  g_assert_nonnull (json);
  text = dump (json);
  g_assert_cmpstr (text, ==, expected);
}

static void
test_from_variant_basic (void)
{
  assert_to_json ("true", "true");
  assert_to_json ("byte 255", "255");
  assert_to_json ("int16 -32768", "-32768");
  assert_to_json ("uint16 65535", "65535");
  assert_to_json ("int32 -2147483648", "-2147483648");
  assert_to_json ("uint32 4294967295", "4294967295");
  assert_to_json ("int64 -9223372036854775808", "-9223372036854775808");
  assert_to_json ("uint64 9223372036854775807", "9223372036854775807");
  assert_to_json ("uint64 9223372036854775808", "9.2233720368547758e18");
  assert_to_json ("uint64 18446744073709551615", "1.8446744073709552e19");
  assert_to_json ("handle 3", "3");
  assert_to_json ("2.5", "2.5");
  assert_to_json ("1.0", "1.0");
  assert_to_json ("'h\xc3\xa9\"'", "\"h\xc3\xa9\\\"\"");
  assert_to_json ("objectpath '/a/b'", "\"/a/b\"");
  assert_to_json ("signature 'a{sv}'", "\"a{sv}\"");
  assert_to_json ("<<int32 1>>", "1");
  assert_to_json ("@ms nothing", "null");
  assert_to_json ("@ms 'x'", "\"x\"");
  assert_to_json ("@mv nothing", "null");
  assert_to_json ("()", "[]");
  assert_to_json ("(1, 'a', [true])", "[1,\"a\",[true]]");
}

static void
test_from_variant_special_doubles (void)
{
  const double values[] = { NAN, INFINITY, -INFINITY };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(json_t) scalar = _tether_variant_to_json (g_variant_new_double (values[i]));
      g_autoptr(json_t) array = _tether_variant_to_json (
        g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, &values[i], 1, sizeof (double)));
      g_autoptr(json_t) boxed = _tether_variant_to_json (
        g_variant_new_parsed ("[<%d>]", values[i]));
      g_autofree char *a = dump (array);
      g_autofree char *b = dump (boxed);

      g_assert_true (json_is_null (scalar));
      g_assert_cmpstr (a, ==, "[null]");
      g_assert_cmpstr (b, ==, "[null]");
    }
}

static void
test_from_variant_arrays (void)
{
  assert_to_json ("@ay []", "[]");
  assert_to_json ("[byte 0, 1, 255]", "[0,1,255]");
  assert_to_json ("b'hi'", "[104,105,0]");
  assert_to_json ("[int16 -1, 2]", "[-1,2]");
  assert_to_json ("[uint16 65535]", "[65535]");
  assert_to_json ("[-1, 2]", "[-1,2]");
  assert_to_json ("[uint32 4294967295]", "[4294967295]");
  assert_to_json ("[int64 -9223372036854775808]", "[-9223372036854775808]");
  assert_to_json ("[uint64 1, 18446744073709551615]", "[1,1.8446744073709552e19]");
  assert_to_json ("[1.5, -0.0]", "[1.5,-0.0]");
  assert_to_json ("[true, false]", "[true,false]");
  assert_to_json ("[handle 1]", "[1]");
  assert_to_json ("[['a'], @as []]", "[[\"a\"],[]]");
  assert_to_json ("[(1, 'x')]", "[[1,\"x\"]]");
  assert_to_json ("[<1>, <'s'>]", "[1,\"s\"]");
}

static void
test_from_variant_dicts (void)
{
  assert_to_json ("@a{sv} {}", "{}");
  assert_to_json ("{'a': <1>, 'b': <['x']>}", "{\"a\":1,\"b\":[\"x\"]}");
  assert_to_json ("{'a': 1, 'b': 2}", "{\"a\":1,\"b\":2}");
  assert_to_json ("{objectpath '/a': 'x'}", "{\"/a\":\"x\"}");
  assert_to_json ("{signature 's': 'x'}", "{\"s\":\"x\"}");
  /* Keys that are not strings: [key, value] pairs. */
  assert_to_json ("{1: 'x', 2: 'y'}", "[[1,\"x\"],[2,\"y\"]]");
  assert_to_json ("{true: <1>}", "[[true,1]]");
  /* A lone dict entry is a pair too. */
  assert_to_json ("{'k', 1}", "[\"k\",1]");
  /* An a{sv} may repeat a key; the last one wins, as in GVariantDict. */
  assert_to_json ("[{'a', <1>}, {'a', <2>}]", "{\"a\":2}");
  /* Past 16 entries repeats are found by hashing: the same answer. */
  {
    g_autoptr(GString) variant_text = g_string_new ("[");
    g_autoptr(GString) expected = g_string_new ("{");

    for (guint i = 0; i < 20; i++)
      g_string_append_printf (variant_text, "{'k%u', <%u>}, ", i, i);
    g_string_append (variant_text, "{'k3', <99>}]");
    for (guint i = 0; i < 20; i++)
      if (i != 3)
        g_string_append_printf (expected, "\"k%u\":%u,", i, i);
    g_string_append (expected, "\"k3\":99}");
    assert_to_json (variant_text->str, expected->str);
  }
  assert_to_json ("{'\xc3\xa9': <{'n': <@mv nothing>}>}", "{\"\xc3\xa9\":{\"n\":null}}");
}

static void
test_from_variant_serialised (void)
{
  /* Values deserialised from bytes take other paths inside GVariant than
   * values built in memory. */
  const char *texts[] = {
    "{'a': <[1, 2]>, 'b': <'x'>, 'c': <(byte 1, [int64 5])>}",
    "([uint64 1, 2], [1.5], @ms 'x', @mv nothing, [{1, 'x'}])",
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr(GVariant) tree = g_variant_parse (NULL, texts[i], NULL, NULL, NULL);
      g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes (tree);
      g_autoptr(GVariant) flat =
        g_variant_ref_sink (g_variant_new_from_bytes (g_variant_get_type (tree), bytes, FALSE));
      g_autoptr(json_t) a = _tether_variant_to_json (tree);
      g_autoptr(json_t) b = _tether_variant_to_json (flat);

      g_assert_true (json_equal (a, b));
    }

  /* Invalid UTF-8 from untrusted bytes: GVariant hands out "" instead. */
  {
    const char data[] = "\xff\xfe";
    g_autoptr(GBytes) bytes = g_bytes_new (data, sizeof data);
    g_autoptr(GVariant) v =
      g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_STRING, bytes, FALSE));
    g_autoptr(json_t) json = _tether_variant_to_json (v);

    g_assert_true (json_is_string (json));
    g_assert_true (g_utf8_validate (json_string_value (json), -1, NULL));
  }
}

static void
test_from_variant_lying_trusted (void)
{
  g_autoptr(GBytes) bytes = g_bytes_new ("a\xff" "b", 4);
  GVariant *str = g_variant_new_from_bytes (G_VARIANT_TYPE_STRING, bytes, TRUE);
  g_autoptr(GVariant) dict = NULL;
  g_autoptr(json_t) json = NULL;
  g_autofree char *text = NULL;

  /* Bad data passed as trusted is the caller's bug, but the output must
   * still be JSON. */
  dict = g_variant_ref_sink (g_variant_new_array (
    NULL, &(GVariant *) { g_variant_new_dict_entry (str, g_variant_new_variant (
      g_variant_new_from_bytes (G_VARIANT_TYPE_STRING, bytes, TRUE))) }, 1));
  json = _tether_variant_to_json (dict);
  text = dump (json);
  g_assert_cmpstr (text, ==, "{\"a\xef\xbf\xbd" "b\":\"a\xef\xbf\xbd" "b\"}");
}

static void
test_from_variant_floating (void)
{
  GVariant *floating = g_variant_new_string ("x");
  GVariant *owned = g_variant_ref_sink (g_variant_new_int32 (1));
  g_autoptr(json_t) a = NULL;
  g_autoptr(json_t) b = NULL;

  /* A floating value is sunk and released (the leak checker sees it);
   * a held reference is left as it was. */
  a = _tether_variant_to_json (floating);
  b = _tether_variant_to_json (owned);
  g_assert_false (g_variant_is_floating (owned));
  g_assert_cmpint (g_variant_get_int32 (owned), ==, 1);
  g_variant_unref (owned);
  g_assert_cmpstr (json_string_value (a), ==, "x");
}

/* ---------------------------------------------------------------------- */
/* Round trips                                                              */
/* ---------------------------------------------------------------------- */

static void
test_round_trip_typed (void)
{
  const char *values[] = {
    "true", "byte 200", "int16 -300", "uint16 60000", "-70000", "uint32 4000000000",
    "int64 -9223372036854775808", "uint64 9223372036854775807", "handle 4",
    "0.1", "-1.0e300", "2.2250738585072014e-308", "'text \xe2\x82\xac\\n'", "objectpath '/o'", "signature 'a{sv}'",
    "<'v'>", "@ms nothing", "@ms 'x'", "@mi 3", "()", "(1, 'a', [true], @a{sv} {})",
    "{'a': <int64 1>, 'b': <@av [<'x'>, <2.5>]>}", "[['a', 'b'], @as []]",
    "('name', {'k': <true>, 'n': <@mv nothing>})", "[byte 0, 255]", "[1.5, -0.0]",
    "{'x': [int16 1, -1]}", "[(1, 'x'), (2, 'y')]", "@a(ii) []",
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) v = g_variant_parse (NULL, values[i], NULL, NULL, &error);
      g_autoptr(json_t) json = NULL;
      g_autoptr(json_t) parsed = NULL;
      g_autoptr(GVariant) back = NULL;
      g_autofree char *text = NULL;

      g_assert_no_error (error);
      json = _tether_variant_to_json (v);
      text = dump (json);
      parsed = parse_ok (text);
      back = _tether_json_to_variant (parsed, g_variant_get_type (v), &error);
      g_assert_no_error (error);
      if (!g_variant_equal (v, back))
        {
          g_autofree char *got = g_variant_print (back, TRUE);

          g_error ("%s -> %s -> %s", values[i], text, got);
        }
    }
}

static void
test_round_trip_uint64_one_way (void)
{
  g_autoptr(json_t) json = _tether_variant_to_json (g_variant_new_uint64 (G_MAXUINT64));
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) back = NULL;

  /* Documented: above INT64_MAX a 't' leaves as a real and cannot come
   * back as a 't'. */
  g_assert_true (json_is_real (json));
  back = _tether_json_to_variant (json, G_VARIANT_TYPE_UINT64, &error);
  g_assert_error (error, TETHER_ERROR, TETHER_ERROR_INVALID_PARAMS);
  g_assert_null (back);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GPtrArray) corpus = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *dir = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);

  dir = corpus_dir ();
  if (dir != NULL)
    {
      g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
      const char *name;

      while (d != NULL && (name = g_dir_read_name (d)) != NULL)
        if (g_str_has_suffix (name, ".json"))
          g_ptr_array_add (corpus, g_build_filename (dir, name, NULL));
      g_ptr_array_sort (corpus, (GCompareFunc) g_strcmp0);
    }
  g_test_add_data_func ("/tether/json/corpus/present", corpus, test_corpus_present);
  for (guint i = 0; i < corpus->len; i++)
    {
      g_autofree char *base = g_path_get_basename (corpus->pdata[i]);
      g_autofree char *test_path = NULL;

      base[strlen (base) - strlen (".json")] = '\0';
      test_path = g_strconcat ("/tether/json/corpus/", base, NULL);
      g_test_add_data_func (test_path, corpus->pdata[i], test_corpus_file);
    }

  g_test_add_func ("/tether/json/parse/scalars", test_parse_scalars);
  g_test_add_func ("/tether/json/parse/int64-limits", test_parse_int64_limits);
  g_test_add_func ("/tether/json/parse/error-messages", test_parse_error_messages);
  g_test_add_func ("/tether/json/parse/length", test_parse_length);
  g_test_add_func ("/tether/json/parse/members", test_parse_members);
  g_test_add_func ("/tether/json/parse/depth-limit", test_parse_depth_limit);
  g_test_add_func ("/tether/json/parse/depth-late-branch", test_parse_depth_late_branch);
  g_test_add_func ("/tether/json/parse/very-deep", test_parse_very_deep);
  g_test_add_func ("/tether/json/parse/jansson-cap", test_parse_jansson_cap);
  g_test_add_func ("/tether/json/depth/parsed", test_depth);
  g_test_add_func ("/tether/json/depth/built", test_depth_built);
  g_test_add_func ("/tether/json/dump/compact", test_dump_compact);
  g_test_add_func ("/tether/json/dump/large", test_dump_large);
  g_test_add_func ("/tether/json/dump/scalars", test_dump_scalars);
  g_test_add_func ("/tether/json/dump/unencodable", test_dump_unencodable);
  g_test_add_func ("/tether/json/dump/reals-round-trip", test_dump_reals_round_trip);
  g_test_add_func ("/tether/json/to-variant/undeclared", test_to_variant_undeclared);
  g_test_add_func ("/tether/json/to-variant/basic", test_to_variant_basic);
  g_test_add_func ("/tether/json/to-variant/integer-ranges", test_to_variant_integer_ranges);
  g_test_add_func ("/tether/json/to-variant/fixed-arrays", test_to_variant_fixed_arrays);
  g_test_add_func ("/tether/json/to-variant/containers", test_to_variant_containers);
  g_test_add_func ("/tether/json/to-variant/long-key", test_to_variant_long_key);
  g_test_add_func ("/tether/json/to-variant/serialised-sizes", test_to_variant_serialised_sizes);
  g_test_add_func ("/tether/json/to-variant/unsupported", test_to_variant_unsupported);
  g_test_add_func ("/tether/json/to-variant/bad-strings", test_to_variant_bad_strings);
  g_test_add_func ("/tether/json/to-variant/quoting", test_to_variant_quoting);
  g_test_add_func ("/tether/json/to-variant/error-cleanup", test_to_variant_error_cleanup);
  g_test_add_func ("/tether/json/params/subtract", test_params_subtract);
  g_test_add_func ("/tether/json/params/errors", test_params_errors);
  g_test_add_func ("/tether/json/params/optional", test_params_optional);
  g_test_add_func ("/tether/json/params/nested", test_params_nested);
  g_test_add_func ("/tether/json/params/no-names", test_params_no_names);
  g_test_add_func ("/tether/json/params/empty-tuple", test_params_empty_tuple);
  g_test_add_func ("/tether/json/params/undeclared", test_params_undeclared);
  g_test_add_func ("/tether/json/params/whole", test_params_whole);
  g_test_add_func ("/tether/json/params/many", test_params_many);
  g_test_add_func ("/tether/json/from-variant/basic", test_from_variant_basic);
  g_test_add_func ("/tether/json/from-variant/special-doubles", test_from_variant_special_doubles);
  g_test_add_func ("/tether/json/from-variant/arrays", test_from_variant_arrays);
  g_test_add_func ("/tether/json/from-variant/dicts", test_from_variant_dicts);
  g_test_add_func ("/tether/json/from-variant/serialised", test_from_variant_serialised);
  g_test_add_func ("/tether/json/from-variant/lying-trusted", test_from_variant_lying_trusted);
  g_test_add_func ("/tether/json/from-variant/floating", test_from_variant_floating);
  g_test_add_func ("/tether/json/round-trip/typed", test_round_trip_typed);
  g_test_add_func ("/tether/json/round-trip/uint64-one-way", test_round_trip_uint64_one_way);

  ret = g_test_run ();
  return ret;
}
