/*
 * Structured errors (design.md section 6): a plain Lua table with the
 * `avalara.error` metatable, whose __tostring reads the table's own fields
 * (so errors built by the Lua layer print the same way).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "errors.h"
#include "protocol.h"

#define ERROR_MT "avalara.error"
#define REDACTED "[REDACTED]"

static const char *const kinds[] = {
    "transport", "timeout", "tls", "http", "oauth", "api", "quota", "parse", NULL
};

const char *avl_error_kind(const char *name) {
    size_t i;
    if (name == NULL)
        return NULL;
    for (i = 0; kinds[i] != NULL; i++)
        if (strcmp(kinds[i], name) == 0)
            return kinds[i];
    return NULL;
}

void avl_error_init(avl_error *e, const char *kind) {
    memset(e, 0, sizeof *e);
    e->kind = kind != NULL ? kind : "transport";
    e->retry_after = -1;
}

void avl_error_setf(avl_error *e, const char *kind, const char *fmt, ...) {
    va_list ap;
    if (kind != NULL)
        e->kind = kind;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* Copies in[0..n) to out (at most cap bytes, not terminated), replacing
 * every occurrence of a secret. The scan covers the whole input, so a
 * secret straddling the cut is still replaced, never half-copied. */
static size_t redact_copy(char *out, size_t cap, const char *in, size_t n,
                          const char *const *secrets) {
    size_t i = 0, o = 0;
    while (i < n && o < cap) {
        size_t k, matched = 0;
        for (k = 0; secrets != NULL && secrets[k] != NULL; k++) {
            size_t sl = strlen(secrets[k]);
            if (sl > 0 && sl <= n - i && memcmp(in + i, secrets[k], sl) == 0) {
                matched = sl;
                break;
            }
        }
        if (matched > 0) {
            size_t rl = sizeof REDACTED - 1;
            if (rl > cap - o)
                rl = cap - o;
            memcpy(out + o, REDACTED, rl);
            o += rl;
            i += matched;
        } else {
            out[o++] = in[i++];
        }
    }
    return o;
}

void avl_error_free(avl_error *e) {
    if (e->body != NULL) {
        avl_wipe(e->body, e->body_len);
        free(e->body);
        e->body = NULL;
    }
    e->body_len = 0;
}

void avl_error_set_body(avl_error *e, const char *body, size_t n, const char *const *secrets) {
    char *copy;
    size_t len;
    avl_error_free(e);
    if (body == NULL)
        return;
    copy = malloc(AVL_ERROR_BODY_MAX + 1);
    if (copy == NULL)
        return; /* the error stays useful without its body */
    len = redact_copy(copy, AVL_ERROR_BODY_MAX, body, n, secrets);
    copy[len] = '\0';
    e->body = copy;
    e->body_len = len;
}

static void redact_field(char *field, size_t size, const char *const *secrets) {
    char tmp[1024];
    size_t len, cap = size - 1 < sizeof tmp ? size - 1 : sizeof tmp;
    len = redact_copy(tmp, cap, field, strlen(field), secrets);
    memcpy(field, tmp, len);
    field[len] = '\0';
    avl_wipe(tmp, sizeof tmp);
}

void avl_error_redact(avl_error *e, const char *const *secrets) {
    if (secrets == NULL || secrets[0] == NULL)
        return;
    redact_field(e->code, sizeof e->code, secrets);
    redact_field(e->message, sizeof e->message, secrets);
    redact_field(e->request_id, sizeof e->request_id, secrets);
    redact_field(e->error_description, sizeof e->error_description, secrets);
    redact_field(e->error_uri, sizeof e->error_uri, secrets);
    if (e->body != NULL) {
        char *old = e->body;
        size_t old_len = e->body_len;
        e->body = NULL;
        avl_error_set_body(e, old, old_len, secrets);
        avl_wipe(old, old_len);
        free(old);
    }
}

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
        if (e->retry_after == (double)(lua_Integer)e->retry_after)
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

/* "avalara: api error (status 429) RateLimitExceeded: message [request id]" */
static int error_tostring(lua_State *L) {
    luaL_Buffer b;
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "avalara: ");
    lua_getfield(L, 1, "kind");
    luaL_addstring(&b, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "unknown");
    lua_pop(L, 1);
    luaL_addstring(&b, " error");
    lua_getfield(L, 1, "status");
    if (lua_type(L, -1) == LUA_TNUMBER) {
        char num[32];
        snprintf(num, sizeof num, " (status %d)", (int)lua_tonumber(L, -1));
        luaL_addstring(&b, num);
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "code");
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_addchar(&b, ' ');
        luaL_addstring(&b, lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "message");
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_addstring(&b, ": ");
        luaL_addstring(&b, lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "request_id");
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_addstring(&b, " [request id ");
        luaL_addstring(&b, lua_tostring(L, -1));
        luaL_addchar(&b, ']');
    }
    lua_pop(L, 1);
    luaL_pushresult(&b);
    return 1;
}

/* core.error{kind=..., message=..., ...}: gives a Lua-built table the error
 * metatable (for the Lua layer and for transport functions). */
static int error_new(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "kind");
    if (lua_type(L, -1) != LUA_TSTRING || avl_error_kind(lua_tostring(L, -1)) == NULL)
        return luaL_error(L, "core.error: 'kind' must be one of transport, timeout, tls, "
                             "http, oauth, api, quota, parse");
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

void avl_errors_open(lua_State *L) {
    luaL_newmetatable(L, ERROR_MT);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, ERROR_MT);
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    lua_pushcfunction(L, error_new);
    lua_setfield(L, -2, "error");
    lua_pushcfunction(L, error_is);
    lua_setfield(L, -2, "is_error");
}
