/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* TetherGuardStream: see tether-guard-stream-private.h for what it guards.
 *
 * How it does it:
 *
 *  - The parser runs on bytes as they come out of the base stream, in
 *    order, and only there. Pushed-back bytes are bytes that already came
 *    out of this guard (the client's head reader read them), so they were
 *    parsed then; they are served again as they are and never re-parsed,
 *    which is what keeps a fragment from being counted twice.
 *  - The input and output streams are thin pollable wrappers around the
 *    base streams. Their sources are the base stream's source plus a check
 *    run at every main loop iteration, so that a source also fires while
 *    pushed-back bytes, a violation or an abort are waiting to be seen:
 *    libsoup only reads when its source fires.
 *  - GInputStream and GOutputStream already run read_async and write_async
 *    on the pollable interface when can_poll is TRUE (GLib 2.74); only the
 *    close_async implementations, which GIO runs in a worker thread, are
 *    replaced. Nothing here ever uses a thread.
 *  - Abort shuts the socket down rather than closing it: libsoup's poll
 *    sources may still hold the file descriptor, and a closed one could be
 *    reused under them. The shutdown wakes those sources; reads then return
 *    end-of-file and writes fail at once.
 *
 * Threading: all I/O on the guard, and so the "violation" signal, happens
 * on the thread and main context of whoever drives it (libsoup, on the
 * connection's context). Its one poll record of its own goes on the
 * context of the first input source that needs it. */

#include "tether-guard-stream-private.h"

#include <errno.h>
#include <string.h>

#include "tether-error.h"

/* 2 bytes, 8 of extended length, 4 of mask key. */
#define MAX_FRAME_HEADER 14

#define TETHER_TYPE_GUARD_INPUT_STREAM (_tether_guard_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (TetherGuardInputStream, _tether_guard_input_stream,
                      TETHER, GUARD_INPUT_STREAM, GInputStream)

#define TETHER_TYPE_GUARD_OUTPUT_STREAM (_tether_guard_output_stream_get_type ())
G_DECLARE_FINAL_TYPE (TetherGuardOutputStream, _tether_guard_output_stream,
                      TETHER, GUARD_OUTPUT_STREAM, GOutputStream)

struct _TetherGuardStream
{
  GIOStream parent_instance;

  GIOStream *base;
  GSocket *socket;
  gboolean plain;                     /* base is the socket's own connection (no TLS) */
  gboolean drained;                   /* TLS: GnuTLS holds nothing to read (see guard_read) */
  gboolean short_read;                /* the base's last read gave less than asked */
  GInputStream *base_input;           /* owned by base */
  GOutputStream *base_output;         /* owned by base */
  TetherGuardInputStream *input;
  TetherGuardOutputStream *output;

  gsize max_handshake_bytes;          /* 0: no limit */
  gsize max_message_size;             /* 0: no limit */

  GByteArray *pushed_back;            /* NULL when empty */
  gsize pushed_back_pos;

  guint64 bytes_read;
  guint64 bytes_written;

  /* Handshake phase: how long the head is so far, and how much of
   * "\r\n\r\n" its last bytes match. */
  gsize head_len;
  guint8 head_match;
  gboolean handshake_done;

  /* Frame phase. */
  guint8 header[MAX_FRAME_HEADER];
  guint8 header_len;
  guint64 payload_left;
  gboolean in_message;
  guint64 message_size;               /* all fragments so far */

  TetherError violation_code;
  char *violation_reason;             /* set once, at the first violation */
  gboolean aborted;

  /* The socket's one poll record for input, shared by every input source
   * that polls the socket (see guard_source_new). */
  GPollFD input_poll;
  GMainContext *input_poll_context;   /* where it is registered, or NULL */
  guint input_poll_users;             /* live input sources reading it */
};

struct _TetherGuardInputStream
{
  GInputStream parent_instance;

  /* Unowned: the guard owns this stream, and clears the pointer when it is
   * disposed, so a stream that outlives its guard fails cleanly. */
  TetherGuardStream *guard;
};

struct _TetherGuardOutputStream
{
  GOutputStream parent_instance;

  TetherGuardStream *guard;           /* unowned, as above */
};

enum {
  SIGNAL_VIOLATION,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (TetherGuardStream, _tether_guard_stream, G_TYPE_IO_STREAM)

/* ------------------------------------------------------------------ */
/* Parser                                                              */
/* ------------------------------------------------------------------ */

static gboolean G_GNUC_PRINTF (3, 4)
guard_violation (TetherGuardStream *self,
                 TetherError        code,
                 const char        *format,
                 ...)
{
  va_list args;

  g_assert (self->violation_reason == NULL);

  self->violation_code = code;
  va_start (args, format);
  self->violation_reason = g_strdup_vprintf (format, args);
  va_end (args);

  return FALSE;
}

static guint
frame_header_size (guint8 byte1)
{
  guint len7 = byte1 & 0x7f;
  guint size = 2;

  if (len7 == 126)
    size += 2;
  else if (len7 == 127)
    size += 8;
  if ((byte1 & 0x80) != 0)
    size += 4;

  return size;
}

/* Checks one complete frame header and starts skipping its payload. */
static gboolean
guard_frame_header (TetherGuardStream *self)
{
  const guint8 *h = self->header;
  gboolean fin = (h[0] & 0x80) != 0;
  guint opcode = h[0] & 0x0f;
  guint len7 = h[1] & 0x7f;
  guint64 len;

  if ((h[0] & 0x40) != 0)
    return guard_violation (self, TETHER_ERROR_INVALID_MESSAGE,
                            "compressed frame refused "
                            "(permessage-deflate is never negotiated)");
  if ((h[0] & 0x30) != 0)
    return guard_violation (self, TETHER_ERROR_INVALID_MESSAGE,
                            "reserved bits RSV2/RSV3 set");

  if (len7 == 126)
    {
      len = ((guint64) h[2] << 8) | h[3];
    }
  else if (len7 == 127)
    {
      len = 0;
      for (guint i = 2; i < 10; i++)
        len = (len << 8) | h[i];
      if ((len >> 63) != 0)
        return guard_violation (self, TETHER_ERROR_INVALID_MESSAGE,
                                "frame length with the most significant bit set");
    }
  else
    {
      len = len7;
    }

  switch (opcode)
    {
    case 0x0:
      if (!self->in_message)
        return guard_violation (self, TETHER_ERROR_INVALID_MESSAGE,
                                "continuation frame without a message in progress");
      /* Saturate: with no size limit, a long enough stream of fragments
       * could otherwise wrap around. */
      if (len > G_MAXUINT64 - self->message_size)
        self->message_size = G_MAXUINT64;
      else
        self->message_size += len;
      break;

    case 0x1:
    case 0x2:
      if (self->in_message)
        return guard_violation (self, TETHER_ERROR_INVALID_MESSAGE,
                                "new message before the previous one finished");
      self->message_size = len;
      break;

    case 0x8:
    case 0x9:
    case 0xA:
      if (!fin)
        return guard_violation (self, TETHER_ERROR_INVALID_MESSAGE,
                                "fragmented control frame");
      if (len > 125)
        return guard_violation (self, TETHER_ERROR_INVALID_MESSAGE,
                                "control frame longer than 125 bytes");
      break;

    default:
      return guard_violation (self, TETHER_ERROR_INVALID_MESSAGE,
                              "reserved opcode 0x%X", opcode);
    }

  /* Control frames may come between fragments and count for nothing. The
   * size is checked on the header, so an oversize payload is never waited
   * for. */
  if ((opcode & 0x8) == 0)
    {
      if (self->max_message_size != 0 &&
          self->message_size > self->max_message_size)
        return guard_violation (self, TETHER_ERROR_MESSAGE_TOO_LARGE,
                                "message larger than %" G_GSIZE_FORMAT " bytes",
                                self->max_message_size);
      self->in_message = !fin;
    }

  self->payload_left = len;

  return TRUE;
}

/* Runs on every byte read from the base, once. Returns FALSE at the first
 * violation; the rest of @data is then not looked at. */
static gboolean
guard_scan (TetherGuardStream *self,
            const guint8      *data,
            gsize              len)
{
  gsize i = 0;

  while (i < len && !self->handshake_done)
    {
      guint8 c = data[i++];

      self->head_len++;
      if (c == '\r')
        self->head_match = self->head_match == 2 ? 3 : 1;
      else if (c == '\n' && (self->head_match == 1 || self->head_match == 3))
        self->head_match++;
      else
        self->head_match = 0;

      if (self->head_match == 4)
        self->handshake_done = TRUE;
      else if (self->max_handshake_bytes != 0 &&
               self->head_len >= self->max_handshake_bytes)
        /* Without its end, the head can only grow past the limit. */
        return guard_violation (self, TETHER_ERROR_MESSAGE_TOO_LARGE,
                                "HTTP handshake larger than %" G_GSIZE_FORMAT " bytes",
                                self->max_handshake_bytes);
    }

  while (i < len)
    {
      if (self->payload_left > 0)
        {
          gsize skip = (gsize) MIN (self->payload_left, (guint64) (len - i));

          self->payload_left -= skip;
          i += skip;
          continue;
        }

      self->header[self->header_len++] = data[i++];
      if (self->header_len >= 2 &&
          self->header_len == frame_header_size (self->header[1]))
        {
          self->header_len = 0;
          if (!guard_frame_header (self))
            return FALSE;
        }
    }

  return TRUE;
}

/* ------------------------------------------------------------------ */
/* I/O shared by the sub-streams                                       */
/* ------------------------------------------------------------------ */

static gssize
closed_error (GError **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                       "Stream is already closed");
  return -1;
}

static gssize
violation_error (TetherGuardStream *self,
                 GError           **error)
{
  int code = G_IO_ERROR_INVALID_DATA;

  if (self->violation_code == TETHER_ERROR_MESSAGE_TOO_LARGE)
    code = G_IO_ERROR_MESSAGE_TOO_LARGE;
  g_set_error_literal (error, G_IO_ERROR, code, self->violation_reason);

  return -1;
}

/* The shared poll record is a plain record on the context, not a source:
 * a source per connection would cost every main loop iteration a
 * prepare and a check for each idle connection. It is registered on the
 * context of the first input source that runs, polls for input while
 * such a source is alive (libsoup lets its source go before it makes the
 * next one, in the same dispatch: the poll never sees the gap), and goes
 * when the socket closes, since its fd may then be reused. */
static void
input_poll_register (TetherGuardStream *self,
                     GMainContext      *context)
{
  self->input_poll.fd = g_socket_get_fd (self->socket);
  self->input_poll.revents = 0;
  self->input_poll_context = g_main_context_ref (context);
  /* Polled whatever else is ready; the sources reading it decide. */
  g_main_context_add_poll (context, &self->input_poll, G_PRIORITY_HIGH);
}

static void
input_poll_unregister (TetherGuardStream *self)
{
  if (self->input_poll_context == NULL)
    return;
  g_main_context_remove_poll (self->input_poll_context, &self->input_poll);
  g_clear_pointer (&self->input_poll_context, g_main_context_unref);
  self->input_poll.revents = 0;
}

static gssize
guard_read (TetherGuardStream *self,
            void              *buffer,
            gsize              count,
            gboolean           blocking,
            GCancellable      *cancellable,
            GError           **error)
{
  gssize n;

  if (self == NULL)
    return closed_error (error);
  if (self->violation_reason != NULL)
    return violation_error (self, error);
  if (self->aborted)
    return 0;
  if (count == 0)
    return 0;

  if (self->pushed_back != NULL)
    {
      gsize avail = self->pushed_back->len - self->pushed_back_pos;
      gsize take = MIN (count, avail);

      memcpy (buffer, self->pushed_back->data + self->pushed_back_pos, take);
      self->pushed_back_pos += take;
      if (self->pushed_back_pos == self->pushed_back->len)
        {
          g_clear_pointer (&self->pushed_back, g_byte_array_unref);
          self->pushed_back_pos = 0;
        }

      return take;
    }

  /* A read that gave less than asked left nothing behind it: a stream
   * socket had nothing more a moment ago, and GnuTLS reads the socket a
   * record at a time, exactly as long as the record, and hands a record's
   * plaintext out whole when the buffer allows. A second read straight
   * after (libsoup reads until a read would block) would only hear "would
   * block": say it without asking. The next poll says when more has come
   * (poll is level-triggered), and a new main loop iteration, or anything
   * that asks whether the stream is readable, lets the next read ask. */
  if (!blocking && self->short_read)
    {
      self->short_read = FALSE;
      self->input_poll.revents = 0;
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, g_strerror (EAGAIN));
      return -1;
    }

  /* Over a plain socket, straight to it: what GSocketInputStream does,
   * without its pending-flag and cancellable bookkeeping per read. */
  if (self->plain)
    n = g_socket_receive_with_blocking (self->socket, buffer, count, blocking, cancellable, error);
  else
    {
      GError *local_error = NULL;

      /* Over TLS: a read that would block, or gave less than asked,
       * leaves nothing GnuTLS could hand out without more bytes on the
       * socket (see guard_source_new). */
      n = g_pollable_stream_read (self->base_input, buffer, count, blocking,
                                  cancellable, &local_error);
      self->drained = (n > 0 && (gsize) n < count) ||
                      (n < 0 && g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK));
      if (local_error != NULL)
        g_propagate_error (error, local_error);
    }
  self->short_read = !blocking && n > 0 && (gsize) n < count;
  /* What the last poll said is used up: the next one says again. */
  if (n < 0)
    self->input_poll.revents = 0;
  if (n <= 0)
    return n;

  self->bytes_read += n;
  if (guard_scan (self, buffer, n))
    return n;

  /* The bytes of this read are dropped even where they were valid: the
   * connection is going to be closed. The error is set before the signal
   * so that a handler dropping the last reference cannot pull @self from
   * under us. */
  violation_error (self, error);
  g_object_ref (self);
  g_signal_emit (self, signals[SIGNAL_VIOLATION], 0,
                 (guint) self->violation_code, self->violation_reason);
  g_object_unref (self);

  return -1;
}

static gssize
guard_write (TetherGuardStream *self,
             const void        *buffer,
             gsize              count,
             gboolean           blocking,
             GCancellable      *cancellable,
             GError           **error)
{
  gssize n;

  if (self == NULL)
    return closed_error (error);
  if (self->aborted)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                           "Connection aborted");
      return -1;
    }

  if (self->plain)
    n = g_socket_send_with_blocking (self->socket, buffer, count, blocking, cancellable, error);
  else
    n = g_pollable_stream_write (self->base_output, buffer, count, blocking,
                                 cancellable, error);
  if (n > 0)
    self->bytes_written += n;

  return n;
}

/* Whether a read would return at once without asking the base. */
static gboolean
guard_input_has_own_data (TetherGuardInputStream *input)
{
  TetherGuardStream *self = input->guard;

  return self == NULL || self->violation_reason != NULL || self->aborted ||
         self->pushed_back != NULL;
}

/* Whether a write would fail at once without asking the base. */
static gboolean
guard_output_fails_now (TetherGuardOutputStream *output)
{
  TetherGuardStream *self = output->guard;

  return self == NULL || self->aborted;
}

/* A pollable source on one of the sub-streams, plus a check at every
 * iteration for what the guard itself has to say. Over a plain socket the
 * source polls the socket's fd itself. Over TLS the input source does too
 * once the HTTP head has passed (the TLS handshake is over then), with one
 * rule for what GnuTLS may hold: until a read of the base would have
 * blocked or gave less than asked, the source is ready at once. Such a
 * read has emptied GnuTLS of whole records, so from then on only the
 * socket can bring more. (libsoup reads until a read would block.) Before
 * that, and for output over TLS, the base stream's source is the child.
 * Making the
 * base's source for every message read cost ~2.5k instructions, ~9.5k
 * over TLS; see docs/performance.md.
 *
 * Input sources that poll the socket share the guard's one poll record
 * instead of adding the fd each: libsoup makes a new input source for
 * every message read, and GLib 2.74 wakes its own context up (an eventfd
 * write, then one more loop iteration for nothing) whenever a source with
 * an fd is attached or destroyed. */
typedef struct
{
  GSource      source;
  GObject     *stream;
  GIOCondition condition;  /* G_IO_IN: on the input stream, G_IO_OUT: output */
  gpointer     fd_tag;     /* the fd polled by this source alone */
  gboolean     shared;     /* polls through the guard's input_poll */
  gboolean     placed;     /* shared: has met its context (first prepare) */
} GuardSource;

/* Run for every source at every iteration, by every idle connection too:
 * no type checks here. The stream clears its guard pointer when the
 * guard goes. */
static TetherGuardStream *
guard_source_get_guard (GuardSource *gs)
{
  if (gs->condition == G_IO_IN)
    return ((TetherGuardInputStream *) gs->stream)->guard;
  return ((TetherGuardOutputStream *) gs->stream)->guard;
}

static gboolean
guard_source_is_ready (GuardSource       *gs,
                       TetherGuardStream *guard)
{
  if (guard == NULL || guard->aborted)
    return TRUE;
  if (gs->condition == G_IO_IN && (guard->violation_reason != NULL || guard->pushed_back != NULL))
    return TRUE;
  if (gs->fd_tag == NULL && !gs->shared)
    return FALSE;

  /* Over TLS, GnuTLS may hold whole records until a read would block. */
  if (gs->condition == G_IO_IN && !guard->plain && !guard->drained)
    return TRUE;

  /* A closed socket's fd may already be someone else's: stop polling it
   * and let the read or write report the close. */
  if (g_socket_is_closed (guard->socket))
    {
      input_poll_unregister (guard);
      return TRUE;
    }
  return FALSE;
}

static gboolean
guard_source_prepare (GSource *source,
                      int     *timeout)
{
  GuardSource *gs = (GuardSource *) source;
  TetherGuardStream *guard = guard_source_get_guard (gs);

  /* A new iteration: the next read asks the socket again. */
  if (guard != NULL && gs->condition == G_IO_IN)
    guard->short_read = FALSE;

  /* The shared record goes on the context of the first source to run; a
   * source on another context polls the fd itself. */
  if (G_UNLIKELY (gs->shared && !gs->placed) && guard != NULL && !g_socket_is_closed (guard->socket))
    {
      GMainContext *context = g_source_get_context (source);

      gs->placed = TRUE;
      if (guard->input_poll_context == NULL)
        input_poll_register (guard, context);
      else if (guard->input_poll_context != context)
        {
          gs->shared = FALSE;
          guard->input_poll_users--;
          gs->fd_tag = g_source_add_unix_fd (source, g_socket_get_fd (guard->socket), G_IO_IN);
        }
    }

  if (guard_source_is_ready (gs, guard))
    {
      *timeout = 0;
      return TRUE;
    }

  *timeout = -1;
  return FALSE;
}

static gboolean
guard_source_check (GSource *source)
{
  GuardSource *gs = (GuardSource *) source;
  TetherGuardStream *guard = guard_source_get_guard (gs);
  GIOCondition revents = 0;

  if (gs->fd_tag != NULL)
    revents = g_source_query_unix_fd (source, gs->fd_tag);
  else if (gs->shared && guard != NULL)
    revents = guard->input_poll.revents;
  if ((revents & (gs->condition | G_IO_ERR | G_IO_HUP | G_IO_NVAL)) != 0)
    return TRUE;
  return guard_source_is_ready (gs, guard);
}

static gboolean
guard_source_dispatch (GSource     *source,
                       GSourceFunc  callback,
                       gpointer     user_data)
{
  GPollableSourceFunc func = (GPollableSourceFunc) (void (*) (void)) callback;
  GuardSource *gs = (GuardSource *) source;

  if (func == NULL)
    return G_SOURCE_REMOVE;

  return func (gs->stream, user_data);
}

static void
guard_source_finalize (GSource *source)
{
  GuardSource *gs = (GuardSource *) source;
  TetherGuardStream *guard = guard_source_get_guard (gs);

  /* Nobody to read: stop polling for input, or a readable fd would make
   * every poll return at once. The record itself stays until the stream
   * closes: the next reader comes in the same dispatch (libsoup). */
  if (gs->shared && guard != NULL && --guard->input_poll_users == 0)
    guard->input_poll.events = 0;
  g_clear_object (&gs->stream);
}

/* libsoup adds our sources as children of its own and so calls
 * g_source_set_dummy_callback() on them, which GLib implements with a
 * closure: without this, that is a critical. */
static gboolean
guard_source_closure_callback (GObject  *stream,
                               gpointer  data)
{
  GClosure *closure = data;
  GValue param = G_VALUE_INIT;
  GValue result = G_VALUE_INIT;
  gboolean ret;

  g_value_init (&result, G_TYPE_BOOLEAN);
  g_value_init (&param, G_TYPE_OBJECT);
  g_value_set_object (&param, stream);
  g_closure_invoke (closure, &result, 1, &param, NULL);
  ret = g_value_get_boolean (&result);
  g_value_unset (&param);
  g_value_unset (&result);

  return ret;
}

static GSourceFuncs guard_source_funcs = {
  .prepare = guard_source_prepare,
  .check = guard_source_check,
  .dispatch = guard_source_dispatch,
  .finalize = guard_source_finalize,
  .closure_callback = (GSourceFunc) (void (*) (void)) guard_source_closure_callback,
};

/* A child's own dispatch only needs a callback to call: both kinds here
 * (a pollable stream's source, a cancellable's) call it with an object and
 * the data. g_source_set_dummy_callback() would make a GClosure per
 * source, that is per message read. */
static gboolean
child_source_noop (GObject  *object,
                   gpointer  user_data)
{
  return G_SOURCE_CONTINUE;
}

static void
add_child_source (GSource *source,
                  GSource *child)
{
  g_source_set_callback (child, (GSourceFunc) (void (*) (void)) child_source_noop, NULL, NULL);
  g_source_add_child_source (source, child);
  g_source_unref (child);
}

/* @guard may be NULL (a sub-stream that outlived its guard: always
 * ready, so a read or write reports why). */
static GSource *
guard_source_new (GObject           *stream,
                  TetherGuardStream *guard,
                  GIOCondition       condition,
                  GCancellable      *cancellable)
{
  GSource *source = g_source_new (&guard_source_funcs, sizeof (GuardSource));
  GuardSource *gs = (GuardSource *) source;

  g_source_set_static_name (source, "TetherGuardStream");
  gs->stream = g_object_ref (stream);
  gs->condition = condition;
  if (guard != NULL && !guard->aborted && !g_socket_is_closed (guard->socket) &&
      condition == G_IO_IN && (guard->plain || guard->handshake_done))
    {
      gs->shared = TRUE;
      guard->input_poll_users++;
      guard->input_poll.events = G_IO_IN;
    }
  else if (guard != NULL && !g_socket_is_closed (guard->socket) && guard->plain)
    gs->fd_tag = g_source_add_unix_fd (source, g_socket_get_fd (guard->socket), condition);
  else if (guard != NULL && condition == G_IO_IN)
    add_child_source (source, g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (guard->base_input),
                                                                     NULL));
  else if (guard != NULL)
    add_child_source (source, g_pollable_output_stream_create_source (G_POLLABLE_OUTPUT_STREAM (guard->base_output),
                                                                      NULL));
  if (cancellable != NULL)
    add_child_source (source, g_cancellable_source_new (cancellable));

  return source;
}

/* ------------------------------------------------------------------ */
/* Input stream                                                        */
/* ------------------------------------------------------------------ */

static void tether_guard_input_stream_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (TetherGuardInputStream, _tether_guard_input_stream,
                               G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      tether_guard_input_stream_pollable_init))

static gssize
tether_guard_input_stream_read_fn (GInputStream  *stream,
                                   void          *buffer,
                                   gsize          count,
                                   GCancellable  *cancellable,
                                   GError       **error)
{
  TetherGuardInputStream *self = TETHER_GUARD_INPUT_STREAM (stream);

  return guard_read (self->guard, buffer, count, TRUE, cancellable, error);
}

static gboolean
tether_guard_input_stream_close_fn (GInputStream  *stream,
                                    GCancellable  *cancellable,
                                    GError       **error)
{
  /* Like a GSocketConnection's input stream: the GIOStream owns the
   * resource, closing one direction releases nothing. */
  return TRUE;
}

static void
tether_guard_input_stream_close_async (GInputStream        *stream,
                                       int                  io_priority,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  task = g_task_new (stream, cancellable, callback, user_data);
  g_task_set_source_tag (task, tether_guard_input_stream_close_async);
  g_task_set_name (task, "[tether] guard input close");
  g_task_return_boolean (task, TRUE);
}

static gboolean
tether_guard_input_stream_close_finish (GInputStream  *stream,
                                        GAsyncResult  *result,
                                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
tether_guard_input_stream_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
tether_guard_input_stream_is_readable (GPollableInputStream *stream)
{
  TetherGuardInputStream *self = TETHER_GUARD_INPUT_STREAM (stream);

  if (guard_input_has_own_data (self))
    return TRUE;

  self->guard->short_read = FALSE;
  return g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (self->guard->base_input));
}

static GSource *
tether_guard_input_stream_create_source (GPollableInputStream *stream,
                                         GCancellable         *cancellable)
{
  TetherGuardInputStream *self = TETHER_GUARD_INPUT_STREAM (stream);

  return guard_source_new (G_OBJECT (stream), self->guard, G_IO_IN, cancellable);
}

static gssize
tether_guard_input_stream_read_nonblocking (GPollableInputStream  *stream,
                                            void                  *buffer,
                                            gsize                  count,
                                            GError               **error)
{
  TetherGuardInputStream *self = TETHER_GUARD_INPUT_STREAM (stream);

  return guard_read (self->guard, buffer, count, FALSE, NULL, error);
}

static void
tether_guard_input_stream_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = tether_guard_input_stream_can_poll;
  iface->is_readable = tether_guard_input_stream_is_readable;
  iface->create_source = tether_guard_input_stream_create_source;
  iface->read_nonblocking = tether_guard_input_stream_read_nonblocking;
}

static void
_tether_guard_input_stream_class_init (TetherGuardInputStreamClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  /* read_async and skip_async keep GIO's defaults, which use the pollable
   * interface (no thread) since can_poll is TRUE. */
  stream_class->read_fn = tether_guard_input_stream_read_fn;
  stream_class->close_fn = tether_guard_input_stream_close_fn;
  stream_class->close_async = tether_guard_input_stream_close_async;
  stream_class->close_finish = tether_guard_input_stream_close_finish;
}

static void
_tether_guard_input_stream_init (TetherGuardInputStream *self)
{
}

/* ------------------------------------------------------------------ */
/* Output stream                                                       */
/* ------------------------------------------------------------------ */

static void tether_guard_output_stream_pollable_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (TetherGuardOutputStream, _tether_guard_output_stream,
                               G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      tether_guard_output_stream_pollable_init))

static gssize
tether_guard_output_stream_write_fn (GOutputStream  *stream,
                                     const void     *buffer,
                                     gsize           count,
                                     GCancellable   *cancellable,
                                     GError        **error)
{
  TetherGuardOutputStream *self = TETHER_GUARD_OUTPUT_STREAM (stream);

  return guard_write (self->guard, buffer, count, TRUE, cancellable, error);
}

static gboolean
tether_guard_output_stream_close_fn (GOutputStream  *stream,
                                     GCancellable   *cancellable,
                                     GError        **error)
{
  return TRUE;
}

static void
tether_guard_output_stream_close_async (GOutputStream       *stream,
                                        int                  io_priority,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  task = g_task_new (stream, cancellable, callback, user_data);
  g_task_set_source_tag (task, tether_guard_output_stream_close_async);
  g_task_set_name (task, "[tether] guard output close");
  g_task_return_boolean (task, TRUE);
}

static gboolean
tether_guard_output_stream_close_finish (GOutputStream  *stream,
                                         GAsyncResult   *result,
                                         GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
tether_guard_output_stream_can_poll (GPollableOutputStream *stream)
{
  return TRUE;
}

static gboolean
tether_guard_output_stream_is_writable (GPollableOutputStream *stream)
{
  TetherGuardOutputStream *self = TETHER_GUARD_OUTPUT_STREAM (stream);

  if (guard_output_fails_now (self))
    return TRUE;

  return g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (self->guard->base_output));
}

static GSource *
tether_guard_output_stream_create_source (GPollableOutputStream *stream,
                                          GCancellable          *cancellable)
{
  TetherGuardOutputStream *self = TETHER_GUARD_OUTPUT_STREAM (stream);

  return guard_source_new (G_OBJECT (stream), self->guard, G_IO_OUT, cancellable);
}

static gssize
tether_guard_output_stream_write_nonblocking (GPollableOutputStream  *stream,
                                              const void             *buffer,
                                              gsize                   count,
                                              GError                **error)
{
  TetherGuardOutputStream *self = TETHER_GUARD_OUTPUT_STREAM (stream);

  return guard_write (self->guard, buffer, count, FALSE, NULL, error);
}

static void
tether_guard_output_stream_pollable_init (GPollableOutputStreamInterface *iface)
{
  /* writev_nonblocking keeps the interface default, which goes through
   * write_nonblocking and so is counted. */
  iface->can_poll = tether_guard_output_stream_can_poll;
  iface->is_writable = tether_guard_output_stream_is_writable;
  iface->create_source = tether_guard_output_stream_create_source;
  iface->write_nonblocking = tether_guard_output_stream_write_nonblocking;
}

static void
_tether_guard_output_stream_class_init (TetherGuardOutputStreamClass *klass)
{
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  /* write_async and writev_async keep GIO's pollable defaults; there is no
   * flush, so flush_async completes at once. */
  stream_class->write_fn = tether_guard_output_stream_write_fn;
  stream_class->close_fn = tether_guard_output_stream_close_fn;
  stream_class->close_async = tether_guard_output_stream_close_async;
  stream_class->close_finish = tether_guard_output_stream_close_finish;
}

static void
_tether_guard_output_stream_init (TetherGuardOutputStream *self)
{
}

/* ------------------------------------------------------------------ */
/* The guard                                                           */
/* ------------------------------------------------------------------ */

static GInputStream *
tether_guard_stream_get_input_stream (GIOStream *stream)
{
  return G_INPUT_STREAM (TETHER_GUARD_STREAM (stream)->input);
}

static GOutputStream *
tether_guard_stream_get_output_stream (GIOStream *stream)
{
  return G_OUTPUT_STREAM (TETHER_GUARD_STREAM (stream)->output);
}

static gboolean
tether_guard_stream_close_fn (GIOStream     *stream,
                              GCancellable  *cancellable,
                              GError       **error)
{
  TetherGuardStream *self = TETHER_GUARD_STREAM (stream);
  g_autoptr(GError) local_error = NULL;
  gboolean gave_up_close_notify = FALSE;

  /* The sub-streams hold nothing; closing them only makes later use fail
   * cleanly. One with an operation pending refuses, which is harmless. */
  g_output_stream_close (G_OUTPUT_STREAM (self->output), NULL, NULL);
  g_input_stream_close (G_INPUT_STREAM (self->input), NULL, NULL);

  /* Closing TLS sends close_notify, synchronously: glib-networking would
   * block until the socket takes it. If the socket cannot take it now (the
   * peer stopped reading), give the alert up rather than block the
   * connection's thread. */
  if (G_IS_TLS_CONNECTION (self->base) && !self->aborted &&
      !g_socket_is_closed (self->socket) &&
      (g_socket_condition_check (self->socket, G_IO_OUT) & G_IO_OUT) == 0)
    {
      g_socket_shutdown (self->socket, FALSE, TRUE, NULL);
      gave_up_close_notify = TRUE;
    }

  /* Its fd is about to be closed, and may then be reused. */
  input_poll_unregister (self);

  if (!g_io_stream_close (self->base, cancellable, &local_error))
    {
      /* After a shutdown the base is expected to complain; the socket is
       * closed anyway. */
      if (self->aborted || gave_up_close_notify)
        return TRUE;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  return TRUE;
}

static void
tether_guard_stream_close_async (GIOStream           *stream,
                                 int                  io_priority,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;

  task = g_task_new (stream, cancellable, callback, user_data);
  g_task_set_source_tag (task, tether_guard_stream_close_async);
  g_task_set_name (task, "[tether] guard close");
  g_task_set_check_cancellable (task, FALSE);

  /* Closing a socket does not block (and see close_fn for TLS), so there
   * is no reason for GIO's worker thread. */
  if (tether_guard_stream_close_fn (stream, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, g_steal_pointer (&error));
}

static gboolean
tether_guard_stream_close_finish (GIOStream     *stream,
                                  GAsyncResult  *result,
                                  GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
tether_guard_stream_dispose (GObject *object)
{
  TetherGuardStream *self = TETHER_GUARD_STREAM (object);

  /* GIOStream's dispose closes the stream, which needs the base: chain up
   * first. */
  G_OBJECT_CLASS (_tether_guard_stream_parent_class)->dispose (object);

  input_poll_unregister (self);
  if (self->input != NULL)
    self->input->guard = NULL;
  if (self->output != NULL)
    self->output->guard = NULL;
  g_clear_object (&self->input);
  g_clear_object (&self->output);
  self->base_input = NULL;
  self->base_output = NULL;
  g_clear_object (&self->base);
  g_clear_object (&self->socket);
}

static void
tether_guard_stream_finalize (GObject *object)
{
  TetherGuardStream *self = TETHER_GUARD_STREAM (object);

  g_clear_pointer (&self->pushed_back, g_byte_array_unref);
  g_free (self->violation_reason);

  G_OBJECT_CLASS (_tether_guard_stream_parent_class)->finalize (object);
}

static void
_tether_guard_stream_class_init (TetherGuardStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  object_class->dispose = tether_guard_stream_dispose;
  object_class->finalize = tether_guard_stream_finalize;

  stream_class->get_input_stream = tether_guard_stream_get_input_stream;
  stream_class->get_output_stream = tether_guard_stream_get_output_stream;
  stream_class->close_fn = tether_guard_stream_close_fn;
  stream_class->close_async = tether_guard_stream_close_async;
  stream_class->close_finish = tether_guard_stream_close_finish;

  /**
   * TetherGuardStream::violation:
   * @self: the guard
   * @code: a #TetherError: %TETHER_ERROR_MESSAGE_TOO_LARGE or
   *   %TETHER_ERROR_INVALID_MESSAGE
   * @reason: what the peer did, for the log
   *
   * Emitted once, at the first violation, from inside the read that found
   * it (so on the thread and context that drive the I/O), before that read
   * returns its error. Handlers may record the reason and call
   * _tether_guard_stream_abort(), and may even drop their reference to the
   * guard; they should not close it there: closing the socket would pull
   * the file descriptor from under libsoup's poll sources while libsoup is
   * still in its read. libsoup closes the stream itself when it sees the
   * read error.
   */
  signals[SIGNAL_VIOLATION] =
    g_signal_new ("violation",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0,
                  NULL, NULL,
                  NULL,
                  G_TYPE_NONE, 2,
                  G_TYPE_UINT,
                  G_TYPE_STRING);
}

static void
_tether_guard_stream_init (TetherGuardStream *self)
{
}

TetherGuardStream *
_tether_guard_stream_new (GIOStream *base,
                          GSocket   *socket,
                          gsize      max_handshake_bytes,
                          gsize      max_message_size)
{
  TetherGuardStream *self;
  GInputStream *base_input;
  GOutputStream *base_output;

  g_return_val_if_fail (G_IS_IO_STREAM (base), NULL);
  g_return_val_if_fail (G_IS_SOCKET (socket), NULL);

  base_input = g_io_stream_get_input_stream (base);
  base_output = g_io_stream_get_output_stream (base);
  g_return_val_if_fail (G_IS_POLLABLE_INPUT_STREAM (base_input) &&
                        g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (base_input)),
                        NULL);
  g_return_val_if_fail (G_IS_POLLABLE_OUTPUT_STREAM (base_output) &&
                        g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (base_output)),
                        NULL);

  self = g_object_new (TETHER_TYPE_GUARD_STREAM, NULL);
  self->base = g_object_ref (base);
  self->socket = g_object_ref (socket);
  self->plain = G_IS_SOCKET_CONNECTION (base) && g_socket_connection_get_socket (G_SOCKET_CONNECTION (base)) == socket;
  self->base_input = base_input;
  self->base_output = base_output;
  self->max_handshake_bytes = max_handshake_bytes;
  self->max_message_size = max_message_size;

  self->input = g_object_new (TETHER_TYPE_GUARD_INPUT_STREAM, NULL);
  self->input->guard = self;
  self->output = g_object_new (TETHER_TYPE_GUARD_OUTPUT_STREAM, NULL);
  self->output->guard = self;

  return self;
}

GIOStream *
_tether_guard_stream_get_base (TetherGuardStream *self)
{
  g_return_val_if_fail (TETHER_IS_GUARD_STREAM (self), NULL);

  return self->base;
}

GSocket *
_tether_guard_stream_get_socket (TetherGuardStream *self)
{
  return self->socket;
}

void
_tether_guard_stream_set_max_message_size (TetherGuardStream *self,
                                           gsize              max_message_size)
{
  g_return_if_fail (TETHER_IS_GUARD_STREAM (self));

  /* Checked at each frame header, so it applies from the next one, to the
   * message in progress included. */
  self->max_message_size = max_message_size;
}

void
_tether_guard_stream_push_back (TetherGuardStream *self,
                                const guint8      *data,
                                gsize              len)
{
  g_return_if_fail (TETHER_IS_GUARD_STREAM (self));
  g_return_if_fail (data != NULL || len == 0);

  if (len == 0)
    return;

  if (self->pushed_back == NULL)
    {
      self->pushed_back = g_byte_array_sized_new (len);
      self->pushed_back_pos = 0;
    }
  else if (self->pushed_back_pos > 0)
    {
      g_byte_array_remove_range (self->pushed_back, 0, self->pushed_back_pos);
      self->pushed_back_pos = 0;
    }
  g_byte_array_prepend (self->pushed_back, data, len);
}

guint64
_tether_guard_stream_get_bytes_read (TetherGuardStream *self)
{
  g_return_val_if_fail (TETHER_IS_GUARD_STREAM (self), 0);

  return self->bytes_read;
}

guint64
_tether_guard_stream_get_bytes_written (TetherGuardStream *self)
{
  g_return_val_if_fail (TETHER_IS_GUARD_STREAM (self), 0);

  return self->bytes_written;
}

gboolean
_tether_guard_stream_is_handshake_done (TetherGuardStream *self)
{
  g_return_val_if_fail (TETHER_IS_GUARD_STREAM (self), FALSE);

  return self->handshake_done;
}

void
_tether_guard_stream_abort (TetherGuardStream *self)
{
  g_return_if_fail (TETHER_IS_GUARD_STREAM (self));

  if (self->aborted)
    return;

  self->aborted = TRUE;
  g_clear_pointer (&self->pushed_back, g_byte_array_unref);
  self->pushed_back_pos = 0;
  /* The sources are ready at once from now on: nothing needs the poll,
   * and a socket shut down both ways would keep it returning. */
  input_poll_unregister (self);

  /* Errors ignored: a peer that already went away leaves the socket
   * unconnected, which is what we want anyway. */
  if (self->socket != NULL && !g_socket_is_closed (self->socket))
    g_socket_shutdown (self->socket, TRUE, TRUE, NULL);
}
