/*
 * Exchanges: one prepared HTTP exchange as a userdata (`avalara.exchange`),
 * the sans-I/O pair every call of the core is built on. A call prepares
 * its request (everything it sends, credentials included, is the
 * exchange's own copy), then either performs it here (libcurl, or a Lua
 * transport function called from C) or hands `exchange:request()` to a
 * transport that runs elsewhere (a yielding one: OpenResty cosockets, an
 * event loop) and gives the answer back with `exchange:finish(resp, err)`.
 *
 * Whatever an exchange holds is freed by its __gc, so a raise anywhere
 * (a bad argument found late, out of memory) leaks nothing.
 */
#ifndef AVALARA_EXCHANGE_H
#define AVALARA_EXCHANGE_H

#include "lua/transport.h"

#define AVL_EXCHANGE_MT "avalara.exchange"

typedef struct avl_exchange avl_exchange;

/* Pushes the results of a finished exchange (x->resp when failed == 0,
 * else x->err) and returns their count; may raise. */
typedef int (*avl_finish_fn)(lua_State *L, avl_exchange *x, int failed);
/* Called once when the exchange ends (finished, closed or collected). */
typedef void (*avl_end_fn)(lua_State *L, avl_exchange *x);

struct avl_exchange {
    const char *what;        /* "request", "client_credentials", "refresh", ... (static) */
    int done;                /* finished or closed: request(), perform() and finish() refuse */
    int running;             /* perform() is under way (it may call a Lua transport) */
    int close_pending;       /* close() or __gc arrived while running */
    avl_request req;
    avl_response resp;
    avl_error err;
    avl_options opts;        /* the exchange's own options ... */
    const avl_options *use;  /* ... or those it runs with (a token's own, for its refresh) */
    int token_ref;           /* LUA_NOREF, or the token this exchange makes or renews */
    int no_headers;          /* a request's `response_headers = false`: no headers table returned */
    avl_finish_fn finish;
    avl_end_fn on_end;
};

/* Pushes a new exchange (empty request, default options). */
avl_exchange *avl_exchange_push(lua_State *L, const char *what, avl_finish_fn finish, avl_end_fn on_end);
/* The exchange at idx, not yet done; raises otherwise, naming fn. */
avl_exchange *avl_exchange_check(lua_State *L, int idx, const char *fn);
/* Performs the exchange at idx and pushes its results (returns the count). */
int avl_exchange_perform(lua_State *L, int idx);
/* Ends x with the results of its exchange (x->resp, or x->err when
 * failed): the end hook, the results pushed (their count returned), then
 * everything released. */
int avl_exchange_conclude(lua_State *L, avl_exchange *x, int failed);
/* Ends x unfinished: its end hook once, then everything it holds is wiped
 * and freed (done = 1). */
void avl_exchange_release(lua_State *L, avl_exchange *x);
/* Pushes the token userdata of x (its token_ref). */
void avl_exchange_push_token(lua_State *L, const avl_exchange *x);

/* Registers the avalara.exchange metatable. */
void avl_exchange_open(lua_State *L, int uv);

#endif
