/*
 * Each concept registers its functions into the module table on top of the
 * stack from its own avl_*_open (called by luaopen_avalara_core, in order).
 */
#ifndef AVALARA_CORE_H
#define AVALARA_CORE_H

#include "compat.h"

void avl_errors_open(lua_State *L);    /* errors.c: avalara.error metatable */
void avl_transport_open(lua_State *L); /* transport.c: curl_global_init, handle pool */
void avl_request_open(lua_State *L);   /* request.c: core.request, core.request_many */
void avl_token_open(lua_State *L);     /* token.c: avalara.token metatable */
void avl_grants_open(lua_State *L);    /* grants.c: the grants, revoke, authorize_url, pkce */
void avl_protocol_open(lua_State *L);  /* protocol_lua.c: core.protocol (pure functions, for specs and tools) */

#endif
