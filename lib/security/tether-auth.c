/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <gsasl.h>
#include <string.h>

#include "tether-auth-private.h"
#include "tether-error.h"

struct _TetherAuthSession
{
  Gsasl_session     *session;
  gboolean           server;
  gboolean           plus;          /* -PLUS: bound to the TLS channel */
  char              *mechanism;
  char              *channel_binding_b64;
  TetherScramLookup  lookup;
  gpointer           lookup_data;
  char              *fake_salt_key;
  char              *username;      /* client: ours; server: set after OK */
  char              *password;
  char              *gs2_header;    /* server: from the client's first message */
  guint              steps;
  char             **secrets;       /* server: iter, salt, storedkey, serverkey */
};

static int sasl_callback (Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop);

static Gsasl *
sasl_context (void)
{
  /* One context per process is enough; sessions are per attempt. */
  static gsize once;
  static Gsasl *ctx;

  if (g_once_init_enter (&once))
    {
      if (gsasl_init (&ctx) != GSASL_OK)
        g_error ("GNU SASL could not be initialised");
      gsasl_callback_set (ctx, sasl_callback);
      g_once_init_leave (&once, 1);
    }
  return ctx;
}

/* Unknown users get secrets that look like a real user's (a stable salt
 * derived from the name) and can never verify: the failure is the same
 * as a wrong password, so names cannot be enumerated. */
static char **
fake_secrets (TetherAuthSession *self,
              const char        *username)
{
  g_autoptr(GHmac) hmac = g_hmac_new (G_CHECKSUM_SHA256, (const guchar *) self->fake_salt_key,
                                      strlen (self->fake_salt_key));
  guint8 digest[32];
  gsize len = sizeof digest;
  guint8 key[32];
  char **secrets = g_new0 (char *, 5);

  g_hmac_update (hmac, (const guchar *) username, -1);
  g_hmac_get_digest (hmac, digest, &len);
  secrets[0] = g_strdup_printf ("%u", TETHER_SCRAM_DEFAULT_ITERATIONS);
  secrets[1] = g_base64_encode (digest, 16);
  for (guint i = 0; i < sizeof key; i++)
    key[i] = g_random_int_range (0, 256);
  secrets[2] = g_base64_encode (key, sizeof key);
  secrets[3] = g_base64_encode (key, sizeof key);
  return secrets;
}

/* "SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY" → { ITER, SALT, STOREDKEY, SERVERKEY } */
static char **
parse_secrets (const char *text)
{
  g_auto(GStrv) parts = NULL;
  g_auto(GStrv) a = NULL;
  g_auto(GStrv) b = NULL;
  char **secrets;

  if (text == NULL || !g_str_has_prefix (text, "SCRAM-SHA-256$"))
    return NULL;
  parts = g_strsplit (text + strlen ("SCRAM-SHA-256$"), "$", -1);
  if (g_strv_length (parts) != 2)
    return NULL;
  a = g_strsplit (parts[0], ":", -1);
  b = g_strsplit (parts[1], ":", -1);
  if (g_strv_length (a) != 2 || g_strv_length (b) != 2 ||
      g_ascii_strtoull (a[0], NULL, 10) < TETHER_SCRAM_MIN_ITERATIONS)
    return NULL;

  secrets = g_new0 (char *, 5);
  secrets[0] = g_strdup (a[0]);
  secrets[1] = g_strdup (a[1]);
  secrets[2] = g_strdup (b[0]);
  secrets[3] = g_strdup (b[1]);
  return secrets;
}

static int
sasl_callback (Gsasl         *ctx,
               Gsasl_session *sctx,
               Gsasl_property prop)
{
  TetherAuthSession *self = sctx != NULL ? gsasl_session_hook_get (sctx) : NULL;

  if (self == NULL)
    return GSASL_NO_CALLBACK;

  if (prop == GSASL_CB_TLS_EXPORTER)
    {
      /* Only -PLUS sessions see channel-binding data (DESIGN.md). */
      if (!self->plus || self->channel_binding_b64 == NULL)
        return GSASL_NO_CALLBACK;
      return gsasl_property_set (sctx, prop, self->channel_binding_b64);
    }

  if (!self->server)
    {
      switch (prop)
        {
        case GSASL_AUTHID:
          return gsasl_property_set (sctx, prop, self->username);
        case GSASL_PASSWORD:
          return gsasl_property_set (sctx, prop, self->password);
        default:
          return GSASL_NO_CALLBACK;
        }
    }

  switch (prop)
    {
    case GSASL_SCRAM_ITER:
    case GSASL_SCRAM_SALT:
    case GSASL_SCRAM_STOREDKEY:
    case GSASL_SCRAM_SERVERKEY:
      if (self->secrets == NULL)
        {
          const char *user = gsasl_property_fast (sctx, GSASL_AUTHID);

          if (user == NULL)
            return GSASL_NO_AUTHID;
          self->secrets = parse_secrets (self->lookup (user, self->lookup_data));
          if (self->secrets == NULL)
            self->secrets = fake_secrets (self, user);
        }
      return gsasl_property_set (sctx, prop,
                                 self->secrets[prop == GSASL_SCRAM_ITER ? 0
                                               : prop == GSASL_SCRAM_SALT ? 1
                                               : prop == GSASL_SCRAM_STOREDKEY ? 2 : 3]);
    default:
      return GSASL_NO_CALLBACK;
    }
}

static gboolean
check_mechanism (const char  *mechanism,
                 GBytes      *channel_binding,
                 gboolean    *plus,
                 GError     **error)
{
  if (g_strcmp0 (mechanism, "SCRAM-SHA-256-PLUS") == 0)
    {
      if (channel_binding == NULL)
        {
          g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_CHANNEL_BINDING_FAILED,
                               "SCRAM-SHA-256-PLUS needs TLS channel binding, and this "
                               "connection has none");
          return FALSE;
        }
      *plus = TRUE;
      return TRUE;
    }
  if (g_strcmp0 (mechanism, "SCRAM-SHA-256") == 0)
    {
      /* GNU SASL 2.2 cannot send the "y" flag right: with TLS present,
       * only the bound mechanism is offered and accepted. */
      if (channel_binding != NULL)
        {
          g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_CHANNEL_BINDING_FAILED,
                               "Over TLS only SCRAM-SHA-256-PLUS is accepted (no downgrade "
                               "to an unbound mechanism)");
          return FALSE;
        }
      *plus = FALSE;
      return TRUE;
    }
  g_set_error (error, TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED,
               "Unsupported SASL mechanism “%s”", mechanism ? mechanism : "(none)");
  return FALSE;
}

static TetherAuthSession *
session_new (gboolean     server,
             const char  *mechanism,
             GBytes      *channel_binding,
             GError     **error)
{
  TetherAuthSession *self;
  gboolean plus = FALSE;
  Gsasl *ctx = sasl_context ();
  int rc;

  if (!check_mechanism (mechanism, channel_binding, &plus, error))
    return NULL;

  self = g_new0 (TetherAuthSession, 1);
  self->server = server;
  self->plus = plus;
  self->mechanism = g_strdup (mechanism);
  if (channel_binding != NULL)
    self->channel_binding_b64 = g_base64_encode (g_bytes_get_data (channel_binding, NULL),
                                                 g_bytes_get_size (channel_binding));

  rc = server ? gsasl_server_start (ctx, mechanism, &self->session)
              : gsasl_client_start (ctx, mechanism, &self->session);
  if (rc != GSASL_OK)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED,
                   "SASL %s: %s", mechanism, gsasl_strerror (rc));
      _tether_auth_free (self);
      return NULL;
    }
  gsasl_session_hook_set (self->session, self);
  return self;
}

TetherAuthSession *
_tether_auth_server_new (const char         *mechanism,
                         GBytes             *channel_binding,
                         TetherScramLookup   lookup,
                         gpointer            lookup_data,
                         const char         *fake_salt_key,
                         GError            **error)
{
  TetherAuthSession *self = session_new (TRUE, mechanism, channel_binding, error);

  if (self != NULL)
    {
      self->lookup = lookup;
      self->lookup_data = lookup_data;
      self->fake_salt_key = g_strdup (fake_salt_key);
    }
  return self;
}

TetherAuthSession *
_tether_auth_client_new (const char  *mechanism,
                         const char  *username,
                         const char  *password,
                         GBytes      *channel_binding,
                         GError     **error)
{
  TetherAuthSession *self = session_new (FALSE, mechanism, channel_binding, error);

  if (self != NULL)
    {
      self->username = g_strdup (username);
      self->password = g_strdup (password);
    }
  return self;
}

static char *
decode_text (const char *b64)
{
  gsize len = 0;
  guchar *raw = g_base64_decode (b64 != NULL ? b64 : "", &len);
  char *text = g_strndup ((const char *) raw, len);

  g_free (raw);
  return text;
}

/* The value of attribute @name ("c", "i", …) in a SCRAM message. */
static char *
scram_attribute (const char *message,
                 char        name)
{
  g_auto(GStrv) parts = g_strsplit (message, ",", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    if (parts[i][0] == name && parts[i][1] == '=')
      return g_strdup (parts[i] + 2);
  return NULL;
}

/* Server: remember the client's GS2 header, then check the binding in its
 * final message ourselves, so a man in the middle gets an error that says
 * so instead of GNU SASL's silent failure. */
static gboolean
server_check_binding (TetherAuthSession  *self,
                      const char         *input,
                      GError            **error)
{
  g_autofree char *message = decode_text (input);

  if (self->steps == 0)
    {
      const char *second = NULL;
      const char *first = strchr (message, ',');

      if (first != NULL)
        second = strchr (first + 1, ',');
      if (second == NULL)
        {
          g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED,
                               "Malformed SCRAM client-first message");
          return FALSE;
        }
      self->gs2_header = g_strndup (message, second + 1 - message);
      if (self->plus != g_str_has_prefix (self->gs2_header, "p=tls-exporter,"))
        {
          g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_CHANNEL_BINDING_FAILED,
                               self->plus ? "The client did not bind to tls-exporter"
                                          : "The client asked for channel binding on an "
                                            "unbound mechanism");
          return FALSE;
        }
      return TRUE;
    }

  if (self->steps == 1)
    {
      g_autofree char *c = scram_attribute (message, 'c');
      g_autofree char *expected = NULL;
      GString *binding = g_string_new (self->gs2_header);

      if (self->plus)
        {
          gsize len = 0;
          guchar *cb = g_base64_decode (self->channel_binding_b64, &len);

          g_string_append_len (binding, (const char *) cb, len);
          g_free (cb);
        }
      expected = g_base64_encode ((const guchar *) binding->str, binding->len);
      g_string_free (binding, TRUE);

      if (c == NULL || strcmp (c, expected) != 0)
        {
          g_set_error_literal (error, TETHER_ERROR, TETHER_ERROR_CHANNEL_BINDING_FAILED,
                               "Channel binding mismatch: the client's TLS channel is not "
                               "this one (a TLS-terminating man in the middle?)");
          return FALSE;
        }
    }
  return TRUE;
}

/* Client: the server chooses the iteration count; refuse cheap ones. */
static gboolean
client_check_server_first (TetherAuthSession  *self,
                           const char         *input,
                           GError            **error)
{
  g_autofree char *message = NULL;
  g_autofree char *iterations = NULL;

  if (self->steps != 1)
    return TRUE;
  message = decode_text (input);
  iterations = scram_attribute (message, 'i');
  if (iterations == NULL || g_ascii_strtoull (iterations, NULL, 10) < TETHER_SCRAM_MIN_ITERATIONS)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED,
                   "The server asked for %s SCRAM iterations; at least %d are required",
                   iterations ? iterations : "no", TETHER_SCRAM_MIN_ITERATIONS);
      return FALSE;
    }
  return TRUE;
}

TetherAuthStatus
_tether_auth_step (TetherAuthSession  *self,
                   const char         *input,
                   char              **output,
                   GError            **error)
{
  char *out = NULL;
  int rc;

  *output = NULL;

  if (self->server ? !server_check_binding (self, input, error)
                   : !client_check_server_first (self, input, error))
    return TETHER_AUTH_FAILED;

  rc = gsasl_step64 (self->session, input != NULL ? input : "", &out);
  self->steps++;
  if (out != NULL)
    {
      *output = g_strdup (out);
      gsasl_free (out);
    }

  if (rc == GSASL_NEEDS_MORE)
    return TETHER_AUTH_CONTINUE;

  if (rc == GSASL_OK)
    {
      /* SCRAM calls no validate callback: the authentication identity is
       * trustworthy only now. */
      if (self->server)
        self->username = g_strdup (gsasl_property_fast (self->session, GSASL_AUTHID));
      return TETHER_AUTH_OK;
    }

  g_clear_pointer (output, g_free);
  /* Unknown user and wrong password fail alike. */
  g_set_error (error, TETHER_ERROR, TETHER_ERROR_UNAUTHENTICATED,
               "Authentication failed%s",
               self->server ? "" : " (the server's proof did not verify, or it refused)");
  return TETHER_AUTH_FAILED;
}

const char *
_tether_auth_get_username (TetherAuthSession *self)
{
  return self->username;
}

const char *
_tether_auth_get_mechanism (TetherAuthSession *self)
{
  return self->mechanism;
}

void
_tether_auth_free (TetherAuthSession *self)
{
  if (self->session != NULL)
    gsasl_finish (self->session);
  g_free (self->mechanism);
  g_free (self->channel_binding_b64);
  g_free (self->fake_salt_key);
  g_free (self->username);
  if (self->password != NULL)
    memset (self->password, 0, strlen (self->password));
  g_free (self->password);
  g_free (self->gs2_header);
  g_strfreev (self->secrets);
  g_free (self);
}

char *
_tether_scram_secrets_from_password (const char  *password,
                                     guint        iterations,
                                     GError     **error)
{
  char salt[16];
  char salted[32], client_key[32], server_key[32], stored_key[32];
  g_autofree char *salt64 = NULL;
  g_autofree char *stored64 = NULL;
  g_autofree char *server64 = NULL;
  int rc;

  if (iterations < TETHER_SCRAM_MIN_ITERATIONS)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_FAILED,
                   "At least %d iterations are required", TETHER_SCRAM_MIN_ITERATIONS);
      return NULL;
    }
  sasl_context ();
  rc = gsasl_nonce (salt, sizeof salt);
  if (rc == GSASL_OK)
    rc = gsasl_scram_secrets_from_password (GSASL_HASH_SHA256, password, iterations,
                                            salt, sizeof salt, salted, client_key,
                                            server_key, stored_key);
  if (rc != GSASL_OK)
    {
      g_set_error (error, TETHER_ERROR, TETHER_ERROR_FAILED, "SCRAM: %s", gsasl_strerror (rc));
      return NULL;
    }

  salt64 = g_base64_encode ((const guchar *) salt, sizeof salt);
  stored64 = g_base64_encode ((const guchar *) stored_key, sizeof stored_key);
  server64 = g_base64_encode ((const guchar *) server_key, sizeof server_key);
  memset (salted, 0, sizeof salted);
  memset (client_key, 0, sizeof client_key);
  return g_strdup_printf ("SCRAM-SHA-256$%u:%s$%s:%s", iterations, salt64, stored64, server64);
}

/* ---------------------------------------------------------------------- */
/* The server's policy                                                    */

static void
auth_policy_clear (TetherAuthPolicy *policy)
{
  g_hash_table_unref (policy->users);
  g_free (policy->fake_salt_key);
}

TetherAuthPolicy *
_tether_auth_policy_new (void)
{
  TetherAuthPolicy *policy = g_rc_box_new0 (TetherAuthPolicy);
  char key[32];

  policy->users = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  /* The key behind unknown users' fake salts: whoever could predict it
   * could tell which users exist, so it comes from a strong source
   * (GLib's g_random is a Mersenne Twister). */
  if (gsasl_random (key, sizeof key) != GSASL_OK)
    g_error ("No strong random source for the SASL fake-salt key");
  policy->fake_salt_key = g_base64_encode ((const guchar *) key, sizeof key);
  memset (key, 0, sizeof key);
  return policy;
}

TetherAuthPolicy *
_tether_auth_policy_ref (TetherAuthPolicy *policy)
{
  return g_rc_box_acquire (policy);
}

void
_tether_auth_policy_unref (TetherAuthPolicy *policy)
{
  g_rc_box_release_full (policy, (GDestroyNotify) auth_policy_clear);
}
