/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <gio/gio.h>

#include "tether-types.h"
#include "tether-method-info.h"

G_BEGIN_DECLS

#define TETHER_TYPE_SERVER (tether_server_get_type ())
TETHER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (TetherServer, tether_server, TETHER, SERVER, GObject)

TETHER_AVAILABLE_IN_ALL
TetherServer       *tether_server_new              (void);
/* Their flags type is as new as they are: a program that caps the API
 * at 0.1 is warned about these functions, not about their prototypes. */
G_GNUC_BEGIN_IGNORE_DEPRECATIONS
TETHER_AVAILABLE_IN_0_2
gboolean            tether_server_listen_full      (TetherServer        *self,
                                                    const char          *uri,
                                                    TetherListenFlags    flags,
                                                    GError             **error);
TETHER_AVAILABLE_IN_0_2
gboolean            tether_server_listen_socket    (TetherServer        *self,
                                                    GSocket             *socket,
                                                    TetherListenFlags    flags,
                                                    GError             **error);
G_GNUC_END_IGNORE_DEPRECATIONS
TETHER_AVAILABLE_IN_0_2
gboolean            tether_server_add_trusted_proxy (TetherServer        *self,
                                                    const char          *cidr,
                                                    GError             **error);
TETHER_AVAILABLE_IN_ALL
gboolean            tether_server_listen           (TetherServer        *self,
                                                    const char          *uri,
                                                    GError             **error);
TETHER_AVAILABLE_IN_ALL
const char * const *tether_server_get_uris         (TetherServer        *self);
TETHER_AVAILABLE_IN_ALL
void                tether_server_add_method       (TetherServer        *self,
                                                    const char          *name,
                                                    TetherAccess         access,
                                                    TetherMethodHandler  handler,
                                                    gpointer             user_data,
                                                    GDestroyNotify       destroy);
TETHER_AVAILABLE_IN_ALL
void                tether_server_add_method_full  (TetherServer        *self,
                                                    const char          *name,
                                                    const char          *signature,
                                                    const char * const  *param_names,
                                                    TetherAccess         access,
                                                    TetherMethodHandler  handler,
                                                    gpointer             user_data,
                                                    GDestroyNotify       destroy);
TETHER_AVAILABLE_IN_ALL
gboolean            tether_server_remove_method    (TetherServer        *self,
                                                    const char          *name);
TETHER_AVAILABLE_IN_0_2
void                tether_server_add_method_with_info (TetherServer    *self,
                                                    TetherMethodInfo    *info,
                                                    TetherAccess         access,
                                                    TetherMethodHandler  handler,
                                                    gpointer             user_data,
                                                    GDestroyNotify       destroy);
TETHER_AVAILABLE_IN_0_2
gboolean            tether_server_describe_method  (TetherServer        *self,
                                                    TetherMethodInfo    *info);
TETHER_AVAILABLE_IN_0_2
void                tether_server_add_callback_info (TetherServer       *self,
                                                    TetherMethodInfo    *info);
TETHER_AVAILABLE_IN_0_2
void                tether_server_set_service_title (TetherServer       *self,
                                                    const char          *title);
TETHER_AVAILABLE_IN_0_2
const char         *tether_server_get_service_title (TetherServer       *self);
TETHER_AVAILABLE_IN_0_2
void                tether_server_set_service_version (TetherServer     *self,
                                                    const char          *version);
TETHER_AVAILABLE_IN_0_2
const char         *tether_server_get_service_version (TetherServer     *self);
TETHER_AVAILABLE_IN_0_2
void                tether_server_set_service_description (TetherServer *self,
                                                    const char          *description);
TETHER_AVAILABLE_IN_0_2
const char         *tether_server_get_service_description (TetherServer *self);
TETHER_AVAILABLE_IN_0_2
void                tether_server_set_discover_access (TetherServer     *self,
                                                    TetherAccess         access);
TETHER_AVAILABLE_IN_0_2
TetherAccess        tether_server_get_discover_access (TetherServer     *self);
TETHER_AVAILABLE_IN_ALL
GPtrArray          *tether_server_get_peers        (TetherServer        *self);
TETHER_AVAILABLE_IN_ALL
void                tether_server_close            (TetherServer        *self);
TETHER_AVAILABLE_IN_0_2
void                tether_server_shutdown_async   (TetherServer        *self,
                                                    guint                grace_ms,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
TETHER_AVAILABLE_IN_0_2
gboolean            tether_server_shutdown_finish  (TetherServer        *self,
                                                    GAsyncResult        *result,
                                                    GError             **error);
TETHER_AVAILABLE_IN_ALL
TetherStatistics   *tether_server_get_statistics   (TetherServer        *self);
TETHER_AVAILABLE_IN_ALL
gboolean            tether_server_add_user         (TetherServer        *self,
                                                    const char          *username,
                                                    const char          *secrets,
                                                    GError             **error);
TETHER_AVAILABLE_IN_ALL
gboolean            tether_server_load_users       (TetherServer        *self,
                                                    const char          *path,
                                                    GError             **error);

TETHER_AVAILABLE_IN_ALL
void                tether_server_set_tls_certificate (TetherServer     *self,
                                                    GTlsCertificate     *certificate);
TETHER_AVAILABLE_IN_ALL
GTlsCertificate    *tether_server_get_tls_certificate (TetherServer     *self);
TETHER_AVAILABLE_IN_ALL
void                tether_server_set_tls_client_database (TetherServer *self,
                                                    GTlsDatabase        *database);
TETHER_AVAILABLE_IN_ALL
GTlsDatabase       *tether_server_get_tls_client_database (TetherServer *self);

TETHER_AVAILABLE_IN_ALL
void                tether_server_set_callback_impersonation_level (TetherServer *self,
                                                    TetherImpersonationLevel level);
TETHER_AVAILABLE_IN_ALL
TetherImpersonationLevel tether_server_get_callback_impersonation_level (TetherServer *self);
TETHER_AVAILABLE_IN_ALL
void                tether_server_set_remote_callback_impersonation_level (TetherServer *self,
                                                    TetherImpersonationLevel level);
TETHER_AVAILABLE_IN_ALL
TetherImpersonationLevel tether_server_get_remote_callback_impersonation_level (TetherServer *self);
TETHER_AVAILABLE_IN_ALL
void                tether_server_set_dangerously_allow_privileged_impersonation (TetherServer *self,
                                                    gboolean             allow);
TETHER_AVAILABLE_IN_ALL
gboolean            tether_server_get_dangerously_allow_privileged_impersonation (TetherServer *self);
TETHER_AVAILABLE_IN_ALL
gboolean            tether_server_is_privileged    (TetherServer        *self);
TETHER_AVAILABLE_IN_ALL
void                tether_server_set_signing_certificate (TetherServer *self,
                                                    GTlsCertificate     *certificate);
TETHER_AVAILABLE_IN_ALL
GTlsCertificate    *tether_server_get_signing_certificate (TetherServer *self);
TETHER_AVAILABLE_IN_ALL
void                tether_server_add_trusted_issuer (TetherServer      *self,
                                                    GTlsCertificate     *certificate);

G_END_DECLS
