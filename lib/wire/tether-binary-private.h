/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Binary frames: a compact form of the two commonest JSON-RPC messages
 * (a request without impersonation tokens or signatures, and a result),
 * carrying the value as serialised GVariant. Used only after both hellos
 * listed the "binary" feature; everything else stays JSON text.
 * docs/protocol.md has the layout. */

#include <glib.h>

#include "tether-protocol-private.h"

G_BEGIN_DECLS

typedef enum
{
  TETHER_FRAME_REQUEST = 'Q',
  TETHER_FRAME_RESULT  = 'R',
} TetherFrameKind;

/* Imp byte of a request that does not say (the callee's default). */
#define TETHER_FRAME_IMP_ABSENT     0xff
/* Timeout of a request that does not say. */
#define TETHER_FRAME_TIMEOUT_ABSENT G_MAXUINT32

typedef struct
{
  TetherFrameKind  kind;
  gint64           id;         /* > 0 */
  char            *method;     /* requests */
  gint64           timeout_ms; /* -1: absent */
  int              imp;        /* a TetherImpersonationLevel, -1: absent */
  GVariant        *value;      /* params (may be NULL) or result */
} TetherFrame;

/* A frame's header and method; append the value (if any) with
 * _tether_frame_append_value(), which sinks a floating @value. */
GString   *_tether_frame_new_request      (gint64               id,
                                           const char          *method,
                                           gint64               timeout_ms,
                                           int                  imp);
GString   *_tether_frame_new_result       (gint64               id);
void       _tether_frame_append_value     (GString             *frame,
                                           GVariant            *value);

/* Reads a frame; its value keeps @bytes alive and is untrusted (GLib
 * checks it on access). FALSE with a message for anything malformed. */
gboolean   _tether_frame_parse            (GBytes              *bytes,
                                           TetherFrame         *frame,
                                           GError             **error);
void       _tether_frame_clear            (TetherFrame         *frame);

/* What a value from a binary frame means: exactly the value the same
 * value sent as JSON would have given (params by @signature and
 * @param_names as _tether_json_params_to_variant(); a result by the
 * undeclared mapping), within @max_depth as a message's member. The
 * common values already are that and are returned as they are; the rest
 * go through the JSON mapping. */
GVariant  *_tether_binary_params_to_variant (GVariant           *value,
                                             const char         *signature,
                                             const char * const *param_names,
                                             guint               max_depth,
                                             GError            **error);
GVariant  *_tether_binary_result_to_variant (GVariant           *value,
                                             guint               max_depth,
                                             GError            **error);

G_END_DECLS
