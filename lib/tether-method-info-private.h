/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tether-method-info.h"

G_BEGIN_DECLS

/* A name a method may have: not empty, UTF-8, not `rpc.`. */
gboolean _tether_method_info_check_name   (const char         *name);
/* Declared parameters as add_method_full() takes them: a definite type,
 * and with names, a tuple with one distinct name per member. */
gboolean _tether_method_info_check_params (const char         *signature,
                                           const char * const *param_names);
/* Given to a server or a client: read-only from now on. */
void     _tether_method_info_seal         (TetherMethodInfo   *self);

G_END_DECLS
