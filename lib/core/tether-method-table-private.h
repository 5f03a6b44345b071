/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The methods a server or a client answers: one table type for both, so
 * that TetherServer and TetherClient register handlers the same way. */

#include "tether-types.h"
#include "tether-method-info.h"

G_BEGIN_DECLS

typedef struct
{
  char                *name;
  char                *signature;   /* NULL: undeclared mapping */
  GVariantType        *type;        /* from signature */
  GVariant            *type_anchor; /* see _tether_variant_type_anchor() */
  char               **param_names; /* one per tuple member, or NULL */
  TetherAccess         access;
  TetherMethodInfo    *info;        /* its description, or NULL (sealed) */
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
/* Reserved names (rpc.) are never removed this way. */
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

/* Describes a method added before (issue #12): the description takes the
 * place of any earlier one. Its parameters, when it declares any, must be
 * the method's own. FALSE if there is no such method or they differ. */
gboolean            _tether_method_table_set_info (TetherMethodTable *self,
                                                 const char         *name,
                                                 TetherMethodInfo   *info);
/* The methods added, sorted by name, without reserved ones: const
 * TetherMethod*, valid until the table changes. */
GPtrArray          *_tether_method_table_list   (TetherMethodTable  *self);

/* A method of Tether's own under a reserved `rpc.` name (rpc.discover),
 * dispatched like the others: access, bounds, params, deadline. Replaces
 * an earlier one of that name; a NULL @handler removes it. */
void                _tether_method_table_set_reserved (TetherMethodTable *self,
                                                 const char         *name,
                                                 const char         *signature,
                                                 TetherAccess        access,
                                                 TetherMethodHandler handler,
                                                 gpointer            user_data,
                                                 GDestroyNotify      destroy);
/* Whether @self (which may be NULL) answers the reserved @name itself:
 * the engine's hook where it dispatches `rpc.` names. */
gboolean            _tether_method_table_has_reserved (TetherMethodTable *self,
                                                 const char         *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TetherMethodTable, _tether_method_table_free)

G_END_DECLS
