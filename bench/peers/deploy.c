/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* deploy: calls per second through HAProxy to three `tether serve`
 * instances against one instance directly, in the same run (issue #11).
 *
 * HAProxy in TCP mode with send-proxy-v2 and round robin in front of
 * three instances listening with --proxy-protocol; a fourth instance
 * without it, reached directly. The load is peer-tether's client (the
 * peers benchmark's): `inflight` (64 calls in flight on one connection)
 * and `conns` (100 connections, each with calls in flight), over ws://
 * on loopback, so that the figure is the balancer's and Tether's, not
 * TLS's. Rounds alternate direct and balanced; the ratio is the median
 * of the per-round ratios. On 2 vCPUs the client, HAProxy and the
 * instances share the machine: three instances cannot run three times
 * as fast, and the figure says what the hop and the header cost. */

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#ifndef TETHER_TOOL
# error "TETHER_TOOL must name the tether tool"
#endif

#define HAPROXY "/usr/sbin/haproxy"
#define INSTANCES 3

static char *
start_instance (const char *name,
                gboolean    proxied)
{
  const char *argv[] = {
    TETHER_TOOL, "serve", "ws://127.0.0.1:0",
    "--limit", "max-connections-per-peer=10000",
    "--limit", "max-invocations-per-peer=100000",
    "--limit", "max-total-invocations=1000000",
    /* The direct instance's argv ends here. */
    proxied ? "--proxy-protocol" : NULL, "--trusted-proxy", "127.0.0.1", NULL
  };
  g_autoptr(GError) error = NULL;
  HarnessChild *child = harness_child_spawn (name, argv, HARNESS_CPU_ANY, &error);
  g_autofree char *line = NULL;

  if (child == NULL)
    g_error ("%s: %s", name, error->message);
  line = harness_child_wait_line (child, "listening on ws://", 20000);
  if (line == NULL)
    g_error ("%s did not start", name);
  return g_strdup (line + strlen ("listening on ws://"));
}

static guint16
free_port (void)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert (g_socket_bind (socket, any, TRUE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* Runs the peers' client against @address; the rate of each workload. */
static void
run_client (const char *peer_tether,
            const char *address,
            double      seconds,
            double     *inflight,
            double     *conns)
{
  g_autofree char *secs = g_strdup_printf ("%.1f", seconds);
  const char *argv[] = {
    peer_tether, "client", "--transport", "tcp", "--address", address,
    "--workloads", "inflight,conns", "--seconds", secs, NULL
  };
  g_autoptr(GError) error = NULL;
  HarnessChild *child = harness_child_spawn ("client", argv, HARNESS_CPU_ANY, &error);

  *inflight = *conns = NAN;
  if (child == NULL)
    g_error ("client: %s", error->message);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *line = harness_child_wait_line (child, "RESULT", 120000);
      double rate = NAN;

      if (line == NULL)
        g_error ("the client gave no result (last line: %s)",
                 child->last_other != NULL ? child->last_other : "none");
      harness_parse_kv_double (line, "rate", &rate);
      if (strstr (line, "workload=inflight") != NULL)
        *inflight = rate;
      else if (strstr (line, "workload=conns") != NULL)
        *conns = rate;
    }
  harness_child_stop (child, 2000);
}

int
main (int    argc,
      char **argv)
{
  int rounds = 5;
  double seconds = 2.0;
  GOptionEntry entries[] = {
    { "rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "Rounds (default 5)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "Measured seconds per workload (default 2)", "S" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- Tether behind HAProxy against direct");
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *peer_tether = NULL;
  g_autofree char *bindir = g_path_get_dirname (argv[0]);
  g_autofree char *direct = NULL;
  g_autofree char *cfg_path = NULL;
  g_autofree char *balanced = NULL;
  GString *cfg = g_string_new (NULL);
  double d_in[64], d_co[64], b_in[64], b_co[64], r_in[64], r_co[64];
  HarnessNoise noise;
  guint16 port;

  setlocale (LC_ALL, "");
  harness_init ("deploy");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || rounds < 1 || rounds > 64)
    {
      g_printerr ("deploy: %s\n", error != NULL ? error->message : "--rounds is 1 to 64");
      return 2;
    }
  if (!g_file_test (HAPROXY, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_printerr ("deploy: needs HAProxy (apt install haproxy; ./run installs it)\n");
      return 1;
    }
  harness_watchdog (600);
  dir = harness_make_tmpdir ("tether-deploy-XXXXXX", &error);
  peer_tether = g_build_filename (bindir, "peer-tether", NULL);

  direct = start_instance ("direct", FALSE);
  port = free_port ();
  g_string_append_printf (cfg, "global\n    maxconn 4000\n\ndefaults\n    mode tcp\n"
                               "    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\n"
                               "frontend tether\n    bind 127.0.0.1:%u\n    default_backend tether\n\n"
                               "backend tether\n    balance roundrobin\n", port);
  for (guint i = 0; i < INSTANCES; i++)
    {
      g_autofree char *name = g_strdup_printf ("instance-%u", i);
      g_autofree char *address = start_instance (name, TRUE);

      g_string_append_printf (cfg, "    server %s %s send-proxy-v2\n", name, address);
    }
  cfg_path = g_build_filename (dir, "haproxy.cfg", NULL);
  g_file_set_contents (cfg_path, cfg->str, -1, NULL);
  {
    const char *hargv[] = { HAPROXY, "-db", "-f", cfg_path, NULL };

    if (harness_child_spawn ("haproxy", hargv, HARNESS_CPU_ANY, &error) == NULL)
      g_error ("haproxy: %s", error->message);
  }
  balanced = g_strdup_printf ("127.0.0.1:%u", port);
  harness_sleep_ms (500);

  printf ("deploy: %d rounds of %.1f s per workload, ws:// on loopback, %u CPUs\n",
          rounds, seconds, g_get_num_processors ());
  harness_noise_start (&noise);
  for (int r = 0; r < rounds; r++)
    {
      /* Alternate which goes first, so that a slow phase of the machine
       * does not always land on the same side. */
      if (r % 2 == 0)
        {
          run_client (peer_tether, direct, seconds, &d_in[r], &d_co[r]);
          run_client (peer_tether, balanced, seconds, &b_in[r], &b_co[r]);
        }
      else
        {
          run_client (peer_tether, balanced, seconds, &b_in[r], &b_co[r]);
          run_client (peer_tether, direct, seconds, &d_in[r], &d_co[r]);
        }
      r_in[r] = b_in[r] / d_in[r];
      r_co[r] = b_co[r] / d_co[r];
      printf ("deploy: round %d: inflight %.0f direct, %.0f through HAProxy (%.2f); "
              "conns %.0f direct, %.0f through HAProxy (%.2f)\n",
              r + 1, d_in[r], b_in[r], r_in[r], d_co[r], b_co[r], r_co[r]);
      fflush (stdout);
    }
  printf ("\n%-52s %12s %12s %8s\n", "calls per second", "direct", "HAProxy+3", "ratio");
  printf ("%-52s %12.0f %12.0f %8.2f\n", "64 in flight on one connection",
          harness_median (d_in, rounds), harness_median (b_in, rounds), harness_median (r_in, rounds));
  printf ("%-52s %12.0f %12.0f %8.2f\n", "100 connections",
          harness_median (d_co, rounds), harness_median (b_co, rounds), harness_median (r_co, rounds));
  if (!harness_noise_stop (&noise))
    printf ("(disturbed: other processes used %.0f CPU-seconds in %.0f s; run again)\n",
            noise.foreign, noise.wall);
  harness_finish ();
  g_string_free (cfg, TRUE);
  return 0;
}
