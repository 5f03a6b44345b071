/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <gio/gio.h>

#include "tether-types.h"

G_BEGIN_DECLS

typedef struct _TetherMethodInfo TetherMethodInfo;

#define TETHER_TYPE_METHOD_INFO (tether_method_info_get_type ())

TETHER_AVAILABLE_IN_0_2
GType               tether_method_info_get_type                (void) G_GNUC_CONST;
TETHER_AVAILABLE_IN_0_2
TetherMethodInfo   *tether_method_info_new                     (const char         *name);
TETHER_AVAILABLE_IN_0_2
TetherMethodInfo   *tether_method_info_ref                     (TetherMethodInfo   *self);
TETHER_AVAILABLE_IN_0_2
void                tether_method_info_unref                   (TetherMethodInfo   *self);

TETHER_AVAILABLE_IN_0_2
const char         *tether_method_info_get_name                (TetherMethodInfo   *self);
TETHER_AVAILABLE_IN_0_2
void                tether_method_info_set_summary             (TetherMethodInfo   *self,
                                                                const char         *summary);
TETHER_AVAILABLE_IN_0_2
const char         *tether_method_info_get_summary             (TetherMethodInfo   *self);
TETHER_AVAILABLE_IN_0_2
void                tether_method_info_set_description         (TetherMethodInfo   *self,
                                                                const char         *description);
TETHER_AVAILABLE_IN_0_2
const char         *tether_method_info_get_description         (TetherMethodInfo   *self);
TETHER_AVAILABLE_IN_0_2
void                tether_method_info_set_params              (TetherMethodInfo   *self,
                                                                const char         *signature,
                                                                const char * const *param_names);
TETHER_AVAILABLE_IN_0_2
const char         *tether_method_info_get_signature           (TetherMethodInfo   *self);
TETHER_AVAILABLE_IN_0_2
const char * const *tether_method_info_get_param_names         (TetherMethodInfo   *self);
TETHER_AVAILABLE_IN_0_2
void                tether_method_info_set_param_description   (TetherMethodInfo   *self,
                                                                const char         *param_name,
                                                                const char         *description);
TETHER_AVAILABLE_IN_0_2
const char         *tether_method_info_get_param_description   (TetherMethodInfo   *self,
                                                                const char         *param_name);
TETHER_AVAILABLE_IN_0_2
void                tether_method_info_set_result              (TetherMethodInfo   *self,
                                                                const char         *signature,
                                                                const char         *description);
TETHER_AVAILABLE_IN_0_2
const char         *tether_method_info_get_result_signature    (TetherMethodInfo   *self);
TETHER_AVAILABLE_IN_0_2
const char         *tether_method_info_get_result_description  (TetherMethodInfo   *self);
TETHER_AVAILABLE_IN_0_2
void                tether_method_info_set_deprecated          (TetherMethodInfo   *self,
                                                                gboolean            deprecated);
TETHER_AVAILABLE_IN_0_2
gboolean            tether_method_info_get_deprecated          (TetherMethodInfo   *self);
TETHER_AVAILABLE_IN_0_2
void                tether_method_info_add_callback            (TetherMethodInfo   *self,
                                                                const char         *callback_name);
TETHER_AVAILABLE_IN_0_2
const char * const *tether_method_info_get_callbacks           (TetherMethodInfo   *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TetherMethodInfo, tether_method_info_unref)

G_END_DECLS
