/*
 * The device authorization grant (RFC 8628): the `avalara.device` userdata.
 * See device.h.
 *
 *   local d, err = core.device_authorization{ url = ".../connect/deviceauthorization",
 *                                             client_id = "hscode-cli", scope = "..." }
 *   print(d.user_code, d.verification_uri, d.verification_uri_complete, d.expires_in, d.interval)
 *   local token, err = d:poll()   -- err.code: authorization_pending, slow_down, access_denied, expired_token
 *
 * The device owns copies of everything a poll needs; a poll's exchange
 * works on its own request (device code included, registered as a secret)
 * and makes the device busy until it ends, as a token's refresh does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/args.h"
#include "lua/device.h"
#include "lua/error.h"
#include "lua/exchange.h"
#include "lua/register.h"
#include "lua/token.h"
#include "protocol/device.h"
#include "protocol/oauth.h"

static const char grant_type[] = "urn:ietf:params:oauth:grant-type:device_code";
static const char closed_msg[] = "attempt to use a closed device authorization";

typedef struct {
    int closed;
    int busy;                  /* a poll's exchange is running or pending */
    int close_pending;         /* close() or __gc while busy: released when it ends */
    int answered;              /* the authorization endpoint answered: the fields below are set */
    int over;                  /* a token, a denial or the expiry came back: the code is gone */
    char *device_code;         /* the secret */
    char *user_code;
    char *verification_uri;
    char *verification_uri_complete;
    double expires_at;         /* epoch seconds (avl_now) */
    double interval;           /* seconds between polls: grows by 5 on slow_down */
    /* what a poll, and the token it makes, need */
    char *token_url;
    char *revocation_url;
    char *client_id;
    char *client_secret;
    char *scope;
    int basic;
    avl_options opts;
    int args_ref;              /* the arguments table: each token reads its own options from it */
} avl_device;

static void release(lua_State *L, avl_device *d) {
    char **owned[] = { &d->device_code, &d->user_code, &d->verification_uri, &d->verification_uri_complete,
                       &d->token_url, &d->revocation_url, &d->client_id, &d->client_secret, &d->scope };
    size_t i;
    for (i = 0; i < sizeof owned / sizeof owned[0]; i++)
        avl_free_secret(owned[i]);
    if (!d->closed)
        avl_options_free(L, &d->opts);
    if (d->args_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, d->args_ref);
        d->args_ref = LUA_NOREF;
    }
    d->closed = 1;
}

static avl_device *device_push(lua_State *L) {
    avl_device *d = lua_newuserdata(L, sizeof *d);
    memset(d, 0, sizeof *d);
    avl_options_init(&d->opts);
    d->args_ref = LUA_NOREF;
    luaL_setmetatable(L, AVL_DEVICE_MT);
    return d;
}

static avl_device *check_device(lua_State *L, int idx, const char *fn) {
    avl_device *d = avl_arg_udata(L, idx, 0, AVL_DEVICE_MT, fn);
    if (d->closed || d->close_pending)
        luaL_error(L, "%s", closed_msg);
    return d;
}

/* ------------------------------------------------------ the authorization */

/* The body a parser may read (as oauth.c's). */
static const char *parse_body(const avl_response *r, size_t *n) {
    *n = r->body.len <= AVL_PARSE_MAX ? r->body.len : 0;
    return r->body.data != NULL && *n > 0 ? r->body.data : "";
}

static void take(char **slot, char **from) {
    avl_free_secret(slot);
    *slot = *from;
    *from = NULL;
}

/* A refused or unusable answer into x->err: an OAuth error body is read as
 * the token endpoint's; the device code a body carried is redacted too. */
static int authorization_failed(lua_State *L, avl_exchange *x, avl_token_result res, avl_device_response *dr) {
    avl_token_response tr;
    avl_token_result tres;
    avl_secrets all;
    size_t n;
    const char *body = parse_body(&x->resp, &n);
    int nomem;
    tres = avl_token_response_parse(x->resp.status, x->resp.content_type, body, n, avl_now(), &tr);
    avl_secrets_init(&all);
    nomem = tres == AVL_TOKEN_NOMEM || avl_secrets_extend(&all, &x->req.secrets) != 0 ||
            avl_secrets_add(&all, dr->device_code, dr->device_code != NULL ? strlen(dr->device_code) : 0) != 0;
    if (!nomem) {
        if (tres != AVL_TOKEN_OAUTH_ERROR) {
            tres = res;
            if (dr->reason[0] != '\0')
                snprintf(tr.reason, sizeof tr.reason, "%s", dr->reason);
        }
        avl_token_failure(tres, &x->resp, &tr, &all, &x->err);
    }
    avl_secrets_free(&all);
    avl_token_response_free(&tr);
    avl_device_response_free(dr);
    if (nomem)
        return luaL_error(L, "out of memory");
    return avl_error_result(L, &x->err);
}

static int finish_authorization(lua_State *L, avl_exchange *x, int failed) {
    avl_device *d;
    avl_device_response dr;
    avl_token_result res;
    size_t n;
    const char *body;
    avl_exchange_push_token(L, x);
    d = lua_touserdata(L, -1);
    if (failed) {
        avl_oauth_transport_failed(&x->err);
        return avl_error_result(L, &x->err);
    }
    body = parse_body(&x->resp, &n);
    res = avl_device_response_parse(x->resp.status, body, n, &dr);
    if (res == AVL_TOKEN_NOMEM) {
        avl_device_response_free(&dr);
        return luaL_error(L, "out of memory");
    }
    if (res == AVL_TOKEN_PARSE_ERROR && x->resp.body.len > AVL_PARSE_MAX)
        snprintf(dr.reason, sizeof dr.reason, "device authorization response larger than %d bytes", AVL_PARSE_MAX);
    if (res != AVL_TOKEN_OK)
        return authorization_failed(L, x, res, &dr);
    take(&d->device_code, &dr.device_code);
    take(&d->user_code, &dr.user_code);
    take(&d->verification_uri, &dr.verification_uri);
    take(&d->verification_uri_complete, &dr.verification_uri_complete);
    d->expires_at = avl_now() + dr.expires_in;
    d->interval = dr.interval;
    d->answered = 1;
    avl_device_response_free(&dr);
    return 1; /* the device, pushed above */
}

/* Builds into req the POST of params to url, as d's client authenticates. */
static void build(lua_State *L, const avl_device *d, const char *url, const char *const *params, avl_request *req) {
    avl_oauth_post p;
    p.url = url;
    p.client_id = d->client_id;
    p.client_secret = d->client_secret;
    p.basic = d->basic;
    p.params = params;
    if (avl_oauth_build(&p, req) != 0)
        luaL_error(L, "out of memory");
}

void avl_device_prepare(lua_State *L, int idx, const char *fn, const avl_device_in *in) {
    avl_exchange *x = avl_exchange_push(L, "device_authorization", finish_authorization, NULL);
    avl_device *d = device_push(L);
    const char *params[3];
    x->token_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the device: the exchange holds it */
    avl_options_read(L, idx, &d->opts);
    x->use = &d->opts;
    lua_pushvalue(L, idx);
    d->args_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (in->token_url != NULL) {
        d->token_url = avl_dup_or_raise(L, in->token_url);
    } else if ((d->token_url = avl_device_token_url(in->url)) == NULL) {
        luaL_error(L, "%s: field 'token_url' is required (it cannot be derived from url)", fn);
    }
    d->revocation_url = avl_dup_or_raise(L, in->revocation_url);
    d->client_id = avl_dup_or_raise(L, in->client_id);
    d->client_secret = avl_dup_or_raise(L, in->client_secret);
    d->scope = avl_dup_or_raise(L, in->scope);
    d->basic = in->basic;
    params[0] = "scope";
    params[1] = in->scope;
    params[2] = NULL;
    build(L, d, in->url, params, &x->req);
}

/* ---------------------------------------------------------------- polls */

static void poll_end(lua_State *L, avl_exchange *x) {
    avl_device *d;
    avl_exchange_push_token(L, x);
    d = lua_touserdata(L, -1);
    d->busy = 0;
    if (d->close_pending) {
        d->close_pending = 0;
        release(L, d);
    }
    lua_pop(L, 1);
}

/* The code is spent: a token, a denial or the expiry came back. */
static void spend(avl_device *d) {
    d->over = 1;
    avl_free_secret(&d->device_code);
}

static int finish_poll(lua_State *L, avl_exchange *x, int failed) {
    avl_device *d;
    avl_token *t;
    avl_token_response tr;
    int rc, top;
    avl_exchange_push_token(L, x);
    d = lua_touserdata(L, -1);
    if (d->closed)
        return luaL_error(L, "device authorization closed while its poll ran");
    if (failed) {
        avl_oauth_transport_failed(&x->err);
        return avl_error_result(L, &x->err);
    }
    /* the token first, while nothing is held in C locals: its copies may raise */
    top = lua_gettop(L);
    t = avl_token_push(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->args_ref);
    avl_options_read(L, -1, &t->opts);
    lua_pop(L, 1);
    t->grant = AVL_GRANT_DEVICE_CODE;
    t->basic = d->basic;
    t->token_url = avl_dup_or_raise(L, d->token_url);
    t->revocation_url = avl_dup_or_raise(L, d->revocation_url);
    t->client_id = avl_dup_or_raise(L, d->client_id);
    t->client_secret = avl_dup_or_raise(L, d->client_secret);
    t->request_scope = avl_dup_or_raise(L, d->scope);
    rc = avl_oauth_finish_grant(&x->req, &x->resp, avl_now(), &tr, &x->err);
    if (rc == -2)
        return luaL_error(L, "out of memory");
    if (rc == -1) {
        lua_settop(L, top);
        if (strcmp(x->err.code, "slow_down") == 0) {
            d->interval += 5; /* RFC 8628 3.5: this and every later poll */
            if (d->interval > AVL_DEVICE_MAX_INTERVAL)
                d->interval = AVL_DEVICE_MAX_INTERVAL;
        } else if (strcmp(x->err.code, "access_denied") == 0 || strcmp(x->err.code, "expired_token") == 0) {
            spend(d);
        }
        return avl_error_result(L, &x->err);
    }
    rc = avl_token_take(t, &tr);
    avl_token_response_free(&tr);
    if (rc != 0)
        return luaL_error(L, "out of memory");
    spend(d);
    return 1; /* the token */
}

/* Pushes the exchange of one poll of the device at 1. */
static void prepare_poll(lua_State *L, const char *fn) {
    avl_device *d = check_device(L, 1, fn);
    avl_exchange *x;
    const char *params[5];
    if (!d->answered)
        luaL_error(L, "%s(): the device authorization has no answer yet", fn);
    if (d->over)
        luaL_error(L, "%s(): this device authorization is over (a token, a denial or the expiry came back)", fn);
    if (d->busy)
        luaL_error(L, "%s(): a poll of this device authorization is running", fn);
    lua_settop(L, 1);
    x = avl_exchange_push(L, "device_code", finish_poll, NULL);
    lua_pushvalue(L, 1);
    x->token_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    x->use = &d->opts;
    params[0] = "grant_type"; params[1] = grant_type;
    params[2] = "device_code"; params[3] = d->device_code;
    params[4] = NULL;
    build(L, d, d->token_url, params, &x->req);
    d->busy = 1;
    x->on_end = poll_end; /* only now: the device is ours to mark idle */
}

static int l_poll(lua_State *L) {
    prepare_poll(L, "device:poll");
    return avl_exchange_perform(L, 2);
}

static int l_device_token(lua_State *L) {
    prepare_poll(L, "core.device_token");
    return avl_exchange_perform(L, 2);
}

static int l_prepare_poll(lua_State *L) {
    prepare_poll(L, "device:prepare_poll");
    return 1;
}

/* ------------------------------------------------------------- the type */

static int l_close(lua_State *L) {
    avl_device *d = avl_arg_udata(L, 1, 0, AVL_DEVICE_MT, "device:close");
    if (d->busy)
        d->close_pending = 1;
    else if (!d->closed)
        release(L, d);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_gc(lua_State *L) {
    l_close(L);
    return 0;
}

/* device.<field> or device:<method>(). */
static int l_index(lua_State *L) {
    avl_device *d = avl_arg_udata(L, 1, 0, AVL_DEVICE_MT, "device");
    const char *k = lua_tostring(L, 2);
    luaL_getmetatable(L, AVL_DEVICE_MT);
    lua_getfield(L, -1, "__methods");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1) || k == NULL)
        return 1;
    if (d->closed || d->close_pending || !d->answered)
        return avl_push_opt(L, NULL);
    if (strcmp(k, "user_code") == 0)
        return avl_push_opt(L, d->user_code);
    if (strcmp(k, "verification_uri") == 0)
        return avl_push_opt(L, d->verification_uri);
    if (strcmp(k, "verification_uri_complete") == 0)
        return avl_push_opt(L, d->verification_uri_complete);
    if (strcmp(k, "interval") == 0) {
        lua_pushinteger(L, avl_whole(d->interval));
        return 1;
    }
    if (strcmp(k, "expires_at") == 0) {
        lua_pushinteger(L, avl_whole(d->expires_at));
        return 1;
    }
    if (strcmp(k, "expires_in") == 0) {
        lua_Integer left = avl_whole(d->expires_at - avl_now());
        lua_pushinteger(L, left > 0 ? left : 0);
        return 1;
    }
    if (strcmp(k, "over") == 0) {
        lua_pushboolean(L, d->over);
        return 1;
    }
    return avl_push_opt(L, NULL);
}

/* "avalara.device (user code WDJB-MJHT at https://.../device, expires ...)": never the device code. */
static int l_tostring(lua_State *L) {
    avl_device *d = avl_arg_udata(L, 1, 0, AVL_DEVICE_MT, "tostring");
    char when[40];
    time_t at;
    struct tm tm;
    if (d->closed || d->close_pending || !d->answered) {
        lua_pushfstring(L, "avalara.device (%s)", d->answered ? "closed" : "unanswered");
        return 1;
    }
    at = (time_t)avl_whole(d->expires_at);
    if (gmtime_r(&at, &tm) == NULL || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(when, sizeof when, "%.0f", (double)at);
    lua_pushfstring(L, "avalara.device (user code %s at %s, %s %s)", d->user_code, d->verification_uri,
                    d->over ? "over," : "expires", when);
    return 1;
}

/* ------------------------------------------------- protocol (for fuzz/) */

#define SCRATCH_MT "avalara.device_response"

static int scratch_gc(lua_State *L) {
    avl_device_response_free(luaL_checkudata(L, 1, SCRATCH_MT));
    return 0;
}

/* core.protocol.parse_device_response(status, body) -> {result = "ok" |
 * "http" | "parse", user_code, verification_uri, verification_uri_complete,
 * expires_in, interval, reason}: never the device code. */
static int l_parse_device_response(lua_State *L) {
    static const char fn[] = "protocol.parse_device_response";
    static const char *const results[] = { "ok", "oauth", "http", "parse" };
    avl_device_response *r;
    avl_token_result rc;
    const char *body;
    size_t n;
    int status;
    avl_arg_type(L, 1, 1, LUA_TNUMBER, fn);
    status = avl_clamp_int(lua_tonumber(L, 1), 0, 999);
    avl_arg_type(L, 2, 2, LUA_TSTRING, fn);
    body = lua_tolstring(L, 2, &n);
    r = lua_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, SCRATCH_MT);
    rc = avl_device_response_parse(status, body, n, r);
    if (rc == AVL_TOKEN_NOMEM)
        return luaL_error(L, "out of memory");
    lua_createtable(L, 0, 7);
    avl_set_string(L, "result", results[rc]);
    if (rc == AVL_TOKEN_OK) {
        avl_set_string(L, "user_code", r->user_code);
        avl_set_string(L, "verification_uri", r->verification_uri);
        avl_set_string(L, "verification_uri_complete", r->verification_uri_complete);
        lua_pushnumber(L, r->expires_in);
        lua_setfield(L, -2, "expires_in");
        lua_pushnumber(L, r->interval);
        lua_setfield(L, -2, "interval");
    }
    avl_set_string(L, "reason", r->reason[0] != '\0' ? r->reason : NULL);
    avl_device_response_free(r);
    return 1;
}

void avl_device_open(lua_State *L, int uv) {
    static const luaL_Reg methods[] = {
        { "poll", l_poll },
        { "prepare_poll", l_prepare_poll },
        { "close", l_close },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__gc", l_gc },
        { "__close", l_close },
        { "__tostring", l_tostring },
        { "__index", l_index },
        { NULL, NULL }
    };
    static const luaL_Reg scratch[] = {
        { "__gc", scratch_gc },
        { NULL, NULL }
    };
    static const luaL_Reg fns[] = {
        { "device_token", l_device_token },
        { NULL, NULL }
    };
    static const luaL_Reg protocol[] = {
        { "parse_device_response", l_parse_device_response },
        { NULL, NULL }
    };
    avl_newtype(L, AVL_DEVICE_MT, meta, NULL, uv);
    luaL_getmetatable(L, AVL_DEVICE_MT);
    lua_newtable(L);
    avl_setfuncs(L, methods, uv);
    lua_setfield(L, -2, "__methods");
    lua_pop(L, 1);
    avl_newtype(L, SCRATCH_MT, scratch, NULL, uv);
    avl_setfuncs(L, fns, uv);
    lua_getfield(L, -1, "protocol");
    avl_setfuncs(L, protocol, uv);
    lua_pop(L, 1);
}
