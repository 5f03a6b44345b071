/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The message model: what the engine builds and reads, whatever the wire
 * format. Two sibling codecs turn it into bytes and back: JSON-RPC text
 * (tether-json-codec.c, the only user of jansson) and the binary frame
 * (tether-binary.c). Values go out as GVariants; what comes in stays in
 * its codec's form (TetherPayload) until the engine knows the type it
 * wants (a method's signature), so nothing is converted twice.
 * docs/protocol.md has both formats. */

#include <glib.h>

#include "tether-protocol-private.h"
#include "tether-types.h"

G_BEGIN_DECLS

typedef enum
{
  TETHER_ID_ABSENT,   /* none: a notification */
  TETHER_ID_INT,
  TETHER_ID_STRING,
  TETHER_ID_INVALID,  /* present, but neither a string nor an integer */
} TetherIdKind;

typedef struct
{
  TetherIdKind  kind;
  gint64        num;   /* INT */
  char         *str;   /* STRING: the id; INVALID: its JSON text, for logs */
} TetherMessageId;

void      _tether_message_id_clear  (TetherMessageId       *id);
void      _tether_message_id_copy   (TetherMessageId       *dest,
                                     const TetherMessageId *src);
/* A key for tables of request ids: integers and strings apart. */
char     *_tether_message_id_key    (const TetherMessageId *id);
/* The id as JSON text ("(none)" when absent), for logs. */
char     *_tether_message_id_to_string (const TetherMessageId *id);

typedef enum
{
  TETHER_CODEC_NONE,
  TETHER_CODEC_JSON,
  TETHER_CODEC_BINARY,
} TetherCodec;

/* A received request's params or response's result, as its codec read
 * them (empty: @codec NONE). */
typedef struct
{
  TetherCodec codec;
  gpointer    data;   /* JSON: a jansson value; binary: a GVariant */
} TetherPayload;

void      _tether_payload_clear     (TetherPayload         *payload);
/* Params → GVariant by @signature and @param_names, exactly as
 * _tether_json_params_to_variant() documents for JSON (a binary value
 * means what the same value sent as JSON would), nested no deeper than
 * @max_depth. NULL without error for absent params and no signature. */
GVariant *_tether_payload_to_params (const TetherPayload   *payload,
                                     const char            *signature,
                                     const char * const    *param_names,
                                     guint                  max_depth,
                                     GError               **error);
/* A result → GVariant by the undeclared mapping. */
GVariant *_tether_payload_to_result (const TetherPayload   *payload,
                                     guint                  max_depth,
                                     GError               **error);
/* The compact JSON of a JSON payload ("null" when empty), as a signature
 * covers it; NULL for a binary one. */
char     *_tether_payload_dup_json  (const TetherPayload   *payload);

/* A detached callback's signature (docs/security-detached.md). */
typedef struct
{
  char     *session;
  gint64    seq;
  gint64    expires;   /* ms since the epoch */
  char     *sig;       /* base64 */
  gboolean  valid;     /* received: all four there, of their types, seq ≥ 1 */
} TetherDetachedClaim;

void      _tether_detached_claim_free (TetherDetachedClaim *claim);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TetherDetachedClaim, _tether_detached_claim_free)

/* The imp of a request whose level is not one of ours. */
#define TETHER_META_IMP_UNKNOWN (-2)

/* Tether's own metadata on a request (the "tether" member). */
typedef struct
{
  gint64               timeout_ms;      /* the caller's budget; -1: absent */
  int                  imp;             /* TetherImpersonationLevel; -1: absent */
  char                *act_as;          /* the token of credentials presented */
  gboolean             act_as_invalid;  /* received: "act_as" that is not a string */
  char                *token;           /* IMPERSONATE and up */
  TetherDetachedClaim *detached;
} TetherMeta;

typedef enum
{
  TETHER_MESSAGE_REQUEST,   /* a call, or a notification (id absent) */
  TETHER_MESSAGE_RESULT,
  TETHER_MESSAGE_ERROR,
  TETHER_MESSAGE_INVALID,   /* received, and not a valid message */
} TetherMessageKind;

typedef struct
{
  TetherMessageKind kind;
  TetherMessageId   id;
  char             *method;    /* REQUEST */
  /* Sent: the params (REQUEST, may be NULL) or the result (RESULT). */
  GVariant         *value;
  /* Received: the params or the result. */
  TetherPayload     payload;
  /* ERROR: the peer's code and message. INVALID: the code to answer
   * with (to @id if it was valid) and why. */
  int               code;
  char             *text;
  guint             malformed : 1;  /* ERROR: the response itself was wrong; @text says how */
  guint             answer : 1;     /* INVALID: answer it (it is not a response) */
  guint             was_request : 1; /* INVALID: it had a "method" */
  guint             has_meta : 1;   /* REQUEST: @meta travels (to Tether peers) */
  TetherMeta        meta;
} TetherMessage;

#define TETHER_MESSAGE_INIT { .meta = { .timeout_ms = -1, .imp = -1 } }

void      _tether_message_init      (TetherMessage         *message);
void      _tether_message_clear     (TetherMessage         *message);

/* JSON-RPC text. Encoding appends @message (compact, Tether's writer);
 * a request's lone params value travels as [value]. */
void      _tether_json_encode       (GString               *out,
                                     const TetherMessage   *message);
/* The compact JSON of @params as a request carries them ("null" for
 * NULL): what a detached callback's signature covers. */
char     *_tether_json_encode_params (GVariant             *params);
/* Reads one WebSocket text message into @message, or a batch into
 * *@batch (TetherMessage*, freed by the array). Never fails: what is not
 * valid JSON-RPC comes back INVALID (-32700 for bad JSON, -32600 for the
 * rest, a batch larger than @max_batch or nested deeper than
 * @max_depth). */
void      _tether_json_decode       (const char            *data,
                                     gsize                  len,
                                     guint                  max_depth,
                                     guint                  max_batch,
                                     TetherMessage         *message,
                                     GPtrArray            **batch);

/* Binary frames (tether-binary-private.h). Whether @message can travel as
 * one: a request without token, act_as or signature, a method a frame can
 * hold and not "rpc." (Tether's own stay JSON); or a result to an integer
 * id. */
gboolean  _tether_frame_fits        (const TetherMessage   *message);
/* A new frame holding @message, which must fit. */
GString  *_tether_frame_encode      (const TetherMessage   *message);
/* As _tether_json_decode(); a malformed frame that claims to be a result
 * is not answered. */
void      _tether_frame_decode      (GBytes                *bytes,
                                     TetherMessage         *message);

/* JSON outside messages (impersonation tokens): @value as compact JSON
 * by the GVariant → JSON mapping, and a JSON object back as a{sv} by the
 * undeclared mapping (NULL, with TETHER_ERROR_INVALID_MESSAGE, for
 * anything else). */
char     *_tether_json_encode_value (GVariant              *value);
GVariant *_tether_json_decode_object (const char           *data,
                                      gsize                 len,
                                      GError              **error);

/* Reading the small objects of Tether's own messages (the hello, its
 * answers, rpc.cancel), as the undeclared mapping gives them (an object
 * is a{sv}): NULL or FALSE where @dict is not an a{sv}, or the member is
 * absent or of another type. Strings are @dict's. */
const char *_tether_vardict_get_string (GVariant   *dict,
                                        const char *key);
gboolean    _tether_vardict_get_int    (GVariant   *dict,
                                        const char *key,
                                        gint64     *value);
/* Whether the member @key is an array that holds the string @item. */
gboolean    _tether_vardict_lists      (GVariant   *dict,
                                        const char *key,
                                        const char *item);

/* GLib 2.74 frees a container type's information (GVariantTypeInfo) when
 * its last value goes, and rebuilds it (~3.4k instructions for a{sv})
 * when the next one is made: per message, on the hot path. A value of
 * @type held for as long as the type is in use keeps it. Returns a new
 * reference to an empty value of @type (its contents are never read). The
 * undeclared mapping's types (a{sv}, av, mv) are held for the life of the
 * process. */
GVariant  *_tether_variant_type_anchor   (const GVariantType  *type);
/* The impersonation levels' names on the wire. */
const char *_tether_imp_level_to_string   (TetherImpersonationLevel  level);
gboolean    _tether_imp_level_from_string (const char               *str,
                                           TetherImpersonationLevel *level);

G_END_DECLS
