/*
 * The transport layer (src/transport/, libcurl; no Lua): moves one
 * avl_request and brings back an avl_response over libcurl, or many on a
 * curl multi handle. Failures to exchange (kind transport, timeout, tls; a
 * body over max_body) come back as an avl_error.
 *
 * libcurl easy handles are cached per distinct option set (keep-alive and
 * TLS session reuse across calls) in a pool; the Lua layer keeps the pool
 * in the module's state userdata (lua/state.c). Nothing here raises or
 * calls back into a host language: libcurl's callbacks record and return.
 * A transport given as a Lua function is the Lua layer's (lua/transport.c);
 * it reads a response through the same receive functions (below), so both
 * apply max_body and the header limits alike.
 */
#ifndef AVALARA_TRANSPORT_H
#define AVALARA_TRANSPORT_H

#include <stddef.h>

#include "protocol/protocol.h"

#define AVL_DEFAULT_MAX_BODY (4 * 1024 * 1024)
#define AVL_DEFAULT_TIMEOUT 30.0
#define AVL_DEFAULT_CONNECT_TIMEOUT 10.0

/* A transport_ref that names nothing (Lua's LUA_NOREF, which lua/options.c
 * checks at compile time). */
#define AVL_NO_REF (-2)

/* ---- options.c: the transport options (docs/design.md section 5) */
typedef struct {
    double timeout;          /* seconds, total */
    double connect_timeout;  /* seconds */
    char *cafile;
    char *capath;
    char *proxy;             /* may carry credentials: wiped */
    int verify;              /* 1 unless the caller passed verify = false */
    int allow_http;          /* plain http:// to hosts other than loopback allowed */
    char *user_agent;        /* NULL: the default (core.user_agent) */
    size_t max_body;
    int transport_ref;       /* the Lua layer's (lua/options.c): AVL_NO_REF, or a registry
                              * reference to a Lua transport function; never read here */
} avl_options;

/* Defaults, owning nothing. */
void avl_options_init(avl_options *o);
/* Wipes and frees the strings o owns (transport_ref is its owner's). */
void avl_options_clear(avl_options *o);

/* Whether url may carry credentials with these options: https, or plain
 * http to a loopback host (127.0.0.0/8, ::1, localhost), or plain http
 * anywhere with allow_http. 0 ok, else -1 with a reason in why. */
int avl_url_allowed(const char *url, int allow_http, char *why, size_t why_size);

/* ---- receive.c: reading a response as it arrives, from libcurl's
 * callbacks or from a Lua transport function's answer. */
typedef struct {
    avl_response *r;
    size_t max_body;
    int is_head;
    int too_big;        /* body or Content-Length over max_body */
    int headers_too_big;
    int nomem;
} avl_receive;

void avl_receive_init(avl_receive *c, avl_response *r, const avl_options *o, const avl_request *req);
/* One "Name: value" pair of the final response. 0, or -1 to stop. */
int avl_receive_header(avl_receive *c, const char *name, size_t nl, const char *value, size_t vl);
/* Body bytes: n taken, or 0 to stop (over max_body, out of memory). */
size_t avl_receive_body(avl_receive *c, const char *p, size_t n);
/* Whether a limit stopped the reading (e then says which). */
int avl_receive_stopped(const avl_receive *c);
/* Ends a reading: 0 (r holds a response), or -1 with e filled (kind
 * transport, or http for a limit). e is initialised here. */
int avl_receive_end(const avl_receive *c, const avl_request *req, avl_response *r, avl_error *e);
/* Fills e's status, request id and Retry-After from what r holds. */
void avl_receive_failed(const avl_request *req, const avl_response *r, avl_error *e);

/* The wall clock, epoch seconds. */
double avl_now(void);

/* ---- curl.c: the pool and one exchange */
typedef struct avl_pool avl_pool;

/* curl_global_init, once per process: 0, or -1 when it fails. */
int avl_transport_global_init(void);
/* curl_version_info(CURLVERSION_NOW), asked once per process at the same
 * time (the call rewrites libcurl's static buffers: two threads loading
 * the module would race). */
struct curl_version_info_data;
const struct curl_version_info_data *avl_curl_info(void);
/* The pool is embedded in memory its owner allocates (the Lua layer: a
 * userdata) of avl_pool_size() bytes. avl_pool_init sets it up; `host`
 * ends the user agent ("Lua 5.4", "LuaJIT 2.1..."). avl_pool_close frees
 * its handles; the pool then refuses to hand out or keep any (exchanges
 * that end afterwards clean up their own handle). */
size_t avl_pool_size(void);
void avl_pool_init(avl_pool *p, const char *host);
void avl_pool_close(avl_pool *p);
/* Wipes the header lists idle handles keep when one holds the line
 * "Authorization: <authorization>" (an ended credential). NULL p: nothing. */
void avl_pool_forget(avl_pool *p, const char *authorization);
/* How many idle handles keep an Authorization line in their header list (for tests). */
size_t avl_pool_kept_credentials(const avl_pool *p);
const char *avl_pool_user_agent(const avl_pool *p);
size_t avl_pool_idle(const avl_pool *p);

/* Performs one exchange over libcurl. 0 with r filled (any HTTP status),
 * or -1 with e filled. r must be initialised. */
int avl_curl_perform(avl_pool *p, const avl_options *o, const avl_request *req, avl_response *r, avl_error *e);

/* ---- engine.c: the engine: a curl multi handle with `concurrency` slots, driven
 * without blocking (core.multi, request_many). Each started exchange runs
 * with its own options; `ud` comes back when it completes. */
typedef struct avl_engine avl_engine;
/* Called for each completed exchange: r filled (failed == 0) or e. */
typedef void (*avl_done_fn)(void *ctx, void *ud, int failed);

/* NULL on OOM. HTTP/2 multiplexing is on: transfers to one HTTPS origin
 * that offers h2 (ALPN) share a connection. */
avl_engine *avl_engine_new(int concurrency);
void avl_engine_free(avl_engine *g, avl_pool *p);  /* aborts what runs */
int avl_engine_free_slots(const avl_engine *g);
int avl_engine_running(const avl_engine *g);
/* Starts an exchange in a free slot: 0, or -1 with e filled (no slot, OOM). */
int avl_engine_start(avl_engine *g, avl_pool *p, const avl_options *o, const avl_request *req,
                     avl_response *r, avl_error *e, void *ud);
/* Lets the transfers progress, waiting at most `timeout` seconds for
 * activity when none completes at once (0: no wait), and reports each
 * completed one through done. Returns how many completed. */
int avl_engine_run(avl_engine *g, avl_pool *p, double timeout, avl_done_fn done, void *ctx);
/* Aborts the exchange started with ud (its e: "aborted"); 0, or -1 when not running. */
int avl_engine_abort(avl_engine *g, avl_pool *p, const void *ud);
/* What an event loop waits on: the sockets libcurl watches ({fd, what}
 * with what 1 read, 2 write, 3 both; at most max; from curl_multi_fdset,
 * so none at or above FD_SETSIZE), and the seconds until libcurl wants to
 * run anyway (< 0: no timer). */
int avl_engine_sockets(const avl_engine *g, int *fds, int *what, int max);
double avl_engine_timeout(avl_engine *g);

/* One item of a batch; the caller initialises resp and err and frees both. */
typedef struct {
    const avl_request *req;
    avl_response resp;       /* filled when failed == 0 */
    avl_error err;           /* filled when failed == 1 */
    int failed;
} avl_transfer;

/* Runs n exchanges on one curl multi handle, at most `concurrency` at once,
 * connections shared with the single transfers. Every item ends with
 * failed = 0 and resp filled, or failed = 1 and err filled. */
void avl_curl_perform_many(avl_pool *p, const avl_options *o, avl_transfer *items, size_t n, int concurrency);

#endif
