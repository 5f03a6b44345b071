/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(TETHER_INSIDE) && !defined(TETHER_COMPILATION)
# error "Only <tether.h> can be included directly."
#endif

#include <gio/gio.h>

#include "tether-types.h"
#include "tether-method-info.h"

G_BEGIN_DECLS

#define TETHER_TYPE_CLIENT (tether_client_get_type ())
TETHER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (TetherClient, tether_client, TETHER, CLIENT, GObject)

TETHER_AVAILABLE_IN_ALL
TetherClient   *tether_client_new                 (const char          *uri);
TETHER_AVAILABLE_IN_ALL
const char     *tether_client_get_uri             (TetherClient        *self);
TETHER_AVAILABLE_IN_ALL
void            tether_client_connect_async       (TetherClient        *self,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
TETHER_AVAILABLE_IN_ALL
gboolean        tether_client_connect_finish      (TetherClient        *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);
TETHER_AVAILABLE_IN_ALL
void            tether_client_call_async          (TetherClient        *self,
                                                   const char          *method,
                                                   GVariant            *params,
                                                   int                  timeout_msec,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
TETHER_AVAILABLE_IN_ALL
GVariant       *tether_client_call_finish         (TetherClient        *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);
TETHER_AVAILABLE_IN_ALL
void            tether_client_call_full_async     (TetherClient        *self,
                                                   const char          *method,
                                                   GVariant            *params,
                                                   TetherImpersonationLevel level,
                                                   TetherCredentials   *act_as,
                                                   int                  timeout_msec,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
TETHER_AVAILABLE_IN_ALL
GVariant       *tether_client_call_full_finish    (TetherClient        *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);
TETHER_AVAILABLE_IN_ALL
void            tether_client_set_impersonation_level (TetherClient    *self,
                                                   TetherImpersonationLevel level);
TETHER_AVAILABLE_IN_ALL
TetherImpersonationLevel tether_client_get_impersonation_level (TetherClient *self);
TETHER_AVAILABLE_IN_ALL
void            tether_client_set_signing_certificate (TetherClient    *self,
                                                   GTlsCertificate     *certificate);
TETHER_AVAILABLE_IN_ALL
GTlsCertificate *tether_client_get_signing_certificate (TetherClient   *self);
TETHER_AVAILABLE_IN_ALL
gboolean        tether_client_send_notification   (TetherClient        *self,
                                                   const char          *method,
                                                   GVariant            *params,
                                                   GError             **error);
TETHER_AVAILABLE_IN_ALL
void            tether_client_add_method          (TetherClient        *self,
                                                   const char          *name,
                                                   TetherMethodHandler  handler,
                                                   gpointer             user_data,
                                                   GDestroyNotify       destroy);
TETHER_AVAILABLE_IN_ALL
void            tether_client_add_method_full     (TetherClient        *self,
                                                   const char          *name,
                                                   const char          *signature,
                                                   const char * const  *param_names,
                                                   TetherMethodHandler  handler,
                                                   gpointer             user_data,
                                                   GDestroyNotify       destroy);
TETHER_AVAILABLE_IN_0_2
void            tether_client_add_method_with_info (TetherClient      *self,
                                                   TetherMethodInfo    *info,
                                                   TetherMethodHandler  handler,
                                                   gpointer             user_data,
                                                   GDestroyNotify       destroy);
TETHER_AVAILABLE_IN_0_2
gboolean        tether_client_describe_method     (TetherClient        *self,
                                                   TetherMethodInfo    *info);
TETHER_AVAILABLE_IN_ALL
gboolean        tether_client_remove_method       (TetherClient        *self,
                                                   const char          *name);
TETHER_AVAILABLE_IN_ALL
TetherIdentity *tether_client_get_server_identity (TetherClient        *self);
TETHER_AVAILABLE_IN_0_2
void            tether_client_set_reconnect       (TetherClient        *self,
                                                   gboolean             reconnect);
TETHER_AVAILABLE_IN_0_2
gboolean        tether_client_get_reconnect       (TetherClient        *self);
TETHER_AVAILABLE_IN_ALL
gboolean        tether_client_is_connected        (TetherClient        *self);
TETHER_AVAILABLE_IN_ALL
void            tether_client_close               (TetherClient        *self);
TETHER_AVAILABLE_IN_ALL
TetherStatistics *tether_client_get_statistics    (TetherClient        *self);
TETHER_AVAILABLE_IN_ALL
void            tether_client_set_credentials     (TetherClient        *self,
                                                   const char          *username,
                                                   const char          *password);

TETHER_AVAILABLE_IN_ALL
void            tether_client_set_tls_database    (TetherClient        *self,
                                                   GTlsDatabase        *database);
TETHER_AVAILABLE_IN_ALL
GTlsDatabase   *tether_client_get_tls_database    (TetherClient        *self);
TETHER_AVAILABLE_IN_ALL
void            tether_client_set_tls_certificate (TetherClient        *self,
                                                   GTlsCertificate     *certificate);
TETHER_AVAILABLE_IN_ALL
GTlsCertificate *tether_client_get_tls_certificate (TetherClient       *self);

TETHER_AVAILABLE_IN_ALL
void            tether_client_set_callback_listener (TetherClient      *self,
                                                   TetherCallbackListener *listener);
TETHER_AVAILABLE_IN_ALL
TetherCallbackListener *tether_client_get_callback_listener (TetherClient *self);

G_END_DECLS
