/*
 * One HTTP exchange's request and response, as plain data: built by the
 * OAuth and request layers, moved by the transport (libcurl or a Lua
 * function), read by outcome.c. A request carries credentials, so every
 * byte it owns is wiped when it is freed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/protocol.h"

void avl_request_init(avl_request *r) {
    memset(r, 0, sizeof *r);
    avl_buf_init(&r->body);
    avl_secrets_init(&r->secrets);
}

int avl_request_target(avl_request *r, const char *method, const char *url, size_t url_len) {
    avl_free_secret(&r->method);
    avl_free_secret(&r->url);
    r->method = avl_strndup(method, strlen(method));
    r->url = avl_strndup(url, url_len);
    return r->method != NULL && r->url != NULL ? 0 : -1;
}

/* Room for one more line. 0, -1 OOM. */
static int grow(avl_request *r) {
    if (r->nheaders + 1 >= r->cap) {
        /* an array of pointers: growing it moves no header bytes */
        size_t cap = r->cap ? r->cap * 2 : 8;
        char **h = realloc(r->headers, cap * sizeof *h);
        if (h == NULL)
            return -1;
        r->headers = h;
        r->cap = cap;
    }
    return 0;
}

int avl_request_credential(avl_request *r, avl_secret_set *set) {
    if (grow(r) != 0)
        return -1;
    avl_secrets_share(&r->secrets, set);
    r->headers[r->nheaders++] = set->line; /* borrowed: avl_request_free leaves it to the set */
    r->headers[r->nheaders] = NULL;
    return 0;
}

int avl_request_header(avl_request *r, const char *name, const char *value, size_t value_len) {
    avl_buf line;
    if (grow(r) != 0)
        return -1;
    avl_buf_init(&line);
    if (avl_buf_appendz(&line, name) != 0 || avl_buf_append(&line, ": ", 2) != 0 ||
        avl_buf_append(&line, value, value_len) != 0) {
        avl_buf_free(&line);
        return -1;
    }
    r->headers[r->nheaders++] = line.data;
    r->headers[r->nheaders] = NULL;
    return 0;
}

/* RFC 9110 5.6.2 tchar */
static int is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int avl_header_value_ok(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

static int refuse(avl_error *e, const char *why) {
    avl_error_init(e, "transport");
    avl_error_setf(e, "transport", "request not sent: %s", why);
    return -1;
}

int avl_request_check(const avl_request *r, avl_error *e) {
    size_t i, n;
    const char *u;
    if (r->refused != NULL)
        return refuse(e, r->refused);
    if (r->method == NULL || r->method[0] == '\0' || r->url == NULL)
        return refuse(e, "no method or URL");
    for (i = 0; r->method[i] != '\0'; i++)
        if (!is_tchar((unsigned char)r->method[i]))
            return refuse(e, "the method is not a token");
    for (u = r->url; *u != '\0'; u++)
        if ((unsigned char)*u <= 0x20 || (unsigned char)*u == 0x7f)
            return refuse(e, "the URL holds a space or a control character (CR, LF, ...); "
                             "encode it (%20, %0D, ...)");
    for (i = 0; i < r->nheaders; i++) {
        const char *line = r->headers[i], *colon = strchr(line, ':');
        if (colon == NULL || colon == line)
            return refuse(e, "a header line has no name");
        for (n = 0; line + n < colon; n++)
            if (!is_tchar((unsigned char)line[n]))
                return refuse(e, "a header name holds a character a name cannot have");
        if (!avl_header_value_ok(colon + 1, strlen(colon + 1))) {
            char why[160];
            if (n == 13 && strncasecmp(line, "Authorization", 13) == 0)
                snprintf(why, sizeof why, "the credential (Authorization) holds a control character "
                                          "(CR, LF, ...)");
            else
                snprintf(why, sizeof why, "the value of header '%.*s' holds a control character (CR, LF, ...)",
                         (int)(n < 64 ? n : 64), line);
            return refuse(e, why);
        }
    }
    return 0;
}

void avl_request_free(avl_request *r) {
    size_t i;
    avl_free_secret(&r->method);
    avl_free_secret(&r->url);
    for (i = 0; i < r->nheaders; i++)
        if (r->secrets.shared == NULL || r->headers[i] != r->secrets.shared->line)
            avl_free_secret(&r->headers[i]);
    free(r->headers);
    avl_buf_free(&r->body);
    avl_secrets_free(&r->secrets);
    avl_request_init(r);
}

/* --------------------------------------------------------------- response */

void avl_response_init(avl_response *r) {
    memset(r, 0, sizeof *r);
    avl_buf_init(&r->body);
    avl_buf_init(&r->headers);
    r->retry_after = -1;
}

void avl_response_free(avl_response *r) {
    avl_buf_free(&r->body);
    avl_buf_free(&r->headers);
}

void avl_response_reset_headers(avl_response *r) {
    r->headers.len = 0;
    if (r->headers.data != NULL)
        r->headers.data[0] = '\0';
    r->content_type[0] = '\0';
    r->request_id_at = r->request_id_len = 0;
    r->retry_after = -1;
}

static int name_is(const char *name, size_t n, const char *want) {
    size_t i;
    if (strlen(want) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (tolower((unsigned char)name[i]) != want[i])
            return 0;
    return 1;
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 section 10.2.3),
 * clamped to [0, AVL_RETRY_AFTER_MAX]; -1 when unreadable. */
static double retry_after(const char *v, size_t n, double now, double (*parse_date)(const char *)) {
    size_t i;
    double secs = 0;
    if (n == 0)
        return -1;
    for (i = 0; i < n && v[i] >= '0' && v[i] <= '9'; i++)
        if (secs < AVL_RETRY_AFTER_MAX)
            secs = secs * 10 + (v[i] - '0');
    if (i < n) {
        char tmp[128];
        double when;
        if (parse_date == NULL)
            return -1;
        avl_copy_field(tmp, sizeof tmp, v, n);
        when = parse_date(tmp);
        if (when < 0)
            return -1;
        secs = when - now;
    }
    return secs < 0 ? 0 : secs > AVL_RETRY_AFTER_MAX ? AVL_RETRY_AFTER_MAX : secs;
}

const char *avl_response_request_id(const avl_response *r, size_t *n) {
    *n = r->headers.data != NULL ? r->request_id_len : 0;
    return *n > 0 ? r->headers.data + r->request_id_at : "";
}

int avl_response_header(avl_response *r, const char *name, size_t nl, const char *value, size_t vl,
                        double now, double (*parse_date)(const char *s)) {
    size_t at = r->headers.len + nl + 2; /* where the value goes in the block */
    if (r->headers.len + nl + vl + 4 > AVL_HEADERS_MAX)
        return -2;
    if (avl_buf_append(&r->headers, name, nl) != 0 || avl_buf_append(&r->headers, ": ", 2) != 0 ||
        avl_buf_append(&r->headers, value, vl) != 0 || avl_buf_append(&r->headers, "\r\n", 2) != 0)
        return -1;
    if (name_is(name, nl, "content-type"))
        avl_copy_field(r->content_type, sizeof r->content_type, value, vl);
    else if (name_is(name, nl, "x-correlation-id")) {
        r->request_id_at = at;
        r->request_id_len = vl;
    }
    else if (name_is(name, nl, "retry-after"))
        r->retry_after = retry_after(value, vl, now, parse_date);
    return 0;
}
