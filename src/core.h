/*
 * The module's assembly. Every function of the module is a closure over
 * the same upvalues (set up once by luaopen_avalara_core), so no call
 * looks anything up in the registry or `require`s:
 *
 *   AVL_UV_STATE   the state userdata: the libcurl pool (transport.c)
 *   AVL_UV_DECODE  cjson.decode
 *   AVL_UV_ENCODE  cjson.encode
 *
 * Each concept registers its functions from its own avl_*_open(L, uv),
 * where uv is the stack index of the first upvalue value.
 */
#ifndef AVALARA_CORE_H
#define AVALARA_CORE_H

#include "compat.h"
#include "protocol.h"

#define AVL_UV_STATE 1
#define AVL_UV_DECODE 2
#define AVL_UV_ENCODE 3
#define AVL_NUPVALUES 3

/* luaL_setfuncs with the module's upvalues into the table on top. */
void avl_setfuncs(lua_State *L, const luaL_Reg *fns, int uv);

void avl_errors_open(lua_State *L, int uv);   /* errors.c: avalara.error, core.error, core.is_error */
void avl_request_open(lua_State *L, int uv);  /* request.c: core.request, core.request_many */
void avl_token_open(lua_State *L, int uv);    /* token.c: the avalara.token metatable */
void avl_exchange_open(lua_State *L, int uv); /* exchange.c: the sans-I/O pairs, avalara.exchange */
void avl_grants_open(lua_State *L, int uv);   /* grants.c: the grants, revoke, authorize_url, pkce */
void avl_protocol_open(lua_State *L, int uv); /* protocol_lua.c: core.protocol (pure functions) */

/* errors.c: pushes e as an error table (freeing e's heap parts); returns 1.
 * avl_error_result pushes nil, err and returns 2. */
int avl_error_push(lua_State *L, avl_error *e);
int avl_error_result(lua_State *L, avl_error *e);

#endif
