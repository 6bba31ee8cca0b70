/*
 * Registering functions and types. Every function of the module is a
 * closure over the same upvalues (upvalues.h), set up once by
 * luaopen_avalara_core (core.c). Each binding file registers its functions
 * from its own avl_*_open(L, uv) (declared in its header), where uv is the
 * stack index of the first upvalue value.
 */
#ifndef AVALARA_LUA_REGISTER_H
#define AVALARA_LUA_REGISTER_H

#include "lua/compat.h"
#include "lua/upvalues.h"

/* luaL_setfuncs with the module's upvalues into the table on top. */
void avl_setfuncs(lua_State *L, const luaL_Reg *fns, int uv);
/* Registers the metatable tname: its metamethods, `__metatable` = tname
 * (so getmetatable() cannot reach __gc), and `__index` = the methods (NULL:
 * none); every function closes over the module's upvalues. */
void avl_newtype(lua_State *L, const char *tname, const luaL_Reg *meta, const luaL_Reg *methods, int uv);

#endif
