/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tether-pool-private.h"

typedef struct
{
  TetherPool      *pool;     /* unowned: the pool owns its holders */
  char            *key;
  TetherPoolEntry *oldest;   /* the entries, linked through them */
  TetherPoolEntry *newest;
  guint            length;
} Holder;

struct _TetherPool
{
  gatomicrefcount     ref_count;
  guint               max;
  guint               used;
  TetherPoolEviction  eviction;
  GHashTable         *holders;  /* key → Holder* */
};

static void
holder_free (Holder *holder)
{
  g_free (holder->key);
  g_free (holder);
}

TetherPool *
_tether_pool_new (guint              max,
                  TetherPoolEviction eviction)
{
  TetherPool *self = g_new0 (TetherPool, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->max = max;
  self->eviction = eviction;
  self->holders = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) holder_free);
  return self;
}

TetherPool *
_tether_pool_ref (TetherPool *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
_tether_pool_unref (TetherPool *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;
  /* Owners give their units back before they let go of the pool. */
  g_warn_if_fail (self->used == 0);
  g_hash_table_unref (self->holders);
  g_free (self);
}

void
_tether_pool_set_max (TetherPool *self,
                      guint       max)
{
  self->max = max;
}

guint
_tether_pool_get_max (TetherPool *self)
{
  return self->max;
}

guint
_tether_pool_get_used (TetherPool *self)
{
  return self->used;
}

guint
_tether_pool_count (TetherPool *self,
                    const char *key)
{
  Holder *holder = g_hash_table_lookup (self->holders, key);

  return holder != NULL ? holder->length : 0;
}

const char *
_tether_pool_get_heaviest (TetherPool *self,
                           guint      *count)
{
  GHashTableIter iter;
  gpointer value;
  Holder *heaviest = NULL;

  /* A scan, only when the pool is full: it holds at most max entries, so
   * at most max holders. */
  g_hash_table_iter_init (&iter, self->holders);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Holder *holder = value;

      if (heaviest == NULL || holder->length > heaviest->length)
        heaviest = holder;
    }
  if (count != NULL)
    *count = heaviest != NULL ? heaviest->length : 0;
  return heaviest != NULL ? heaviest->key : NULL;
}

void
_tether_pool_release (TetherPoolEntry *entry)
{
  Holder *holder = entry->holder;
  TetherPool *self;

  if (holder == NULL)
    return;
  self = holder->pool;
  if (entry->prev != NULL)
    entry->prev->next = entry->next;
  else
    holder->oldest = entry->next;
  if (entry->next != NULL)
    entry->next->prev = entry->prev;
  else
    holder->newest = entry->prev;
  entry->prev = entry->next = NULL;
  holder->length--;
  entry->holder = NULL;
  self->used--;
  if (holder->length == 0)
    g_hash_table_remove (self->holders, holder->key);
}

const char *
_tether_pool_entry_get_key (TetherPoolEntry *entry)
{
  return entry->holder != NULL ? ((Holder *) entry->holder)->key : NULL;
}

TetherPoolResult
_tether_pool_acquire (TetherPool          *self,
                      TetherPoolEntry     *entry,
                      const char          *key,
                      guint                max_per_key,
                      TetherPoolEvictFunc  evict)
{
  Holder *holder = g_hash_table_lookup (self->holders, key);
  guint held = holder != NULL ? holder->length : 0;
  TetherPoolEntry *victim = NULL;

  g_return_val_if_fail (entry->holder == NULL, TETHER_POOL_FULL);

  if (max_per_key > 0 && held >= max_per_key)
    return TETHER_POOL_OVER_SHARE;

  if (self->used >= self->max)
    {
      guint heaviest_count;
      const char *heaviest = _tether_pool_get_heaviest (self, &heaviest_count);
      Holder *giver;

      /* Two fewer at least: after the exchange the newcomer still holds
       * no more than the one that gave way, so they cannot take turns. */
      if (heaviest == NULL || heaviest_count < held + 2)
        return TETHER_POOL_FULL;
      giver = g_hash_table_lookup (self->holders, heaviest);
      victim = self->eviction == TETHER_POOL_EVICT_NEWEST ? giver->newest : giver->oldest;
      _tether_pool_release (victim);
    }

  if (holder == NULL)
    {
      holder = g_new0 (Holder, 1);
      holder->pool = self;
      holder->key = g_strdup (key);
      g_hash_table_insert (self->holders, holder->key, holder);
    }
  entry->prev = holder->newest;
  entry->next = NULL;
  if (holder->newest != NULL)
    holder->newest->next = entry;
  else
    holder->oldest = entry;
  holder->newest = entry;
  holder->length++;
  entry->holder = holder;
  entry->evict = evict;
  self->used++;

  /* Last: the owner may do anything now, the pool is consistent. */
  if (victim != NULL && victim->evict != NULL)
    victim->evict (victim);
  return TETHER_POOL_GRANTED;
}
