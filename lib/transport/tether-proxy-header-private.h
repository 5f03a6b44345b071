/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The PROXY protocol header a load balancer sends first on a connection
 * (HAProxy's doc/proxy-protocol.txt, versions 1 and 2): who the client
 * really is. Parsed from what has arrived so far, without reading past
 * the header, so that TLS and the HTTP upgrade find their bytes intact. */

#include <gio/gio.h>

G_BEGIN_DECLS

/* Version 2: 16 bytes and at most this much more (addresses and TLVs);
 * version 1: 107 bytes at most. */
#define TETHER_PROXY_HEADER_MAX 4096

typedef enum
{
  TETHER_PROXY_NEED_MORE,   /* a valid beginning: wait for more bytes */
  TETHER_PROXY_DONE,
  TETHER_PROXY_INVALID,     /* not a PROXY header, or a malformed one */
} TetherProxyStatus;

typedef struct
{
  guint               version;  /* 1 or 2 */
  gsize               length;   /* bytes of the header, to consume */
  /* The client and the address it connected to, when the header says
   * (PROXY over TCP4 or TCP6); NULL for LOCAL (the balancer's own
   * connection, e.g. a health check) and for what it may not say
   * (UNKNOWN, UNSPEC, unix sockets, datagrams): then the connection's own
   * addresses stand. */
  GInetSocketAddress *source;
  GInetSocketAddress *destination;
  gboolean            local;    /* the LOCAL command */
} TetherProxyHeader;

/* Reads a header at the start of @data (@len bytes arrived so far). DONE
 * fills @header; INVALID sets @error (G_IO_ERROR_INVALID_DATA) saying
 * what is wrong; NEED_MORE only while @len is short of the largest
 * header, and with @need (optional) set to how many bytes to wait for
 * before trying again (at least @len + 1). */
TetherProxyStatus _tether_proxy_header_parse (const guint8       *data,
                                              gsize               len,
                                              TetherProxyHeader  *header,
                                              gsize              *need,
                                              GError            **error);
void              _tether_proxy_header_clear (TetherProxyHeader  *header);

G_END_DECLS
