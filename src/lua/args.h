/*
 * Argument checks that name the function and the argument on every Lua.
 * luaL_argerror finds the name from the call site, which LuaJIT cannot do
 * for a tail call or a method (it prints '?' and counts self): these take
 * the name and the number the caller sees ("token:is_expired", #1 for the
 * first argument after self).
 *
 * Also the few value helpers every binding file would otherwise copy.
 */
#ifndef AVALARA_ARGS_H
#define AVALARA_ARGS_H

#include "lua/compat.h"

/* Raises "bad argument #n to 'fn' (<message>)"; n 0 means self. */
int avl_arg_error(lua_State *L, int n, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Raises unless the value at idx has the type (shown as argument n). */
void avl_arg_type(lua_State *L, int idx, int n, int type, const char *fn);
/* A string (or number) at idx; raises otherwise. */
const char *avl_arg_string(lua_State *L, int idx, int n, const char *fn, size_t *len);
/* The userdata of metatable tname at idx; raises otherwise. */
void *avl_arg_udata(lua_State *L, int idx, int n, const char *tname, const char *fn);

/* A malloc'd copy of s (NULL for NULL); raises "out of memory". */
char *avl_dup_or_raise(lua_State *L, const char *s);
/* Pushes s, or nil for NULL; returns 1. */
int avl_push_opt(lua_State *L, const char *s);
/* t[k] = v for the table on top, unless v is NULL. */
void avl_set_string(lua_State *L, const char *k, const char *v);
/* floor(x) as an integer, clamped to +-2^53 (converting a double beyond
 * the integer range is undefined, and no time needs more); NaN is -2^53.
 * No libm. */
lua_Integer avl_whole(double x);

#endif
