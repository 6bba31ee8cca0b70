/*
 * The grants (design.md section 5): client_credentials, authorization_code,
 * refresh_token, the 2012 generate_token self-grant, revocation, and the
 * authorize URL. Each validates its arguments (raising, naming the field)
 * before any traffic, then posts one form and maps the answer to a token
 * userdata or to nil, err.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "pkce.h"
#include "token.h"

#define MAX_SECRETS 12

static double now_epoch(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Names of the form fields whose values are credentials. */
static int secret_param(const char *name) {
    return strcmp(name, "refresh_token") == 0 || strcmp(name, "code") == 0 ||
           strcmp(name, "code_verifier") == 0 || strcmp(name, "token") == 0 ||
           strcmp(name, "client_secret") == 0;
}

static void add_secret(const char **list, const char *s) {
    int i;
    if (s == NULL || *s == '\0')
        return;
    for (i = 0; i < MAX_SECRETS - 1; i++)
        if (list[i] == NULL) {
            list[i] = s;
            list[i + 1] = NULL;
            return;
        }
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

static void copy_field(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* ---- the exchange */

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
static void withhold_tokens(avl_error *e, const char *body, size_t n, int status) {
    size_t l;
    if ((status != 0 && (status < 200 || status > 299)) ||
        (find(body, n, "access_token") == NULL && find(body, n, "refresh_token") == NULL))
        return;
    avl_error_free(e); /* drops the body only */
    l = strlen(e->message);
    snprintf(e->message + l, sizeof e->message - l, " (body withheld: it carries credentials)");
}

/* Posts p's form. 0 with r filled, -1 with e filled, -2 OOM. secrets gets
 * every credential of the request (it points into p and into auth, which
 * the caller frees with avl_buf_free after use). */
static int post_form(lua_State *L, const avl_options *o, const avl_oauth_post *p,
                     avl_http_response *r, avl_error *e, const char **secrets, avl_buf *auth) {
    avl_buf form, pair;
    const char *headers[4];
    avl_http_request req;
    const char *const *kv;
    int rc, nh = 0;

    avl_buf_init(&form);
    avl_buf_init(&pair);
    secrets[0] = NULL;
    add_secret(secrets, p->client_secret);
    for (kv = p->params; kv[0] != NULL; kv += 2) {
        if (kv[1] == NULL)
            continue;
        if (avl_form_add(&form, kv[0], kv[1], strlen(kv[1])) != 0)
            goto nomem;
        if (secret_param(kv[0]))
            add_secret(secrets, kv[1]);
    }
    if (p->basic) {
        /* RFC 6749 2.3.1: each part form-urlencoded, then "id:secret" in base64 */
        static const char prefix[] = "Authorization: Basic ";
        char *b64;
        if (avl_pct_encode(&pair, p->client_id, strlen(p->client_id), 1) != 0 ||
            avl_buf_putc(&pair, ':') != 0 ||
            avl_pct_encode(&pair, p->client_secret, strlen(p->client_secret), 1) != 0 ||
            (b64 = malloc(avl_base64_len(pair.len, 0) + 1)) == NULL)
            goto nomem;
        avl_base64((const unsigned char *)pair.data, pair.len, b64, 0);
        rc = avl_buf_appendz(auth, prefix) != 0 || avl_buf_appendz(auth, b64) != 0;
        avl_free_secret(&b64);
        if (rc != 0)
            goto nomem;
        add_secret(secrets, auth->data + sizeof prefix - 1);
    } else if (avl_form_add(&form, "client_id", p->client_id, strlen(p->client_id)) != 0 ||
               avl_form_add(&form, "client_secret", p->client_secret, strlen(p->client_secret)) != 0) {
        goto nomem;
    }
    avl_buf_free(&pair);

    headers[nh++] = "Content-Type: application/x-www-form-urlencoded";
    headers[nh++] = "Accept: application/json";
    if (p->basic)
        headers[nh++] = auth->data;
    headers[nh] = NULL;
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.url = p->url;
    req.headers = headers;
    req.body = form.data != NULL ? form.data : "";
    req.body_len = form.len;
    req.secrets = secrets;
    avl_http_response_init(r);
    rc = avl_transport_perform(L, o, &req, r, e);
    avl_buf_free(&form);
    if (rc != 0) {
        avl_http_response_free(r);
        withhold_tokens(e, e->body != NULL ? e->body : "", e->body_len, e->status);
    }
    return rc != 0 ? -1 : 0;

nomem:
    avl_buf_free(&form);
    avl_buf_free(&pair);
    return -2;
}

/* The error codes of RFC 6749 (4.1.2.1, 5.2), RFC 6750 3.1 and the 2012
 * service: with one of these the server answered in OAuth terms. */
static int oauth_code(const char *code) {
    static const char *const codes[] = {
        "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
        "unsupported_grant_type", "invalid_scope", "access_denied", "unsupported_response_type",
        "server_error", "temporarily_unavailable", "invalid_token", "insufficient_scope", NULL
    };
    const char *const *c;
    for (c = codes; *c != NULL; c++)
        if (strcmp(code, *c) == 0)
            return 1;
    return 0;
}

static int retryable_status(int status) {
    return status >= 500 || status == 408 || status == 429;
}

/* Fills e from a failed token/revocation response. */
static void map_error(avl_error *e, avl_token_result res, const avl_http_response *r,
                      const avl_token_response *tr, const char **secrets) {
    int ok2xx = r->status >= 200 && r->status < 300;
    const char *body = r->body.data != NULL ? r->body.data : "";

    add_secret(secrets, tr->access_token);
    add_secret(secrets, tr->refresh_token);
    if (res == AVL_TOKEN_OAUTH_ERROR) {
        /* An error body in another vocabulary (an AvaTax error object from
         * a gateway, say) on a non-2xx is an HTTP failure with a code. */
        int oauth = oauth_code(tr->error) || ok2xx;
        char desc[sizeof e->message - sizeof e->code - 24];
        avl_error_init(e, oauth ? "oauth" : "http");
        copy_field(e->code, sizeof e->code, tr->error);
        copy_field(e->error_description, sizeof e->error_description, tr->error_description);
        copy_field(e->error_uri, sizeof e->error_uri, tr->error_uri);
        readable(desc, sizeof desc, tr->error_description != NULL ? tr->error_description : "");
        if (desc[0] != '\0' && oauth)
            snprintf(e->message, sizeof e->message, "%s: %s", e->code, desc);
        else if (desc[0] != '\0')
            snprintf(e->message, sizeof e->message, "HTTP %d: %s: %s", r->status, e->code, desc);
        else
            snprintf(e->message, sizeof e->message, "%s (HTTP %d)", e->code, r->status);
        if (!oauth)
            e->retryable = retryable_status(r->status);
        else
            e->retryable = strcmp(e->code, "temporarily_unavailable") == 0 ||
                           strcmp(e->code, "server_error") == 0 || r->status >= 500;
    } else if (res == AVL_TOKEN_HTTP_ERROR) {
        avl_error_init(e, "http");
        snprintf(e->message, sizeof e->message, "HTTP %d from the OAuth endpoint%s%s",
                 r->status, tr->reason[0] ? ": " : "", tr->reason);
        e->retryable = retryable_status(r->status);
    } else {
        avl_error_init(e, "parse");
        snprintf(e->message, sizeof e->message, "unreadable OAuth response (HTTP %d): %s",
                 r->status, tr->reason[0] ? tr->reason : "no access_token");
        e->retryable = retryable_status(r->status);
    }
    e->status = r->status;
    e->retry_after = r->retry_after;
    copy_field(e->request_id, sizeof e->request_id, r->request_id);
    if (r->body.len > 0) {
        avl_error_set_body(e, body, r->body.len, secrets);
        withhold_tokens(e, body, r->body.len, r->status);
    }
    avl_error_redact(e, secrets); /* servers may echo what they were sent */
}

int avl_oauth_grant(lua_State *L, const avl_options *o, const avl_oauth_post *p,
                    avl_token_response *tr, avl_error *e) {
    avl_http_response r;
    avl_buf auth;
    const char *secrets[MAX_SECRETS];
    avl_token_result res;
    int rc;

    avl_buf_init(&auth);
    memset(tr, 0, sizeof *tr);
    rc = post_form(L, o, p, &r, e, secrets, &auth);
    if (rc != 0) {
        avl_buf_free(&auth);
        return rc;
    }
    res = avl_token_response_parse(r.status, r.content_type,
                                   r.body.data != NULL ? r.body.data : "", r.body.len,
                                   now_epoch(), tr);
    if (res == AVL_TOKEN_OK) {
        rc = 0;
    } else if (res == AVL_TOKEN_NOMEM) {
        rc = -2;
    } else {
        map_error(e, res, &r, tr, secrets);
        rc = -1;
    }
    if (rc != 0)
        avl_token_response_free(tr);
    avl_http_response_free(&r);
    avl_buf_free(&auth);
    return rc;
}

int avl_oauth_revoke(lua_State *L, const avl_options *o, const avl_oauth_post *p, avl_error *e) {
    avl_http_response r;
    avl_token_response tr;
    avl_buf auth;
    const char *secrets[MAX_SECRETS];
    int rc;

    avl_buf_init(&auth);
    rc = post_form(L, o, p, &r, e, secrets, &auth);
    if (rc != 0) {
        avl_buf_free(&auth);
        return rc;
    }
    if (r.status < 200 || r.status >= 300) {
        /* a refusal reads like a token error response */
        avl_token_result res;
        memset(&tr, 0, sizeof tr);
        res = avl_token_response_parse(r.status, r.content_type,
                                       r.body.data != NULL ? r.body.data : "", r.body.len,
                                       now_epoch(), &tr);
        if (res == AVL_TOKEN_NOMEM) {
            rc = -2;
        } else {
            map_error(e, res == AVL_TOKEN_OK ? AVL_TOKEN_HTTP_ERROR : res, &r, &tr, secrets);
            rc = -1;
        }
        avl_token_response_free(&tr);
    }
    avl_http_response_free(&r);
    avl_buf_free(&auth);
    return rc;
}

char *avl_revocation_url(const char *token_url) {
    static const struct { const char *from, *to; } map[] = {
        { "/connect/token", "/connect/revocation" },
        { "/oauth/access_token", "/oauth/revoke" },
        { "/oauth/generate_token", "/oauth/revoke" },
    };
    size_t end = strcspn(token_url, "?#"), i;
    for (i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t fl = strlen(map[i].from), tl = strlen(map[i].to);
        if (end >= fl && memcmp(token_url + end - fl, map[i].from, fl) == 0) {
            char *u = malloc(end - fl + tl + 1);
            if (u == NULL)
                return NULL;
            memcpy(u, token_url, end - fl);
            memcpy(u + end - fl, map[i].to, tl + 1);
            return u;
        }
    }
    return NULL;
}

/* ---- argument reading: the options table is argument 1; every value read
 * stays on the stack, so the returned pointers live until the call returns. */

static const char *field(lua_State *L, const char *fn, const char *name, int required) {
    size_t n;
    const char *s;
    int t;
    lua_getfield(L, 1, name);
    t = lua_type(L, -1);
    if (t == LUA_TNIL && !required)
        return NULL;
    if (t == LUA_TNIL)
        luaL_error(L, "%s: field '%s' is required", fn, name);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "%s: field '%s' must be a string (got %s)", fn, name, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &n);
    if (strlen(s) != n)
        luaL_error(L, "%s: field '%s' must not contain NUL bytes", fn, name);
    return s;
}

static int auth_method(lua_State *L, const char *fn) {
    const char *m = field(L, fn, "auth_method", 0);
    if (m == NULL || strcmp(m, "post") == 0)
        return 0;
    if (strcmp(m, "basic") == 0)
        return 1;
    return luaL_error(L, "%s: field 'auth_method' must be \"post\" or \"basic\"", fn);
}

static void begin(lua_State *L, const char *fn) {
    if (lua_type(L, 1) != LUA_TTABLE)
        luaL_error(L, "bad argument #1 to '%s' (table expected, got %s)", fn, luaL_typename(L, 1));
    lua_settop(L, 1);
    luaL_checkstack(L, 24, fn);
}

static char *dup_or_raise(lua_State *L, const char *s) {
    char *d;
    if (s == NULL)
        return NULL;
    d = avl_strndup(s, strlen(s));
    if (d == NULL)
        luaL_error(L, "not enough memory");
    return d;
}

typedef struct {
    const char *url, *client_id, *client_secret, *scope, *revocation_url, *refresh_token;
    int basic;
} grant_in;

static void grant_common(lua_State *L, const char *fn, const char *url_field, grant_in *in) {
    memset(in, 0, sizeof *in);
    in->url = field(L, fn, url_field, 1);
    in->client_id = field(L, fn, "client_id", 1);
    in->client_secret = field(L, fn, "client_secret", 1);
    in->revocation_url = field(L, fn, "revocation_url", 0);
    in->basic = auth_method(L, fn);
}

/* Runs a grant whose arguments are all validated: the token userdata is
 * made first and owns everything, so a raise (out of memory, bad transport
 * options) leaks nothing. */
static int run_grant(lua_State *L, avl_grant_kind kind, const grant_in *in, const char *const *params) {
    avl_token *t = avl_token_push(L);
    int tok = lua_gettop(L), rc;
    avl_oauth_post p;
    avl_token_response tr;
    avl_error e;

    t->has_opts = 1;
    avl_options_read(L, 1, &t->opts);
    t->grant = kind;
    t->basic = in->basic;
    t->token_url = dup_or_raise(L, in->url);
    t->revocation_url = dup_or_raise(L, in->revocation_url);
    t->client_id = dup_or_raise(L, in->client_id);
    t->client_secret = dup_or_raise(L, in->client_secret);
    t->request_scope = dup_or_raise(L, in->scope);
    /* an unrotated refresh token stays valid (RFC 6749 6) */
    t->refresh_token = dup_or_raise(L, in->refresh_token);

    p.url = t->token_url;
    p.client_id = t->client_id;
    p.client_secret = t->client_secret;
    p.basic = t->basic;
    p.params = params;
    rc = avl_oauth_grant(L, &t->opts, &p, &tr, &e);
    if (rc == 0) {
        if (avl_token_take(t, &tr) != 0)
            rc = -2;
        avl_token_response_free(&tr);
    }
    if (rc != 0)
        avl_token_release(L, t);
    if (rc == -2)
        return luaL_error(L, "not enough memory");
    if (rc == -1)
        return avl_error_result(L, &e);
    lua_pushvalue(L, tok);
    return 1;
}

static int l_client_credentials(lua_State *L) {
    static const char fn[] = "client_credentials";
    grant_in in;
    const char *params[5];
    begin(L, fn);
    grant_common(L, fn, "token_url", &in);
    in.scope = field(L, fn, "scope", 0);
    params[0] = "grant_type"; params[1] = "client_credentials";
    params[2] = "scope"; params[3] = in.scope;
    params[4] = NULL;
    return run_grant(L, AVL_GRANT_CLIENT_CREDENTIALS, &in, params);
}

static int l_authorization_code(lua_State *L) {
    static const char fn[] = "authorization_code";
    grant_in in;
    const char *params[9];
    begin(L, fn);
    grant_common(L, fn, "token_url", &in);
    params[0] = "grant_type"; params[1] = "authorization_code";
    params[2] = "code"; params[3] = field(L, fn, "code", 1);
    params[4] = "redirect_uri"; params[5] = field(L, fn, "redirect_uri", 1);
    params[6] = "code_verifier"; params[7] = field(L, fn, "code_verifier", 0);
    params[8] = NULL;
    return run_grant(L, AVL_GRANT_AUTHORIZATION_CODE, &in, params);
}

static int l_refresh_token(lua_State *L) {
    static const char fn[] = "refresh_token";
    grant_in in;
    const char *params[7];
    begin(L, fn);
    grant_common(L, fn, "token_url", &in);
    in.refresh_token = field(L, fn, "refresh_token", 1);
    in.scope = field(L, fn, "scope", 0);
    params[0] = "grant_type"; params[1] = "refresh_token";
    params[2] = "refresh_token"; params[3] = in.refresh_token;
    params[4] = "scope"; params[5] = in.scope;
    params[6] = NULL;
    return run_grant(L, AVL_GRANT_REFRESH_TOKEN, &in, params);
}

/* The 2012 self-grant: the partner's credentials are the only parameters. */
static int l_generate_token(lua_State *L) {
    static const char fn[] = "generate_token";
    grant_in in;
    const char *params[1] = { NULL };
    begin(L, fn);
    grant_common(L, fn, "url", &in);
    return run_grant(L, AVL_GRANT_GENERATE_TOKEN, &in, params);
}

static int l_revoke(lua_State *L) {
    static const char fn[] = "revoke";
    grant_in in;
    const char *params[5];
    avl_options o;
    avl_oauth_post p;
    avl_error e;
    int rc;
    begin(L, fn);
    grant_common(L, fn, "url", &in);
    params[0] = "token"; params[1] = field(L, fn, "token", 1);
    params[2] = "token_type_hint"; params[3] = field(L, fn, "token_type_hint", 0);
    params[4] = NULL;
    avl_options_read(L, 1, &o); /* last: nothing may raise while o holds memory */
    p.url = in.url;
    p.client_id = in.client_id;
    p.client_secret = in.client_secret;
    p.basic = in.basic;
    p.params = params;
    rc = avl_oauth_revoke(L, &o, &p, &e);
    avl_options_free(L, &o);
    if (rc == -2)
        return luaL_error(L, "not enough memory");
    if (rc == -1)
        return avl_error_result(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* Query values are percent-encoded with %20 for a space (RFC 3986), which
 * every decoder reads the same way. */
static int l_authorize_url(lua_State *L) {
    static const char fn[] = "authorize_url";
    const char *names[] = { "client_id", "redirect_uri", "scope", "state", "code_challenge" };
    const char *values[5];
    const char *url;
    avl_buf b;
    size_t i, n;
    int ok;
    begin(L, fn);
    url = field(L, fn, "url", 1);
    values[0] = field(L, fn, "client_id", 1);
    values[1] = field(L, fn, "redirect_uri", 1);
    values[2] = field(L, fn, "scope", 0);
    values[3] = field(L, fn, "state", 0);
    values[4] = field(L, fn, "code_challenge", 0);

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
        return luaL_error(L, "not enough memory");
    }
    lua_pushlstring(L, b.data, b.len);
    avl_buf_free(&b);
    return 1;
}

void avl_grants_open(lua_State *L) {
    static const luaL_Reg fns[] = {
        { "client_credentials", l_client_credentials },
        { "authorization_code", l_authorization_code },
        { "refresh_token", l_refresh_token },
        { "generate_token", l_generate_token },
        { "revoke", l_revoke },
        { "authorize_url", l_authorize_url },
        { "pkce", avl_pkce_lua },
        { NULL, NULL }
    };
    luaL_setfuncs(L, fns, 0);
}
