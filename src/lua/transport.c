/*
 * The transports an exchange runs on, as Lua sees them: libcurl
 * (src/transport/), or a Lua function given as the `transport` option,
 * called with a request table and answering a response table or nil, err.
 * The function is called, and its answer read, inside a protected call:
 * whatever it raises becomes an error value. Its answer is read through
 * the transport layer's receive functions (max_body, header limits).
 */
#include <ctype.h>
#include <string.h>

#include "lua/transport.h"

void avl_push_request(lua_State *L, const avl_options *o, const avl_request *req) {
    size_t i;
    lua_createtable(L, 0, 5);
    lua_pushstring(L, req->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, req->url);
    lua_setfield(L, -2, "url");
    lua_createtable(L, 0, (int)req->nheaders);
    for (i = 0; i < req->nheaders; i++) {
        const char *line = req->headers[i], *colon = strchr(line, ':'), *v;
        if (colon == NULL)
            continue;
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
            ;
        lua_pushlstring(L, line, (size_t)(colon - line));
        lua_pushstring(L, v);
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");
    if (req->body.data != NULL) {
        lua_pushlstring(L, req->body.data, req->body.len);
        lua_setfield(L, -2, "body");
    }
    lua_pushnumber(L, o->timeout);
    lua_setfield(L, -2, "timeout");
}

/* What a protected step works on: it is called as fn(step, value) and
 * sees only its own stack frame, so the value it reads is passed along. */
typedef struct {
    const char *prefix;
    const avl_options *o;
    const avl_request *req;
    avl_response *r;
    avl_error *e;
    int rc;
} lua_step;

/* An err given or raised by the function (argument 2): a table (its kind
 * kept when valid) or a string. Protected: the table may have metamethods. */
static int read_error(lua_State *L) {
    lua_step *s = lua_touserdata(L, 1);
    avl_error *e = s->e;
    if (lua_type(L, 2) == LUA_TTABLE) {
        const char *kind;
        lua_getfield(L, 2, "kind");
        kind = lua_type(L, -1) == LUA_TSTRING ? avl_error_kind(lua_tostring(L, -1)) : NULL;
        lua_getfield(L, 2, "message");
        avl_error_textf(e, &s->req->secrets, kind, "%s%s", s->prefix,
                        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "failed");
        lua_getfield(L, 2, "status");
        if (lua_type(L, -1) == LUA_TNUMBER)
            e->status = avl_clamp_int(lua_tonumber(L, -1), 0, 999);
        lua_getfield(L, 2, "code");
        if (lua_type(L, -1) == LUA_TSTRING)
            avl_error_text(e->code, sizeof e->code, lua_tostring(L, -1), lua_rawlen(L, -1), &s->req->secrets);
        lua_getfield(L, 2, "retryable");
        e->retryable = lua_toboolean(L, -1);
    } else if (lua_type(L, 2) == LUA_TSTRING || lua_type(L, 2) == LUA_TNUMBER) {
        avl_error_textf(e, &s->req->secrets, NULL, "%s%s", s->prefix, lua_tostring(L, 2));
    } else {
        avl_error_setf(e, NULL, "%s%s", s->prefix, luaL_typename(L, 2));
    }
    return 0;
}

/* Reads the response table (argument 2) into s->r. Protected. */
static int read_response(lua_State *L) {
    lua_step *s = lua_touserdata(L, 1);
    avl_receive c;
    avl_receive_init(&c, s->r, s->o, s->req);
    lua_getfield(L, 2, "status");
    s->r->status = lua_type(L, -1) == LUA_TNUMBER ? avl_clamp_int(lua_tonumber(L, -1), 0, 1000) : 0;
    lua_getfield(L, 2, "headers");
    if (lua_type(L, -1) == LUA_TTABLE) {
        int headers = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, headers) != 0) {
            if (lua_type(L, -2) == LUA_TSTRING &&
                (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)) {
                size_t nl, vl;
                const char *name = lua_tolstring(L, -2, &nl), *value;
                lua_pushvalue(L, -1); /* converting a copy keeps the table intact */
                value = lua_tolstring(L, -1, &vl);
                if (strpbrk(name, "\r\n") == NULL && avl_receive_header(&c, name, nl, value, vl) != 0) {
                    lua_settop(L, headers);
                    break;
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    }
    lua_getfield(L, 2, "body");
    if (lua_type(L, -1) == LUA_TSTRING && !avl_receive_stopped(&c)) {
        size_t n;
        const char *b = lua_tolstring(L, -1, &n);
        avl_receive_body(&c, b, n);
    }
    if (s->r->status < 100 || s->r->status > 999)
        avl_error_setf(s->e, "transport", "transport function returned no valid status");
    else
        s->rc = avl_receive_end(&c, s->req, s->r, s->e);
    return 0;
}

/* fn(s, value at idx) in a protected call (idx 0: no value). On a raise
 * the raised value is read, protected too, into s->e after `what`. In Lua
 * 5.1 and LuaJIT, pushing fn allocates a closure: only running out of
 * memory there can still raise. */
static void protected_step(lua_State *L, lua_CFunction fn, lua_step *s, int idx, const char *what) {
    int top = lua_gettop(L), nargs = idx != 0 ? 2 : 1;
    if (!lua_checkstack(L, 4)) {
        avl_error_nomem(s->e);
        s->rc = -1;
        return;
    }
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, s);
    if (idx != 0)
        lua_pushvalue(L, idx);
    if (lua_pcall(L, nargs, 0, 0) != 0) {
        lua_step es = *s;
        es.prefix = what;
        avl_error_init(s->e, "transport");
        lua_pushcfunction(L, read_error);
        lua_insert(L, -2);
        lua_pushlightuserdata(L, &es);
        lua_insert(L, -2);
        if (lua_pcall(L, 2, 0, 0) != 0)
            avl_error_setf(s->e, "transport", "%san error value that cannot be read", what);
        s->rc = -1;
    }
    lua_settop(L, top);
}

static void step_init(lua_step *s, const avl_options *o, const avl_request *req, avl_response *r, avl_error *e) {
    memset(s, 0, sizeof *s);
    s->o = o;
    s->req = req;
    s->r = r;
    s->e = e;
    s->rc = -1;
    avl_error_init(e, "transport");
}

int avl_transport_take(lua_State *L, int idx, const avl_options *o, const avl_request *req,
                       avl_response *r, avl_error *e) {
    lua_step s;
    idx = lua_absindex(L, idx);
    step_init(&s, o, req, r, e);
    if (lua_type(L, idx) == LUA_TTABLE) {
        protected_step(L, read_response, &s, idx, "transport function's response could not be read: ");
    } else if (lua_isnil(L, idx) && lua_isnoneornil(L, idx + 1)) {
        avl_error_setf(e, "transport", "transport function returned no response");
    } else {
        s.prefix = "";
        protected_step(L, read_error, &s, lua_isnil(L, idx) ? idx + 1 : idx,
                       "transport function's error could not be read: ");
        s.rc = -1;
    }
    return s.rc;
}

/* Calls the transport function with the request table, then takes its
 * answer. Protected. */
static int call_transport(lua_State *L) {
    lua_step *s = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->o->transport_ref);
    avl_push_request(L, s->o, s->req);
    lua_call(L, 1, 2);
    s->rc = avl_transport_take(L, -2, s->o, s->req, s->r, s->e);
    return 0;
}

static int lua_perform(lua_State *L, const avl_options *o, const avl_request *req,
                       avl_response *r, avl_error *e) {
    lua_step s;
    step_init(&s, o, req, r, e);
    if (avl_request_check(req, e) != 0)
        return -1;
    protected_step(L, call_transport, &s, 0, "transport function raised: ");
    return s.rc;
}

/* ------------------------------------------------------------- perform(s) */

int avl_transport_perform(lua_State *L, avl_pool *p, const avl_options *o, const avl_request *req,
                          avl_response *r, avl_error *e) {
    if (avl_options_lua_transport(o))
        return lua_perform(L, o, req, r, e);
    return avl_curl_perform(p, o, req, r, e);
}

void avl_transport_perform_many(lua_State *L, avl_pool *p, const avl_options *o, avl_transfer *items,
                                size_t n, int concurrency) {
    size_t i;
    if (!avl_options_lua_transport(o)) {
        avl_curl_perform_many(p, o, items, n, concurrency);
        return;
    }
    /* A Lua transport runs one call at a time. */
    for (i = 0; i < n; i++)
        items[i].failed = lua_perform(L, o, items[i].req, &items[i].resp, &items[i].err) != 0;
}

/* ---------------------------------------------------------------- headers */

void avl_push_headers(lua_State *L, const avl_response *r) {
    const char *p = r->headers.data, *end = p != NULL ? p + r->headers.len : NULL;
    lua_createtable(L, 0, 8);
    while (p != NULL && p < end) {
        const char *eol = strstr(p, "\r\n"), *colon;
        if (eol == NULL)
            eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL) {
            char name[128];
            const char *v;
            size_t i, nl = (size_t)(colon - p);
            if (nl < sizeof name) { /* names are short: lower-cased on the C stack */
                for (i = 0; i < nl; i++)
                    name[i] = (char)tolower((unsigned char)p[i]);
                lua_pushlstring(L, name, nl);
            } else {
                luaL_Buffer b;
                luaL_buffinit(L, &b);
                for (i = 0; i < nl; i++)
                    luaL_addchar(&b, (char)tolower((unsigned char)p[i]));
                luaL_pushresult(&b);
            }
            for (v = colon + 1; v < eol && *v == ' '; v++)
                ;
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(eol - v));
            } else {
                /* Repeated header: join as RFC 9110 section 5.3 allows. */
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(eol - v));
                lua_concat(L, 3);
            }
            lua_rawset(L, -3);
        }
        p = eol + 2;
    }
}
