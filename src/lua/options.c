/*
 * The transport options (transport/options.c) as every call takes them:
 * read from a Lua table, checked, and the `transport` function kept as a
 * registry reference.
 */
#include <stdint.h>
#include <string.h>

#include "lua/fields.h"
#include "lua/transport.h"

#if LUA_NOREF != AVL_NO_REF
#error "AVL_NO_REF must be Lua's LUA_NOREF"
#endif

/* The options are the first names of fields.h, in this order. */
enum { O_TIMEOUT = AVL_F_TIMEOUT, O_CONNECT_TIMEOUT, O_CAFILE, O_CAPATH, O_PROXY, O_USER_AGENT, O_VERIFY,
       O_ALLOW_HTTP, O_MAX_BODY, O_TRANSPORT, O_COUNT };
#define names avl_field_names

int avl_options_lua_transport(const avl_options *o) {
    return o->transport_ref != LUA_NOREF && o->transport_ref != LUA_REFNIL;
}

static int bad(lua_State *L, int i, const char *what, int v) {
    return luaL_error(L, "bad option '%s' (%s expected, got %s)", names[i], what, luaL_typename(L, v));
}

static double seconds(lua_State *L, int i, int v, double dflt) {
    double s;
    if (lua_isnil(L, v))
        return dflt;
    if (lua_type(L, v) != LUA_TNUMBER)
        bad(L, i, "number of seconds", v);
    s = lua_tonumber(L, v);
    if (!(s > 0))
        luaL_error(L, "bad option '%s' (must be > 0)", names[i]);
    return s;
}

static int flag(lua_State *L, int i, int v, int dflt) {
    if (lua_isnil(L, v))
        return dflt;
    if (lua_type(L, v) != LUA_TBOOLEAN)
        bad(L, i, "boolean", v);
    return lua_toboolean(L, v);
}

/* No space, no control character (a URL's bytes go into request lines). */
static int url_chars_ok(const char *s) {
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

void avl_options_read_from(lua_State *L, int idx, avl_options *o, avl_fields present) {
    int base, i;
    double max_body = AVL_DEFAULT_MAX_BODY;
    idx = lua_absindex(L, idx);
    avl_options_init(o);
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "bad options (table expected, got %s)", luaL_typename(L, idx));
    /* Each field once (a table with __index is read as the caller sees it),
     * all checked, before the first copy. */
    avl_checkstack(L, O_COUNT, "options");
    base = lua_gettop(L) + 1;
    for (i = 0; i < O_COUNT; i++)
        avl_getfield(L, idx, i, present);
    o->timeout = seconds(L, O_TIMEOUT, base + O_TIMEOUT, AVL_DEFAULT_TIMEOUT);
    o->connect_timeout = seconds(L, O_CONNECT_TIMEOUT, base + O_CONNECT_TIMEOUT, AVL_DEFAULT_CONNECT_TIMEOUT);
    for (i = O_CAFILE; i <= O_USER_AGENT; i++) {
        size_t n;
        const char *s;
        if (lua_isnil(L, base + i))
            continue;
        if (lua_type(L, base + i) != LUA_TSTRING)
            bad(L, i, "string", base + i);
        s = lua_tolstring(L, base + i, &n);
        if (strlen(s) != n)
            luaL_error(L, "bad option '%s' (must not contain NUL bytes)", names[i]);
        /* sent as a header line (user_agent) or in a proxy's request line
         * and URL (proxy): a CR or LF there would add lines of its own */
        if (i == O_USER_AGENT && !avl_header_value_ok(s, n))
            luaL_error(L, "bad option 'user_agent' (must not contain control characters such as CR or LF)");
        if (i == O_PROXY && !url_chars_ok(s))
            luaL_error(L, "bad option 'proxy' (must not contain spaces or control characters such as CR or LF)");
    }
    o->verify = flag(L, O_VERIFY, base + O_VERIFY, 1);
    o->allow_http = flag(L, O_ALLOW_HTTP, base + O_ALLOW_HTTP, 0);
    if (!lua_isnil(L, base + O_MAX_BODY)) {
        if (lua_type(L, base + O_MAX_BODY) != LUA_TNUMBER)
            bad(L, O_MAX_BODY, "number of bytes", base + O_MAX_BODY);
        max_body = lua_tonumber(L, base + O_MAX_BODY);
        if (!(max_body >= 1 && max_body <= (double)(SIZE_MAX / 2)))
            luaL_error(L, "bad option 'max_body' (must be a positive byte count)");
    }
    o->max_body = (size_t)max_body;
    if (!lua_isnil(L, base + O_TRANSPORT) && lua_type(L, base + O_TRANSPORT) != LUA_TFUNCTION)
        bad(L, O_TRANSPORT, "function", base + O_TRANSPORT);

    /* The reference first: it may raise (out of memory) while nothing is copied. */
    if (!lua_isnil(L, base + O_TRANSPORT)) {
        lua_pushvalue(L, base + O_TRANSPORT);
        o->transport_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    {
        char **slot[] = { &o->cafile, &o->capath, &o->proxy, &o->user_agent };
        for (i = O_CAFILE; i <= O_USER_AGENT; i++) {
            if (lua_isnil(L, base + i))
                continue;
            *slot[i - O_CAFILE] = avl_strndup(lua_tostring(L, base + i), lua_rawlen(L, base + i));
            if (*slot[i - O_CAFILE] == NULL) {
                avl_options_free(L, o);
                luaL_error(L, "out of memory");
            }
        }
    }
    lua_settop(L, base - 1);
}

void avl_options_read(lua_State *L, int idx, avl_options *o) {
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "bad options (table expected, got %s)", luaL_typename(L, idx));
    avl_options_read_from(L, idx, o, avl_fields_of(L, idx));
}

void avl_options_free(lua_State *L, avl_options *o) {
    avl_options_clear(o);
    if (avl_options_lua_transport(o))
        luaL_unref(L, LUA_REGISTRYINDEX, o->transport_ref);
    o->transport_ref = LUA_NOREF;
}

