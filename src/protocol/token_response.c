/*
 * Token endpoint responses: RFC 6749 section 5.1/5.2 JSON, Identity's JSON,
 * and the 2012 endpoints' quirks (form-urlencoded errors, a trailing comma
 * in the success body, a datetime in expires_in).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/protocol.h"

enum { F_ACCESS, F_REFRESH, F_TYPE, F_SCOPE, F_EXPIRES, F_ERROR, F_DESC, F_URI, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "access_token", "refresh_token", "token_type", "scope",
    "expires_in", "error", "error_description", "error_uri"};

enum { FMT_NONE, FMT_JSON, FMT_FORM };

/* What the body said, before deciding what it means. */
typedef struct {
    char *v[F_COUNT];      /* owned copies, NULL when absent */
    size_t len[F_COUNT];
    int nonstring[F_COUNT]; /* present (not null) but not a string */
    int found;             /* a known member was seen */
    int has_number;        /* expires_in was a JSON number */
    double number;
    int nomem;
    char json_err[64];
} fields;

static void fields_free(fields *f) {
    int i;
    for (i = 0; i < F_COUNT; i++) {
        if (f->v[i] != NULL) {
            avl_wipe(f->v[i], f->len[i]);
            free(f->v[i]);
            f->v[i] = NULL;
        }
    }
}

static int field_index(const char *key, size_t len) {
    int i;
    for (i = 0; i < F_COUNT; i++)
        if (strlen(field_names[i]) == len && memcmp(field_names[i], key, len) == 0)
            return i;
    return -1;
}

/* Stores a copy of a member; a later duplicate replaces an earlier one. */
static int field_set(fields *f, int i, const char *s, size_t n) {
    char *copy = avl_strndup(s, n);
    if (copy == NULL) {
        f->nomem = 1;
        return -1;
    }
    if (f->v[i] != NULL) {
        avl_wipe(f->v[i], f->len[i]);
        free(f->v[i]);
    }
    f->v[i] = copy;
    f->len[i] = n;
    f->nonstring[i] = 0;
    f->found = 1;
    return 0;
}

static int form_field(void *ud, const char *key, size_t key_len, const char *value, size_t value_len) {
    fields *f = ud;
    int i = field_index(key, key_len);
    return i < 0 ? 0 : field_set(f, i, value, value_len);
}

static int read_form(const char *body, size_t n, fields *f) {
    if (avl_form_parse(body, n, form_field, f) != 0)
        f->nomem = 1;
    return f->nomem || !f->found ? -1 : 0;
}

static int read_json(const char *body, size_t n, fields *f) {
    /* One tolerant pass: every strict document parses the same way under
     * the flag, and the 2012 sample needs it. */
    avl_json *root = avl_json_parse(body, n, AVL_JSON_TRAILING_COMMA, f->json_err, sizeof f->json_err);
    int i;
    if (root == NULL) {
        if (strncmp(f->json_err, "out of memory", 13) == 0)
            f->nomem = 1;
        return -1;
    }
    if (root->type != AVL_JOBJECT) {
        snprintf(f->json_err, sizeof f->json_err, "not an object");
        avl_json_free(root);
        return -1;
    }
    f->found = 1;
    for (i = 0; i < F_COUNT && !f->nomem; i++) {
        const avl_json *j = avl_json_get(root, field_names[i]);
        if (j == NULL || j->type == AVL_JNULL)
            continue;
        if (j->type == AVL_JSTRING) {
            field_set(f, i, j->string, j->len);
        } else if (i == F_EXPIRES && j->type == AVL_JNUMBER) {
            f->has_number = 1;
            f->number = j->number;
        } else if (i == F_ERROR && j->type == AVL_JOBJECT && avl_json_string(j, "code") != NULL) {
            /* An AvaTax-shaped error: {"error":{"code":..,"message":..}} */
            const avl_json *code = avl_json_get(j, "code"), *msg = avl_json_get(j, "message");
            if (field_set(f, F_ERROR, code->string, code->len) == 0 && msg != NULL &&
                msg->type == AVL_JSTRING && f->v[F_DESC] == NULL)
                field_set(f, F_DESC, msg->string, msg->len);
        } else {
            f->nonstring[i] = 1;
        }
    }
    avl_json_free(root);
    return f->nomem ? -1 : 0;
}

/* The media type of a Content-Type value, as FMT_*. */
static int declared_format(const char *ct) {
    size_t len;
    if (ct == NULL)
        return FMT_NONE;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    len = strcspn(ct, "; \t");
    if ((len == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
        (len == 9 && strncasecmp(ct, "text/json", 9) == 0) ||
        (len > 5 && strncasecmp(ct + len - 5, "+json", 5) == 0))
        return FMT_JSON;
    if (len == 33 && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
        return FMT_FORM;
    return FMT_NONE;
}

/* Guesses from the body: JSON starts with '{' or '['; a form body starts
 * with a name made of form-safe bytes followed by '='. HTML is neither. */
static int sniffed_format(const char *body, size_t n) {
    size_t i = 0, start;
    while (i < n && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i < n && (body[i] == '{' || body[i] == '['))
        return FMT_JSON;
    for (start = i; i < n; i++) {
        char c = body[i];
        if (c == '=')
            return i > start ? FMT_FORM : FMT_NONE;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr("-._~%+", c) != NULL) || c == '\0')
            return FMT_NONE;
    }
    return FMT_NONE;
}

static int read_format(int fmt, const char *body, size_t n, fields *f) {
    if (fmt == FMT_JSON)
        return read_json(body, n, f);
    if (fmt == FMT_FORM)
        return read_form(body, n, f);
    return -1;
}

/* Visible ASCII only: these go into an Authorization header or a form. */
static int token_chars_ok(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7F)
            return 0;
    return 1;
}

/* "3600" or "3600.5" (surrounding spaces allowed) as seconds. */
static int parse_seconds(const char *s, size_t n, double *out) {
    size_t i = 0;
    double v = 0, scale = 1;
    int any = 0;
    while (i < n && s[i] == ' ')
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, any = 1)
        v = v * 10 + (s[i] - '0');
    if (any && i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            scale /= 10;
            v += (s[i] - '0') * scale;
        }
    }
    while (i < n && s[i] == ' ')
        i++;
    if (!any || i != n || !isfinite(v)) /* 400 digits overflow to inf */
        return -1;
    *out = v;
    return 0;
}

/* The latest expiry kept: the end of 9999-12-31, what the 2012 endpoints
 * send for "never". A later one (a huge expires_in) is clamped to it. */
#define LATEST_EXPIRY 253402300800.0

/* 0 and sets the expiry when readable or absent; -1 when unreadable. */
static int read_expiry(const fields *f, double now, avl_token_response *out) {
    const char *s = f->v[F_EXPIRES];
    size_t n = f->len[F_EXPIRES];
    double v;
    if (f->nonstring[F_EXPIRES])
        return -1;
    if (f->has_number) {
        if (!isfinite(f->number) || f->number < 0)
            return -1;
        out->expires_at = now + f->number;
    } else if (s == NULL || n == 0) {
        return 0;
    } else if (parse_seconds(s, n, &v) == 0) {
        out->expires_at = now + v;
    } else if (avl_parse_datetime(s, n, &v) == 0) {
        out->expires_at = v; /* the 2012 endpoints send the moment itself */
    } else {
        return -1;
    }
    if (out->expires_at > LATEST_EXPIRY)
        out->expires_at = LATEST_EXPIRY;
    out->has_expiry = 1;
    return 0;
}

/* Moves a field's copy into the response. */
static char *take(fields *f, int i) {
    char *s = f->v[i];
    f->v[i] = NULL;
    return s;
}

static avl_token_result finish(avl_token_response *out, fields *f, avl_token_result r, const char *reason) {
    /* A failed response may still carry tokens: hand them over too, so the
     * caller can redact them from any body it keeps (and then free them). */
    if (r != AVL_TOKEN_OK) {
        out->access_token = take(f, F_ACCESS);
        out->refresh_token = take(f, F_REFRESH);
    }
    fields_free(f);
    if (reason != NULL)
        snprintf(out->reason, sizeof out->reason, "%s", reason);
    return r;
}

avl_token_result avl_token_response_parse(int status, const char *content_type,
                                          const char *body, size_t n, double now,
                                          avl_token_response *out) {
    fields f;
    int declared = declared_format(content_type), sniffed = sniffed_format(body, n);
    int ok2xx = status >= 200 && status <= 299, readable;
    memset(out, 0, sizeof *out);
    memset(&f, 0, sizeof f);

    /* The declared type first; a server that mislabels its body (the 2012
     * endpoints did) still gets read through the sniffed format. */
    readable = read_format(declared != FMT_NONE ? declared : sniffed, body, n, &f) == 0;
    if (!readable && !f.nomem && declared != FMT_NONE && sniffed != declared && sniffed != FMT_NONE) {
        fields_free(&f);
        memset(&f, 0, sizeof f);
        readable = read_format(sniffed, body, n, &f) == 0;
    }
    if (f.nomem)
        return finish(out, &f, AVL_TOKEN_NOMEM, "out of memory");

    if (readable && f.v[F_ERROR] != NULL && f.len[F_ERROR] > 0) {
        out->error = take(&f, F_ERROR);
        out->error_description = take(&f, F_DESC);
        out->error_uri = take(&f, F_URI);
        return finish(out, &f, AVL_TOKEN_OAUTH_ERROR, NULL);
    }
    if (!ok2xx) {
        char reason[64];
        snprintf(reason, sizeof reason, "token endpoint returned HTTP %d", status);
        return finish(out, &f, AVL_TOKEN_HTTP_ERROR, reason);
    }
    if (!readable) {
        char reason[sizeof out->reason];
        size_t i = 0;
        while (i < n && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
            i++;
        if (i == n)
            snprintf(reason, sizeof reason, "token response body is empty");
        else if (f.json_err[0] != '\0')
            snprintf(reason, sizeof reason, "token response is not valid JSON: %s", f.json_err);
        else
            snprintf(reason, sizeof reason, "token response is not JSON or form data");
        return finish(out, &f, AVL_TOKEN_PARSE_ERROR, reason);
    }
    if (f.nonstring[F_ERROR])
        return finish(out, &f, AVL_TOKEN_PARSE_ERROR, "token response has an unreadable error member");
    if (f.nonstring[F_ACCESS])
        return finish(out, &f, AVL_TOKEN_PARSE_ERROR, "token response has a non-string access_token");
    if (f.v[F_ACCESS] == NULL || f.len[F_ACCESS] == 0)
        return finish(out, &f, AVL_TOKEN_PARSE_ERROR, "token response has no access_token");
    if (!token_chars_ok(f.v[F_ACCESS], f.len[F_ACCESS]))
        return finish(out, &f, AVL_TOKEN_PARSE_ERROR, "token response has an access_token with invalid characters");
    if (f.nonstring[F_REFRESH] || (f.v[F_REFRESH] != NULL && !token_chars_ok(f.v[F_REFRESH], f.len[F_REFRESH])))
        return finish(out, &f, AVL_TOKEN_PARSE_ERROR, "token response has an unreadable refresh_token");
    if (read_expiry(&f, now, out) != 0)
        return finish(out, &f, AVL_TOKEN_PARSE_ERROR, "token response has an unreadable expires_in");

    out->access_token = take(&f, F_ACCESS);
    out->refresh_token = f.len[F_REFRESH] > 0 ? take(&f, F_REFRESH) : NULL;
    out->token_type = take(&f, F_TYPE);
    out->scope = take(&f, F_SCOPE);
    return finish(out, &f, AVL_TOKEN_OK, NULL);
}

void avl_token_response_free(avl_token_response *r) {
    avl_free_secret(&r->access_token);
    avl_free_secret(&r->refresh_token);
    avl_free_secret(&r->token_type);
    avl_free_secret(&r->scope);
    avl_free_secret(&r->error);
    avl_free_secret(&r->error_description);
    avl_free_secret(&r->error_uri);
    r->has_expiry = 0;
    r->expires_at = 0;
    r->reason[0] = '\0';
}
