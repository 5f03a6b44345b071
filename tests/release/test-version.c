/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The version header and the version macros, as a program that includes
 * <tether.h> sees them (no TETHER_COMPILATION): the numbers match the
 * project's version, TETHER_CHECK_VERSION() orders versions, and every
 * per-version macro expands where its kind of declaration goes. Which of
 * them warn, and when, is check-version-macros.py's part. */

#include <stdlib.h>

#include <tether.h>

/* TETHER_CHECK_VERSION() is mostly used by the preprocessor. */
#if !TETHER_CHECK_VERSION (0, 2, 0)
# error "TETHER_CHECK_VERSION (0, 2, 0) is false"
#endif
#if !TETHER_CHECK_VERSION (0, 1, 0)
# error "TETHER_CHECK_VERSION (0, 1, 0) is false"
#endif
#if TETHER_CHECK_VERSION (TETHER_MAJOR_VERSION, TETHER_MINOR_VERSION + 1, 0)
# error "TETHER_CHECK_VERSION is true for the next minor"
#endif

/* Declarations with every macro: they must expand to something the
 * compiler takes, at file scope, after a type's or an enumerator's name. */
TETHER_AVAILABLE_IN_ALL void test_version_in_all (void);
TETHER_AVAILABLE_IN_0_1 void test_version_in_0_1 (void);
TETHER_AVAILABLE_IN_0_2 void test_version_in_0_2 (void);
TETHER_DEPRECATED_IN_0_1 void test_version_deprecated_0_1 (void);
TETHER_DEPRECATED_IN_0_1_FOR (test_version_in_all) void test_version_deprecated_0_1_for (void);
TETHER_DEPRECATED_IN_0_2 void test_version_deprecated_0_2 (void);
TETHER_DEPRECATED_IN_0_2_FOR (test_version_in_0_2) void test_version_deprecated_0_2_for (void);

typedef int TestVersionType TETHER_AVAILABLE_TYPE_IN_0_2;
typedef int TestVersionOldType TETHER_DEPRECATED_TYPE_IN_0_2_FOR (TestVersionType);

typedef enum
{
  TEST_VERSION_ONE,
  TEST_VERSION_TWO TETHER_AVAILABLE_ENUMERATOR_IN_0_2,
  TEST_VERSION_OLD TETHER_DEPRECATED_ENUMERATOR_IN_0_2,
  TEST_VERSION_OLDER TETHER_DEPRECATED_ENUMERATOR_IN_0_1_FOR (TEST_VERSION_ONE),
} TestVersionEnum;

typedef struct
{
  int major;
  int minor;
  int micro;
} Version;

static Version
parse_version (const char *text)
{
  g_auto(GStrv) parts = g_strsplit (text, ".", -1);
  Version v;

  g_assert_cmpuint (g_strv_length (parts), ==, 3);
  v.major = atoi (parts[0]);
  v.minor = atoi (parts[1]);
  v.micro = atoi (parts[2]);
  return v;
}

static int
compare_versions (Version a,
                  Version b)
{
  if (a.major != b.major)
    return a.major < b.major ? -1 : 1;
  if (a.minor != b.minor)
    return a.minor < b.minor ? -1 : 1;
  if (a.micro != b.micro)
    return a.micro < b.micro ? -1 : 1;
  return 0;
}

static void
test_numbers (void)
{
  Version project = parse_version (TETHER_TEST_PROJECT_VERSION);

  /* The header is meson.build's version, in numbers and as a string. */
  g_assert_cmpstr (TETHER_VERSION_S, ==, TETHER_TEST_PROJECT_VERSION);
  g_assert_cmpint (TETHER_MAJOR_VERSION, ==, project.major);
  g_assert_cmpint (TETHER_MINOR_VERSION, ==, project.minor);
  g_assert_cmpint (TETHER_MICRO_VERSION, ==, project.micro);
}

static void
test_check_version (void)
{
  Version project = parse_version (TETHER_VERSION_S);

  /* This round's release and the one before it are there; the next are
   * not. */
  g_assert_true (TETHER_CHECK_VERSION (0, 2, 0));
  g_assert_true (TETHER_CHECK_VERSION (0, 1, 0));
  g_assert_true (TETHER_CHECK_VERSION (0, 1, 99));
  g_assert_true (TETHER_CHECK_VERSION (0, 0, 0));
  g_assert_false (TETHER_CHECK_VERSION (1, 0, 0));
  g_assert_false (TETHER_CHECK_VERSION (0, TETHER_MINOR_VERSION + 1, 0));
  g_assert_false (TETHER_CHECK_VERSION (0, TETHER_MINOR_VERSION,
                                        TETHER_MICRO_VERSION + 1));

  /* And every version around this one against the plain comparison: for
   * 0.2.0 that is (0, 3, 0) false and (0, 2, 0) true among the rest. */
  for (int major = 0; major <= project.major + 1; major++)
    for (int minor = 0; minor <= project.minor + 2; minor++)
      for (int micro = 0; micro <= project.micro + 2; micro++)
        {
          Version v = { major, minor, micro };
          gboolean want = compare_versions (v, project) <= 0;

          g_test_message ("TETHER_CHECK_VERSION (%d, %d, %d)", major, minor, micro);
          g_assert_cmpint (TETHER_CHECK_VERSION (major, minor, micro), ==, want);
        }
}

static void
test_version_macros (void)
{
  Version project = parse_version (TETHER_VERSION_S);

  g_assert_cmpint (TETHER_VERSION_0_1, ==, G_ENCODE_VERSION (0, 1));
  g_assert_cmpint (TETHER_VERSION_0_2, ==, G_ENCODE_VERSION (0, 2));
  g_assert_cmpint (TETHER_VERSION_0_1, <, TETHER_VERSION_0_2);

  /* The current stable version is this minor, and it is the default of
   * both bounds. */
  g_assert_cmpint (TETHER_VERSION_CUR_STABLE, ==,
                   G_ENCODE_VERSION (project.major, project.minor));
  g_assert_cmpint (TETHER_VERSION_PREV_STABLE, ==,
                   G_ENCODE_VERSION (project.major, project.minor - 1));
  g_assert_cmpint (TETHER_VERSION_MIN_REQUIRED, ==, TETHER_VERSION_CUR_STABLE);
  g_assert_cmpint (TETHER_VERSION_MAX_ALLOWED, ==, TETHER_VERSION_CUR_STABLE);

  /* The enumerators got no values of their own from their attributes.
   * (Using the deprecated ones warns, as it should.) */
  g_assert_cmpint (TEST_VERSION_TWO, ==, 1);
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  g_assert_cmpint (TEST_VERSION_OLD, ==, 2);
  g_assert_cmpint (TEST_VERSION_OLDER, ==, 3);
  g_assert_cmpuint (sizeof (TestVersionOldType), ==, sizeof (int));
  G_GNUC_END_IGNORE_DEPRECATIONS
  g_assert_cmpuint (sizeof (TestVersionType), ==, sizeof (int));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tether/version/numbers", test_numbers);
  g_test_add_func ("/tether/version/check-version", test_check_version);
  g_test_add_func ("/tether/version/macros", test_version_macros);

  return g_test_run ();
}
