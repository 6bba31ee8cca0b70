/*
 * The `avalara.error` Lua type (error.c): the error record of the protocol
 * layer (protocol/error_record.c) as the plain table Lua sees, and
 * core.error, core.is_error.
 */
#ifndef AVALARA_LUA_ERROR_H
#define AVALARA_LUA_ERROR_H

#include "lua/compat.h"
#include "protocol/protocol.h"

/* Registers the type and core.error, core.is_error. */
void avl_error_open(lua_State *L, int uv);
/* Pushes e as an error table (freeing e's heap parts); returns 1.
 * avl_error_result pushes nil, err and returns 2. */
int avl_error_push(lua_State *L, avl_error *e);
int avl_error_result(lua_State *L, avl_error *e);

#endif
