/*
 * The OAuth exchanges (see oauth.h): one application/x-www-form-urlencoded
 * POST to a token or revocation endpoint, and what its answer means.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/oauth.h"

/* Names of the form fields whose values are credentials. */
static int secret_param(const char *name) {
    return strcmp(name, "refresh_token") == 0 || strcmp(name, "code") == 0 ||
           strcmp(name, "code_verifier") == 0 || strcmp(name, "token") == 0 ||
           strcmp(name, "client_secret") == 0 || strcmp(name, "device_code") == 0;
}

static int add_secret(avl_request *out, const char *s) {
    return avl_secrets_add(&out->secrets, s, s != NULL ? strlen(s) : 0);
}

/* "Basic base64(urlencode(id) ":" urlencode(secret))", RFC 6749 2.3.1
 * (a public client's secret is empty). */
static int basic_header(const avl_oauth_post *p, avl_request *out) {
    avl_buf pair, value;
    char *b64 = NULL;
    const char *secret = p->client_secret != NULL ? p->client_secret : "";
    int rc = -1;
    avl_buf_init(&pair);
    avl_buf_init(&value);
    if (avl_pct_encode(&pair, p->client_id, strlen(p->client_id), 1) == 0 &&
        avl_buf_putc(&pair, ':') == 0 &&
        avl_pct_encode(&pair, secret, strlen(secret), 1) == 0 &&
        (b64 = malloc(avl_base64_len(pair.len, 0) + 1)) != NULL) {
        avl_base64((const unsigned char *)pair.data, pair.len, b64, 0);
        if (add_secret(out, b64) == 0 && add_secret(out, pair.data) == 0 &&
            avl_buf_appendz(&value, "Basic ") == 0 && avl_buf_appendz(&value, b64) == 0 &&
            avl_request_header(out, "Authorization", value.data, value.len) == 0)
            rc = 0;
        avl_free_secret(&b64);
    }
    avl_buf_free(&pair);
    avl_buf_free(&value);
    return rc;
}

int avl_oauth_build(const avl_oauth_post *p, avl_request *out) {
    const char *const *kv;
    if (avl_request_target(out, "POST", p->url, strlen(p->url)) != 0 || add_secret(out, p->client_secret) != 0 ||
        avl_buf_append(&out->body, "", 0) != 0) /* an empty form is still a body */
        return -1;
    for (kv = p->params; kv[0] != NULL; kv += 2) {
        if (kv[1] == NULL)
            continue;
        if (avl_form_add(&out->body, kv[0], kv[1], strlen(kv[1])) != 0 ||
            (secret_param(kv[0]) && add_secret(out, kv[1]) != 0))
            return -1;
    }
    if (p->basic) {
        if (basic_header(p, out) != 0)
            return -1;
    } else if (avl_form_add(&out->body, "client_id", p->client_id, strlen(p->client_id)) != 0 ||
               (p->client_secret != NULL &&
                avl_form_add(&out->body, "client_secret", p->client_secret, strlen(p->client_secret)) != 0)) {
        return -1;
    }
    return avl_request_header(out, "Content-Type", "application/x-www-form-urlencoded", 33) == 0 &&
                   avl_request_header(out, "Accept", "application/json", 16) == 0
               ? 0
               : -1;
}

void avl_oauth_transport_failed(avl_error *e) {
    avl_token_withhold(e);
}

/* The body a parser may read: token and error documents are small, and a
 * larger one is not parsed (a hostile server's megabytes cost nothing). */
static const char *parse_body(const avl_response *r, size_t *n) {
    *n = r->body.len <= AVL_PARSE_MAX ? r->body.len : 0;
    return r->body.data != NULL && *n > 0 ? r->body.data : "";
}

int avl_oauth_finish_grant(const avl_request *req, const avl_response *r, double now,
                           avl_token_response *tr, avl_error *e) {
    size_t n;
    const char *body = parse_body(r, &n);
    avl_token_result res = avl_token_response_parse(r->status, r->content_type, body, n, now, tr);
    if (res == AVL_TOKEN_PARSE_ERROR && r->body.len > AVL_PARSE_MAX)
        snprintf(tr->reason, sizeof tr->reason, "token response larger than %d bytes", AVL_PARSE_MAX);
    if (res == AVL_TOKEN_OK)
        return 0;
    if (res != AVL_TOKEN_NOMEM)
        avl_token_failure(res, r, tr, &req->secrets, e);
    avl_token_response_free(tr);
    return res == AVL_TOKEN_NOMEM ? -2 : -1;
}

int avl_oauth_finish_revoke(const avl_request *req, const avl_response *r, double now, avl_error *e) {
    avl_token_response tr;
    avl_token_result res;
    size_t n;
    const char *body;
    if (r->status >= 200 && r->status <= 299)
        return 0;
    /* a refusal reads like a token error response */
    body = parse_body(r, &n);
    res = avl_token_response_parse(r->status, r->content_type, body, n, now, &tr);
    if (res != AVL_TOKEN_NOMEM)
        avl_token_failure(res == AVL_TOKEN_OK ? AVL_TOKEN_HTTP_ERROR : res, r, &tr, &req->secrets, e);
    avl_token_response_free(&tr);
    return res == AVL_TOKEN_NOMEM ? -2 : -1;
}

/* token_url with its path ending `from` (before any query) replaced by `to`;
 * NULL when it does not end so, or OOM. */
static char *swap_tail(const char *token_url, const char *from, const char *to) {
    size_t end = strcspn(token_url, "?#"), fl = strlen(from), tl = strlen(to);
    char *u;
    if (end < fl || memcmp(token_url + end - fl, from, fl) != 0)
        return NULL;
    u = malloc(end - fl + tl + 1);
    if (u != NULL) {
        memcpy(u, token_url, end - fl);
        memcpy(u + end - fl, to, tl + 1);
    }
    return u;
}

char *avl_revocation_url(const char *token_url) {
    char *u = swap_tail(token_url, "/connect/token", "/connect/revocation");
    if (u == NULL)
        u = swap_tail(token_url, "/oauth/access_token", "/oauth/revoke");
    if (u == NULL)
        u = swap_tail(token_url, "/oauth/generate_token", "/oauth/revoke");
    return u;
}

char *avl_refresh_url(const char *token_url) {
    char *u = swap_tail(token_url, "/oauth/generate_token", "/oauth/access_token");
    return u != NULL ? u : avl_strndup(token_url, strlen(token_url));
}
