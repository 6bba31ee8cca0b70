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

/* What a handle keeps from its last transfer (CURLOPT_PRIVATE), so the
 * next one sets only what differs: the options key it was made for, the
 * header list (reused while the lines are the same: no copies made and
 * wiped on every call), the URL and the timeouts last set. */
typedef struct {
    char *key;                  /* the options that shaped it (options_key) */
    char *ua_line;              /* "User-Agent: <o->user_agent>", or NULL: the pool's */
    struct curl_slist *headers; /* the lines last sent (the Authorization among them): wiped when freed */
    char *url;                  /* the URL last set */
    long timeout_ms, connect_ms;
    const char *noproxy;        /* "*" or NULL, as last set */
} handle_info;

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

static handle_info *info_of(CURL *h) {
    char *p = NULL;
    curl_easy_getinfo(h, CURLINFO_PRIVATE, &p);
    return (handle_info *)p;
}

/* curl_slist_append copies each header line: the copies hold the
 * Authorization value, so they are wiped before libcurl frees them. */
static void free_headers(struct curl_slist *list) {
    struct curl_slist *n;
    for (n = list; n != NULL; n = n->next)
        avl_wipe(n->data, strlen(n->data));
    curl_slist_free_all(list);
}

/* Idle handles keep their last header list (set_headers) until a transfer
 * with other lines: a credential that ends (token:close(), a refresh in
 * place) is wiped from them now, not at some later transfer. Lines are
 * compared as "Authorization: " + the value, as requests build them. */
void avl_pool_forget(avl_pool *p, const char *authorization) {
    static const char name[] = "Authorization: ";
    size_t i;
    if (p == NULL || authorization == NULL)
        return;
    for (i = 0; i < p->count; i++) {
        CURL *h = p->idle[i].easy;
        handle_info *info = info_of(h);
        struct curl_slist *n;
        if (info == NULL)
            continue;
        for (n = info->headers; n != NULL; n = n->next)
            if (strncmp(n->data, name, sizeof name - 1) == 0 && strcmp(n->data + sizeof name - 1, authorization) == 0)
                break;
        if (n == NULL)
            continue;
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        free_headers(info->headers);
        info->headers = NULL;
    }
}

size_t avl_pool_kept_credentials(const avl_pool *p) {
    size_t i, n = 0;
    for (i = 0; p != NULL && i < p->count; i++) {
        const handle_info *info = info_of(p->idle[i].easy);
        const struct curl_slist *l;
        for (l = info != NULL ? info->headers : NULL; l != NULL; l = l->next)
            if (strncmp(l->data, "Authorization: ", 15) == 0) {
                n++;
                break;
            }
    }
    return n;
}

/* A handle and what it keeps (its header lines wiped). */
static void destroy(CURL *h) {
    handle_info *info = info_of(h);
    curl_easy_cleanup(h); /* first: it no longer points at the list */
    if (info == NULL)
        return;
    free_key(info->key);
    free(info->ua_line);
    free_headers(info->headers);
    free(info->url);
    free(info);
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
    for (i = 0; i < p->count; i++)
        destroy(p->idle[i].easy);
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

/* Whether key is options_key(o), without building it. */
static int key_is(const char *key, const avl_options *o) {
    char verify[2] = {o->verify ? '1' : '0', '\0'};
    const char *parts[5];
    size_t i;
    parts[0] = o->cafile;
    parts[1] = o->capath;
    parts[2] = o->proxy;
    parts[3] = verify;
    parts[4] = o->user_agent;
    for (i = 0; i < 5; i++) {
        const char *s = parts[i] != NULL ? parts[i] : "";
        size_t n = strlen(s);
        if (strncmp(key, s, n) != 0 || key[n] != '\x1f')
            return 0;
        key += n + 1;
    }
    return *key == '\0';
}

static CURL *new_easy(avl_pool *p, const avl_options *o) {
    CURL *h;
    handle_info *info = calloc(1, sizeof *info);
    if (info == NULL)
        return NULL;
    info->key = options_key(o);
    info->timeout_ms = info->connect_ms = -1;
    if (o->user_agent != NULL) {
        size_t n = strlen(o->user_agent);
        info->ua_line = malloc(n + 13);
        if (info->ua_line != NULL) {
            memcpy(info->ua_line, "User-Agent: ", 12);
            memcpy(info->ua_line + 12, o->user_agent, n + 1);
        }
    }
    if (info->key == NULL || (o->user_agent != NULL && info->ua_line == NULL) || (h = curl_easy_init()) == NULL) {
        free_key(info->key);
        free(info->ua_line);
        free(info);
        return NULL;
    }
    curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)info);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
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
    size_t i;
    if (p == NULL || p->closed)
        return NULL;
    for (i = p->count; i-- > 0;)
        if (key_is(p->idle[i].key, o)) {
            CURL *h = p->idle[i].easy;
            p->idle[i] = p->idle[--p->count];
            return h;
        }
    return new_easy(p, o);
}

/* Back to the pool (evicting the oldest idle handle when full). */
/* The handle keeps its header list (its own, until a transfer with other
 * lines or its end) and its key: it goes back under the options it was
 * acquired with. */
static void release(avl_pool *p, CURL *h) {
    /* Drop pointers to per-request memory that is about to be freed. */
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
    if (p->closed) {
        destroy(h);
        return;
    }
    if (p->count == POOL_MAX) {
        destroy(p->idle[0].easy);
        memmove(&p->idle[0], &p->idle[1], (POOL_MAX - 1) * sizeof p->idle[0]);
        p->count--;
    }
    p->idle[p->count].key = info_of(h)->key;
    p->idle[p->count].easy = h;
    p->count++;
}

/* -------------------------------------------------------------- transfers */

static long ms(double seconds) {
    double v = seconds * 1000.0;
    return v >= (double)LONG_MAX ? LONG_MAX : v < 1 ? 1 : (long)v;
}

/* Plain http:// without allow_http reaches only loopback hosts (checked
 * when the request was prepared): then never through a proxy, which the
 * environment (http_proxy) may name. */
static int direct_only(const avl_options *o, const avl_request *req) {
    return !o->allow_http && strncasecmp(req->url, "http://", 7) == 0;
}

/* The header lines of a request, in order: its own, then the User-Agent
 * (unless it names one; a header line is cheaper per transfer than
 * CURLOPT_USERAGENT, which libcurl formats again every time), then
 * Accept-Encoding (unless it names one; with CURLOPT_ACCEPT_ENCODING set,
 * libcurl then decodes gzip without formatting its own line every time),
 * then "Expect:" for a body above 1 KiB (no 100-continue round trip). */
typedef struct {
    const avl_request *req;
    size_t i;
    const char *tail[3];
    size_t t;
} lines;

static void lines_init(lines *it, const avl_pool *p, const handle_info *info, const avl_request *req) {
    size_t i;
    int ua = 1, ae = 1;
    for (i = 0; i < req->nheaders; i++) {
        if (strncasecmp(req->headers[i], "User-Agent:", 11) == 0)
            ua = 0;
        else if (strncasecmp(req->headers[i], "Accept-Encoding:", 16) == 0)
            ae = 0;
    }
    it->req = req;
    it->i = it->t = 0;
    it->tail[0] = ua ? (info->ua_line != NULL ? info->ua_line : p->user_agent_line) : NULL;
    it->tail[1] = ae ? "Accept-Encoding: gzip" : NULL;
    it->tail[2] = req->body.data != NULL && req->body.len > 1024 ? "Expect:" : NULL;
}

static const char *lines_next(lines *it) {
    if (it->i < it->req->nheaders)
        return it->req->headers[it->i++];
    while (it->t < 3) {
        const char *s = it->tail[it->t++];
        if (s != NULL)
            return s;
    }
    return NULL;
}

/* The handle's header list for req: the last transfer's when the lines are
 * the same, else built anew (the old one wiped). 0, or -1 on OOM. */
static int set_headers(CURL *h, handle_info *info, const avl_pool *p, const avl_request *req) {
    lines it;
    struct curl_slist *n, *list = NULL;
    const char *line;
    lines_init(&it, p, info, req);
    for (n = info->headers; n != NULL && (line = lines_next(&it)) != NULL; n = n->next)
        if (strcmp(n->data, line) != 0)
            break;
    if (info->headers != NULL && n == NULL && lines_next(&it) == NULL)
        return 0;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    free_headers(info->headers);
    info->headers = NULL;
    lines_init(&it, p, info, req);
    while ((line = lines_next(&it)) != NULL) {
        struct curl_slist *next = curl_slist_append(list, line);
        if (next == NULL) {
            free_headers(list);
            return -1;
        }
        list = next;
    }
    info->headers = list;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    return 0;
}

static int setup(avl_easy *t, const avl_pool *p, const avl_options *o, const avl_request *req, avl_response *r) {
    CURL *h = t->easy;
    handle_info *info = info_of(h);
    const char *m = req->method, *noproxy = direct_only(o, req) ? "*" : NULL;
    int has_body = req->body.data != NULL;
    long timeout = ms(o->timeout), connect = ms(o->connect_timeout);
    t->errbuf[0] = '\0';
    avl_receive_init(&t->ctx, r, o, req);
    if (set_headers(h, info, p, req) != 0)
        return -1;
    /* Only what differs from the handle's last transfer. */
    if (info->url == NULL || strcmp(info->url, req->url) != 0) {
        char *url = avl_strndup(req->url, strlen(req->url));
        if (url == NULL)
            return -1;
        free(info->url);
        info->url = url;
        curl_easy_setopt(h, CURLOPT_URL, url);
    }
    if (noproxy != info->noproxy) {
        curl_easy_setopt(h, CURLOPT_NOPROXY, noproxy);
        info->noproxy = noproxy;
    }
    if (timeout != info->timeout_ms) {
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
        info->timeout_ms = timeout;
    }
    if (connect != info->connect_ms) {
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect);
        info->connect_ms = connect;
    }
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
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t->ctx);
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
        release(p, t->easy);
        t->easy = NULL;
    }
    avl_error_init(e, "transport");
    avl_error_nomem(e);
    return -1;
}

void avl_easy_stop(avl_pool *p, const avl_options *o, avl_easy *t) {
    (void)o;
    release(p, t->easy);
    t->easy = NULL;
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
