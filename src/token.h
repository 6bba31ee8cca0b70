/*
 * Token objects (token.c, the `avalara.token` userdata) and the OAuth
 * exchanges behind the grants (grants.c) that token:refresh() and
 * token:revoke() repeat.
 *
 * Every secret (access token, refresh token, client secret, the
 * Authorization header value) is a malloc'd string owned by the userdata,
 * wiped before it is freed on close, __close and __gc.
 */
#ifndef AVALARA_TOKEN_H
#define AVALARA_TOKEN_H

#include "compat.h"
#include "errors.h"
#include "protocol.h"
#include "transport.h"

#define AVL_TOKEN_MT "avalara.token"

/* What refresh() does when there is no refresh token. */
typedef enum {
    AVL_GRANT_CLIENT_CREDENTIALS,   /* repeat it (same scope, auth method, options) */
    AVL_GRANT_GENERATE_TOKEN,       /* repeat the 2012 self-grant */
    AVL_GRANT_AUTHORIZATION_CODE,   /* a code is single-use: refresh() raises */
    AVL_GRANT_REFRESH_TOKEN
} avl_grant_kind;

typedef struct {
    int closed;
    int busy;               /* an exchange of this token is running (it may call Lua) */
    int close_pending;      /* close() arrived while busy: released when it ends */
    avl_grant_kind grant;
    /* the issued token */
    char *access_token;
    char *refresh_token;
    char *token_type;
    char *scope;
    int has_expiry;
    double expires_at;
    char *authorization;    /* "Bearer <access_token>" */
    /* what refresh() and revoke() need */
    char *token_url;
    char *revocation_url;   /* NULL: derived from token_url */
    char *client_id;
    char *client_secret;
    char *request_scope;    /* the scope asked for (client_credentials repeats it) */
    int basic;              /* client authentication by HTTP Basic, else form fields */
    int has_opts;
    avl_options opts;
} avl_token;

/* ---- token.c */

/* Pushes a new, empty token userdata (every pointer NULL, opts unset). */
avl_token *avl_token_push(lua_State *L);
/* Takes the issued fields of a successful response (tr's strings move into
 * t and are set NULL in tr). A missing refresh_token, token_type or scope
 * keeps the value t already had (refresh tokens need not rotate). 0 ok, -1
 * out of memory (t unchanged). */
int avl_token_take(avl_token *t, avl_token_response *tr);
/* Wipes and frees everything t holds and marks it closed; safe twice. */
void avl_token_release(lua_State *L, avl_token *t);
/* The Authorization header value of the token at idx ("Bearer <access>").
 * Raises a type error if idx is not a token, "attempt to use a closed
 * token" on a closed one. The string belongs to the token: copy it before
 * running any Lua code (which could refresh or close the token). Both
 * Identity ("Bearer") and 2012 ("avalara") tokens are sent as Bearer: the
 * token_type the 2012 service returns is a label, AvaTax REST v2 and the
 * emulator take `Bearer`. */
const char *avl_token_authorization(lua_State *L, int idx);

/* ---- grants.c: the exchanges */

typedef struct {
    const char *url;
    const char *client_id;
    const char *client_secret;
    int basic;                  /* RFC 6749 2.3.1 HTTP Basic, else client_id/client_secret form fields */
    const char *const *params;  /* NULL-terminated name, value pairs; a NULL value is left out */
} avl_oauth_post;

/* Posts the form to a token endpoint and parses the token response.
 * 0: tr filled (AVL_TOKEN_OK). -1: e filled (kind oauth/http/parse or a
 * transport kind; secrets kept out). -2: out of memory (nothing to free). */
int avl_oauth_grant(lua_State *L, const avl_options *o, const avl_oauth_post *p,
                    avl_token_response *tr, avl_error *e);
/* Posts an RFC 7009 / 2012 revocation: 0 on any 2xx, -1 e filled, -2 OOM. */
int avl_oauth_revoke(lua_State *L, const avl_options *o, const avl_oauth_post *p, avl_error *e);
/* The revocation endpoint for a token URL: /connect/token -> /connect/revocation,
 * /oauth/access_token or /oauth/generate_token -> /oauth/revoke (a query
 * string is dropped). Malloc'd; NULL when it cannot be derived or OOM. */
char *avl_revocation_url(const char *token_url);

#endif
