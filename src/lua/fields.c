/*
 * Named fields read cheaply (fields.h).
 */
#include "lua/fields.h"

const char *const avl_field_names[AVL_F_COUNT] = {
    "timeout", "connect_timeout", "cafile", "capath", "proxy", "user_agent", "verify", "allow_http",
    "max_body", "transport", "method", "url", "token", "authorization", "headers", "body",
    "response_headers"
};

#define ALL_FIELDS ((avl_fields)((1UL << AVL_F_COUNT) - 1))

void avl_keys_init(lua_State *L, avl_keys *k) {
    int i, t = lua_gettop(L);
    for (i = 0; i < AVL_F_COUNT; i++) {
        lua_pushstring(L, avl_field_names[i]);
        k->key[i] = lua_tostring(L, -1);
        lua_rawseti(L, t, i + 1);
    }
}

avl_fields avl_fields_of(lua_State *L, int idx) {
    const avl_keys *k = avl_keys_of(L);
    avl_fields found = 0;
    int i;
    if (k == NULL || !lua_checkstack(L, 3))
        return ALL_FIELDS;
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        return ALL_FIELDS;
    }
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *s = lua_tostring(L, -2);
            for (i = 0; i < AVL_F_COUNT; i++)
                if (s == k->key[i]) {
                    found |= 1UL << i;
                    break;
                }
        }
        lua_pop(L, 1);
    }
    return found;
}

void avl_getfield(lua_State *L, int idx, int f, avl_fields present) {
    if (present & (1UL << f))
        lua_getfield(L, idx, avl_field_names[f]);
    else
        lua_pushnil(L);
}
