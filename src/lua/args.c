/*
 * Argument checks naming the function, and the shared value helpers
 * (see args.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lua/args.h"
#include "protocol/protocol.h"

int avl_arg_error(lua_State *L, int n, const char *fn, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n == 0)
        return luaL_error(L, "bad self to '%s' (%s)", fn, msg);
    return luaL_error(L, "bad argument #%d to '%s' (%s)", n, fn, msg);
}

void avl_arg_type(lua_State *L, int idx, int n, int type, const char *fn) {
    if (lua_type(L, idx) != type)
        avl_arg_error(L, n, fn, "%s expected, got %s", lua_typename(L, type), luaL_typename(L, idx));
}

const char *avl_arg_string(lua_State *L, int idx, int n, const char *fn, size_t *len) {
    int t = lua_type(L, idx);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        avl_arg_error(L, n, fn, "string expected, got %s", luaL_typename(L, idx));
    return lua_tolstring(L, idx, len);
}

void *avl_arg_udata(lua_State *L, int idx, int n, const char *tname, const char *fn) {
    void *p = luaL_testudata(L, idx, tname);
    if (p == NULL)
        avl_arg_error(L, n, fn, "%s expected, got %s", tname, luaL_typename(L, idx));
    return p;
}

char *avl_dup_or_raise(lua_State *L, const char *s) {
    char *c;
    if (s == NULL)
        return NULL;
    c = avl_strndup(s, strlen(s));
    if (c == NULL)
        luaL_error(L, "out of memory");
    return c;
}

int avl_push_opt(lua_State *L, const char *s) {
    if (s != NULL)
        lua_pushstring(L, s);
    else
        lua_pushnil(L);
    return 1;
}

void avl_set_string(lua_State *L, const char *k, const char *v) {
    if (v == NULL)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

lua_Integer avl_whole(double x) {
    const double lim = 9007199254740992.0;
    lua_Integer i;
    if (!(x > -lim))
        x = -lim; /* NaN too */
    else if (x > lim)
        x = lim;
    i = (lua_Integer)x; /* toward zero */
    return (double)i > x ? i - 1 : i;
}
