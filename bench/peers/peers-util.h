/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* peers-util: what every peer program shares, in plain C (no GLib), so the
 * C++ peers (gRPC, Cap'n Proto) link it too.
 *
 * Every peer program has two roles and one command line:
 *
 *   peer-X server --transport unix|tcp|tls --address ADDR [--cert F --key F]
 *       listens (ADDR: a socket path, or 127.0.0.1:0), prints
 *       "READY <address>" (the path, or 127.0.0.1:PORT), serves until
 *       killed; a line "mem" on its stdin prints "MEM heap=BYTES"
 *       (malloc's bytes in use, all arenas); EOF on stdin ends it.
 *   peer-X client --transport T --address ADDR --workloads LIST [...]
 *       LIST of seq, cb, inflight, conns: one "RESULT workload=..." line
 *       each; or the memory workloads idle / pending, which print
 *       "CONNECTED", wait for a line on stdin, build their load, print
 *       "HOLDING ..." and stay until killed.
 *
 * Workloads (names are the orchestrator's):
 *   seq       sequential `echo` calls: p50/p99 round trip
 *   cb        sequential `cb` calls; the server calls the client's `ping`
 *             and answers once it has the answer: p50/p99
 *   inflight  `echo` with --depth calls in flight on one connection: calls/s
 *   conns     --conns connections, one call in flight on each: calls/s
 *   idle      --conns idle connections (each made one call first)
 *   pending   one connection; the server makes --pending callbacks to the
 *             client, which never answers them
 */

#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum
{
  PEER_TRANSPORT_UNIX,
  PEER_TRANSPORT_TCP,
  PEER_TRANSPORT_TLS,
} PeerTransport;

typedef struct
{
  int            is_server;
  PeerTransport  transport;
  const char    *address;      /* server: where to listen; client: where to go */
  const char    *workloads;    /* comma-separated */
  const char    *cert;         /* TLS: server certificate (PEM) */
  const char    *key;          /* TLS: server key (PEM) */
  const char    *ca;           /* TLS: the client trusts this (PEM) */
  int            calls;        /* measured calls, seq and cb */
  int            warmup;       /* calls before measuring */
  double         seconds;      /* measured time, inflight and conns */
  double         warmup_seconds;
  int            depth;        /* calls in flight, inflight */
  int            conns;        /* connections, conns and idle */
  int            pending;      /* callbacks held, pending */
} PeerArgs;

/* Parses argv (argv[1] is the role). Prints usage and exits on error. */
void     peer_args_parse         (PeerArgs *args, int argc, char **argv);
/* Whether @name is in args->workloads. */
int      peer_args_has           (const PeerArgs *args, const char *name);
/* "host:port" → host (static buffer) and port; 0 on error. */
int      peer_split_hostport     (const char *address, char *host, size_t host_size, int *port);

int64_t  peer_now_ns             (void);
/* Sorts @ns in place; nearest-rank percentile in µs. */
double   peer_percentile_us      (int64_t *ns, size_t n, double p);

/* One line on stdout, flushed at once (the orchestrator reads a pipe). */
void     peer_emit               (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
/* RESULT lines. */
void     peer_emit_latency       (const char *workload, int64_t *ns, size_t n, unsigned errors,
                                  const char *last_error);
void     peer_emit_rate          (const char *workload, uint64_t calls, double seconds,
                                  unsigned errors, const char *last_error);

/* Server: a thread that answers "mem" on stdin and ends the process at
 * EOF. Call once, after READY. */
void     peer_server_watch_stdin (void);
/* Client: blocks until a line (or EOF) arrives on stdin. */
void     peer_wait_stdin_line    (void);
/* Many sockets per process. */
void     peer_raise_fd_limit     (void);
/* The process dies when its parent does; SIGPIPE ignored. */
void     peer_common_init        (void);

#ifdef __cplusplus
}
#endif
