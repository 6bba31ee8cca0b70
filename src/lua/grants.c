/*
 * The grants (docs/design.md section 5): client_credentials, authorization_code,
 * refresh_token, the 2012 generate_token self-grant, revocation, and the
 * authorize URL. Each validates its arguments (raising, naming the field)
 * before any traffic, then prepares one exchange (exchange.h): the grant
 * functions perform it at once, core.prepare_grant hands it back for a
 * transport that runs elsewhere. A grant's exchange makes a token userdata
 * first, which owns the copies of everything the grant needs again
 * (refresh, revoke), so a raise leaks nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/args.h"
#include "lua/device.h"
#include "lua/error.h"
#include "lua/exchange.h"
#include "lua/grants.h"
#include "lua/pkce.h"
#include "lua/register.h"
#include "lua/token.h"
#include "protocol/protocol.h"

/* ---- argument reading: every value read stays on the stack, so the
 * returned pointers live until the call returns. */

typedef struct {
    lua_State *L;
    int idx;                 /* the arguments table */
    const char *fn;
} args;

static const char *field(const args *a, const char *name, int required) {
    lua_State *L = a->L;
    size_t n;
    const char *s;
    int t;
    lua_getfield(L, a->idx, name);
    t = lua_type(L, -1);
    if (t == LUA_TNIL && !required)
        return NULL;
    if (t == LUA_TNIL)
        luaL_error(L, "%s: field '%s' is required", a->fn, name);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "%s: field '%s' must be a string (got %s)", a->fn, name, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &n);
    if (strlen(s) != n)
        luaL_error(L, "%s: field '%s' must not contain NUL bytes", a->fn, name);
    return s;
}

/* A URL field that will carry credentials: refused before any traffic
 * when the policy says no (options.c), unless a Lua transport moves it. */
typedef struct {
    int lua_transport;       /* a `transport` function moves the bytes: its business */
    int allow_http;
} policy;

/* A URL's bytes go into request lines: no space, no control character. */
static const char *url_chars(const args *a, const char *name, const char *url) {
    const char *c;
    for (c = url; c != NULL && *c != '\0'; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c == 0x7f)
            luaL_error(a->L, "%s: field '%s' must not contain spaces or control characters (CR, LF, ...)",
                       a->fn, name);
    return url;
}

static const char *url_field(const args *a, const char *name, const policy *o) {
    char why[200];
    const char *url = url_chars(a, name, field(a, name, 1));
    if (!o->lua_transport && avl_url_allowed(url, o->allow_http, why, sizeof why) != 0)
        luaL_error(a->L, "%s: field '%s' %s", a->fn, name, why);
    return url;
}

static int auth_method(const args *a) {
    const char *m = field(a, "auth_method", 0);
    if (m == NULL || strcmp(m, "post") == 0)
        return 0;
    if (strcmp(m, "basic") == 0)
        return 1;
    return luaL_error(a->L, "%s: field 'auth_method' must be \"post\" or \"basic\"", a->fn);
}

static void begin(lua_State *L, args *a, int idx, const char *fn) {
    a->L = L;
    a->idx = idx;
    a->fn = fn;
    avl_arg_type(L, idx, idx, LUA_TTABLE, fn);
    avl_checkstack(L, 24, fn);
}

typedef struct {
    const char *url, *client_id, *client_secret, *scope, *revocation_url, *refresh_token;
    int basic;
} grant_in;

/* The fields every grant takes; the options are read into o first (the
 * URL policy depends on them). A revocation's client may be public: no
 * secret (RFC 7009 2.1, RFC 6749 2.1). */
static void grant_common(const args *a, const char *url_name, const policy *o, grant_in *in) {
    memset(in, 0, sizeof *in);
    in->url = url_field(a, url_name, o);
    in->client_id = field(a, "client_id", 1);
    in->client_secret = field(a, "client_secret", strcmp(a->fn, "revoke") != 0);
    in->revocation_url = url_chars(a, "revocation_url", field(a, "revocation_url", 0));
    in->basic = auth_method(a);
}

/* --------------------------------------------------------------- grants */

/* Pushes the exchange of a grant whose arguments (at a->idx) are read and
 * checked, with its token: the token owns the options and copies. */
static void prepare_grant(lua_State *L, const args *a, const char *what, avl_grant_kind kind,
                          const grant_in *in, const char *const *params) {
    avl_exchange *x = avl_exchange_push(L, what, avl_token_finish_grant, NULL);
    avl_token *t = avl_token_push(L);
    avl_oauth_post p;
    x->token_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    avl_options_read(L, a->idx, &t->opts);
    x->use = &t->opts;
    t->grant = kind;
    t->basic = in->basic;
    t->token_url = avl_dup_or_raise(L, in->url);
    t->revocation_url = avl_dup_or_raise(L, in->revocation_url);
    t->client_id = avl_dup_or_raise(L, in->client_id);
    t->client_secret = avl_dup_or_raise(L, in->client_secret);
    t->request_scope = avl_dup_or_raise(L, in->scope);
    /* an unrotated refresh token stays valid (RFC 6749 6) */
    t->refresh_token = avl_dup_or_raise(L, in->refresh_token);
    p.url = t->token_url;
    p.client_id = t->client_id;
    p.client_secret = t->client_secret;
    p.basic = t->basic;
    p.params = params;
    if (avl_oauth_build(&p, &x->req) != 0)
        luaL_error(L, "out of memory");
}

/* What the URL policy needs of the options, read (and checked) before
 * the fields: a scratch copy, freed at once (the token reads its own). */
static void read_policy(lua_State *L, const args *a, policy *out) {
    avl_options o;
    avl_options_read(L, a->idx, &o);
    out->lua_transport = avl_options_lua_transport(&o);
    out->allow_http = o.allow_http;
    avl_options_free(L, &o);
}

static void client_credentials(lua_State *L, const args *a) {
    policy o;
    grant_in in;
    const char *params[5];
    read_policy(L, a, &o);
    grant_common(a, "token_url", &o, &in);
    in.scope = field(a, "scope", 0);
    params[0] = "grant_type"; params[1] = "client_credentials";
    params[2] = "scope"; params[3] = in.scope;
    params[4] = NULL;
    prepare_grant(L, a, "client_credentials", AVL_GRANT_CLIENT_CREDENTIALS, &in, params);
}

static void authorization_code(lua_State *L, const args *a) {
    policy o;
    grant_in in;
    const char *params[9];
    read_policy(L, a, &o);
    grant_common(a, "token_url", &o, &in);
    params[0] = "grant_type"; params[1] = "authorization_code";
    params[2] = "code"; params[3] = field(a, "code", 1);
    params[4] = "redirect_uri"; params[5] = field(a, "redirect_uri", 1);
    params[6] = "code_verifier"; params[7] = field(a, "code_verifier", 0);
    params[8] = NULL;
    prepare_grant(L, a, "authorization_code", AVL_GRANT_AUTHORIZATION_CODE, &in, params);
}

static void refresh_token(lua_State *L, const args *a) {
    policy o;
    grant_in in;
    const char *params[7];
    read_policy(L, a, &o);
    grant_common(a, "token_url", &o, &in);
    in.refresh_token = field(a, "refresh_token", 1);
    in.scope = field(a, "scope", 0);
    params[0] = "grant_type"; params[1] = "refresh_token";
    params[2] = "refresh_token"; params[3] = in.refresh_token;
    params[4] = "scope"; params[5] = in.scope;
    params[6] = NULL;
    prepare_grant(L, a, "refresh_token", AVL_GRANT_REFRESH_TOKEN, &in, params);
}

/* The 2012 self-grant: the partner's credentials are the only parameters. */
static void generate_token(lua_State *L, const args *a) {
    policy o;
    grant_in in;
    const char *params[1] = { NULL };
    read_policy(L, a, &o);
    grant_common(a, "url", &o, &in);
    prepare_grant(L, a, "generate_token", AVL_GRANT_GENERATE_TOKEN, &in, params);
}

/* RFC 8628 3.1: the device authorization request; its exchange's answer is
 * an avalara.device (device.c), which polls the token endpoint. */
static void device_authorization(lua_State *L, const args *a) {
    policy o;
    avl_device_in in;
    read_policy(L, a, &o);
    in.url = url_field(a, "url", &o);
    in.token_url = field(a, "token_url", 0);
    if (in.token_url != NULL)
        url_field(a, "token_url", &o);
    in.revocation_url = url_chars(a, "revocation_url", field(a, "revocation_url", 0));
    in.client_id = field(a, "client_id", 1);
    in.client_secret = field(a, "client_secret", 0);
    in.scope = field(a, "scope", 0);
    in.basic = auth_method(a);
    avl_device_prepare(L, a->idx, a->fn, &in);
}

/* --------------------------------------------------------------- revoke */

static void revoke(lua_State *L, const args *a) {
    avl_exchange *x;
    policy o;
    grant_in in;
    const char *params[5];
    avl_oauth_post p;
    read_policy(L, a, &o);
    grant_common(a, "url", &o, &in);
    params[0] = "token"; params[1] = field(a, "token", 1);
    params[2] = "token_type_hint"; params[3] = field(a, "token_type_hint", 0);
    params[4] = NULL;
    x = avl_exchange_push(L, "revoke", avl_token_finish_revoke, NULL);
    avl_options_read(L, a->idx, &x->opts);
    p.url = in.url;
    p.client_id = in.client_id;
    p.client_secret = in.client_secret;
    p.basic = in.basic;
    p.params = params;
    if (avl_oauth_build(&p, &x->req) != 0)
        luaL_error(L, "out of memory");
}

/* ------------------------------------------------------------ functions */

typedef void (*prepare_fn)(lua_State *L, const args *a);

static const struct {
    const char *name;
    prepare_fn prepare;
} kinds[] = {
    { "client_credentials", client_credentials },
    { "authorization_code", authorization_code },
    { "refresh_token", refresh_token },
    { "generate_token", generate_token },
    { "revoke", revoke },
    { "device_authorization", device_authorization },
};

/* core.<grant>{...}: prepare (which leaves the exchange on top), then
 * perform at once. */
static int run(lua_State *L, prepare_fn prepare, const char *fn) {
    args a;
    begin(L, &a, 1, fn);
    lua_settop(L, 1);
    prepare(L, &a);
    lua_replace(L, 2); /* the exchange, above the fields read */
    lua_settop(L, 2);
    return avl_exchange_perform(L, 2);
}

static int l_client_credentials(lua_State *L) { return run(L, client_credentials, "client_credentials"); }
static int l_authorization_code(lua_State *L) { return run(L, authorization_code, "authorization_code"); }
static int l_refresh_token(lua_State *L) { return run(L, refresh_token, "refresh_token"); }
static int l_generate_token(lua_State *L) { return run(L, generate_token, "generate_token"); }
static int l_revoke(lua_State *L) { return run(L, revoke, "revoke"); }
static int l_device_authorization(lua_State *L) { return run(L, device_authorization, "device_authorization"); }

/* core.prepare_grant(name, args) -> exchange. */
static int l_prepare_grant(lua_State *L) {
    static const char fn[] = "core.prepare_grant";
    const char *name;
    size_t i;
    args a;
    name = avl_arg_string(L, 1, 1, fn, NULL);
    for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(name, kinds[i].name) == 0)
            break;
    if (i == sizeof kinds / sizeof kinds[0])
        return avl_arg_error(L, 1, fn, "one of client_credentials, authorization_code, refresh_token, "
                                       "generate_token, revoke, device_authorization expected");
    avl_arg_type(L, 2, 2, LUA_TTABLE, fn);
    begin(L, &a, 2, kinds[i].name);
    lua_settop(L, 2);
    kinds[i].prepare(L, &a);
    return 1;
}

/* Query values are percent-encoded with %20 for a space (RFC 3986), which
 * every decoder reads the same way. */
static int l_authorize_url(lua_State *L) {
    const char *names[] = { "client_id", "redirect_uri", "scope", "state", "code_challenge" };
    const char *values[5];
    const char *url;
    avl_buf b;
    size_t i, n;
    int ok;
    args a;
    begin(L, &a, 1, "authorize_url");
    lua_settop(L, 1);
    url = field(&a, "url", 1);
    values[0] = field(&a, "client_id", 1);
    values[1] = field(&a, "redirect_uri", 1);
    values[2] = field(&a, "scope", 0);
    values[3] = field(&a, "state", 0);
    values[4] = field(&a, "code_challenge", 0);

    n = strlen(url);
    avl_buf_init(&b);
    ok = avl_buf_append(&b, url, n) == 0;
    if (ok && strchr(url, '?') == NULL)
        ok = avl_buf_putc(&b, '?') == 0;
    else if (ok && n > 0 && url[n - 1] != '?' && url[n - 1] != '&')
        ok = avl_buf_putc(&b, '&') == 0;
    ok = ok && avl_buf_appendz(&b, "response_type=code") == 0;
    for (i = 0; ok && i < sizeof names / sizeof names[0]; i++) {
        if (values[i] == NULL)
            continue;
        ok = avl_buf_putc(&b, '&') == 0 && avl_buf_appendz(&b, names[i]) == 0 &&
             avl_buf_putc(&b, '=') == 0 &&
             avl_pct_encode(&b, values[i], strlen(values[i]), 0) == 0;
    }
    if (ok && values[4] != NULL)
        ok = avl_buf_appendz(&b, "&code_challenge_method=S256") == 0;
    if (!ok) {
        avl_buf_free(&b);
        return luaL_error(L, "out of memory");
    }
    lua_pushlstring(L, b.data, b.len);
    avl_buf_free(&b);
    return 1;
}

void avl_grants_open(lua_State *L, int uv) {
    static const luaL_Reg fns[] = {
        { "client_credentials", l_client_credentials },
        { "authorization_code", l_authorization_code },
        { "refresh_token", l_refresh_token },
        { "generate_token", l_generate_token },
        { "revoke", l_revoke },
        { "device_authorization", l_device_authorization },
        { "prepare_grant", l_prepare_grant },
        { "authorize_url", l_authorize_url },
        { "pkce", avl_pkce_lua },
        { "hmac_sha256", avl_hmac_sha256_lua },
        { "hmac_sha512", avl_hmac_sha512_lua },
        { NULL, NULL }
    };
    avl_setfuncs(L, fns, uv);
}
