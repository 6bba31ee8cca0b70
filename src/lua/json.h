/*
 * JSON to Lua values in one pass (json.c), on the protocol layer's
 * scanner.
 */
#ifndef AVALARA_JSON_LUA_H
#define AVALARA_JSON_LUA_H

#include <stddef.h>

#include "lua/compat.h"

/* Pushes the value s[0..n) holds: 0; or -1 with a reason in err (nothing
 * pushed). flags as for avl_json_parse; nesting is limited to max_depth
 * levels (at most, and for 0, 1000). */
int avl_json_push(lua_State *L, const char *s, size_t n, int flags, int max_depth, char *err,
                  size_t err_size);

/* Pushes the JSON encoder of the state (the `encode` of the module `cjson`;
 * the first call looks it up: registry._LOADED.cjson, i.e. package.loaded
 * or luaL_requiref, then `require "cjson"` when the state has `require`)
 * and caches it in the table at upvalue AVL_UV_ENCODE. Raises, naming the
 * ways to provide one, when there is none; label prefixes the message. */
void avl_json_encoder(lua_State *L, const char *label);

#endif
