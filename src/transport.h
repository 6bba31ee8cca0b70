/*
 * The transport: moves one avl_request and brings back an avl_response,
 * over libcurl or over a Lua function given as the `transport` option; or
 * many on a curl multi handle. Failures to exchange (kind transport,
 * timeout, tls; a body over max_body) come back as an avl_error.
 *
 * libcurl easy handles are cached per distinct option set (keep-alive and
 * TLS session reuse across calls) in a pool owned by the module's state
 * userdata, an upvalue of every module function (core.h). Nothing here
 * raises while libcurl runs or while a Lua transport function's answer is
 * read: callbacks record and return; Lua code runs inside a protected call.
 */
#ifndef AVALARA_TRANSPORT_H
#define AVALARA_TRANSPORT_H

#include "compat.h"
#include "protocol.h"

#define AVL_DEFAULT_MAX_BODY (4 * 1024 * 1024)
#define AVL_DEFAULT_TIMEOUT 30.0
#define AVL_DEFAULT_CONNECT_TIMEOUT 10.0

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
    int transport_ref;       /* LUA_NOREF, or a registry ref to a Lua transport function */
} avl_options;

/* Defaults, owning nothing. */
void avl_options_init(avl_options *o);
/* Reads the options from the table at idx (other fields ignored): every
 * field is read once and checked before anything is copied, so a raise
 * (a wrong type, naming the option) leaves o owning nothing. */
void avl_options_read(lua_State *L, int idx, avl_options *o);
void avl_options_free(lua_State *L, avl_options *o);
int avl_options_lua_transport(const avl_options *o);

/* Whether url may carry credentials with these options: https, or plain
 * http to a loopback host (127.0.0.0/8, ::1, localhost), or plain http
 * anywhere with allow_http. 0 ok, else -1 with a reason in why. */
int avl_url_allowed(const char *url, int allow_http, char *why, size_t why_size);

/* ---- transport.c */
typedef struct avl_pool avl_pool;

/* The state's pool: the userdata at upvalue AVL_UV_STATE (core.h). */
avl_pool *avl_pool_of(lua_State *L);
/* Pushes the state userdata (pool, user agent) for luaopen; raises when
 * libcurl cannot be initialised. */
void avl_pool_push(lua_State *L);
const char *avl_pool_user_agent(const avl_pool *p);

/* The wall clock, epoch seconds. */
double avl_now(void);

/* Performs one exchange. 0 with r filled (any HTTP status), or -1 with e
 * filled. Never raises: a Lua transport function runs protected, and what
 * it raises or returns is read protected too. r must be initialised. */
int avl_transport_perform(lua_State *L, avl_pool *p, const avl_options *o,
                          const avl_request *req, avl_response *r, avl_error *e);

/* The transport request table a Lua function is given:
 * {method, url, headers = {Name = value}, body?, timeout}. */
void avl_push_request(lua_State *L, const avl_options *o, const avl_request *req);
/* Takes a Lua transport's answer, the values at idx and idx + 1 (response
 * | nil, err), into r or e, never raising (max_body applies). 0 or -1. */
int avl_transport_take(lua_State *L, int idx, const avl_options *o, const avl_request *req,
                       avl_response *r, avl_error *e);

/* ---- the engine: a curl multi handle with `concurrency` slots, driven
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
 * connections shared with the single transfers; with a Lua transport
 * function, one after the other. Never raises. */
void avl_transport_perform_many(lua_State *L, avl_pool *p, const avl_options *o, avl_transfer *items,
                                size_t n, int concurrency);

/* core.transport_stats() -> {idle_handles = n}. */
int avl_transport_stats(lua_State *L);

/* Pushes the response headers as a Lua table, names lower-cased. */
void avl_push_headers(lua_State *L, const avl_response *r);

#endif
