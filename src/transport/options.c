/*
 * The transport options every call takes (docs/design.md section 5; read from
 * a Lua table by lua/options.c), and the URL policy that keeps credentials
 * off clear-text links.
 */
#include <stdio.h>
#include <string.h>

#include "transport/transport.h"

void avl_options_init(avl_options *o) {
    memset(o, 0, sizeof *o);
    o->timeout = AVL_DEFAULT_TIMEOUT;
    o->connect_timeout = AVL_DEFAULT_CONNECT_TIMEOUT;
    o->verify = 1;
    o->max_body = AVL_DEFAULT_MAX_BODY;
    o->transport_ref = AVL_NO_REF;
}

void avl_options_clear(avl_options *o) {
    avl_free_secret(&o->cafile);
    avl_free_secret(&o->capath);
    avl_free_secret(&o->proxy);
    avl_free_secret(&o->user_agent);
}

/* ------------------------------------------------------------ URL policy */

static int ieq_prefix(const char *s, const char *prefix) {
    for (; *prefix != '\0'; s++, prefix++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != *prefix)
            return 0;
    }
    return 1;
}

/* host[0..n) is a dotted quad in 127.0.0.0/8. */
static int ipv4_loopback(const char *host, size_t n) {
    size_t i = 0;
    int part;
    for (part = 0; part < 4; part++) {
        unsigned v = 0, digits = 0;
        while (i < n && host[i] >= '0' && host[i] <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(host[i++] - '0');
            digits++;
        }
        if (digits == 0 || digits > 3 || v > 255 || (part == 0 && v != 127))
            return 0;
        if (part < 3 && (i >= n || host[i++] != '.'))
            return 0;
    }
    return i == n;
}

/* host[0..n) is a loopback name or address. */
static int loopback(const char *host, size_t n) {
    if ((n == 5 && memcmp(host, "[::1]", 5) == 0) ||
        ((n == 9 || (n == 10 && host[9] == '.')) && ieq_prefix(host, "localhost")))
        return 1;
    return ipv4_loopback(host, n);
}

int avl_url_allowed(const char *url, int allow_http, char *why, size_t why_size) {
    const char *host, *end, *at;
    if (ieq_prefix(url, "https://"))
        return 0;
    if (!ieq_prefix(url, "http://")) {
        snprintf(why, why_size, "must be an http:// or https:// URL");
        return -1;
    }
    if (allow_http)
        return 0;
    host = url + 7;
    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(end - host));
    if (at != NULL)
        host = at + 1;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        end = close != NULL ? close + 1 : end;
    } else {
        const char *colon = memchr(host, ':', (size_t)(end - host));
        if (colon != NULL)
            end = colon;
    }
    if (loopback(host, (size_t)(end - host)))
        return 0;
    snprintf(why, why_size, "is plain http:// to a host that is not loopback: credentials would travel "
                            "in clear text (use https://, or pass allow_http = true)");
    return -1;
}
