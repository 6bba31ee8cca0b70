/*
 * The plain C ABI of the request/response path (include/avalara/abi.h),
 * and the pieces of it the classic binding (lua/request.c) builds its
 * requests with: method, target and URL policy, credential, headers, body.
 * No Lua and no libcurl call here (receive.c's HTTP date parser aside):
 * fuzz/fuzz_abi.c links this file with the protocol layer. Sending over
 * libcurl is abi_client.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <avalara/abi.h> /* the public header, include/ (-Iinclude) */
#include "transport/abi.h"

/* ------------------------------------------------ building (shared with Lua) */

static void refuse(avl_request *req, const char *why) {
    if (req->refused == NULL)
        req->refused = why;
}

static int ieq(const char *a, size_t n, const char *b) {
    size_t i;
    for (i = 0; i < n && b[i] != '\0'; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return 0;
    return i == n && b[i] == '\0';
}

int avl_abi_method(char *out, size_t size, const char *s, size_t n) {
    size_t i;
    if (s == NULL) {
        avl_copy_field(out, size, "GET", 3);
        return 0;
    }
    for (i = 0; i < n && isalpha((unsigned char)s[i]); i++)
        ;
    if (n == 0 || i < n || n >= size)
        return -1;
    for (i = 0; i < n; i++)
        out[i] = (char)toupper((unsigned char)s[i]);
    out[n] = '\0';
    return 0;
}

int avl_abi_target(avl_request *req, const char *method, const char *url, size_t n, int check_policy,
                   int allow_http, char *why, size_t why_size) {
    if (strlen(url) != n)
        refuse(req, "the URL holds a NUL byte");
    if (check_policy && avl_url_allowed(url, allow_http, why, why_size) != 0)
        return -1;
    return avl_request_target(req, method, url, n) != 0 ? -2 : 0;
}

int avl_abi_credential(avl_request *req, const char *scheme, const char *value, size_t n) {
    avl_buf b;
    int rc;
    if (n == 0 || !avl_header_value_ok(value, n)) {
        refuse(req, n == 0 ? "the credential is empty"
                           : "the credential holds a control character (CR, LF, NUL, ...)");
        return 0;
    }
    avl_buf_init(&b);
    rc = (scheme != NULL && (avl_buf_appendz(&b, scheme) != 0 || avl_buf_putc(&b, ' ') != 0)) ||
         avl_buf_append(&b, value, n) != 0;
    if (rc == 0) {
        const char *sp = strchr(b.data, ' ');
        rc = avl_secrets_add(&req->secrets, b.data, b.len) != 0 ||
             (sp != NULL && avl_secrets_add(&req->secrets, sp + 1, strlen(sp + 1)) != 0) ||
             avl_request_header(req, "Authorization", b.data, b.len) != 0;
    }
    avl_buf_free(&b);
    return rc ? -1 : 0;
}

int avl_abi_credential_shared(avl_request *req, avl_secret_set **slots, size_t nslots, size_t *next,
                              const char *scheme, const char *value, size_t n) {
    avl_secret_set *set = NULL;
    size_t i;
    if (req->secrets.shared != NULL)
        return avl_abi_credential(req, scheme, value, n);
    for (i = 0; i < nslots && set == NULL; i++)
        if (slots[i] != NULL && avl_secret_set_is(slots[i], scheme, value, n))
            set = slots[i];
    if (set == NULL) {
        /* only values fit to send are kept: the one found needs no check */
        if (n == 0 || !avl_header_value_ok(value, n))
            return avl_abi_credential(req, scheme, value, n);
        if ((set = avl_secret_set_new(scheme, value, n)) == NULL)
            return -1;
        i = next != NULL ? (*next)++ % nslots : 0;
        avl_secret_set_unref(slots[i]);
        slots[i] = set;
    }
    return avl_request_credential(req, set);
}

void avl_cred_cache_clear(avl_cred_cache *c) {
    size_t i;
    for (i = 0; i < AVL_CRED_SLOTS; i++) {
        avl_secret_set_unref(c->slot[i]);
        c->slot[i] = NULL;
    }
    c->next = 0;
}

int avl_abi_header(avl_request *req, const char *name, size_t nl, const char *value, size_t vl, int *flags) {
    size_t i;
    if (nl == 0)
        return -2;
    for (i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)name[i];
        /* the rest of a name that is not a token is refused at sending (avl_request_check) */
        if (c == '\r' || c == '\n' || c == '\0' || c == ':' || c == ' ' || c == '\t')
            return -2;
    }
    if (memchr(value, '\0', vl) != NULL) {
        /* a line is a C string: the check could not see past a NUL */
        refuse(req, "a header value holds a NUL byte");
    } else if (ieq(name, nl, "Authorization")) {
        if (!(*flags & AVL_ABI_HAS_CREDENTIAL)) {
            if (avl_abi_credential(req, NULL, value, vl) != 0)
                return -1;
            *flags |= AVL_ABI_HAS_CREDENTIAL;
        }
    } else {
        char tmp[128];
        *flags |= ieq(name, nl, "Accept") ? AVL_ABI_HAS_ACCEPT : ieq(name, nl, "Content-Type") ? AVL_ABI_HAS_TYPE : 0;
        if (nl < sizeof tmp) {
            memcpy(tmp, name, nl);
            tmp[nl] = '\0';
            return avl_request_header(req, tmp, value, vl) != 0 ? -1 : 0;
        } else {
            char *copy = avl_strndup(name, nl);
            int rc = copy == NULL || avl_request_header(req, copy, value, vl) != 0;
            free(copy);
            return rc ? -1 : 0;
        }
    }
    return 0;
}

int avl_abi_body(avl_request *req, const char *body, size_t n, int flags) {
    if (!(flags & AVL_ABI_HAS_ACCEPT) && avl_request_header(req, "Accept", "application/json", 16) != 0)
        return -1;
    if (body == NULL)
        return 0;
    return avl_buf_append(&req->body, body, n) != 0 ||
                   (!(flags & AVL_ABI_HAS_TYPE) &&
                    avl_request_header(req, "Content-Type", "application/json", 16) != 0)
               ? -1
               : 0;
}

/* ---------------------------------------------------------------- errors */

/* The public AVL_ERR_BODY_MAX is the core's AVL_ERROR_BODY_MAX (a negative size fails to build). */
typedef char avl_err_body_max_check[AVL_ERR_BODY_MAX == AVL_ERROR_BODY_MAX ? 1 : -1];

int avl_abi_version(void) { return AVL_ABI_VERSION; }

/* An avl_err with nothing in it (no memset of its ~5.7 KB: the fields, and
 * the first byte of each text). */
static void err_clear(avl_err *out) {
    out->kind = NULL;
    out->status = 0;
    out->number = 0;
    out->retryable = 0;
    out->needs_refresh = 0;
    out->retry_after = -1;
    out->code[0] = out->message[0] = out->request_id[0] = '\0';
    out->error_description[0] = out->error_uri[0] = '\0';
    out->has_body = 0;
    out->body_len = 0;
    out->body[0] = '\0';
}

void avl_abi_err_from(avl_err *out, const avl_error *e) {
    err_clear(out);
    out->kind = e->kind;
    out->status = e->status;
    out->number = e->number;
    out->retryable = e->retryable;
    out->needs_refresh = e->needs_refresh;
    out->retry_after = e->retry_after;
    avl_copy_field(out->code, sizeof out->code, e->code, strlen(e->code));
    avl_copy_field(out->message, sizeof out->message, e->message, strlen(e->message));
    avl_copy_field(out->request_id, sizeof out->request_id, e->request_id, strlen(e->request_id));
    avl_copy_field(out->error_description, sizeof out->error_description, e->error_description,
                   strlen(e->error_description));
    avl_copy_field(out->error_uri, sizeof out->error_uri, e->error_uri, strlen(e->error_uri));
    if (e->body != NULL) {
        /* already cut to AVL_ERROR_BODY_MAX and redacted (avl_error_set_body) */
        out->has_body = 1;
        out->body_len = avl_copy_field(out->body, sizeof out->body, e->body, e->body_len);
    }
}

avl_outcome avl_abi_outcome(const avl_request *req, const avl_response *r, avl_error *e) {
    return avl_api_outcome(r, &req->secrets, e);
}

static void argument(avl_err *err, const char *fmt, const char *what) {
    if (err == NULL)
        return;
    err_clear(err);
    err->kind = "argument";
    snprintf(err->message, sizeof err->message, fmt, what);
}

static void nomem(avl_err *err) {
    avl_error e;
    if (err == NULL)
        return;
    avl_error_init(&e, "transport");
    avl_error_nomem(&e);
    avl_abi_err_from(err, &e);
}

/* -------------------------------------------------------------- requests */

static size_t len_or(const char *s, size_t n) {
    return s != NULL && n == 0 ? strlen(s) : n;
}

static int copy_opt(char **dst, const char *src) {
    if (src == NULL)
        return 0;
    *dst = avl_strndup(src, strlen(src));
    return *dst == NULL ? -1 : 0;
}

void avl_req_free(avl_req *req) {
    if (req == NULL)
        return;
    avl_request_free(&req->r);
    avl_options_clear(&req->o);
    free(req);
}

int avl_req_header(avl_req *req, const char *name, const char *value, size_t n, avl_err *err) {
    int rc;
    if (req == NULL || name == NULL || (value == NULL && n > 0)) {
        argument(err, "avl_req_header: %s", "a NULL argument");
        return -1;
    }
    rc = avl_abi_header(&req->r, name, strlen(name), value != NULL ? value : "", n, &req->flags);
    if (rc == -2)
        argument(err, "avl_req_header: %s", "a bad header name (a name has no ':', space or control character)");
    else if (rc != 0)
        nomem(err);
    return rc != 0 ? -1 : 0;
}

avl_req *avl_req_new(const avl_req_spec *s, avl_err *err) {
    char method[32], why[200];
    avl_req *req;
    size_t n, i;
    int rc;
    if (s == NULL || s->url == NULL) {
        argument(err, "avl_req_new: %s", "'url' must be given");
        return NULL;
    }
    if (avl_abi_method(method, sizeof method, s->method, s->method != NULL ? strlen(s->method) : 0) != 0) {
        argument(err, "avl_req_new: %s", "'method' must be an HTTP method name");
        return NULL;
    }
    req = calloc(1, sizeof *req);
    if (req == NULL) {
        nomem(err);
        return NULL;
    }
    avl_request_init(&req->r);
    avl_options_init(&req->o);
    if (s->timeout > 0)
        req->o.timeout = s->timeout;
    if (s->connect_timeout > 0)
        req->o.connect_timeout = s->connect_timeout;
    if (s->max_body > 0)
        req->o.max_body = s->max_body;
    req->o.allow_http = s->allow_http != 0;
    req->o.verify = s->insecure == 0;
    if (copy_opt(&req->o.cafile, s->cafile) != 0 || copy_opt(&req->o.capath, s->capath) != 0 ||
        copy_opt(&req->o.proxy, s->proxy) != 0 || copy_opt(&req->o.user_agent, s->user_agent) != 0)
        goto oom;
    n = len_or(s->url, s->url_len);
    why[0] = '\0';
    rc = avl_abi_target(&req->r, method, s->url, n, 1, req->o.allow_http, why, sizeof why);
    if (rc == -1) {
        argument(err, "avl_req_new: 'url' %s", why);
        avl_req_free(req);
        return NULL;
    } else if (rc != 0) {
        goto oom;
    }
    if (s->token != NULL) {
        if (avl_abi_credential(&req->r, "Bearer", s->token, len_or(s->token, s->token_len)) != 0)
            goto oom;
        req->flags |= AVL_ABI_HAS_CREDENTIAL;
    } else if (s->authorization != NULL) {
        if (avl_abi_credential(&req->r, NULL, s->authorization, len_or(s->authorization, s->authorization_len)) != 0)
            goto oom;
        req->flags |= AVL_ABI_HAS_CREDENTIAL;
    }
    for (i = 0; s->headers != NULL && s->headers[i] != NULL; i += 2) {
        const char *v = s->headers[i + 1] != NULL ? s->headers[i + 1] : "";
        if (avl_req_header(req, s->headers[i], v, strlen(v), err) != 0) {
            avl_req_free(req);
            return NULL;
        }
        if (s->headers[i + 1] == NULL)
            break;
    }
    if (avl_abi_body(&req->r, s->body, s->body != NULL ? s->body_len : 0, req->flags) != 0)
        goto oom;
    return req;
oom:
    nomem(err);
    avl_req_free(req);
    return NULL;
}

int avl_req_check(const avl_req *req, avl_err *err) {
    avl_error e;
    if (avl_request_check(&req->r, &e) == 0)
        return 0;
    if (err != NULL)
        avl_abi_err_from(err, &e);
    avl_error_free(&e);
    return -1;
}

const char *avl_req_method(const avl_req *req) { return req->r.method; }
const char *avl_req_url(const avl_req *req) { return req->r.url; }
size_t avl_req_header_count(const avl_req *req) { return req->r.nheaders; }
double avl_req_timeout(const avl_req *req) { return req->o.timeout; }

const char *avl_req_header_line(const avl_req *req, size_t i) {
    return i < req->r.nheaders ? req->r.headers[i] : NULL;
}

const char *avl_req_body(const avl_req *req, size_t *n) {
    if (n != NULL)
        *n = req->r.body.data != NULL ? req->r.body.len : 0;
    return req->r.body.data;
}

void avl_bytes_free(char *bytes, size_t n) {
    if (bytes == NULL)
        return;
    avl_wipe(bytes, n);
    free(bytes);
}

/* A caller's header that frames the message on the wire: Host and
 * Content-Length are written here (a second one would let a server or a
 * proxy read the request otherwise: request smuggling), and the body is
 * never chunked. Such lines are dropped, as the cosocket transport drops
 * them from a request table. (Connection is the caller's: a transport of
 * one's own may ask the server to close.) */
static int framing_header(const char *line) {
    static const char *const names[] = { "Host:", "Content-Length:", "Transfer-Encoding:" };
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncasecmp(line, names[i], strlen(names[i])) == 0)
            return 1;
    return 0;
}

int avl_req_wire(const avl_req *req, char **out, size_t *n, avl_err *err) {
    const char *url, *host, *path, *end, *at;
    avl_buf b;
    size_t i;
    int rc;
    *out = NULL;
    *n = 0;
    if (avl_req_check(req, err) != 0)
        return -1;
    url = req->r.url;
    host = strstr(url, "://");
    host = host != NULL ? host + 3 : url;
    path = host + strcspn(host, "/?#");
    end = path + strcspn(path, "#");
    avl_buf_init(&b);
    at = memchr(host, '@', (size_t)(path - host));
    if (at != NULL)
        host = at + 1;   /* userinfo never goes into Host */
    rc = avl_buf_appendz(&b, req->r.method) != 0 || avl_buf_putc(&b, ' ') != 0 ||
         (*path != '/' && avl_buf_putc(&b, '/') != 0) || avl_buf_append(&b, path, (size_t)(end - path)) != 0 ||
         avl_buf_appendz(&b, " HTTP/1.1\r\nHost: ") != 0 || avl_buf_append(&b, host, (size_t)(path - host)) != 0 ||
         avl_buf_appendz(&b, "\r\n") != 0;
    for (i = 0; rc == 0 && i < req->r.nheaders; i++)
        if (!framing_header(req->r.headers[i]))
            rc = avl_buf_appendz(&b, req->r.headers[i]) != 0 || avl_buf_appendz(&b, "\r\n") != 0;
    if (rc == 0 && req->r.body.data != NULL) {
        char len[32];
        snprintf(len, sizeof len, "%zu", req->r.body.len);
        rc = avl_buf_appendz(&b, "Content-Length: ") != 0 || avl_buf_appendz(&b, len) != 0 ||
             avl_buf_appendz(&b, "\r\n") != 0;
    }
    rc = rc || avl_buf_appendz(&b, "\r\n") != 0 ||
         (req->r.body.data != NULL && avl_buf_append(&b, req->r.body.data, req->r.body.len) != 0);
    if (rc) {
        avl_buf_free(&b);
        nomem(err);
        return -1;
    }
    *out = b.data;
    *n = b.len;
    return 0;
}

/* ------------------------------------------------------------- responses */

avl_resp *avl_resp_new(const avl_req *req) {
    avl_resp *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->req = req;
    avl_response_init(&r->r);
    avl_receive_init(&r->rc, &r->r, &req->o, &req->r);
    avl_error_init(&r->fail, "transport");
    return r;
}

void avl_resp_free(avl_resp *r) {
    if (r == NULL)
        return;
    avl_response_free(&r->r);
    avl_error_free(&r->fail);
    free(r);
}

void avl_resp_status(avl_resp *r, int status) {
    if (r->r.status >= 100 && r->r.status < 200)
        avl_response_reset_headers(&r->r);
    r->r.status = status;
}

int avl_resp_header(avl_resp *r, const char *name, size_t nl, const char *value, size_t vl) {
    if (avl_receive_stopped(&r->rc))
        return -1;
    return avl_receive_header(&r->rc, name, nl, value, vl) != 0 ? -1 : 0;
}

int avl_resp_body(avl_resp *r, const char *p, size_t n) {
    if (avl_receive_stopped(&r->rc))
        return -1;
    return n == 0 || avl_receive_body(&r->rc, p, n) == n ? 0 : -1;
}

void avl_resp_fail(avl_resp *r, const char *kind, const char *message, size_t n) {
    const char *k = kind != NULL ? avl_error_kind(kind) : NULL;
    avl_error_free(&r->fail);
    avl_error_init(&r->fail, k != NULL ? k : "transport");
    if (message != NULL)
        avl_error_text(r->fail.message, sizeof r->fail.message, message, n, &r->req->r.secrets);
    else
        avl_error_setf(&r->fail, NULL, "transport failed");
    r->fail.retryable = strcmp(r->fail.kind, "tls") != 0; /* a network failure may pass */
    r->failed = 1;
}

int avl_resp_get_status(const avl_resp *r) { return r->r.status; }

const char *avl_resp_headers(const avl_resp *r, size_t *n) {
    if (n != NULL)
        *n = r->r.headers.len;
    return r->r.headers.data != NULL ? r->r.headers.data : "";
}

static avl_verdict verdict_of(const avl_error *e) {
    return e->needs_refresh ? AVL_RENEW : e->retryable ? AVL_RETRY : AVL_ERROR;
}

static avl_verdict fail_with(avl_result *out, int status, avl_error *e) {
    out->verdict = verdict_of(e);
    out->status = status;
    out->body = NULL;
    out->body_len = 0;
    avl_abi_err_from(&out->err, e);
    avl_error_free(e);
    return out->verdict;
}

avl_verdict avl_result_of(const avl_req *req, const avl_resp *resp, avl_result *out) {
    avl_outcome oc;
    avl_error e;
    out->verdict = AVL_OK;
    out->status = 0;
    out->body = NULL;
    out->body_len = 0;
    err_clear(&out->err);
    if (resp->failed) {
        /* read, not taken: the body a truncated answer kept stays resp's */
        out->verdict = verdict_of(&resp->fail);
        avl_abi_err_from(&out->err, &resp->fail);
        return out->verdict;
    }
    if (avl_receive_end(&resp->rc, &req->r, (avl_response *)&resp->r, &e) != 0)
        return fail_with(out, resp->r.status, &e);
    oc = avl_abi_outcome(&req->r, &resp->r, &e);
    if (oc == AVL_OUTCOME_ERROR)
        return fail_with(out, resp->r.status, &e);
    out->verdict = AVL_OK;
    out->status = resp->r.status;
    if (oc == AVL_OUTCOME_JSON) {
        out->body = resp->r.body.data;
        out->body_len = resp->r.body.len;
    }
    return AVL_OK;
}

void avl_result_decode_failed(const avl_req *req, const avl_resp *resp, const char *reason, avl_result *out) {
    avl_error e;
    avl_api_parse_failure(&resp->r, reason != NULL ? reason : "not JSON", &req->r.secrets, &e);
    fail_with(out, resp->r.status, &e);
}
