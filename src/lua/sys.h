/*
 * core.sys (sys.c): the system calls the stores, journals and temporary
 * files need (private files, lock holders).
 */
#ifndef AVALARA_LUA_SYS_H
#define AVALARA_LUA_SYS_H

#include "lua/compat.h"

void avl_sys_open(lua_State *L, int uv);

#endif
