/*
 * Redaction: the credentials of one exchange, matched in every form a
 * server may echo them back. A secret goes out raw (headers), form-encoded
 * (bodies) or inside base64 (Basic); a server may echo it as it arrived, as
 * it decoded it, JSON-escaped into an error document ("\/" for '/', "\""),
 * or HTML-escaped into an error page. Matching is by bytes, so each form is
 * stored; the list is short (secrets are a few dozen bytes).
 *
 * A credential sent by many requests (core.request's Authorization value)
 * is registered once, in a shared set (avl_secret_set): immutable once
 * made, so requests on any thread may read it; reference-counted
 * atomically, wiped by the last reference. A request points to it
 * (avl_secrets.shared) and makes the forms of its secrets into its own
 * list, as for its own secrets, only when something is redacted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/protocol.h"

#define REDACTED "[REDACTED]"

void avl_secrets_init(avl_secrets *s) {
    memset(s, 0, sizeof *s);
}

static void drop_forms(avl_secrets *s) {
    size_t i;
    for (i = 0; i < s->n; i++)
        avl_free_secret(&s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
    s->expanded = 0;
}

void avl_secrets_free(avl_secrets *s) {
    size_t i;
    drop_forms(s);
    for (i = 0; i < s->nraw; i++)
        avl_free_secret(&s->raw[i]);
    free(s->raw);
    avl_secret_set_unref(s->shared);
    avl_secrets_init(s);
}

/* ---------------------------------------------------------- shared sets */

#define LINE_NAME "Authorization: "

static long live_sets; /* atomic: the sets alive in the process (core.transport_stats) */

long avl_secret_set_live(void) {
    return __atomic_load_n(&live_sets, __ATOMIC_RELAXED);
}

avl_secret_set *avl_secret_set_new(const char *scheme, const char *value, size_t n) {
    size_t name = sizeof LINE_NAME - 1, sl = scheme != NULL ? strlen(scheme) + 1 : 0;
    size_t len = name + sl + n;
    avl_secret_set *set = malloc(sizeof *set + len + 1);
    const char *sp;
    if (set == NULL)
        return NULL;
    memcpy(set->line, LINE_NAME, name);
    if (scheme != NULL) {
        memcpy(set->line + name, scheme, sl - 1);
        set->line[name + sl - 1] = ' ';
    }
    memcpy(set->line + name + sl, value, n);
    set->line[len] = '\0';
    set->line_len = len;
    /* the value, and what follows its first space (the token of "Bearer <token>") */
    set->raw[0] = set->line + name;
    set->nraw = 1;
    if ((sp = strchr(set->raw[0], ' ')) != NULL && sp[1] != '\0')
        set->raw[set->nraw++] = sp + 1;
    set->refs = 1;
    __atomic_add_fetch(&live_sets, 1, __ATOMIC_RELAXED);
    return set;
}

int avl_secret_set_is(const avl_secret_set *set, const char *scheme, const char *value, size_t n) {
    const char *v = set->raw[0];
    size_t vl = set->line_len - (sizeof LINE_NAME - 1);
    if (scheme != NULL) {
        size_t sl = strlen(scheme);
        if (vl != sl + 1 + n || memcmp(v, scheme, sl) != 0 || v[sl] != ' ')
            return 0;
        return memcmp(v + sl + 1, value, n) == 0;
    }
    return vl == n && memcmp(v, value, n) == 0;
}

avl_secret_set *avl_secret_set_ref(avl_secret_set *set) {
    __atomic_add_fetch(&set->refs, 1, __ATOMIC_RELAXED);
    return set;
}

void avl_secret_set_unref(avl_secret_set *set) {
    if (set != NULL && __atomic_sub_fetch(&set->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        avl_wipe(set->line, set->line_len);
        free(set);
        __atomic_sub_fetch(&live_sets, 1, __ATOMIC_RELAXED);
    }
}

void avl_secrets_share(avl_secrets *s, avl_secret_set *set) {
    s->shared = avl_secret_set_ref(set);
    s->expanded = 0;
}

/* Takes b's block as one more form, unless it is empty or already there
 * (then it is freed): b is empty afterwards. Longer forms come first, so
 * "ab%2B" is matched before its prefix "ab". 0, or -1 OOM (b untouched). */
static int keep(avl_secrets *s, avl_buf *b) {
    size_t i, at;
    for (i = 0; b->len > 0 && i < s->n; i++)
        if (strcmp(s->v[i], b->data) == 0)
            break;
    if (b->len == 0 || i < s->n) {
        avl_buf_free(b);
        return 0;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        char **v = realloc(s->v, cap * sizeof *v); /* an array of pointers: nothing secret moves */
        if (v == NULL)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    for (at = 0; at < s->n && strlen(s->v[at]) >= b->len; at++)
        ;
    memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof *s->v);
    s->v[at] = b->data; /* the buffer's block moves into the list */
    s->n++;
    avl_buf_init(b);
    return 0;
}

/* Percent-encoding with lower-case hex digits (some servers re-encode). */
static int pct_lower(avl_buf *out, const avl_buf *upper) {
    size_t i;
    for (i = 0; i < upper->len; i++) {
        char c = upper->data[i];
        /* a hex digit is one of the two bytes after a '%' */
        if (c >= 'A' && c <= 'F' && ((i >= 1 && upper->data[i - 1] == '%') ||
                                     (i >= 2 && upper->data[i - 2] == '%')))
            c = (char)(c - 'A' + 'a');
        if (avl_buf_putc(out, c) != 0)
            return -1;
    }
    return 0;
}

/* JSON string escaping (RFC 8259 7), '/' as "\/" or kept. */
static int json_escape(avl_buf *out, const char *s, size_t n, int slash) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        int rc;
        if (c == '"' || c == '\\' || (c == '/' && slash)) {
            esc[0] = '\\';
            esc[1] = (char)c;
            rc = avl_buf_append(out, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rc = avl_buf_appendz(out, esc);
        } else {
            rc = avl_buf_putc(out, (char)c);
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int html_escape(avl_buf *out, const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        const char *rep = s[i] == '&' ? "&amp;" : s[i] == '<' ? "&lt;" : s[i] == '>' ? "&gt;"
                        : s[i] == '"' ? "&quot;" : s[i] == '\'' ? "&#39;" : NULL;
        if ((rep != NULL ? avl_buf_appendz(out, rep) : avl_buf_putc(out, s[i])) != 0)
            return -1;
    }
    return 0;
}

/* Adds the forms of one secret to s->v. 0, -1 OOM. */
static int add_forms(avl_secrets *s, const char *secret, size_t n) {
    avl_buf raw, form, pct, b;
    int rc = -1;
    avl_buf_init(&raw);
    avl_buf_init(&form);
    avl_buf_init(&pct);
    avl_buf_init(&b);
    /* keep() empties each buffer it is given, so b can be reused */
    if (avl_buf_append(&raw, secret, n) != 0 || avl_pct_encode(&form, secret, n, 1) != 0 ||
        avl_pct_encode(&pct, secret, n, 0) != 0)
        goto done;
    if (pct_lower(&b, &form) != 0 || keep(s, &b) != 0 || pct_lower(&b, &pct) != 0 || keep(s, &b) != 0)
        goto done;
    if (json_escape(&b, secret, n, 1) != 0 || keep(s, &b) != 0 ||
        json_escape(&b, secret, n, 0) != 0 || keep(s, &b) != 0 ||
        html_escape(&b, secret, n) != 0 || keep(s, &b) != 0)
        goto done;
    if (keep(s, &raw) != 0 || keep(s, &form) != 0 || keep(s, &pct) != 0)
        goto done;
    rc = 0;
done:
    avl_buf_free(&raw);
    avl_buf_free(&form);
    avl_buf_free(&pct);
    avl_buf_free(&b);
    return rc;
}

int avl_secrets_add(avl_secrets *s, const char *secret, size_t n) {
    size_t i;
    char *copy;
    if (secret == NULL || n == 0)
        return 0;
    for (i = 0; i < s->nraw; i++)
        if (strlen(s->raw[i]) == n && memcmp(s->raw[i], secret, n) == 0)
            return 0;
    if (s->nraw == s->capraw) {
        size_t cap = s->capraw ? s->capraw * 2 : 4;
        char **r = realloc(s->raw, cap * sizeof *r); /* pointers only: nothing secret moves */
        if (r == NULL)
            return -1;
        s->raw = r;
        s->capraw = cap;
    }
    if ((copy = avl_strndup(secret, n)) == NULL)
        return -1;
    s->raw[s->nraw++] = copy;
    s->expanded = 0;
    return 0;
}

int avl_secrets_extend(avl_secrets *s, const avl_secrets *from) {
    size_t i;
    for (i = 0; from != NULL && i < from->nraw; i++)
        if (avl_secrets_add(s, from->raw[i], strlen(from->raw[i])) != 0)
            return -1;
    for (i = 0; from != NULL && from->shared != NULL && i < from->shared->nraw; i++)
        if (avl_secrets_add(s, from->shared->raw[i], strlen(from->shared->raw[i])) != 0)
            return -1;
    return 0;
}

static size_t nshared(const avl_secrets *s) {
    return s->shared != NULL ? s->shared->nraw : 0;
}

/* Makes every form of every secret, the shared ones' too (once; the shared
 * set is only read); out of memory, the forms made so far stand and the
 * raw secrets are matched too. */
static void expand(avl_secrets *s) {
    size_t i;
    if (s->expanded)
        return;
    drop_forms(s);
    for (i = 0; i < s->nraw; i++)
        if (add_forms(s, s->raw[i], strlen(s->raw[i])) != 0)
            return;
    for (i = 0; i < nshared(s); i++)
        if (add_forms(s, s->shared->raw[i], strlen(s->shared->raw[i])) != 0)
            return;
    s->expanded = 1;
}

/* The secret at position i of the list to match: the forms when they
 * could all be made, else the raw secrets (own, then shared) after what
 * forms there are. */
static const char *nth(const avl_secrets *s, size_t k) {
    if (k < s->n)
        return s->v[k];
    k -= s->n;
    return k < s->nraw ? s->raw[k] : s->shared->raw[k - s->nraw];
}

size_t avl_redact(char *out, size_t cap, const char *in, size_t n, const avl_secrets *secrets) {
    size_t i = 0, o = 0, nsecrets = 0;
    if (secrets != NULL) {
        /* the forms are a cache: making them does not change what secrets holds */
        expand((avl_secrets *)secrets);
        nsecrets = secrets->n + (secrets->expanded ? 0 : secrets->nraw + nshared(secrets));
    }
    while (i < n && o < cap) {
        size_t k, matched = 0;
        for (k = 0; k < nsecrets; k++) {
            const char *sv = nth(secrets, k);
            size_t sl = strlen(sv);
            if (sl <= n - i && in[i] == sv[0] && memcmp(in + i, sv, sl) == 0) {
                matched = sl;
                break;
            }
        }
        if (matched > 0) {
            size_t rl = sizeof REDACTED - 1;
            if (rl > cap - o)
                rl = cap - o;
            memcpy(out + o, REDACTED, rl);
            o += rl;
            i += matched;
        } else {
            out[o++] = in[i++];
        }
    }
    return o;
}
