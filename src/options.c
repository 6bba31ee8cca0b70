/*
 * The transport options every call takes (docs/design.md section 5), and the
 * URL policy that keeps credentials off clear-text links.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "transport.h"

enum { O_TIMEOUT, O_CONNECT_TIMEOUT, O_CAFILE, O_CAPATH, O_PROXY, O_USER_AGENT, O_VERIFY,
       O_ALLOW_HTTP, O_MAX_BODY, O_TRANSPORT, O_COUNT };
static const char *const names[O_COUNT] = {
    "timeout", "connect_timeout", "cafile", "capath", "proxy", "user_agent", "verify",
    "allow_http", "max_body", "transport"
};

void avl_options_init(avl_options *o) {
    memset(o, 0, sizeof *o);
    o->timeout = AVL_DEFAULT_TIMEOUT;
    o->connect_timeout = AVL_DEFAULT_CONNECT_TIMEOUT;
    o->verify = 1;
    o->max_body = AVL_DEFAULT_MAX_BODY;
    o->transport_ref = LUA_NOREF;
}

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

void avl_options_read(lua_State *L, int idx, avl_options *o) {
    int base, i;
    double max_body = AVL_DEFAULT_MAX_BODY;
    idx = lua_absindex(L, idx);
    avl_options_init(o);
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "bad options (table expected, got %s)", luaL_typename(L, idx));
    /* Each field once (a table with __index is read as the caller sees it),
     * all checked, before the first copy. */
    luaL_checkstack(L, O_COUNT, "options");
    base = lua_gettop(L) + 1;
    for (i = 0; i < O_COUNT; i++)
        lua_getfield(L, idx, names[i]);
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

void avl_options_free(lua_State *L, avl_options *o) {
    avl_free_secret(&o->cafile);
    avl_free_secret(&o->capath);
    avl_free_secret(&o->proxy);
    avl_free_secret(&o->user_agent);
    if (avl_options_lua_transport(o))
        luaL_unref(L, LUA_REGISTRYINDEX, o->transport_ref);
    o->transport_ref = LUA_NOREF;
}

/* ------------------------------------------------------------ URL policy */

static int ieq_prefix(const char *s, const char *prefix) {
    for (; *prefix != '\0'; s++, prefix++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != *prefix)
            return 0;
    }
    return 1;
}

/* host[0..n) is a dotted quad in 127.0.0.0/8. */
static int ipv4_loopback(const char *host, size_t n) {
    size_t i = 0;
    int part;
    for (part = 0; part < 4; part++) {
        unsigned v = 0, digits = 0;
        while (i < n && host[i] >= '0' && host[i] <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(host[i++] - '0');
            digits++;
        }
        if (digits == 0 || digits > 3 || v > 255 || (part == 0 && v != 127))
            return 0;
        if (part < 3 && (i >= n || host[i++] != '.'))
            return 0;
    }
    return i == n;
}

/* host[0..n) is a loopback name or address. */
static int loopback(const char *host, size_t n) {
    if ((n == 5 && memcmp(host, "[::1]", 5) == 0) ||
        ((n == 9 || (n == 10 && host[9] == '.')) && ieq_prefix(host, "localhost")))
        return 1;
    return ipv4_loopback(host, n);
}

int avl_url_allowed(const char *url, int allow_http, char *why, size_t why_size) {
    const char *host, *end, *at;
    if (ieq_prefix(url, "https://"))
        return 0;
    if (!ieq_prefix(url, "http://")) {
        snprintf(why, why_size, "must be an http:// or https:// URL");
        return -1;
    }
    if (allow_http)
        return 0;
    host = url + 7;
    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(end - host));
    if (at != NULL)
        host = at + 1;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        end = close != NULL ? close + 1 : end;
    } else {
        const char *colon = memchr(host, ':', (size_t)(end - host));
        if (colon != NULL)
            end = colon;
    }
    if (loopback(host, (size_t)(end - host)))
        return 0;
    snprintf(why, why_size, "is plain http:// to a host that is not loopback: credentials would travel "
                            "in clear text (use https://, or pass allow_http = true)");
    return -1;
}
