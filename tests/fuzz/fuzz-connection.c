/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Fuzz target: the connection's message state machine, fed a sequence of
 * WebSocket messages from a peer.
 *
 * A server-role TetherConnection runs over a real socket pair: its end is
 * a TetherGuardStream under Tether's own server-side TetherWebsocket
 * (past a minimal HTTP head, so the guard parses frames); the other end is
 * a plain client-side SoupWebsocketConnection on the raw socket, which
 * plays the peer. The method table has
 *
 *   echo        any params, answers them (undeclared mapping)
 *   subtract    "(xx)" with names minuend/subtrahend
 *   typed       "(sa{sv})" with names name/options, answers them
 *   callback    calls the peer back ("client.ping", params passed on) and
 *               answers with the peer's answer; inherits deadline/cancel
 *   call-peer   same, with a cancellable the input can fire (command 6)
 *   hold        keeps the invocation until commands 3/4 or the end
 *   notify      sends the peer a notification, then answers
 *   lease       asks the caller for more time (rpc.tether.extend), then
 *               is held like "hold"
 *   fail        answers an application error
 *   private     authenticated callers only (unix: yes, tcp: no)
 *   custom      TETHER_ACCESS_CUSTOM: allowed when it has params
 *
 * Input: one byte of settings, then messages separated by 0x00:
 *
 *   bit 0     peer negotiated "tether.v1" (hello first, which may carry
 *             SASL: ANONYMOUS, EXTERNAL or SCRAM-SHA-256 for "user")
 *             instead of plain
 *   bit 1     identity from a tcp transport (anonymous) instead of unix
 *   bits 2-3  how it ends: polite close by the server, abrupt close by
 *             the server, polite close by the peer, peer's socket gone
 *   bit 4     small limits (256-byte messages, depth 4, 2 pending calls,
 *             2 calls in progress, 512 bytes of unsent backlog instead
 *             of 16 KiB; the server's socket buffer is small either way,
 *             so that one large answer, such as a batch of errors, can
 *             reach the backlog limit before the peer reads it)
 *   bit 5     no owner callbacks
 *   bit 6     a server-wide quota of 1 callback; strikes quarantine the
 *             peer instead of disconnecting it
 *   bit 7     fast clock: deadlines of 2-3 ms, a 6 ms idle timeout, a
 *             2 ms hello window, 2 strikes, a 3 ms quarantine (with
 *             command 09, the deadline, strike and idle paths run; the
 *             rest of the time, nothing comes due within an input)
 *
 * A message is sent as text unless its first byte is a command:
 *
 *   01 bytes       raw bytes straight onto the peer's socket
 *   02 b0+1 data   one masked frame with first byte b0 (FIN, RSV, opcode)
 *   03             answer the held invocations (with their params)
 *   04 code        fail the held invocations
 *   05 data        a binary message; in data, 01 01 stands for a 00 byte
 *                  and 01 02 for 01, so that it can hold binary frames
 *   06             cancel the calls made by call-peer
 *   07             the peer closes politely
 *   08 method      the server calls the peer (no invocation behind it;
 *                  an odd-length name sends a lone string as params)
 *   09 ms          with the fast clock, let 1-4 ms pass (16 ms at most
 *                  per input)
 *
 * Text that is not UTF-8 goes out as a raw masked frame (libsoup's
 * client refuses to send it). After each message the context is iterated
 * until idle; it must get there (a bounded number of dispatches). At the
 * end the chosen close runs, then an abort if the peer did not finish it,
 * and everything must be finalized: the connection, both WebSockets, the
 * guard and every invocation.
 *
 * What the peer receives is checked too: valid JSON, JSON-RPC 2.0
 * responses (exactly one of result/error, an integer code and a string
 * message), batches as non-empty arrays of responses, binary frames (if
 * the hello offered "binary") that parse, no answer to an id more often
 * than requests with that id were sent, and "echo" answers equal to the
 * params when the id was used once (for params sent in a binary frame:
 * equal to what they would have been as JSON). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "tether-auth-private.h"
#include "tether-binary-private.h"
#include "tether-connection-private.h"
#include "tether-error.h"
#include "tether-identity-private.h"
#include "tether-invocation.h"
#include "tether-json-private.h"
#include "tether-method-table-private.h"
#include "tether-scheduler-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);

#define MAX_DISPATCHES 100000
#define GIVE_UP_MS 3000
#define MAX_WAIT_MS 16
#define HEAD "GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n"

enum
{
  CMD_RAW = 1,
  CMD_FRAME,
  CMD_ANSWER_HELD,
  CMD_FAIL_HELD,
  CMD_BINARY,
  CMD_CANCEL_CALLS,
  CMD_PEER_CLOSE,
  CMD_SERVER_CALL,
  CMD_WAIT,
};

enum
{
  END_SERVER_POLITE,
  END_SERVER_ABRUPT,
  END_PEER_POLITE,
  END_PEER_GONE,
};

typedef struct
{
  GSocketConnection       *server_stream;
  GSocketConnection       *client_stream;
  TetherGuardStream       *guard;
  TetherWebsocket         *server_ws;
  SoupWebsocketConnection *client_ws;
  TetherIdentity          *identity;
  TetherScheduler         *scheduler;
  TetherPool              *quota;
  TetherMethodTable       *methods;
  TetherConnection        *conn;

  GPtrArray               *held;         /* TetherInvocation, owned */
  GPtrArray               *cancellables; /* of call-peer, owned */
  GPtrArray               *watched;      /* weak pointers to check at the end */
  guint                    n_outstanding; /* async calls not yet finished */

  /* Requests the peer sent: id key → count, and, for ids used once, the
   * method and params. Unreliable once raw bytes were written. */
  GHashTable              *sent;
  GHashTable              *sent_echo;    /* id key → params (or JSON null) */
  GHashTable              *answered;
  gboolean                 ids_reliable;
  GByteArray              *fragments;    /* text message being built by 02 */
  gboolean                 fragments_text;
  gboolean                 offered_binary; /* a hello may have offered "binary" */

  gboolean                 fast;
  guint                    waited_ms;

  guint                    ready;
  guint                    closed;
  guint                    misbehaved;
} Fuzz;

static GMainContext *context;
/* One user, "user" with password "pencil" (SCRAM-SHA-256 without TLS),
 * plus ANONYMOUS, and EXTERNAL for unix peers. */
static TetherAuthPolicy *auth_policy;
/* TETHER_FUZZ_VERBOSE=1: print the exchange and Tether's log; 2: and
 * libsoup's. */
static int verbose;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static void
watch (Fuzz    *f,
       gpointer object)
{
  gpointer *slot = g_new (gpointer, 1);

  *slot = object;
  g_object_add_weak_pointer (object, slot);
  g_ptr_array_add (f->watched, slot);
}

/* Iterates until nothing is ready. A context that never gets there is a
 * busy loop: a finding. */
static void
run_until_idle (void)
{
  guint n = 0;

  while (g_main_context_iteration (context, FALSE))
    if (++n >= MAX_DISPATCHES)
      g_error ("the main context never went idle");
}

static gboolean
give_up_cb (gpointer user_data)
{
  g_error ("%s did not finish within %d ms", (const char *) user_data, GIVE_UP_MS);
  return G_SOURCE_REMOVE;
}

static gboolean
flag_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Lets real time pass, dispatching whatever comes due meanwhile. */
static void
wait_ms (guint ms)
{
  gboolean done = FALSE;
  GSource *timer = g_timeout_source_new (ms);

  g_source_set_callback (timer, flag_cb, &done, NULL);
  g_source_attach (timer, context);
  while (!done)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timer);
  g_source_unref (timer);
}

static gboolean
all_closed (Fuzz *f)
{
  return _tether_connection_is_closed (f->conn) &&
         _tether_websocket_get_state (f->server_ws) == TETHER_WEBSOCKET_CLOSED &&
         soup_websocket_connection_get_state (f->client_ws) == SOUP_WEBSOCKET_STATE_CLOSED;
}

static char *
id_key (json_t *id)
{
  if (json_is_integer (id))
    return g_strdup_printf ("i%" G_GINT64_FORMAT, (gint64) json_integer_value (id));
  if (json_is_string (id))
    return g_strconcat ("s", json_string_value (id), NULL);
  return NULL;
}

/* Remembers the ids of a message the peer sends (an upper bound on what
 * may be answered: invalid requests count too). */
static void
note_request (Fuzz   *f,
              json_t *message)
{
  g_autofree char *key = NULL;
  json_t *method;
  guint count;

  if (!json_is_object (message))
    return;
  key = id_key (json_object_get (message, "id"));
  if (key == NULL)
    return;

  count = GPOINTER_TO_UINT (g_hash_table_lookup (f->sent, key)) + 1;
  g_hash_table_insert (f->sent, g_strdup (key), GUINT_TO_POINTER (count));

  method = json_object_get (message, "method");
  if (count == 1 && json_is_string (method) && strcmp (json_string_value (method), "echo") == 0)
    {
      json_t *params = json_object_get (message, "params");

      g_hash_table_insert (f->sent_echo, g_strdup (key),
                           json_incref (params != NULL ? params : json_null ()));
    }
  else
    g_hash_table_remove (f->sent_echo, key);
}

static void
note_sent_text (Fuzz       *f,
                const char *text,
                gsize       len)
{
  json_t *message = json_loadb (text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
  json_t *element;
  gsize i;

  /* The server may send binary frames once a hello offered them. */
  if (len >= 8 && memmem (text, len, "\"binary\"", 8) != NULL)
    f->offered_binary = TRUE;
  if (message == NULL)
    return;
  if (json_is_array (message))
    json_array_foreach (message, i, element)
      note_request (f, element);
  else
    note_request (f, message);
  json_decref (message);
}

/* A binary frame the peer sends, noted as the JSON request it stands
 * for (params as a JSON sender would write them). */
static void
note_sent_binary (Fuzz         *f,
                  const guint8 *data,
                  gsize         len)
{
  g_autoptr(GBytes) bytes = g_bytes_new (data, len);
  TetherFrame frame;
  json_t *message;

  if (!_tether_frame_parse (bytes, &frame, NULL))
    return;
  if (frame.kind == TETHER_FRAME_REQUEST)
    {
      message = json_pack ("{s:I, s:s}", "id", (json_int_t) frame.id, "method", frame.method);
      if (frame.value != NULL)
        {
          json_t *params = _tether_variant_to_json (frame.value);

          if (!json_is_array (params) && !json_is_object (params))
            params = json_pack ("[o]", params);
          json_object_set_new (message, "params", params);
        }
      note_request (f, message);
      json_decref (message);
    }
  _tether_frame_clear (&frame);
}

/* ------------------------------------------------------------------ */
/* The peer                                                            */
/* ------------------------------------------------------------------ */

static void
check_response (Fuzz   *f,
                json_t *message)
{
  json_t *id = json_object_get (message, "id");
  json_t *result = json_object_get (message, "result");
  json_t *error = json_object_get (message, "error");
  g_autofree char *key = NULL;

  g_assert_true (json_is_string (json_object_get (message, "jsonrpc")));
  g_assert_cmpstr (json_string_value (json_object_get (message, "jsonrpc")), ==, "2.0");
  g_assert_true ((result != NULL) != (error != NULL));
  g_assert_nonnull (id);
  g_assert_true (json_is_null (id) || json_is_integer (id) || json_is_string (id));
  if (error != NULL)
    {
      g_assert_true (json_is_object (error));
      g_assert_true (json_is_integer (json_object_get (error, "code")));
      g_assert_true (json_is_string (json_object_get (error, "message")));
    }

  key = id_key (id);
  if (key != NULL && f->ids_reliable)
    {
      guint sent = GPOINTER_TO_UINT (g_hash_table_lookup (f->sent, key));
      guint answered = GPOINTER_TO_UINT (g_hash_table_lookup (f->answered, key)) + 1;
      json_t *params = g_hash_table_lookup (f->sent_echo, key);

      if (answered > sent)
        g_error ("id %s answered %u times, sent %u times", key, answered, sent);
      g_hash_table_insert (f->answered, g_strdup (key), GUINT_TO_POINTER (answered));

      if (params != NULL && result != NULL && sent == 1 && !json_equal (params, result))
        {
          g_autofree char *a = _tether_json_dump (params, NULL);
          g_autofree char *b = _tether_json_dump (result, NULL);

          g_error ("echo of %s answered %s", a, b);
        }
    }
}

static void
on_client_message (SoupWebsocketConnection *ws,
                   int                      type,
                   GBytes                  *bytes,
                   gpointer                 user_data)
{
  Fuzz *f = user_data;
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  json_t *message;

  if (type == SOUP_WEBSOCKET_DATA_BINARY)
    {
      TetherFrame frame;

      /* Only to a peer that offered "binary": a call or a result. */
      if (verbose)
        g_printerr ("<- (binary, %" G_GSIZE_FORMAT " bytes)\n", len);
      g_assert_true (f->offered_binary);
      if (!_tether_frame_parse (bytes, &frame, &error))
        g_error ("the server sent a malformed binary frame: %s", error->message);
      g_assert_true (frame.kind == TETHER_FRAME_REQUEST || frame.value != NULL);
      if (frame.kind == TETHER_FRAME_RESULT)
        {
          message = json_pack ("{s:s, s:I, s:o}", "jsonrpc", "2.0", "id", (json_int_t) frame.id,
                               "result", _tether_variant_to_json (frame.value));
          check_response (f, message);
          json_decref (message);
        }
      else
        g_assert_cmpstr (frame.method, !=, "");
      _tether_frame_clear (&frame);
      return;
    }
  g_assert_cmpint (type, ==, SOUP_WEBSOCKET_DATA_TEXT);
  if (verbose)
    g_printerr ("<- %.*s\n", (int) len, data);
  message = _tether_json_parse (data, len, 0, &error);
  if (message == NULL)
    g_error ("the server sent invalid JSON (%s): %.*s", error->message, (int) len, data);

  if (json_is_array (message))
    {
      json_t *element;
      gsize i;

      /* Only batch answers come as arrays, and never empty. */
      g_assert_cmpuint (json_array_size (message), >, 0);
      json_array_foreach (message, i, element)
        {
          g_assert_true (json_is_object (element));
          g_assert_null (json_object_get (element, "method"));
          check_response (f, element);
        }
    }
  else
    {
      g_assert_true (json_is_object (message));
      if (json_object_get (message, "method") != NULL)
        {
          /* The server's own calls and notifications. */
          json_t *id = json_object_get (message, "id");

          g_assert_true (json_is_string (json_object_get (message, "method")));
          g_assert_true (id == NULL || (json_is_integer (id) && json_integer_value (id) > 0));
        }
      else
        check_response (f, message);
    }

  json_decref (message);
}

/* Straight onto the peer's socket, under its libsoup (which has nothing
 * queued: the context is idle between messages). What the socket does
 * not take at once is dropped. */
static void
peer_write_raw (Fuzz         *f,
                const guint8 *data,
                gsize         len)
{
  GSocket *socket = g_socket_connection_get_socket (f->client_stream);

  while (len > 0)
    {
      gssize n = g_socket_send_with_blocking (socket, (const char *) data, len, FALSE, NULL, NULL);

      if (n <= 0)
        return;
      data += n;
      len -= n;
    }
}

static void
peer_write_frame (Fuzz         *f,
                  guint8        b0,
                  const guint8 *payload,
                  gsize         len)
{
  static const guint8 mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
  g_autoptr(GByteArray) frame = g_byte_array_sized_new (len + 14);
  guint8 hdr[14];
  gsize n = 0;

  hdr[n++] = b0;
  if (len < 126)
    hdr[n++] = 0x80 | (guint8) len;
  else if (len <= G_MAXUINT16)
    {
      hdr[n++] = 0x80 | 126;
      hdr[n++] = (guint8) (len >> 8);
      hdr[n++] = (guint8) len;
    }
  else
    {
      hdr[n++] = 0x80 | 127;
      for (int shift = 56; shift >= 0; shift -= 8)
        hdr[n++] = (guint8) ((guint64) len >> shift);
    }
  memcpy (hdr + n, mask, 4);
  n += 4;
  g_byte_array_append (frame, hdr, n);
  for (gsize i = 0; i < len; i++)
    {
      guint8 c = payload[i] ^ mask[i % 4];

      g_byte_array_append (frame, &c, 1);
    }
  peer_write_raw (f, frame->data, frame->len);

  /* Follow the text messages these frames make, for the id checks. */
  switch (b0 & 0x0f)
    {
    case 0x1:
    case 0x2:
      g_byte_array_set_size (f->fragments, 0);
      f->fragments_text = (b0 & 0x0f) == 0x1;
      G_GNUC_FALLTHROUGH;
    case 0x0:
      g_byte_array_append (f->fragments, payload, len);
      if ((b0 & 0x80) && f->fragments_text)
        note_sent_text (f, (const char *) f->fragments->data, f->fragments->len);
      else if (b0 & 0x80)
        note_sent_binary (f, f->fragments->data, f->fragments->len);
      break;
    default:
      break;
    }
}

/* ------------------------------------------------------------------ */
/* Methods                                                             */
/* ------------------------------------------------------------------ */

static void
echo_cb (TetherInvocation *invocation,
         gpointer          user_data)
{
  tether_invocation_return_value (invocation, tether_invocation_get_parameters (invocation));
}

static void
subtract_cb (TetherInvocation *invocation,
             gpointer          user_data)
{
  gint64 minuend, subtrahend;

  g_variant_get (tether_invocation_get_parameters (invocation), "(xx)", &minuend, &subtrahend);
  /* Wrapping, as the peer asked for whatever it asked for. */
  tether_invocation_return_value (invocation,
                                  g_variant_new_int64 ((gint64) ((guint64) minuend - (guint64) subtrahend)));
}

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Fuzz *f = user_data;
  TetherInvocation *invocation = TETHER_INVOCATION (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  value = tether_invocation_call_peer_finish (invocation, result, &error);
  g_assert_true ((value != NULL) != (error != NULL));
  if (value != NULL)
    tether_invocation_return_value (invocation, value);
  else
    tether_invocation_return_gerror (invocation, error);
  f->n_outstanding--;
}

static void
callback_cb (TetherInvocation *invocation,
             gpointer          user_data)
{
  Fuzz *f = user_data;

  f->n_outstanding++;
  tether_invocation_call_peer_async (invocation, "client.ping",
                                     tether_invocation_get_parameters (invocation),
                                     -1, NULL, call_done_cb, f);
}

static void
call_peer_cb (TetherInvocation *invocation,
              gpointer          user_data)
{
  Fuzz *f = user_data;
  GCancellable *cancellable = g_cancellable_new ();

  g_ptr_array_add (f->cancellables, cancellable);
  f->n_outstanding++;
  tether_invocation_call_peer_async (invocation, "client.get", NULL, -1,
                                     cancellable, call_done_cb, f);
}

static void
hold_cb (TetherInvocation *invocation,
         gpointer          user_data)
{
  Fuzz *f = user_data;

  watch (f, invocation);
  g_ptr_array_add (f->held, g_object_ref (invocation));
}

static void
notify_cb (TetherInvocation *invocation,
           gpointer          user_data)
{
  Fuzz *f = user_data;

  _tether_connection_send_notification (f->conn, "client.note",
                                        tether_invocation_get_parameters (invocation), NULL);
  tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
}

static void
lease_cb (TetherInvocation *invocation,
          gpointer          user_data)
{
  g_autoptr(GError) error = NULL;

  if (!tether_invocation_extend_deadline (invocation, 5000, &error))
    g_assert_nonnull (error);
  hold_cb (invocation, user_data);
}

static void
fail_cb (TetherInvocation *invocation,
         gpointer          user_data)
{
  tether_invocation_return_error_literal (invocation, 42, "failed on purpose");
}

static void
server_call_done_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  Fuzz *f = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  value = _tether_connection_call_finish (result, server_call_done_cb, &error);
  g_assert_true ((value != NULL) != (error != NULL));
  f->n_outstanding--;
}

static void
add_methods (Fuzz *f)
{
  static const char * const xx_names[] = { "minuend", "subtrahend", NULL };
  static const char * const typed_names[] = { "name", "options", NULL };

  f->methods = _tether_method_table_new ();
  _tether_method_table_add (f->methods, "echo", NULL, NULL, TETHER_ACCESS_ANY, echo_cb, f, NULL);
  _tether_method_table_add (f->methods, "subtract", "(xx)", xx_names, TETHER_ACCESS_ANY,
                            subtract_cb, f, NULL);
  _tether_method_table_add (f->methods, "typed", "(sa{sv})", typed_names, TETHER_ACCESS_ANY,
                            echo_cb, f, NULL);
  _tether_method_table_add (f->methods, "callback", NULL, NULL, TETHER_ACCESS_ANY,
                            callback_cb, f, NULL);
  _tether_method_table_add (f->methods, "call-peer", NULL, NULL, TETHER_ACCESS_ANY,
                            call_peer_cb, f, NULL);
  _tether_method_table_add (f->methods, "hold", NULL, NULL, TETHER_ACCESS_ANY, hold_cb, f, NULL);
  _tether_method_table_add (f->methods, "notify", NULL, NULL, TETHER_ACCESS_ANY,
                            notify_cb, f, NULL);
  _tether_method_table_add (f->methods, "lease", NULL, NULL, TETHER_ACCESS_ANY, lease_cb, f, NULL);
  _tether_method_table_add (f->methods, "fail", NULL, NULL, TETHER_ACCESS_ANY, fail_cb, f, NULL);
  _tether_method_table_add (f->methods, "private", NULL, NULL, TETHER_ACCESS_AUTHENTICATED,
                            echo_cb, f, NULL);
  _tether_method_table_add (f->methods, "custom", NULL, NULL, TETHER_ACCESS_CUSTOM,
                            echo_cb, f, NULL);
}

/* ------------------------------------------------------------------ */
/* Owner                                                               */
/* ------------------------------------------------------------------ */

static gboolean
owner_authorize (gpointer          owner,
                 TetherConnection *conn,
                 TetherInvocation *invocation)
{
  return tether_invocation_get_parameters (invocation) != NULL;
}

static void
owner_ready (gpointer          owner,
             TetherConnection *conn)
{
  Fuzz *f = owner;

  f->ready++;
  g_assert_cmpuint (f->ready, ==, 1);
}

static void
owner_closed (gpointer          owner,
              TetherConnection *conn,
              const GError     *error)
{
  Fuzz *f = owner;

  g_assert_nonnull (error);
  f->closed++;
  g_assert_cmpuint (f->closed, ==, 1);
}

static void
owner_misbehaved (gpointer           owner,
                  TetherConnection  *conn,
                  TetherMisbehavior  reason,
                  const char        *details,
                  const char        *action)
{
  Fuzz *f = owner;

  g_assert_nonnull (details);
  g_assert_true (g_utf8_validate (details, -1, NULL));
  g_assert_nonnull (action);
  f->misbehaved++;
}

static const TetherConnectionOwnerFuncs owner_funcs = {
  .authorize = owner_authorize,
  .ready = owner_ready,
  .closed = owner_closed,
  .misbehaved = owner_misbehaved,
};

/* ------------------------------------------------------------------ */
/* Set-up and tear-down                                                */
/* ------------------------------------------------------------------ */

static void
fuzz_setup (Fuzz    *f,
            guint8   settings)
{
  g_autoptr(GSocket) sa = NULL;
  g_autoptr(GSocket) sb = NULL;
  g_autoptr(GUri) uri = NULL;
  const char *protocol = (settings & 0x01) ? TETHER_SUBPROTOCOL : NULL;
  gboolean small = (settings & 0x10) != 0;
  gboolean fast = (settings & 0x80) != 0;
  guint8 head[sizeof HEAD - 1];
  /* Without the fast clock nothing comes due within an input, so runs do
   * not depend on the machine's speed. */
  TetherLimits limits = {
    .default_timeout_ms = fast ? 2 : 10000,
    .max_timeout_ms = fast ? 3 : 10000,
    .incoming_default_timeout_ms = fast ? 2 : 10000,
    .incoming_max_timeout_ms = fast ? 3 : 10000,
    .max_message_size = small ? 256 : 64 * 1024,
    .max_depth = small ? 4 : 32,
    .max_pending_calls = small ? 2 : 16,
    .max_unsent_bytes = small ? 512 : 16 * 1024,
    .handshake_timeout_ms = fast ? 2 : 10000,
    .max_invocations = small ? 2 : 64,
    .idle_timeout_ms = fast ? 6 : 0,
    .keepalive_interval_ms = 0,
    .max_strikes = fast ? 2 : 0,
    .strike_window_ms = 1000,
    .misbehavior_action = (settings & 0x40) ? TETHER_MISBEHAVIOR_ACTION_QUARANTINE
                                            : TETHER_MISBEHAVIOR_ACTION_DISCONNECT,
    .quarantine_ms = 3,
  };
  int fds[2];
  int sndbuf = 4096;

  f->held = g_ptr_array_new_with_free_func (g_object_unref);
  f->cancellables = g_ptr_array_new_with_free_func (g_object_unref);
  f->watched = g_ptr_array_new ();
  f->sent = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  f->sent_echo = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) json_decref);
  f->answered = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  f->ids_reliable = TRUE;
  f->fast = fast;
  f->fragments = g_byte_array_new ();

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  g_assert_cmpint (setsockopt (fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), ==, 0);
  sa = g_socket_new_from_fd (fds[0], NULL);
  sb = g_socket_new_from_fd (fds[1], NULL);
  g_assert_nonnull (sa);
  g_assert_nonnull (sb);
  f->server_stream = g_socket_connection_factory_create_connection (sa);
  f->client_stream = g_socket_connection_factory_create_connection (sb);

  /* The guard wants its HTTP head before frames: the peer sends a bare
   * one, read through the guard as SoupServer would. */
  f->guard = _tether_guard_stream_new (G_IO_STREAM (f->server_stream), sa, 8192,
                                       limits.max_message_size);
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (f->client_stream)),
                                            HEAD, sizeof head, NULL, NULL, NULL));
  g_assert_true (g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (f->guard)),
                                          head, sizeof head, NULL, NULL, NULL));
  g_assert_true (_tether_guard_stream_is_handshake_done (f->guard));

  uri = g_uri_parse ("ws://localhost/ws", G_URI_FLAGS_NONE, NULL);
  f->server_ws = _tether_websocket_new (f->guard, FALSE, protocol);
  f->client_ws = soup_websocket_connection_new (G_IO_STREAM (f->client_stream), uri,
                                                SOUP_WEBSOCKET_CONNECTION_CLIENT,
                                                NULL, protocol, NULL);
  soup_websocket_connection_set_keepalive_interval (f->client_ws, 0);
  soup_websocket_connection_set_max_incoming_payload_size (f->client_ws, 0);
  g_signal_connect (f->client_ws, "message", G_CALLBACK (on_client_message), f);

  f->identity = _tether_identity_new_from_socket ((settings & 0x02) ? TETHER_TRANSPORT_TCP
                                                                    : TETHER_TRANSPORT_UNIX,
                                                  f->server_stream, NULL, FALSE);
  f->scheduler = _tether_scheduler_new (context);
  f->quota = _tether_pool_new ((settings & 0x40) ? 1 : 1000, TETHER_POOL_EVICT_OLDEST);
  add_methods (f);

  f->conn = _tether_connection_new (TETHER_CONNECTION_ROLE_SERVER, f->scheduler, &limits,
                                    f->quota, auth_policy, f->methods,
                                    (settings & 0x20) ? NULL : &owner_funcs, f);
  _tether_connection_start (f->conn, f->server_ws, f->guard, f->identity,
                            g_get_monotonic_time () + limits.handshake_timeout_ms * 1000);

  watch (f, f->conn);
  watch (f, f->client_ws);
  watch (f, f->guard);
  watch (f, f->identity);
  watch (f, f->server_stream);
  watch (f, f->client_stream);
}

static void
answer_held (Fuzz    *f,
             gboolean fail,
             int      code)
{
  g_autoptr(GPtrArray) held = g_steal_pointer (&f->held);

  f->held = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < held->len; i++)
    {
      TetherInvocation *invocation = held->pdata[i];

      if (fail)
        tether_invocation_return_error_literal (invocation, code, "held, then failed");
      else
        tether_invocation_return_value (invocation, tether_invocation_get_parameters (invocation));
    }
}

static void
send_message (Fuzz         *f,
              const guint8 *data,
              gsize         len)
{
  gboolean open = soup_websocket_connection_get_state (f->client_ws) == SOUP_WEBSOCKET_STATE_OPEN;
  guint8 command = len > 0 ? data[0] : 0;

  if (verbose)
    {
      g_autofree char *text = g_utf8_make_valid ((const char *) data, len);

      g_printerr ("%s %s\n", open ? "->" : "(closed)", text);
    }

  switch (command)
    {
    case CMD_RAW:
      f->ids_reliable = FALSE;
      f->offered_binary = TRUE;   /* who knows what the raw bytes said */
      if (open)
        peer_write_raw (f, data + 1, len - 1);
      return;

    case CMD_FRAME:
      if (open && len >= 2)
        peer_write_frame (f, data[1] - 1, data + 2, len - 2);
      return;

    case CMD_ANSWER_HELD:
    case CMD_FAIL_HELD:
      answer_held (f, command == CMD_FAIL_HELD, len >= 2 ? -32100 - data[1] : 7);
      return;

    case CMD_BINARY:
      if (open)
        {
          g_autoptr(GByteArray) unescaped = g_byte_array_sized_new (len);
          g_autoptr(GBytes) bytes = NULL;

          for (gsize i = 1; i < len; i++)
            {
              guint8 c = data[i];

              if (c == 0x01 && i + 1 < len && (data[i + 1] == 0x01 || data[i + 1] == 0x02))
                c = data[++i] - 1;
              g_byte_array_append (unescaped, &c, 1);
            }
          note_sent_binary (f, unescaped->data, unescaped->len);
          bytes = g_byte_array_free_to_bytes (g_steal_pointer (&unescaped));
          soup_websocket_connection_send_message (f->client_ws, SOUP_WEBSOCKET_DATA_BINARY, bytes);
        }
      return;

    case CMD_CANCEL_CALLS:
      for (guint i = 0; i < f->cancellables->len; i++)
        g_cancellable_cancel (f->cancellables->pdata[i]);
      return;

    case CMD_PEER_CLOSE:
      if (open)
        soup_websocket_connection_close (f->client_ws, SOUP_WEBSOCKET_CLOSE_NORMAL, "bye");
      return;

    case CMD_SERVER_CALL:
      {
        g_autofree char *method = g_utf8_make_valid ((const char *) data + 1, len - 1);
        TetherCallOptions options = TETHER_CALL_OPTIONS_INIT;

        options.method = method;
        options.params = len % 2 == 0 ? g_variant_new_string ("lone")
                                      : g_variant_new ("(s)", "from the server");
        f->n_outstanding++;
        _tether_connection_call_async (f->conn, &options, NULL, server_call_done_cb, NULL,
                                       server_call_done_cb, f);
      }
      return;

    case CMD_WAIT:
      {
        guint ms = len >= 2 ? data[1] % 4 + 1 : 1;

        if (f->fast && f->waited_ms + ms <= MAX_WAIT_MS)
          {
            f->waited_ms += ms;
            wait_ms (ms);
          }
      }
      return;

    default:
      break;
    }

  if (!open)
    return;

  note_sent_text (f, (const char *) data, len);
  if (g_utf8_validate_len ((const char *) data, len, NULL))
    {
      g_autoptr(GBytes) bytes = g_bytes_new (data, len);

      soup_websocket_connection_send_message (f->client_ws, SOUP_WEBSOCKET_DATA_TEXT, bytes);
    }
  else
    {
      /* libsoup's client refuses to send it: frame it by hand. */
      peer_write_frame (f, 0x81, data, len);
    }
}

static void
fuzz_teardown (Fuzz  *f,
               guint8 settings)
{
  g_autoptr(GError) error = NULL;
  GSource *give_up;

  /* The chosen end. */
  switch ((settings >> 2) & 0x3)
    {
    case END_SERVER_POLITE:
      _tether_connection_close (f->conn, NULL);
      break;
    case END_SERVER_ABRUPT:
      error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "fuzz");
      _tether_connection_close (f->conn, error);
      break;
    case END_PEER_POLITE:
      if (soup_websocket_connection_get_state (f->client_ws) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close (f->client_ws, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, NULL);
      break;
    case END_PEER_GONE:
      g_socket_shutdown (g_socket_connection_get_socket (f->client_stream), TRUE, TRUE, NULL);
      break;
    default:
      g_assert_not_reached ();
    }
  run_until_idle ();

  /* A peer the fuzzer confused may never finish a polite close, and
   * libsoup would wait seconds for it: cut both sockets (the engine's own
   * deadline is tested elsewhere). */
  if (!all_closed (f))
    {
      _tether_guard_stream_abort (f->guard);
      g_socket_shutdown (g_socket_connection_get_socket (f->client_stream), TRUE, TRUE, NULL);
    }

  give_up = g_timeout_source_new (GIVE_UP_MS);
  g_source_set_callback (give_up, give_up_cb, (gpointer) "the close", NULL);
  g_source_attach (give_up, context);
  while (!all_closed (f) || f->n_outstanding > 0)
    g_main_context_iteration (context, TRUE);

  /* Handlers that still hold an invocation may use it after the close:
   * a callback fails, an answer is ignored. */
  for (guint i = 0; i < f->held->len; i++)
    {
      f->n_outstanding++;
      tether_invocation_call_peer_async (f->held->pdata[i], "client.late", NULL, -1, NULL,
                                         call_done_cb, f);
    }
  while (f->n_outstanding > 0)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (give_up);
  g_source_unref (give_up);

  /* Closing answered or cancelled everything. */
  g_assert_cmpuint (_tether_connection_get_n_pending (f->conn), ==, 0);
  g_assert_cmpuint (_tether_pool_get_used (f->quota), ==, 0);
  {
    TetherStatistics stats = { 0 };

    _tether_connection_add_statistics (f->conn, &stats);
    g_assert_cmpuint (stats.connections, ==, 1);
    g_assert_cmpuint (stats.pending_calls, ==, 0);
    g_assert_cmpuint (stats.invocations, ==, 0);
    g_assert_cmpuint (stats.bytes_queued, ==, 0);
    g_assert_cmpuint (stats.bytes_received, ==, _tether_guard_stream_get_bytes_read (f->guard));
  }
  if (!(settings & 0x20))
    g_assert_cmpuint (f->closed, ==, 1);
  for (guint i = 0; i < f->held->len; i++)
    g_assert_true (tether_invocation_is_notification (f->held->pdata[i]) ||
                   tether_invocation_has_replied (f->held->pdata[i]));

  g_clear_pointer (&f->held, g_ptr_array_unref);
  g_clear_pointer (&f->cancellables, g_ptr_array_unref);
  g_signal_handlers_disconnect_by_data (f->client_ws, f);
  g_clear_object (&f->conn);
  g_clear_pointer (&f->server_ws, _tether_websocket_unref);
  g_clear_object (&f->client_ws);
  g_clear_object (&f->guard);
  g_clear_object (&f->identity);
  g_clear_object (&f->server_stream);
  g_clear_object (&f->client_stream);
  run_until_idle ();

  /* Everything went away: no reference cycle, nothing kept by a source. */
  for (guint i = 0; i < f->watched->len; i++)
    {
      gpointer *slot = f->watched->pdata[i];

      if (*slot != NULL)
        g_error ("%s %p was not finalized", G_OBJECT_TYPE_NAME (*slot), *slot);
      g_free (slot);
    }
  g_ptr_array_unref (f->watched);

  g_clear_pointer (&f->methods, _tether_method_table_free);
  g_clear_pointer (&f->scheduler, _tether_scheduler_unref);
  g_clear_pointer (&f->quota, _tether_pool_unref);
  g_hash_table_unref (f->sent);
  g_hash_table_unref (f->sent_echo);
  g_hash_table_unref (f->answered);
  g_byte_array_unref (f->fragments);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                        */
/* ------------------------------------------------------------------ */

static GLogWriterOutput
log_writer (GLogLevelFlags   log_level,
            const GLogField *fields,
            gsize            n_fields,
            gpointer         user_data)
{
  /* The engine logs every peer it cuts off: expected here, and slow. A
   * critical or a warning is a finding. */
  if (log_level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    {
      g_log_writer_standard_streams (log_level, fields, n_fields, user_data);
      abort ();
    }
  if (verbose > 0)
    {
      for (gsize i = 0; i < n_fields; i++)
        if (verbose < 2 && strcmp (fields[i].key, "GLIB_DOMAIN") == 0 &&
            g_strcmp0 (fields[i].value, "libsoup") == 0)
          return G_LOG_WRITER_HANDLED;
      return g_log_writer_standard_streams (log_level, fields, n_fields, user_data);
    }
  return G_LOG_WRITER_HANDLED;
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  verbose = g_getenv ("TETHER_FUZZ_VERBOSE") != NULL ? atoi (g_getenv ("TETHER_FUZZ_VERBOSE")) : 0;
  g_log_set_writer_func (log_writer, NULL, NULL);
  g_autoptr(GError) error = NULL;
  char *secrets;

  context = g_main_context_new ();
  g_main_context_push_thread_default (context);

  auth_policy = _tether_auth_policy_new ();
  auth_policy->allow_plain_scram = TRUE;
  auth_policy->allow_anonymous = TRUE;
  secrets = _tether_scram_secrets_from_password ("pencil", TETHER_SCRAM_MIN_ITERATIONS, &error);
  g_assert_no_error (error);
  g_hash_table_insert (auth_policy->users, g_strdup ("user"), secrets);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  Fuzz f = { 0 };
  guint8 settings;
  const guint8 *p, *end;

  if (size == 0)
    return 0;
  if (context == NULL)
    LLVMFuzzerInitialize (NULL, NULL);

  settings = data[0];
  fuzz_setup (&f, settings);
  run_until_idle ();

  p = data + 1;
  end = data + size;
  while (p < end)
    {
      const guint8 *sep = memchr (p, 0, end - p);
      const guint8 *stop = sep != NULL ? sep : end;

      send_message (&f, p, stop - p);
      run_until_idle ();
      p = sep != NULL ? sep + 1 : end;
    }

  fuzz_teardown (&f, settings);
  return 0;
}
