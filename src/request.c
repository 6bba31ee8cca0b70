/*
 * core.request and core.request_many: authenticated JSON calls to the API.
 *
 * Everything a call allocates hangs off one "call" userdata whose __gc
 * frees it, so a programming error raised halfway through the arguments
 * leaks nothing; on the normal path the call is released before returning.
 * Response classification (design.md section 6):
 *   2xx: JSON decoded with lua-cjson (null stays cjson.null), empty -> nil,
 *        anything else -> kind "parse";
 *   AvaTax error bodies: AuthenticationIncomplete / BearerTokenInvalid ->
 *        "oauth" with needs_refresh, RequestLimitExceeded -> "quota",
 *        others -> "api";
 *   RFC 6750 bodies ({"error":"invalid_token"}) -> "oauth";
 *   anything else (HTML, empty, truncated) -> "http".
 * 408, 429 and 5xx are retryable (never a quota or oauth error); any 401
 * sets needs_refresh.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "errors.h"
#include "protocol.h"
#include "token.h"
#include "transport.h"

#define CALL_MT "avalara.request.call"
#define DEFAULT_CONCURRENCY 8
#define MAX_CONCURRENCY 64

typedef struct {
    avl_http_request req;   /* points into the fields below */
    char *method;
    char *url;
    char **headers;         /* NULL-terminated "Name: value" lines; one may carry the credential */
    size_t nheaders;
    char *body;
    size_t body_len;
    char *secret_full;      /* the Authorization value */
    char *secret_cred;      /* its credential part, after the scheme */
    const char *secrets[3];
} prepared;

typedef struct {
    size_t n;
    prepared *reqs;
    avl_transfer *items;
    int has_opts;
    avl_options opts;
} call;

/* ------------------------------------------------------------ call state */

static void free_prepared(prepared *p) {
    size_t i;
    free(p->method);
    free(p->url);
    for (i = 0; p->headers != NULL && i < p->nheaders; i++)
        avl_free_secret(&p->headers[i]);
    free(p->headers);
    if (p->body != NULL) {
        avl_wipe(p->body, p->body_len);
        free(p->body);
    }
    avl_free_secret(&p->secret_full);
    avl_free_secret(&p->secret_cred);
    memset(p, 0, sizeof *p);
}

static int call_gc(lua_State *L) {
    call *c = luaL_checkudata(L, 1, CALL_MT);
    size_t i;
    for (i = 0; i < c->n; i++) {
        if (c->reqs != NULL)
            free_prepared(&c->reqs[i]);
        if (c->items != NULL) {
            avl_http_response_free(&c->items[i].resp);
            avl_error_free(&c->items[i].err);
        }
    }
    free(c->reqs);
    free(c->items);
    c->reqs = NULL;
    c->items = NULL;
    c->n = 0;
    if (c->has_opts)
        avl_options_free(L, &c->opts);
    c->has_opts = 0;
    return 0;
}

/* Pushes a call for n requests; raises on OOM (nothing to leak yet). */
static call *call_push(lua_State *L, size_t n) {
    call *c = lua_newuserdata(L, sizeof *c);
    size_t i;
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CALL_MT);
    c->reqs = calloc(n > 0 ? n : 1, sizeof *c->reqs);
    c->items = calloc(n > 0 ? n : 1, sizeof *c->items);
    if (c->reqs == NULL || c->items == NULL)
        luaL_error(L, "out of memory");
    c->n = n;
    for (i = 0; i < n; i++) {
        avl_http_response_init(&c->items[i].resp);
        avl_error_init(&c->items[i].err, "transport");
        c->items[i].req = &c->reqs[i].req;
    }
    return c;
}

/* -------------------------------------------------------------- prepare */

static char *dup_or_raise(lua_State *L, const char *s, size_t n) {
    char *d = avl_strndup(s, n);
    if (d == NULL)
        luaL_error(L, "out of memory");
    return d;
}

static int has_crlf(const char *s, size_t n) {
    return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL || memchr(s, '\0', n) != NULL;
}

static int ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

static void add_line(lua_State *L, prepared *p, const char *name, const char *value, size_t vl) {
    avl_buf b;
    avl_buf_init(&b);
    if (avl_buf_appendz(&b, name) != 0 || avl_buf_append(&b, ": ", 2) != 0 ||
        avl_buf_append(&b, value, vl) != 0) {
        avl_buf_free(&b);
        luaL_error(L, "out of memory");
    }
    p->headers[p->nheaders++] = b.data;
}

/* The Authorization value: "<scheme> <value>", or value itself when scheme is NULL. */
static void set_credential(lua_State *L, prepared *p, const char *scheme, const char *value,
                           size_t n, const char *label) {
    const char *sp;
    avl_buf b;
    if (n == 0 || has_crlf(value, n))
        luaL_error(L, "%sthe credential is empty or holds a line break", label);
    avl_buf_init(&b);
    if ((scheme != NULL && (avl_buf_appendz(&b, scheme) != 0 || avl_buf_putc(&b, ' ') != 0)) ||
        avl_buf_append(&b, value, n) != 0) {
        avl_buf_free(&b);
        luaL_error(L, "out of memory");
    }
    p->secret_full = b.data;
    sp = strchr(p->secret_full, ' ');
    p->secret_cred = sp != NULL ? dup_or_raise(L, sp + 1, strlen(sp + 1)) : NULL;
    p->secrets[0] = p->secret_full;
    p->secrets[1] = p->secret_cred;
    p->secrets[2] = NULL;
}

/* cjson.encode(value) -> string on the stack top. Raises on unencodable values. */
static void json_encode(lua_State *L, int idx, const char *label) {
    idx = lua_absindex(L, idx);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "encode");
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != 0)
        luaL_error(L, "%s'body' cannot be encoded as JSON: %s", label,
                   lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
    lua_remove(L, -2);
}

/* Reads one request table at idx into p; raises on bad arguments, naming them. */
static void prepare(lua_State *L, int idx, prepared *p, const char *label) {
    size_t n;
    const char *s;
    int has_accept = 0, has_ctype = 0, has_body = 0;
    idx = lua_absindex(L, idx);

    lua_getfield(L, idx, "method");
    if (lua_isnil(L, -1)) {
        p->method = dup_or_raise(L, "GET", 3);
    } else {
        size_t i;
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s'method' must be a string (got %s)", label, luaL_typename(L, -1));
        s = lua_tolstring(L, -1, &n);
        for (i = 0; i < n; i++)
            if (!isalpha((unsigned char)s[i]))
                break;
        if (n == 0 || i < n)
            luaL_error(L, "%s'method' must be an HTTP method name", label);
        p->method = dup_or_raise(L, s, n);
        for (i = 0; i < n; i++)
            p->method[i] = (char)toupper((unsigned char)p->method[i]);
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "url");
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "%s'url' must be a string (got %s)", label, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &n);
    p->url = dup_or_raise(L, s, n);
    lua_pop(L, 1);

    /* Room for every user header plus Accept, Content-Type, Authorization. */
    lua_getfield(L, idx, "headers");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TTABLE)
        luaL_error(L, "%s'headers' must be a table (got %s)", label, luaL_typename(L, -1));
    n = 0;
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            n++;
            lua_pop(L, 1);
        }
    }
    p->headers = calloc(n + 4, sizeof *p->headers);
    if (p->headers == NULL)
        luaL_error(L, "out of memory");

    /* The credential: token userdata, token string, or authorization value. */
    lua_getfield(L, idx, "token");
    if (lua_isuserdata(L, -1)) {
        const char *auth = avl_token_authorization(L, -1);
        set_credential(L, p, NULL, auth, strlen(auth), label);
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        s = lua_tolstring(L, -1, &n);
        set_credential(L, p, "Bearer", s, n, label);
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "%s'token' must be a token or a string (got %s)", label, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    if (p->secret_full == NULL) {
        lua_getfield(L, idx, "authorization");
        if (lua_type(L, -1) == LUA_TSTRING) {
            s = lua_tolstring(L, -1, &n);
            set_credential(L, p, NULL, s, n, label);
        } else if (!lua_isnil(L, -1)) {
            luaL_error(L, "%s'authorization' must be a string (got %s)", label, luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }

    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            size_t nl, vl;
            const char *name, *value;
            if (lua_type(L, -2) != LUA_TSTRING ||
                (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
                luaL_error(L, "%s'headers' must map names to string values", label);
            name = lua_tolstring(L, -2, &nl);
            lua_pushvalue(L, -1);
            value = lua_tolstring(L, -1, &vl);
            if (nl == 0 || has_crlf(name, nl) || strpbrk(name, ": \t") != NULL || has_crlf(value, vl))
                luaL_error(L, "%sbad header name or value for '%s'", label, name);
            if (ieq(name, "Authorization")) {
                if (p->secret_full == NULL)
                    set_credential(L, p, NULL, value, vl, label);
            } else {
                has_accept |= ieq(name, "Accept");
                has_ctype |= ieq(name, "Content-Type");
                add_line(L, p, name, value, vl);
            }
            lua_pop(L, 2);
        }
    }
    lua_pop(L, 1);
    if (p->secret_full != NULL)
        add_line(L, p, "Authorization", p->secret_full, strlen(p->secret_full));
    if (!has_accept)
        add_line(L, p, "Accept", "application/json", 16);

    lua_getfield(L, idx, "body");
    if (lua_istable(L, -1)) {
        json_encode(L, -1, label);
        lua_remove(L, -2);
    } else if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) {
        luaL_error(L, "%s'body' must be a table or a string (got %s)", label, luaL_typename(L, -1));
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
        s = lua_tolstring(L, -1, &n);
        p->body = malloc(n + 1);
        if (p->body == NULL)
            luaL_error(L, "out of memory");
        memcpy(p->body, s, n);
        p->body[n] = '\0';
        p->body_len = n;
        has_body = 1;
    }
    lua_pop(L, 1);
    if (has_body && !has_ctype)
        add_line(L, p, "Content-Type", "application/json", 16);

    p->req.method = p->method;
    p->req.url = p->url;
    p->req.headers = (const char *const *)p->headers;
    p->req.body = p->body;
    p->req.body_len = p->body_len;
    p->req.secrets = p->secrets;
}

/* ------------------------------------------------------------- outcome */

#if LUA_VERSION_NUM >= 503
/* lua-cjson decodes every number as a float; integral ones become
 * integers so ids and counts print as 1001, not 1001.0. */
static void integerize(lua_State *L, int idx, int depth) {
    if (depth > 1000 || !lua_checkstack(L, 3))
        return;
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
            double d = lua_tonumber(L, -1);
            if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(lua_Integer)d) {
                lua_pushvalue(L, -2);
                lua_pushinteger(L, (lua_Integer)d);
                lua_rawset(L, idx);
            }
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            integerize(L, -1, depth + 1);
        }
        lua_pop(L, 1);
    }
}
#endif

static int is_blank(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

static void copy_field(char *dst, size_t size, const char *src) {
    size_t n = src != NULL ? strlen(src) : 0;
    if (n >= size)
        n = size - 1;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* kind "oauth" from an RFC 6750 body {"error":"invalid_token",...}: 0 when it is one. */
static int bearer_error(const avl_http_response *r, avl_error *e) {
    avl_json *root = avl_json_parse(r->body.data, r->body.len, AVL_JSON_TRAILING_COMMA, NULL, 0);
    const char *code = avl_json_string(root, "error");
    if (code == NULL) {
        avl_json_free(root);
        return -1;
    }
    e->kind = "oauth";
    copy_field(e->code, sizeof e->code, code);
    copy_field(e->error_description, sizeof e->error_description,
               avl_json_string(root, "error_description"));
    copy_field(e->error_uri, sizeof e->error_uri, avl_json_string(root, "error_uri"));
    avl_error_setf(e, NULL, "%s", e->error_description[0] != '\0' ? e->error_description : code);
    avl_json_free(root);
    return 0;
}

/* Maps a non-2xx response to e. */
static void map_status(const prepared *p, const avl_http_response *r, avl_error *e) {
    avl_api_error api;
    int s = r->status;
    avl_error_init(e, "http");
    e->status = s;
    e->retry_after = r->retry_after;
    copy_field(e->request_id, sizeof e->request_id, r->request_id);
    e->retryable = s == 408 || s == 429 || (s >= 500 && s <= 599);
    e->needs_refresh = s == 401;
    if (r->body.len > 0 && avl_api_error_parse(r->body.data, r->body.len, &api) == 0) {
        const char *code = api.code != NULL ? api.code : "";
        copy_field(e->code, sizeof e->code, code);
        e->number = api.number;
        if (api.message != NULL && api.detail_description != NULL &&
            strcmp(api.message, api.detail_description) != 0)
            avl_error_setf(e, "api", "%s (%s)", api.message, api.detail_description);
        else
            avl_error_setf(e, "api", "%s", api.message != NULL ? api.message
                                           : api.detail_description != NULL ? api.detail_description
                                                                            : code);
        if (strcmp(code, "AuthenticationIncomplete") == 0 || strcmp(code, "BearerTokenInvalid") == 0) {
            e->kind = "oauth";
            e->needs_refresh = 1;
            e->retryable = 0;
        } else if (strcmp(code, "RequestLimitExceeded") == 0) {
            e->kind = "quota";
            e->retryable = 0;
        }
        avl_api_error_free(&api);
    } else if (r->body.len > 0 && bearer_error(r, e) == 0) {
        e->retryable = 0;
    } else {
        const char *what = is_blank(r->body.data, r->body.len) ? "an empty body"
                           : strstr(r->content_type, "html") != NULL ||
                                   (r->body.len > 0 && r->body.data[strspn(r->body.data, " \t\r\n")] == '<')
                               ? "an HTML body"
                               : "a body that is not an API error";
        avl_error_setf(e, "http", "HTTP status %d with %s", s, what);
    }
    avl_error_set_body(e, r->body.data, r->body.len, p->req.secrets);
    avl_error_redact(e, p->req.secrets);
}

/* Pushes status, decoded body, headers (returns 3) or one error (returns 1). */
static int outcome(lua_State *L, const prepared *p, avl_transfer *it) {
    avl_http_response *r = &it->resp;
    if (it->failed)
        return avl_error_push(L, &it->err);
    if (r->status < 200 || r->status > 299) {
        map_status(p, r, &it->err);
        return avl_error_push(L, &it->err);
    }
    lua_pushinteger(L, r->status);
    if (r->body.len == 0 || is_blank(r->body.data, r->body.len)) {
        lua_pushnil(L);
    } else {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "cjson");
        lua_call(L, 1, 1);
        lua_getfield(L, -1, "decode");
        lua_remove(L, -2);
        lua_pushlstring(L, r->body.data, r->body.len);
        if (lua_pcall(L, 1, 1, 0) != 0) {
            avl_error *e = &it->err;
            avl_error_init(e, "parse");
            e->status = r->status;
            copy_field(e->request_id, sizeof e->request_id, r->request_id);
            avl_error_setf(e, "parse", "response is not valid JSON: %s",
                           lua_isstring(L, -1) ? lua_tostring(L, -1) : "decode failed");
            avl_error_set_body(e, r->body.data, r->body.len, p->req.secrets);
            avl_error_redact(e, p->req.secrets);
            lua_pop(L, 2);
            return avl_error_push(L, e);
        }
#if LUA_VERSION_NUM >= 503
        if (lua_istable(L, -1))
            integerize(L, -1, 0);
#endif
    }
    avl_push_headers(L, r);
    return 3;
}

/* ---------------------------------------------------------------- calls */

static int l_request(lua_State *L) {
    call *c;
    int nres;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    c = call_push(L, 1);                          /* 2 */
    prepare(L, 1, &c->reqs[0], "core.request: ");
    avl_options_read(L, 1, &c->opts);
    c->has_opts = 1;
    c->items[0].failed =
        avl_transport_perform(L, &c->opts, &c->reqs[0].req, &c->items[0].resp, &c->items[0].err) != 0;
    nres = outcome(L, &c->reqs[0], &c->items[0]);
    if (nres == 1) {
        lua_pushnil(L);
        lua_insert(L, -2);
        nres = 2;
    }
    lua_pushcfunction(L, call_gc);
    lua_pushvalue(L, 2);
    lua_call(L, 1, 0);
    return nres;
}

static int l_request_many(lua_State *L) {
    call *c;
    size_t n, i;
    int concurrency = DEFAULT_CONCURRENCY;
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_newtable(L);
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_getfield(L, 2, "concurrency");
    if (!lua_isnil(L, -1)) {
        double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        if (!(v >= 1) || v != (double)(long long)(v < 1e9 ? v : 1e9))
            return luaL_error(L, "core.request_many: 'concurrency' must be a positive integer");
        concurrency = v > MAX_CONCURRENCY ? MAX_CONCURRENCY : (int)v;
    }
    lua_pop(L, 1);
    n = lua_rawlen(L, 1);
    c = call_push(L, n);                          /* 3 */
    for (i = 0; i < n; i++) {
        char label[64];
        lua_rawgeti(L, 1, (int)i + 1);
        if (!lua_istable(L, -1))
            return luaL_error(L, "core.request_many: requests[%d] must be a table (got %s)",
                              (int)i + 1, luaL_typename(L, -1));
        snprintf(label, sizeof label, "core.request_many: requests[%d]: ", (int)i + 1);
        prepare(L, -1, &c->reqs[i], label);
        lua_pop(L, 1);
    }
    avl_options_read(L, 2, &c->opts);
    c->has_opts = 1;
    if (n > 0)
        avl_transport_perform_many(L, &c->opts, c->items, n, concurrency);
    lua_createtable(L, (int)n, 0);                /* 4 */
    for (i = 0; i < n; i++) {
        int nres = outcome(L, &c->reqs[i], &c->items[i]);
        lua_createtable(L, 0, 3);
        if (nres == 1) {
            lua_insert(L, -2);
            lua_setfield(L, -2, "err");
        } else {
            lua_insert(L, -4);
            lua_setfield(L, -4, "headers");
            lua_setfield(L, -3, "body");
            lua_setfield(L, -2, "status");
        }
        lua_rawseti(L, 4, (int)i + 1);
        /* Free each response as soon as it is in Lua. */
        avl_http_response_free(&c->items[i].resp);
        avl_error_free(&c->items[i].err);
    }
    lua_pushcfunction(L, call_gc);
    lua_pushvalue(L, 3);
    lua_call(L, 1, 0);
    lua_settop(L, 4);
    return 1;
}

void avl_request_open(lua_State *L) {
    luaL_newmetatable(L, CALL_MT);
    lua_pushcfunction(L, call_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_request);
    lua_setfield(L, -2, "request");
    lua_pushcfunction(L, l_request_many);
    lua_setfield(L, -2, "request_many");
}
