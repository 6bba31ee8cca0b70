/*
 * Token objects: the `avalara.token` userdata (liolib style: one metatable,
 * one cleanup path shared by close, __close and __gc). See token.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "token.h"

static const char closed_msg[] = "attempt to use a closed token";

static double now_epoch(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* floor(x) as an integer, clamped to +-2^53 (converting a double beyond
 * the integer range is undefined, and no expiry needs more). No libm. */
static lua_Integer whole_seconds(double x) {
    const double lim = 9007199254740992.0;
    lua_Integer i;
    if (!(x > -lim))
        x = -lim; /* NaN too */
    else if (x > lim)
        x = lim;
    i = (lua_Integer)x; /* toward zero */
    return (double)i > x ? i - 1 : i;
}

avl_token *avl_token_push(lua_State *L) {
    avl_token *t = lua_newuserdata(L, sizeof *t);
    memset(t, 0, sizeof *t);
    t->opts.transport_ref = LUA_NOREF;
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
    replace(&t->access_token, &tr->access_token);
    replace(&t->refresh_token, &tr->refresh_token);
    replace(&t->token_type, &tr->token_type);
    replace(&t->scope, &tr->scope);
    t->has_expiry = tr->has_expiry;
    t->expires_at = tr->expires_at;
    return 0;
}

void avl_token_release(lua_State *L, avl_token *t) {
    char **secrets[] = { &t->access_token, &t->refresh_token, &t->authorization, &t->client_secret,
                         &t->token_type, &t->scope, &t->token_url, &t->revocation_url,
                         &t->client_id, &t->request_scope };
    size_t i;
    for (i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        avl_free_secret(secrets[i]);
    if (t->has_opts)
        avl_options_free(L, &t->opts);
    t->has_opts = 0;
    t->has_expiry = 0;
    t->closed = 1;
}

static avl_token *check_open(lua_State *L, int idx) {
    avl_token *t = luaL_checkudata(L, idx, AVL_TOKEN_MT);
    if (t->closed || t->close_pending)
        luaL_error(L, "%s", closed_msg);
    return t;
}

const char *avl_token_authorization(lua_State *L, int idx) {
    return check_open(L, idx)->authorization;
}

static int push_opt(lua_State *L, const char *s) {
    if (s != NULL)
        lua_pushstring(L, s);
    else
        lua_pushnil(L);
    return 1;
}

static int l_access_token(lua_State *L) { return push_opt(L, check_open(L, 1)->access_token); }
static int l_refresh_token(lua_State *L) { return push_opt(L, check_open(L, 1)->refresh_token); }
static int l_token_type(lua_State *L) { return push_opt(L, check_open(L, 1)->token_type); }
static int l_scope(lua_State *L) { return push_opt(L, check_open(L, 1)->scope); }
static int l_authorization(lua_State *L) { return push_opt(L, check_open(L, 1)->authorization); }

static int l_expires_at(lua_State *L) {
    avl_token *t = check_open(L, 1);
    if (!t->has_expiry)
        return push_opt(L, NULL);
    lua_pushinteger(L, whole_seconds(t->expires_at));
    return 1;
}

/* Whole seconds left, never negative. */
static int l_expires_in(lua_State *L) {
    avl_token *t = check_open(L, 1);
    lua_Integer left;
    if (!t->has_expiry)
        return push_opt(L, NULL);
    left = whole_seconds(t->expires_at - now_epoch());
    lua_pushinteger(L, left > 0 ? left : 0);
    return 1;
}

/* Expired, or expiring within `leeway` seconds; never without an expiry. */
static int l_is_expired(lua_State *L) {
    avl_token *t = check_open(L, 1);
    double leeway = luaL_optnumber(L, 2, 0);
    lua_pushboolean(L, t->has_expiry && now_epoch() + leeway >= t->expires_at);
    return 1;
}

/* Ends an exchange: when the token was closed meanwhile (from a Lua
 * transport function), releases it and raises. */
static void end_exchange(lua_State *L, avl_token *t, int rc, avl_token_response *tr, avl_error *e) {
    t->busy = 0;
    if (!t->close_pending)
        return;
    if (rc == 0 && tr != NULL)
        avl_token_response_free(tr);
    if (rc == -1)
        avl_error_free(e);
    t->close_pending = 0;
    avl_token_release(L, t);
    luaL_error(L, "token closed while its request ran");
}

static avl_token *check_idle(lua_State *L, const char *what) {
    avl_token *t = check_open(L, 1);
    if (t->busy)
        luaL_error(L, "token:%s(): the token is busy (a refresh or revoke of it is running)", what);
    return t;
}

/* A 2012 self-granted token refreshes at the access_token endpoint. */
static char *refresh_url(const char *token_url) {
    static const char gen[] = "/oauth/generate_token", acc[] = "/oauth/access_token";
    size_t end = strcspn(token_url, "?#"), gl = sizeof gen - 1;
    char *u;
    if (end < gl || memcmp(token_url + end - gl, gen, gl) != 0)
        return avl_strndup(token_url, strlen(token_url));
    u = malloc(end - gl + sizeof acc);
    if (u != NULL) {
        memcpy(u, token_url, end - gl);
        memcpy(u + end - gl, acc, sizeof acc);
    }
    return u;
}

static int l_refresh(lua_State *L) {
    avl_token *t = check_idle(L, "refresh");
    const char *params[5] = { NULL, NULL, NULL, NULL, NULL };
    avl_token_response tr;
    avl_oauth_post p;
    avl_error e;
    char *url;
    int rc;

    if (t->refresh_token != NULL) {
        params[0] = "grant_type"; params[1] = "refresh_token";
        params[2] = "refresh_token"; params[3] = t->refresh_token;
    } else if (t->grant == AVL_GRANT_CLIENT_CREDENTIALS) {
        params[0] = "grant_type"; params[1] = "client_credentials";
        params[2] = "scope"; params[3] = t->request_scope;
    } else if (t->grant != AVL_GRANT_GENERATE_TOKEN) {
        return luaL_error(L, "token:refresh(): no refresh token, and this grant cannot be repeated");
    }
    url = t->refresh_token != NULL ? refresh_url(t->token_url)
                                   : avl_strndup(t->token_url, strlen(t->token_url));
    if (url == NULL)
        return luaL_error(L, "not enough memory");
    p.url = url;
    p.client_id = t->client_id;
    p.client_secret = t->client_secret;
    p.basic = t->basic;
    p.params = params;
    t->busy = 1;
    rc = avl_oauth_grant(L, &t->opts, &p, &tr, &e);
    free(url);
    end_exchange(L, t, rc, &tr, &e);
    if (rc == 0) {
        if (avl_token_take(t, &tr) != 0)
            rc = -2;
        avl_token_response_free(&tr);
    }
    if (rc == -2)
        return luaL_error(L, "not enough memory");
    if (rc == -1)
        return avl_error_result(L, &e);
    lua_settop(L, 1);
    return 1;
}

static int l_revoke(lua_State *L) {
    avl_token *t = check_idle(L, "revoke");
    const char *params[5];
    avl_oauth_post p;
    avl_error e;
    char *url;
    int rc;

    url = t->revocation_url != NULL ? avl_strndup(t->revocation_url, strlen(t->revocation_url))
                                    : avl_revocation_url(t->token_url);
    if (url == NULL)
        return luaL_error(L, "token:revoke(): no revocation endpoint known for this token URL "
                             "(pass revocation_url to the grant)");
    params[0] = "token";
    params[1] = t->refresh_token != NULL ? t->refresh_token : t->access_token;
    params[2] = "token_type_hint";
    params[3] = t->refresh_token != NULL ? "refresh_token" : "access_token";
    params[4] = NULL;
    p.url = url;
    p.client_id = t->client_id;
    p.client_secret = t->client_secret;
    p.basic = t->basic;
    p.params = params;
    t->busy = 1;
    rc = avl_oauth_revoke(L, &t->opts, &p, &e);
    free(url);
    end_exchange(L, t, rc, NULL, &e);
    if (rc == -2)
        return luaL_error(L, "not enough memory");
    if (rc == -1)
        return avl_error_result(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* close(), __close and __gc: idempotent. A close during the token's own
 * exchange is deferred until the exchange returns. */
static int l_close(lua_State *L) {
    avl_token *t = luaL_checkudata(L, 1, AVL_TOKEN_MT);
    if (t->busy)
        t->close_pending = 1;
    else
        avl_token_release(L, t);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_gc(lua_State *L) {
    avl_token_release(L, luaL_checkudata(L, 1, AVL_TOKEN_MT));
    return 0;
}

static int l_tostring(lua_State *L) {
    avl_token *t = luaL_checkudata(L, 1, AVL_TOKEN_MT);
    char when[40];
    if (t->closed || t->close_pending) {
        lua_pushliteral(L, "avalara.token (closed)");
        return 1;
    }
    if (t->has_expiry) {
        time_t at = (time_t)whole_seconds(t->expires_at);
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

void avl_token_open(lua_State *L) {
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
        { "close", l_close },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__gc", l_gc },
        { "__close", l_close },
        { "__tostring", l_tostring },
        { NULL, NULL }
    };
    luaL_newmetatable(L, AVL_TOKEN_MT);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
