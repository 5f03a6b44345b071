/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* peers-glib: the client workloads, once, for every peer built on a GLib
 * main loop (libsoup's WebSocket echo, Tether, jsonrpc-glib, GDBus). A
 * peer gives a connect, an asynchronous call and, where it has callbacks,
 * a way to make the server hold some; the driver does the rest, on the
 * thread-default main context. Every wait is bounded. */

#pragma once

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "peers-util.h"

G_BEGIN_DECLS

/* @error is NULL when the call succeeded. */
typedef void (*PeerDoneFunc) (gpointer    data,
                              const char *error);

typedef struct
{
  /* Opens one connection; may iterate the default main context. */
  gpointer (*connect) (const PeerArgs *args,
                       GError        **error);
  /* One call: `echo`, or (@with_callback) `cb`, whose handler calls the
   * client's `ping` before answering. */
  void     (*call)    (gpointer        conn,
                       gboolean        with_callback,
                       guint64         seq,
                       PeerDoneFunc    done,
                       gpointer        data);
  /* Optional: asks the server for @n callbacks that the client will hold
   * unanswered; n_held() counts those that arrived. */
  void     (*hold)    (gpointer        conn,
                       guint           n);
  guint    (*n_held)  (gpointer        conn);
} PeerGlibOps;

int      peer_glib_client_main (const PeerArgs    *args,
                                const PeerGlibOps *ops);
/* Iterates the default context until *flag or @ms pass. */
gboolean peer_glib_wait        (const gboolean    *flag,
                                guint              ms);
/* READY line and the stdin watcher; then run a main loop. */
void     peer_glib_server_ready (const char       *address);
/* The params of every call, {"seq": n} as a floating a{sv}. */
GVariant *peer_glib_seq_params (guint64          seq);
/* A listening GSocketService on the transport's address (unix path, or
 * host:port; TLS is the caller's business on top of TCP). Sets *bound to
 * the address clients use. */
GSocketService *peer_glib_listen (const PeerArgs  *args,
                                  char           **bound,
                                  GError         **error);
/* A connected GSocketConnection (TCP_NODELAY on TCP). */
GIOStream *peer_glib_dial       (const PeerArgs   *args,
                                 GError          **error);

G_END_DECLS
