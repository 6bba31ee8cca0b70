/*
 * The transport: one HTTP exchange, over libcurl or over a Lua function
 * given as the `transport` option. Grants and core.request build an
 * avl_http_request, call avl_transport_perform, and get an avl_http_response
 * or an avl_error (kind transport / timeout / tls).
 *
 * libcurl easy handles are cached per distinct option set (keep-alive and
 * TLS session reuse across calls) in a registry-held pool owned by the
 * lua_State; callbacks never raise (no longjmp across libcurl): they record
 * and return, and errors are raised or returned after curl returns.
 */
#ifndef AVALARA_TRANSPORT_H
#define AVALARA_TRANSPORT_H

#include "compat.h"
#include "errors.h"
#include "protocol.h"

#define AVL_DEFAULT_MAX_BODY (4 * 1024 * 1024)
#define AVL_DEFAULT_TIMEOUT 30.0
#define AVL_DEFAULT_CONNECT_TIMEOUT 10.0

/* Transport options, read from the Lua options table (design.md section 5). */
typedef struct {
    double timeout;          /* seconds, total */
    double connect_timeout;  /* seconds */
    char *cafile;
    char *capath;
    char *proxy;
    int verify;              /* 1 unless the caller passed verify = false */
    char *user_agent;        /* NULL: the default "avalara-hscode/VERSION (libcurl/..; Lua ..)" */
    size_t max_body;
    int transport_ref;       /* LUA_NOREF, or a registry ref to a Lua transport function */
} avl_options;

/* Reads the transport options from the table at idx (other fields ignored);
 * raises on wrong types (a programming error), naming the field. */
void avl_options_read(lua_State *L, int idx, avl_options *o);
void avl_options_free(lua_State *L, avl_options *o);
/* Copies (for token objects that refresh later). */
int avl_options_copy(lua_State *L, const avl_options *from, avl_options *to);

typedef struct {
    const char *method;      /* "GET", "POST", "PUT", ... */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" lines */
    const char *body;        /* may be NULL */
    size_t body_len;
    const char *const *secrets; /* NULL-terminated: redacted from any error body */
} avl_http_request;

typedef struct {
    int status;
    avl_buf body;
    avl_buf headers;         /* raw header block of the final response: "Name: value\r\n"... */
    char content_type[128];
    char request_id[128];    /* x-correlation-id */
    double retry_after;      /* seconds, < 0 when absent */
} avl_http_response;

void avl_http_response_init(avl_http_response *r);
void avl_http_response_free(avl_http_response *r);

/* Performs one exchange. 0 with r filled (any HTTP status), or -1 with e
 * filled (kind transport/timeout/tls, or transport-function errors). May
 * call Lua (the transport option) but never raises while libcurl runs. */
int avl_transport_perform(lua_State *L, const avl_options *o,
                          const avl_http_request *req, avl_http_response *r,
                          avl_error *e);

/* One item of a batch. The caller initialises resp and err
 * (avl_http_response_init, avl_error_init) and frees both afterwards. */
typedef struct {
    const avl_http_request *req;
    avl_http_response resp;  /* filled when failed == 0 */
    avl_error err;           /* filled when failed == 1 */
    int failed;
} avl_transfer;

/* Runs n exchanges on one curl multi handle, at most `concurrency` at once,
 * connections shared with the single transfers; with a Lua transport
 * function, one after the other. Never raises. */
void avl_transport_perform_many(lua_State *L, const avl_options *o, avl_transfer *items,
                                size_t n, int concurrency);

/* Pushes the response headers as a Lua table, names lower-cased. */
void avl_push_headers(lua_State *L, const avl_http_response *r);

/* Called once from luaopen: curl_global_init (once per process) and the
 * per-state handle pool. */
void avl_transport_open(lua_State *L);

#endif
