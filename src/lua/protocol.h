/*
 * core.protocol (protocol.c): the sans-I/O protocol functions of
 * src/protocol/ as pure Lua functions.
 */
#ifndef AVALARA_LUA_PROTOCOL_H
#define AVALARA_LUA_PROTOCOL_H

#include "lua/compat.h"

void avl_protocol_open(lua_State *L, int uv);

#endif
