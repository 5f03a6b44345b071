/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Standalone driver for the fuzz targets, as in GLib's fuzzing/driver.c:
 * without libFuzzer, each target is linked with this file and runs every
 * input it is given once, as an ordinary test. Arguments are files or
 * directories; a directory stands for the regular files directly in it,
 * in name order so that a failure always reproduces the same way.
 *
 *   fuzz-json-driver tests/fuzz/corpus/json
 *   fuzz-json-driver crash-1234 other-input
 *
 * A target reports a finding by crashing (an assertion, abort() or a
 * sanitizer), so reaching the end means every input passed. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv) __attribute__ ((weak));

static guint n_run;

static void
run_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  g_autofree guint8 *copy = NULL;
  gsize len;

  if (!g_file_get_contents (path, &contents, &len, &error))
    {
      g_printerr ("%s\n", error->message);
      exit (EXIT_FAILURE);
    }

  /* An exact-size heap copy, as libFuzzer passes: a target that reads
   * past the end trips the sanitizer here too. */
  copy = g_memdup2 (contents, len);
  g_print ("# %s (%" G_GSIZE_FORMAT " bytes)\n", path, len);
  LLVMFuzzerTestOneInput (copy, len);
  n_run++;
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static void
run_directory (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = g_dir_open (path, 0, &error);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (dir == NULL)
    {
      g_printerr ("%s\n", error->message);
      exit (EXIT_FAILURE);
    }

  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      /* Hidden files are not inputs (editors and tools leave them). */
      if (name[0] != '.' && g_file_test (child, G_FILE_TEST_IS_REGULAR))
        g_ptr_array_add (names, g_steal_pointer (&child));
    }
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    run_file (names->pdata[i]);
}

int
main (int   argc,
      char *argv[])
{
  if (argc < 2)
    {
      g_printerr ("usage: %s CORPUS-DIR|FILE...\n", argv[0]);
      return EXIT_FAILURE;
    }

  if (LLVMFuzzerInitialize != NULL)
    LLVMFuzzerInitialize (&argc, &argv);

  for (int i = 1; i < argc; i++)
    {
      if (g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        run_directory (argv[i]);
      else
        run_file (argv[i]);
    }

  g_print ("# %u inputs passed\n", n_run);
  return n_run > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
