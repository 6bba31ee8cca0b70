/*
 * Structured errors (docs/design.md section 6) as Lua sees them: a plain table
 * with the `avalara.error` metatable, whose __tostring reads the table's
 * own fields (so errors built by the Lua layer print the same way). The
 * record they are made from is protocol/error_record.c's.
 */
#include <stdio.h>
#include <string.h>

#include "lua/args.h"
#include "lua/error.h"
#include "lua/register.h"
#include "protocol/protocol.h"

#define ERROR_MT "avalara.error"

static void set_string(lua_State *L, const char *field, const char *value) {
    if (value != NULL && value[0] != '\0') {
        lua_pushstring(L, value);
        lua_setfield(L, -2, field);
    }
}

int avl_error_push(lua_State *L, avl_error *e) {
    lua_createtable(L, 0, 12);
    /* The body first: once it is a Lua string the C copy can go, so a later
     * allocation failure cannot leak it. */
    if (e->body != NULL) {
        lua_pushlstring(L, e->body, e->body_len);
        lua_setfield(L, -2, "body");
    }
    avl_error_free(e);
    lua_pushstring(L, e->kind != NULL ? e->kind : "transport");
    lua_setfield(L, -2, "kind");
    if (e->status > 0) {
        lua_pushinteger(L, e->status);
        lua_setfield(L, -2, "status");
    }
    set_string(L, "code", e->code);
    if (e->number > 0) {
        lua_pushinteger(L, e->number);
        lua_setfield(L, -2, "number");
    }
    lua_pushstring(L, e->message[0] != '\0' ? e->message : "unknown error");
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, e->retryable);
    lua_setfield(L, -2, "retryable");
    lua_pushboolean(L, e->needs_refresh);
    lua_setfield(L, -2, "needs_refresh");
    if (e->retry_after >= 0) {
        /* the transport clamps it, so the cast is defined */
        if (e->retry_after <= AVL_RETRY_AFTER_MAX && e->retry_after == (double)(lua_Integer)e->retry_after)
            lua_pushinteger(L, (lua_Integer)e->retry_after);
        else
            lua_pushnumber(L, e->retry_after);
        lua_setfield(L, -2, "retry_after");
    }
    set_string(L, "request_id", e->request_id);
    set_string(L, "error_description", e->error_description);
    set_string(L, "error_uri", e->error_uri);
    luaL_setmetatable(L, ERROR_MT);
    return 1;
}

int avl_error_result(lua_State *L, avl_error *e) {
    lua_pushnil(L);
    avl_error_push(L, e);
    return 2;
}

/* "avalara: api error (status 429) RateLimitExceeded: message [request id]".
 * The pieces are pushed and concatenated once: a luaL_Buffer must not
 * share the stack with the fields read meanwhile. */
static int error_tostring(lua_State *L) {
    int top;
    avl_arg_type(L, 1, 1, LUA_TTABLE, "tostring");
    lua_settop(L, 1);
    avl_checkstack(L, 16, "tostring");
    lua_pushliteral(L, "avalara: ");
    lua_getfield(L, 1, "kind");
    if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushliteral(L, "unknown");
    }
    lua_pushliteral(L, " error");
    lua_getfield(L, 1, "status");
    if (lua_type(L, -1) == LUA_TNUMBER)
        lua_pushfstring(L, " (status %d)", avl_clamp_int(lua_tonumber(L, -1), -1, 9999));
    else
        lua_pushliteral(L, "");
    lua_remove(L, -2);
    top = lua_gettop(L);
    lua_getfield(L, 1, "code");
    if (lua_type(L, -1) == LUA_TSTRING) {
        lua_pushliteral(L, " ");
        lua_insert(L, -2);
    } else {
        lua_settop(L, top);
    }
    top = lua_gettop(L);
    lua_getfield(L, 1, "message");
    if (lua_type(L, -1) == LUA_TSTRING) {
        lua_pushliteral(L, ": ");
        lua_insert(L, -2);
    } else {
        lua_settop(L, top);
    }
    top = lua_gettop(L);
    lua_getfield(L, 1, "request_id");
    if (lua_type(L, -1) == LUA_TSTRING) {
        lua_pushliteral(L, " [request id ");
        lua_insert(L, -2);
        lua_pushliteral(L, "]");
    } else {
        lua_settop(L, top);
    }
    lua_concat(L, lua_gettop(L) - 1);
    return 1;
}

/* core.error{kind=..., message=..., ...}: gives a Lua-built table the error
 * metatable (for the Lua layer and for transport functions). */
static int error_new(lua_State *L) {
    avl_arg_type(L, 1, 1, LUA_TTABLE, "core.error");
    lua_getfield(L, 1, "kind");
    if (lua_type(L, -1) != LUA_TSTRING || avl_error_kind(lua_tostring(L, -1)) == NULL)
        return luaL_error(L, "core.error: 'kind' must be one of transport, timeout, tls, "
                             "http, oauth, api, permission, quota, parse, store, input");
    lua_pop(L, 1);
    lua_getfield(L, 1, "message");
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "core.error: 'message' must be a string");
    lua_pop(L, 1);
    lua_getfield(L, 1, "retryable");
    if (lua_isnil(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, 1, "retryable");
    }
    lua_pop(L, 1);
    lua_settop(L, 1);
    luaL_setmetatable(L, ERROR_MT);
    return 1;
}

static int error_is(lua_State *L) {
    int is = 0;
    if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, ERROR_MT);
        is = lua_rawequal(L, -1, -2);
    }
    lua_pushboolean(L, is);
    return 1;
}

void avl_error_open(lua_State *L, int uv) {
    static const luaL_Reg fns[] = {
        { "error", error_new },
        { "is_error", error_is },
        { NULL, NULL }
    };
    luaL_newmetatable(L, ERROR_MT);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, ERROR_MT);
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, ERROR_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    avl_setfuncs(L, fns, uv);
}
