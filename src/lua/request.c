/*
 * core.request, core.prepare_request and core.request_many: authenticated
 * JSON calls to the API.
 *
 * Everything a call allocates hangs off one userdata whose __gc frees it
 * (an exchange, or for request_many a "call"), so a programming error
 * raised halfway through the arguments leaks nothing; on the normal path
 * it is released before returning. What a response means is decided by
 * outcome.c; a 2xx body is decoded by lua/json.c, a table body encoded by
 * lua-cjson.
 *
 * Why this size: core.request and core.request_many share the request
 * table's reading and the response's outcome; request_many's call
 * userdata (its __gc) is what keeps a half-read batch from leaking.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/args.h"
#include "lua/error.h"
#include "lua/fields.h"
#include "lua/json.h"
#include "lua/register.h"
#include "lua/request.h"
#include "lua/token.h"
#include "protocol/protocol.h"
#include "transport/abi.h"

#define CALL_MT "avalara.request.call"
#define DEFAULT_CONCURRENCY 8
#define MAX_CONCURRENCY 64

typedef struct {
    size_t n;
    avl_request *reqs;
    avl_transfer *items;
    avl_options opts;
} call;

/* ------------------------------------------------------------ call state */

static int call_gc(lua_State *L) {
    call *c = luaL_testudata(L, 1, CALL_MT);
    size_t i;
    if (c == NULL)
        return 0;
    for (i = 0; i < c->n; i++) {
        avl_request_free(&c->reqs[i]);
        avl_response_free(&c->items[i].resp);
        avl_error_free(&c->items[i].err);
    }
    free(c->reqs);
    free(c->items);
    c->reqs = NULL;
    c->items = NULL;
    c->n = 0;
    avl_options_free(L, &c->opts);
    return 0;
}

/* Pushes a call for n requests; raises on OOM (nothing to leak yet). */
static call *call_push(lua_State *L, size_t n) {
    call *c = lua_newuserdata(L, sizeof *c);
    size_t i;
    memset(c, 0, sizeof *c);
    avl_options_init(&c->opts);
    luaL_setmetatable(L, CALL_MT);
    c->reqs = calloc(n > 0 ? n : 1, sizeof *c->reqs);
    c->items = calloc(n > 0 ? n : 1, sizeof *c->items);
    if (c->reqs == NULL || c->items == NULL)
        luaL_error(L, "out of memory");
    c->n = n;
    for (i = 0; i < n; i++) {
        avl_request_init(&c->reqs[i]);
        avl_response_init(&c->items[i].resp);
        avl_error_init(&c->items[i].err, "transport");
        c->items[i].req = &c->reqs[i];
    }
    return c;
}

/* Frees the call now rather than at the next collection (wipes secrets). */
static void call_release(lua_State *L, int idx) {
    lua_pushcfunction(L, call_gc);
    lua_pushvalue(L, idx);
    lua_call(L, 1, 0);
}

/* ----------------------------------------------------------------- read */

static void nomem(lua_State *L) {
    luaL_error(L, "out of memory");
}

/* Values (a token, a header value, a URL) may come from outside: a token
 * store, a server's link. One unfit to send marks the request refused
 * (avl_request_check reports it: nil, err, nothing sent) rather than
 * raising; types and header names are the caller's code and raise. The
 * building itself is the C ABI's (transport/abi.c). */
static void set_credential(lua_State *L, avl_request *req, const char *scheme, const char *value,
                           size_t n) {
    if (avl_abi_credential(req, scheme, value, n) != 0)
        nomem(L);
}

static void read_method(lua_State *L, int idx, const char *label, char *method, size_t size, avl_fields f) {
    size_t n;
    const char *s;
    avl_getfield(L, idx, AVL_F_METHOD, f);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        avl_copy_field(method, size, "GET", 3);
        return;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "%s'method' must be a string (got %s)", label, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &n);
    if (avl_abi_method(method, size, s, n) != 0)
        luaL_error(L, "%s'method' must be an HTTP method name", label);
    lua_pop(L, 1);
}

/* The credential: a token userdata, a token string, or an authorization value. */
static int read_credential(lua_State *L, int idx, const char *label, avl_request *req, avl_fields f) {
    size_t n;
    const char *s;
    int found = 1;
    avl_getfield(L, idx, AVL_F_TOKEN, f);
    if (lua_isuserdata(L, -1)) {
        /* registered once per token (its set, dropped when it is renewed or closed) */
        avl_token *t = avl_token_check(L, -1, "core.request");
        if (avl_abi_credential_shared(req, &t->cred, 1, NULL, NULL, t->authorization,
                                      strlen(t->authorization)) != 0)
            nomem(L);
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        /* registered once per string (the state's few sets, by exact bytes) */
        struct avl_cred_cache *c = avl_creds_of(L);
        s = lua_tolstring(L, -1, &n);
        if (c == NULL)
            set_credential(L, req, "Bearer", s, n);
        else if (avl_abi_credential_shared(req, c->slot, AVL_CRED_SLOTS, &c->next, "Bearer", s, n) != 0)
            nomem(L);
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "%s'token' must be a token or a string (got %s)", label, luaL_typename(L, -1));
    } else {
        avl_getfield(L, idx, AVL_F_AUTHORIZATION, f);
        if (lua_type(L, -1) == LUA_TSTRING) {
            s = lua_tolstring(L, -1, &n);
            set_credential(L, req, NULL, s, n);
        } else if (!lua_isnil(L, -1)) {
            luaL_error(L, "%s'authorization' must be a string (got %s)", label, luaL_typename(L, -1));
        } else {
            found = 0;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return found;
}

/* The headers table on the stack top, traversed raw (no metamethod runs
 * while the request grows). Returns the AVL_ABI_HAS_* flags. */
static int read_headers(lua_State *L, const char *label, int has_credential, avl_request *req) {
    int t = lua_gettop(L), flags = has_credential ? AVL_ABI_HAS_CREDENTIAL : 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        size_t nl, vl;
        const char *name, *value;
        int rc;
        if (lua_type(L, -2) != LUA_TSTRING ||
            (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
            luaL_error(L, "%s'headers' must map names to string values", label);
        name = lua_tolstring(L, -2, &nl);
        lua_pushvalue(L, -1);
        value = lua_tolstring(L, -1, &vl);
        rc = avl_abi_header(req, name, nl, value, vl, &flags);
        if (rc == -2)
            luaL_error(L, "%s'headers' has a bad name (a name has no ':', space or control character)", label);
        else if (rc != 0)
            nomem(L);
        lua_pop(L, 2);
    }
    return flags;
}

/* Reads the request table at idx into req: method, url, the credential
 * (token, authorization or an Authorization header), headers, body. o is
 * the call's options (already read), for the URL policy. Raises on bad
 * input, before any traffic, naming the field after label; req then owns
 * whatever it got, and its owner frees it. */
static void read_request(lua_State *L, int idx, const avl_options *o, const char *label, avl_request *req,
                         avl_fields f) {
    char method[32], why[200];
    size_t n;
    const char *s;
    int flags = 0, has_credential, rc;
    idx = lua_absindex(L, idx);
    avl_checkstack(L, 8, label);

    read_method(L, idx, label, method, sizeof method, f);
    avl_getfield(L, idx, AVL_F_URL, f);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "%s'url' must be a string (got %s)", label, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &n);
    rc = avl_abi_target(req, method, s, n, !avl_options_lua_transport(o), o->allow_http, why, sizeof why);
    if (rc == -1)
        luaL_error(L, "%s'url' %s", label, why);
    else if (rc != 0)
        nomem(L);
    lua_pop(L, 1);

    has_credential = read_credential(L, idx, label, req, f);
    avl_getfield(L, idx, AVL_F_HEADERS, f);
    if (lua_istable(L, -1))
        flags = read_headers(L, label, has_credential, req);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "%s'headers' must be a table (got %s)", label, luaL_typename(L, -1));
    lua_pop(L, 1);

    avl_getfield(L, idx, AVL_F_BODY, f);
    if (lua_istable(L, -1)) {
        /* cjson.encode(body): raises on unencodable values (cycles, functions) */
        avl_json_encoder(L, label);
        lua_insert(L, -2);
        if (lua_pcall(L, 1, 1, 0) != 0)
            luaL_error(L, "%s'body' cannot be encoded as JSON: %s", label,
                       lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
    } else if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) {
        luaL_error(L, "%s'body' must be a table or a string (got %s)", label, luaL_typename(L, -1));
    }
    s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (avl_abi_body(req, s, s != NULL ? n : 0, flags) != 0)
        nomem(L);
    lua_pop(L, 1);
}

/* -------------------------------------------------------------- outcome */

/* Pushes status, decoded body, headers (returns 3; 2 without the headers
 * table, `no_headers`), or an error (returns 1). */
static int outcome(lua_State *L, const avl_request *req, avl_response *r, int no_headers) {
    avl_error e;
    avl_outcome out = avl_abi_outcome(req, r, &e);
    if (out == AVL_OUTCOME_ERROR)
        return avl_error_push(L, &e);
    lua_pushinteger(L, r->status);
    if (out == AVL_OUTCOME_EMPTY) {
        lua_pushnil(L);
    } else {
        char why[96];
        if (avl_json_push(L, r->body.data, r->body.len, 0, 0, why, sizeof why) != 0) {
            avl_api_parse_failure(r, why, &req->secrets, &e);
            lua_pop(L, 1);
            return avl_error_push(L, &e);
        }
    }
    if (no_headers)
        return 2;
    avl_push_headers(L, r);
    return 3;
}

/* ---------------------------------------------------------------- calls */

static int request_finish(lua_State *L, avl_exchange *x, int failed) {
    int n;
    if (failed)
        return avl_error_result(L, &x->err);
    n = outcome(L, &x->req, &x->resp, x->no_headers);
    if (n == 1) {
        lua_pushnil(L);
        lua_insert(L, -2);
        n = 2;
    }
    return n;
}

avl_exchange *avl_request_prepare(lua_State *L, int idx, const char *fn) {
    char label[48];
    avl_exchange *x;
    avl_fields f;
    size_t n = strlen(fn);
    idx = lua_absindex(L, idx);
    f = avl_fields_of(L, idx);
    x = avl_exchange_push(L, "request", request_finish, NULL);
    avl_options_read_from(L, idx, &x->opts, f);
    if (n > sizeof label - 3)
        n = sizeof label - 3;
    memcpy(label, fn, n); /* "fn: " */
    memcpy(label + n, ": ", 3);
    read_request(L, idx, &x->opts, label, &x->req, f);
    avl_getfield(L, idx, AVL_F_RESPONSE_HEADERS, f);
    if (lua_type(L, -1) == LUA_TBOOLEAN)
        x->no_headers = !lua_toboolean(L, -1);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "%s'response_headers' must be a boolean (got %s)", label, luaL_typename(L, -1));
    lua_pop(L, 1);
    return x;
}

static int l_request(lua_State *L) {
    avl_arg_type(L, 1, 1, LUA_TTABLE, "core.request");
    lua_settop(L, 1);
    avl_request_prepare(L, 1, "core.request");
    return avl_exchange_perform(L, 2);
}

static int l_prepare_request(lua_State *L) {
    avl_arg_type(L, 1, 1, LUA_TTABLE, "core.prepare_request");
    lua_settop(L, 1);
    avl_request_prepare(L, 1, "core.prepare_request");
    return 1;
}

/* `concurrency`: a positive number, capped at MAX_CONCURRENCY (math.huge
 * included); fractions are rounded down. */
static int read_concurrency(lua_State *L, int idx) {
    double v;
    lua_getfield(L, idx, "concurrency");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return DEFAULT_CONCURRENCY;
    }
    v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    if (!(v >= 1))
        luaL_error(L, "core.request_many: 'concurrency' must be a number >= 1");
    lua_pop(L, 1);
    return avl_clamp_int(v, 1, MAX_CONCURRENCY);
}

static int l_request_many(lua_State *L) {
    static const char fn[] = "core.request_many";
    call *c;
    size_t n, i;
    int concurrency;
    avl_arg_type(L, 1, 1, LUA_TTABLE, fn);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_newtable(L);
    }
    avl_arg_type(L, 2, 2, LUA_TTABLE, fn);
    lua_settop(L, 2);
    concurrency = read_concurrency(L, 2);
    n = lua_rawlen(L, 1);
    c = call_push(L, n);                          /* 3 */
    avl_options_read(L, 2, &c->opts);
    for (i = 0; i < n; i++) {
        char label[64];
        lua_rawgeti(L, 1, (int)i + 1);
        if (!lua_istable(L, -1))
            return luaL_error(L, "%s: requests[%d] must be a table (got %s)", fn, (int)i + 1,
                              luaL_typename(L, -1));
        snprintf(label, sizeof label, "%s: requests[%d]: ", fn, (int)i + 1);
        read_request(L, -1, &c->opts, label, &c->reqs[i], avl_fields_of(L, -1));
        lua_pop(L, 1);
    }
    if (n > 0)
        avl_transport_perform_many(L, avl_pool_of(L), &c->opts, c->items, n, concurrency);
    lua_createtable(L, (int)n, 0);                /* 4 */
    for (i = 0; i < n; i++) {
        avl_transfer *it = &c->items[i];
        int nres = it->failed ? avl_error_push(L, &it->err) : outcome(L, &c->reqs[i], &it->resp, 0);
        lua_createtable(L, 0, 3);
        if (nres == 1) {
            lua_insert(L, -2);
            lua_setfield(L, -2, "err");
        } else {
            lua_insert(L, -4);
            lua_setfield(L, -4, "headers");
            lua_setfield(L, -3, "body");
            lua_setfield(L, -2, "status");
        }
        lua_rawseti(L, 4, (int)i + 1);
        /* Free each response as soon as it is in Lua. */
        avl_response_free(&it->resp);
        avl_error_free(&it->err);
    }
    call_release(L, 3);
    lua_settop(L, 4);
    return 1;
}

void avl_request_open(lua_State *L, int uv) {
    static const luaL_Reg fns[] = {
        { "request", l_request },
        { "prepare_request", l_prepare_request },
        { "request_many", l_request_many },
        { "transport_stats", avl_transport_stats },
        { "abi_client", avl_abi_client },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__gc", call_gc },
        { NULL, NULL }
    };
    avl_newtype(L, CALL_MT, meta, NULL, uv);
    avl_setfuncs(L, fns, uv);
}
