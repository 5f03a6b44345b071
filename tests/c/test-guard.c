/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Tests for TetherGuardStream over real Unix socket pairs, and with real
 * libsoup on both ends of one. Every test runs on a private main context
 * under a give-up timer; nothing sleeps. */

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <libsoup/soup.h>

#include "tether-error.h"
#include "tether-guard-stream-private.h"
#include "tether-test-common.h"

#define GIVE_UP_SECONDS 5
#define MiB (1024 * 1024)

#define FIN 0x80
#define RSV1 0x40
#define RSV2 0x20
#define RSV3 0x10
#define OP_CONT 0x0
#define OP_TEXT 0x1
#define OP_BINARY 0x2
#define OP_CLOSE 0x8
#define OP_PING 0x9
#define OP_PONG 0xA

static const char HEAD[] = "GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n";

/* ------------------------------------------------------------------ */
/* Harness                                                             */
/* ------------------------------------------------------------------ */

typedef struct
{
  GMainContext *context;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_pop_thread_default (f->context);
  g_main_context_unref (f->context);
}

static gboolean
give_up_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the thread-default context until @cond holds; fails the test
 * if that takes more than GIVE_UP_SECONDS. */
#define WAIT_UNTIL(cond)                                                    \
  G_STMT_START                                                              \
  {                                                                         \
    GMainContext *ctx_ = g_main_context_get_thread_default ();              \
    gboolean gave_up_ = FALSE;                                              \
    GSource *timer_ = g_timeout_source_new_seconds (GIVE_UP_SECONDS);       \
    g_source_set_callback (timer_, give_up_cb, &gave_up_, NULL);            \
    g_source_attach (timer_, ctx_);                                         \
    while (!(cond) && !gave_up_)                                            \
      g_main_context_iteration (ctx_, TRUE);                                \
    g_source_destroy (timer_);                                              \
    g_source_unref (timer_);                                                \
    if (gave_up_)                                                           \
      g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC,     \
                           "gave up waiting for " #cond);                   \
  }                                                                         \
  G_STMT_END

static void
socket_pair (GSocketConnection **a,
             GSocketConnection **b)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) sa = NULL;
  g_autoptr(GSocket) sb = NULL;
  int fds[2];

  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  sa = g_socket_new_from_fd (fds[0], &error);
  g_assert_no_error (error);
  sb = g_socket_new_from_fd (fds[1], &error);
  g_assert_no_error (error);
  *a = g_socket_connection_factory_create_connection (sa);
  *b = g_socket_connection_factory_create_connection (sb);
}

/* A guard over one end of a socket pair; the test plays the peer on the
 * other end with plain socket I/O. */
typedef struct
{
  GSocketConnection *local;
  GSocketConnection *peer;
  TetherGuardStream *guard;
  guint violations;
  guint code;
  char *reason;
} Pair;

static void
on_violation (TetherGuardStream *guard,
              guint              code,
              const char        *reason,
              gpointer           user_data)
{
  Pair *p = user_data;

  p->violations++;
  p->code = code;
  g_free (p->reason);
  p->reason = g_strdup (reason);
}

static Pair *
pair_new (gsize max_handshake_bytes,
          gsize max_message_size)
{
  Pair *p = g_new0 (Pair, 1);

  socket_pair (&p->local, &p->peer);
  p->guard = _tether_guard_stream_new (G_IO_STREAM (p->local),
                                       g_socket_connection_get_socket (p->local),
                                       max_handshake_bytes, max_message_size);
  g_assert_nonnull (p->guard);
  g_signal_connect (p->guard, "violation", G_CALLBACK (on_violation), p);

  return p;
}

static void
pair_free (Pair *p)
{
  g_assert_finalize_object (p->guard);
  g_assert_finalize_object (p->local);
  g_assert_finalize_object (p->peer);
  g_free (p->reason);
  g_free (p);
}

static GInputStream *
guard_input (Pair *p)
{
  return g_io_stream_get_input_stream (G_IO_STREAM (p->guard));
}

static GOutputStream *
guard_output (Pair *p)
{
  return g_io_stream_get_output_stream (G_IO_STREAM (p->guard));
}

static void
peer_write (Pair         *p,
            const void   *data,
            gsize         len)
{
  g_autoptr(GError) error = NULL;

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (p->peer)),
                             data, len, NULL, NULL, &error);
  g_assert_no_error (error);
}

/* Sends @data from the peer @chunk bytes at a time and reads each chunk
 * back through the guard, checking the bytes. Returns how many bytes came
 * through before the first error (all of them on success). */
static gsize
feed (Pair          *p,
      const guint8  *data,
      gsize          len,
      gsize          chunk,
      gboolean       nonblocking,
      GError       **error)
{
  g_autofree guint8 *buf = g_malloc (chunk);
  gsize done = 0;

  while (done < len)
    {
      gsize n = MIN (chunk, len - done);
      gsize got = 0;

      peer_write (p, data + done, n);
      while (got < n)
        {
          gssize r;

          if (nonblocking)
            r = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (guard_input (p)),
                                                          buf + got, n - got, NULL, error);
          else
            r = g_input_stream_read (guard_input (p), buf + got, n - got, NULL, error);
          if (r < 0)
            return done;
          g_assert_cmpint (r, >, 0);
          got += r;
        }
      g_assert_cmpmem (buf, n, data + done, n);
      done += n;
    }

  return done;
}

static void
feed_ok (Pair       *p,
         GByteArray *bytes,
         gsize       chunk,
         gboolean    nonblocking)
{
  g_autoptr(GError) error = NULL;
  gsize done;

  done = feed (p, bytes->data, bytes->len, chunk, nonblocking, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (done, ==, bytes->len);
  g_assert_cmpuint (p->violations, ==, 0);
}

static void
feed_head (Pair *p)
{
  g_autoptr(GByteArray) head = g_byte_array_new ();

  g_byte_array_append (head, (const guint8 *) HEAD, strlen (HEAD));
  feed_ok (p, head, head->len, FALSE);
  g_assert_true (_tether_guard_stream_is_handshake_done (p->guard));
}

typedef enum
{
  LEN_SHORTEST,
  LEN_16,
  LEN_64,
} LenForm;

/* Appends a frame header announcing @len and, if @with_payload, @len bytes
 * of payload. */
static void
add_frame (GByteArray *out,
           guint8      byte0,
           gboolean    masked,
           LenForm     form,
           guint64     len,
           gboolean    with_payload)
{
  static const guint8 mask_key[4] = { 0x11, 0x22, 0x33, 0x44 };
  guint8 hdr[14];
  gsize n = 0;

  if (form == LEN_SHORTEST)
    form = len < 126 ? LEN_SHORTEST : len <= G_MAXUINT16 ? LEN_16 : LEN_64;

  hdr[n++] = byte0;
  if (form == LEN_SHORTEST)
    {
      hdr[n++] = (masked ? 0x80 : 0) | (guint8) len;
    }
  else if (form == LEN_16)
    {
      g_assert_cmpuint (len, <=, G_MAXUINT16);
      hdr[n++] = (masked ? 0x80 : 0) | 126;
      hdr[n++] = (guint8) (len >> 8);
      hdr[n++] = (guint8) len;
    }
  else
    {
      hdr[n++] = (masked ? 0x80 : 0) | 127;
      for (int shift = 56; shift >= 0; shift -= 8)
        hdr[n++] = (guint8) (len >> shift);
    }
  if (masked)
    {
      memcpy (hdr + n, mask_key, 4);
      n += 4;
    }
  g_byte_array_append (out, hdr, n);

  if (with_payload)
    {
      gsize start = out->len;

      g_assert_cmpuint (len, <, 16 * MiB);
      g_byte_array_set_size (out, start + len);
      for (gsize i = 0; i < len; i++)
        out->data[start + i] = (guint8) (i * 7 + 3);
    }
}

static void
assert_violation (Pair       *p,
                  GError     *error,
                  int         io_code,
                  guint       tether_code,
                  const char *reason)
{
  g_assert_error (error, G_IO_ERROR, io_code);
  g_assert_cmpstr (error->message, ==, reason);
  g_assert_cmpuint (p->violations, ==, 1);
  g_assert_cmpuint (p->code, ==, tether_code);
  g_assert_cmpstr (p->reason, ==, reason);
}

/* After a violation every read fails the same way, and the signal is not
 * emitted again. */
static void
assert_violation_sticks (Pair *p,
                         int   io_code)
{
  g_autoptr(GError) error = NULL;
  guint8 buf[16];
  gssize r;

  peer_write (p, "\x81\x00", 2);
  r = g_input_stream_read (guard_input (p), buf, sizeof buf, NULL, &error);
  g_assert_cmpint (r, ==, -1);
  g_assert_error (error, G_IO_ERROR, io_code);
  g_clear_error (&error);

  g_assert_true (g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (guard_input (p))));
  r = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (guard_input (p)),
                                                buf, sizeof buf, NULL, &error);
  g_assert_cmpint (r, ==, -1);
  g_assert_error (error, G_IO_ERROR, io_code);
  g_assert_cmpuint (p->violations, ==, 1);
}

/* GIO's worker threads (GTask's pool) are named "pool-…"; the guard must
 * never have needed one. */
static void
assert_no_worker_threads (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *tid;

  g_assert_nonnull (dir);
  while ((tid = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_strdup_printf ("/proc/self/task/%s/comm", tid);
      g_autofree char *comm = NULL;

      if (!g_file_get_contents (path, &comm, NULL, NULL))
        continue;
      g_test_message ("thread %s: %s", tid, g_strstrip (comm));
      g_assert_false (g_str_has_prefix (comm, "pool"));
    }
}

/* ------------------------------------------------------------------ */
/* Handshake phase                                                     */
/* ------------------------------------------------------------------ */

static void
test_handshake_cap (Fixture       *f,
                    gconstpointer  data)
{
  Pair *p = pair_new (100, MiB);
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  gsize done;

  /* No end of head: the 100th byte is the violation. */
  g_byte_array_append (bytes, (const guint8 *) "GET / HTTP/1.1\r\n", 16);
  while (bytes->len < 150)
    g_byte_array_append (bytes, (const guint8 *) "a", 1);
  done = feed (p, bytes->data, bytes->len, 1, TRUE, &error);
  g_assert_cmpuint (done, ==, 99);
  assert_violation (p, error, G_IO_ERROR_MESSAGE_TOO_LARGE,
                    TETHER_ERROR_MESSAGE_TOO_LARGE,
                    "HTTP handshake larger than 100 bytes");
  g_assert_false (_tether_guard_stream_is_handshake_done (p->guard));
  assert_violation_sticks (p, G_IO_ERROR_MESSAGE_TOO_LARGE);

  pair_free (p);
}

static void
test_handshake_exact (Fixture       *f,
                      gconstpointer  data)
{
  Pair *p = pair_new (100, MiB);
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  g_autoptr(GString) head = g_string_new ("GET / HTTP/1.1\r\nX-Pad: ");

  /* A head of exactly the limit, "\r\n\r\n" included, is fine. */
  while (head->len < 100 - 4)
    g_string_append_c (head, 'p');
  g_string_append (head, "\r\n\r\n");
  g_assert_cmpuint (head->len, ==, 100);
  g_byte_array_append (bytes, (const guint8 *) head->str, head->len);
  add_frame (bytes, FIN | OP_TEXT, TRUE, LEN_SHORTEST, 5, TRUE);
  feed_ok (p, bytes, bytes->len, FALSE);
  g_assert_true (_tether_guard_stream_is_handshake_done (p->guard));

  pair_free (p);
}

static void
test_head_split (Fixture       *f,
                 gconstpointer  data)
{
  /* "\r\r\n\r\n" checks that a false start does not hide the real end.
   * The frame starts with 0x81: were the parser off by one byte, it would
   * take the '\n' (0x0A, a pong without FIN) for a header and fail. */
  static const char head[] = "GET /ws HTTP/1.1\r\nX-A: b\r\r\n\r\n";
  g_autoptr(GByteArray) bytes = g_byte_array_new ();

  g_byte_array_append (bytes, (const guint8 *) head, strlen (head));
  add_frame (bytes, FIN | OP_TEXT, TRUE, LEN_SHORTEST, 3, TRUE);

  for (gsize split = 1; split < bytes->len; split++)
    {
      Pair *p = pair_new (8192, MiB);
      g_autoptr(GError) error = NULL;
      gsize done;

      done = feed (p, bytes->data, split, split, FALSE, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (done, ==, split);
      g_assert_cmpint (_tether_guard_stream_is_handshake_done (p->guard), ==,
                       split >= strlen (head));
      done = feed (p, bytes->data + split, bytes->len - split,
                   bytes->len - split, TRUE, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (done, ==, bytes->len - split);
      g_assert_true (_tether_guard_stream_is_handshake_done (p->guard));
      g_assert_cmpuint (p->violations, ==, 0);
      g_assert_cmpuint (_tether_guard_stream_get_bytes_read (p->guard), ==, bytes->len);

      pair_free (p);
    }
}

/* ------------------------------------------------------------------ */
/* Frame phase                                                         */
/* ------------------------------------------------------------------ */

static void
test_frames_bytewise (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  Pair *p;

  g_byte_array_append (bytes, (const guint8 *) HEAD, strlen (HEAD));
  add_frame (bytes, FIN | OP_TEXT, TRUE, LEN_SHORTEST, 10, TRUE);
  add_frame (bytes, OP_BINARY, FALSE, LEN_16, 200, TRUE);
  add_frame (bytes, FIN | OP_PING, TRUE, LEN_SHORTEST, 5, TRUE);
  add_frame (bytes, OP_CONT, TRUE, LEN_64, 300, TRUE);
  add_frame (bytes, FIN | OP_PONG, FALSE, LEN_SHORTEST, 0, TRUE);
  add_frame (bytes, FIN | OP_CONT, FALSE, LEN_SHORTEST, 0, TRUE);
  add_frame (bytes, FIN | OP_TEXT, FALSE, LEN_16, 0, TRUE);
  add_frame (bytes, FIN | OP_CLOSE, TRUE, LEN_SHORTEST, 2, TRUE);

  /* Every header split at every byte boundary, on both read paths. */
  p = pair_new (8192, 1000);
  feed_ok (p, bytes, 1, TRUE);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_read (p->guard), ==, bytes->len);
  pair_free (p);

  p = pair_new (8192, 1000);
  feed_ok (p, bytes, 1, FALSE);
  pair_free (p);

  p = pair_new (8192, 1000);
  feed_ok (p, bytes, bytes->len, TRUE);
  pair_free (p);
}

static void
test_lengths (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  Pair *p;
  gsize done, bad_byte;

  add_frame (bytes, FIN | OP_BINARY, TRUE, LEN_SHORTEST, 125, TRUE);
  add_frame (bytes, FIN | OP_BINARY, FALSE, LEN_SHORTEST, 126, TRUE);
  add_frame (bytes, FIN | OP_BINARY, TRUE, LEN_16, 65535, TRUE);
  add_frame (bytes, FIN | OP_BINARY, FALSE, LEN_64, 65536, TRUE);
  add_frame (bytes, FIN | OP_BINARY, TRUE, LEN_64, 70000, TRUE);
  add_frame (bytes, FIN | OP_BINARY, FALSE, LEN_64, 70000, TRUE);

  p = pair_new (8192, 70000);
  feed_head (p);
  feed_ok (p, bytes, 4096, FALSE);
  pair_free (p);

  /* One byte less and the first 70000-byte frame is refused at its
   * header. */
  p = pair_new (8192, 69999);
  feed_head (p);
  done = feed (p, bytes->data, bytes->len, 1024, TRUE, &error);
  bad_byte = (2 + 125) + (4 + 126) + (8 + 65535) + (10 + 65536) + 14;
  g_assert_cmpuint (done, ==, (bad_byte - 1) / 1024 * 1024);
  assert_violation (p, error, G_IO_ERROR_MESSAGE_TOO_LARGE,
                    TETHER_ERROR_MESSAGE_TOO_LARGE,
                    "message larger than 69999 bytes");
  pair_free (p);
}

static void
test_size_announced (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  Pair *p = pair_new (8192, 1000);
  gsize done;

  /* The header alone is enough: its last byte is the violation, and the
   * terabyte never has to arrive. */
  add_frame (bytes, FIN | OP_BINARY, TRUE, LEN_64, G_GUINT64_CONSTANT (1) << 40, FALSE);
  feed_head (p);
  done = feed (p, bytes->data, bytes->len, 1, TRUE, &error);
  g_assert_cmpuint (done, ==, 13);
  assert_violation (p, error, G_IO_ERROR_MESSAGE_TOO_LARGE,
                    TETHER_ERROR_MESSAGE_TOO_LARGE,
                    "message larger than 1000 bytes");
  assert_violation_sticks (p, G_IO_ERROR_MESSAGE_TOO_LARGE);
  pair_free (p);

  p = pair_new (8192, 1000);
  g_clear_error (&error);
  g_byte_array_set_size (bytes, 0);
  add_frame (bytes, FIN | OP_TEXT, FALSE, LEN_16, 1001, FALSE);
  feed_head (p);
  done = feed (p, bytes->data, bytes->len, 1, FALSE, &error);
  g_assert_cmpuint (done, ==, 3);
  assert_violation (p, error, G_IO_ERROR_MESSAGE_TOO_LARGE,
                    TETHER_ERROR_MESSAGE_TOO_LARGE,
                    "message larger than 1000 bytes");
  pair_free (p);
}

static void
test_fragment_cap (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GByteArray) first = g_byte_array_new ();
  g_autoptr(GByteArray) last = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  Pair *p;
  gsize done;

  add_frame (first, OP_TEXT, TRUE, LEN_SHORTEST, 400, TRUE);
  add_frame (first, OP_CONT, TRUE, LEN_SHORTEST, 400, TRUE);
  add_frame (last, FIN | OP_CONT, TRUE, LEN_SHORTEST, 400, TRUE);

  /* 3 × 400 against 1000: the third header is refused. */
  p = pair_new (8192, 1000);
  feed_head (p);
  feed_ok (p, first, first->len, FALSE);
  done = feed (p, last->data, last->len, 1, TRUE, &error);
  g_assert_cmpuint (done, ==, 7);
  assert_violation (p, error, G_IO_ERROR_MESSAGE_TOO_LARGE,
                    TETHER_ERROR_MESSAGE_TOO_LARGE,
                    "message larger than 1000 bytes");
  pair_free (p);

  /* Against 1200 it fits, and the count starts again with each message. */
  p = pair_new (8192, 1200);
  feed_head (p);
  for (int i = 0; i < 3; i++)
    {
      feed_ok (p, first, first->len, FALSE);
      feed_ok (p, last, last->len, FALSE);
    }
  pair_free (p);
}

static void
test_set_max_message_size (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GByteArray) frag = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  Pair *p = pair_new (8192, 0);

  /* 0 is no limit; a new limit applies from the next header, to the
   * message in progress too. */
  add_frame (frag, OP_BINARY, TRUE, LEN_SHORTEST, 400, TRUE);
  feed_head (p);
  feed_ok (p, frag, frag->len, FALSE);
  _tether_guard_stream_set_max_message_size (p->guard, 700);
  g_byte_array_set_size (frag, 0);
  add_frame (frag, FIN | OP_CONT, TRUE, LEN_SHORTEST, 301, TRUE);
  g_assert_cmpuint (feed (p, frag->data, frag->len, frag->len, FALSE, &error), ==, 0);
  assert_violation (p, error, G_IO_ERROR_MESSAGE_TOO_LARGE,
                    TETHER_ERROR_MESSAGE_TOO_LARGE,
                    "message larger than 700 bytes");
  pair_free (p);
}

static void
test_ping_in_fragmented (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  Pair *p = pair_new (8192, 1000);

  /* Control frames may come between fragments and do not count. */
  add_frame (bytes, OP_TEXT, TRUE, LEN_SHORTEST, 500, TRUE);
  add_frame (bytes, FIN | OP_PING, TRUE, LEN_SHORTEST, 125, TRUE);
  add_frame (bytes, FIN | OP_PONG, TRUE, LEN_SHORTEST, 125, TRUE);
  add_frame (bytes, OP_CONT, TRUE, LEN_SHORTEST, 250, TRUE);
  add_frame (bytes, FIN | OP_PING, TRUE, LEN_SHORTEST, 0, TRUE);
  add_frame (bytes, FIN | OP_CONT, TRUE, LEN_SHORTEST, 250, TRUE);
  feed_head (p);
  feed_ok (p, bytes, 7, TRUE);
  pair_free (p);
}

typedef struct
{
  const char *path;
  guint8 frames[16];
  gsize len;
  const char *reason;
} ViolationCase;

/* Frames after the head; all are invalid data (not sizes). */
static const ViolationCase violation_cases[] = {
  { "/tether/guard/violation/rsv1", { 0xC1, 0x00 }, 2,
    "compressed frame refused (permessage-deflate is never negotiated)" },
  { "/tether/guard/violation/rsv1-continuation", { 0x01, 0x00, 0xC0, 0x00 }, 4,
    "compressed frame refused (permessage-deflate is never negotiated)" },
  { "/tether/guard/violation/rsv2", { 0xA1, 0x00 }, 2, "reserved bits RSV2/RSV3 set" },
  { "/tether/guard/violation/rsv3", { 0x92, 0x80, 1, 2, 3, 4 }, 6, "reserved bits RSV2/RSV3 set" },
  { "/tether/guard/violation/opcode-3", { 0x83, 0x00 }, 2, "reserved opcode 0x3" },
  { "/tether/guard/violation/opcode-7", { 0x87, 0x00 }, 2, "reserved opcode 0x7" },
  { "/tether/guard/violation/opcode-b", { 0x8B, 0x00 }, 2, "reserved opcode 0xB" },
  { "/tether/guard/violation/opcode-f", { 0x8F, 0x00 }, 2, "reserved opcode 0xF" },
  { "/tether/guard/violation/ping-too-long", { 0x89, 0x7E, 0x00, 0x7E }, 4,
    "control frame longer than 125 bytes" },
  { "/tether/guard/violation/close-too-long", { 0x88, 0xFE, 0x00, 0x7E, 1, 2, 3, 4 }, 8,
    "control frame longer than 125 bytes" },
  { "/tether/guard/violation/pong-fragmented", { 0x0A, 0x00 }, 2, "fragmented control frame" },
  { "/tether/guard/violation/continuation-without-start", { 0x80, 0x00 }, 2,
    "continuation frame without a message in progress" },
  { "/tether/guard/violation/message-before-finished", { 0x01, 0x00, 0x82, 0x00 }, 4,
    "new message before the previous one finished" },
  { "/tether/guard/violation/length-top-bit", { 0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0 }, 10,
    "frame length with the most significant bit set" },
};

static void
test_violation (Fixture       *f,
                gconstpointer  data)
{
  const ViolationCase *c = data;
  g_autoptr(GError) error = NULL;
  Pair *p;
  gsize done;

  /* Byte by byte: the last byte of the bad header is the one refused. */
  p = pair_new (8192, 0);
  feed_head (p);
  done = feed (p, c->frames, c->len, 1, TRUE, &error);
  g_assert_cmpuint (done, ==, c->len - 1);
  assert_violation (p, error, G_IO_ERROR_INVALID_DATA,
                    TETHER_ERROR_INVALID_MESSAGE, c->reason);
  assert_violation_sticks (p, G_IO_ERROR_INVALID_DATA);
  pair_free (p);

  /* In one read with the head, on the blocking path. */
  p = pair_new (8192, 0);
  {
    g_autoptr(GByteArray) bytes = g_byte_array_new ();

    g_clear_error (&error);
    g_byte_array_append (bytes, (const guint8 *) HEAD, strlen (HEAD));
    g_byte_array_append (bytes, c->frames, c->len);
    done = feed (p, bytes->data, bytes->len, bytes->len, FALSE, &error);
    g_assert_cmpuint (done, ==, 0);
    assert_violation (p, error, G_IO_ERROR_INVALID_DATA,
                      TETHER_ERROR_INVALID_MESSAGE, c->reason);
  }
  pair_free (p);
}

/* ------------------------------------------------------------------ */
/* Push-back, counters, async paths, abort                             */
/* ------------------------------------------------------------------ */

static gboolean
count_dispatch_cb (GObject  *stream,
                   gpointer  user_data)
{
  (*(guint *) user_data)++;
  return G_SOURCE_CONTINUE;
}

static void
test_push_back (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  g_autoptr(GByteArray) later = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSource) source = NULL;
  GPollableInputStream *in;
  Pair *p = pair_new (8192, 1000);
  gsize head_len = strlen (HEAD);
  guint8 buf[4096];
  guint fired = 0;
  gssize r;

  in = G_POLLABLE_INPUT_STREAM (guard_input (p));

  /* The head and a first fragment come in one read, as a server's 101 and
   * its first frames may. */
  g_byte_array_append (bytes, (const guint8 *) HEAD, head_len);
  add_frame (bytes, OP_TEXT, FALSE, LEN_SHORTEST, 600, TRUE);
  peer_write (p, bytes->data, bytes->len);
  r = g_input_stream_read (guard_input (p), buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, bytes->len);
  g_assert_true (_tether_guard_stream_is_handshake_done (p->guard));

  /* Pushed back in two pieces, the later piece first. */
  _tether_guard_stream_push_back (p->guard, buf + head_len + 100, r - head_len - 100);
  _tether_guard_stream_push_back (p->guard, buf + head_len, 100);

  /* Readable although the socket is empty, and a source fires for it. */
  g_assert_false (g_socket_condition_check (g_socket_connection_get_socket (p->local), G_IO_IN) & G_IO_IN);
  g_assert_true (g_pollable_input_stream_is_readable (in));
  source = g_pollable_input_stream_create_source (in, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (count_dispatch_cb), &fired, NULL);
  g_source_attach (source, f->context);
  WAIT_UNTIL (fired > 0);

  /* Served first, in order, and counted once. */
  r = g_pollable_input_stream_read_nonblocking (in, buf, 50, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, 50);
  g_assert_cmpmem (buf, 50, bytes->data + head_len, 50);
  r = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, bytes->len - head_len - 50);
  g_assert_cmpmem (buf, r, bytes->data + head_len + 50, r);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_read (p->guard), ==, bytes->len);

  /* Now empty: the source no longer fires on its own. */
  g_assert_false (g_pollable_input_stream_is_readable (in));
  r = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_cmpint (r, ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);
  fired = 0;
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_assert_cmpuint (fired, ==, 0);

  /* The pushed-back fragment was not parsed a second time: 600 + 300 is
   * within 1000 (600 twice would not be, nor would a second start). */
  add_frame (later, FIN | OP_CONT, TRUE, LEN_SHORTEST, 300, TRUE);
  peer_write (p, later->data, later->len);
  WAIT_UNTIL (fired > 0);
  g_source_destroy (source);
  r = g_input_stream_read (guard_input (p), buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, later->len);
  g_assert_cmpuint (p->violations, ==, 0);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_read (p->guard), ==,
                    bytes->len + later->len);

  /* And the message count went on from there. */
  g_byte_array_set_size (later, 0);
  add_frame (later, OP_TEXT, TRUE, LEN_SHORTEST, 600, TRUE);
  add_frame (later, OP_CONT, TRUE, LEN_SHORTEST, 401, FALSE);
  g_assert_cmpuint (feed (p, later->data, later->len, later->len, FALSE, &error), ==, 0);
  assert_violation (p, error, G_IO_ERROR_MESSAGE_TOO_LARGE,
                    TETHER_ERROR_MESSAGE_TOO_LARGE,
                    "message larger than 1000 bytes");

  g_clear_pointer (&source, g_source_unref);
  pair_free (p);
}

static void
test_counters (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  GInputStream *peer_in;
  Pair *p = pair_new (8192, MiB);
  guint8 buf[256];
  gsize written = 0;
  gssize r;

  g_assert_cmpuint (_tether_guard_stream_get_bytes_read (p->guard), ==, 0);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_written (p->guard), ==, 0);

  g_assert_true (g_output_stream_write_all (guard_output (p), "hello ", 6, &written,
                                            NULL, &error));
  g_assert_no_error (error);
  r = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (guard_output (p)),
                                                  "world", 5, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, 5);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_written (p->guard), ==, 11);

  peer_in = g_io_stream_get_input_stream (G_IO_STREAM (p->peer));
  g_assert_true (g_input_stream_read_all (peer_in, buf, 11, NULL, NULL, &error));
  g_assert_cmpmem (buf, 11, "hello world", 11);

  feed_head (p);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_read (p->guard), ==, strlen (HEAD));
  g_assert_cmpuint (_tether_guard_stream_get_bytes_written (p->guard), ==, 11);

  pair_free (p);
}

static void
read_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  gssize *out = user_data;
  g_autoptr(GError) error = NULL;

  *out = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  g_assert_no_error (error);
}

static void
write_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  gssize *out = user_data;
  g_autoptr(GError) error = NULL;

  *out = g_output_stream_write_finish (G_OUTPUT_STREAM (source), result, &error);
  g_assert_no_error (error);
}

static void
close_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  if (G_IS_IO_STREAM (source))
    g_assert_true (g_io_stream_close_finish (G_IO_STREAM (source), result, &error));
  else if (G_IS_INPUT_STREAM (source))
    g_assert_true (g_input_stream_close_finish (G_INPUT_STREAM (source), result, &error));
  else
    g_assert_true (g_output_stream_close_finish (G_OUTPUT_STREAM (source), result, &error));
  g_assert_no_error (error);
  *done = TRUE;
}

static void
test_async_no_thread (Fixture       *f,
                      gconstpointer  data)
{
  Pair *p = pair_new (8192, MiB);
  guint8 buf[64];
  gssize result = -2;
  gboolean closed_in = FALSE, closed_out = FALSE, closed = FALSE;

  /* GIO's default read_async goes through the pollable interface: with
   * data waiting, the read happens inside the call (a worker thread would
   * race with this check). */
  peer_write (p, HEAD, strlen (HEAD));
  g_input_stream_read_async (guard_input (p), buf, sizeof buf, G_PRIORITY_DEFAULT,
                             NULL, read_done_cb, &result);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_read (p->guard), ==, strlen (HEAD));
  WAIT_UNTIL (result != -2);
  g_assert_cmpint (result, ==, strlen (HEAD));

  /* With nothing waiting, it waits on the source. */
  result = -2;
  g_input_stream_read_async (guard_input (p), buf, sizeof buf, G_PRIORITY_DEFAULT,
                             NULL, read_done_cb, &result);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_assert_cmpint (result, ==, -2);
  peer_write (p, "\x81\x02hi", 4);
  WAIT_UNTIL (result != -2);
  g_assert_cmpint (result, ==, 4);

  result = -2;
  g_output_stream_write_async (guard_output (p), "abc", 3, G_PRIORITY_DEFAULT,
                               NULL, write_done_cb, &result);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_written (p->guard), ==, 3);
  WAIT_UNTIL (result != -2);
  g_assert_cmpint (result, ==, 3);

  /* Closing happens inside the call too; the callbacks come later. */
  g_input_stream_close_async (guard_input (p), G_PRIORITY_DEFAULT, NULL,
                              close_done_cb, &closed_in);
  g_output_stream_close_async (guard_output (p), G_PRIORITY_DEFAULT, NULL,
                               close_done_cb, &closed_out);
  WAIT_UNTIL (closed_in && closed_out);
  g_assert_false (g_io_stream_is_closed (G_IO_STREAM (p->local)));

  g_io_stream_close_async (G_IO_STREAM (p->guard), G_PRIORITY_DEFAULT, NULL,
                           close_done_cb, &closed);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (p->local)));
  g_assert_true (g_socket_is_closed (g_socket_connection_get_socket (p->local)));
  g_assert_false (closed);
  WAIT_UNTIL (closed);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (p->guard)));
  assert_no_worker_threads ();

  pair_free (p);
}

/* One main loop iteration on @context, done by hand to see what it
 * polls: the events it would wait for on @fd (-1: @fd is not polled). */
static int
context_polls_fd (GMainContext *context,
                  int           fd)
{
  GPollFD fds[32];
  int events = -1;
  int max_priority, timeout, n;

  g_assert_true (g_main_context_acquire (context));
  g_main_context_prepare (context, &max_priority);
  n = g_main_context_query (context, max_priority, &timeout, fds, G_N_ELEMENTS (fds));
  g_assert_cmpint (n, <=, G_N_ELEMENTS (fds));
  for (int i = 0; i < n; i++)
    {
      if (fds[i].fd == fd)
        events = fds[i].events;
      fds[i].revents = 0;
    }
  if (g_main_context_check (context, max_priority, fds, n))
    g_main_context_dispatch (context);
  g_main_context_release (context);

  return events;
}

#define POLLS_INPUT(context, fd) ((context_polls_fd ((context), (fd)) & G_IO_IN) == G_IO_IN)

static gboolean
count_input_cb (GObject  *stream,
                gpointer  user_data)
{
  guint8 buf[64];

  (*(guint *) user_data)++;
  /* Drain, as libsoup does, so the source is not ready again at once. */
  while (g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (stream),
                                                   buf, sizeof buf, NULL, NULL) > 0)
    ;
  return G_SOURCE_CONTINUE;
}

static GSource *
input_source_on (Pair         *p,
                 GMainContext *context,
                 guint        *count)
{
  GSource *source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (guard_input (p)), NULL);

  g_source_set_callback (source, (GSourceFunc) (void (*) (void)) count_input_cb, count, NULL);
  g_source_attach (source, context);

  return source;
}

/* Input sources share one poll record for the socket: it polls for input
 * while one of them is alive, not after the last (readable bytes nobody
 * reads must not make every poll return at once), and goes with the
 * stream. A source on another context polls the socket itself. */
static void
test_input_watch (Fixture       *f,
                  gconstpointer  data)
{
  Pair *p = pair_new (8192, MiB);
  int fd = g_socket_get_fd (g_socket_connection_get_socket (p->local));
  g_autoptr(GMainContext) other = g_main_context_new ();
  GSource *first, *second, *elsewhere;
  guint first_n = 0, second_n = 0, elsewhere_n = 0;

  feed_head (p);
  g_assert_cmpint (context_polls_fd (f->context, fd), ==, -1);

  first = input_source_on (p, f->context, &first_n);
  second = input_source_on (p, f->context, &second_n);
  g_assert_true (POLLS_INPUT (f->context, fd));
  peer_write (p, "\x81\x02hi", 4);
  WAIT_UNTIL (first_n + second_n > 0);

  /* One source left: still polled, and it still hears the socket. */
  g_source_destroy (first);
  g_source_unref (first);
  g_assert_true (POLLS_INPUT (f->context, fd));
  peer_write (p, "\x81\x02hi", 4);
  WAIT_UNTIL (second_n > 0);

  /* A source on another context than the record's. */
  elsewhere = input_source_on (p, other, &elsewhere_n);
  g_assert_true (POLLS_INPUT (other, fd));
  peer_write (p, "\x81\x02hi", 4);
  while (elsewhere_n == 0)
    g_main_context_iteration (other, TRUE);
  g_source_destroy (elsewhere);
  g_source_unref (elsewhere);
  g_assert_cmpint (context_polls_fd (other, fd), ==, -1);

  /* None left: bytes that come wake nothing up. */
  g_source_destroy (second);
  g_source_unref (second);
  g_assert_false (POLLS_INPUT (f->context, fd));
  peer_write (p, "\x81\x02hi", 4);
  g_assert_false (POLLS_INPUT (f->context, fd));
  g_assert_false (g_main_context_iteration (f->context, FALSE));

  /* A new source finds them waiting. */
  first_n = 0;
  first = input_source_on (p, f->context, &first_n);
  WAIT_UNTIL (first_n > 0);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_read (p->guard), ==, strlen (HEAD) + 16);
  g_source_destroy (first);
  g_source_unref (first);

  /* The record goes with the stream. */
  g_assert_cmpint (context_polls_fd (f->context, fd), !=, -1);
  g_assert_true (g_io_stream_close (G_IO_STREAM (p->guard), NULL, NULL));
  g_assert_cmpint (context_polls_fd (f->context, fd), ==, -1);

  pair_free (p);
}

/* After a read that gave less than asked, the next read straight after
 * says "would block" without asking the socket (libsoup reads until a
 * read would block); nothing is lost: the source still fires for what is
 * waiting, and asking whether the stream is readable lets the next read
 * reach the socket. */
static void
test_short_read (Fixture       *f,
                 gconstpointer  data)
{
  Pair *p = pair_new (8192, MiB);
  GPollableInputStream *in;
  g_autoptr(GError) error = NULL;
  GSource *source;
  guint8 buf[64];
  guint n = 0;
  gssize r;

  feed_head (p);
  in = G_POLLABLE_INPUT_STREAM (guard_input (p));

  peer_write (p, "\x81\x02hi", 4);
  r = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, 4);
  peer_write (p, "\x81\x02ho", 4);
  r = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_cmpint (r, ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);

  /* The bytes are waiting: the source fires and its reader gets them. */
  source = input_source_on (p, f->context, &n);
  WAIT_UNTIL (n > 0);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_read (p->guard), ==, strlen (HEAD) + 8);
  g_source_destroy (source);
  g_source_unref (source);

  /* A blocking read always asks the socket. */
  peer_write (p, "\x81\x01x", 3);
  r = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_cmpint (r, ==, 3);
  peer_write (p, "\x81\x01y", 3);
  r = g_input_stream_read (guard_input (p), buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, 3);

  /* So does a read after is_readable(). */
  peer_write (p, "\x81\x01z", 3);
  g_assert_true (g_pollable_input_stream_is_readable (in));
  r = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, 3);
  g_assert_cmpuint (p->violations, ==, 0);

  pair_free (p);
}

/* Closing or aborting the guard stops polling its socket at once (a closed
 * fd may be reused), even while a source is still attached. */
static void
test_input_watch_close (Fixture       *f,
                        gconstpointer  data)
{
  Pair *p = pair_new (8192, MiB);
  int fd = g_socket_get_fd (g_socket_connection_get_socket (p->local));
  g_autoptr(GError) error = NULL;
  GSource *source;
  guint n = 0;

  feed_head (p);
  source = input_source_on (p, f->context, &n);
  g_assert_true (POLLS_INPUT (f->context, fd));

  g_assert_true (g_io_stream_close (G_IO_STREAM (p->guard), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_socket_is_closed (g_socket_connection_get_socket (p->local)));
  g_assert_cmpint (context_polls_fd (f->context, fd), ==, -1);
  /* The source fires, so that its reader learns of the close. */
  WAIT_UNTIL (n > 0);
  g_source_destroy (source);
  g_source_unref (source);
  pair_free (p);

  /* Aborting too: the socket, shut down both ways, would keep every poll
   * returning; the sources are ready at once instead. */
  p = pair_new (8192, MiB);
  fd = g_socket_get_fd (g_socket_connection_get_socket (p->local));
  feed_head (p);
  n = 0;
  source = input_source_on (p, f->context, &n);
  g_assert_true (POLLS_INPUT (f->context, fd));
  _tether_guard_stream_abort (p->guard);
  g_assert_cmpint (context_polls_fd (f->context, fd), ==, -1);
  WAIT_UNTIL (n > 0);
  g_source_destroy (source);
  g_source_unref (source);
  pair_free (p);
}

static void
test_abort (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  GSocket *peer_socket;
  Pair *p = pair_new (8192, MiB);
  guint8 buf[64];
  gssize result = -2;
  gssize r;

  /* A read waiting on the socket ends, promptly, at end-of-file. */
  feed_head (p);
  g_input_stream_read_async (guard_input (p), buf, sizeof buf, G_PRIORITY_DEFAULT,
                             NULL, read_done_cb, &result);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_assert_cmpint (result, ==, -2);
  _tether_guard_stream_abort (p->guard);
  WAIT_UNTIL (result != -2);
  g_assert_cmpint (result, ==, 0);
  pair_free (p);

  /* Neither pushed-back bytes nor bytes the peer sent that nobody read yet
   * get through after an abort. */
  p = pair_new (8192, MiB);
  peer_socket = g_socket_connection_get_socket (p->peer);
  feed_head (p);
  _tether_guard_stream_push_back (p->guard, (const guint8 *) "\x81\x00", 2);
  peer_write (p, "\x81\x00", 2);
  _tether_guard_stream_abort (p->guard);
  _tether_guard_stream_abort (p->guard);

  /* Shut down, not closed: the descriptor stays valid under any source. */
  g_assert_false (g_socket_is_closed (g_socket_connection_get_socket (p->local)));
  g_assert_true (g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (guard_input (p))));
  r = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (guard_input (p)),
                                                buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, 0);
  r = g_input_stream_read (guard_input (p), buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, 0);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_read (p->guard), ==, strlen (HEAD));

  g_assert_true (g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (guard_output (p))));
  r = g_output_stream_write (guard_output (p), "x", 1, NULL, &error);
  g_assert_cmpint (r, ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_clear_error (&error);
  r = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (guard_output (p)),
                                                  "x", 1, NULL, &error);
  g_assert_cmpint (r, ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_clear_error (&error);
  g_assert_cmpuint (_tether_guard_stream_get_bytes_written (p->guard), ==, 0);

  /* The peer sees end-of-file, and its writes fail. The timeout turns a
   * regression into a failure rather than a hang. */
  g_socket_set_timeout (peer_socket, GIVE_UP_SECONDS);
  r = g_socket_receive (peer_socket, (char *) buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, 0);
  r = g_socket_send (peer_socket, "x", 1, NULL, &error);
  g_assert_cmpint (r, ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);

  pair_free (p);
}

/* ------------------------------------------------------------------ */
/* libsoup on both ends                                                */
/* ------------------------------------------------------------------ */

static const char WS_KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";

typedef struct
{
  GSocketConnection *server_conn;
  GSocketConnection *client_conn;
  TetherGuardStream *server_guard;
  TetherGuardStream *client_guard;
  SoupServer *server;
  SoupWebsocketConnection *server_ws;
  SoupWebsocketConnection *client_ws;
  GPtrArray *server_got;
  GPtrArray *client_got;
  GError *server_error;
  gboolean server_closed;
  gboolean client_closed;
  gsize pushed_back;
  guint violations;
  guint violation_code;
  char *violation_reason;
  gboolean abort_on_violation;
} Soup;

static void
on_ws_message (SoupWebsocketConnection *ws,
               int                      type,
               GBytes                  *message,
               gpointer                 user_data)
{
  Soup *s = user_data;
  gsize len;
  const char *text = g_bytes_get_data (message, &len);

  g_assert_cmpint (type, ==, SOUP_WEBSOCKET_DATA_TEXT);
  if (ws == s->server_ws)
    {
      g_autofree char *echo = g_strdup_printf ("echo: %.*s", (int) len, text);

      g_ptr_array_add (s->server_got, g_strndup (text, len));
      soup_websocket_connection_send_text (ws, echo);
    }
  else
    {
      g_ptr_array_add (s->client_got, g_strndup (text, len));
    }
}

static void
on_ws_error (SoupWebsocketConnection *ws,
             GError                  *error,
             gpointer                 user_data)
{
  Soup *s = user_data;

  g_test_message ("%s websocket error: %s", ws == s->server_ws ? "server" : "client",
                  error->message);
  if (ws == s->server_ws && s->server_error == NULL)
    s->server_error = g_error_copy (error);
}

static void
on_ws_closed (SoupWebsocketConnection *ws,
              gpointer                 user_data)
{
  Soup *s = user_data;

  if (ws == s->server_ws)
    s->server_closed = TRUE;
  else
    s->client_closed = TRUE;
}

static void
on_websocket (SoupServer              *server,
              SoupServerMessage       *msg,
              const char              *path,
              SoupWebsocketConnection *connection,
              gpointer                 user_data)
{
  Soup *s = user_data;

  g_assert_null (s->server_ws);
  g_assert_null (soup_websocket_connection_get_extensions (connection));
  s->server_ws = g_object_ref (connection);
  g_signal_connect (connection, "message", G_CALLBACK (on_ws_message), s);
  g_signal_connect (connection, "error", G_CALLBACK (on_ws_error), s);
  g_signal_connect (connection, "closed", G_CALLBACK (on_ws_closed), s);

  /* Written straight away, so it reaches the client in the same read as
   * the 101 and exercises the push-back. */
  soup_websocket_connection_send_text (connection, "hello");
}

static void
on_server_violation (TetherGuardStream *guard,
                     guint              code,
                     const char        *reason,
                     gpointer           user_data)
{
  Soup *s = user_data;

  s->violations++;
  s->violation_code = code;
  g_free (s->violation_reason);
  s->violation_reason = g_strdup (reason);
  /* What the connection does: cut the peer off, inside the read. */
  if (s->abort_on_violation)
    _tether_guard_stream_abort (guard);
}

typedef struct
{
  guint8 data[4096];
  gsize len;
} HeadBuffer;

static void
head_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  HeadBuffer *head = user_data;
  g_autoptr(GError) error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  head->len += n;
}

static char *
expected_accept (const char *key)
{
  g_autoptr(GChecksum) sha1 = g_checksum_new (G_CHECKSUM_SHA1);
  guint8 digest[20];
  gsize digest_len = sizeof digest;

  g_checksum_update (sha1, (const guint8 *) key, -1);
  g_checksum_update (sha1, (const guint8 *) "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", -1);
  g_checksum_get_digest (sha1, digest, &digest_len);

  return g_base64_encode (digest, digest_len);
}

/* Sets up libsoup's server on one end of a socket pair and a client on the
 * other, each behind a guard, and runs the handshake the way Tether does:
 * the client writes the upgrade itself, reads the answer through its
 * guard, and pushes back what came after the head. */
static Soup *
soup_new (gsize server_max_message_size)
{
  static const char request[] =
    "GET /ws HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";
  Soup *s = g_new0 (Soup, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) local_addr = NULL;
  g_autoptr(GSocketAddress) remote_addr = NULL;
  g_autofree HeadBuffer *head = g_new0 (HeadBuffer, 1);
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autofree char *accept = NULL;
  GSocket *server_socket;
  const guint8 *end = NULL;
  gsize head_len;
  guint status = 0;

  s->server_got = g_ptr_array_new_with_free_func (g_free);
  s->client_got = g_ptr_array_new_with_free_func (g_free);

  socket_pair (&s->server_conn, &s->client_conn);
  server_socket = g_socket_connection_get_socket (s->server_conn);
  s->server_guard = _tether_guard_stream_new (G_IO_STREAM (s->server_conn), server_socket,
                                              8192, server_max_message_size);
  s->client_guard = _tether_guard_stream_new (G_IO_STREAM (s->client_conn),
                                              g_socket_connection_get_socket (s->client_conn),
                                              8192, MiB);
  g_signal_connect (s->server_guard, "violation", G_CALLBACK (on_server_violation), s);

  s->server = g_object_new (SOUP_TYPE_SERVER, NULL);
  soup_server_remove_websocket_extension (s->server, SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);
  soup_server_add_websocket_handler (s->server, "/ws", NULL, NULL, on_websocket, s, NULL);

  /* libsoup needs both addresses (with NULL it makes no connection). */
  local_addr = g_socket_get_local_address (server_socket, &error);
  g_assert_no_error (error);
  remote_addr = g_socket_get_remote_address (server_socket, &error);
  g_assert_no_error (error);
  g_assert_true (soup_server_accept_iostream (s->server, G_IO_STREAM (s->server_guard),
                                              local_addr, remote_addr, &error));
  g_assert_no_error (error);

  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (s->client_guard)),
                                            request, strlen (request), NULL, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (s->server_ws != NULL);

  while (end == NULL)
    {
      gsize before = head->len;

      g_assert_cmpuint (head->len, <, sizeof head->data);
      g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (s->client_guard)),
                                 head->data + head->len, sizeof head->data - head->len,
                                 G_PRIORITY_DEFAULT, NULL, head_read_cb, head);
      WAIT_UNTIL (head->len > before);
      end = (const guint8 *) g_strstr_len ((const char *) head->data, head->len, "\r\n\r\n");
    }
  head_len = end + 4 - head->data;
  g_assert_true (_tether_guard_stream_is_handshake_done (s->client_guard));

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_assert_true (soup_headers_parse_response ((const char *) head->data, head_len, headers,
                                              NULL, &status, NULL));
  g_assert_cmpuint (status, ==, SOUP_STATUS_SWITCHING_PROTOCOLS);
  accept = expected_accept (WS_KEY);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Sec-WebSocket-Accept"), ==, accept);
  g_assert_null (soup_message_headers_get_one (headers, "Sec-WebSocket-Extensions"));

  s->pushed_back = head->len - head_len;
  _tether_guard_stream_push_back (s->client_guard, head->data + head_len, s->pushed_back);

  uri = g_uri_parse ("ws://localhost/ws", G_URI_FLAGS_NONE, &error);
  g_assert_no_error (error);
  s->client_ws = soup_websocket_connection_new (G_IO_STREAM (s->client_guard), uri,
                                                SOUP_WEBSOCKET_CONNECTION_CLIENT,
                                                NULL, NULL, NULL);
  g_signal_connect (s->client_ws, "message", G_CALLBACK (on_ws_message), s);
  g_signal_connect (s->client_ws, "error", G_CALLBACK (on_ws_error), s);
  g_signal_connect (s->client_ws, "closed", G_CALLBACK (on_ws_closed), s);

  /* "hello" came with the 101: only the push-back can deliver it. */
  WAIT_UNTIL (s->client_got->len == 1);
  g_assert_cmpstr (g_ptr_array_index (s->client_got, 0), ==, "hello");

  return s;
}

static void
soup_free (Soup *s)
{
  g_signal_handlers_disconnect_by_data (s->server_guard, s);
  g_signal_handlers_disconnect_by_data (s->client_ws, s);
  g_signal_handlers_disconnect_by_data (s->server_ws, s);

  /* Let libsoup drop what its idle callbacks hold. */
  while (g_main_context_iteration (g_main_context_get_thread_default (), FALSE))
    ;

  g_assert_finalize_object (s->client_ws);
  g_assert_finalize_object (s->server_ws);
  g_assert_finalize_object (s->server);
  g_assert_finalize_object (s->server_guard);
  g_assert_finalize_object (s->client_guard);
  g_assert_finalize_object (s->server_conn);
  g_assert_finalize_object (s->client_conn);
  g_ptr_array_unref (s->server_got);
  g_ptr_array_unref (s->client_got);
  g_clear_error (&s->server_error);
  g_free (s->violation_reason);
  g_free (s);
}

static void
test_soup (Fixture       *f,
           gconstpointer  data)
{
  g_autoptr(GByteArray) raw = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  Soup *s = soup_new (1000);
  gint64 start;

  g_test_message ("bytes after the 101 in the head read: %" G_GSIZE_FORMAT, s->pushed_back);
  g_assert_cmpuint (s->pushed_back, >, 0);

  /* Text both ways. */
  soup_websocket_connection_send_text (s->client_ws, "one");
  soup_websocket_connection_send_text (s->client_ws, "two");
  WAIT_UNTIL (s->client_got->len == 3);
  g_assert_cmpuint (s->server_got->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (s->server_got, 0), ==, "one");
  g_assert_cmpstr (g_ptr_array_index (s->server_got, 1), ==, "two");
  g_assert_cmpstr (g_ptr_array_index (s->client_got, 1), ==, "echo: one");
  g_assert_cmpstr (g_ptr_array_index (s->client_got, 2), ==, "echo: two");
  g_assert_cmpuint (s->violations, ==, 0);

  /* A message of 3 × 400 bytes against 1000, written raw under the client's
   * libsoup (which has nothing queued), masked as a client must. */
  add_frame (raw, OP_TEXT, TRUE, LEN_SHORTEST, 400, TRUE);
  add_frame (raw, OP_CONT, TRUE, LEN_SHORTEST, 400, TRUE);
  add_frame (raw, FIN | OP_CONT, TRUE, LEN_SHORTEST, 400, TRUE);
  s->abort_on_violation = TRUE;
  start = g_get_monotonic_time ();
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (s->client_conn)),
                                            raw->data, raw->len, NULL, NULL, &error));
  g_assert_no_error (error);

  WAIT_UNTIL (s->server_closed && s->client_closed);
  g_test_message ("both ends closed %" G_GINT64_FORMAT " us after the oversize message",
                  g_get_monotonic_time () - start);
  /* Well under libsoup's 5 s polite-close timeout. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC);
  g_assert_cmpuint (s->violations, ==, 1);
  g_assert_cmpuint (s->violation_code, ==, TETHER_ERROR_MESSAGE_TOO_LARGE);
  g_assert_cmpstr (s->violation_reason, ==, "message larger than 1000 bytes");
  g_assert_error (s->server_error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
  g_assert_cmpuint (s->server_got->len, ==, 2);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (s->server_guard)));
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (s->client_guard)));
  /* libsoup's close_async reached the sockets, without a thread. */
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (s->server_conn)));
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (s->client_conn)));
  assert_no_worker_threads ();

  soup_free (s);
}

/* GPollFunc has no user data. */
static guint poll_wakeups;

static gboolean
fd_is_eventfd (int fd)
{
  g_autofree char *path = g_strdup_printf ("/proc/self/fd/%d", fd);
  g_autofree char *target = g_file_read_link (path, NULL);

  return target != NULL && strcmp (target, "anon_inode:[eventfd]") == 0;
}

/* Counts the polls that found the context's own wake-up fd (GLib's
 * eventfd, the only one in these tests) signalled. */
static int
counting_poll (GPollFD *fds,
               guint    n_fds,
               int      timeout)
{
  int ret = g_poll (fds, n_fds, timeout);

  for (guint i = 0; i < n_fds; i++)
    if ((fds[i].revents & G_IO_IN) != 0 && fd_is_eventfd (fds[i].fd))
      poll_wakeups++;

  return ret;
}

/* libsoup makes a new input source for every message it reads. Attaching
 * or destroying a source that polls an fd wakes GLib 2.74's context up
 * (an eventfd write, and one more iteration for nothing); the guard's
 * sources share one poll record, so messages go through without waking
 * the context up at all. */
static void
test_soup_no_wakeups (Fixture       *f,
                      gconstpointer  data)
{
  Soup *s = soup_new (MiB);
  const guint rounds = 50;

  g_main_context_set_poll_func (f->context, counting_poll);
  poll_wakeups = 0;
  for (guint i = 0; i < rounds; i++)
    {
      soup_websocket_connection_send_text (s->client_ws, "ping");
      WAIT_UNTIL (s->client_got->len == 2 + i);
    }
  g_test_message ("%u round trips, %u polls found the context woken up", rounds, poll_wakeups);
  g_assert_cmpuint (s->server_got->len, ==, rounds);
  /* Two messages read per round trip: one wake-up each before. */
  g_assert_cmpuint (poll_wakeups, <, rounds / 10);
  g_main_context_set_poll_func (f->context, g_poll);

  soup_websocket_connection_close (s->client_ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  WAIT_UNTIL (s->server_closed && s->client_closed);

  soup_free (s);
}

static void
test_soup_abort (Fixture       *f,
                 gconstpointer  data)
{
  gboolean server_side = GPOINTER_TO_INT (data);
  Soup *s = soup_new (MiB);
  gint64 start;

  /* Something waiting in both directions when the socket goes. */
  soup_websocket_connection_send_text (s->client_ws, "pending");
  soup_websocket_connection_send_text (s->server_ws, "pending");

  start = g_get_monotonic_time ();
  _tether_guard_stream_abort (server_side ? s->server_guard : s->client_guard);
  WAIT_UNTIL (s->server_closed && s->client_closed);
  g_test_message ("both ends closed %" G_GINT64_FORMAT " us after the abort",
                  g_get_monotonic_time () - start);
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC);
  g_assert_cmpint (soup_websocket_connection_get_state (s->client_ws), ==,
                   SOUP_WEBSOCKET_STATE_CLOSED);
  g_assert_cmpint (soup_websocket_connection_get_state (s->server_ws), ==,
                   SOUP_WEBSOCKET_STATE_CLOSED);
  /* Neither side was polite, and nothing arrived after the abort on the
   * aborted side. */
  g_assert_cmpuint (soup_websocket_connection_get_close_code (server_side ? s->server_ws : s->client_ws),
                    ==, 0);
  if (server_side)
    g_assert_cmpuint (s->server_got->len, ==, 0);
  else
    g_assert_cmpuint (s->client_got->len, ==, 1);
  g_assert_cmpuint (s->violations, ==, 0);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (s->server_conn)));
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (s->client_conn)));
  assert_no_worker_threads ();

  soup_free (s);
}

/* ------------------------------------------------------------------ */
/* TLS base                                                            */
/* ------------------------------------------------------------------ */

static GTlsCertificate *
make_certificate (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("tether-guard-XXXXXX", &error);
  g_autofree char *key = NULL;
  g_autofree char *cert = NULL;
  GTlsCertificate *certificate;
  const char *names[] = { "ca.pem", "server.pem", "server-key.pem", "client.pem",
                          "client-key.pem", "other-ca.pem", "other-server.pem",
                          "other-server-key.pem", "relay.pem", "relay-key.pem" };

  g_assert_no_error (error);
  /* Generated by GnuTLS in-process: no key is committed, no tool needed. */
  tether_test_make_certificates (dir);
  key = g_build_filename (dir, "server-key.pem", NULL);
  cert = g_build_filename (dir, "server.pem", NULL);
  certificate = g_tls_certificate_new_from_files (cert, key, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (dir, names[i], NULL);
      g_unlink (path);
    }
  g_rmdir (dir);

  return certificate;
}

static gboolean
accept_any_certificate (GTlsConnection       *conn,
                        GTlsCertificate      *peer_cert,
                        GTlsCertificateFlags  errors,
                        gpointer              user_data)
{
  return TRUE;
}

static void
handshake_done_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error));
  g_assert_no_error (error);
  (*(int *) user_data)++;
}

/* A socket pair with TLS over it, handshakes done: @server_tls on @a,
 * @client_tls (which accepts any certificate) on @b. */
static void
tls_pair (GTlsCertificate    *certificate,
          GSocketConnection **a,
          GSocketConnection **b,
          GIOStream         **server_tls,
          GIOStream         **client_tls)
{
  g_autoptr(GError) error = NULL;
  int handshakes = 0;

  socket_pair (a, b);
  *server_tls = g_tls_server_connection_new (G_IO_STREAM (*a), certificate, &error);
  g_assert_no_error (error);
  *client_tls = g_tls_client_connection_new (G_IO_STREAM (*b), NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (*client_tls, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (*server_tls), G_PRIORITY_DEFAULT,
                                    NULL, handshake_done_cb, &handshakes);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (*client_tls), G_PRIORITY_DEFAULT,
                                    NULL, handshake_done_cb, &handshakes);
  WAIT_UNTIL (handshakes == 2);
}

static void
tls_pair_unref (GSocketConnection *a,
                GSocketConnection *b,
                GIOStream         *server_tls,
                GIOStream         *client_tls)
{
  g_object_unref (client_tls);
  g_object_unref (server_tls);
  g_object_unref (a);
  g_object_unref (b);
}

/* The end of a TLS test's child: LeakSanitizer (GCC 12) crashes at exit
 * while scanning the dynamic TLS of the pool threads the handshakes leave
 * behind (GnuTLS is dlopen()ed by GIO); the tests' finalization checks
 * are the child's leak check. */
static void G_GNUC_NORETURN
tls_child_exit (void)
{
  fflush (stdout);
  fflush (stderr);
  _exit (0);
}

/* Closing over TLS sends close_notify, synchronously. When the peer reads,
 * it gets a clean end-of-file; when it has stopped reading and the socket
 * is full, the close gives the alert up instead of blocking the thread. */
static void
test_tls_close (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GError) error = NULL;

  /* glib-networking runs handshakes in GIO's thread pool (the one place a
   * thread is allowed, see DESIGN.md); keep those threads out of the
   * other tests' thread checks. */
  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }

  certificate = make_certificate ();

  for (int stalled = 0; stalled <= 1; stalled++)
    {
      GSocketConnection *a, *b;
      GIOStream *server_tls, *client_tls;
      TetherGuardStream *guard;
      GSocket *server_socket;
      gboolean closed = FALSE;
      guint8 buf[256];
      gint64 start;
      gssize r;

      tls_pair (certificate, &a, &b, &server_tls, &client_tls);
      server_socket = g_socket_connection_get_socket (a);

      guard = _tether_guard_stream_new (server_tls, server_socket, 8192, MiB);
      /* A regression must fail, not hang. */
      g_socket_set_timeout (server_socket, GIVE_UP_SECONDS);
      g_socket_set_timeout (g_socket_connection_get_socket (b), GIVE_UP_SECONDS);

      if (stalled)
        {
          /* Fill the socket: the client never reads. */
          memset (buf, 'x', sizeof buf);
          do
            r = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (G_IO_STREAM (guard))),
                                                            buf, sizeof buf, NULL, &error);
          while (r > 0);
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          g_clear_error (&error);
          g_assert_cmpuint (_tether_guard_stream_get_bytes_written (guard), >, 0);
        }

      start = g_get_monotonic_time ();
      g_io_stream_close_async (G_IO_STREAM (guard), G_PRIORITY_DEFAULT, NULL,
                               close_done_cb, &closed);
      WAIT_UNTIL (closed);
      g_test_message ("TLS close (%s) took %" G_GINT64_FORMAT " us",
                      stalled ? "peer not reading" : "peer reading",
                      g_get_monotonic_time () - start);
      g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC);
      g_assert_true (g_io_stream_is_closed (server_tls));
      g_assert_true (g_socket_is_closed (server_socket));

      if (!stalled)
        {
          /* close_notify arrived: a clean end-of-file. */
          r = g_input_stream_read (g_io_stream_get_input_stream (client_tls),
                                   buf, sizeof buf, NULL, &error);
          g_assert_no_error (error);
          g_assert_cmpint (r, ==, 0);
        }

      g_assert_finalize_object (guard);
      tls_pair_unref (a, b, server_tls, client_tls);
    }

  tls_child_exit ();
}

static gboolean
count_bytes_cb (GObject  *stream,
                gpointer  user_data)
{
  gsize *total = user_data;
  guint8 buf[1024];
  gssize r;

  while ((r = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (stream),
                                                        buf, sizeof buf, NULL, NULL)) > 0)
    *total += r;
  return G_SOURCE_CONTINUE;
}

/* Over TLS, a read that gave less than asked is taken to have emptied
 * GnuTLS (it reads the socket a record at a time, exactly as long as the
 * record): the next read says "would block" without asking, and the
 * source waits for the socket. Records written in one go are all still
 * delivered: what this checks is that GnuTLS keeps no later record from
 * the socket's sight. */
static void
test_tls_short_read (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GError) error = NULL;
  GSocketConnection *a, *b;
  GIOStream *server_tls, *client_tls;
  TetherGuardStream *guard;
  GPollableInputStream *in;
  GOutputStream *out;
  GSource *source;
  guint8 buf[1024];
  gsize total;
  gssize r;

  /* As in tls-close: the handshake threads stay in this child. */
  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }

  certificate = make_certificate ();
  tls_pair (certificate, &a, &b, &server_tls, &client_tls);

  guard = _tether_guard_stream_new (server_tls, g_socket_connection_get_socket (a), 8192, MiB);
  in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (guard)));
  out = g_io_stream_get_output_stream (client_tls);
  g_socket_set_timeout (g_socket_connection_get_socket (a), GIVE_UP_SECONDS);
  g_assert_true (g_output_stream_write_all (out, HEAD, strlen (HEAD), NULL, NULL, &error));
  g_assert_no_error (error);
  total = 0;
  while (total < strlen (HEAD))
    {
      r = g_input_stream_read (G_INPUT_STREAM (in), buf, sizeof buf, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (r, >, 0);
      total += r;
    }

  /* Three records in one go. */
  for (int i = 0; i < 3; i++)
    {
      g_assert_true (g_output_stream_write_all (out, "\x81\x03" "abc", 5, NULL, NULL, &error));
      g_assert_no_error (error);
    }
  /* The writes are in the socket already: one record per read. */
  r = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, 5);
  r = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_cmpint (r, ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);

  total = 5;
  source = g_pollable_input_stream_create_source (in, NULL);
  g_source_set_callback (source, (GSourceFunc) (void (*) (void)) count_bytes_cb, &total, NULL);
  g_source_attach (source, f->context);
  WAIT_UNTIL (total == 15);
  g_source_destroy (source);
  g_source_unref (source);

  g_io_stream_close (G_IO_STREAM (guard), NULL, NULL);
  g_assert_finalize_object (guard);
  tls_pair_unref (a, b, server_tls, client_tls);
  tls_child_exit ();
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/tether/guard/handshake-cap", test_handshake_cap);
  ADD ("/tether/guard/handshake-exact", test_handshake_exact);
  ADD ("/tether/guard/head-split", test_head_split);
  ADD ("/tether/guard/frames-bytewise", test_frames_bytewise);
  ADD ("/tether/guard/lengths", test_lengths);
  ADD ("/tether/guard/size-announced", test_size_announced);
  ADD ("/tether/guard/fragment-cap", test_fragment_cap);
  ADD ("/tether/guard/set-max-message-size", test_set_max_message_size);
  ADD ("/tether/guard/ping-in-fragmented", test_ping_in_fragmented);
  for (gsize i = 0; i < G_N_ELEMENTS (violation_cases); i++)
    g_test_add (violation_cases[i].path, Fixture, &violation_cases[i],
                fixture_setup, test_violation, fixture_teardown);
  ADD ("/tether/guard/push-back", test_push_back);
  ADD ("/tether/guard/counters", test_counters);
  ADD ("/tether/guard/async-no-thread", test_async_no_thread);
  ADD ("/tether/guard/abort", test_abort);
  ADD ("/tether/guard/input-watch", test_input_watch);
  ADD ("/tether/guard/input-watch-close", test_input_watch_close);
  ADD ("/tether/guard/short-read", test_short_read);
  ADD ("/tether/guard/soup", test_soup);
  ADD ("/tether/guard/soup-no-wakeups", test_soup_no_wakeups);
#undef ADD
  g_test_add ("/tether/guard/soup-abort-server", Fixture, GINT_TO_POINTER (TRUE),
              fixture_setup, test_soup_abort, fixture_teardown);
  g_test_add ("/tether/guard/soup-abort-client", Fixture, GINT_TO_POINTER (FALSE),
              fixture_setup, test_soup_abort, fixture_teardown);
  g_test_add ("/tether/guard/tls-close", Fixture, NULL,
              fixture_setup, test_tls_close, fixture_teardown);
  g_test_add ("/tether/guard/tls-short-read", Fixture, NULL,
              fixture_setup, test_tls_short_read, fixture_teardown);

  return g_test_run ();
}
