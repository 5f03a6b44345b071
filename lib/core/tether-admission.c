/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <sys/resource.h>

#include "tether-admission-private.h"
#include "tether-error.h"
#include "tether-identity-private.h"
#include "tether-log-private.h"
#include "tether-pool-private.h"

typedef struct _Handshake Handshake;

struct _TetherAdmissionPlace
{
  TetherPoolEntry   entry;      /* first */
  TetherAdmission  *admission;  /* unowned: it outlives its places' pool */
  Handshake        *hs;         /* while handshaking */
  TetherConnection *conn;       /* once in (unowned: its owner holds it) */
};

/* A connection between accept and an open WebSocket. */
struct _Handshake
{
  TetherDeadline        deadline;  /* first: the scheduler hands it back */
  TetherAdmission      *admission; /* unowned: it frees us first */
  TetherAccept         *accept;
  TetherAdmissionPlace *place;     /* in the connection pool */
  TetherPoolEntry       tls_slot;  /* in the TLS handshake pool, during TLS */
};

struct _TetherAdmission
{
  TetherScheduler            *scheduler;
  const guint                *limits;      /* the owner's */
  const TetherAdmissionFuncs *funcs;
  gpointer                    owner;
  GHashTable                 *handshakes;  /* Handshake* set */
  TetherPool                 *connection_pool; /* handshakes and connections */
  TetherPool                 *tls_pool;        /* TLS handshakes in progress */
  guint64                     rejected;
};

/* The effective max-connections: the limit, or what the descriptor limit
 * leaves once the service's own files have their share (a sixteenth, at
 * least 64). */
static guint
effective_max_connections (TetherAdmission *self)
{
  struct rlimit limit;
  rlim_t headroom;

  if (self->limits[TETHER_LIMIT_MAX_CONNECTIONS] > 0)
    return self->limits[TETHER_LIMIT_MAX_CONNECTIONS];
  if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return G_MAXUINT;
  headroom = MAX (limit.rlim_cur / 16, 64);
  return limit.rlim_cur > headroom + 16 ? (guint) MIN (limit.rlim_cur - headroom, G_MAXUINT) : 16;
}

void
_tether_admission_place_free (TetherAdmissionPlace *place)
{
  _tether_pool_release (&place->entry);
  g_free (place);
}

void
_tether_admission_place_set_connection (TetherAdmissionPlace *place,
                                        TetherConnection     *conn)
{
  place->hs = NULL;
  place->conn = conn;
}

static void
handshake_free (Handshake *hs)
{
  _tether_pool_release (&hs->tls_slot);
  g_clear_pointer (&hs->place, _tether_admission_place_free);
  _tether_scheduler_remove (hs->admission->scheduler, &hs->deadline);
  g_clear_pointer (&hs->accept, _tether_accept_free);
  g_free (hs);
}

static TetherIdentity *
handshake_identity (Handshake *hs)
{
  return _tether_accept_get_identity (hs->accept);
}

static void
report (TetherAdmission   *self,
        TetherConnection  *conn,
        TetherIdentity    *identity,
        TetherMisbehavior  reason,
        const char        *details,
        const char        *action)
{
  self->funcs->report (self->owner, conn, identity, reason, details, action);
}

/* The connection pool was full and this identity held the most: its
 * newest connection gives way to another identity's. */
static void
place_evicted (TetherPoolEntry *entry)
{
  TetherAdmissionPlace *place = (TetherAdmissionPlace *) entry;
  TetherAdmission *self = place->admission;
  g_autofree char *details = g_strdup_printf ("holds the most of the server's %u connections, "
                                              "which are all in use: its newest gave way to "
                                              "another peer's", _tether_pool_get_max (self->connection_pool));

  if (place->hs != NULL)
    {
      report (self, NULL, handshake_identity (place->hs), TETHER_MISBEHAVIOR_HOGGING, details,
              "closing that connection");
      g_hash_table_remove (self->handshakes, place->hs);
    }
  else if (place->conn != NULL)
    {
      g_autoptr(TetherConnection) conn = g_object_ref (place->conn);
      g_autoptr(GError) error = g_error_new (TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED,
                                             "The server is full, and this peer's identity holds "
                                             "the most of its connections");

      report (self, conn, _tether_connection_get_identity (conn), TETHER_MISBEHAVIOR_HOGGING, details,
              "closing that connection");
      _tether_connection_close (conn, error);
    }
}

/* The TLS handshake pool was full and this address held the most: its
 * oldest handshake gives way to another address's. */
static void
tls_slot_evicted (TetherPoolEntry *entry)
{
  Handshake *hs = G_STRUCT_MEMBER_P (entry, -G_STRUCT_OFFSET (Handshake, tls_slot));
  TetherAdmission *self = hs->admission;
  g_autofree char *details = g_strdup_printf ("holds the most of the server's %u TLS handshake "
                                              "slots, which are all in use: its oldest handshake "
                                              "gave way to another address's",
                                              _tether_pool_get_max (self->tls_pool));

  report (self, NULL, handshake_identity (hs), TETHER_MISBEHAVIOR_HOGGING, details,
          "closing that connection");
  g_hash_table_remove (self->handshakes, hs);
}

static void
handshake_deadline_cb (TetherDeadline *deadline)
{
  Handshake *hs = (Handshake *) deadline;
  TetherAdmission *self = hs->admission;
  g_autofree char *reason = g_strdup_printf ("%s within %u ms", _tether_accept_get_stage (hs->accept),
                                             self->limits[TETHER_LIMIT_HANDSHAKE_TIMEOUT]);

  report (self, NULL, handshake_identity (hs), TETHER_MISBEHAVIOR_HANDSHAKE_TIMEOUT, reason,
          "disconnecting");
  g_hash_table_remove (self->handshakes, hs);
}

/* Charges @pool for @hs's identity; FALSE (reported) if refused. */
static gboolean
handshake_acquire (Handshake       *hs,
                   TetherPool      *pool,
                   TetherPoolEntry *entry,
                   guint            share,
                   void           (*evicted) (TetherPoolEntry *entry),
                   const char      *over_share,
                   const char      *full)
{
  TetherAdmission *self = hs->admission;
  const char *refusal = NULL;

  switch (_tether_pool_acquire (pool, entry, _tether_identity_get_pool_key (handshake_identity (hs)),
                                share, evicted))
    {
    case TETHER_POOL_GRANTED:
      return TRUE;
    case TETHER_POOL_OVER_SHARE:
      refusal = over_share;
      break;
    case TETHER_POOL_FULL:
    default:
      refusal = full;
      break;
    }
  self->rejected++;
  report (self, NULL, handshake_identity (hs), TETHER_MISBEHAVIOR_TOO_MANY_CONNECTIONS, refusal,
          "refusing the connection");
  return FALSE;
}

/* The ClientHello is whole: the TLS handshake takes a glib-networking
 * thread, within the TLS handshake pool. */
static gboolean
accept_tls_start_cb (TetherAccept *accept,
                     gpointer      user_data)
{
  Handshake *hs = user_data;

  return handshake_acquire (hs, hs->admission->tls_pool, &hs->tls_slot,
                            hs->admission->limits[TETHER_LIMIT_MAX_TLS_HANDSHAKES_PER_ADDRESS],
                            tls_slot_evicted,
                            "too many TLS handshakes in progress from this address",
                            "too many TLS handshakes in progress on the server, and this "
                            "address has as many as any");
}

/* TLS is done: a verified certificate is who this is now, so count it,
 * not the address. */
static gboolean
accept_identified_cb (TetherAccept *accept,
                      gpointer      user_data)
{
  Handshake *hs = user_data;
  guint share = hs->admission->limits[TETHER_LIMIT_MAX_CONNECTIONS_PER_PEER];
  g_autofree char *details = NULL;

  _tether_pool_release (&hs->tls_slot);
  if (g_strcmp0 (_tether_identity_get_pool_key (handshake_identity (hs)),
                 _tether_pool_entry_get_key (&hs->place->entry)) == 0)
    return TRUE;

  _tether_pool_release (&hs->place->entry);
  details = g_strdup_printf ("more than %u connections", share);
  return handshake_acquire (hs, hs->admission->connection_pool, &hs->place->entry, share,
                            place_evicted, details, details);
}

static void
accept_done_cb (TetherAccept       *accept,
                TetherAcceptResult  result,
                TetherWebsocket    *ws,
                const char         *reason,
                gpointer            user_data)
{
  Handshake *hs = user_data;
  TetherAdmission *self = hs->admission;
  g_autoptr(TetherGuardStream) guard = NULL;

  switch (result)
    {
    case TETHER_ACCEPT_OK:
      /* In: the place goes to the connection, and the handshake's
       * deadline bounds the hello from here. */
      guard = _tether_accept_steal_guard (accept);
      self->funcs->admitted (self->owner, ws, guard, handshake_identity (hs), hs->deadline.when,
                             g_steal_pointer (&hs->place));
      break;
    case TETHER_ACCEPT_FORBIDDEN:
      report (self, NULL, handshake_identity (hs), TETHER_MISBEHAVIOR_PROTOCOL_VIOLATION, reason,
              "refusing the connection");
      break;
    case TETHER_ACCEPT_REFUSED:
      /* The hook reported it. */
      break;
    case TETHER_ACCEPT_HEALTH:
      /* Every few seconds from every balancer: not worth a line. */
      break;
    case TETHER_ACCEPT_FAILED:
    default:
      {
        g_autofree char *who = tether_identity_to_string (handshake_identity (hs));

        _tether_log_limited (self->scheduler, G_LOG_LEVEL_MESSAGE, "handshake-failed",
                             _tether_identity_get_pool_key (handshake_identity (hs)),
                             "Handshake with %s failed: %s", who, reason);
      }
      break;
    }
  g_hash_table_remove (self->handshakes, hs);
}

static const TetherAcceptFuncs accept_funcs = {
  .tls_start = accept_tls_start_cb,
  .identified = accept_identified_cb,
  .done = accept_done_cb,
};

void
_tether_admission_offer (TetherAdmission           *self,
                         GSocketConnection         *connection,
                         const TetherAcceptOptions *options)
{
  Handshake *hs = g_new0 (Handshake, 1);

  hs->admission = self;
  hs->accept = _tether_accept_new (connection, options, &accept_funcs, hs);

  /* Refused at once, before any work: the server is full and this
   * identity is among those holding the most (otherwise the heaviest
   * gives way), or it has its share of connections already; or, over
   * TLS, of handshakes (each holds a glib-networking pool thread). */
  hs->place = g_new0 (TetherAdmissionPlace, 1);
  hs->place->admission = self;
  hs->place->hs = hs;
  _tether_pool_set_max (self->connection_pool, effective_max_connections (self));
  /* Behind a load balancer the connection is the balancer's until its
   * PROXY header names the client: the share per peer is the client's,
   * charged then (accept_identified_cb()). */
  if (!handshake_acquire (hs, self->connection_pool, &hs->place->entry,
                          options->proxy_protocol ? 0 : self->limits[TETHER_LIMIT_MAX_CONNECTIONS_PER_PEER],
                          place_evicted,
                          "too many connections from this peer",
                          "too many connections on the server, and this peer holds as many "
                          "as any"))
    {
      handshake_free (hs);
      return;
    }

  g_hash_table_add (self->handshakes, hs);
  _tether_scheduler_add (self->scheduler, &hs->deadline,
                         g_get_monotonic_time () + (gint64) self->limits[TETHER_LIMIT_HANDSHAKE_TIMEOUT] * 1000,
                         handshake_deadline_cb);
  _tether_accept_start (hs->accept);
}

void
_tether_admission_drop_pending (TetherAdmission *self)
{
  g_hash_table_remove_all (self->handshakes);
}

guint64
_tether_admission_get_rejected (TetherAdmission *self)
{
  return self->rejected;
}

void
_tether_admission_limits_changed (TetherAdmission *self)
{
  _tether_pool_set_max (self->tls_pool, self->limits[TETHER_LIMIT_MAX_TLS_HANDSHAKES]);
  _tether_pool_set_max (self->connection_pool, effective_max_connections (self));
}

TetherAdmission *
_tether_admission_new (TetherScheduler            *scheduler,
                       const guint                *limits,
                       const TetherAdmissionFuncs *funcs,
                       gpointer                    owner)
{
  TetherAdmission *self = g_new0 (TetherAdmission, 1);

  self->scheduler = _tether_scheduler_ref (scheduler);
  self->limits = limits;
  self->funcs = funcs;
  self->owner = owner;
  self->handshakes = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) handshake_free, NULL);
  self->connection_pool = _tether_pool_new (G_MAXUINT, TETHER_POOL_EVICT_NEWEST);
  self->tls_pool = _tether_pool_new (limits[TETHER_LIMIT_MAX_TLS_HANDSHAKES], TETHER_POOL_EVICT_OLDEST);
  return self;
}

/* The owner frees its connections (and so their places) first. */
void
_tether_admission_free (TetherAdmission *self)
{
  g_hash_table_unref (self->handshakes);
  _tether_pool_unref (self->connection_pool);
  _tether_pool_unref (self->tls_pool);
  _tether_scheduler_unref (self->scheduler);
  g_free (self);
}
