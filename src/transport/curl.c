/*
 * One HTTP exchange over libcurl, and the pool of easy handles it runs on.
 *
 * Per module instance, a pool (embedded in the Lua layer's state userdata,
 * lua/state.c) owns a CURLSH share (connections, TLS sessions and DNS
 * shared by every handle, single and multi transfers alike) and idle easy
 * handles keyed by the options that shape a connection (CA, proxy, verify,
 * user agent). Per-request settings (URL, method, headers, timeouts,
 * callbacks) are set on every use. The engine (engine.c) runs the same
 * transfers on a multi handle (easy.h).
 *
 * Nothing here raises: callbacks record what went wrong in their context
 * (receive.c) and return a value that stops the transfer.
 *
 * Why this size: the easy-handle pool, the per-request setup and the
 * mapping of libcurl's error codes are one exchange's life on a handle;
 * the engine (engine.c) and response reading (receive.c) are already apart.
 */
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <time.h>

#include <curl/curl.h>

#include "transport/easy.h"
#include "version.h"

#define POOL_MAX 32                     /* idle easy handles kept per state */

typedef struct {
    char *key;
    CURL *easy;
} pool_entry;

struct avl_pool {
    CURLSH *share;
    int closed;             /* closed (its owner is collected): hands out and keeps nothing */
    pool_entry idle[POOL_MAX];
    size_t count;
    char user_agent[192];
    char user_agent_line[208]; /* "User-Agent: ..." */
};

/* ---------------------------------------------------------------- receive */

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
    avl_receive *c = ud;
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
    return avl_receive_header(c, p, nl, p + vs, ve - vs) == 0 ? n : 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
    return avl_receive_body(ud, p, size * nmemb);
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

int avl_easy_finish(CURLcode rc, const char *errbuf, const avl_receive *c, const avl_request *req,
                    avl_response *r, avl_error *e) {
    if (rc == CURLE_OK || avl_receive_stopped(c))
        return avl_receive_end(c, req, r, e);
    avl_error_init(e, "transport");
    avl_receive_failed(req, r, e);
    if (rc == CURLE_PARTIAL_FILE && r->status > 0) {
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

const char *avl_pool_user_agent(const avl_pool *p) {
    return p->user_agent;
}

/* Keys may hold proxy credentials. */
static void free_key(char *key) {
    avl_free_secret(&key);
}

/* libcurl's global set-up, once per process whatever the number of
 * Lua states and threads that load the module (curl_global_init is not
 * thread-safe before libcurl 7.84); the module is linked -z nodelete, so
 * lua_close never unloads libcurl with it (docs/embedding.md, "Threads").
 * A mutex rather than pthread_once: the same cost here (a few calls per
 * Lua state opened), and valgrind's thread checkers understand it.
 * curl_version_info rewrites libcurl's static buffers at each call (the TLS
 * library's version string, the feature list): asked once, here, its
 * answer is then only read (avl_curl_info). */
static pthread_mutex_t curl_lock = PTHREAD_MUTEX_INITIALIZER;
static int curl_done, curl_status = -1;
static const curl_version_info_data *curl_info;

static void curl_setup(void) {
    pthread_mutex_lock(&curl_lock);
    if (!curl_done) {
        curl_status = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
        curl_info = curl_version_info(CURLVERSION_NOW);
        curl_done = 1;
    }
    pthread_mutex_unlock(&curl_lock);
}

int avl_transport_global_init(void) {
    int status;
    curl_setup();
    pthread_mutex_lock(&curl_lock);
    status = curl_status;
    pthread_mutex_unlock(&curl_lock);
    return status;
}

const curl_version_info_data *avl_curl_info(void) {
    const curl_version_info_data *v;
    curl_setup();
    pthread_mutex_lock(&curl_lock);
    v = curl_info;
    pthread_mutex_unlock(&curl_lock);
    return v;
}

size_t avl_pool_size(void) {
    return sizeof(avl_pool);
}

size_t avl_pool_idle(const avl_pool *p) {
    return p->count;
}

void avl_pool_close(avl_pool *p) {
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
}

/* "avalara-hscode/0.1.0 libcurl/7.88.1 Lua 5.4" (or "LuaJIT 2.1...") */
void avl_pool_init(avl_pool *p, const char *host) {
    const curl_version_info_data *v = avl_curl_info();
    memset(p, 0, sizeof *p);
    p->share = curl_share_init();
    if (p->share != NULL) {
        curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
        curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    }
    snprintf(p->user_agent, sizeof p->user_agent, "avalara-hscode/%s libcurl/%s %s", AVALARA_VERSION,
             v != NULL ? v->version : "?", host);
    snprintf(p->user_agent_line, sizeof p->user_agent_line, "User-Agent: %s", p->user_agent);
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
static int add_header(avl_easy *t, const char *line) {
    struct curl_slist *next = curl_slist_append(t->headers, line);
    if (next == NULL)
        return -1;
    t->headers = next;
    return 0;
}

/* The User-Agent as one more header line (cheaper per transfer than
 * CURLOPT_USERAGENT, which libcurl formats again every time), unless the
 * request's headers name one. */
static int add_user_agent(avl_easy *t, const avl_pool *p, const avl_options *o, const avl_request *req) {
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

static int setup(avl_easy *t, const avl_pool *p, const avl_options *o, const avl_request *req, avl_response *r) {
    CURL *h = t->easy;
    const char *m = req->method;
    int has_body = req->body.data != NULL;
    size_t i;
    t->headers = NULL;
    t->errbuf[0] = '\0';
    avl_receive_init(&t->ctx, r, o, req);
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

int avl_easy_start(avl_pool *p, const avl_options *o, avl_easy *t, const avl_request *req,
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

void avl_easy_stop(avl_pool *p, const avl_options *o, avl_easy *t) {
    release(p, o, t->easy);
    free_headers(t->headers);
    t->easy = NULL;
    t->headers = NULL;
}

/* ---------------------------------------------------------------- perform */

int avl_curl_perform(avl_pool *p, const avl_options *o, const avl_request *req, avl_response *r, avl_error *e) {
    avl_easy t;
    CURLcode rc;
    int out;
    if (avl_easy_start(p, o, &t, req, r, e) != 0)
        return -1;
    rc = curl_easy_perform(t.easy);
    out = avl_easy_finish(rc, t.errbuf, &t.ctx, req, r, e);
    avl_easy_stop(p, o, &t);
    return out;
}
