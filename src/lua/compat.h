/*
 * Lua 5.1 / LuaJIT / 5.2 / 5.3 / 5.4 compatibility, kept in this one header.
 *
 * The core is written against the Lua 5.3/5.4 C API. LuaJIT 2.1 already
 * provides most of the 5.2 auxiliary functions (luaL_setfuncs,
 * luaL_testudata, luaL_setmetatable, luaL_newlib); plain Lua 5.1 has none of
 * them, so they are supplied here as static functions.
 */
#ifndef AVALARA_COMPAT_H
#define AVALARA_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM == 501

#define lua_rawlen(L, i) lua_objlen((L), (i))

static inline int lua_absindex(lua_State *L, int idx) {
    return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}

/* LuaJIT defines luaL_newlib and friends; plain 5.1 does not. */
#ifndef luaL_newlib
static inline void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name != NULL; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

static inline void *luaL_testudata(lua_State *L, int ud, const char *tname) {
    void *p = lua_touserdata(L, ud);
    if (p == NULL || !lua_getmetatable(L, ud))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}

static inline void luaL_setmetatable(lua_State *L, const char *tname) {
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}

#define luaL_newlibtable(L, l) lua_createtable((L), 0, sizeof(l) / sizeof((l)[0]) - 1)
#define luaL_newlib(L, l) (luaL_newlibtable((L), (l)), luaL_setfuncs((L), (l), 0))
#endif /* !luaL_newlib */

#endif /* LUA_VERSION_NUM == 501 */

/* luaL_checkstack, except that a stack that cannot grow for want of memory
 * raises Lua's memory error ("not enough memory"), as every other
 * allocation does, not "stack overflow (msg)": Lua 5.3 and 5.4's
 * lua_checkstack returns 0 for both (5.1 and LuaJIT raise the memory error
 * themselves). The stacks here stay far below Lua's limit, so a failure
 * below it is memory. The error's string is Lua's own, made at
 * lua_newstate: pushing it allocates nothing. */
#define AVL_STACK_SMALL 100000
static inline void avl_checkstack(lua_State *L, int n, const char *msg) {
    if (lua_checkstack(L, n))
        return;
    if (lua_gettop(L) + n < AVL_STACK_SMALL) {
        if (lua_gettop(L) > 0)
            lua_pop(L, 1); /* room for the message; the raise drops the rest anyway */
        lua_pushliteral(L, "not enough memory");
        lua_error(L);
    }
    luaL_checkstack(L, n, msg);
}

#endif
