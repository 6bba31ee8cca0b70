/*
 * Token objects: the `avalara.token` userdata. See token.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/args.h"
#include "lua/error.h"
#include "lua/exchange.h"
#include "lua/register.h"
#include "lua/token.h"
#include "protocol/protocol.h"

static const char closed_msg[] = "attempt to use a closed token";

avl_token *avl_token_push(lua_State *L) {
    avl_token *t = lua_newuserdata(L, sizeof *t);
    memset(t, 0, sizeof *t);
    avl_options_init(&t->opts);
    luaL_setmetatable(L, AVL_TOKEN_MT);
    return t;
}

static void replace(char **slot, char **from) {
    if (*from == NULL)
        return;
    avl_free_secret(slot);
    *slot = *from;
    *from = NULL;
}

int avl_token_take(avl_token *t, avl_token_response *tr) {
    static const char bearer[] = "Bearer ";
    size_t n = strlen(tr->access_token);
    char *auth = malloc(sizeof bearer + n);
    if (auth == NULL)
        return -1;
    memcpy(auth, bearer, sizeof bearer - 1);
    memcpy(auth + sizeof bearer - 1, tr->access_token, n + 1);
    avl_free_secret(&t->authorization);
    t->authorization = auth;
    /* a new set is made at the next use; exchanges keep the old one alive */
    avl_secret_set_unref(t->cred);
    t->cred = NULL;
    replace(&t->access_token, &tr->access_token);
    replace(&t->refresh_token, &tr->refresh_token);
    replace(&t->token_type, &tr->token_type);
    replace(&t->scope, &tr->scope);
    t->has_expiry = tr->has_expiry;
    t->expires_at = tr->expires_at;
    return 0;
}

/* The token's credential ends (closed, renewed in place): the idle libcurl
 * handles of this state that keep it in their header lists wipe it now. */
static void forget_credential(lua_State *L, avl_token *t) {
    /* by its value: the FFI binding's requests copy it rather than share t->cred */
    if (t->authorization != NULL)
        avl_pool_forget(avl_pool_of(L), t->authorization);
}

void avl_token_release(lua_State *L, avl_token *t) {
    char **secrets[] = { &t->access_token, &t->refresh_token, &t->authorization, &t->client_secret,
                         &t->token_type, &t->scope, &t->token_url, &t->revocation_url,
                         &t->client_id, &t->request_scope };
    size_t i;
    forget_credential(L, t);
    for (i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        avl_free_secret(secrets[i]);
    avl_secret_set_unref(t->cred);
    t->cred = NULL;
    avl_options_free(L, &t->opts);
    t->has_expiry = 0;
    t->closed = 1;
}

avl_token *avl_token_check(lua_State *L, int idx, const char *fn) {
    avl_token *t = avl_arg_udata(L, idx, 0, AVL_TOKEN_MT, fn);
    if (t->closed || t->close_pending)
        luaL_error(L, "%s", closed_msg);
    return t;
}

static int l_access_token(lua_State *L) {
    return avl_push_opt(L, avl_token_check(L, 1, "token:access_token")->access_token);
}
static int l_refresh_token(lua_State *L) {
    return avl_push_opt(L, avl_token_check(L, 1, "token:refresh_token")->refresh_token);
}
static int l_token_type(lua_State *L) {
    return avl_push_opt(L, avl_token_check(L, 1, "token:token_type")->token_type);
}
static int l_scope(lua_State *L) {
    return avl_push_opt(L, avl_token_check(L, 1, "token:scope")->scope);
}
static int l_authorization(lua_State *L) {
    return avl_push_opt(L, avl_token_check(L, 1, "token:authorization")->authorization);
}

static int l_expires_at(lua_State *L) {
    avl_token *t = avl_token_check(L, 1, "token:expires_at");
    if (!t->has_expiry)
        return avl_push_opt(L, NULL);
    lua_pushinteger(L, avl_whole(t->expires_at));
    return 1;
}

/* Whole seconds left, never negative. */
static int l_expires_in(lua_State *L) {
    avl_token *t = avl_token_check(L, 1, "token:expires_in");
    lua_Integer left;
    if (!t->has_expiry)
        return avl_push_opt(L, NULL);
    left = avl_whole(t->expires_at - avl_now());
    lua_pushinteger(L, left > 0 ? left : 0);
    return 1;
}

/* Expired, or expiring within `leeway` seconds; never without an expiry. */
static int l_is_expired(lua_State *L) {
    avl_token *t = avl_token_check(L, 1, "token:is_expired");
    double leeway = 0;
    if (!lua_isnoneornil(L, 2)) {
        avl_arg_type(L, 2, 1, LUA_TNUMBER, "token:is_expired");
        leeway = lua_tonumber(L, 2);
    }
    lua_pushboolean(L, t->has_expiry && avl_now() + leeway >= t->expires_at);
    return 1;
}

/* ------------------------------------------------------------- exchanges */

static avl_token *check_idle(lua_State *L, int idx, const char *fn) {
    avl_token *t = avl_token_check(L, idx, fn);
    if (t->busy)
        luaL_error(L, "%s(): the token is busy (a refresh or revoke of it is running)", fn);
    return t;
}

static int build(avl_token *t, const char *url, const char *const *params, avl_request *req) {
    avl_oauth_post p;
    p.url = url;
    p.client_id = t->client_id;
    p.client_secret = t->client_secret;
    p.basic = t->basic;
    p.params = params;
    return avl_oauth_build(&p, req);
}

int avl_token_begin_refresh(lua_State *L, int idx, const char *fn, avl_request *req) {
    avl_token *t = check_idle(L, idx, fn);
    const char *params[5] = { NULL, NULL, NULL, NULL, NULL };
    char *url;
    int rc;
    if (t->refresh_token != NULL) {
        params[0] = "grant_type"; params[1] = "refresh_token";
        params[2] = "refresh_token"; params[3] = t->refresh_token;
    } else if (t->grant == AVL_GRANT_CLIENT_CREDENTIALS) {
        params[0] = "grant_type"; params[1] = "client_credentials";
        params[2] = "scope"; params[3] = t->request_scope;
    } else if (t->grant != AVL_GRANT_GENERATE_TOKEN) {
        return luaL_error(L, "%s(): no refresh token, and this grant cannot be repeated", fn);
    }
    url = t->refresh_token != NULL ? avl_refresh_url(t->token_url)
                                   : avl_strndup(t->token_url, strlen(t->token_url));
    rc = url != NULL ? build(t, url, params, req) : -1;
    free(url);
    if (rc == 0)
        t->busy = 1;
    return rc;
}

int avl_token_begin_revoke(lua_State *L, int idx, const char *fn, avl_request *req) {
    avl_token *t = check_idle(L, idx, fn);
    const char *params[5];
    char *url;
    int rc;
    url = t->revocation_url != NULL ? avl_strndup(t->revocation_url, strlen(t->revocation_url))
                                    : avl_revocation_url(t->token_url);
    if (url == NULL)
        return luaL_error(L, "%s(): no revocation endpoint known for this token URL "
                             "(pass revocation_url to the grant)", fn);
    params[0] = "token";
    params[1] = t->refresh_token != NULL ? t->refresh_token : t->access_token;
    params[2] = "token_type_hint";
    params[3] = t->refresh_token != NULL ? "refresh_token" : "access_token";
    params[4] = NULL;
    rc = build(t, url, params, req);
    free(url);
    if (rc == 0)
        t->busy = 1;
    return rc;
}

int avl_token_end(lua_State *L, avl_token *t) {
    t->busy = 0;
    if (!t->close_pending)
        return 0;
    t->close_pending = 0;
    avl_token_release(L, t);
    return -1;
}

/* The exchange's end: the token is idle again (and released if it was
 * closed meanwhile). */
static void exchange_end(lua_State *L, avl_exchange *x) {
    avl_exchange_push_token(L, x);
    avl_token_end(L, lua_touserdata(L, -1));
    lua_pop(L, 1);
}

/* The token of a concluded exchange, or a raise when it was closed while
 * the exchange ran (x->err's body is freed by the exchange). */
static avl_token *renewed(lua_State *L, avl_exchange *x) {
    avl_token *t;
    avl_exchange_push_token(L, x);
    t = lua_touserdata(L, -1);
    if (t->closed)
        luaL_error(L, "token closed while its request ran");
    return t;
}

int avl_token_finish_grant(lua_State *L, avl_exchange *x, int failed) {
    avl_token *t = renewed(L, x);
    avl_token_response tr;
    int rc;
    if (failed) {
        avl_oauth_transport_failed(&x->err);
        return avl_error_result(L, &x->err);
    }
    rc = avl_oauth_finish_grant(&x->req, &x->resp, avl_now(), &tr, &x->err);
    if (rc == -1)
        return avl_error_result(L, &x->err);
    if (rc == 0) {
        forget_credential(L, t);
        rc = avl_token_take(t, &tr) == 0 ? 0 : -2;
        avl_token_response_free(&tr);
    }
    if (rc != 0)
        return luaL_error(L, "out of memory");
    return 1; /* the token, pushed by renewed() */
}

int avl_token_finish_revoke(lua_State *L, avl_exchange *x, int failed) {
    int rc;
    if (x->token_ref != LUA_NOREF)
        renewed(L, x);
    if (failed)
        return avl_error_result(L, &x->err);
    rc = avl_oauth_finish_revoke(&x->req, &x->resp, avl_now(), &x->err);
    if (rc == -1)
        return avl_error_result(L, &x->err);
    if (rc == -2)
        return luaL_error(L, "out of memory");
    lua_pushboolean(L, 1);
    return 1;
}

/* Pushes the exchange that refreshes or revokes the token at 1. It runs
 * with the token's options and its own copy of the request; the token is
 * busy until the exchange ends. */
static avl_exchange *prepare(lua_State *L, int refresh) {
    const char *fn = refresh ? "token:refresh" : "token:revoke";
    avl_exchange *x;
    avl_token *t = avl_token_check(L, 1, fn);
    int rc;
    lua_settop(L, 1);
    x = avl_exchange_push(L, refresh ? "refresh" : "revoke", refresh ? avl_token_finish_grant : avl_token_finish_revoke, NULL);
    lua_pushvalue(L, 1);
    x->token_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    x->use = &t->opts;
    rc = refresh ? avl_token_begin_refresh(L, 1, fn, &x->req) : avl_token_begin_revoke(L, 1, fn, &x->req);
    if (rc != 0)
        luaL_error(L, "out of memory");
    x->on_end = exchange_end; /* only now: the token is ours to mark idle */
    return x;
}

static int l_refresh(lua_State *L) {
    prepare(L, 1);
    return avl_exchange_perform(L, 2);
}

static int l_revoke(lua_State *L) {
    prepare(L, 0);
    return avl_exchange_perform(L, 2);
}

static int l_prepare_refresh(lua_State *L) {
    prepare(L, 1);
    return 1;
}

static int l_prepare_revoke(lua_State *L) {
    prepare(L, 0);
    return 1;
}

/* close(), __close and __gc: idempotent. During the token's own exchange
 * they only mark it; the exchange's end releases it. */
static int l_close(lua_State *L) {
    avl_token *t = avl_arg_udata(L, 1, 0, AVL_TOKEN_MT, "token:close");
    if (t->busy)
        t->close_pending = 1;
    else
        avl_token_release(L, t);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_gc(lua_State *L) {
    l_close(L);
    return 0;
}

static int l_tostring(lua_State *L) {
    avl_token *t = avl_arg_udata(L, 1, 0, AVL_TOKEN_MT, "tostring");
    char when[40];
    if (t->closed || t->close_pending) {
        lua_pushliteral(L, "avalara.token (closed)");
        return 1;
    }
    if (t->has_expiry) {
        time_t at = (time_t)avl_whole(t->expires_at);
        struct tm tm;
        if (gmtime_r(&at, &tm) == NULL || strftime(when, sizeof when, "expires %Y-%m-%dT%H:%M:%SZ", &tm) == 0)
            snprintf(when, sizeof when, "expires at %.0f", (double)at);
    } else {
        snprintf(when, sizeof when, "no expiry");
    }
    lua_pushfstring(L, "avalara.token (%s%s%s, %s)", t->token_type != NULL ? t->token_type : "no type",
                    t->scope != NULL ? ", scope " : "", t->scope != NULL ? t->scope : "", when);
    return 1;
}

void avl_token_open(lua_State *L, int uv) {
    static const luaL_Reg methods[] = {
        { "access_token", l_access_token },
        { "token_type", l_token_type },
        { "scope", l_scope },
        { "refresh_token", l_refresh_token },
        { "expires_at", l_expires_at },
        { "expires_in", l_expires_in },
        { "is_expired", l_is_expired },
        { "authorization", l_authorization },
        { "refresh", l_refresh },
        { "revoke", l_revoke },
        { "prepare_refresh", l_prepare_refresh },
        { "prepare_revoke", l_prepare_revoke },
        { "close", l_close },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__gc", l_gc },
        { "__close", l_close },
        { "__tostring", l_tostring },
        { NULL, NULL }
    };
    avl_newtype(L, AVL_TOKEN_MT, meta, methods, uv);
}
