/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Fuzz target: the PROXY protocol header parser (issue #11).
 *
 * The input is the start of a connection as a load balancer (or anyone)
 * sends it. Besides "no crash, no read past the input", the verdict must
 * hold together as a reader of a stream would need it to:
 *
 *  - DONE: the header is at most what arrived, at most 107 bytes for
 *    version 1 and TETHER_PROXY_HEADER_MAX for version 2; the header
 *    alone reads the same (same length, same addresses), and every
 *    shorter prefix of it asks for more (a reader never refuses a header
 *    that is still arriving); a client address is IPv4 or IPv6, and LOCAL
 *    never names one;
 *  - NEED_MORE: nothing is filled in, and the bytes to wait for are more
 *    than arrived and at most the largest header;
 *  - INVALID: a G_IO_ERROR_INVALID_DATA with a UTF-8 message, and adding
 *    bytes never makes it valid (the input with a byte more is INVALID
 *    too).
 *
 * A finding is a crash: g_assert*() (kept in every build, see
 * tests/fuzz/meson.build) or a sanitizer report. */

#include <stdint.h>
#include <string.h>

#include "tether-proxy-header-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
assert_same (const TetherProxyHeader *a,
             const TetherProxyHeader *b)
{
  g_assert_cmpuint (a->version, ==, b->version);
  g_assert_cmpuint (a->length, ==, b->length);
  g_assert_cmpint (a->local, ==, b->local);
  g_assert_true ((a->source == NULL) == (b->source == NULL));
  if (a->source != NULL)
    {
      g_assert_true (g_inet_address_equal (g_inet_socket_address_get_address (a->source),
                                           g_inet_socket_address_get_address (b->source)));
      g_assert_cmpuint (g_inet_socket_address_get_port (a->source), ==,
                        g_inet_socket_address_get_port (b->source));
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  TetherProxyHeader header, again;
  g_autoptr(GError) error = NULL;
  gsize need = 0;

  switch (_tether_proxy_header_parse (data, size, &header, &need, &error))
    {
    case TETHER_PROXY_DONE:
      g_assert_no_error (error);
      g_assert_cmpuint (header.length, >, 0);
      g_assert_cmpuint (header.length, <=, size);
      g_assert_true (header.version == 1 || header.version == 2);
      g_assert_cmpuint (header.length, <=, header.version == 1 ? 107 : TETHER_PROXY_HEADER_MAX);
      if (header.local)
        g_assert_null (header.source);
      if (header.source != NULL)
        {
          GSocketFamily family = g_inet_address_get_family (g_inet_socket_address_get_address (header.source));

          g_assert_true (family == G_SOCKET_FAMILY_IPV4 || family == G_SOCKET_FAMILY_IPV6);
          g_assert_nonnull (header.destination);
        }
      g_assert_cmpint (_tether_proxy_header_parse (data, header.length, &again, NULL, NULL), ==,
                       TETHER_PROXY_DONE);
      assert_same (&header, &again);
      _tether_proxy_header_clear (&again);
      for (gsize i = 0; i < header.length; i++)
        {
          gsize more = 0;

          g_assert_cmpint (_tether_proxy_header_parse (data, i, &again, &more, NULL), ==,
                           TETHER_PROXY_NEED_MORE);
          g_assert_cmpuint (more, >, i);
        }
      _tether_proxy_header_clear (&header);
      break;
    case TETHER_PROXY_NEED_MORE:
      g_assert_no_error (error);
      g_assert_null (header.source);
      g_assert_cmpuint (need, >, size);
      g_assert_cmpuint (need, <=, TETHER_PROXY_HEADER_MAX);
      break;
    case TETHER_PROXY_INVALID:
    default:
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      g_assert_null (header.source);
      {
        g_autofree guint8 *longer = g_malloc (size + 1);

        memcpy (longer, data, size);
        longer[size] = 'x';
        g_assert_cmpint (_tether_proxy_header_parse (longer, size + 1, &again, NULL, NULL), ==,
                         TETHER_PROXY_INVALID);
        _tether_proxy_header_clear (&again);
      }
      break;
    }
  return 0;
}
