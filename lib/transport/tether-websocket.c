/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* TetherWebsocket: see tether-websocket-private.h for what it is and why
 * it is Tether's own.
 *
 * How it reads: when the scheduler says the socket is readable, bytes go
 * into one buffer, allocated for the occasion and freed once nothing of a
 * frame is left in it (an idle connection holds none), and whole frames
 * are taken out of it in order. The guard under it has already checked
 * every frame header (sizes across fragments, reserved bits, compression,
 * control frames, opcodes) and fails the read at the first violation;
 * what it does not check is checked here. A dispatch reads at most
 * READ_BUDGET bytes, then asks to be called again, so one peer sending
 * without pause cannot keep the others waiting.
 *
 * How it writes: a message is framed into the output buffer and written at
 * once; what the socket does not take waits there, and the watch asks for
 * "writable" until it is all out. Over TLS, a write that would block is
 * retried with the same bytes first, as GnuTLS requires. */

#include "tether-websocket-private.h"

#include <string.h>

/* What one read asks for, and what one dispatch may read in all. */
#define READ_CHUNK  (16 * 1024)
#define READ_BUDGET (256 * 1024)
/* Frames up to this size are framed on the stack (send_frame()). */
#define SMALL_FRAME 4096

struct _TetherWebsocket
{
  gatomicrefcount             ref_count;
  TetherGuardStream          *guard;
  GPollableInputStream       *input;
  GPollableOutputStream      *output;
  gboolean                    client;
  char                       *protocol;
  TetherWebsocketState        state;

  TetherScheduler            *scheduler;
  TetherWatch                *watch;
  const TetherWebsocketFuncs *funcs;      /* NULL once aborted */
  gpointer                    user_data;

  GByteArray                 *in;         /* bytes not yet parsed; NULL when none */
  GByteArray                 *fragments;  /* a fragmented message so far */
  gboolean                    fragments_binary;
  GByteArray                 *out;        /* queued output; NULL when none */
  gsize                       out_pos;    /* how much of it went out */

  gboolean                    close_sent;
  gboolean                    close_received;
  gboolean                    close_after_flush;  /* end once the output is out */
  gboolean                    stream_closed;
  gboolean                    reported;   /* closed() was called */
  gushort                     close_code;
  char                       *close_reason;
  GError                     *error;
  guint64                     frames_heard;  /* frames received, pongs aside */
  gboolean                    paused;     /* the owner reads no more for now */
};

static void websocket_finish (TetherWebsocket *self, GError *error);

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

/* RFC 3629 UTF-8 (no surrogates, nothing above U+10FFFF, shortest form);
 * U+0000 is a character like any other here. */
static gboolean
utf8_valid (const guint8 *s,
            gsize         len)
{
  gsize i = 0;

  while (i < len)
    {
      guint8 c = s[i];
      guint need;
      guint32 cp;
      guint32 min;

      /* ASCII, eight bytes at a time where possible. */
      if (c < 0x80)
        {
          while (i + 8 <= len)
            {
              guint64 word;

              memcpy (&word, s + i, 8);
              if ((word & G_GUINT64_CONSTANT (0x8080808080808080)) != 0)
                break;
              i += 8;
            }
          while (i < len && s[i] < 0x80)
            i++;
          continue;
        }

      if (c >= 0xc2 && c <= 0xdf)
        need = 1, cp = c & 0x1f, min = 0x80;
      else if (c >= 0xe0 && c <= 0xef)
        need = 2, cp = c & 0x0f, min = 0x800;
      else if (c >= 0xf0 && c <= 0xf4)
        need = 3, cp = c & 0x07, min = 0x10000;
      else
        return FALSE;

      if (len - i <= need)
        return FALSE;
      for (guint k = 1; k <= need; k++)
        {
          if ((s[i + k] & 0xc0) != 0x80)
            return FALSE;
          cp = (cp << 6) | (s[i + k] & 0x3f);
        }
      if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return FALSE;
      i += need + 1;
    }

  return TRUE;
}

/* XORs @len bytes of @data with the 4-byte @mask, starting at mask byte 0. */
static void
apply_mask (guint8       *data,
            gsize         len,
            const guint8  mask[4])
{
  guint64 wide;
  gsize i = 0;

  for (guint k = 0; k < 8; k++)
    ((guint8 *) &wide)[k] = mask[k & 3];
  for (; i + 8 <= len; i += 8)
    {
      guint64 word;

      memcpy (&word, data + i, 8);
      word ^= wide;
      memcpy (data + i, &word, 8);
    }
  for (; i < len; i++)
    data[i] ^= mask[i & 3];
}

static gboolean
close_code_is_valid (gushort code)
{
  /* RFC 6455 §7.4: the registered codes an endpoint may send, and the
   * ranges for libraries and applications. */
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

/* ---------------------------------------------------------------------- */
/* Writing                                                                */

static void
update_events (TetherWebsocket *self)
{
  GIOCondition events = 0;

  if (self->watch == NULL)
    return;
  /* Paused, the socket is left out of the epoll set unless there is
   * something to write: a peer's hang-up would otherwise be reported
   * at every iteration until we read again. */
  if (self->state != TETHER_WEBSOCKET_CLOSED)
    events = (self->paused ? 0 : G_IO_IN) | (self->out != NULL ? G_IO_OUT : 0);
  _tether_watch_set_events (self->watch, events);
}

/* Writes what the socket takes now. FALSE if the connection failed. */
static gboolean
flush (TetherWebsocket *self)
{
  while (self->out != NULL && self->out_pos < self->out->len)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_pollable_output_stream_write_nonblocking (self->output,
                                                             self->out->data + self->out_pos,
                                                             self->out->len - self->out_pos,
                                                             NULL, &error);

      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              update_events (self);
              return TRUE;
            }
          websocket_finish (self, g_steal_pointer (&error));
          return FALSE;
        }
      self->out_pos += n;
    }

  g_clear_pointer (&self->out, g_byte_array_unref);
  self->out_pos = 0;
  update_events (self);
  if (self->close_after_flush)
    websocket_finish (self, NULL);
  return TRUE;
}

/* A frame's header for @len bytes of @opcode (with a fresh mask key when
 * we are the client); its length. */
static gsize
frame_header (TetherWebsocket *self,
              guint8           opcode,
              gsize            len,
              guint8           header[14])
{
  gsize header_len = 2;

  header[0] = 0x80 | opcode;
  if (len < 126)
    header[1] = len;
  else if (len <= G_MAXUINT16)
    {
      header[1] = 126;
      header[2] = len >> 8;
      header[3] = len & 0xff;
      header_len = 4;
    }
  else
    {
      header[1] = 127;
      for (guint i = 0; i < 8; i++)
        header[2 + i] = (guint64) len >> (56 - 8 * i);
      header_len = 10;
    }
  if (self->client)
    {
      guint32 key = g_random_int ();

      header[1] |= 0x80;
      memcpy (header + header_len, &key, 4);
      header_len += 4;
    }
  return header_len;
}

/* Frames @len bytes of @payload into the output buffer. */
static void
queue_frame (TetherWebsocket *self,
             guint8           opcode,
             const guint8    *payload,
             gsize            len)
{
  guint8 header[14];
  gsize header_len = frame_header (self, opcode, len, header);
  guint8 *dest;

  if (self->out == NULL)
    {
      self->out = g_byte_array_sized_new (header_len + len);
      self->out_pos = 0;
    }
  else if (self->out_pos > 0 && self->out_pos >= self->out->len / 2)
    {
      /* Keep the unsent part at the front rather than growing forever. */
      g_byte_array_remove_range (self->out, 0, self->out_pos);
      self->out_pos = 0;
    }

  g_byte_array_append (self->out, header, header_len);
  g_byte_array_set_size (self->out, self->out->len + len);
  dest = self->out->data + self->out->len - len;
  if (len > 0)
    memcpy (dest, payload, len);
  if (self->client)
    apply_mask (dest, len, header + header_len - 4);
}

/* Frames and writes at once. The common case — nothing queued before it,
 * a small frame — is framed on the stack and handed to the socket
 * without touching the heap; what the socket does not take is queued. */
static void
send_frame (TetherWebsocket *self,
            guint8           opcode,
            const guint8    *payload,
            gsize            len)
{
  guint8 frame[SMALL_FRAME];
  g_autoptr(GError) error = NULL;
  gsize header_len;
  gssize n;

  if (self->out != NULL || len > sizeof frame - 14 || self->watch == NULL)
    {
      queue_frame (self, opcode, payload, len);
      flush (self);
      return;
    }

  header_len = frame_header (self, opcode, len, frame);
  if (len > 0)
    memcpy (frame + header_len, payload, len);
  if (self->client)
    apply_mask (frame + header_len, len, frame + header_len - 4);
  n = g_pollable_output_stream_write_nonblocking (self->output, frame, header_len + len, NULL, &error);
  if (n < 0 && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      websocket_finish (self, g_steal_pointer (&error));
      return;
    }
  if (n == (gssize) (header_len + len))
    {
      if (self->close_after_flush)
        websocket_finish (self, NULL);
      return;
    }
  /* The rest waits for the socket: the same bytes, as GnuTLS wants them. */
  self->out = g_byte_array_sized_new (header_len + len);
  self->out_pos = 0;
  g_byte_array_append (self->out, frame + MAX (n, 0), header_len + len - MAX (n, 0));
  update_events (self);
}

static void
queue_close (TetherWebsocket *self,
             gushort          code,
             const char      *reason)
{
  guint8 payload[125];
  gsize len = 0;

  if (code != 0 && code != TETHER_WEBSOCKET_CLOSE_NO_STATUS)
    {
      gsize reason_len = reason != NULL ? strlen (reason) : 0;

      payload[0] = code >> 8;
      payload[1] = code & 0xff;
      /* A control frame carries at most 125 bytes; cut at a character. */
      if (reason_len > sizeof payload - 2)
        {
          const char *end = g_utf8_find_prev_char (reason, reason + sizeof payload - 1);

          reason_len = end != NULL ? (gsize) (end - reason) : 0;
        }
      if (reason_len > 0)
        memcpy (payload + 2, reason, reason_len);
      len = 2 + reason_len;
    }
  self->close_sent = TRUE;
  if (self->state == TETHER_WEBSOCKET_OPEN)
    self->state = TETHER_WEBSOCKET_CLOSING;
  queue_frame (self, 0x8, payload, len);
}

gboolean
_tether_websocket_send (TetherWebsocket *self,
                        gboolean         binary,
                        const char      *data,
                        gsize            len)
{
  g_return_val_if_fail (self != NULL, FALSE);

  if (self->state != TETHER_WEBSOCKET_OPEN)
    return FALSE;
  send_frame (self, binary ? 0x2 : 0x1, (const guint8 *) data, len);
  return TRUE;
}

void
_tether_websocket_ping (TetherWebsocket *self)
{
  if (self->state != TETHER_WEBSOCKET_OPEN)
    return;
  send_frame (self, 0x9, NULL, 0);
}

void
_tether_websocket_ping_payload (TetherWebsocket *self,
                                const char      *payload)
{
  g_return_if_fail (strlen (payload) <= 125);

  if (self->state != TETHER_WEBSOCKET_OPEN)
    return;
  send_frame (self, 0x9, (const guint8 *) payload, strlen (payload));
}

gsize
_tether_websocket_get_unsent (TetherWebsocket *self)
{
  return self->out != NULL ? self->out->len - self->out_pos : 0;
}

/* ---------------------------------------------------------------------- */
/* The end                                                                */

static void
close_stream (TetherWebsocket *self)
{
  if (self->stream_closed)
    return;
  self->stream_closed = TRUE;
  /* The watch goes before its fd does. */
  if (self->watch != NULL)
    _tether_watch_set_events (self->watch, 0);
  /* Never blocks: the guard gives TLS's close_notify up rather than wait. */
  g_io_stream_close (G_IO_STREAM (self->guard), NULL, NULL);
  g_clear_pointer (&self->in, g_byte_array_unref);
  g_clear_pointer (&self->fragments, g_byte_array_unref);
  g_clear_pointer (&self->out, g_byte_array_unref);
}

/* The connection is over (@error: why, if it failed). The owner hears of
 * it from the next dispatch, never from inside a call it made. */
static void
websocket_finish (TetherWebsocket *self,
                  GError          *error)
{
  if (self->state == TETHER_WEBSOCKET_CLOSED)
    {
      g_clear_error (&error);
      return;
    }
  self->state = TETHER_WEBSOCKET_CLOSED;
  if (self->error == NULL)
    self->error = error;
  else
    g_clear_error (&error);
  close_stream (self);
  if (self->watch != NULL)
    _tether_watch_again (self->watch);
}

/* The peer broke the protocol: tell it why (best effort: only what the
 * socket takes now), then hang up without waiting for an answer. */
static void
fail_protocol (TetherWebsocket *self,
               gushort          code,
               const char      *what)
{
  GError *error = g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               "WebSocket protocol error from the peer: %s", what);

  if (!self->close_sent && self->state != TETHER_WEBSOCKET_CLOSED)
    {
      queue_close (self, code, NULL);
      if (self->out != NULL)
        g_pollable_output_stream_write_nonblocking (self->output, self->out->data + self->out_pos,
                                                    self->out->len - self->out_pos, NULL, NULL);
    }
  websocket_finish (self, error);
}

void
_tether_websocket_close (TetherWebsocket *self,
                         gushort          code,
                         const char      *reason)
{
  g_return_if_fail (self != NULL);

  if (self->state != TETHER_WEBSOCKET_OPEN)
    return;
  queue_close (self, code, reason);
  flush (self);
}

void
_tether_websocket_abort (TetherWebsocket *self)
{
  if (self == NULL)
    return;
  self->funcs = NULL;
  self->user_data = NULL;
  if (self->state != TETHER_WEBSOCKET_CLOSED)
    {
      self->state = TETHER_WEBSOCKET_CLOSED;
      _tether_guard_stream_abort (self->guard);
      close_stream (self);
    }
  g_clear_pointer (&self->watch, _tether_watch_free);
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                */

static void
deliver (TetherWebsocket *self,
         gboolean         binary,
         const guint8    *data,
         gsize            len)
{
  g_autoptr(GBytes) message = NULL;

  if (!binary && !utf8_valid (data, len))
    {
      fail_protocol (self, TETHER_WEBSOCKET_CLOSE_BAD_DATA, "a text message that is not UTF-8");
      return;
    }
  /* After a close frame either way, data is no longer wanted. */
  if (self->funcs == NULL || self->close_sent || self->close_received)
    return;
  {
    /* NUL-terminated past its length, as a convenience for text. */
    guint8 *copy = g_malloc (len + 1);

    memcpy (copy, data, len);
    copy[len] = '\0';
    message = g_bytes_new_take (copy, len);
  }
  self->funcs->message (self->user_data, binary, message);
}

static void
receive_close (TetherWebsocket *self,
               const guint8    *payload,
               gsize            len)
{
  gushort code = TETHER_WEBSOCKET_CLOSE_NO_STATUS;

  if (len == 1)
    {
      fail_protocol (self, TETHER_WEBSOCKET_CLOSE_PROTOCOL_ERROR, "a close frame of one byte");
      return;
    }
  if (len >= 2)
    {
      code = (payload[0] << 8) | payload[1];
      if (!close_code_is_valid (code))
        {
          fail_protocol (self, TETHER_WEBSOCKET_CLOSE_PROTOCOL_ERROR, "an invalid close code");
          return;
        }
      if (!utf8_valid (payload + 2, len - 2))
        {
          fail_protocol (self, TETHER_WEBSOCKET_CLOSE_PROTOCOL_ERROR, "a close reason that is not UTF-8");
          return;
        }
      g_free (self->close_reason);
      self->close_reason = len > 2 ? g_strndup ((const char *) payload + 2, len - 2) : NULL;
    }
  self->close_received = TRUE;
  self->close_code = code;

  if (self->close_sent)
    {
      /* The answer to ours: both sides are done. */
      websocket_finish (self, NULL);
      return;
    }

  /* Answer with the same code, then hang up once it is out. */
  queue_close (self, code, NULL);
  self->close_after_flush = TRUE;
  flush (self);
}

static void
receive_control (TetherWebsocket *self,
                 guint8           opcode,
                 guint8          *payload,
                 gsize            len)
{
  switch (opcode)
    {
    case 0x8:
      receive_close (self, payload, len);
      break;
    case 0x9:
      /* Answered at once, with the same bytes; not after our close. */
      if (!self->close_sent)
        {
          send_frame (self, 0xA, payload, len);
        }
      break;
    default:
      /* A pong: the bytes it brought are all the idle check needs,
       * unless the owner asked for them. */
      if (self->funcs != NULL && self->funcs->pong != NULL)
        self->funcs->pong (self->user_data, payload, len);
      break;
    }
}

/* Handles the whole frames at the front of @data (unmasking them in
 * place); returns how many bytes they took. Stops early when the
 * connection ends or the owner stops reading. */
static gsize
process_frames (TetherWebsocket *self,
                guint8          *data,
                gsize            data_len)
{
  gsize pos = 0;

  while (self->state != TETHER_WEBSOCKET_CLOSED && self->funcs != NULL && !self->paused)
    {
      guint8 *p = data + pos;
      gsize avail = data_len - pos;
      gboolean fin, masked;
      guint8 opcode;
      guint len7;
      gsize header_len;
      guint64 len;

      if (avail < 2)
        break;
      fin = (p[0] & 0x80) != 0;
      opcode = p[0] & 0x0f;
      masked = (p[1] & 0x80) != 0;
      len7 = p[1] & 0x7f;
      header_len = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0);
      if (avail < header_len)
        break;

      /* The guard has refused reserved bits, unknown opcodes and
       * oversized or fragmented control frames already; these are the
       * rules it does not know. */
      if (masked == self->client)
        {
          fail_protocol (self, TETHER_WEBSOCKET_CLOSE_PROTOCOL_ERROR,
                         self->client ? "a masked frame from the server"
                                      : "an unmasked frame from the client");
          return pos;
        }
      if (len7 == 126)
        {
          len = (p[2] << 8) | p[3];
          if (len < 126)
            {
              fail_protocol (self, TETHER_WEBSOCKET_CLOSE_PROTOCOL_ERROR, "a length not in its shortest form");
              return pos;
            }
        }
      else if (len7 == 127)
        {
          len = 0;
          for (guint i = 2; i < 10; i++)
            len = (len << 8) | p[i];
          if (len <= G_MAXUINT16 || (len >> 63) != 0)
            {
              fail_protocol (self, TETHER_WEBSOCKET_CLOSE_PROTOCOL_ERROR, "a length not in its shortest form");
              return pos;
            }
        }
      else
        len = len7;

      if (len > avail - header_len)
        {
          /* The guard bounds a frame by max-message-size: waiting for the
           * rest holds no more than that. */
          break;
        }

      {
        guint8 *payload = p + header_len;

        if (masked)
          apply_mask (payload, len, payload - 4);
        pos += header_len + len;
        if (opcode != 0xA)
          self->frames_heard++;

        if ((opcode & 0x8) != 0)
          receive_control (self, opcode, payload, len);
        else if (opcode == 0x0)
          {
            if (self->fragments == NULL)
              {
                fail_protocol (self, TETHER_WEBSOCKET_CLOSE_PROTOCOL_ERROR, "a continuation without a message");
                return pos;
              }
            g_byte_array_append (self->fragments, payload, len);
            if (fin)
              {
                g_autoptr(GByteArray) whole = g_steal_pointer (&self->fragments);

                deliver (self, self->fragments_binary, whole->data, whole->len);
              }
          }
        else if (self->fragments != NULL)
          {
            fail_protocol (self, TETHER_WEBSOCKET_CLOSE_PROTOCOL_ERROR, "a new message inside a fragmented one");
            return pos;
          }
        else if (fin)
          deliver (self, opcode == 0x2, payload, len);
        else
          {
            self->fragments = g_byte_array_sized_new (len);
            self->fragments_binary = opcode == 0x2;
            g_byte_array_append (self->fragments, payload, len);
          }
      }
    }

  return pos;
}

/* Handles the frames at the front of self->in; keeps what is left of a
 * frame for the next read. */
static void
process_input (TetherWebsocket *self)
{
  gsize pos;

  if (self->in == NULL)
    return;
  pos = process_frames (self, self->in->data, self->in->len);
  /* A callback may have ended the connection, and the buffer with it. */
  if (self->in == NULL)
    return;
  if (pos >= self->in->len)
    g_clear_pointer (&self->in, g_byte_array_unref);
  else if (pos > 0)
    g_byte_array_remove_range (self->in, 0, pos);
}

/* Reads until the socket has nothing more, or this dispatch's share is
 * used up. */
static void
read_input (TetherWebsocket *self)
{
  gsize total = 0;

  while (self->state != TETHER_WEBSOCKET_CLOSED && self->funcs != NULL && !self->paused)
    {
      g_autoptr(GError) error = NULL;
      gsize len;
      gssize n;

      if (total >= READ_BUDGET)
        {
          /* TLS may hold more than the socket shows: come back anyway. */
          _tether_watch_again (self->watch);
          return;
        }

      if (self->in == NULL)
        {
          /* Nothing left from before: read onto the stack, handle the
           * whole frames there, and keep only an unfinished one. */
          guint8 chunk[READ_CHUNK];

          n = g_pollable_input_stream_read_nonblocking (self->input, chunk, sizeof chunk, NULL, &error);
          if (n > 0)
            {
              gsize used = process_frames (self, chunk, n);

              total += n;
              if (used < (gsize) n && self->state != TETHER_WEBSOCKET_CLOSED)
                {
                  self->in = g_byte_array_sized_new (MAX ((gsize) n - used, READ_CHUNK));
                  g_byte_array_append (self->in, chunk + used, n - used);
                }
              continue;
            }
        }
      else
        {
          len = self->in->len;
          g_byte_array_set_size (self->in, len + READ_CHUNK);
          n = g_pollable_input_stream_read_nonblocking (self->input, self->in->data + len, READ_CHUNK,
                                                        NULL, &error);
          g_byte_array_set_size (self->in, len + MAX (n, 0));
        }

      if (n < 0)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            websocket_finish (self, g_steal_pointer (&error));
          return;
        }
      if (n == 0)
        {
          /* After a close exchange this is how it ends; otherwise the
           * peer just went away. */
          websocket_finish (self, self->close_received ? NULL
                                  : g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                                         "The peer hung up without a close frame"));
          return;
        }
      total += n;
      process_input (self);
    }
}

static void
on_watch (TetherWatch  *watch,
          GIOCondition  condition,
          gpointer      user_data)
{
  TetherWebsocket *self = _tether_websocket_ref (user_data);

  if ((condition & G_IO_OUT) != 0 && self->state != TETHER_WEBSOCKET_CLOSED)
    flush (self);
  if (self->state != TETHER_WEBSOCKET_CLOSED && !self->paused)
    {
      /* What an earlier read left unparsed goes first. */
      process_input (self);
      read_input (self);
    }

  if (self->state == TETHER_WEBSOCKET_CLOSED && !self->reported && self->funcs != NULL)
    {
      self->reported = TRUE;
      g_clear_pointer (&self->watch, _tether_watch_free);
      self->funcs->closed (self->user_data);
    }
  _tether_websocket_unref (self);
}

/* ---------------------------------------------------------------------- */
/* Life                                                                   */

TetherWebsocket *
_tether_websocket_new (TetherGuardStream *guard,
                       gboolean           client,
                       const char        *protocol)
{
  TetherWebsocket *self = g_new0 (TetherWebsocket, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->guard = g_object_ref (guard);
  self->input = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (guard)));
  self->output = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (G_IO_STREAM (guard)));
  self->client = client;
  self->protocol = g_strdup (protocol);
  self->state = TETHER_WEBSOCKET_OPEN;

  return self;
}

void
_tether_websocket_start (TetherWebsocket            *self,
                         TetherScheduler            *scheduler,
                         const TetherWebsocketFuncs *funcs,
                         gpointer                    user_data)
{
  GSocket *socket;

  g_return_if_fail (self->scheduler == NULL);

  self->scheduler = _tether_scheduler_ref (scheduler);
  self->funcs = funcs;
  self->user_data = user_data;
  if (self->state == TETHER_WEBSOCKET_CLOSED)
    return;
  socket = _tether_guard_stream_get_socket (self->guard);
  self->watch = _tether_scheduler_watch (scheduler, g_socket_get_fd (socket), 0, on_watch, self);
  update_events (self);
  /* Whatever came with the upgrade is read now, not when more arrives. */
  _tether_watch_again (self->watch);
}

TetherWebsocket *
_tether_websocket_ref (TetherWebsocket *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
_tether_websocket_unref (TetherWebsocket *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  _tether_websocket_abort (self);
  g_clear_pointer (&self->scheduler, _tether_scheduler_unref);
  g_clear_object (&self->guard);
  g_clear_pointer (&self->in, g_byte_array_unref);
  g_clear_pointer (&self->fragments, g_byte_array_unref);
  g_clear_pointer (&self->out, g_byte_array_unref);
  g_free (self->protocol);
  g_free (self->close_reason);
  g_clear_error (&self->error);
  g_free (self);
}

const char *
_tether_websocket_get_protocol (TetherWebsocket *self)
{
  return self->protocol;
}

TetherWebsocketState
_tether_websocket_get_state (TetherWebsocket *self)
{
  return self->state;
}

gushort
_tether_websocket_get_close_code (TetherWebsocket *self)
{
  return self->close_code;
}

const char *
_tether_websocket_get_close_reason (TetherWebsocket *self)
{
  return self->close_reason;
}

const GError *
_tether_websocket_get_error (TetherWebsocket *self)
{
  return self->error;
}

guint64
_tether_websocket_get_frames_heard (TetherWebsocket *self)
{
  return self->frames_heard;
}

void
_tether_websocket_set_reading (TetherWebsocket *self,
                               gboolean         reading)
{
  if (self->paused == !reading)
    return;
  self->paused = !reading;
  update_events (self);
  /* Frames already read wait in the buffer: look at them at once. */
  if (reading && self->watch != NULL)
    _tether_watch_again (self->watch);
}

gboolean
_tether_websocket_get_reading (TetherWebsocket *self)
{
  return !self->paused;
}
