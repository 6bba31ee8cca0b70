/*
 * The module's state userdata (`avalara.core.state`), an upvalue of every
 * function of the module (upvalues.h): it holds the transport's libcurl
 * pool (src/transport/curl.c), closed by its __gc.
 */
#include <string.h>

#include "lua/fields.h"
#include "lua/transport.h"
#include "transport/abi.h"
#include "lua/upvalues.h"

/* The state userdata: the pool, then the interned field names (fields.h),
 * then the credential sets of token strings (transport/abi.h). */
#define KEYS_AT ((avl_pool_size() + 15) / 16 * 16)
#define CREDS_AT ((KEYS_AT + sizeof(avl_keys) + 15) / 16 * 16)

#define STATE_MT "avalara.core.state"

avl_pool *avl_pool_of(lua_State *L) {
    return lua_touserdata(L, lua_upvalueindex(AVL_UV_STATE));
}

const avl_keys *avl_keys_of(lua_State *L) {
    char *state = lua_touserdata(L, lua_upvalueindex(AVL_UV_STATE));
    return state != NULL ? (const avl_keys *)(state + KEYS_AT) : NULL;
}

struct avl_cred_cache *avl_creds_of(lua_State *L) {
    char *state = lua_touserdata(L, lua_upvalueindex(AVL_UV_STATE));
    return state != NULL ? (avl_cred_cache *)(state + CREDS_AT) : NULL;
}

static int state_gc(lua_State *L) {
    char *state = lua_touserdata(L, 1);
    avl_cred_cache_clear((avl_cred_cache *)(state + CREDS_AT));
    avl_pool_close((avl_pool *)state);
    return 0;
}

void avl_pool_push(lua_State *L) {
    avl_pool *p;
    const char *lua_name;
    if (avl_transport_global_init() != 0)
        luaL_error(L, "avalara.core: curl_global_init failed");
    /* the Lua that runs us ends the user agent: "Lua 5.4", "LuaJIT 2.1..." */
    lua_getglobal(L, "jit");
    if (lua_type(L, -1) == LUA_TTABLE)
        lua_getfield(L, -1, "version");
    else
        lua_getglobal(L, "_VERSION");
    lua_name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "Lua";
    p = lua_newuserdata(L, CREDS_AT + sizeof(avl_cred_cache));
    memset((char *)p + CREDS_AT, 0, sizeof(avl_cred_cache));
    if (luaL_newmetatable(L, STATE_MT)) {
        lua_pushcfunction(L, state_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, STATE_MT);
        lua_setfield(L, -2, "__metatable");
    }
    /* the metatable (in the registry) anchors the interned names */
    lua_createtable(L, AVL_F_COUNT, 0);
    avl_keys_init(L, (avl_keys *)((char *)p + KEYS_AT));
    lua_setfield(L, -2, "keys");
    lua_setmetatable(L, -2);
    avl_pool_init(p, lua_name); /* nothing raises from here on */
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* core.abi_client(): the state's pool as an avl_client (include/avalara/abi.h)
 * in a userdata the FFI binding casts to `avl_client *`, so both bindings
 * share one connection cache. The pool lives as long as the module's
 * functions (their upvalue): whoever keeps the userdata keeps one of them. */
int avl_abi_client(lua_State *L) {
    avl_client *c = lua_newuserdata(L, avl_client_size());
    avl_client_over(c, avl_pool_of(L));
    return 1;
}

int avl_transport_stats(lua_State *L) {
    avl_pool *p = avl_pool_of(L);
    const avl_cred_cache *c = avl_creds_of(L);
    lua_Integer n = 0;
    size_t i;
    for (i = 0; i < AVL_CRED_SLOTS; i++)
        n += c->slot[i] != NULL;
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)avl_pool_idle(p));
    lua_setfield(L, -2, "idle_handles");
    lua_pushinteger(L, (lua_Integer)avl_pool_kept_credentials(p));
    lua_setfield(L, -2, "kept_credentials");
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "credentials");
    lua_pushinteger(L, (lua_Integer)avl_secret_set_live());
    lua_setfield(L, -2, "secret_sets");
    return 1;
}
