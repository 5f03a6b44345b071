/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include "tether-proxy-header-private.h"

static const guint8 v2_signature[12] = {
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define V1_PREFIX "PROXY "
#define V1_MAX    107

static TetherProxyStatus
invalid (GError    **error,
         const char *what)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Malformed PROXY protocol header: %s", what);
  return TETHER_PROXY_INVALID;
}

void
_tether_proxy_header_clear (TetherProxyHeader *header)
{
  g_clear_object (&header->source);
  g_clear_object (&header->destination);
  memset (header, 0, sizeof *header);
}

/* A port as version 1 writes it: 0 to 65535, decimal, no leading zero. */
static gboolean
parse_port (const char *text,
            guint16    *port)
{
  guint64 value;
  char *end;

  if (text[0] < '0' || text[0] > '9' || (text[0] == '0' && text[1] != '\0') || strlen (text) > 5)
    return FALSE;
  value = g_ascii_strtoull (text, &end, 10);
  if (*end != '\0' || value > 65535)
    return FALSE;
  *port = (guint16) value;
  return TRUE;
}

static GInetSocketAddress *
v1_address (const char     *text,
            GSocketFamily   family,
            guint16         port)
{
  g_autoptr(GInetAddress) address = NULL;

  /* Only the canonical forms (no zone, no brackets) of the family named. */
  if (strchr (text, '%') != NULL)
    return NULL;
  address = g_inet_address_new_from_string (text);
  if (address == NULL || g_inet_address_get_family (address) != family)
    return NULL;
  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (address, port));
}

static TetherProxyStatus
parse_v1 (const guint8       *data,
          gsize               len,
          TetherProxyHeader  *header,
          gsize              *need,
          GError            **error)
{
  const guint8 *crlf = NULL;
  g_autofree char *line = NULL;
  g_auto(GStrv) fields = NULL;
  GSocketFamily family;
  guint16 sport, dport;

  for (gsize i = 0; i + 1 < MIN (len, V1_MAX); i++)
    if (data[i] == '\r' && data[i + 1] == '\n')
      {
        crlf = data + i;
        break;
      }
  if (crlf == NULL)
    {
      if (len >= V1_MAX)
        return invalid (error, "a version 1 line longer than 107 bytes");
      /* A CR may be the line's end, if a LF follows. */
      for (gsize i = 0; i < len; i++)
        if ((data[i] < 0x20 || data[i] == 0x7f) && !(data[i] == '\r' && i == len - 1))
          return invalid (error, "a control character in a version 1 line");
      if (need != NULL)
        *need = len + 1;
      return TETHER_PROXY_NEED_MORE;
    }

  for (const guint8 *p = data; p < crlf; p++)
    if (*p < 0x20 || *p == 0x7f)
      return invalid (error, "a control character in a version 1 line");
  line = g_strndup ((const char *) data, crlf - data);
  fields = g_strsplit (line, " ", -1);
  header->version = 1;
  header->length = (crlf - data) + 2;
  if (g_strv_length (fields) >= 2 && strcmp (fields[1], "UNKNOWN") == 0)
    return TETHER_PROXY_DONE;   /* the rest of the line is ignored */
  if (g_strv_length (fields) != 6)
    return invalid (error, "a version 1 line needs PROXY, TCP4 or TCP6, two addresses and two ports");
  if (strcmp (fields[1], "TCP4") == 0)
    family = G_SOCKET_FAMILY_IPV4;
  else if (strcmp (fields[1], "TCP6") == 0)
    family = G_SOCKET_FAMILY_IPV6;
  else
    return invalid (error, "version 1 knows TCP4, TCP6 and UNKNOWN only");
  if (!parse_port (fields[4], &sport) || !parse_port (fields[5], &dport))
    return invalid (error, "a port that is not 0 to 65535");
  header->source = v1_address (fields[2], family, sport);
  header->destination = v1_address (fields[3], family, dport);
  if (header->source == NULL || header->destination == NULL)
    {
      g_clear_object (&header->source);
      g_clear_object (&header->destination);
      return invalid (error, "an address that is not of the family named");
    }
  return TETHER_PROXY_DONE;
}

static GInetSocketAddress *
v2_address (const guint8  *bytes,
            GSocketFamily  family,
            const guint8  *port)
{
  g_autoptr(GInetAddress) address = g_inet_address_new_from_bytes (bytes, family);

  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (address, (port[0] << 8) | port[1]));
}

static TetherProxyStatus
parse_v2 (const guint8       *data,
          gsize               len,
          TetherProxyHeader  *header,
          gsize              *need,
          GError            **error)
{
  gsize body, total;
  guint command, family, protocol;

  if (len < 16)
    {
      if (need != NULL)
        *need = 16;
      return TETHER_PROXY_NEED_MORE;
    }
  if ((data[12] >> 4) != 2)
    return invalid (error, "version 2 signature with another version");
  command = data[12] & 0x0f;
  family = data[13] >> 4;
  protocol = data[13] & 0x0f;
  body = ((gsize) data[14] << 8) | data[15];
  total = 16 + body;
  if (command > 1)
    return invalid (error, "an unknown command");
  if (family > 3 || protocol > 2)
    return invalid (error, "an unknown address family or protocol");
  if (total > TETHER_PROXY_HEADER_MAX)
    return invalid (error, "longer than Tether reads");
  if (len < total)
    {
      if (need != NULL)
        *need = total;
      return TETHER_PROXY_NEED_MORE;
    }

  header->version = 2;
  header->length = total;
  header->local = command == 0;
  /* LOCAL: the balancer's own connection; the addresses are ignored. */
  if (header->local || protocol != 1)
    return TETHER_PROXY_DONE;
  switch (family)
    {
    case 1:  /* AF_INET */
      if (body < 12)
        return invalid (error, "too short for two IPv4 addresses");
      header->source = v2_address (data + 16, G_SOCKET_FAMILY_IPV4, data + 24);
      header->destination = v2_address (data + 20, G_SOCKET_FAMILY_IPV4, data + 26);
      break;
    case 2:  /* AF_INET6 */
      if (body < 36)
        return invalid (error, "too short for two IPv6 addresses");
      header->source = v2_address (data + 16, G_SOCKET_FAMILY_IPV6, data + 48);
      header->destination = v2_address (data + 32, G_SOCKET_FAMILY_IPV6, data + 50);
      break;
    case 3:  /* AF_UNIX: nothing a limit per address can use */
      if (body < 216)
        return invalid (error, "too short for two unix addresses");
      break;
    default:  /* UNSPEC */
      break;
    }
  return TETHER_PROXY_DONE;
}

TetherProxyStatus
_tether_proxy_header_parse (const guint8       *data,
                            gsize               len,
                            TetherProxyHeader  *header,
                            gsize              *need,
                            GError            **error)
{
  gsize prefix;

  memset (header, 0, sizeof *header);
  if (len == 0)
    {
      if (need != NULL)
        *need = 1;
      return TETHER_PROXY_NEED_MORE;
    }

  /* Each version's signature, as far as it has arrived. */
  prefix = MIN (len, sizeof v2_signature);
  if (memcmp (data, v2_signature, prefix) == 0)
    {
      if (len < sizeof v2_signature)
        {
          if (need != NULL)
            *need = 16;
          return TETHER_PROXY_NEED_MORE;
        }
      return parse_v2 (data, len, header, need, error);
    }
  prefix = MIN (len, strlen (V1_PREFIX));
  if (memcmp (data, V1_PREFIX, prefix) == 0)
    {
      if (len < strlen (V1_PREFIX))
        {
          if (need != NULL)
            *need = len + 1;
          return TETHER_PROXY_NEED_MORE;
        }
      return parse_v1 (data, len, header, need, error);
    }
  return invalid (error, "the connection did not start with one (is it from the balancer?)");
}
