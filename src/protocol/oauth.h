/*
 * The OAuth exchanges behind the grants, token:refresh() and revoke: build
 * the form request a token or revocation endpoint takes, and finish from
 * its response. Sans I/O, no Lua: token.c and grants.c own the tokens and
 * run the exchanges (lua/exchange.h).
 */
#ifndef AVALARA_OAUTH_H
#define AVALARA_OAUTH_H

#include "protocol/protocol.h"

typedef struct {
    const char *url;
    const char *client_id;
    const char *client_secret;  /* NULL: a public client (RFC 6749 2.1), client_id alone */
    int basic;                  /* RFC 6749 2.3.1 HTTP Basic, else client_id/client_secret form fields */
    const char *const *params;  /* NULL-terminated name, value pairs; a NULL value is left out */
} avl_oauth_post;

/* The POST for p into out (initialised by the caller; every credential is
 * registered in out->secrets). 0, -1 OOM. */
int avl_oauth_build(const avl_oauth_post *p, avl_request *out);

/* A grant's answer: 0 tr filled (AVL_TOKEN_OK), -1 e filled (kind
 * oauth/http/parse), -2 OOM. `now` is when the response arrived. tr is
 * freed on failure. */
int avl_oauth_finish_grant(const avl_request *req, const avl_response *r, double now,
                           avl_token_response *tr, avl_error *e);
/* A revocation's answer: 0 on any 2xx, -1 e filled, -2 OOM. */
int avl_oauth_finish_revoke(const avl_request *req, const avl_response *r, double now, avl_error *e);
/* After a transport failure of a token request (e filled by the transport). */
void avl_oauth_transport_failed(avl_error *e);

/* The revocation endpoint for a token URL: /connect/token ->
 * /connect/revocation, /oauth/access_token or /oauth/generate_token ->
 * /oauth/revoke (a query string is dropped). Malloc'd; NULL when it cannot
 * be derived or OOM. */
char *avl_revocation_url(const char *token_url);
/* Where a refresh_token grant goes for a token from token_url: a 2012
 * self-granted token (/oauth/generate_token) refreshes at
 * /oauth/access_token; any other URL is its own. Malloc'd; NULL on OOM. */
char *avl_refresh_url(const char *token_url);

#endif
