/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* TetherWebsocket: RFC 6455 framing over the guard stream, once the HTTP
 * upgrade is done, driven by a watch on the socket in the context's one
 * scheduler.
 *
 * Why not libsoup's SoupWebsocketConnection: it keeps a GSource attached
 * to the thread-default context for as long as the connection is open
 * (its input source, plus a timer for keepalives), and GLib 2.74 prepares,
 * checks and polls every attached source on every main loop iteration.
 * Each call therefore paid for every idle connection (measured: 1,000
 * idle connections made a call 12× slower, 4,000 made it 190× slower;
 * docs/performance.md). Its sources cannot be moved off the context
 * without relying on its internals, so the data phase is Tether's own:
 * this file. The guard stream under it is unchanged and still sees every
 * byte; libsoup still parses the HTTP heads (tether-transport.c).
 *
 * What it does: reads what the socket has when the scheduler says so
 * (never more than a fair share per dispatch), checks every frame as
 * RFC 6455 asks (masking by role, minimal lengths, reserved bits, control
 * frames, fragmentation, UTF-8 of text and close reasons, close codes),
 * delivers whole messages, answers pings and close frames, and writes
 * what it is given without blocking: what the socket does not take at
 * once waits in one buffer until it is writable (the connection bounds
 * that backlog: max-unsent-bytes). An idle connection holds no buffer.
 *
 * The owner's callbacks run from the scheduler's dispatch only — never
 * from inside a call into this object — so a send that fails, or a close,
 * cannot tear the owner down under its own feet. */

#include "tether-guard-stream-private.h"
#include "tether-scheduler-private.h"

G_BEGIN_DECLS

typedef struct _TetherWebsocket TetherWebsocket;

typedef enum
{
  TETHER_WEBSOCKET_OPEN,
  TETHER_WEBSOCKET_CLOSING,  /* our close frame is out or queued: nothing more is sent */
  TETHER_WEBSOCKET_CLOSED,
} TetherWebsocketState;

typedef struct
{
  /* A whole message; text is valid UTF-8. */
  void (*message) (gpointer user_data, gboolean binary, GBytes *message);
  /* Once, when the connection is over: closed by the peer or by us, or
   * failed (see _tether_websocket_get_error()). */
  void (*closed)  (gpointer user_data);
  /* Optional: a pong, with the bytes it echoes. */
  void (*pong)    (gpointer user_data, const guint8 *payload, gsize len);
} TetherWebsocketFuncs;

/* Close codes (RFC 6455 §7.4.1) Tether sends. */
#define TETHER_WEBSOCKET_CLOSE_NORMAL          1000
#define TETHER_WEBSOCKET_CLOSE_GOING_AWAY      1001
#define TETHER_WEBSOCKET_CLOSE_PROTOCOL_ERROR  1002
#define TETHER_WEBSOCKET_CLOSE_NO_STATUS       1005
#define TETHER_WEBSOCKET_CLOSE_ABNORMAL        1006
#define TETHER_WEBSOCKET_CLOSE_BAD_DATA        1007

/* @client: frames we send are masked, frames we receive must not be.
 * @protocol: the negotiated subprotocol, or NULL. Nothing is read before
 * _tether_websocket_start(). */
TetherWebsocket      *_tether_websocket_new          (TetherGuardStream          *guard,
                                                      gboolean                    client,
                                                      const char                 *protocol);
TetherWebsocket      *_tether_websocket_ref          (TetherWebsocket            *self);
void                  _tether_websocket_unref        (TetherWebsocket            *self);
/* Starts reading, on @scheduler's context. Bytes the guard already holds
 * (pushed back) are read at the next dispatch. */
void                  _tether_websocket_start        (TetherWebsocket            *self,
                                                      TetherScheduler            *scheduler,
                                                      const TetherWebsocketFuncs *funcs,
                                                      gpointer                    user_data);
const char           *_tether_websocket_get_protocol (TetherWebsocket            *self);
TetherWebsocketState  _tether_websocket_get_state    (TetherWebsocket            *self);
/* Queues one message and writes what the socket takes now. FALSE (and
 * nothing sent) unless open. Text must be valid UTF-8. */
gboolean              _tether_websocket_send         (TetherWebsocket            *self,
                                                      gboolean                    binary,
                                                      const char                 *data,
                                                      gsize                       len);
void                  _tether_websocket_ping         (TetherWebsocket            *self);
/* A ping carrying @payload (125 bytes at most), which its pong echoes. */
void                  _tether_websocket_ping_payload (TetherWebsocket            *self,
                                                      const char                 *payload);
/* Frames received so far, pongs aside: whether the peer said anything on
 * its own since some earlier moment (keepalive). */
guint64               _tether_websocket_get_frames_heard (TetherWebsocket        *self);
/* Backpressure: while not reading, no more frames are delivered (those
 * already read wait), nothing more is read from the socket, and the
 * peer's own sending blocks once the kernel's buffers are full. */
void                  _tether_websocket_set_reading  (TetherWebsocket            *self,
                                                      gboolean                    reading);
gboolean              _tether_websocket_get_reading  (TetherWebsocket            *self);
/* Bytes queued and not yet taken by the socket. */
gsize                 _tether_websocket_get_unsent   (TetherWebsocket            *self);
/* Polite close: a close frame goes out, and the connection ends when the
 * peer answers with its own (or hangs up). Bounding the wait is the
 * owner's (it may call _tether_websocket_abort()). */
void                  _tether_websocket_close        (TetherWebsocket            *self,
                                                      gushort                     code,
                                                      const char                 *reason);
/* Ends it now: no close frame, the stream is closed, the callbacks are
 * forgotten (closed is not called). Idempotent. */
void                  _tether_websocket_abort        (TetherWebsocket            *self);
/* The peer's close frame: its code (0 if none came, 1005 if it had no
 * code) and reason (NULL if none). */
gushort               _tether_websocket_get_close_code   (TetherWebsocket        *self);
const char           *_tether_websocket_get_close_reason (TetherWebsocket        *self);
/* Why the connection failed (a read or write error, or a protocol error
 * of the peer's), or NULL after a clean close. */
const GError         *_tether_websocket_get_error    (TetherWebsocket            *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TetherWebsocket, _tether_websocket_unref)

G_END_DECLS
