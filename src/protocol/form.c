/*
 * Percent-encoding (RFC 3986) and application/x-www-form-urlencoded bodies
 * (the WHATWG/HTML form encoding: space as '+', everything but the
 * unreserved set escaped, so '+' and '%' in secrets survive the trip).
 */
#include <string.h>

#include "protocol/protocol.h"

int avl_is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int avl_pct_encode(avl_buf *out, const char *s, size_t n, int form) {
    static const char hex[] = "0123456789ABCDEF";
    size_t i, start = 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[3];
        if (avl_is_unreserved(c))
            continue;
        /* Flush the run of unreserved bytes before this one in one copy. */
        if (avl_buf_append(out, s + start, i - start) != 0)
            return -1;
        start = i + 1;
        if (form && c == ' ') {
            if (avl_buf_putc(out, '+') != 0)
                return -1;
            continue;
        }
        esc[0] = '%';
        esc[1] = hex[c >> 4];
        esc[2] = hex[c & 15];
        if (avl_buf_append(out, esc, 3) != 0)
            return -1;
    }
    return avl_buf_append(out, s + start, n - start);
}

int avl_pct_decode(avl_buf *out, const char *s, size_t n, int form) {
    size_t i, start = 0;
    /* Even an empty result leaves out->data non-NULL, so callers can read it. */
    if (avl_buf_append(out, "", 0) != 0)
        return -1;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && hex_value((unsigned char)s[i + 1]) >= 0 &&
            hex_value((unsigned char)s[i + 2]) >= 0) {
            c = (char)(hex_value((unsigned char)s[i + 1]) * 16 + hex_value((unsigned char)s[i + 2]));
        } else if (form && c == '+') {
            c = ' ';
        } else {
            continue;
        }
        if (avl_buf_append(out, s + start, i - start) != 0 || avl_buf_putc(out, c) != 0)
            return -1;
        if (s[i] == '%')
            i += 2;
        start = i + 1;
    }
    return avl_buf_append(out, s + start, n - start);
}

int avl_form_add(avl_buf *out, const char *key, const char *value, size_t value_len) {
    return avl_form_addn(out, key, strlen(key), value, value_len);
}

int avl_form_addn(avl_buf *out, const char *key, size_t key_len, const char *value, size_t value_len) {
    if (out->len > 0 && avl_buf_putc(out, '&') != 0)
        return -1;
    if (avl_pct_encode(out, key, key_len, 1) != 0 || avl_buf_putc(out, '=') != 0)
        return -1;
    return avl_pct_encode(out, value, value_len, 1);
}

int avl_form_parse(const char *body, size_t n, avl_form_cb cb, void *ud) {
    avl_buf key, value;
    size_t pos = 0;
    int rc = 0;
    avl_buf_init(&key);
    avl_buf_init(&value);
    while (pos < n && rc == 0) {
        const char *pair = body + pos, *amp, *eq;
        size_t pair_len, key_len;
        if (*pair == '&') { /* "a=1&&b=2" */
            pos++;
            continue;
        }
        amp = memchr(pair, '&', n - pos);
        pair_len = amp ? (size_t)(amp - pair) : n - pos;
        eq = memchr(pair, '=', pair_len);
        key_len = eq ? (size_t)(eq - pair) : pair_len;
        pos += pair_len + 1;
        key.len = 0;
        value.len = 0;
        if (avl_pct_decode(&key, pair, key_len, 1) != 0 ||
            avl_pct_decode(&value, eq ? eq + 1 : pair, eq ? pair_len - key_len - 1 : 0, 1) != 0)
            rc = -1;
        else
            rc = cb(ud, key.data, key.len, value.data, value.len);
    }
    /* The decoded values may be secrets (tokens): the frees wipe them. */
    avl_buf_free(&key);
    avl_buf_free(&value);
    return rc;
}
