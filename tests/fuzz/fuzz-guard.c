/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Fuzz target: TetherGuardStream's input parser, over a real socket pair.
 *
 * Input: one byte of settings, then the bytes a peer sends (normally an
 * HTTP head, then WebSocket frames):
 *
 *   bits 0-2  size of each read: 1, 2, 3, 5, 13, 64, 512 or 4096 bytes
 *   bit 3     non-blocking reads (pollable) instead of blocking ones
 *   bit 4     push back, after each read from the base, the second half of
 *             what it returned (as the client does with the tail of its
 *             head read), 32 times at most
 *   bit 5     no limits instead of handshake 512 / message 4096
 *   bits 6-7  abort the guard after read 1, 3 or 8 (0: never)
 *
 * The bytes are written to one end of the pair while the guard reads the
 * other end until end-of-file or an error. Besides "no crash, no read
 * past the buffer, no endless loop", the outcome is checked against a
 * model written from the contract in tether-guard-stream-private.h rather
 * than from the code:
 *
 *  - the guard is transparent: what its reads return is exactly the
 *    input, in order (push-backs included), and its byte counter counts
 *    each input byte once;
 *  - a violation is found at the byte the model says (the end of the
 *    offending frame header, or the byte that takes the head past its
 *    cap): no byte from there on is ever returned, the read fails with
 *    G_IO_ERROR_MESSAGE_TOO_LARGE for sizes and G_IO_ERROR_INVALID_DATA
 *    otherwise, the "violation" signal comes once with the matching
 *    TetherError, and every later read fails the same way;
 *  - without a violation (or after an abort) the reads end with
 *    end-of-file, and the handshake is done exactly when the input holds
 *    a "\r\n\r\n";
 *  - a non-blocking read says "would block" only while the peer still
 *    has bytes to write, or once straight after a read that gave less
 *    than asked (the guard then spares the socket a read; see
 *    guard_read()), never twice in a row with everything written. */

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <gio/gio.h>

#include "tether-error.h"
#include "tether-guard-stream-private.h"

#define HANDSHAKE_CAP 512
#define MESSAGE_CAP 4096
#define MAX_PUSH_BACKS 32

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);

static const gsize read_sizes[] = { 1, 2, 3, 5, 13, 64, 512, 4096 };
static const guint abort_after_reads[] = { 0, 1, 3, 8 };

/* ------------------------------------------------------------------ */
/* Model                                                               */
/* ------------------------------------------------------------------ */

typedef struct
{
  gssize violation_at;   /* offset of the byte that shows it, or -1 */
  TetherError code;
  gboolean handshake_done;
  gsize head_end;        /* offset just past "\r\n\r\n" */
} Expected;

/* The head ends at the first "\r\n\r\n"; a head whose end is not within
 * the first @max_head bytes is refused at byte @max_head. Then frames:
 * a header is judged when its last byte arrives. */
static void
model (const guint8 *data,
       gsize         len,
       gsize         max_head,
       gsize         max_message,
       Expected     *out)
{
  const guint8 *end = NULL;
  gsize pos;
  gboolean in_message = FALSE;
  guint64 message_size = 0;

  out->violation_at = -1;
  out->code = 0;
  out->handshake_done = FALSE;
  out->head_end = 0;

  for (gsize i = 0; i + 4 <= len && end == NULL; i++)
    if (memcmp (data + i, "\r\n\r\n", 4) == 0)
      end = data + i;

  if (end == NULL || (max_head != 0 && (gsize) (end + 4 - data) > max_head))
    {
      if (max_head != 0 && len >= max_head)
        {
          out->violation_at = max_head - 1;
          out->code = TETHER_ERROR_MESSAGE_TOO_LARGE;
        }
      return;
    }

  out->handshake_done = TRUE;
  out->head_end = pos = end + 4 - data;

  while (pos < len)
    {
      gsize header_size;
      guint8 b0, b1;
      guint64 payload;
      guint opcode;
      gboolean fin, control;
      const char *invalid = NULL;

      if (len - pos < 2)
        return;
      b0 = data[pos];
      b1 = data[pos + 1];
      header_size = 2 + ((b1 & 0x7f) == 126 ? 2 : (b1 & 0x7f) == 127 ? 8 : 0) +
                    ((b1 & 0x80) ? 4 : 0);
      if (len - pos < header_size)
        return;

      if ((b1 & 0x7f) == 126)
        payload = ((guint64) data[pos + 2] << 8) | data[pos + 3];
      else if ((b1 & 0x7f) == 127)
        {
          payload = 0;
          for (int k = 0; k < 8; k++)
            payload = (payload << 8) | data[pos + 2 + k];
        }
      else
        payload = b1 & 0x7f;

      fin = (b0 & 0x80) != 0;
      opcode = b0 & 0x0f;
      control = opcode >= 8;

      /* Protocol faults first (RFC 6455 §5.2, §5.4, §5.5), sizes last. */
      if (b0 & 0x70)
        invalid = "reserved or compression bits";
      else if (payload >> 63)
        invalid = "64-bit length with the top bit set";
      else if (opcode != 0 && opcode != 1 && opcode != 2 &&
               opcode != 8 && opcode != 9 && opcode != 10)
        invalid = "reserved opcode";
      else if (opcode == 0 && !in_message)
        invalid = "continuation outside a message";
      else if ((opcode == 1 || opcode == 2) && in_message)
        invalid = "new message inside a message";
      else if (control && (!fin || payload > 125))
        invalid = "bad control frame";

      if (invalid != NULL)
        {
          out->violation_at = pos + header_size - 1;
          out->code = TETHER_ERROR_INVALID_MESSAGE;
          return;
        }

      if (!control)
        {
          if (opcode == 0)
            message_size = payload > G_MAXUINT64 - message_size ? G_MAXUINT64
                                                                  : message_size + payload;
          else
            message_size = payload;
          if (max_message != 0 && message_size > max_message)
            {
              out->violation_at = pos + header_size - 1;
              out->code = TETHER_ERROR_MESSAGE_TOO_LARGE;
              return;
            }
          in_message = !fin;
        }

      pos += header_size;
      if (payload >= len - pos)
        return;
      pos += payload;
    }
}

/* ------------------------------------------------------------------ */
/* Harness                                                             */
/* ------------------------------------------------------------------ */

typedef struct
{
  guint violations;
  guint code;
} Signals;

static void
on_violation (TetherGuardStream *guard,
              guint              code,
              const char        *reason,
              gpointer           user_data)
{
  Signals *s = user_data;

  g_assert_nonnull (reason);
  g_assert_true (g_utf8_validate (reason, -1, NULL));
  s->violations++;
  s->code = code;
}

static void
socket_pair (GSocketConnection **a,
             GSocketConnection **b)
{
  g_autoptr(GSocket) sa = NULL;
  g_autoptr(GSocket) sb = NULL;
  int fds[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  sa = g_socket_new_from_fd (fds[0], NULL);
  sb = g_socket_new_from_fd (fds[1], NULL);
  g_assert_nonnull (sa);
  g_assert_nonnull (sb);
  *a = g_socket_connection_factory_create_connection (sa);
  *b = g_socket_connection_factory_create_connection (sb);
}

/* Writes what the socket takes without blocking; shuts the writing side
 * down once everything is in. */
static void
peer_push (GSocket      *peer,
           const guint8 *data,
           gsize         len,
           gsize        *written,
           gboolean     *shut)
{
  while (*written < len)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send_with_blocking (peer, (const char *) data + *written,
                                              len - *written, FALSE, NULL, &error);

      if (n < 0)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          return;
        }
      *written += n;
    }
  if (!*shut)
    {
      g_assert_true (g_socket_shutdown (peer, FALSE, TRUE, NULL));
      *shut = TRUE;
    }
}

static gssize
guard_read (TetherGuardStream *guard,
            guint8            *buf,
            gsize              count,
            gboolean           nonblocking,
            GError           **error)
{
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (guard));

  if (nonblocking)
    return g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (input),
                                                     buf, count, NULL, error);
  return g_input_stream_read (input, buf, count, NULL, error);
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *buf = NULL;
  GSocketConnection *local, *peer;
  GSocket *peer_socket;
  TetherGuardStream *guard;
  Signals signals = { 0, 0 };
  Expected expected;
  guint8 settings;
  const guint8 *input;
  gsize len, read_size, max_head, max_message;
  gboolean nonblocking, push_back;
  guint abort_after, n_reads = 0, n_push_backs = 0;
  gsize written = 0, pos = 0, high_water = 0;
  gboolean shut = FALSE, aborted = FALSE, would_block_with_all_written = FALSE;
  gssize r = 0;
  guint64 spins = 0;

  if (size == 0)
    return 0;

  settings = data[0];
  input = data + 1;
  len = size - 1;
  read_size = read_sizes[settings & 0x7];
  nonblocking = (settings & 0x08) != 0;
  push_back = (settings & 0x10) != 0;
  max_head = (settings & 0x20) ? 0 : HANDSHAKE_CAP;
  max_message = (settings & 0x20) ? 0 : MESSAGE_CAP;
  abort_after = abort_after_reads[settings >> 6];

  model (input, len, max_head, max_message, &expected);

  socket_pair (&local, &peer);
  peer_socket = g_socket_connection_get_socket (peer);
  guard = _tether_guard_stream_new (G_IO_STREAM (local), g_socket_connection_get_socket (local),
                                    max_head, max_message);
  g_assert_nonnull (guard);
  g_signal_connect (guard, "violation", G_CALLBACK (on_violation), &signals);
  g_object_add_weak_pointer (G_OBJECT (guard), (gpointer *) &guard);

  /* Exactly the size asked for: a guard that writes past @count trips
   * AddressSanitizer. */
  buf = g_malloc (read_size);

  for (;;)
    {
      gboolean from_push_back = pos < high_water;

      /* Every pass either moves bytes or ends the loop; a guard that
       * keeps returning nothing would spin here. */
      g_assert_cmpuint (++spins, <, 8 * (guint64) len + 1000);

      peer_push (peer_socket, input, len, &written, &shut);

      g_clear_error (&error);
      r = guard_read (guard, buf, read_size, nonblocking, &error);
      if (r < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          /* Only while the peer still has something to write, or once
           * after a short read. */
          if (shut && written == len && high_water == len)
            {
              g_assert_false (would_block_with_all_written);
              would_block_with_all_written = TRUE;
            }
          continue;
        }
      would_block_with_all_written = FALSE;
      if (r <= 0)
        break;

      /* Transparent: the next bytes of the input, nothing else. */
      g_assert_cmpuint ((gsize) r, <=, read_size);
      g_assert_cmpuint (pos + r, <=, len);
      g_assert_true (memcmp (buf, input + pos, r) == 0);
      if (from_push_back)
        g_assert_cmpuint (pos + r, <=, high_water);
      pos += r;
      high_water = MAX (high_water, pos);
      g_assert_cmpuint (_tether_guard_stream_get_bytes_read (guard), ==, high_water);

      /* Nothing at or after the violating byte ever comes out. */
      if (expected.violation_at >= 0)
        g_assert_cmpint ((gssize) pos, <=, expected.violation_at);

      if (push_back && !from_push_back && r >= 2 && n_push_backs < MAX_PUSH_BACKS)
        {
          gsize back = r / 2;

          _tether_guard_stream_push_back (guard, buf + r - back, back);
          pos -= back;
          n_push_backs++;
        }

      if (++n_reads == abort_after)
        {
          _tether_guard_stream_abort (guard);
          aborted = TRUE;
        }
    }

  if (r < 0)
    {
      int io_code = expected.code == TETHER_ERROR_MESSAGE_TOO_LARGE
                      ? G_IO_ERROR_MESSAGE_TOO_LARGE : G_IO_ERROR_INVALID_DATA;

      /* A violation, and the one the model expects. */
      g_assert_cmpint (expected.violation_at, >=, 0);
      g_assert_false (aborted);
      g_assert_cmpuint (signals.violations, ==, 1);
      g_assert_cmpuint (signals.code, ==, (guint) expected.code);
      g_assert_error (error, G_IO_ERROR, io_code);
      g_assert_cmpuint (_tether_guard_stream_get_bytes_read (guard), >,
                        (guint64) expected.violation_at);
      g_assert_cmpint (_tether_guard_stream_is_handshake_done (guard), ==,
                       (gssize) expected.head_end <= expected.violation_at &&
                       expected.handshake_done);

      /* It sticks, and is not signalled again. */
      g_clear_error (&error);
      g_assert_cmpint (guard_read (guard, buf, read_size, !nonblocking, &error), ==, -1);
      g_assert_error (error, G_IO_ERROR, io_code);
      g_assert_cmpuint (signals.violations, ==, 1);
    }
  else if (aborted)
    {
      /* Read after the abort: end-of-file, before or instead of anything
       * the model would have found later. */
      g_assert_no_error (error);
      g_assert_cmpuint (signals.violations, ==, 0);
      if (expected.violation_at >= 0)
        g_assert_cmpint ((gssize) high_water, <=, expected.violation_at);
    }
  else
    {
      /* End-of-file: everything came through. */
      g_assert_no_error (error);
      g_assert_cmpint (expected.violation_at, ==, -1);
      g_assert_cmpuint (signals.violations, ==, 0);
      g_assert_cmpuint (pos, ==, len);
      g_assert_cmpuint (_tether_guard_stream_get_bytes_read (guard), ==, len);
      g_assert_cmpint (_tether_guard_stream_is_handshake_done (guard), ==,
                       expected.handshake_done);
    }

  /* Closing the guard closes the base; nothing keeps it alive. */
  g_assert_true (g_io_stream_close (G_IO_STREAM (guard), NULL, NULL));
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (local)));
  g_object_unref (guard);
  g_assert_null (guard);
  g_object_unref (local);
  g_object_unref (peer);

  return 0;
}
