/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* rpc.discover (issue #12): the OpenRPC document a server (or a client,
 * for the callbacks it accepts) gives of itself, built from its method
 * table as an a{sv} that the GVariant → JSON mapping writes. The schemas
 * come from wire/'s tether-json-schema.c; docs/protocol.md describes the
 * document and its x-tether-… extensions. */

#include "tether-invocation.h"
#include "tether-method-table-private.h"

G_BEGIN_DECLS

/* The OpenRPC version the document follows (tests validate it against
 * that version's meta-schema). */
#define TETHER_OPENRPC_VERSION "1.3.2"

typedef struct
{
  const char         *title;
  const char         *version;
  const char         *description;        /* or NULL */
  const char * const *uris;               /* the servers, or NULL */
  TetherMethodTable  *methods;
  GHashTable         *callbacks;          /* name → TetherMethodInfo*, or NULL */
  gboolean            apply_access;       /* a server: list only what the caller may call */
  gboolean            caller_authenticated;
  guint               default_timeout_ms; /* of the methods */
  guint               max_timeout_ms;
  guint               callback_timeout_ms;
  guint               max_callback_timeout_ms;
} TetherDiscoverSource;

/* The document, a floating a{sv}. */
GVariant *_tether_discover_document            (const TetherDiscoverSource *source);

/* Whether a caller sees (and so may call) a method of @access: any
 * caller for TETHER_ACCESS_ANY, authenticated ones for the others (a
 * TETHER_ACCESS_CUSTOM method is decided per call, and listed to those
 * who could be allowed: see docs/protocol.md). */
gboolean  _tether_discover_may_see             (TetherAccess                access,
                                                gboolean                    authenticated);

/* Whether the caller of @invocation is authenticated, as the transport
 * or the hello proved it (whatever level the caller granted: the
 * listing is the server's machinery, not the handler's business). */
gboolean  _tether_discover_caller_authenticated (TetherInvocation          *invocation);

G_END_DECLS
