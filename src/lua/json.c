/*
 * JSON to Lua values in one pass, on the protocol layer's scanner (json.c):
 * what core.request decodes a 2xx body with. Compared with lua-cjson plus a
 * walk that turns integral floats into integers, it does half the work,
 * reads integers exactly (ids up to 18 digits), and strings without
 * escapes are pushed straight from the body. JSON null is a NULL light
 * userdata, equal to cjson.null.
 */
#include <string.h>

#include "lua/json.h"
#include "lua/upvalues.h"
#include "protocol/protocol.h"

#define MAX_DEPTH 1000 /* as lua-cjson's decode_max_depth */

typedef struct {
    avl_json_sink sink;
    lua_State *L;
    int depth, max_depth;
    unsigned char array[MAX_DEPTH / 8 + 1]; /* per open container: a bit set when it is an array */
} lua_sink;

static int in_array(const lua_sink *k) {
    int d = k->depth - 1;
    return (k->array[d / 8] >> (d % 8)) & 1;
}

/* Stores the value on the stack top into the innermost container (under
 * the member name below it in an object), or leaves it: the root. */
static void store(lua_sink *k) {
    lua_State *L = k->L;
    if (k->depth == 0)
        return;
    if (in_array(k))
        lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
    else
        lua_rawset(L, -3);
}

static int push_scalar(avl_json_sink *sink, const avl_jscalar *v) {
    lua_sink *k = (lua_sink *)sink;
    lua_State *L = k->L;
    if (!lua_checkstack(L, 3))
        return -2;
    switch (v->type) {
    case AVL_JNULL: lua_pushlightuserdata(L, NULL); break;
    case AVL_JFALSE: lua_pushboolean(L, 0); break;
    case AVL_JTRUE: lua_pushboolean(L, 1); break;
    case AVL_JSTRING: lua_pushlstring(L, v->s, v->len); break;
    default:
#if LUA_VERSION_NUM >= 503
        /* ids and counts print as 1001, not 1001.0 (1.0 and 1e3 included) */
        if (v->is_integer) {
            lua_pushinteger(L, (lua_Integer)v->integer);
            break;
        }
        if (v->number >= -9007199254740992.0 && v->number <= 9007199254740992.0 &&
            v->number == (double)(lua_Integer)v->number) {
            lua_pushinteger(L, (lua_Integer)v->number);
            break;
        }
#endif
        lua_pushnumber(L, (lua_Number)v->number);
        break;
    }
    store(k);
    return 0;
}

static int push_open(avl_json_sink *sink, avl_jtype type) {
    lua_sink *k = (lua_sink *)sink;
    int d = k->depth;
    if (d >= k->max_depth || !lua_checkstack(k->L, 4))
        return -2;
    lua_createtable(k->L, 0, 0);
    if (type == AVL_JARRAY)
        k->array[d / 8] |= (unsigned char)(1u << (d % 8));
    else
        k->array[d / 8] &= (unsigned char)~(1u << (d % 8));
    k->depth++;
    return 0;
}

static int push_member(avl_json_sink *sink, const char *key, size_t n) {
    lua_sink *k = (lua_sink *)sink;
    lua_pushlstring(k->L, key, n);
    return 0;
}

static int push_close(avl_json_sink *sink) {
    lua_sink *k = (lua_sink *)sink;
    k->depth--;
    store(k);
    return 0;
}

int avl_json_push(lua_State *L, const char *s, size_t n, int flags, int max_depth, char *err,
                  size_t err_size) {
    lua_sink *k;
    int top = lua_gettop(L);
    /* as a userdata: a raise (out of memory) while pushing leaks nothing */
    k = lua_newuserdata(L, sizeof *k);
    k->sink.scalar = push_scalar;
    k->sink.open = push_open;
    k->sink.member = push_member;
    k->sink.close = push_close;
    k->L = L;
    k->depth = 0;
    k->max_depth = max_depth > 0 && max_depth < MAX_DEPTH ? max_depth : MAX_DEPTH;
    if (avl_json_scan(s, n, flags, k->max_depth, &k->sink, err, err_size) != 0) {
        lua_settop(L, top);
        return -1;
    }
    lua_remove(L, top + 1); /* the sink; the value stays */
    return 0;
}

/* ------------------------------------------------------------ encoder */

/* The encode field of the value on the top, replacing it; 1 when it is a
 * function. */
static int take_encode(lua_State *L) {
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    lua_getfield(L, -1, "encode");
    lua_remove(L, -2);
    if (lua_type(L, -1) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

void avl_json_encoder(lua_State *L, const char *label) {
    int cache = lua_upvalueindex(AVL_UV_ENCODE);
    avl_checkstack(L, 4, label);
    lua_rawgeti(L, cache, 1);
    if (lua_type(L, -1) == LUA_TFUNCTION)
        return;
    lua_pop(L, 1);
    /* package.loaded.cjson: what require and luaL_requiref fill in */
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "cjson");
        lua_remove(L, -2);
    }
    if (!take_encode(L)) {
        int rc;
        lua_getglobal(L, "require");
        if (lua_type(L, -1) != LUA_TFUNCTION)
            luaL_error(L, "%sa table 'body' needs a JSON encoder: the state has no 'require' and "
                          "package.loaded.cjson is not set (set it to lua-cjson, or to any table with an "
                          "encode function: docs/embedding.md)", label);
        lua_pushliteral(L, "cjson");
        rc = lua_pcall(L, 1, 1, 0);
        if (rc == LUA_ERRMEM)
            lua_error(L); /* a memory error stays one */
        if (rc != 0)
            luaL_error(L, "%sa table 'body' needs a JSON encoder (install lua-cjson, or set package.preload.cjson "
                          "or package.loaded.cjson: docs/embedding.md); require \"cjson\" failed: %s",
                       label, lua_isstring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1));
        if (!take_encode(L))
            luaL_error(L, "%sa table 'body' needs a JSON encoder: module 'cjson' has no encode function", label);
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, cache, 1);
}
