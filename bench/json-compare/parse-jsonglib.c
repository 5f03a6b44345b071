/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* json-glib side of the json-glib/jansson comparison (see run.sh and
 * docs/json.md). Links json-glib only, never jansson: the two libraries
 * share symbol names.
 *
 *   parse-jsonglib [--max-depth N] FILE
 *       prints "accept<TAB>output" or "reject<TAB>reason"
 *   parse-jsonglib --bench N FILE            parse + serialize, N times
 *   parse-jsonglib --bench-gvariant N FILE   parse + GVariant and back
 *                                             + serialize, N times
 *
 * The parser and generator are reused across iterations, json-glib's
 * best case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-glib/json-glib.h>

static guint
depth (JsonNode *node)
{
  guint max = 0;

  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);
      guint i;

      for (i = 0; i < json_array_get_length (array); i++)
        {
          guint d = depth (json_array_get_element (array, i));

          max = MAX (max, d);
        }
      return max + 1;
    }
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      JsonNode *child;

      json_object_iter_init (&iter, json_node_get_object (node));
      while (json_object_iter_next (&iter, NULL, &child))
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
       guint       max_depth)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  JsonNode *root;

  if (!json_parser_load_from_data (parser, data, len, &error))
    {
      printf ("reject\t%s\n", error->message);
      return 0;
    }
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      /* json-glib takes empty input as a document without a root. */
      printf ("accept\t(no root)\n");
      return 0;
    }
  if (max_depth > 0 && depth (root) > max_depth)
    {
      printf ("reject\tdeeper than %u\n", max_depth);
      return 0;
    }
  json_generator_set_root (generator, root);
  out = json_generator_to_data (generator, NULL);
  printf ("accept\t%s\n", out);
  return 0;
}

static int
bench (const char *data,
       gsize       len,
       long        n,
       gboolean    gvariant)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  gsize total = 0;
  long i;

  for (i = 0; i < n; i++)
    {
      g_autofree char *out = NULL;
      gsize out_len = 0;

      if (!json_parser_load_from_data (parser, data, len, NULL))
        return 1;
      if (gvariant)
        {
          g_autoptr(GVariant) v = json_gvariant_deserialize (json_parser_get_root (parser),
                                                             NULL, NULL);
          g_autoptr(JsonNode) node = json_gvariant_serialize (v);

          json_generator_set_root (generator, node);
        }
      else
        {
          json_generator_set_root (generator, json_parser_get_root (parser));
        }
      out = json_generator_to_data (generator, &out_len);
      total += out_len;
    }
  return total == 0;
}

int
main (int    argc,
      char **argv)
{
  guint max_depth = 0;
  long n = 0;
  gboolean gvariant = FALSE;
  g_autofree char *data = NULL;
  gsize len;
  int i;

  for (i = 1; i < argc - 1; i++)
    {
      if (strcmp (argv[i], "--max-depth") == 0)
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

  return n > 0 ? bench (data, len, n, gvariant) : check (data, len, max_depth);
}
