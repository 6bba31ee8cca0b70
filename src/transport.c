/*
 * The transport: one HTTP exchange (or a batch on a multi handle) over
 * libcurl, or over a Lua function given as the `transport` option.
 *
 * Per lua_State, a registry-held pool owns a CURLSH share (connections, TLS
 * sessions and DNS shared by every handle, single and multi transfers alike)
 * and idle easy handles keyed by the options that shape a connection (CA,
 * proxy, verify, user agent). Per-request settings (URL, method, headers,
 * timeouts, callbacks) are set on every use.
 *
 * No Lua error is ever raised while libcurl runs: callbacks record what
 * went wrong in their context and return a value that stops the transfer.
 */
#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "core.h"
#include "transport.h"
#include "version.h"

#define POOL_KEY "avalara.transport.pool"
#define POOL_MAX 32                     /* idle easy handles kept per state */
#define HEADERS_MAX (256 * 1024)        /* cap on the response header block */

typedef struct {
    char *key;
    CURL *easy;
} pool_entry;

typedef struct {
    CURLSH *share;
    int closed;             /* collected: lua_close is under way */
    pool_entry idle[POOL_MAX];
    size_t count;
    char user_agent[192];
} pool;

/* ---------------------------------------------------------------- options */

static double opt_seconds(lua_State *L, int idx, const char *name, double dflt) {
    double v;
    lua_getfield(L, idx, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return dflt;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "bad option '%s' (number of seconds expected, got %s)", name,
                   luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
    if (!(v > 0))
        luaL_error(L, "bad option '%s' (must be > 0)", name);
    lua_pop(L, 1);
    return v;
}

static void opt_check_string(lua_State *L, int idx, const char *name) {
    lua_getfield(L, idx, name);
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "bad option '%s' (string expected, got %s)", name, luaL_typename(L, -1));
    lua_pop(L, 1);
}

/* Only called after opt_check_string: cannot raise. */
static int opt_dup_string(lua_State *L, int idx, const char *name, char **out) {
    size_t n;
    const char *s;
    *out = NULL;
    lua_getfield(L, idx, name);
    s = lua_tolstring(L, -1, &n);
    if (s != NULL && (*out = avl_strndup(s, n)) == NULL) {
        lua_pop(L, 1);
        return -1;
    }
    lua_pop(L, 1);
    return 0;
}

void avl_options_read(lua_State *L, int idx, avl_options *o) {
    double max_body = AVL_DEFAULT_MAX_BODY;
    idx = lua_absindex(L, idx);
    memset(o, 0, sizeof *o);
    o->transport_ref = LUA_NOREF;
    o->verify = 1;
    luaL_checktype(L, idx, LUA_TTABLE);

    /* Every check first, so a raise never leaves a copy behind. */
    o->timeout = opt_seconds(L, idx, "timeout", AVL_DEFAULT_TIMEOUT);
    o->connect_timeout = opt_seconds(L, idx, "connect_timeout", AVL_DEFAULT_CONNECT_TIMEOUT);
    opt_check_string(L, idx, "cafile");
    opt_check_string(L, idx, "capath");
    opt_check_string(L, idx, "proxy");
    opt_check_string(L, idx, "user_agent");
    lua_getfield(L, idx, "verify");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN)
        luaL_error(L, "bad option 'verify' (boolean expected, got %s)", luaL_typename(L, -1));
    o->verify = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, idx, "max_body");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "bad option 'max_body' (number of bytes expected, got %s)",
                       luaL_typename(L, -1));
        max_body = lua_tonumber(L, -1);
        if (!(max_body >= 1 && max_body <= (double)(SIZE_MAX / 2)))
            luaL_error(L, "bad option 'max_body' (must be a positive byte count)");
    }
    lua_pop(L, 1);
    o->max_body = (size_t)max_body;
    lua_getfield(L, idx, "transport");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TFUNCTION)
        luaL_error(L, "bad option 'transport' (function expected, got %s)", luaL_typename(L, -1));
    lua_pop(L, 1);

    if (opt_dup_string(L, idx, "cafile", &o->cafile) != 0 ||
        opt_dup_string(L, idx, "capath", &o->capath) != 0 ||
        opt_dup_string(L, idx, "proxy", &o->proxy) != 0 ||
        opt_dup_string(L, idx, "user_agent", &o->user_agent) != 0) {
        avl_options_free(L, o);
        luaL_error(L, "out of memory");
    }
    lua_getfield(L, idx, "transport");
    if (lua_isnil(L, -1))
        lua_pop(L, 1);
    else
        o->transport_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void avl_options_free(lua_State *L, avl_options *o) {
    avl_free_secret(&o->cafile);
    avl_free_secret(&o->capath);
    avl_free_secret(&o->proxy); /* may carry proxy credentials */
    avl_free_secret(&o->user_agent);
    if (o->transport_ref != LUA_NOREF && o->transport_ref != LUA_REFNIL)
        luaL_unref(L, LUA_REGISTRYINDEX, o->transport_ref);
    o->transport_ref = LUA_NOREF;
}

static int dup_opt(const char *from, char **to) {
    *to = NULL;
    return from != NULL && (*to = avl_strndup(from, strlen(from))) == NULL ? -1 : 0;
}

int avl_options_copy(lua_State *L, const avl_options *from, avl_options *to) {
    *to = *from;
    to->cafile = to->capath = to->proxy = to->user_agent = NULL;
    to->transport_ref = LUA_NOREF;
    if (dup_opt(from->cafile, &to->cafile) != 0 || dup_opt(from->capath, &to->capath) != 0 ||
        dup_opt(from->proxy, &to->proxy) != 0 || dup_opt(from->user_agent, &to->user_agent) != 0) {
        avl_options_free(L, to);
        return -1;
    }
    if (from->transport_ref != LUA_NOREF && from->transport_ref != LUA_REFNIL) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, from->transport_ref);
        to->transport_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

/* --------------------------------------------------------------- response */

void avl_http_response_init(avl_http_response *r) {
    memset(r, 0, sizeof *r);
    avl_buf_init(&r->body);
    avl_buf_init(&r->headers);
    r->retry_after = -1;
}

void avl_http_response_free(avl_http_response *r) {
    avl_buf_free(&r->body);
    avl_buf_free(&r->headers);
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

static void copy_value(char *dst, size_t size, const char *v, size_t n) {
    if (n >= size)
        n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 section 10.2.3). */
static double parse_retry_after(const char *v, size_t n) {
    char tmp[128];
    size_t i;
    int digits = n > 0;
    for (i = 0; i < n; i++)
        if (!isdigit((unsigned char)v[i]))
            digits = 0;
    copy_value(tmp, sizeof tmp, v, n);
    if (digits)
        return strtod(tmp, NULL);
    {
        time_t when = curl_getdate(tmp, NULL);
        double delta;
        if (when == (time_t)-1)
            return -1;
        delta = difftime(when, time(NULL));
        return delta > 0 ? delta : 0;
    }
}

/* What a transfer learns while it runs, written by callbacks that never raise. */
typedef struct {
    avl_http_response *r;
    size_t max_body;
    int is_head;
    int too_big;        /* body or Content-Length over max_body */
    int headers_too_big;
    int nomem;
} transfer_ctx;

static void reset_response(avl_http_response *r) {
    r->headers.len = 0;
    if (r->headers.data != NULL)
        r->headers.data[0] = '\0';
    r->content_type[0] = '\0';
    r->request_id[0] = '\0';
    r->retry_after = -1;
}

/* One "Name: value" pair of the final response. 0, or -1 to stop. */
static int take_header(transfer_ctx *c, const char *name, size_t nl, const char *value, size_t vl) {
    avl_http_response *r = c->r;
    if (r->headers.len + nl + vl + 4 > HEADERS_MAX) {
        c->headers_too_big = 1;
        return -1;
    }
    if (avl_buf_append(&r->headers, name, nl) != 0 || avl_buf_append(&r->headers, ": ", 2) != 0 ||
        avl_buf_append(&r->headers, value, vl) != 0 || avl_buf_append(&r->headers, "\r\n", 2) != 0) {
        c->nomem = 1;
        return -1;
    }
    if (name_is(name, nl, "content-type"))
        copy_value(r->content_type, sizeof r->content_type, value, vl);
    else if (name_is(name, nl, "x-correlation-id"))
        copy_value(r->request_id, sizeof r->request_id, value, vl);
    else if (name_is(name, nl, "retry-after"))
        r->retry_after = parse_retry_after(value, vl);
    else if (name_is(name, nl, "content-length") && !c->is_head) {
        char tmp[32];
        copy_value(tmp, sizeof tmp, value, vl);
        if (strtod(tmp, NULL) > (double)c->max_body) {
            c->too_big = 1;
            return -1;
        }
    }
    return 0;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
    transfer_ctx *c = ud;
    size_t n = size * nmemb, nl, vs, ve;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new status line (1xx, then the final one): start over. */
        const char *sp = memchr(p, ' ', n);
        reset_response(c->r);
        if (sp != NULL)
            c->r->status = atoi(sp + 1);
        return n;
    }
    for (nl = 0; nl < n && p[nl] != ':'; nl++)
        ;
    if (nl == n || nl == 0)
        return n; /* the blank line ending the block, or a folded line */
    for (vs = nl + 1; vs < n && (p[vs] == ' ' || p[vs] == '\t'); vs++)
        ;
    for (ve = n; ve > vs && (p[ve - 1] == '\r' || p[ve - 1] == '\n' || p[ve - 1] == ' ' ||
                             p[ve - 1] == '\t'); ve--)
        ;
    return take_header(c, p, nl, p + vs, ve - vs) == 0 ? n : 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
    transfer_ctx *c = ud;
    size_t n = size * nmemb;
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

/* ----------------------------------------------------------------- errors */

static int is_tls_error(CURLcode rc) {
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return 1;
    default:
        return 0;
    }
}

static int is_transient(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_OPERATION_TIMEDOUT:
        return 1;
    default:
        return 0;
    }
}

/* Turns a finished transfer's outcome into 0 (r holds a response) or -1 (e
 * filled). */
static int finish(CURLcode rc, const char *errbuf, const transfer_ctx *c,
                  const avl_http_request *req, avl_http_response *r, avl_error *e) {
    avl_error_init(e, "transport");
    if (rc == CURLE_OK && !c->too_big && !c->nomem && !c->headers_too_big)
        return 0;
    e->status = r->status;
    copy_value(e->request_id, sizeof e->request_id, r->request_id, strlen(r->request_id));
    e->retry_after = r->retry_after;
    if (c->too_big) {
        /* The server answered, but with more than we accept: an HTTP-level
         * refusal, not a network failure, and not worth retrying. */
        avl_error_setf(e, "http", "response body exceeds max_body (%zu bytes)", c->max_body);
    } else if (c->headers_too_big) {
        avl_error_setf(e, "http", "response headers exceed %d bytes", HEADERS_MAX);
    } else if (rc == CURLE_PARTIAL_FILE && r->status > 0) {
        /* Cut short after the status line: a body problem the caller sees
         * like any unreadable body (2xx: parse, else http), worth a retry. */
        avl_error_setf(e, r->status >= 200 && r->status <= 299 ? "parse" : "http",
                       "response truncated: %s", errbuf != NULL && errbuf[0] != '\0' ? errbuf
                                                                                : curl_easy_strerror(rc));
        e->retryable = 1;
        avl_error_set_body(e, r->body.data, r->body.len, req->secrets);
    } else if (c->nomem) {
        avl_error_setf(e, "transport", "out of memory while receiving the response");
    } else {
        const char *kind = rc == CURLE_OPERATION_TIMEDOUT ? "timeout"
                           : is_tls_error(rc)              ? "tls"
                                                           : "transport";
        if (errbuf != NULL && errbuf[0] != '\0' && strstr(errbuf, curl_easy_strerror(rc)) == NULL)
            avl_error_setf(e, kind, "%s: %s", curl_easy_strerror(rc), errbuf);
        else if (errbuf != NULL && errbuf[0] != '\0')
            avl_error_setf(e, kind, "%s", errbuf);
        else
            avl_error_setf(e, kind, "%s", curl_easy_strerror(rc));
        e->retryable = is_transient(rc);
    }
    avl_error_redact(e, req->secrets);
    return -1;
}

/* ------------------------------------------------------------------- pool */

static pool *get_pool(lua_State *L) {
    pool *p;
    lua_getfield(L, LUA_REGISTRYINDEX, POOL_KEY);
    p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return p;
}

/* Keys may hold proxy credentials. */
static void free_key(char *key) {
    avl_free_secret(&key);
}

static int pool_gc(lua_State *L) {
    pool *p = lua_touserdata(L, 1);
    size_t i;
    for (i = 0; i < p->count; i++) {
        curl_easy_cleanup(p->idle[i].easy);
        free_key(p->idle[i].key);
    }
    p->count = 0;
    p->closed = 1;
    if (p->share != NULL) {
        curl_share_cleanup(p->share); /* after every handle using it */
        p->share = NULL;
    }
    return 0;
}

/* The options that shape a connection, as one string. */
static char *options_key(const avl_options *o) {
    avl_buf b;
    char verify[2] = {o->verify ? '1' : '0', '\0'};
    const char *parts[5];
    size_t i;
    parts[0] = o->cafile;
    parts[1] = o->capath;
    parts[2] = o->proxy;
    parts[3] = verify;
    parts[4] = o->user_agent;
    avl_buf_init(&b);
    for (i = 0; i < 5; i++)
        if (avl_buf_appendz(&b, parts[i] != NULL ? parts[i] : "") != 0 || avl_buf_putc(&b, '\x1f') != 0) {
            avl_buf_free(&b);
            return NULL;
        }
    return b.data;
}

static CURL *new_easy(pool *p, const avl_options *o) {
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    if (p->share != NULL)
        curl_easy_setopt(h, CURLOPT_SHARE, p->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* whatever this libcurl decodes */
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, o->verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, o->verify ? 2L : 0L);
    if (o->cafile != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, o->cafile);
    if (o->capath != NULL)
        curl_easy_setopt(h, CURLOPT_CAPATH, o->capath);
    if (o->proxy != NULL)
        curl_easy_setopt(h, CURLOPT_PROXY, o->proxy);
    curl_easy_setopt(h, CURLOPT_USERAGENT, o->user_agent != NULL ? o->user_agent : p->user_agent);
    return h;
}

/* An idle handle for these options, or a new one; NULL on OOM or once
 * the pool is collected. */
static CURL *acquire(pool *p, const avl_options *o) {
    char *key;
    CURL *h = NULL;
    size_t i;
    if (p->closed || (key = options_key(o)) == NULL)
        return NULL;
    for (i = p->count; i-- > 0;)
        if (strcmp(p->idle[i].key, key) == 0) {
            h = p->idle[i].easy;
            free_key(p->idle[i].key);
            p->idle[i] = p->idle[--p->count];
            break;
        }
    free_key(key);
    return h != NULL ? h : new_easy(p, o);
}

/* Back to the pool (evicting the oldest idle handle when full). */
static void release(pool *p, const avl_options *o, CURL *h) {
    char *key;
    /* Drop pointers to per-request memory that is about to be freed. */
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
    key = p->closed ? NULL : options_key(o);
    if (key == NULL) {
        curl_easy_cleanup(h);
        return;
    }
    if (p->count == POOL_MAX) {
        curl_easy_cleanup(p->idle[0].easy);
        free_key(p->idle[0].key);
        memmove(&p->idle[0], &p->idle[1], (POOL_MAX - 1) * sizeof p->idle[0]);
        p->count--;
    }
    p->idle[p->count].key = key;
    p->idle[p->count].easy = h;
    p->count++;
}

/* -------------------------------------------------------------- transfers */

/* One transfer's C-side state: callbacks' context and what curl points to. */
typedef struct {
    CURL *easy;
    avl_transfer *item;      /* request_many: the item this slot runs */
    struct curl_slist *headers;
    transfer_ctx ctx;
    char errbuf[CURL_ERROR_SIZE];
} transfer;

static long ms(double seconds) {
    double v = seconds * 1000.0;
    return v >= (double)LONG_MAX ? LONG_MAX : v < 1 ? 1 : (long)v;
}

/* Sets the per-request options. 0, or -1 on OOM. */
static int setup(transfer *t, const avl_options *o, const avl_http_request *req,
                 avl_http_response *r) {
    CURL *h = t->easy;
    const char *m = req->method != NULL ? req->method : "GET";
    int has_body = req->body != NULL || !(strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
                                          strcmp(m, "DELETE") == 0);
    size_t i;
    t->headers = NULL;
    t->errbuf[0] = '\0';
    t->ctx.r = r;
    t->ctx.max_body = o->max_body;
    t->ctx.is_head = strcmp(m, "HEAD") == 0;
    t->ctx.too_big = t->ctx.headers_too_big = t->ctx.nomem = 0;
    for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        struct curl_slist *next = curl_slist_append(t->headers, req->headers[i]);
        if (next == NULL)
            return -1;
        t->headers = next;
    }
    if (has_body) {
        /* No "Expect: 100-continue" round trip for our small bodies. */
        struct curl_slist *next = curl_slist_append(t->headers, "Expect:");
        if (next == NULL)
            return -1;
        t->headers = next;
    }
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
    if (has_body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (t->ctx.is_head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
                     (strcmp(m, "GET") == 0 && !has_body) || (strcmp(m, "POST") == 0 && has_body) ||
                             t->ctx.is_head
                         ? NULL
                         : m);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms(o->timeout));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms(o->connect_timeout));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t->ctx);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t->ctx);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t->errbuf);
    return 0;
}

static void oom_error(avl_error *e) {
    avl_error_init(e, "transport");
    avl_error_setf(e, "transport", "could not set up the transfer (out of memory, or Lua is closing)");
}

/* ---------------------------------------------------- Lua transport option */

static void push_request_table(lua_State *L, const avl_options *o, const avl_http_request *req) {
    size_t i;
    lua_createtable(L, 0, 5);
    lua_pushstring(L, req->method != NULL ? req->method : "GET");
    lua_setfield(L, -2, "method");
    lua_pushstring(L, req->url);
    lua_setfield(L, -2, "url");
    lua_newtable(L);
    for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        const char *line = req->headers[i], *colon = strchr(line, ':'), *v;
        if (colon == NULL)
            continue;
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
            ;
        if (*v == '\0')
            continue; /* "Name:" lines only tell libcurl to drop a header */
        lua_pushlstring(L, line, (size_t)(colon - line));
        lua_pushstring(L, v);
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");
    if (req->body != NULL) {
        lua_pushlstring(L, req->body, req->body_len);
        lua_setfield(L, -2, "body");
    }
    lua_pushnumber(L, o->timeout);
    lua_setfield(L, -2, "timeout");
}

/* An err returned by the function: a table (its kind kept when valid) or a string. */
static void take_lua_error(lua_State *L, int idx, const char *prefix, avl_error *e) {
    idx = lua_absindex(L, idx);
    avl_error_init(e, "transport");
    if (lua_type(L, idx) == LUA_TTABLE) {
        const char *kind;
        lua_getfield(L, idx, "kind");
        kind = lua_type(L, -1) == LUA_TSTRING ? avl_error_kind(lua_tostring(L, -1)) : NULL;
        lua_pop(L, 1);
        lua_getfield(L, idx, "message");
        avl_error_setf(e, kind, "%s%s", prefix,
                       lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "failed");
        lua_pop(L, 1);
        lua_getfield(L, idx, "status");
        if (lua_type(L, -1) == LUA_TNUMBER)
            e->status = (int)lua_tonumber(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, idx, "code");
        if (lua_type(L, -1) == LUA_TSTRING)
            copy_value(e->code, sizeof e->code, lua_tostring(L, -1), strlen(lua_tostring(L, -1)));
        lua_pop(L, 1);
        lua_getfield(L, idx, "retryable");
        e->retryable = lua_toboolean(L, -1);
        lua_pop(L, 1);
    } else if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
        avl_error_setf(e, NULL, "%s%s", prefix, lua_tostring(L, idx));
    } else {
        avl_error_setf(e, NULL, "%s%s", prefix, luaL_typename(L, idx));
    }
}

static int lua_perform(lua_State *L, const avl_options *o, const avl_http_request *req,
                       avl_http_response *r, avl_error *e) {
    int top = lua_gettop(L), rc = -1;
    transfer_ctx c;
    memset(&c, 0, sizeof c);
    c.r = r;
    c.max_body = o->max_body;
    c.is_head = req->method != NULL && strcmp(req->method, "HEAD") == 0;
    avl_error_init(e, "transport");
    lua_rawgeti(L, LUA_REGISTRYINDEX, o->transport_ref);
    push_request_table(L, o, req);
    if (lua_pcall(L, 1, 2, 0) != 0) {
        take_lua_error(L, -1, "transport function raised: ", e);
    } else if (lua_type(L, -2) != LUA_TTABLE) {
        if (lua_isnil(L, -1))
            avl_error_setf(e, "transport", "transport function returned no response");
        else
            take_lua_error(L, -1, "", e);
    } else {
        int resp = lua_absindex(L, -2);
        lua_getfield(L, resp, "status");
        r->status = lua_type(L, -1) == LUA_TNUMBER ? (int)lua_tonumber(L, -1) : 0;
        lua_pop(L, 1);
        lua_getfield(L, resp, "headers");
        if (lua_type(L, -1) == LUA_TTABLE) {
            int stop = 0;
            lua_pushnil(L);
            while (!stop && lua_next(L, -2) != 0) {
                if (lua_type(L, -2) == LUA_TSTRING &&
                    (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)) {
                    size_t nl, vl;
                    const char *name = lua_tolstring(L, -2, &nl), *value;
                    lua_pushvalue(L, -1); /* converting a copy keeps the table intact */
                    value = lua_tolstring(L, -1, &vl);
                    if (strpbrk(name, "\r\n") == NULL && take_header(&c, name, nl, value, vl) != 0)
                        stop = 1;
                    lua_pop(L, 1);
                }
                lua_pop(L, 1);
            }
            if (stop)
                lua_pop(L, 1); /* the key lua_next left */
        }
        lua_pop(L, 1);
        lua_getfield(L, resp, "body");
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t n;
            const char *b = lua_tolstring(L, -1, &n);
            on_body((char *)b, 1, n, &c);
        }
        lua_pop(L, 1);
        if (r->status < 100 || r->status > 999)
            avl_error_setf(e, "transport", "transport function returned no valid status");
        else
            rc = finish(CURLE_OK, NULL, &c, req, r, e);
    }
    if (rc != 0)
        avl_error_redact(e, req->secrets);
    lua_settop(L, top);
    return rc;
}

/* ------------------------------------------------------------- perform(s) */

int avl_transport_perform(lua_State *L, const avl_options *o, const avl_http_request *req,
                          avl_http_response *r, avl_error *e) {
    pool *p;
    transfer t;
    CURLcode rc;
    int out;
    if (o->transport_ref != LUA_NOREF && o->transport_ref != LUA_REFNIL)
        return lua_perform(L, o, req, r, e);
    p = get_pool(L);
    t.easy = p != NULL ? acquire(p, o) : NULL;
    if (t.easy == NULL) {
        oom_error(e);
        return -1;
    }
    if (setup(&t, o, req, r) != 0) {
        curl_slist_free_all(t.headers);
        release(p, o, t.easy);
        oom_error(e);
        return -1;
    }
    rc = curl_easy_perform(t.easy);
    out = finish(rc, t.errbuf, &t.ctx, req, r, e);
    release(p, o, t.easy);
    curl_slist_free_all(t.headers);
    return out;
}

/* Runs n transfers on a multi handle, at most `concurrency` at once; every
 * item ends with failed = 0 and resp filled, or failed = 1 and err filled. */
void avl_transport_perform_many(lua_State *L, const avl_options *o, avl_transfer *items, size_t n,
                                int concurrency) {
    pool *p;
    CURLM *multi;
    transfer *slots;
    size_t next = 0, done = 0, i;
    int running = 0;
    if (o->transport_ref != LUA_NOREF && o->transport_ref != LUA_REFNIL) {
        /* A Lua transport runs one call at a time. */
        for (i = 0; i < n; i++)
            items[i].failed = lua_perform(L, o, items[i].req, &items[i].resp, &items[i].err) != 0;
        return;
    }
    if (concurrency < 1)
        concurrency = 1;
    if ((size_t)concurrency > n)
        concurrency = (int)n;
    p = get_pool(L);
    multi = curl_multi_init();
    slots = calloc((size_t)concurrency > 0 ? (size_t)concurrency : 1, sizeof *slots);
    if (p == NULL || multi == NULL || slots == NULL) {
        for (i = 0; i < n; i++) {
            oom_error(&items[i].err);
            items[i].failed = 1;
        }
        if (multi != NULL)
            curl_multi_cleanup(multi);
        free(slots);
        return;
    }
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)concurrency);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)concurrency);

    while (done < n) {
        CURLMsg *msg;
        int left, still;
        for (i = 0; i < (size_t)concurrency && next < n; i++) {
            transfer *t = &slots[i];
            avl_transfer *it = &items[next];
            if (t->easy != NULL)
                continue;
            t->easy = acquire(p, o);
            if (t->easy == NULL || setup(t, o, it->req, &it->resp) != 0 ||
                curl_multi_add_handle(multi, t->easy) != CURLM_OK) {
                if (t->easy != NULL) {
                    curl_slist_free_all(t->headers);
                    release(p, o, t->easy);
                    t->easy = NULL;
                }
                oom_error(&it->err);
                it->failed = 1;
                done++;
            } else {
                t->item = it;
                running++;
            }
            next++;
        }
        if (running == 0)
            continue;
        if (curl_multi_perform(multi, &still) != CURLM_OK) {
            /* A broken multi: fail what is in flight and what is left. */
            for (i = 0; i < (size_t)concurrency; i++)
                if (slots[i].easy != NULL) {
                    transfer *t = &slots[i];
                    curl_multi_remove_handle(multi, t->easy);
                    release(p, o, t->easy);
                    curl_slist_free_all(t->headers);
                    t->easy = NULL;
                    avl_error_setf(&t->item->err, "transport", "curl multi interface failed");
                    t->item->failed = 1;
                }
            for (; next < n; next++) {
                avl_error_setf(&items[next].err, "transport", "curl multi interface failed");
                items[next].failed = 1;
            }
            break;
        }
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            transfer *t = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            for (i = 0; i < (size_t)concurrency; i++)
                if (slots[i].easy == msg->easy_handle)
                    t = &slots[i];
            if (t == NULL)
                continue;
            t->item->failed =
                finish(msg->data.result, t->errbuf, &t->ctx, t->item->req, &t->item->resp, &t->item->err) != 0;
            curl_multi_remove_handle(multi, t->easy);
            release(p, o, t->easy);
            curl_slist_free_all(t->headers);
            t->easy = NULL;
            running--;
            done++;
        }
        /* Wait for activity unless a freed slot can start the next request. */
        if (running > 0 && !(next < n && running < concurrency))
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    curl_multi_cleanup(multi);
    free(slots);
}

/* ---------------------------------------------------------------- headers */

void avl_push_headers(lua_State *L, const avl_http_response *r) {
    const char *p = r->headers.data, *end = p != NULL ? p + r->headers.len : NULL;
    lua_newtable(L);
    while (p != NULL && p < end) {
        const char *eol = strstr(p, "\r\n"), *colon;
        if (eol == NULL)
            eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL) {
            const char *v;
            size_t i;
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (i = 0; p + i < colon; i++)
                luaL_addchar(&b, (char)tolower((unsigned char)p[i]));
            luaL_pushresult(&b);
            for (v = colon + 1; v < eol && *v == ' '; v++)
                ;
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(eol - v));
            } else {
                /* Repeated header: join as RFC 9110 section 5.3 allows. */
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(eol - v));
                lua_concat(L, 3);
            }
            lua_rawset(L, -3);
        }
        p = eol + 2;
    }
}

/* ------------------------------------------------------------------- open */

static int transport_stats(lua_State *L) {
    pool *p = get_pool(L);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, p != NULL ? (lua_Integer)p->count : 0);
    lua_setfield(L, -2, "idle_handles");
    return 1;
}

void avl_transport_open(lua_State *L) {
    static int curl_ready = 0;
    pool *p;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            luaL_error(L, "avalara.core: curl_global_init failed");
        curl_ready = 1;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, POOL_KEY);
    p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (p == NULL) {
        curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
        const char *lua_name;
        p = lua_newuserdata(L, sizeof *p);
        memset(p, 0, sizeof *p);
        lua_newtable(L);
        lua_pushcfunction(L, pool_gc);
        lua_setfield(L, -2, "__gc");
        lua_setmetatable(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, POOL_KEY);
        p->share = curl_share_init();
        if (p->share != NULL) {
            curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
            curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
            curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        }
        /* "avalara-hscode/0.1.0 libcurl/7.88.1 Lua 5.4" (or "LuaJIT 2.1...") */
        lua_getglobal(L, "jit");
        if (lua_type(L, -1) == LUA_TTABLE)
            lua_getfield(L, -1, "version");
        else
            lua_getglobal(L, "_VERSION");
        lua_name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "Lua";
        snprintf(p->user_agent, sizeof p->user_agent, "avalara-hscode/%s libcurl/%s %s",
                 AVALARA_VERSION, v->version, lua_name);
        lua_pop(L, 2);
    }
    lua_pushcfunction(L, transport_stats);
    lua_setfield(L, -2, "transport_stats");
    lua_pushstring(L, p->user_agent);
    lua_setfield(L, -2, "user_agent");
}
