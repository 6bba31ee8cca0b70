/*
 * core.multi and the `avalara.multi` Lua type (multi.c): many exchanges
 * on the transport's engine, driven by the host's loop.
 */
#ifndef AVALARA_LUA_MULTI_H
#define AVALARA_LUA_MULTI_H

#include "lua/compat.h"

void avl_multi_open(lua_State *L, int uv);

#endif
