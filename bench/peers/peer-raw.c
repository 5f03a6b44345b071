/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* peer-raw: the floor. Fixed 64-byte messages over a plain Unix or TCP
 * socket (TCP_NODELAY), no framing library, no event loop beyond epoll on
 * the server and blocking I/O (poll for many connections) on the client.
 *
 * Message byte 0 says what it is: 'E' echo → 'e'; 'C' a call with a
 * callback → the server sends 'B' to the client, the client answers 'b',
 * the server answers 'c'. The rest is an opaque payload (a sequence
 * number). No TLS, no pending callbacks: there is nothing to hold. */

#include "peers-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#define MSG 64

static void
die (const char *what)
{
  perror (what);
  exit (1);
}

static void
set_nodelay (int fd)
{
  int one = 1;

  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---------------------------------------------------------------------- */
/* Server                                                                 */

typedef struct
{
  int    fd;
  char   in[MSG * 16];
  size_t in_len;
  char  *out;
  size_t out_len, out_cap;
} RawConn;

static void
out_append (RawConn    *c,
            const char *data,
            size_t      len)
{
  if (c->out_len + len > c->out_cap)
    {
      c->out_cap = (c->out_len + len) * 2;
      c->out = realloc (c->out, c->out_cap);
      if (c->out == NULL)
        die ("realloc");
    }
  memcpy (c->out + c->out_len, data, len);
  c->out_len += len;
}

/* 0: fine; -1: the connection is gone. */
static int
conn_flush (int      ep,
            RawConn *c)
{
  size_t done = 0;

  while (done < c->out_len)
    {
      ssize_t n = write (c->fd, c->out + done, c->out_len - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      if (n <= 0)
        return -1;
      done += (size_t) n;
    }
  memmove (c->out, c->out + done, c->out_len - done);
  c->out_len -= done;
  {
    struct epoll_event ev = { .events = EPOLLIN | (c->out_len > 0 ? EPOLLOUT : 0), .data.ptr = c };

    epoll_ctl (ep, EPOLL_CTL_MOD, c->fd, &ev);
  }
  return 0;
}

static int
conn_read (int      ep,
           RawConn *c)
{
  for (;;)
    {
      ssize_t n = read (c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
      size_t off = 0;

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      if (n <= 0)
        return -1;
      c->in_len += (size_t) n;
      while (c->in_len - off >= MSG)
        {
          char msg[MSG];

          memcpy (msg, c->in + off, MSG);
          off += MSG;
          switch (msg[0])
            {
            case 'E': msg[0] = 'e'; break;
            case 'C': msg[0] = 'B'; break;
            case 'b': msg[0] = 'c'; break;
            default: return -1;
            }
          out_append (c, msg, MSG);
        }
      memmove (c->in, c->in + off, c->in_len - off);
      c->in_len -= off;
      if ((size_t) n < sizeof c->in - c->in_len)
        break;
    }
  return c->out_len > 0 ? conn_flush (ep, c) : 0;
}

static int
listen_socket (const PeerArgs *a,
               char           *bound,
               size_t          bound_size)
{
  int fd;

  if (a->transport == PEER_TRANSPORT_UNIX)
    {
      struct sockaddr_un sun = { .sun_family = AF_UNIX };

      fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      snprintf (sun.sun_path, sizeof sun.sun_path, "%s", a->address);
      unlink (a->address);
      if (bind (fd, (struct sockaddr *) &sun, sizeof sun) < 0)
        die ("bind");
      snprintf (bound, bound_size, "%s", a->address);
    }
  else if (a->transport == PEER_TRANSPORT_TCP)
    {
      struct sockaddr_in sin = { .sin_family = AF_INET };
      socklen_t len = sizeof sin;
      char host[64];
      int port = 0, one = 1;

      if (!peer_split_hostport (a->address, host, sizeof host, &port))
        die ("address");
      fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      inet_pton (AF_INET, host, &sin.sin_addr);
      sin.sin_port = htons ((uint16_t) port);
      if (bind (fd, (struct sockaddr *) &sin, sizeof sin) < 0)
        die ("bind");
      getsockname (fd, (struct sockaddr *) &sin, &len);
      snprintf (bound, bound_size, "%s:%d", host, ntohs (sin.sin_port));
    }
  else
    {
      fprintf (stderr, "peer-raw: no TLS\n");
      exit (3);
    }
  if (listen (fd, 1024) < 0)
    die ("listen");
  return fd;
}

static int
run_server (const PeerArgs *a)
{
  char bound[256];
  int lfd = listen_socket (a, bound, sizeof bound);
  int ep = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

  epoll_ctl (ep, EPOLL_CTL_ADD, lfd, &ev);
  peer_emit ("READY %s", bound);
  peer_server_watch_stdin ();

  for (;;)
    {
      struct epoll_event events[64];
      int n = epoll_wait (ep, events, 64, -1);

      for (int i = 0; i < n; i++)
        {
          RawConn *c = events[i].data.ptr;

          if (c == NULL)
            {
              int fd;

              while ((fd = accept4 (lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
                {
                  RawConn *nc = calloc (1, sizeof *nc);
                  struct epoll_event cev = { .events = EPOLLIN };

                  if (a->transport == PEER_TRANSPORT_TCP)
                    set_nodelay (fd);
                  nc->fd = fd;
                  cev.data.ptr = nc;
                  epoll_ctl (ep, EPOLL_CTL_ADD, fd, &cev);
                }
              continue;
            }
          if (((events[i].events & EPOLLOUT) && conn_flush (ep, c) < 0) ||
              ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && conn_read (ep, c) < 0))
            {
              epoll_ctl (ep, EPOLL_CTL_DEL, c->fd, NULL);
              close (c->fd);
              free (c->out);
              free (c);
            }
        }
    }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Client                                                                 */

static int
dial (const PeerArgs *a)
{
  int fd;

  if (a->transport == PEER_TRANSPORT_UNIX)
    {
      struct sockaddr_un sun = { .sun_family = AF_UNIX };

      fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      snprintf (sun.sun_path, sizeof sun.sun_path, "%s", a->address);
      if (connect (fd, (struct sockaddr *) &sun, sizeof sun) < 0)
        die ("connect");
    }
  else
    {
      struct sockaddr_in sin = { .sin_family = AF_INET };
      char host[64];
      int port;

      if (!peer_split_hostport (a->address, host, sizeof host, &port))
        die ("address");
      fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      inet_pton (AF_INET, host, &sin.sin_addr);
      sin.sin_port = htons ((uint16_t) port);
      if (connect (fd, (struct sockaddr *) &sin, sizeof sin) < 0)
        die ("connect");
      set_nodelay (fd);
    }
  return fd;
}

static void
write_all (int         fd,
           const char *buf,
           size_t      len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, buf, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        die ("write");
      buf += n;
      len -= (size_t) n;
    }
}

static void
read_all (int    fd,
          char  *buf,
          size_t len)
{
  while (len > 0)
    {
      ssize_t n = read (fd, buf, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        die ("read");
      buf += n;
      len -= (size_t) n;
    }
}

static void
make_msg (char     *msg,
          char      kind,
          uint64_t  seq)
{
  memset (msg, 'x', MSG);
  msg[0] = kind;
  memcpy (msg + 8, &seq, sizeof seq);
}

static void
one_call (int      fd,
          char     kind,
          uint64_t seq)
{
  char msg[MSG];

  make_msg (msg, kind, seq);
  write_all (fd, msg, MSG);
  read_all (fd, msg, MSG);
  if (kind == 'C')
    {
      if (msg[0] != 'B')
        die ("protocol");
      msg[0] = 'b';
      write_all (fd, msg, MSG);
      read_all (fd, msg, MSG);
      if (msg[0] != 'c')
        die ("protocol");
    }
  else if (msg[0] != 'e')
    die ("protocol");
}

static void
latency (const PeerArgs *a,
         int             fd,
         const char     *workload,
         char            kind)
{
  int64_t *ns = calloc ((size_t) a->calls, sizeof *ns);

  for (int i = 0; i < a->warmup + a->calls; i++)
    {
      int64_t t0 = peer_now_ns ();

      one_call (fd, kind, (uint64_t) i);
      if (i >= a->warmup)
        ns[i - a->warmup] = peer_now_ns () - t0;
    }
  peer_emit_latency (workload, ns, (size_t) a->calls, 0, NULL);
  free (ns);
}

/* Throughput over @n_fds connections with @depth calls in flight on each:
 * every answer read is replaced by a new call at once. */
static void
throughput (const PeerArgs *a,
            int            *fds,
            int             n_fds,
            int             depth,
            const char     *workload)
{
  struct pollfd *pfd = calloc ((size_t) n_fds, sizeof *pfd);
  char *out = malloc ((size_t) depth * MSG);
  char (*in)[MSG * 256] = calloc ((size_t) n_fds, sizeof *in);
  size_t *in_len = calloc ((size_t) n_fds, sizeof *in_len);
  int64_t start = peer_now_ns ();
  int64_t measure_from = start + (int64_t) (a->warmup_seconds * 1e9);
  int64_t end = measure_from + (int64_t) (a->seconds * 1e9);
  uint64_t calls = 0, seq = 0;
  int64_t now = start;

  for (int i = 0; i < depth; i++)
    make_msg (out + i * MSG, 'E', seq++);
  for (int i = 0; i < n_fds; i++)
    {
      write_all (fds[i], out, (size_t) depth * MSG);
      pfd[i].fd = fds[i];
      pfd[i].events = POLLIN;
    }
  while (now < end)
    {
      int r = poll (pfd, (nfds_t) n_fds, 1000);

      if (r <= 0)
        die ("poll");
      now = peer_now_ns ();
      for (int i = 0; i < n_fds; i++)
        {
          ssize_t got;
          size_t done;

          if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
          got = read (fds[i], in[i] + in_len[i], sizeof in[i] - in_len[i]);
          if (got <= 0)
            die ("read");
          in_len[i] += (size_t) got;
          done = in_len[i] / MSG;
          memmove (in[i], in[i] + done * MSG, in_len[i] - done * MSG);
          in_len[i] -= done * MSG;
          if (now >= measure_from)
            calls += done;
          for (size_t k = 0; k < done; k++)
            make_msg (out + k * MSG, 'E', seq++);
          if (done > 0)
            write_all (fds[i], out, done * MSG);
        }
    }
  peer_emit_rate (workload, calls, (now - measure_from) / 1e9, 0, NULL);
  free (pfd);
  free (out);
  free (in);
  free (in_len);
}

static int
run_client (const PeerArgs *a)
{
  if (peer_args_has (a, "idle"))
    {
      int *fds = calloc ((size_t) a->conns, sizeof *fds);

      peer_emit ("CONNECTED");
      peer_wait_stdin_line ();
      for (int i = 0; i < a->conns; i++)
        {
          fds[i] = dial (a);
          one_call (fds[i], 'E', 0);
        }
      peer_emit ("HOLDING conns=%d", a->conns);
      for (;;)
        pause ();
    }
  if (peer_args_has (a, "pending"))
    {
      peer_emit ("UNSUPPORTED raw sockets have no calls to hold");
      return 0;
    }

  {
    int fd = dial (a);

    if (peer_args_has (a, "seq"))
      latency (a, fd, "seq", 'E');
    if (peer_args_has (a, "cb"))
      latency (a, fd, "cb", 'C');
    if (peer_args_has (a, "inflight"))
      throughput (a, &fd, 1, a->depth, "inflight");
    close (fd);
  }
  if (peer_args_has (a, "conns"))
    {
      int *fds = calloc ((size_t) a->conns, sizeof *fds);

      for (int i = 0; i < a->conns; i++)
        fds[i] = dial (a);
      throughput (a, fds, a->conns, 1, "conns");
      for (int i = 0; i < a->conns; i++)
        close (fds[i]);
      free (fds);
    }
  return 0;
}

int
main (int    argc,
      char **argv)
{
  PeerArgs a;

  peer_common_init ();
  peer_args_parse (&a, argc, argv);
  return a.is_server ? run_server (&a) : run_client (&a);
}
