/*
 * The module's assembly. Every function of the module is a closure over
 * the same upvalues (upvalues.h). Each concept registers its functions
 * from its own avl_*_open(L, uv), where uv is the stack index of the first
 * upvalue value.
 */
#ifndef AVALARA_CORE_H
#define AVALARA_CORE_H

#include "compat.h"
#include "protocol.h"
#include "upvalues.h"


/* luaL_setfuncs with the module's upvalues into the table on top. */
void avl_setfuncs(lua_State *L, const luaL_Reg *fns, int uv);
/* Registers the metatable tname: its metamethods, `__metatable` = tname
 * (so getmetatable() cannot reach __gc), and `__index` = the methods (NULL:
 * none); every function closes over the module's upvalues. */
void avl_newtype(lua_State *L, const char *tname, const luaL_Reg *meta, const luaL_Reg *methods, int uv);

void avl_errors_open(lua_State *L, int uv);   /* errors.c: avalara.error, core.error, core.is_error */
void avl_request_open(lua_State *L, int uv);  /* request.c: core.request, core.request_many */
void avl_token_open(lua_State *L, int uv);    /* token.c: the avalara.token metatable */
void avl_exchange_open(lua_State *L, int uv); /* exchange.c: the sans-I/O pairs, avalara.exchange */
void avl_multi_open(lua_State *L, int uv);    /* multi.c: core.multi, avalara.multi */
void avl_grants_open(lua_State *L, int uv);   /* grants.c: the grants, revoke, authorize_url, pkce */
void avl_protocol_open(lua_State *L, int uv); /* protocol_lua.c: core.protocol (pure functions) */
void avl_sys_open(lua_State *L, int uv);      /* sys.c: core.sys (private files, lock holders) */

/* errors.c: pushes e as an error table (freeing e's heap parts); returns 1.
 * avl_error_result pushes nil, err and returns 2. */
int avl_error_push(lua_State *L, avl_error *e);
int avl_error_result(lua_State *L, avl_error *e);

#endif
