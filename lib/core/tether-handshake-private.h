/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The hello (`rpc.tether.hello`) and the SASL steps after it
 * (`rpc.tether.auth`), both sides (docs/protocol.md). The client's side
 * runs on a started connection and says whether the server let us in;
 * the server's side (TetherHelloServer) decides what to answer, and its
 * glue on the engine (_tether_connection_handle_hello() and _auth(), in
 * the same file) sends it, closes, or opens the connection. */

#include "tether-connection-private.h"

G_BEGIN_DECLS

/* A member of the hello that a feature adds (detached callbacks first):
 * the client offers a value under @member in the hello's params, and the
 * server answers under the same name in the reply. The server registers
 * one with _tether_connection_add_hello_extension(); the client lists its
 * offers in TetherHelloClientOptions. */
struct _TetherHelloExtension
{
  const char *member;
  /* Server: the client's @offer (as the undeclared mapping reads it:
   * an object is a{sv}); the answer for the reply (floating or a new
   * reference), or NULL for none. */
  GVariant *(*answer) (TetherConnection *conn,
                       GVariant         *offer,
                       gpointer          user_data);
  gpointer    user_data;
};

/* The client's side of an extension: an object that offers a member of
 * the hello and takes the server's answer to it (the callback listener,
 * for detached callbacks). The client holds such objects without knowing
 * their types, so that no public object depends on another's insides. */
#define TETHER_TYPE_HELLO_EXTENDER (_tether_hello_extender_get_type ())
G_DECLARE_INTERFACE (TetherHelloExtender, _tether_hello_extender, TETHER, HELLO_EXTENDER, GObject)

struct _TetherHelloExtenderInterface
{
  GTypeInterface parent_iface;

  /* What to offer a connection to @server_uri: the value (floating), and
   * the member's name in *@member; NULL to offer nothing. */
  GVariant *(*offer)    (TetherHelloExtender *self,
                         const char          *server_uri,
                         const char         **member);
  /* The hello succeeded on @conn: the server's answer to the offer (NULL
   * when it gave none). */
  void      (*answered) (TetherHelloExtender *self,
                         TetherConnection    *conn,
                         const char          *server_uri,
                         GVariant            *answer);
};

typedef struct
{
  const char *uri;                     /* the server, for messages */
  const char *username;                /* SCRAM with this and @password, or NULL */
  const char *password;
  const char *mechanism;               /* without @username: EXTERNAL, ANONYMOUS or NULL */
  gboolean    require_channel_binding;
  gboolean    binary_frames;           /* offer binary frames */
  TetherHelloExtender *const *extenders; /* what extends the hello */
  guint       n_extenders;
  gint64      deadline;                /* monotonic µs: the hello's answer and every SASL step */
} TetherHelloClientOptions;

/* Sends the hello on @conn (started by the caller, who keeps it) and
 * runs SASL to the end. Over TLS only the channel-bound SCRAM is used,
 * and a server that does not take part in authentication we asked for is
 * a failure, never a downgrade; the server's final SCRAM proof is
 * checked. Errors are the ones tether_client_connect_finish() documents. */
void      _tether_hello_client_async  (TetherConnection               *conn,
                                       const TetherHelloClientOptions *options,
                                       GCancellable                   *cancellable,
                                       GAsyncReadyCallback             callback,
                                       gpointer                        user_data);
/* On success each extender that made an offer has been given the
 * server's answer. */
gboolean  _tether_hello_client_finish (GAsyncResult                   *result,
                                       GError                        **error);

/* The server's side: one per connection, from the hello to the end of
 * SASL. */
typedef struct _TetherHelloServer TetherHelloServer;

typedef enum
{
  TETHER_HELLO_CONTINUE,  /* send the reply; SASL goes on in rpc.tether.auth */
  TETHER_HELLO_DONE,      /* send the reply; the peer is in */
  TETHER_HELLO_FAILED,    /* answer the error, then close */
} TetherHelloStatus;

typedef struct
{
  TetherHelloStatus  status;
  GVariant          *reply;         /* CONTINUE, DONE: the result to send */
  gboolean           binary;        /* the hello offered binary frames (taken up) */
  const char        *mechanism;     /* DONE after SASL: how (interned), else NULL */
  char              *username;      /*   and who (NULL for ANONYMOUS) */
  int                code;          /* FAILED: the wire code to answer with */
  GError            *error;         /* FAILED: why */
  gboolean           close_at_once; /* FAILED: not a failed authentication, cut now */
} TetherHelloOutcome;

/* @conn: unowned (the connection owns this); @policy: may be NULL. */
TetherHelloServer *_tether_hello_server_new  (TetherConnection   *conn,
                                              TetherAuthPolicy   *policy,
                                              guint               max_message_size,
                                              guint               max_depth);
void               _tether_hello_server_free (TetherHelloServer  *self);
/* rpc.tether.hello, with its params (a{sv}, or NULL when they are not an
 * object); @extensions (TetherHelloExtension*,
 * may be NULL) answer what the client offered, once nothing failed. */
void               _tether_hello_server_hello (TetherHelloServer *self,
                                               GVariant          *params,
                                               GPtrArray         *extensions,
                                               TetherHelloOutcome *out);
/* rpc.tether.auth; FALSE (and @out untouched) when no SASL exchange was
 * begun in the hello. */
gboolean           _tether_hello_server_auth  (TetherHelloServer *self,
                                               GVariant          *params,
                                               TetherHelloOutcome *out);
void               _tether_hello_outcome_clear (TetherHelloOutcome *out);

G_END_DECLS
