/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The methods a server or a client answers: one table type for both, so
 * that TetherServer and TetherClient register handlers the same way. */

#include "tether-types.h"

G_BEGIN_DECLS

typedef struct
{
  char                *name;
  char                *signature;   /* NULL: undeclared mapping */
  GVariantType        *type;        /* from signature */
  GVariant            *type_anchor; /* see _tether_variant_type_anchor() */
  char               **param_names; /* one per tuple member, or NULL */
  TetherAccess         access;
  TetherMethodHandler  handler;
  gpointer             user_data;
  GDestroyNotify       destroy;
} TetherMethod;

typedef struct _TetherMethodTable TetherMethodTable;

TetherMethodTable  *_tether_method_table_new    (void);
void                _tether_method_table_free   (TetherMethodTable  *self);
/* Checks are g_return_if_fail-style: misuse is a programming error. */
void                _tether_method_table_add    (TetherMethodTable  *self,
                                                 const char         *name,
                                                 const char         *signature,
                                                 const char * const *param_names,
                                                 TetherAccess        access,
                                                 TetherMethodHandler handler,
                                                 gpointer            user_data,
                                                 GDestroyNotify      destroy);
gboolean            _tether_method_table_remove (TetherMethodTable  *self,
                                                 const char         *name);
const TetherMethod *_tether_method_table_lookup (TetherMethodTable  *self,
                                                 const char         *name);
/* Answers every name the table does not hold (undeclared parameters,
 * TETHER_ACCESS_ANY): the callback listener verifies before it looks up. */
void                _tether_method_table_set_fallback (TetherMethodTable  *self,
                                                 TetherMethodHandler handler,
                                                 gpointer            user_data,
                                                 GDestroyNotify      destroy);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TetherMethodTable, _tether_method_table_free)

G_END_DECLS
