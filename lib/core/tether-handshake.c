/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include "tether-auth-private.h"
#include "tether-error-private.h"
#include "tether-engine-private.h"
#include "tether-handshake-private.h"
#include "tether-log-private.h"
#include "tether-identity-private.h"
#include "tether-version.h"

G_DEFINE_INTERFACE (TetherHelloExtender, _tether_hello_extender, G_TYPE_OBJECT)

static void
_tether_hello_extender_default_init (TetherHelloExtenderInterface *iface)
{
}

/* An offer made in the hello, and the server's answer to it. */
typedef struct
{
  TetherHelloExtender *extender;
  const char          *member;
  GVariant            *answer;
} Offer;

static void
offer_free (Offer *offer)
{
  g_object_unref (offer->extender);
  g_clear_pointer (&offer->answer, g_variant_unref);
  g_free (offer);
}

typedef struct
{
  TetherConnection  *conn;
  char              *uri;
  gint64             deadline;
  gboolean           require_channel_binding;
  gboolean           binary_frames;
  GPtrArray         *offered;          /* Offer* */
  gboolean           tls;
  TetherAuthSession *auth;
  const char        *simple_mechanism; /* EXTERNAL or ANONYMOUS asked for */
  guint              auth_steps;
} HelloData;

static void
hello_data_free (HelloData *data)
{
  g_clear_object (&data->conn);
  g_free (data->uri);
  g_clear_pointer (&data->auth, _tether_auth_free);
  g_ptr_array_unref (data->offered);
  g_free (data);
}

static int
remaining_ms (HelloData *data)
{
  return (int) MAX (0, (data->deadline - g_get_monotonic_time ()) / 1000);
}

/* The server's answers during the hello map to what a caller can match:
 * channel binding, authentication, or the handshake in general. */
static GError *
hello_error (HelloData *data,
             GError    *error)
{
  GError *wrapped;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    wrapped = g_error_new (error->domain, error->code,
                           "Connecting to %s: no answer to the hello in time", data->uri);
  else if (error->domain == TETHER_REMOTE_ERROR &&
           _tether_error_from_wire_code (error->code) == TETHER_ERROR_CHANNEL_BINDING_FAILED)
    wrapped = g_error_new (TETHER_ERROR, TETHER_ERROR_CHANNEL_BINDING_FAILED,
                           "Channel binding failed: the server saw another TLS channel than "
                           "ours (a man in the middle?): %s", error->message);
  else if (error->domain == TETHER_REMOTE_ERROR &&
           _tether_error_from_wire_code (error->code) == TETHER_ERROR_UNAUTHENTICATED)
    wrapped = g_error_new (TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED,
                           "The server refused the credentials: %s", error->message);
  else if (error->domain == TETHER_ERROR)
    wrapped = g_error_copy (error);
  else
    wrapped = g_error_new (TETHER_ERROR, TETHER_ERROR_HANDSHAKE_FAILED,
                           "The server refused the hello: %s", error->message);
  g_error_free (error);
  return wrapped;
}

/* The one way the hello ends. Steals @error. On success the extenders
 * get the server's answers. */
static void
hello_complete (GTask  *task,
                GError *error)
{
  HelloData *data = g_task_get_task_data (task);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    {
      for (guint i = 0; i < data->offered->len; i++)
        {
          Offer *offer = data->offered->pdata[i];

          TETHER_HELLO_EXTENDER_GET_IFACE (offer->extender)->answered (offer->extender, data->conn,
                                                                       data->uri, offer->answer);
        }
      g_task_return_boolean (task, TRUE);
    }
  g_object_unref (task);
}

static void auth_reply_cb (GObject *source, GAsyncResult *result, gpointer user_data);

/* One answer from the server during the hello: the hello's own "auth"
 * member or an rpc.tether.auth reply. */
static void
handle_auth_answer (GTask    *task,
                    GVariant *auth)
{
  HelloData *data = g_task_get_task_data (task);
  const char *status = _tether_vardict_get_string (auth, "status");
  const char *server_data = _tether_vardict_get_string (auth, "data");
  g_autofree char *output = NULL;
  GError *error = NULL;
  TetherAuthStatus st;

  if (status == NULL || ++data->auth_steps > 8)
    {
      /* We asked to authenticate and the server ignored it: over TLS that
       * is a server that will not bind to the channel. No downgrade. */
      hello_complete (task, g_error_new (TETHER_ERROR,
                                         data->tls && data->require_channel_binding
                                           ? TETHER_ERROR_CHANNEL_BINDING_FAILED
                                           : TETHER_ERROR_UNAUTHENTICATED,
                                         "The server did not take part in authentication%s",
                                         data->tls ? " bound to the TLS channel" : ""));
      return;
    }

  st = _tether_auth_step (data->auth, server_data != NULL ? server_data : "", &output, &error);
  if (st == TETHER_AUTH_FAILED)
    {
      hello_complete (task, error);
      return;
    }

  if (strcmp (status, "ok") == 0)
    {
      /* Mutual: the server's final proof verified on our side too. */
      if (st != TETHER_AUTH_OK)
        {
          hello_complete (task, g_error_new_literal (TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED,
                                                     "The server claimed success without proving "
                                                     "that it knows the credentials"));
          return;
        }
      hello_complete (task, NULL);
      return;
    }

  {
    g_autoptr(GVariant) params = NULL;
    GVariantDict dict;
    TetherCallOptions options = TETHER_CALL_OPTIONS_INIT;

    g_variant_dict_init (&dict, NULL);
    g_variant_dict_insert (&dict, "data", "s", output != NULL ? output : "");
    params = g_variant_ref_sink (g_variant_dict_end (&dict));
    options.method = "rpc.tether.auth";
    options.params = params;
    options.timeout_msec = remaining_ms (data);
    _tether_connection_call_async (data->conn, &options, NULL, auth_reply_cb,
                                   g_task_get_cancellable (task), auth_reply_cb, task);
  }
}

static void
auth_reply_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  HelloData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(GVariant) reply = _tether_connection_call_finish (result, auth_reply_cb, &error);

  if (reply == NULL)
    {
      hello_complete (task, hello_error (data, error));
      return;
    }
  handle_auth_answer (task, reply);
}

/* The hello's reply (the call itself succeeded). */
static void
handle_hello_reply (GTask    *task,
                    GVariant *reply)
{
  HelloData *data = g_task_get_task_data (task);
  gint64 version = 0;

  if (!_tether_vardict_get_int (reply, "version", &version) || version != TETHER_PROTOCOL_VERSION)
    {
      hello_complete (task, g_error_new (TETHER_ERROR, TETHER_ERROR_UNSUPPORTED_VERSION,
                                         "The server speaks another protocol version"));
      return;
    }

  /* Binary frames once open, if the server took them up. */
  if (data->binary_frames && _tether_vardict_lists (reply, "features", TETHER_FEATURE_BINARY))
    _tether_connection_set_binary (data->conn);

  /* The answers to what we offered. */
  for (guint i = 0; i < data->offered->len; i++)
    {
      Offer *offer = data->offered->pdata[i];

      offer->answer = g_variant_lookup_value (reply, offer->member, NULL);
    }

  if (data->auth != NULL)
    {
      g_autoptr(GVariant) auth = g_variant_lookup_value (reply, "auth", NULL);

      handle_auth_answer (task, auth);
      return;
    }

  /* EXTERNAL or ANONYMOUS: one step, which the server must accept. */
  if (data->simple_mechanism != NULL)
    {
      g_autoptr(GVariant) auth = g_variant_lookup_value (reply, "auth", NULL);

      if (g_strcmp0 (_tether_vardict_get_string (auth, "status"), "ok") != 0)
        {
          hello_complete (task, g_error_new (TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED,
                                             "The server did not accept %s",
                                             data->simple_mechanism));
          return;
        }
    }
  hello_complete (task, NULL);
}

static void
hello_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  HelloData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(GVariant) reply = _tether_connection_call_finish (result, hello_cb, &error);

  if (reply == NULL)
    {
      hello_complete (task, hello_error (data, error));
      return;
    }
  handle_hello_reply (task, reply);
}

void
_tether_hello_client_async (TetherConnection               *conn,
                            const TetherHelloClientOptions *options,
                            GCancellable                   *cancellable,
                            GAsyncReadyCallback             callback,
                            gpointer                        user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  HelloData *data = g_new0 (HelloData, 1);
  g_autoptr(GVariant) params = NULL;
  TetherCallOptions call = TETHER_CALL_OPTIONS_INIT;
  GVariantDict dict;

  g_task_set_source_tag (task, _tether_hello_client_async);
  g_task_set_task_data (task, data, (GDestroyNotify) hello_data_free);
  data->conn = g_object_ref (conn);
  data->uri = g_strdup (options->uri);
  data->deadline = options->deadline;
  data->require_channel_binding = options->require_channel_binding;
  data->binary_frames = options->binary_frames;
  data->tls = _tether_connection_is_tls (conn);
  data->offered = g_ptr_array_new_with_free_func ((GDestroyNotify) offer_free);

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "version", "x", (gint64) TETHER_PROTOCOL_VERSION);
  g_variant_dict_insert (&dict, "implementation", "s", "tether/" TETHER_VERSION_S);
  g_variant_dict_insert_value (&dict, "features",
                               g_variant_new_strv ((const char *[]) { "cancel", "deadline", "lease",
                                                                      TETHER_FEATURE_BINARY },
                                                   options->binary_frames ? 4 : 3));

  for (guint i = 0; i < options->n_extenders; i++)
    {
      TetherHelloExtender *extender = options->extenders[i];
      const char *member = NULL;
      GVariant *value = TETHER_HELLO_EXTENDER_GET_IFACE (extender)->offer (extender, options->uri,
                                                                           &member);
      Offer *offer;

      if (value == NULL)
        continue;
      g_variant_dict_insert_value (&dict, member, value);
      offer = g_new0 (Offer, 1);
      offer->extender = g_object_ref (extender);
      offer->member = member;
      g_ptr_array_add (data->offered, offer);
    }

  /* With credentials, the first SASL step rides in the hello. Over TLS
   * only the channel-bound mechanism is used. */
  if (options->username != NULL)
    {
      GError *error = NULL;
      g_autoptr(GBytes) binding = _tether_connection_get_channel_binding (conn, &error);
      const char *mechanism = data->tls ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256";
      g_autofree char *first = NULL;
      GVariantDict auth;

      if (error == NULL)
        data->auth = _tether_auth_client_new (mechanism, options->username, options->password,
                                              binding, &error);
      if (data->auth == NULL ||
          _tether_auth_step (data->auth, "", &first, &error) == TETHER_AUTH_FAILED)
        {
          g_variant_dict_clear (&dict);
          hello_complete (task, error);
          return;
        }
      g_variant_dict_init (&auth, NULL);
      g_variant_dict_insert (&auth, "mechanism", "s", mechanism);
      g_variant_dict_insert (&auth, "data", "s", first != NULL ? first : "");
      g_variant_dict_insert_value (&dict, "auth", g_variant_dict_end (&auth));
    }
  else if (g_strcmp0 (options->mechanism, "EXTERNAL") == 0 ||
           g_strcmp0 (options->mechanism, "ANONYMOUS") == 0)
    {
      GVariantDict auth;

      /* Assert the transport's proof (EXTERNAL) or nothing (ANONYMOUS). */
      data->simple_mechanism = g_intern_string (options->mechanism);
      g_variant_dict_init (&auth, NULL);
      g_variant_dict_insert (&auth, "mechanism", "s", options->mechanism);
      g_variant_dict_insert_value (&dict, "auth", g_variant_dict_end (&auth));
    }
  params = g_variant_ref_sink (g_variant_dict_end (&dict));

  call.method = "rpc.tether.hello";
  call.params = params;
  call.timeout_msec = remaining_ms (data);
  _tether_connection_call_async (conn, &call, NULL, hello_cb, cancellable, hello_cb, task);
}

gboolean
_tether_hello_client_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == _tether_hello_client_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------- */
/* The server's side                                                      */

struct _TetherHelloServer
{
  TetherConnection  *conn;       /* unowned: it owns us */
  TetherAuthPolicy  *policy;     /* NULL: no users, nothing allowed */
  guint              max_message_size;
  guint              max_depth;
  TetherAuthSession *auth;       /* SASL under way */
};

TetherHelloServer *
_tether_hello_server_new (TetherConnection *conn,
                          TetherAuthPolicy *policy,
                          guint             max_message_size,
                          guint             max_depth)
{
  TetherHelloServer *self = g_new0 (TetherHelloServer, 1);

  self->conn = conn;
  self->policy = policy != NULL ? _tether_auth_policy_ref (policy) : NULL;
  self->max_message_size = max_message_size;
  self->max_depth = max_depth;
  return self;
}

void
_tether_hello_server_free (TetherHelloServer *self)
{
  g_clear_pointer (&self->policy, _tether_auth_policy_unref);
  g_clear_pointer (&self->auth, _tether_auth_free);
  g_free (self);
}

void
_tether_hello_outcome_clear (TetherHelloOutcome *out)
{
  g_clear_pointer (&out->reply, g_variant_unref);
  g_clear_pointer (&out->username, g_free);
  g_clear_error (&out->error);
}

/* Authentication failed: -32004, or -32008 naming channel binding. The
 * engine logs it and closes once the answer is out. Steals @error. */
static void
fail_auth (TetherHelloServer  *self,
           TetherHelloOutcome *out,
           GError             *error)
{
  g_clear_pointer (&out->reply, g_variant_unref);
  g_clear_pointer (&self->auth, _tether_auth_free);
  out->status = TETHER_HELLO_FAILED;
  out->code = g_error_matches (error, TETHER_ERROR, TETHER_ERROR_CHANNEL_BINDING_FAILED)
                ? TETHER_REMOTE_ERROR_CHANNEL_BINDING_FAILED
                : TETHER_REMOTE_ERROR_UNAUTHENTICATED;
  out->error = error;
}

/* The SASL mechanisms this side offers (at most 4), so that a client
 * notices a downgrade. */
static guint
hello_mechanisms (TetherHelloServer *self,
                  const char        *mechanisms[4])
{
  gboolean tls = _tether_connection_is_tls (self->conn);
  gboolean users = self->policy != NULL && g_hash_table_size (self->policy->users) > 0;
  guint n = 0;

  if (tls && users)
    mechanisms[n++] = "SCRAM-SHA-256-PLUS";
  if (!tls && users && self->policy->allow_plain_scram)
    mechanisms[n++] = "SCRAM-SHA-256";
  if (tether_identity_is_authenticated (_tether_connection_get_identity (self->conn)))
    mechanisms[n++] = "EXTERNAL";
  if (self->policy != NULL && self->policy->allow_anonymous)
    mechanisms[n++] = "ANONYMOUS";
  return n;
}

static void
add_member (GVariantBuilder *builder,
            const char      *name,
            GVariant        *value)
{
  g_variant_builder_add (builder, "{sv}", name, value);
}

/* What the hello's answer says first: who we are, what we do, and how a
 * client may authenticate. */
static void
hello_reply_begin (TetherHelloServer *self,
                   GVariantBuilder   *reply,
                   gboolean           binary,
                   const char        *mechanisms[4],
                   guint              n_mechanisms)
{
  static const char * const features[] = { "cancel", "deadline", "lease", TETHER_FEATURE_BINARY };
  static const char * const binding[] = { "tls-exporter" };
  GVariantBuilder limits;

  g_variant_builder_init (&limits, G_VARIANT_TYPE_VARDICT);
  add_member (&limits, "max_message_size", g_variant_new_int64 (self->max_message_size));
  add_member (&limits, "max_depth", g_variant_new_int64 (self->max_depth));

  g_variant_builder_init (reply, G_VARIANT_TYPE_VARDICT);
  add_member (reply, "version", g_variant_new_int64 (TETHER_PROTOCOL_VERSION));
  add_member (reply, "implementation", g_variant_new_string ("tether/" TETHER_VERSION_S));
  add_member (reply, "features", g_variant_new_strv (features, binary ? 4 : 3));
  add_member (reply, "limits", g_variant_builder_end (&limits));
  add_member (reply, "mechanisms", g_variant_new_strv (mechanisms, n_mechanisms));
  add_member (reply, "channel_binding",
              g_variant_new_strv (binding, _tether_connection_is_tls (self->conn) ? 1 : 0));
}

static const char *
policy_lookup (const char *username,
               gpointer    user_data)
{
  TetherAuthPolicy *policy = user_data;

  return g_hash_table_lookup (policy->users, username);
}

/* One SASL step: the "auth" answer (CONTINUE or DONE, a new reference),
 * or NULL when it FAILED. */
static GVariant *
auth_step (TetherHelloServer  *self,
           const char         *data,
           TetherHelloOutcome *out)
{
  GError *error = NULL;
  g_autofree char *output = NULL;
  TetherAuthStatus status = _tether_auth_step (self->auth, data, &output, &error);
  GVariantBuilder auth;

  if (status == TETHER_AUTH_FAILED)
    {
      fail_auth (self, out, error);
      return NULL;
    }
  g_variant_builder_init (&auth, G_VARIANT_TYPE_VARDICT);
  add_member (&auth, "status", g_variant_new_string (status == TETHER_AUTH_OK ? "ok" : "continue"));
  if (output != NULL)
    add_member (&auth, "data", g_variant_new_string (output));
  if (status == TETHER_AUTH_OK)
    {
      add_member (&auth, "username", g_variant_new_string (_tether_auth_get_username (self->auth)));
      out->status = TETHER_HELLO_DONE;
      out->username = g_strdup (_tether_auth_get_username (self->auth));
      out->mechanism = g_intern_string (_tether_auth_get_mechanism (self->auth));
      g_clear_pointer (&self->auth, _tether_auth_free);
    }
  else
    out->status = TETHER_HELLO_CONTINUE;
  return g_variant_ref_sink (g_variant_builder_end (&auth));
}

/* The hello's "auth" member: the first (or only) step. Its answer (a new
 * reference), or NULL if it failed (@out says so). */
static GVariant *
hello_auth (TetherHelloServer  *self,
            GVariant           *auth,
            const char         *mechanisms[4],
            guint               n_mechanisms,
            TetherHelloOutcome *out)
{
  const char *mech = _tether_vardict_get_string (auth, "mechanism");
  const char *data = _tether_vardict_get_string (auth, "data");
  TetherIdentity *identity = _tether_connection_get_identity (self->conn);
  gboolean offered = FALSE;
  GError *error = NULL;
  g_autoptr(GBytes) binding = NULL;

  if (mech == NULL)
    mech = "";
  for (guint i = 0; i < n_mechanisms; i++)
    offered = offered || strcmp (mechanisms[i], mech) == 0;
  if (!offered)
    {
      fail_auth (self, out,
                 g_error_new (TETHER_ERROR,
                              g_str_has_suffix (mech, "-PLUS") ? TETHER_ERROR_CHANNEL_BINDING_FAILED
                                                               : TETHER_ERROR_UNAUTHENTICATED,
                              "SASL mechanism “%s” is not offered here", mech));
      return NULL;
    }

  if (strcmp (mech, "EXTERNAL") == 0 || strcmp (mech, "ANONYMOUS") == 0)
    {
      GVariantBuilder answer;

      /* EXTERNAL asserts the transport's proof (kernel uid or verified
       * certificate); ANONYMOUS asserts nothing. */
      out->mechanism = g_intern_string (mech);
      if (strcmp (mech, "EXTERNAL") == 0)
        out->username = tether_identity_get_uid (identity) >= 0
          ? g_strdup_printf ("uid:%" G_GINT64_FORMAT, tether_identity_get_uid (identity))
          : g_strdup_printf ("cert:%s", tether_identity_get_certificate_sha256 (identity));
      g_variant_builder_init (&answer, G_VARIANT_TYPE_VARDICT);
      add_member (&answer, "status", g_variant_new_string ("ok"));
      return g_variant_ref_sink (g_variant_builder_end (&answer));
    }

  binding = _tether_connection_get_channel_binding (self->conn, &error);
  if (error == NULL)
    self->auth = _tether_auth_server_new (mech, binding, policy_lookup, self->policy,
                                          self->policy->fake_salt_key, &error);
  if (self->auth == NULL)
    {
      fail_auth (self, out, error);
      return NULL;
    }
  return auth_step (self, data != NULL ? data : "", out);
}

void
_tether_hello_server_hello (TetherHelloServer  *self,
                            GVariant           *params,
                            GPtrArray          *extensions,
                            TetherHelloOutcome *out)
{
  gint64 version = 0;
  const char *mechanisms[4];
  guint n_mechanisms;
  GVariantBuilder reply;
  g_autoptr(GVariant) auth = NULL;

  memset (out, 0, sizeof *out);
  if (!_tether_vardict_get_int (params, "version", &version) || version != TETHER_PROTOCOL_VERSION)
    {
      out->status = TETHER_HELLO_FAILED;
      out->code = TETHER_REMOTE_ERROR_INVALID_REQUEST;
      out->close_at_once = TRUE;
      out->error = g_error_new (TETHER_ERROR, TETHER_ERROR_UNSUPPORTED_VERSION,
                                "Unsupported protocol version (this server speaks %d)",
                                TETHER_PROTOCOL_VERSION);
      return;
    }

  out->status = TETHER_HELLO_DONE;
  /* Binary frames if the client offers them; from the open state on. */
  out->binary = _tether_vardict_lists (params, "features", TETHER_FEATURE_BINARY);
  n_mechanisms = hello_mechanisms (self, mechanisms);
  hello_reply_begin (self, &reply, out->binary, mechanisms, n_mechanisms);

  auth = g_variant_lookup_value (params, "auth", NULL);
  if (auth != NULL)
    {
      GVariant *answer = hello_auth (self, auth, mechanisms, n_mechanisms, out);

      if (answer == NULL)
        {
          g_variant_builder_clear (&reply);
          return;
        }
      add_member (&reply, "auth", answer);
      g_variant_unref (answer);
    }

  /* Extensions answer what the client offered, once nothing failed. */
  for (guint i = 0; extensions != NULL && i < extensions->len; i++)
    {
      const TetherHelloExtension *ext = extensions->pdata[i];
      g_autoptr(GVariant) offer = g_variant_lookup_value (params, ext->member, NULL);
      g_autoptr(GVariant) answer = NULL;

      if (offer != NULL)
        answer = ext->answer (self->conn, offer, ext->user_data);
      if (answer != NULL)
        add_member (&reply, ext->member, g_variant_take_ref (answer));
    }
  out->reply = g_variant_ref_sink (g_variant_builder_end (&reply));
}

gboolean
_tether_hello_server_auth (TetherHelloServer  *self,
                           GVariant           *params,
                           TetherHelloOutcome *out)
{
  const char *data = _tether_vardict_get_string (params, "data");

  if (self->auth == NULL)
    return FALSE;

  memset (out, 0, sizeof *out);
  out->reply = auth_step (self, data != NULL ? data : "", out);
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* The server's side on the engine                                        */

/* The hello failed: the peer is told why. A failed authentication is
 * logged and the connection closes once the answer is out; anything else
 * (an unknown version) cuts it at once. */
static void
peer_fail (TetherConnection      *self,
           Batch                 *batch,
           const TetherMessageId *id,
           TetherHelloOutcome    *out)
{
  _tether_connection_reply_error (self, batch, id, out->code, out->error->message);
  if (out->close_at_once)
    {
      _tether_connection_teardown (self, out->error);
      return;
    }

  {
    g_autofree char *who = tether_identity_to_string (self->identity);

    _tether_log_limited (self->scheduler, G_LOG_LEVEL_MESSAGE, "authentication-failed",
                         _tether_identity_get_pool_key (self->identity),
                         "Authentication of %s failed: %s", who, out->error->message);
  }
  g_clear_pointer (&self->hello, _tether_hello_server_free);
  if (self->close_error == NULL)
    self->close_error = g_error_copy (out->error);
  _tether_connection_teardown (self, NULL);
}

/* The hello is done (with or without authentication): the peer is in. */
static void
peer_complete (TetherConnection *self,
               const char       *username,
               const char       *mechanism)
{
  if (mechanism != NULL)
    {
      TetherIdentity *identity = _tether_identity_new_authenticated (self->identity, username,
                                                                     mechanism);

      g_object_unref (self->identity);
      self->identity = identity;
    }
  g_clear_pointer (&self->hello, _tether_hello_server_free);
  _tether_policing_hello_done (self);
  self->state = STATE_OPEN;
  if (self->owner_funcs != NULL)
    self->owner_funcs->ready (self->owner, self);
}

/* Sends what the handshake decided, and opens the connection when the
 * peer is in. */
static void
peer_answer (TetherConnection      *self,
             Batch                 *batch,
             const TetherMessageId *id,
             TetherHelloOutcome    *out)
{
  if (out->status == TETHER_HELLO_FAILED)
    {
      peer_fail (self, batch, id, out);
      return;
    }
  if (out->binary)
    self->binary = TRUE;

  if (batch != NULL)
    batch->refs++;
  _tether_connection_send_reply (self, batch, id, out->reply, 0, NULL);
  if (out->status == TETHER_HELLO_DONE)
    peer_complete (self, out->username, out->mechanism);
  else
    self->state = STATE_AUTH;
}

void
_tether_connection_handle_hello (TetherConnection *self,
                                 Batch            *batch,
                                 TetherMessage    *m)
{
  const TetherMessageId *id = &m->id;
  g_autoptr(GVariant) params = _tether_connection_control_params (self, m);
  TetherHelloOutcome out;

  if (self->role != TETHER_CONNECTION_ROLE_SERVER || self->state != STATE_HELLO)
    {
      _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                                      "rpc.tether.hello is sent once, by the client, first");
      return;
    }

  self->hello = _tether_hello_server_new (self, self->auth_policy, self->limits.max_message_size,
                                          self->limits.max_depth);
  _tether_hello_server_hello (self->hello, params, self->hello_extensions, &out);
  /* The hello comes once: the owner's extensions are not needed again. */
  g_clear_pointer (&self->hello_extensions, g_ptr_array_unref);
  peer_answer (self, batch, id, &out);
  _tether_hello_outcome_clear (&out);
}

void
_tether_connection_handle_auth (TetherConnection *self,
                                Batch            *batch,
                                TetherMessage    *m)
{
  const TetherMessageId *id = &m->id;
  g_autoptr(GVariant) params = _tether_connection_control_params (self, m);
  TetherHelloOutcome out;

  if (self->state != STATE_AUTH || self->hello == NULL ||
      !_tether_hello_server_auth (self->hello, params, &out))
    {
      _tether_connection_reply_error (self, batch, id, TETHER_REMOTE_ERROR_INVALID_REQUEST,
                                      "rpc.tether.auth only continues a SASL exchange begun in the hello");
      return;
    }
  peer_answer (self, batch, id, &out);
  _tether_hello_outcome_clear (&out);
}
