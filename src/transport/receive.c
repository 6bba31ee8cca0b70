/*
 * Reading a response as it arrives: the headers and body libcurl's
 * callbacks hand over (curl.c), or those of a Lua transport function's
 * answer (lua/transport.c). Both go through here, so max_body, the header
 * limit and Content-Length apply alike. Nothing here raises.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "transport/transport.h"

double avl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void avl_receive_init(avl_receive *c, avl_response *r, const avl_options *o, const avl_request *req) {
    memset(c, 0, sizeof *c);
    c->r = r;
    c->max_body = o->max_body;
    c->is_head = strcmp(req->method, "HEAD") == 0;
}

static double http_date(const char *s) {
    time_t when = curl_getdate(s, NULL);
    return when == (time_t)-1 ? -1 : (double)when;
}

int avl_receive_header(avl_receive *c, const char *name, size_t nl, const char *value, size_t vl) {
    /* the clock only for Retry-After, the one header that needs it (a
     * response has a dozen headers) */
    double now = nl == 11 && strncasecmp(name, "retry-after", 11) == 0 ? avl_now() : 0;
    int rc = avl_response_header(c->r, name, nl, value, vl, now, http_date);
    if (rc != 0) {
        c->nomem |= rc == -1;
        c->headers_too_big |= rc == -2;
        return -1;
    }
    if (nl == 14 && strncasecmp(name, "content-length", 14) == 0 && !c->is_head) {
        char tmp[32];
        avl_copy_field(tmp, sizeof tmp, value, vl);
        if (strtod(tmp, NULL) > (double)c->max_body) {
            c->too_big = 1;
            return -1;
        }
    }
    return 0;
}

size_t avl_receive_body(avl_receive *c, const char *p, size_t n) {
    if (n > c->max_body - c->r->body.len) {
        c->too_big = 1;
        return 0;
    }
    if (avl_buf_append(&c->r->body, p, n) != 0) {
        c->nomem = 1;
        return 0;
    }
    return n;
}

int avl_receive_stopped(const avl_receive *c) {
    return c->too_big || c->nomem || c->headers_too_big;
}

void avl_receive_failed(const avl_request *req, const avl_response *r, avl_error *e) {
    const char *id;
    size_t id_len;
    e->status = r->status;
    id = avl_response_request_id(r, &id_len);
    avl_error_text(e->request_id, sizeof e->request_id, id, id_len, &req->secrets);
    e->retry_after = r->retry_after;
}

int avl_receive_end(const avl_receive *c, const avl_request *req, avl_response *r, avl_error *e) {
    avl_error_init(e, "transport");
    if (!avl_receive_stopped(c))
        return 0;
    avl_receive_failed(req, r, e);
    if (c->too_big) {
        /* The server answered, but with more than we accept: an HTTP-level
         * refusal, not a network failure, and not worth retrying. */
        avl_error_setf(e, "http", "response body exceeds max_body (%zu bytes)", c->max_body);
    } else if (c->headers_too_big) {
        avl_error_setf(e, "http", "response headers exceed %d bytes", AVL_HEADERS_MAX);
    } else {
        avl_error_nomem(e);
    }
    return -1;
}
