/*
 * Exchanges: the `avalara.exchange` userdata (see exchange.h).
 *
 *   local ex = core.prepare_request{ url = ..., token = ... }  -- or prepare_grant, token:prepare_refresh()
 *   local status, body, headers = ex:perform()                  -- libcurl (or the `transport` option)
 *   -- or, with a transport of your own (it may yield):
 *   local status, body, headers = ex:finish(my_transport(ex:request()))
 */
#include <string.h>

#include "lua/args.h"
#include "lua/error.h"
#include "lua/exchange.h"
#include "lua/register.h"
#include "protocol/protocol.h"

static const char *const done_msg = "attempt to use a finished or closed exchange";

avl_exchange *avl_exchange_push(lua_State *L, const char *what, avl_finish_fn finish, avl_end_fn on_end) {
    avl_exchange *x = lua_newuserdata(L, sizeof *x);
    memset(x, 0, sizeof *x);
    x->what = what;
    avl_request_init(&x->req);
    avl_response_init(&x->resp);
    avl_error_init(&x->err, "transport");
    avl_options_init(&x->opts);
    x->use = &x->opts;
    x->token_ref = LUA_NOREF;
    x->finish = finish;
    x->on_end = on_end;
    luaL_setmetatable(L, AVL_EXCHANGE_MT);
    return x;
}

avl_exchange *avl_exchange_check(lua_State *L, int idx, const char *fn) {
    avl_exchange *x = avl_arg_udata(L, idx, 0, AVL_EXCHANGE_MT, fn);
    if (x->done || x->close_pending)
        luaL_error(L, "%s", done_msg);
    if (x->running)
        luaL_error(L, "%s(): the exchange is running", fn);
    return x;
}

void avl_exchange_push_token(lua_State *L, const avl_exchange *x) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->token_ref);
}

void avl_exchange_release(lua_State *L, avl_exchange *x) {
    avl_end_fn on_end = x->on_end;
    x->done = 1;
    x->on_end = NULL;
    if (on_end != NULL)
        on_end(L, x);
    avl_request_free(&x->req);
    avl_response_free(&x->resp);
    avl_error_free(&x->err);
    avl_options_free(L, &x->opts);
    if (x->token_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, x->token_ref);
        x->token_ref = LUA_NOREF;
    }
}

int avl_exchange_conclude(lua_State *L, avl_exchange *x, int failed) {
    avl_end_fn on_end = x->on_end;
    int n;
    x->done = 1;
    x->on_end = NULL;
    if (on_end != NULL)
        on_end(L, x);
    n = x->finish(L, x, failed);
    avl_exchange_release(L, x);
    return n;
}

int avl_exchange_perform(lua_State *L, int idx) {
    avl_exchange *x = avl_exchange_check(L, idx, "exchange:perform");
    int failed;
    x->running = 1;
    failed = avl_transport_perform(L, avl_pool_of(L), x->use, &x->req, &x->resp, &x->err) != 0;
    x->running = 0;
    if (x->close_pending) {
        avl_exchange_release(L, x);
        return luaL_error(L, "exchange closed while it ran");
    }
    return avl_exchange_conclude(L, x, failed);
}

static int l_perform(lua_State *L) {
    lua_settop(L, 1);
    return avl_exchange_perform(L, 1);
}

/* exchange:finish(response) or exchange:finish(nil, err): the answer of a
 * transport run elsewhere, read as the `transport` option's would be. */
static int l_finish(lua_State *L) {
    avl_exchange *x = avl_exchange_check(L, 1, "exchange:finish");
    int failed;
    lua_settop(L, 3);
    failed = avl_transport_take(L, 2, x->use, &x->req, &x->resp, &x->err) != 0;
    return avl_exchange_conclude(L, x, failed);
}

/* exchange:request(): the transport request table, as a `transport`
 * function is given it (the credentials are in its headers or body); nil,
 * err when the request must not be sent (a control character in a value:
 * avl_request_check), as the transports refuse it. */
static int l_request(lua_State *L) {
    avl_exchange *x = avl_exchange_check(L, 1, "exchange:request");
    avl_error e;
    if (avl_request_check(&x->req, &e) != 0)
        return avl_error_result(L, &e);
    avl_push_request(L, x->use, &x->req);
    return 1;
}

static int l_close(lua_State *L) {
    avl_exchange *x = avl_arg_udata(L, 1, 0, AVL_EXCHANGE_MT, "exchange:close");
    if (x->running)
        x->close_pending = 1;
    else
        avl_exchange_release(L, x);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_gc(lua_State *L) {
    l_close(L);
    return 0;
}

/* "avalara.exchange (client_credentials POST https://host/connect/token)":
 * the URL without its query, which no secret should be in anyway. */
static int l_tostring(lua_State *L) {
    avl_exchange *x = avl_arg_udata(L, 1, 0, AVL_EXCHANGE_MT, "tostring");
    if (x->done || x->req.url == NULL) {
        lua_pushfstring(L, "avalara.exchange (%s, done)", x->what);
        return 1;
    }
    lua_pushfstring(L, "avalara.exchange (%s %s ", x->what, x->req.method);
    lua_pushlstring(L, x->req.url, strcspn(x->req.url, "?#"));
    lua_pushliteral(L, ")");
    lua_concat(L, 3);
    return 1;
}

void avl_exchange_open(lua_State *L, int uv) {
    static const luaL_Reg methods[] = {
        { "request", l_request },
        { "perform", l_perform },
        { "finish", l_finish },
        { "close", l_close },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__gc", l_gc },
        { "__close", l_close },
        { "__tostring", l_tostring },
        { NULL, NULL }
    };
    avl_newtype(L, AVL_EXCHANGE_MT, meta, methods, uv);
}
