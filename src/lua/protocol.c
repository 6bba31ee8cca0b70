/*
 * core.protocol: thin Lua bindings over the sans-I/O protocol functions, for
 * specs, fuzz replays and tools.
 *
 * Memory discipline: every C resource lives inside a "guard" userdata whose
 * __gc releases it, so a Lua error (out of memory while pushing a result, a
 * bad argument found half-way) cannot leak it. Each function releases its
 * guard explicitly once the results are built, which also wipes secrets now
 * rather than at the next collection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/args.h"
#include "lua/error.h"
#include "lua/json.h"
#include "lua/protocol.h"
#include "lua/register.h"
#include "protocol/protocol.h"

#define GUARD_MT "avalara.protocol.guard"

enum { G_NONE, G_BUF, G_TOKEN, G_API };

typedef struct {
    int kind;
    union {
        avl_buf buf;
        avl_token_response token;
        avl_api_error api;
    } u;
} guard;

static void guard_release(guard *g) {
    switch (g->kind) {
    case G_BUF: avl_buf_free(&g->u.buf); break;
    case G_TOKEN: avl_token_response_free(&g->u.token); break;
    case G_API: avl_api_error_free(&g->u.api); break;
    default: break;
    }
    g->kind = G_NONE;
}

static int guard_gc(lua_State *L) {
    guard *g = luaL_testudata(L, 1, GUARD_MT);
    if (g != NULL)
        guard_release(g);
    return 0;
}

/* Pushes a new guard; its zeroed union is the empty state of every kind. */
static guard *guard_new(lua_State *L, int kind) {
    guard *g = lua_newuserdata(L, sizeof *g);
    memset(g, 0, sizeof *g);
    g->kind = G_NONE;
    luaL_setmetatable(L, GUARD_MT);
    g->kind = kind;
    return g;
}

static int nomem(lua_State *L, guard *g) {
    guard_release(g);
    return luaL_error(L, "out of memory");
}

static int opt_bool(lua_State *L, int idx, const char *fn) {
    if (lua_isnoneornil(L, idx))
        return 0;
    avl_arg_type(L, idx, idx, LUA_TBOOLEAN, fn);
    return lua_toboolean(L, idx);
}

static const char *check_string(lua_State *L, int idx, const char *fn, size_t *n) {
    avl_arg_type(L, idx, idx, LUA_TSTRING, fn);
    return lua_tolstring(L, idx, n);
}

static int push_buf(lua_State *L, guard *g) {
    lua_pushlstring(L, g->u.buf.data != NULL ? g->u.buf.data : "", g->u.buf.len);
    guard_release(g);
    return 1;
}

static int l_pct_encode(lua_State *L) {
    size_t n;
    const char *s = check_string(L, 1, "protocol.pct_encode", &n);
    int form = opt_bool(L, 2, "protocol.pct_encode");
    guard *g = guard_new(L, G_BUF);
    if (avl_pct_encode(&g->u.buf, s, n, form) != 0)
        return nomem(L, g);
    return push_buf(L, g);
}

static int l_pct_decode(lua_State *L) {
    size_t n;
    const char *s = check_string(L, 1, "protocol.pct_decode", &n);
    int form = opt_bool(L, 2, "protocol.pct_decode");
    guard *g = guard_new(L, G_BUF);
    if (avl_pct_decode(&g->u.buf, s, n, form) != 0)
        return nomem(L, g);
    return push_buf(L, g);
}

/* Adds the pair whose key and value are at the top of the stack. */
static void form_pair(lua_State *L, guard *g, const char *where) {
    size_t klen, vlen;
    const char *key, *value;
    if (lua_type(L, -2) != LUA_TSTRING)
        luaL_error(L, "form_encode: %s: key must be a string", where);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "form_encode: %s: value must be a string or a number", where);
    key = lua_tolstring(L, -2, &klen);
    value = lua_tolstring(L, -1, &vlen);
    if (avl_form_addn(&g->u.buf, key, klen, value, vlen) != 0)
        nomem(L, g);
}

typedef struct {
    const char *s;
    size_t n;
} keyref;

static int keyref_cmp(const void *a, const void *b) {
    const keyref *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    return c != 0 ? c : (x->n > y->n) - (x->n < y->n);
}

/* form_encode({{k, v}, ...}) keeps the order; form_encode({k = v}) sorts
 * the keys so the output is deterministic. */
static int l_form_encode(lua_State *L) {
    guard *g;
    int pairs;
    avl_arg_type(L, 1, 1, LUA_TTABLE, "protocol.form_encode");
    lua_settop(L, 1);
    g = guard_new(L, G_BUF);
    lua_rawgeti(L, 1, 1);
    pairs = lua_type(L, -1) == LUA_TTABLE;
    lua_pop(L, 1);
    if (pairs) {
        size_t i, n = lua_rawlen(L, 1);
        for (i = 1; i <= n; i++) {
            char where[32];
            snprintf(where, sizeof where, "pair %lu", (unsigned long)i);
            lua_rawgeti(L, 1, (int)i);
            if (lua_type(L, -1) != LUA_TTABLE)
                luaL_error(L, "form_encode: %s must be a {key, value} table", where);
            lua_rawgeti(L, -1, 1);
            lua_rawgeti(L, -2, 2);
            form_pair(L, g, where);
            lua_pop(L, 3);
        }
    } else {
        size_t i, count = 0;
        keyref *keys;
        lua_pushnil(L);
        while (lua_next(L, 1) != 0) {
            lua_pop(L, 1);
            count++;
        }
        /* A userdata, so the array is collected even if a check raises. */
        keys = lua_newuserdata(L, (count ? count : 1) * sizeof *keys);
        count = 0;
        lua_pushnil(L);
        while (lua_next(L, 1) != 0) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "form_encode: keys must be strings (or pass an array of pairs)");
            /* The table keeps the key strings alive while we point at them. */
            keys[count].s = lua_tolstring(L, -1, &keys[count].n);
            count++;
        }
        qsort(keys, count, sizeof *keys, keyref_cmp);
        for (i = 0; i < count; i++) {
            lua_pushlstring(L, keys[i].s, keys[i].n);
            lua_pushvalue(L, -1);
            lua_rawget(L, 1);
            form_pair(L, g, "field");
            lua_pop(L, 2);
        }
        lua_pop(L, 1);
    }
    return push_buf(L, g);
}

/* Records each decoded pair as [len][key][len][value] for building the
 * table after avl_form_parse has released its own buffers. */
static int record_pair(void *ud, const char *key, size_t key_len, const char *value, size_t value_len) {
    avl_buf *b = ud;
    if (avl_buf_append(b, (const char *)&key_len, sizeof key_len) != 0 ||
        avl_buf_append(b, key, key_len) != 0 ||
        avl_buf_append(b, (const char *)&value_len, sizeof value_len) != 0 ||
        avl_buf_append(b, value, value_len) != 0)
        return -1;
    return 0;
}

static int l_form_decode(lua_State *L) {
    size_t n, pos = 0;
    const char *s = check_string(L, 1, "protocol.form_decode", &n);
    guard *g = guard_new(L, G_BUF);
    if (avl_form_parse(s, n, record_pair, &g->u.buf) != 0)
        return nomem(L, g);
    lua_newtable(L);
    while (pos < g->u.buf.len) {
        size_t len;
        int i;
        for (i = 0; i < 2; i++) {
            memcpy(&len, g->u.buf.data + pos, sizeof len);
            pos += sizeof len;
            lua_pushlstring(L, g->u.buf.data + pos, len);
            pos += len;
        }
        lua_rawset(L, -3); /* a repeated key: the last one wins */
    }
    guard_release(g);
    return 1;
}

static int l_parse_datetime(lua_State *L) {
    size_t n;
    const char *s = check_string(L, 1, "protocol.parse_datetime", &n);
    double epoch;
    if (avl_parse_datetime(s, n, &epoch) != 0)
        return 0;
    lua_pushnumber(L, epoch);
    return 1;
}

static int l_parse_token_response(lua_State *L) {
    static const char fn[] = "protocol.parse_token_response";
    static const char *const results[] = {"ok", "oauth", "http", "parse"};
    int status;
    const char *content_type = NULL, *body;
    size_t n;
    double now;
    guard *g;
    avl_arg_type(L, 1, 1, LUA_TNUMBER, fn);
    status = avl_clamp_int(lua_tonumber(L, 1), 0, 999);
    if (!lua_isnoneornil(L, 2))
        content_type = check_string(L, 2, fn, NULL);
    body = check_string(L, 3, fn, &n);
    avl_arg_type(L, 4, 4, LUA_TNUMBER, fn);
    now = lua_tonumber(L, 4);
    g = guard_new(L, G_TOKEN);
    avl_token_response *r = &g->u.token;
    avl_token_result rc = avl_token_response_parse(status, content_type, body, n, now, r);
    if (rc == AVL_TOKEN_NOMEM)
        return nomem(L, g);
    lua_createtable(L, 0, 8);
    avl_set_string(L, "result", results[rc]);
    /* A failed response's tokens are only for redaction: not shown. */
    if (rc == AVL_TOKEN_OK) {
        avl_set_string(L, "access_token", r->access_token);
        avl_set_string(L, "refresh_token", r->refresh_token);
    }
    avl_set_string(L, "token_type", r->token_type);
    avl_set_string(L, "scope", r->scope);
    avl_set_string(L, "error", r->error);
    avl_set_string(L, "error_description", r->error_description);
    avl_set_string(L, "error_uri", r->error_uri);
    avl_set_string(L, "reason", r->reason[0] != '\0' ? r->reason : NULL);
    if (r->has_expiry) {
        lua_pushnumber(L, r->expires_at);
        lua_setfield(L, -2, "expires_at");
    }
    guard_release(g);
    return 1;
}

static int l_parse_api_error(lua_State *L) {
    size_t n;
    const char *body = check_string(L, 1, "protocol.parse_api_error", &n);
    guard *g = guard_new(L, G_API);
    avl_api_error *e = &g->u.api;
    if (avl_api_error_parse(body, n, e) != 0) {
        guard_release(g);
        return 0;
    }
    lua_createtable(L, 0, 4);
    avl_set_string(L, "code", e->code);
    avl_set_string(L, "message", e->message);
    avl_set_string(L, "target", e->target);
    avl_set_string(L, "detail_description", e->detail_description);
    if (e->number > 0) {
        lua_pushinteger(L, e->number);
        lua_setfield(L, -2, "number");
    }
    guard_release(g);
    return 1;
}

/* JSON null is a NULL light userdata: equal to lua-cjson's cjson.null. */
static int l_json_decode(lua_State *L) {
    size_t n;
    const char *s = check_string(L, 1, "protocol.json_decode", &n);
    int flags = opt_bool(L, 2, "protocol.json_decode") ? AVL_JSON_TRAILING_COMMA : 0;
    char err[128];
    /* the DOM's depth limit: this binding is the parser the fuzzers run */
    if (avl_json_push(L, s, n, flags, AVL_JSON_MAX_DEPTH, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

/* json_body(s): a 2xx body exactly as core.request decodes it (request.c's
 * outcome: lua-cjson's depth limit, no trailing commas, its reason buffer),
 * for the FFI binding (lua/avalara/ffi), whose tables must be identical. */
static int l_json_body(lua_State *L) {
    size_t n;
    const char *s = check_string(L, 1, "protocol.json_body", &n);
    char why[96];
    if (avl_json_push(L, s, n, 0, 0, why, sizeof why) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    return 1;
}

/* api_outcome(status, content_type, body) -> "json" | "empty" | nil, err:
 * what core.request makes of a response, without the request. */
static int l_api_outcome(lua_State *L) {
    static const char fn[] = "protocol.api_outcome";
    avl_response r;
    avl_error e;
    size_t n;
    const char *body, *ct = NULL;
    avl_outcome out;
    avl_arg_type(L, 1, 1, LUA_TNUMBER, fn);
    if (!lua_isnoneornil(L, 2))
        ct = check_string(L, 2, fn, NULL);
    body = check_string(L, 3, fn, &n);
    avl_response_init(&r);
    r.status = avl_clamp_int(lua_tonumber(L, 1), 0, 999);
    avl_copy_field(r.content_type, sizeof r.content_type, ct, ct != NULL ? strlen(ct) : 0);
    /* the body is only read: no copy needed */
    r.body.data = (char *)body;
    r.body.len = n;
    out = avl_api_outcome(&r, NULL, &e);
    if (out == AVL_OUTCOME_ERROR)
        return avl_error_result(L, &e);
    lua_pushstring(L, out == AVL_OUTCOME_JSON ? "json" : "empty");
    return 1;
}

static const luaL_Reg functions[] = {
    {"pct_encode", l_pct_encode},
    {"pct_decode", l_pct_decode},
    {"form_encode", l_form_encode},
    {"form_decode", l_form_decode},
    {"parse_datetime", l_parse_datetime},
    {"parse_token_response", l_parse_token_response},
    {"parse_api_error", l_parse_api_error},
    {"json_decode", l_json_decode},
    {"json_body", l_json_body},
    {"api_outcome", l_api_outcome},
    {NULL, NULL}
};

void avl_protocol_open(lua_State *L, int uv) {
    static const luaL_Reg meta[] = {
        { "__gc", guard_gc },
        { NULL, NULL }
    };
    avl_newtype(L, GUARD_MT, meta, NULL, uv);

    lua_newtable(L);
    avl_setfuncs(L, functions, uv);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lua_setfield(L, -2, "protocol");
}
