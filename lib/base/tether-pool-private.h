/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* TetherPool: one of a server's shared resources (connections, TLS
 * handshake slots, callback slots, incoming work), charged per identity
 * as well as per holder, so that a few identities cannot take it all.
 *
 * An identity is a key: the uid on unix:, a verified certificate or an
 * authenticated user where there is one, else the client's address, with
 * IPv6 addresses grouped by /64 (_tether_identity_get_pool_key()).
 *
 * Fair shares, not first come first served: while the pool has room,
 * anyone gets a unit (up to a cap per identity, if the caller asks). When
 * it is full, the heaviest identity gives way: a newcomer that holds at
 * least two units fewer than the heaviest gets one, and one entry of the
 * heaviest (its oldest, or its newest, as the pool was made) is evicted —
 * its owner is told through the entry's evict function, after the pool
 * is already consistent again. Otherwise the newcomer is refused. So an
 * identity with nothing in use is never refused while another holds two
 * or more, and no two identities can take turns evicting each other.
 *
 * Entries are embedded in their owner's structures (no allocation per
 * unit); one holder record per identity in use. Not thread-safe: a pool
 * lives on its server's context. */

#include <glib.h>

G_BEGIN_DECLS

typedef struct _TetherPool      TetherPool;
typedef struct _TetherPoolEntry TetherPoolEntry;

typedef void (*TetherPoolEvictFunc) (TetherPoolEntry *entry);

/* Embedded in what it charges (a pending callback, an invocation, a
 * connection): small on purpose, as there may be thousands. */
struct _TetherPoolEntry
{
  TetherPoolEntry     *prev;    /* in its holder's list, oldest first */
  TetherPoolEntry     *next;
  gpointer             holder;  /* NULL while it holds nothing */
  TetherPoolEvictFunc  evict;
};

typedef enum
{
  TETHER_POOL_EVICT_OLDEST,
  TETHER_POOL_EVICT_NEWEST,
} TetherPoolEviction;

TetherPool *_tether_pool_new      (guint               max,
                                   TetherPoolEviction  eviction);
TetherPool *_tether_pool_ref      (TetherPool         *pool);
void        _tether_pool_unref    (TetherPool         *pool);
void        _tether_pool_set_max  (TetherPool         *pool,
                                   guint               max);
guint       _tether_pool_get_max  (TetherPool         *pool);
guint       _tether_pool_get_used (TetherPool         *pool);
/* Units @key holds now. */
guint       _tether_pool_count    (TetherPool         *pool,
                                   const char         *key);

typedef enum
{
  TETHER_POOL_GRANTED,
  TETHER_POOL_FULL,        /* the pool is full and @key is among the heaviest */
  TETHER_POOL_OVER_SHARE,  /* @key already holds @max_per_key */
} TetherPoolResult;

/* Charges @entry (which must hold nothing) to @key. @max_per_key: a cap
 * for one identity (0: none). @evict: called if the entry is later
 * evicted for a newcomer; it must not release the entry (it no longer
 * holds anything). May evict another entry before it returns. */
TetherPoolResult _tether_pool_acquire (TetherPool          *pool,
                                       TetherPoolEntry     *entry,
                                       const char          *key,
                                       guint                max_per_key,
                                       TetherPoolEvictFunc  evict);
/* Gives the unit back; harmless if the entry holds nothing. */
void        _tether_pool_release  (TetherPoolEntry    *entry);
/* The key @entry is charged to, or NULL. */
const char *_tether_pool_entry_get_key (TetherPoolEntry *entry);
/* The heaviest key and what it holds (for log lines); NULL if empty. */
const char *_tether_pool_get_heaviest (TetherPool         *pool,
                                       guint              *count);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TetherPool, _tether_pool_unref)

G_END_DECLS
