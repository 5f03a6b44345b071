/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* `tether describe` and what `tether call` learns from a description
 * (issue #12): rpc.discover's OpenRPC document, fetched, summarised, and
 * used to check parameters before they are sent. */

#include <stdio.h>
#include <tether.h>

G_BEGIN_DECLS

/* Asks @client's server for its description (rpc.discover), waiting on
 * the thread-default context. NULL and @error if it has none or refuses. */
GVariant *describe_fetch        (TetherClient  *client,
                                 int            timeout_ms,
                                 GError       **error);

/* Writes a readable summary of @doc: the service, its methods with their
 * parameters, result, access and deadlines, and the callbacks each makes. */
void      describe_print        (GVariant      *doc,
                                 FILE          *out);

/* Checks @params_json (NULL: no params) for @method against @doc the way
 * the service would: FALSE and @error (TETHER_ERROR_INVALID_PARAMS,
 * naming the parameter) if the service would refuse them. TRUE if they
 * fit, or if @doc does not say (method not listed, or undeclared). */
gboolean  describe_check_params (GVariant      *doc,
                                 const char    *method,
                                 const char    *params_json,
                                 GError       **error);

/* tether describe URI [--json] [connection options]. */
int       describe_main         (int            argc,
                                 char         **argv);

G_END_DECLS
