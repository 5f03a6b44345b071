/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "peers-util.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static void
usage (const char *argv0)
{
  fprintf (stderr,
           "usage: %s server --transport unix|tcp|tls --address ADDR [--cert F --key F]\n"
           "       %s client --transport unix|tcp|tls --address ADDR --workloads seq,cb,inflight,conns|idle|pending\n"
           "              [--calls N] [--warmup N] [--seconds S] [--warmup-seconds S] [--depth N]\n"
           "              [--conns N] [--pending N] [--ca F]\n",
           argv0, argv0);
  exit (2);
}

void
peer_args_parse (PeerArgs *args,
                 int       argc,
                 char    **argv)
{
  static const struct option options[] = {
    { "transport", required_argument, NULL, 't' },
    { "address", required_argument, NULL, 'a' },
    { "workloads", required_argument, NULL, 'w' },
    { "cert", required_argument, NULL, 'C' },
    { "key", required_argument, NULL, 'K' },
    { "ca", required_argument, NULL, 'A' },
    { "calls", required_argument, NULL, 'n' },
    { "warmup", required_argument, NULL, 'W' },
    { "seconds", required_argument, NULL, 's' },
    { "warmup-seconds", required_argument, NULL, 'S' },
    { "depth", required_argument, NULL, 'd' },
    { "conns", required_argument, NULL, 'c' },
    { "pending", required_argument, NULL, 'p' },
    { NULL, 0, NULL, 0 }
  };
  int opt;

  memset (args, 0, sizeof *args);
  args->transport = PEER_TRANSPORT_UNIX;
  args->workloads = "seq";
  args->calls = 2000;
  args->warmup = 200;
  args->seconds = 0.5;
  args->warmup_seconds = 0.1;
  args->depth = 64;
  args->conns = 100;
  args->pending = 1000;

  if (argc < 2)
    usage (argv[0]);
  if (strcmp (argv[1], "server") == 0)
    args->is_server = 1;
  else if (strcmp (argv[1], "client") != 0)
    usage (argv[0]);

  optind = 2;
  while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1)
    {
      switch (opt)
        {
        case 't':
          if (strcmp (optarg, "unix") == 0)
            args->transport = PEER_TRANSPORT_UNIX;
          else if (strcmp (optarg, "tcp") == 0)
            args->transport = PEER_TRANSPORT_TCP;
          else if (strcmp (optarg, "tls") == 0)
            args->transport = PEER_TRANSPORT_TLS;
          else
            usage (argv[0]);
          break;
        case 'a': args->address = optarg; break;
        case 'w': args->workloads = optarg; break;
        case 'C': args->cert = optarg; break;
        case 'K': args->key = optarg; break;
        case 'A': args->ca = optarg; break;
        case 'n': args->calls = atoi (optarg); break;
        case 'W': args->warmup = atoi (optarg); break;
        case 's': args->seconds = atof (optarg); break;
        case 'S': args->warmup_seconds = atof (optarg); break;
        case 'd': args->depth = atoi (optarg); break;
        case 'c': args->conns = atoi (optarg); break;
        case 'p': args->pending = atoi (optarg); break;
        default: usage (argv[0]);
        }
    }
  if (args->address == NULL || args->calls < 1 || args->warmup < 0 || args->depth < 1 ||
      args->conns < 1 || args->pending < 1 || args->seconds <= 0)
    usage (argv[0]);
}

int
peer_args_has (const PeerArgs *args,
               const char     *name)
{
  size_t len = strlen (name);
  const char *p = args->workloads;

  while (p != NULL && *p != '\0')
    {
      const char *end = strchr (p, ',');
      size_t n = end != NULL ? (size_t) (end - p) : strlen (p);

      if (n == len && strncmp (p, name, n) == 0)
        return 1;
      p = end != NULL ? end + 1 : NULL;
    }
  return 0;
}

int
peer_split_hostport (const char *address,
                     char       *host,
                     size_t      host_size,
                     int        *port)
{
  const char *colon = strrchr (address, ':');
  size_t n;

  if (colon == NULL)
    return 0;
  n = (size_t) (colon - address);
  if (n + 1 > host_size)
    return 0;
  memcpy (host, address, n);
  host[n] = '\0';
  *port = atoi (colon + 1);
  return 1;
}

int64_t
peer_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
compare_i64 (const void *a,
             const void *b)
{
  int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

  return x < y ? -1 : x > y;
}

double
peer_percentile_us (int64_t *ns,
                    size_t   n,
                    double   p)
{
  size_t rank;

  if (n == 0)
    return NAN;
  qsort (ns, n, sizeof *ns, compare_i64);
  rank = (size_t) ceil (p / 100.0 * (double) n);
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return ns[rank - 1] / 1000.0;
}

static pthread_mutex_t emit_lock = PTHREAD_MUTEX_INITIALIZER;

void
peer_emit (const char *format,
           ...)
{
  va_list args;

  pthread_mutex_lock (&emit_lock);
  va_start (args, format);
  vprintf (format, args);
  va_end (args);
  putchar ('\n');
  fflush (stdout);
  pthread_mutex_unlock (&emit_lock);
}

/* Error texts go on one line without spaces that would split key=value. */
static void
sanitize (char       *out,
          size_t      size,
          const char *in)
{
  size_t i = 0;

  for (; in != NULL && *in != '\0' && i + 1 < size; in++)
    out[i++] = (*in == ' ' || *in == '\n' || *in == '=') ? '_' : *in;
  out[i] = '\0';
}

void
peer_emit_latency (const char *workload,
                   int64_t    *ns,
                   size_t      n,
                   unsigned    errors,
                   const char *last_error)
{
  char err[200];
  double sum = 0;

  for (size_t i = 0; i < n; i++)
    sum += (double) ns[i];
  sanitize (err, sizeof err, last_error);
  peer_emit ("RESULT workload=%s n=%zu errors=%u p50_us=%.1f p99_us=%.1f mean_us=%.1f%s%s",
             workload, n, errors, peer_percentile_us (ns, n, 50), peer_percentile_us (ns, n, 99),
             n > 0 ? sum / (double) n / 1000.0 : 0.0,
             last_error != NULL ? " last_error=" : "", last_error != NULL ? err : "");
}

void
peer_emit_rate (const char *workload,
                uint64_t    calls,
                double      seconds,
                unsigned    errors,
                const char *last_error)
{
  char err[200];

  sanitize (err, sizeof err, last_error);
  peer_emit ("RESULT workload=%s calls=%llu seconds=%.3f errors=%u rate=%.0f%s%s", workload,
             (unsigned long long) calls, seconds, errors, seconds > 0 ? (double) calls / seconds : 0.0,
             last_error != NULL ? " last_error=" : "", last_error != NULL ? err : "");
}

static void *
stdin_thread (void *data)
{
  char line[256];

  while (fgets (line, sizeof line, stdin) != NULL)
    {
      if (strncmp (line, "mem", 3) == 0)
        {
          struct mallinfo2 mi = mallinfo2 ();

          peer_emit ("MEM heap=%zu", mi.uordblks + mi.hblkhd);
        }
    }
  fflush (stdout);
  _exit (0);
  return NULL;
}

void
peer_server_watch_stdin (void)
{
  pthread_t thread;
  pthread_attr_t attr;

  pthread_attr_init (&attr);
  pthread_attr_setstacksize (&attr, 64 * 1024);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create (&thread, &attr, stdin_thread, NULL) != 0)
    {
      perror ("pthread_create");
      exit (1);
    }
  pthread_attr_destroy (&attr);
}

void
peer_wait_stdin_line (void)
{
  char line[256];

  if (fgets (line, sizeof line, stdin) == NULL)
    _exit (0);
}

void
peer_raise_fd_limit (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
}

void
peer_common_init (void)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () == 1)
    _exit (1);
  signal (SIGPIPE, SIG_IGN);
  peer_raise_fd_limit ();
}
