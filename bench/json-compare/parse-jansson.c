/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* jansson side of the json-glib/jansson comparison (see run.sh and
 * docs/json.md). Links jansson and Tether's mapping (lib/wire/tether-json.c),
 * never json-glib: the two libraries share symbol names.
 *
 *   parse-jansson [--default-flags] [--max-depth N] FILE
 *       prints "accept<TAB>output" or "reject<TAB>reason"
 *   parse-jansson [--default-flags] --bench N FILE
 *       parse + serialize, N times
 *   parse-jansson --bench-gvariant N FILE
 *       parse + GVariant and back + serialize, N times
 *
 * Tether's flags are JSON_DECODE_ANY | JSON_REJECT_DUPLICATES;
 * --default-flags drops JSON_REJECT_DUPLICATES. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <jansson.h>

#include "tether-json-private.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION (17))

static guint
depth (json_t *value)
{
  guint max = 0;

  if (json_is_array (value))
    {
      size_t i;
      json_t *child;

      json_array_foreach (value, i, child)
        {
          guint d = depth (child);

          max = MAX (max, d);
        }
      return max + 1;
    }
  if (json_is_object (value))
    {
      const char *key;
      json_t *child;

      json_object_foreach (value, key, child)
        {
          guint d = depth (child);

          max = MAX (max, d);
        }
      return max + 1;
    }
  return 0;
}

static int
check (const char *data,
       gsize       len,
       size_t      flags,
       guint       max_depth)
{
  json_error_t error;
  json_t *value = json_loadb (data, len, flags, &error);
  char *out;

  if (value == NULL)
    {
      printf ("reject\t%s\n", error.text);
      return 0;
    }
  if (max_depth > 0 && depth (value) > max_depth)
    {
      printf ("reject\tdeeper than %u\n", max_depth);
      json_decref (value);
      return 0;
    }
  out = json_dumps (value, DUMP_FLAGS);
  printf ("accept\t%s\n", out != NULL ? out : "(cannot serialize)");
  free (out);
  json_decref (value);
  return 0;
}

static int
bench (const char *data,
       gsize       len,
       size_t      flags,
       long        n,
       gboolean    gvariant)
{
  gsize total = 0;
  long i;

  for (i = 0; i < n; i++)
    {
      json_t *value = json_loadb (data, len, flags, NULL);
      char *out;
      gsize out_len = 0;

      if (value == NULL)
        return 1;
      if (gvariant)
        {
          GVariant *v = _tether_json_to_variant (value, NULL, NULL);

          json_decref (value);
          value = _tether_variant_to_json (v);
          g_variant_unref (v);
        }
      out = _tether_json_dump (value, &out_len);
      total += out_len;
      g_free (out);
      json_decref (value);
    }
  return total == 0;
}

int
main (int    argc,
      char **argv)
{
  size_t flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES;
  guint max_depth = 0;
  long n = 0;
  gboolean gvariant = FALSE;
  char *data = NULL;
  gsize len;
  int i, ret;

  for (i = 1; i < argc - 1; i++)
    {
      if (strcmp (argv[i], "--default-flags") == 0)
        flags = JSON_DECODE_ANY;
      else if (strcmp (argv[i], "--max-depth") == 0)
        max_depth = atoi (argv[++i]);
      else if (strcmp (argv[i], "--bench") == 0)
        n = atol (argv[++i]);
      else if (strcmp (argv[i], "--bench-gvariant") == 0)
        n = atol (argv[++i]), gvariant = TRUE;
    }
  if (argc < 2 || !g_file_get_contents (argv[argc - 1], &data, &len, NULL))
    {
      fprintf (stderr, "usage: %s [options] FILE\n", argv[0]);
      return 2;
    }

  ret = n > 0 ? bench (data, len, flags, n, gvariant) : check (data, len, flags, max_depth);
  g_free (data);
  return ret;
}
