/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* TetherGuardStream: the one stream between Tether's socket (or TLS
 * connection) and libsoup. It sees every byte both ways and
 *
 *  - bounds the HTTP handshake: the bytes read before the end of the
 *    first HTTP head ("\r\n\r\n") are capped (max-handshake-bytes);
 *  - after that head, parses only WebSocket frame headers of the *input*
 *    (masked or not, headers split across reads included) to cap the
 *    total size of one message across its fragments (max-message-size),
 *    to refuse compressed frames (RSV1) and reserved bits (RSV2/RSV3),
 *    control frames longer than 125 bytes or fragmented, and unknown
 *    opcodes;
 *  - counts bytes read and written, so the connection can compute its
 *    unsent backlog (bytes it handed to libsoup minus bytes written);
 *  - can have bytes pushed back in front of its input (the client reads
 *    the server's HTTP answer itself; frames that came in the same read
 *    are pushed back for libsoup);
 *  - can be aborted: the socket is shut down at once, no polite close.
 *
 * A violation makes the current and every later read fail with a
 * G_IO_ERROR (G_IO_ERROR_MESSAGE_TOO_LARGE for sizes, G_IO_ERROR_INVALID_DATA
 * otherwise) and emits the "violation" signal once, with a TetherError
 * code (TETHER_ERROR_MESSAGE_TOO_LARGE or TETHER_ERROR_INVALID_MESSAGE)
 * and a human-readable reason, so the owner can log it and close.
 * Sizes are checked on frame headers: an oversize payload is never waited
 * for. The signal is emitted synchronously, from inside the read that
 * found the violation; a handler may call _tether_guard_stream_abort()
 * but should not close the guard there (libsoup is mid-read).
 *
 * The guard assumes one HTTP head per connection, then frames: anything
 * after the first head (a second, keep-alive request included) is parsed
 * as WebSocket frames.
 *
 * Its input and output streams implement GPollableInputStream and
 * GPollableOutputStream with can_poll TRUE (libsoup never reads otherwise),
 * delegating to the base streams; close_async is overridden so that
 * nothing runs in a worker thread. Closing the guard closes the base; over
 * TLS, close_notify is given up (not waited for) when the socket cannot
 * take it at once.
 *
 * All its I/O, and the signal, happen on the thread and context that
 * drive it. Input sources share one poll record for the socket, added to
 * the context of the first of them, so that libsoup's new source for
 * every message read does not wake the context up. It polls for input
 * only while an input source is alive, and goes when the guard closes:
 * whoever stops reading for good closes the stream (libsoup does), or a
 * peer's hang-up would make every poll return at once until it does. */

#include <gio/gio.h>

G_BEGIN_DECLS

#define TETHER_TYPE_GUARD_STREAM (_tether_guard_stream_get_type ())
G_DECLARE_FINAL_TYPE (TetherGuardStream, _tether_guard_stream, TETHER, GUARD_STREAM, GIOStream)

/* @base: the socket connection or TLS connection; its input and output
 * streams must be pollable. @socket: the socket underneath (for abort).
 * A limit of 0 means no limit. Counters count bytes as the base sees them
 * (plaintext over TLS). */
TetherGuardStream *_tether_guard_stream_new              (GIOStream         *base,
                                                          GSocket           *socket,
                                                          gsize              max_handshake_bytes,
                                                          gsize              max_message_size);
GIOStream         *_tether_guard_stream_get_base         (TetherGuardStream *self);
GSocket           *_tether_guard_stream_get_socket       (TetherGuardStream *self);
void               _tether_guard_stream_set_max_message_size (TetherGuardStream *self,
                                                          gsize              max_message_size);
/* Bytes are returned by later reads before anything from the base. They
 * must be bytes this guard has already returned (the tail of the client's
 * head read): they were parsed and counted then, and are neither parsed
 * nor counted again. Later pushes go in front of earlier ones. */
void               _tether_guard_stream_push_back        (TetherGuardStream *self,
                                                          const guint8      *data,
                                                          gsize              len);
guint64            _tether_guard_stream_get_bytes_read   (TetherGuardStream *self);
guint64            _tether_guard_stream_get_bytes_written (TetherGuardStream *self);
gboolean           _tether_guard_stream_is_handshake_done (TetherGuardStream *self);
/* Shuts the socket down (both ways; the descriptor stays open, so poll
 * sources never see a reused one) so that pending and later I/O ends
 * promptly: reads return end-of-file (pushed-back and unread bytes are
 * dropped), writes fail with G_IO_ERROR_BROKEN_PIPE, and the streams'
 * sources fire. Idempotent. */
void               _tether_guard_stream_abort            (TetherGuardStream *self);

G_END_DECLS
