/*
 * The named fields the core reads from a request or options table on every
 * call, looked up cheaply (issue 27): one lua_next walk over a table without
 * a metatable tells which of them are there, matching each key by its
 * interned string (the same key string is the same object: Lua 5.1 and
 * LuaJIT intern every string, 5.2+ every short one, and every name here is
 * short), so lua_getfield runs only for the fields present; an absent one is
 * a nil pushed. A table with a metatable is read field by field as before
 * (its __index sees every name).
 */
#ifndef AVALARA_FIELDS_H
#define AVALARA_FIELDS_H

#include "lua/compat.h"

enum {
    AVL_F_TIMEOUT, AVL_F_CONNECT_TIMEOUT, AVL_F_CAFILE, AVL_F_CAPATH, AVL_F_PROXY, AVL_F_USER_AGENT,
    AVL_F_VERIFY, AVL_F_ALLOW_HTTP, AVL_F_MAX_BODY, AVL_F_TRANSPORT,
    AVL_F_METHOD, AVL_F_URL, AVL_F_TOKEN, AVL_F_AUTHORIZATION, AVL_F_HEADERS, AVL_F_BODY,
    AVL_F_RESPONSE_HEADERS,
    AVL_F_COUNT
};

/* Which fields a table has: a bit per AVL_F_* name. */
typedef unsigned long avl_fields;

/* The names, by AVL_F_*. */
extern const char *const avl_field_names[AVL_F_COUNT];

/* The interned names of one Lua state, kept in the state userdata
 * (state.c), which anchors the strings. */
typedef struct {
    const char *key[AVL_F_COUNT];
} avl_keys;

/* The interned names of the state (state.c), or NULL when the running
 * function is not the module's (no state upvalue). */
const avl_keys *avl_keys_of(lua_State *L);
/* Interns the names into k, anchored in the table at the stack top. */
void avl_keys_init(lua_State *L, avl_keys *k);
/* The fields of the table at idx that may be there: those found by one walk
 * (no metatable), else all. */
avl_fields avl_fields_of(lua_State *L, int idx);
/* Pushes field f of the table at idx: lua_getfield when `present` may have
 * it, else nil. */
void avl_getfield(lua_State *L, int idx, int f, avl_fields present);

#endif
