/*
 * What a response means (docs/design.md section 6), without I/O: API responses
 * for core.request, failed answers of token and revocation endpoints for
 * the grants. An error body is parsed once, and only when it is at most
 * AVL_PARSE_MAX bytes: a hostile server's megabytes of JSON cost nothing.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "protocol/protocol.h"

static int is_blank(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

static int retryable_status(int status) {
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

/* Text from the response into a field of e: redacted whole, then cut. */
static void copy_string(char *dst, size_t size, const char *src, const avl_secrets *secrets) {
    avl_error_text(dst, size, src, src != NULL ? strlen(src) : 0, secrets);
}

/* The fields every failed response shares. */
static void from_response(avl_error *e, const char *kind, const avl_response *r, const avl_secrets *secrets) {
    size_t n;
    const char *id = avl_response_request_id(r, &n);
    avl_error_init(e, kind);
    e->status = r->status;
    e->retry_after = r->retry_after;
    avl_error_text(e->request_id, sizeof e->request_id, id, n, secrets);
}

/* ------------------------------------------------------------------- API */

/* An AvaTax error object. */
static void api_error(const avl_api_error *api, avl_error *e, const avl_secrets *secrets) {
    const char *code = api->code != NULL ? api->code : "";
    copy_string(e->code, sizeof e->code, code, secrets);
    e->number = api->number;
    if (api->message != NULL && api->detail_description != NULL &&
        strcmp(api->message, api->detail_description) != 0)
        avl_error_textf(e, secrets, "api", "%s (%s)", api->message, api->detail_description);
    else
        avl_error_textf(e, secrets, "api", "%s", api->message != NULL ? api->message
                                       : api->detail_description != NULL ? api->detail_description
                                                                         : code);
    if (strcmp(code, "AuthenticationIncomplete") == 0 || strcmp(code, "BearerTokenInvalid") == 0) {
        e->kind = "oauth";
        e->needs_refresh = 1;
        e->retryable = 0;
    } else if (strcmp(code, "RequestLimitExceeded") == 0) {
        e->kind = "quota";
        e->retryable = 0;
    } else if (strcmp(code, "IdentityServerError") == 0) {
        /* Identity failed behind the API (faultCode Server): it may answer
         * the next time; the token is not in question */
        e->retryable = 1;
        e->needs_refresh = 0;
    } else if (strcmp(code, "AvalaraIdentityApiError") == 0) {
        /* the server's Identity configuration is broken: no retry or new
         * token mends it */
        e->retryable = 0;
        e->needs_refresh = 0;
    }
}

/* A 403: the token was accepted and refused this call, which its scope or
 * the company does not allow; a new token is worth one more try (Avalara's
 * SDKs renew on 403), after that it is a permission error. */
static void forbidden(avl_error *e, const avl_secrets *secrets) {
    char was[sizeof e->message];
    if (strcmp(e->kind, "quota") == 0)
        return;
    memcpy(was, e->message, sizeof was);
    avl_error_textf(e, secrets, "permission",
                    "permission denied: the token's scope or the company does not allow this call: %s", was);
}

/* An RFC 6750 body {"error":"invalid_token",...}: 0 when it is one. */
static int bearer_error(const avl_json *root, avl_error *e, const avl_secrets *secrets) {
    const char *code = avl_json_string(root, "error"), *desc;
    if (code == NULL)
        return -1;
    desc = avl_json_string(root, "error_description");
    e->kind = "oauth";
    e->retryable = 0;
    copy_string(e->code, sizeof e->code, code, secrets);
    copy_string(e->error_description, sizeof e->error_description, desc, secrets);
    copy_string(e->error_uri, sizeof e->error_uri, avl_json_string(root, "error_uri"), secrets);
    avl_error_textf(e, secrets, NULL, "%s", desc != NULL && desc[0] != '\0' ? desc : code);
    return 0;
}

static const char *body_sort(const avl_response *r) {
    const char *b = r->body.data != NULL ? r->body.data : "";
    if (is_blank(b, r->body.len))
        return "an empty body";
    if (strstr(r->content_type, "html") != NULL || b[strspn(b, " \t\r\n")] == '<')
        return "an HTML body";
    if (r->body.len > AVL_PARSE_MAX)
        return "a body too large to be an API error";
    return "a body that is not an API error";
}

avl_outcome avl_api_outcome(const avl_response *r, const avl_secrets *secrets, avl_error *e) {
    avl_json *root = NULL;
    avl_api_error api;
    int s = r->status;
    if (s >= 200 && s <= 299)
        return r->body.len == 0 || is_blank(r->body.data, r->body.len) ? AVL_OUTCOME_EMPTY
                                                                       : AVL_OUTCOME_JSON;
    from_response(e, "http", r, secrets);
    e->retryable = retryable_status(s);
    e->needs_refresh = s == 401 || s == 403;
    if (r->body.len > 0 && r->body.len <= AVL_PARSE_MAX)
        root = avl_json_parse(r->body.data, r->body.len, AVL_JSON_TRAILING_COMMA, NULL, 0);
    if (root != NULL && avl_api_error_from_json(root, &api) == 0) {
        api_error(&api, e, secrets);
        avl_api_error_free(&api);
    } else if (root == NULL || bearer_error(root, e, secrets) != 0) {
        avl_error_setf(e, "http", "HTTP status %d with %s", s, body_sort(r));
    }
    if (s == 403 && e->needs_refresh)
        forbidden(e, secrets);
    avl_json_free(root);
    avl_error_set_body(e, r->body.data, r->body.len, secrets);
    return AVL_OUTCOME_ERROR;
}

void avl_api_parse_failure(const avl_response *r, const char *reason, const avl_secrets *secrets,
                           avl_error *e) {
    from_response(e, "parse", r, secrets);
    e->retry_after = -1;
    avl_error_textf(e, secrets, "parse", "response is not valid JSON: %s", reason);
    avl_error_set_body(e, r->body.data, r->body.len, secrets);
}

/* --------------------------------------------------------- token endpoint */

/* The error codes of RFC 6749 (4.1.2.1, 5.2), RFC 6750 3.1, RFC 8628 3.5
 * and the 2012 service: with one of these the server answered in OAuth terms. */
static int oauth_code(const char *code) {
    static const char *const codes[] = {
        "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
        "unsupported_grant_type", "invalid_scope", "access_denied", "unsupported_response_type",
        "server_error", "temporarily_unavailable", "invalid_token", "insufficient_scope",
        "unsupported_token_type", "authorization_pending", "slow_down", "expired_token", NULL
    };
    const char *const *c;
    for (c = codes; *c != NULL; c++)
        if (strcmp(code, *c) == 0)
            return 1;
    return 0;
}

/* What an OAuth error code means (RFC 6749 5.2, RFC 7009 2.2.1), for an
 * answer without error_description: the same words whatever the status, so
 * an invalid_client at 400 (IdentityServer) reads as one at 401 (the
 * OpenID-certified servers). NULL for another code. */
static const char *oauth_meaning(const char *code) {
    static const char *const meanings[][2] = {
        { "invalid_request", "the server refused the request as malformed" },
        { "invalid_client", "client authentication failed: unknown client, or wrong credentials" },
        { "invalid_grant", "the grant is invalid, expired, revoked, or was issued to another client" },
        { "unauthorized_client", "this client may not use this grant type" },
        { "unsupported_grant_type", "the server does not support this grant type" },
        { "invalid_scope", "the requested scope is invalid, unknown or not allowed" },
        { "unsupported_token_type", "the server cannot revoke this type of token" },
        { "access_denied", "the resource owner or the server denied the request" },
        { "server_error", "the authorization server failed" },
        { "temporarily_unavailable", "the authorization server is temporarily unavailable" },
    };
    size_t i;
    for (i = 0; i < sizeof meanings / sizeof meanings[0]; i++)
        if (strcmp(code, meanings[i][0]) == 0)
            return meanings[i][1];
    return NULL;
}

/* Copies src into a fixed field, turning CR/LF/tab runs into one space and
 * trimming (the 2012 descriptions hold "\r\n"). */
static void readable(char *dst, size_t cap, const char *src) {
    size_t o = 0;
    int space = 0;
    for (; *src != '\0' && o + 1 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
            space = 1;
            continue;
        }
        if (space && o > 0 && o + 2 < cap)
            dst[o++] = ' ';
        space = 0;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
}

static const void *find(const char *hay, size_t n, const char *needle) {
    size_t m = strlen(needle), i;
    for (i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return hay + i;
    return NULL;
}

/* A token endpoint's success body that names tokens holds credentials,
 * perhaps cut short (so unparsed and unredactable): it is never kept.
 * Refusals (non-2xx) issue nothing and keep their bodies, redacted. */
static void withhold(avl_error *e, const char *body, size_t n, int status) {
    size_t l;
    if ((status != 0 && (status < 200 || status > 299)) ||
        (find(body, n, "access_token") == NULL && find(body, n, "refresh_token") == NULL))
        return;
    avl_error_free(e); /* drops the body only */
    l = strlen(e->message);
    snprintf(e->message + l, sizeof e->message - l, " (body withheld: it carries credentials)");
}

void avl_token_withhold(avl_error *e) {
    withhold(e, e->body != NULL ? e->body : "", e->body_len, e->status);
}

void avl_token_failure(avl_token_result res, const avl_response *r, const avl_token_response *tr,
                       const avl_secrets *secrets, avl_error *e) {
    int ok2xx = r->status >= 200 && r->status < 300, keep_body = r->body.len > 0;
    const char *body = r->body.data != NULL ? r->body.data : "";
    avl_secrets all; /* the request's credentials, plus what the response issued */
    const avl_secrets *redact = &all;

    /* Tokens a failed response carried are secrets too. Out of memory for
     * them, the request's credentials are still redacted and the body is
     * not kept at all. */
    avl_secrets_init(&all);
    if (avl_secrets_extend(&all, secrets) != 0 ||
        avl_secrets_add(&all, tr->access_token, tr->access_token ? strlen(tr->access_token) : 0) != 0 ||
        avl_secrets_add(&all, tr->refresh_token, tr->refresh_token ? strlen(tr->refresh_token) : 0) != 0) {
        redact = secrets;
        keep_body = 0;
    }
    if (res == AVL_TOKEN_OAUTH_ERROR) {
        /* An error body in another vocabulary (an AvaTax error object from
         * a gateway, say) on a non-2xx is an HTTP failure with a code. */
        int oauth = oauth_code(tr->error) || ok2xx;
        char desc[sizeof e->message - sizeof e->code - 24];
        from_response(e, oauth ? "oauth" : "http", r, redact);
        /* servers may echo what they were sent: each field is redacted
         * whole, then cut */
        copy_string(e->code, sizeof e->code, tr->error, redact);
        copy_string(e->error_description, sizeof e->error_description, tr->error_description, redact);
        copy_string(e->error_uri, sizeof e->error_uri, tr->error_uri, redact);
        readable(desc, sizeof desc, e->error_description);
        /* the message does not repeat the code: tostring(err) shows it */
        if (desc[0] != '\0' && oauth)
            snprintf(e->message, sizeof e->message, "%s", desc);
        else if (desc[0] != '\0')
            snprintf(e->message, sizeof e->message, "HTTP %d: %s", r->status, desc);
        else if (oauth && oauth_meaning(e->code) != NULL)
            snprintf(e->message, sizeof e->message, "%s", oauth_meaning(e->code));
        else
            snprintf(e->message, sizeof e->message, "%s (HTTP %d)", e->code, r->status);
        /* a device authorization still pending may be polled again (RFC 8628 3.5) */
        e->retryable = oauth ? strcmp(e->code, "temporarily_unavailable") == 0 ||
                                   strcmp(e->code, "server_error") == 0 || r->status >= 500 ||
                                   strcmp(e->code, "authorization_pending") == 0 ||
                                   strcmp(e->code, "slow_down") == 0
                             : retryable_status(r->status);
    } else if (res == AVL_TOKEN_HTTP_ERROR) {
        from_response(e, "http", r, redact);
        snprintf(e->message, sizeof e->message, "HTTP %d from the OAuth endpoint%s%s", r->status,
                 tr->reason[0] ? ": " : "", tr->reason);
        e->retryable = retryable_status(r->status);
    } else {
        from_response(e, "parse", r, redact);
        snprintf(e->message, sizeof e->message, "unreadable OAuth response (HTTP %d): %s", r->status,
                 tr->reason[0] ? tr->reason : "no access_token");
        e->retryable = retryable_status(r->status);
    }
    if (keep_body) {
        avl_error_set_body(e, body, r->body.len, &all);
        withhold(e, body, r->body.len, r->status);
    }
    avl_secrets_free(&all);
}
