/*
 * Token objects: the `avalara.token` userdata (liolib style: one metatable,
 * one cleanup path shared by close, __close and __gc).
 *
 * Every secret (access token, refresh token, client secret, the
 * Authorization header value) is a malloc'd string owned by the userdata,
 * wiped before it is freed on close, __close and __gc. An exchange of the
 * token's own (refresh, revoke) makes it `busy`: close() and __gc then only
 * mark it, and the exchange's end releases it. The exchange works on its
 * own copies of what it sends, never on the token's strings.
 */
#ifndef AVALARA_TOKEN_H
#define AVALARA_TOKEN_H

#include "lua/exchange.h"
#include "protocol/oauth.h"

#define AVL_TOKEN_MT "avalara.token"

/* What refresh() does when there is no refresh token. */
typedef enum {
    AVL_GRANT_CLIENT_CREDENTIALS,   /* repeat it (same scope, auth method, options) */
    AVL_GRANT_GENERATE_TOKEN,       /* repeat the 2012 self-grant */
    AVL_GRANT_AUTHORIZATION_CODE,   /* a code is single-use: refresh() raises */
    AVL_GRANT_REFRESH_TOKEN,
    AVL_GRANT_DEVICE_CODE           /* RFC 8628 (lua/device.c): single-use, as a code */
} avl_grant_kind;

typedef struct {
    int closed;
    int busy;               /* an exchange of this token is running or pending */
    int close_pending;      /* close() or __gc arrived while busy: released when it ends */
    avl_grant_kind grant;
    /* the issued token */
    char *access_token;
    char *refresh_token;
    char *token_type;
    char *scope;
    int has_expiry;
    double expires_at;
    char *authorization;    /* "Bearer <access_token>": both Identity ("Bearer") and 2012 ("avalara")
                             * tokens are sent as Bearer (the 2012 token_type is a label; AvaTax REST v2
                             * and the emulator take Bearer). core.request sends it from cred */
    avl_secret_set *cred;   /* authorization registered for redaction (a reference), made on first use
                             * by core.request, dropped when the token is renewed or closed: an exchange
                             * holds a reference of its own */
    /* what refresh() and revoke() need */
    char *token_url;
    char *revocation_url;   /* NULL: derived from token_url */
    char *client_id;
    char *client_secret;
    char *request_scope;    /* the scope asked for (client_credentials repeats it) */
    int basic;              /* client authentication by HTTP Basic, else form fields */
    avl_options opts;
} avl_token;

/* Pushes a new, empty token userdata (every pointer NULL, default options). */
avl_token *avl_token_push(lua_State *L);
/* Takes the issued fields of a successful response (tr's strings move into
 * t and are set NULL in tr). A missing refresh_token, token_type or scope
 * keeps the value t already had (refresh tokens need not rotate). 0 ok, -1
 * out of memory (t unchanged). */
int avl_token_take(avl_token *t, avl_token_response *tr);
/* Wipes and frees everything t holds and marks it closed; safe twice. */
void avl_token_release(lua_State *L, avl_token *t);
/* The token at idx, open; raises a type error (naming fn) or "attempt to
 * use a closed token". */
avl_token *avl_token_check(lua_State *L, int idx, const char *fn);

/* Starts an exchange of the open, idle token at idx (raises otherwise,
 * naming fn) and builds its request into req (initialised by the caller):
 * the refresh_token grant, or the original grant repeated; or the
 * revocation of the refresh token (else the access token). Raises when the
 * grant cannot be repeated or no revocation endpoint is known, before the
 * token is marked busy. -1 OOM (the token is left idle). */
int avl_token_begin_refresh(lua_State *L, int idx, const char *fn, avl_request *req);
int avl_token_begin_revoke(lua_State *L, int idx, const char *fn, avl_request *req);
/* The finish hooks of the exchanges that make or renew a token (the
 * exchange's token_ref): push the token, filled from the response, or nil,
 * err; raise when the token was closed while the exchange ran. And of a
 * revocation (with or without a token): true, or nil, err. */
int avl_token_finish_grant(lua_State *L, avl_exchange *x, int failed);
int avl_token_finish_revoke(lua_State *L, avl_exchange *x, int failed);

/* Ends the exchange: clears busy; when the token was closed meanwhile,
 * releases it and returns -1 (the caller reports it), else 0. */
int avl_token_end(lua_State *L, avl_token *t);

/* Registers the avalara.token metatable. */
void avl_token_open(lua_State *L, int uv);

#endif
