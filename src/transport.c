/*
 * The transport: one HTTP exchange (or a batch on a multi handle) over
 * libcurl, or over a Lua function given as the `transport` option.
 *
 * Per module instance, the state userdata (an upvalue of every module
 * function) owns a CURLSH share (connections, TLS sessions and DNS shared by
 * every handle, single and multi transfers alike) and idle easy handles
 * keyed by the options that shape a connection (CA, proxy, verify, user
 * agent). Per-request settings (URL, method, headers, timeouts, callbacks)
 * are set on every use.
 *
 * No Lua error is ever raised while libcurl runs: callbacks record what
 * went wrong in their context and return a value that stops the transfer.
 * A Lua transport function is called, and its answer read, inside a
 * protected call: whatever it raises becomes an error value.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <time.h>

#include <curl/curl.h>

#include "transport.h"
#include "upvalues.h"
#include "version.h"

#define POOL_MT "avalara.core.state"
#define POOL_MAX 32                     /* idle easy handles kept per state */

typedef struct {
    char *key;
    CURL *easy;
} pool_entry;

struct avl_pool {
    CURLSH *share;
    int closed;             /* collected: lua_close is under way */
    pool_entry idle[POOL_MAX];
    size_t count;
    char user_agent[192];
    char user_agent_line[208]; /* "User-Agent: ..." */
};

double avl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- receive */

/* What a transfer learns while it runs, written by callbacks that never raise. */
typedef struct {
    avl_response *r;
    size_t max_body;
    int is_head;
    int too_big;        /* body or Content-Length over max_body */
    int headers_too_big;
    int nomem;
} transfer_ctx;

static void ctx_init(transfer_ctx *c, avl_response *r, const avl_options *o, const avl_request *req) {
    memset(c, 0, sizeof *c);
    c->r = r;
    c->max_body = o->max_body;
    c->is_head = strcmp(req->method, "HEAD") == 0;
}

static double http_date(const char *s) {
    time_t when = curl_getdate(s, NULL);
    return when == (time_t)-1 ? -1 : (double)when;
}

/* One "Name: value" pair of the final response. 0, or -1 to stop. */
static int take_header(transfer_ctx *c, const char *name, size_t nl, const char *value, size_t vl) {
    int rc = avl_response_header(c->r, name, nl, value, vl, avl_now(), http_date);
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

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
    transfer_ctx *c = ud;
    size_t n = size * nmemb, nl, vs, ve;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new status line (1xx, then the final one): start over. */
        const char *sp = memchr(p, ' ', n);
        avl_response_reset_headers(c->r);
        c->r->status = sp != NULL ? avl_clamp_int(strtod(sp + 1, NULL), 0, 999) : 0;
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

static size_t take_body(transfer_ctx *c, const char *p, size_t n) {
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

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
    return take_body(ud, p, size * nmemb);
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
                  const avl_request *req, avl_response *r, avl_error *e) {
    const char *id;
    size_t id_len;
    avl_error_init(e, "transport");
    if (rc == CURLE_OK && !c->too_big && !c->nomem && !c->headers_too_big)
        return 0;
    e->status = r->status;
    id = avl_response_request_id(r, &id_len);
    avl_error_text(e->request_id, sizeof e->request_id, id, id_len, &req->secrets);
    e->retry_after = r->retry_after;
    if (c->too_big) {
        /* The server answered, but with more than we accept: an HTTP-level
         * refusal, not a network failure, and not worth retrying. */
        avl_error_setf(e, "http", "response body exceeds max_body (%zu bytes)", c->max_body);
    } else if (c->headers_too_big) {
        avl_error_setf(e, "http", "response headers exceed %d bytes", AVL_HEADERS_MAX);
    } else if (c->nomem) {
        avl_error_nomem(e);
    } else if (rc == CURLE_PARTIAL_FILE && r->status > 0) {
        /* Cut short after the status line: a body problem the caller sees
         * like any unreadable body (2xx: parse, else http), worth a retry. */
        avl_error_textf(e, &req->secrets, r->status >= 200 && r->status <= 299 ? "parse" : "http",
                        "response truncated: %s", errbuf != NULL && errbuf[0] != '\0' ? errbuf
                                                                                 : curl_easy_strerror(rc));
        e->retryable = 1;
        avl_error_set_body(e, r->body.data, r->body.len, &req->secrets);
    } else {
        const char *kind = rc == CURLE_OPERATION_TIMEDOUT ? "timeout"
                           : is_tls_error(rc)              ? "tls"
                                                           : "transport";
        if (errbuf != NULL && errbuf[0] != '\0' && strstr(errbuf, curl_easy_strerror(rc)) == NULL)
            avl_error_textf(e, &req->secrets, kind, "%s: %s", curl_easy_strerror(rc), errbuf);
        else if (errbuf != NULL && errbuf[0] != '\0')
            avl_error_textf(e, &req->secrets, kind, "%s", errbuf);
        else
            avl_error_setf(e, kind, "%s", curl_easy_strerror(rc));
        e->retryable = is_transient(rc);
    }
    return -1;
}

/* ------------------------------------------------------------------- pool */

avl_pool *avl_pool_of(lua_State *L) {
    return lua_touserdata(L, lua_upvalueindex(AVL_UV_STATE));
}

const char *avl_pool_user_agent(const avl_pool *p) {
    return p->user_agent;
}

/* Keys may hold proxy credentials. */
static void free_key(char *key) {
    avl_free_secret(&key);
}

static int pool_gc(lua_State *L) {
    avl_pool *p = lua_touserdata(L, 1);
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

void avl_pool_push(lua_State *L) {
    static int curl_ready = 0;
    curl_version_info_data *v;
    const char *lua_name;
    avl_pool *p;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            luaL_error(L, "avalara.core: curl_global_init failed");
        curl_ready = 1;
    }
    v = curl_version_info(CURLVERSION_NOW);
    p = lua_newuserdata(L, sizeof *p);
    memset(p, 0, sizeof *p);
    if (luaL_newmetatable(L, POOL_MT)) {
        lua_pushcfunction(L, pool_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, POOL_MT);
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
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
    snprintf(p->user_agent, sizeof p->user_agent, "avalara-hscode/%s libcurl/%s %s", AVALARA_VERSION,
             v->version, lua_name);
    snprintf(p->user_agent_line, sizeof p->user_agent_line, "User-Agent: %s", p->user_agent);
    lua_pop(L, 2);
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

static CURL *new_easy(avl_pool *p, const avl_options *o) {
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
    /* gzip only: "" (every encoding this libcurl has) makes libcurl build
     * the list again on every transfer */
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, o->verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, o->verify ? 2L : 0L);
    if (o->cafile != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, o->cafile);
    if (o->capath != NULL)
        curl_easy_setopt(h, CURLOPT_CAPATH, o->capath);
    if (o->proxy != NULL)
        curl_easy_setopt(h, CURLOPT_PROXY, o->proxy);
    return h;
}

/* An idle handle for these options, or a new one; NULL on OOM or once
 * the pool is collected. */
static CURL *acquire(avl_pool *p, const avl_options *o) {
    char *key;
    CURL *h = NULL;
    size_t i;
    if (p == NULL || p->closed || (key = options_key(o)) == NULL)
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
static void release(avl_pool *p, const avl_options *o, CURL *h) {
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
    struct curl_slist *headers;
    transfer_ctx ctx;
    char errbuf[CURL_ERROR_SIZE];
    /* in an engine: what the slot runs */
    void *ud;
    const avl_options *o;
    const avl_request *req;
    avl_error *e;
} transfer;

static long ms(double seconds) {
    double v = seconds * 1000.0;
    return v >= (double)LONG_MAX ? LONG_MAX : v < 1 ? 1 : (long)v;
}

/* curl_slist_append copies each header line: the copies hold the
 * Authorization value, so they are wiped before libcurl frees them. */
static void free_headers(struct curl_slist *list) {
    struct curl_slist *n;
    for (n = list; n != NULL; n = n->next)
        avl_wipe(n->data, strlen(n->data));
    curl_slist_free_all(list);
}

/* Plain http:// without allow_http reaches only loopback hosts (checked
 * when the request was prepared): then never through a proxy, which the
 * environment (http_proxy) may name. */
static int direct_only(const avl_options *o, const avl_request *req) {
    return !o->allow_http && strncasecmp(req->url, "http://", 7) == 0;
}

/* Sets the per-request options. 0, or -1 on OOM. */
static int add_header(transfer *t, const char *line) {
    struct curl_slist *next = curl_slist_append(t->headers, line);
    if (next == NULL)
        return -1;
    t->headers = next;
    return 0;
}

/* The User-Agent as one more header line (cheaper per transfer than
 * CURLOPT_USERAGENT, which libcurl formats again every time), unless the
 * request's headers name one. */
static int add_user_agent(transfer *t, const avl_pool *p, const avl_options *o, const avl_request *req) {
    avl_buf line;
    size_t i;
    int rc;
    for (i = 0; i < req->nheaders; i++)
        if (strncasecmp(req->headers[i], "User-Agent:", 11) == 0)
            return 0;
    if (o->user_agent == NULL)
        return add_header(t, p->user_agent_line);
    avl_buf_init(&line);
    rc = avl_buf_appendz(&line, "User-Agent: ") != 0 || avl_buf_appendz(&line, o->user_agent) != 0 ||
         add_header(t, line.data) != 0;
    avl_buf_free(&line);
    return rc ? -1 : 0;
}

static int setup(transfer *t, const avl_pool *p, const avl_options *o, const avl_request *req, avl_response *r) {
    CURL *h = t->easy;
    const char *m = req->method;
    int has_body = req->body.data != NULL;
    size_t i;
    t->headers = NULL;
    t->errbuf[0] = '\0';
    ctx_init(&t->ctx, r, o, req);
    for (i = 0; i < req->nheaders; i++)
        if (add_header(t, req->headers[i]) != 0)
            return -1;
    if (add_user_agent(t, p, o, req) != 0)
        return -1;
    /* No "Expect: 100-continue" round trip for our small bodies (libcurl
     * adds it above 1 KiB). */
    if (has_body && req->body.len > 1024 && add_header(t, "Expect:") != 0)
        return -1;
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, direct_only(o, req) ? "*" : NULL);
    curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
    if (has_body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body.data);
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

/* Acquires a handle and sets it up; 0, or -1 with e filled (nothing held). */
static int start(avl_pool *p, const avl_options *o, transfer *t, const avl_request *req,
                 avl_response *r, avl_error *e) {
    t->easy = NULL;
    if (avl_request_check(req, e) != 0)
        return -1;
    t->easy = acquire(p, o);
    if (t->easy != NULL && setup(t, p, o, req, r) == 0)
        return 0;
    if (t->easy != NULL) {
        free_headers(t->headers);
        release(p, o, t->easy);
        t->easy = NULL;
    }
    avl_error_init(e, "transport");
    avl_error_nomem(e);
    return -1;
}

/* Ends a transfer started by start(). */
static void stop(avl_pool *p, const avl_options *o, transfer *t) {
    release(p, o, t->easy);
    free_headers(t->headers);
    t->easy = NULL;
    t->headers = NULL;
}

/* ---------------------------------------------------- Lua transport option */

void avl_push_request(lua_State *L, const avl_options *o, const avl_request *req) {
    size_t i;
    lua_createtable(L, 0, 5);
    lua_pushstring(L, req->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, req->url);
    lua_setfield(L, -2, "url");
    lua_createtable(L, 0, (int)req->nheaders);
    for (i = 0; i < req->nheaders; i++) {
        const char *line = req->headers[i], *colon = strchr(line, ':'), *v;
        if (colon == NULL)
            continue;
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
            ;
        lua_pushlstring(L, line, (size_t)(colon - line));
        lua_pushstring(L, v);
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");
    if (req->body.data != NULL) {
        lua_pushlstring(L, req->body.data, req->body.len);
        lua_setfield(L, -2, "body");
    }
    lua_pushnumber(L, o->timeout);
    lua_setfield(L, -2, "timeout");
}

/* What a protected step works on: it is called as fn(step, value) and
 * sees only its own stack frame, so the value it reads is passed along. */
typedef struct {
    const char *prefix;
    const avl_options *o;
    const avl_request *req;
    avl_response *r;
    avl_error *e;
    int rc;
} lua_step;

/* An err given or raised by the function (argument 2): a table (its kind
 * kept when valid) or a string. Protected: the table may have metamethods. */
static int read_error(lua_State *L) {
    lua_step *s = lua_touserdata(L, 1);
    avl_error *e = s->e;
    if (lua_type(L, 2) == LUA_TTABLE) {
        const char *kind;
        lua_getfield(L, 2, "kind");
        kind = lua_type(L, -1) == LUA_TSTRING ? avl_error_kind(lua_tostring(L, -1)) : NULL;
        lua_getfield(L, 2, "message");
        avl_error_textf(e, &s->req->secrets, kind, "%s%s", s->prefix,
                        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "failed");
        lua_getfield(L, 2, "status");
        if (lua_type(L, -1) == LUA_TNUMBER)
            e->status = avl_clamp_int(lua_tonumber(L, -1), 0, 999);
        lua_getfield(L, 2, "code");
        if (lua_type(L, -1) == LUA_TSTRING)
            avl_error_text(e->code, sizeof e->code, lua_tostring(L, -1), lua_rawlen(L, -1), &s->req->secrets);
        lua_getfield(L, 2, "retryable");
        e->retryable = lua_toboolean(L, -1);
    } else if (lua_type(L, 2) == LUA_TSTRING || lua_type(L, 2) == LUA_TNUMBER) {
        avl_error_textf(e, &s->req->secrets, NULL, "%s%s", s->prefix, lua_tostring(L, 2));
    } else {
        avl_error_setf(e, NULL, "%s%s", s->prefix, luaL_typename(L, 2));
    }
    return 0;
}

/* Reads the response table (argument 2) into s->r. Protected. */
static int read_response(lua_State *L) {
    lua_step *s = lua_touserdata(L, 1);
    transfer_ctx c;
    ctx_init(&c, s->r, s->o, s->req);
    lua_getfield(L, 2, "status");
    s->r->status = lua_type(L, -1) == LUA_TNUMBER ? avl_clamp_int(lua_tonumber(L, -1), 0, 1000) : 0;
    lua_getfield(L, 2, "headers");
    if (lua_type(L, -1) == LUA_TTABLE) {
        int headers = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, headers) != 0) {
            if (lua_type(L, -2) == LUA_TSTRING &&
                (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)) {
                size_t nl, vl;
                const char *name = lua_tolstring(L, -2, &nl), *value;
                lua_pushvalue(L, -1); /* converting a copy keeps the table intact */
                value = lua_tolstring(L, -1, &vl);
                if (strpbrk(name, "\r\n") == NULL && take_header(&c, name, nl, value, vl) != 0) {
                    lua_settop(L, headers);
                    break;
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    }
    lua_getfield(L, 2, "body");
    if (lua_type(L, -1) == LUA_TSTRING && !c.too_big && !c.nomem && !c.headers_too_big) {
        size_t n;
        const char *b = lua_tolstring(L, -1, &n);
        take_body(&c, b, n);
    }
    if (s->r->status < 100 || s->r->status > 999)
        avl_error_setf(s->e, "transport", "transport function returned no valid status");
    else
        s->rc = finish(CURLE_OK, NULL, &c, s->req, s->r, s->e);
    return 0;
}

/* fn(s, value at idx) in a protected call (idx 0: no value). On a raise
 * the raised value is read, protected too, into s->e after `what`. In Lua
 * 5.1 and LuaJIT, pushing fn allocates a closure: only running out of
 * memory there can still raise. */
static void protected_step(lua_State *L, lua_CFunction fn, lua_step *s, int idx, const char *what) {
    int top = lua_gettop(L), nargs = idx != 0 ? 2 : 1;
    if (!lua_checkstack(L, 4)) {
        avl_error_nomem(s->e);
        s->rc = -1;
        return;
    }
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, s);
    if (idx != 0)
        lua_pushvalue(L, idx);
    if (lua_pcall(L, nargs, 0, 0) != 0) {
        lua_step es = *s;
        es.prefix = what;
        avl_error_init(s->e, "transport");
        lua_pushcfunction(L, read_error);
        lua_insert(L, -2);
        lua_pushlightuserdata(L, &es);
        lua_insert(L, -2);
        if (lua_pcall(L, 2, 0, 0) != 0)
            avl_error_setf(s->e, "transport", "%san error value that cannot be read", what);
        s->rc = -1;
    }
    lua_settop(L, top);
}

static void step_init(lua_step *s, const avl_options *o, const avl_request *req, avl_response *r, avl_error *e) {
    memset(s, 0, sizeof *s);
    s->o = o;
    s->req = req;
    s->r = r;
    s->e = e;
    s->rc = -1;
    avl_error_init(e, "transport");
}

int avl_transport_take(lua_State *L, int idx, const avl_options *o, const avl_request *req,
                       avl_response *r, avl_error *e) {
    lua_step s;
    idx = lua_absindex(L, idx);
    step_init(&s, o, req, r, e);
    if (lua_type(L, idx) == LUA_TTABLE) {
        protected_step(L, read_response, &s, idx, "transport function's response could not be read: ");
    } else if (lua_isnil(L, idx) && lua_isnoneornil(L, idx + 1)) {
        avl_error_setf(e, "transport", "transport function returned no response");
    } else {
        s.prefix = "";
        protected_step(L, read_error, &s, lua_isnil(L, idx) ? idx + 1 : idx,
                       "transport function's error could not be read: ");
        s.rc = -1;
    }
    return s.rc;
}

/* Calls the transport function with the request table, then takes its
 * answer. Protected. */
static int call_transport(lua_State *L) {
    lua_step *s = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->o->transport_ref);
    avl_push_request(L, s->o, s->req);
    lua_call(L, 1, 2);
    s->rc = avl_transport_take(L, -2, s->o, s->req, s->r, s->e);
    return 0;
}

static int lua_perform(lua_State *L, const avl_options *o, const avl_request *req,
                       avl_response *r, avl_error *e) {
    lua_step s;
    step_init(&s, o, req, r, e);
    if (avl_request_check(req, e) != 0)
        return -1;
    protected_step(L, call_transport, &s, 0, "transport function raised: ");
    return s.rc;
}

/* ------------------------------------------------------------- perform(s) */

int avl_transport_perform(lua_State *L, avl_pool *p, const avl_options *o, const avl_request *req,
                          avl_response *r, avl_error *e) {
    transfer t;
    CURLcode rc;
    int out;
    if (avl_options_lua_transport(o))
        return lua_perform(L, o, req, r, e);
    if (start(p, o, &t, req, r, e) != 0)
        return -1;
    rc = curl_easy_perform(t.easy);
    out = finish(rc, t.errbuf, &t.ctx, req, r, e);
    stop(p, o, &t);
    return out;
}

/* ----------------------------------------------------------------- engine */

struct avl_engine {
    CURLM *multi;
    int concurrency;
    int running;
    transfer *slots;         /* easy == NULL: free */
};

avl_engine *avl_engine_new(int concurrency) {
    avl_engine *g = calloc(1, sizeof *g);
    if (concurrency < 1)
        concurrency = 1;
    if (g == NULL || (g->slots = calloc((size_t)concurrency, sizeof *g->slots)) == NULL ||
        (g->multi = curl_multi_init()) == NULL) {
        if (g != NULL)
            free(g->slots);
        free(g);
        return NULL;
    }
    g->concurrency = concurrency;
    curl_multi_setopt(g->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(g->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)concurrency);
    curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, (long)concurrency);
    return g;
}

int avl_engine_free_slots(const avl_engine *g) {
    return g->concurrency - g->running;
}

int avl_engine_running(const avl_engine *g) {
    return g->running;
}

/* Takes a slot's transfer off the multi handle and back to the pool. */
static void vacate(avl_engine *g, avl_pool *p, transfer *t) {
    curl_multi_remove_handle(g->multi, t->easy);
    stop(p, t->o, t);
    t->ud = NULL;
    g->running--;
}

int avl_engine_start(avl_engine *g, avl_pool *p, const avl_options *o, const avl_request *req,
                     avl_response *r, avl_error *e, void *ud) {
    transfer *t = NULL;
    int i;
    for (i = 0; i < g->concurrency && t == NULL; i++)
        if (g->slots[i].easy == NULL)
            t = &g->slots[i];
    if (t == NULL) {
        avl_error_init(e, "transport");
        avl_error_setf(e, "transport", "no free slot");
        return -1;
    }
    if (start(p, o, t, req, r, e) != 0)
        return -1;
    /* h2: wait for a connection that can multiplex rather than open another */
    curl_easy_setopt(t->easy, CURLOPT_PIPEWAIT, 1L);
    if (curl_multi_add_handle(g->multi, t->easy) != CURLM_OK) {
        stop(p, o, t);
        avl_error_init(e, "transport");
        avl_error_nomem(e);
        return -1;
    }
    t->ud = ud;
    t->o = o;
    t->req = req;
    t->e = e;
    g->running++;
    return 0;
}

/* Reports every finished transfer; returns how many. */
static int harvest(avl_engine *g, avl_pool *p, avl_done_fn done, void *ctx) {
    CURLMsg *msg;
    int left, n = 0, i;
    while ((msg = curl_multi_info_read(g->multi, &left)) != NULL) {
        transfer *t = NULL;
        void *ud;
        int failed;
        if (msg->msg != CURLMSG_DONE)
            continue;
        for (i = 0; i < g->concurrency && t == NULL; i++)
            if (g->slots[i].easy == msg->easy_handle)
                t = &g->slots[i];
        if (t == NULL)
            continue;
        failed = finish(msg->data.result, t->errbuf, &t->ctx, t->req, t->ctx.r, t->e) != 0;
        ud = t->ud;
        vacate(g, p, t);
        done(ctx, ud, failed);
        n++;
    }
    return n;
}

static void fail_all(avl_engine *g, avl_pool *p, avl_done_fn done, void *ctx, const char *why) {
    int i;
    for (i = 0; i < g->concurrency; i++)
        if (g->slots[i].easy != NULL) {
            transfer *t = &g->slots[i];
            void *ud = t->ud;
            avl_error_init(t->e, "transport");
            avl_error_setf(t->e, "transport", "%s", why);
            vacate(g, p, t);
            done(ctx, ud, 1);
        }
}

int avl_engine_run(avl_engine *g, avl_pool *p, double timeout, avl_done_fn done, void *ctx) {
    double deadline = avl_now() + (timeout > 0 ? timeout : 0);
    int still, n = 0;
    while (g->running > 0) {
        double left;
        if (curl_multi_perform(g->multi, &still) != CURLM_OK) {
            fail_all(g, p, done, ctx, "curl multi interface failed");
            return n + 1;
        }
        n += harvest(g, p, done, ctx);
        left = deadline - avl_now();
        if (n > 0 || g->running == 0 || left <= 0)
            break;
        curl_multi_poll(g->multi, NULL, 0, (int)(left * 1000 < 1000 ? left * 1000 + 1 : 1000), NULL);
    }
    return n;
}

int avl_engine_abort(avl_engine *g, avl_pool *p, const void *ud) {
    int i;
    for (i = 0; i < g->concurrency; i++)
        if (g->slots[i].easy != NULL && g->slots[i].ud == ud) {
            avl_error *e = g->slots[i].e;
            vacate(g, p, &g->slots[i]);
            avl_error_init(e, "transport");
            avl_error_setf(e, "transport", "aborted");
            return 0;
        }
    return -1;
}

/* From curl_multi_fdset, which works with curl_multi_perform (socket
 * callbacks belong to curl_multi_socket_action): descriptors at or above
 * FD_SETSIZE are not listed (the timer still brings the loop back). */
int avl_engine_sockets(const avl_engine *g, int *fds, int *what, int max) {
    fd_set r, w, x;
    int top = -1, fd, n = 0;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&x);
    if (curl_multi_fdset(g->multi, &r, &w, &x, &top) != CURLM_OK)
        return 0;
    for (fd = 0; fd <= top && n < max; fd++) {
        int bits = (FD_ISSET(fd, &r) ? 1 : 0) | (FD_ISSET(fd, &w) ? 2 : 0);
        if (bits != 0) {
            fds[n] = fd;
            what[n++] = bits;
        }
    }
    return n;
}

double avl_engine_timeout(avl_engine *g) {
    long wait_ms = -1;
    if (curl_multi_timeout(g->multi, &wait_ms) != CURLM_OK || wait_ms < 0)
        return -1;
    return (double)wait_ms / 1000.0;
}

void avl_engine_free(avl_engine *g, avl_pool *p) {
    int i;
    if (g == NULL)
        return;
    for (i = 0; i < g->concurrency; i++)
        if (g->slots[i].easy != NULL)
            vacate(g, p, &g->slots[i]);
    curl_multi_cleanup(g->multi);
    free(g->slots);
    free(g);
}

/* ------------------------------------------------------------ a batch */

static void fail_item(avl_transfer *it, const char *message) {
    avl_error_init(&it->err, "transport");
    avl_error_setf(&it->err, "transport", "%s", message);
    it->failed = 1;
}

static void item_done(void *ctx, void *ud, int failed) {
    (void)ctx;
    ((avl_transfer *)ud)->failed = failed;
}

/* Runs n transfers on an engine, at most `concurrency` at once; every item
 * ends with failed = 0 and resp filled, or failed = 1 and err filled. */
void avl_transport_perform_many(lua_State *L, avl_pool *p, const avl_options *o, avl_transfer *items,
                                size_t n, int concurrency) {
    avl_engine *g;
    size_t next = 0, i;
    if (avl_options_lua_transport(o)) {
        /* A Lua transport runs one call at a time. */
        for (i = 0; i < n; i++)
            items[i].failed = lua_perform(L, o, items[i].req, &items[i].resp, &items[i].err) != 0;
        return;
    }
    g = avl_engine_new((size_t)concurrency < n ? concurrency : (int)n);
    if (g == NULL) {
        for (i = 0; i < n; i++)
            fail_item(&items[i], "out of memory");
        return;
    }
    while (next < n || avl_engine_running(g) > 0) {
        while (next < n && avl_engine_free_slots(g) > 0) {
            avl_transfer *it = &items[next++];
            if (avl_engine_start(g, p, o, it->req, &it->resp, &it->err, it) != 0)
                it->failed = 1;
        }
        avl_engine_run(g, p, 1.0, item_done, NULL);
    }
    avl_engine_free(g, p);
}

int avl_transport_stats(lua_State *L) {
    avl_pool *p = avl_pool_of(L);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)p->count);
    lua_setfield(L, -2, "idle_handles");
    return 1;
}

/* ---------------------------------------------------------------- headers */

void avl_push_headers(lua_State *L, const avl_response *r) {
    const char *p = r->headers.data, *end = p != NULL ? p + r->headers.len : NULL;
    lua_createtable(L, 0, 8);
    while (p != NULL && p < end) {
        const char *eol = strstr(p, "\r\n"), *colon;
        if (eol == NULL)
            eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL) {
            char name[128];
            const char *v;
            size_t i, nl = (size_t)(colon - p);
            if (nl < sizeof name) { /* names are short: lower-cased on the C stack */
                for (i = 0; i < nl; i++)
                    name[i] = (char)tolower((unsigned char)p[i]);
                lua_pushlstring(L, name, nl);
            } else {
                luaL_Buffer b;
                luaL_buffinit(L, &b);
                for (i = 0; i < nl; i++)
                    luaL_addchar(&b, (char)tolower((unsigned char)p[i]));
                luaL_pushresult(&b);
            }
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
