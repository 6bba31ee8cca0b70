/*
 * A small strict JSON parser (RFC 8259): a scanner that reports each value
 * to a sink, and the DOM built on it (avl_json_parse). Recursive descent
 * with a depth limit, so hostile input cannot exhaust the C stack. Error
 * reasons give a byte offset, never input text: the input may be a token
 * response. Raw bytes inside strings are passed through as they are (not
 * validated as UTF-8); escapes, including surrogate pairs, are decoded to
 * UTF-8.
 *
 * Why this size: the scanner and the DOM share one grammar and one set of
 * limits (depth, numbers, escapes); split, the two halves would each need
 * the other's internals.
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/protocol.h"

typedef struct {
    const char *s;
    size_t n;
    size_t pos;
    int flags;
    int max_depth;
    avl_json_sink *sink;
    avl_buf scratch;        /* decoded strings with escapes; wiped at the end */
    char *err;
    size_t err_size;
} parser;

static int fail(parser *p, const char *what) {
    if (p->err != NULL && p->err_size > 0)
        snprintf(p->err, p->err_size, "%s at byte %lu", what, (unsigned long)p->pos);
    return -1;
}

/* A sink's refusal: it says why itself (out of memory, in the DOM). */
static int stopped(parser *p, int rc) {
    return rc != 0 ? fail(p, rc == -2 ? "out of memory" : "stopped") : 0;
}

static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int literal(parser *p, const char *word, avl_jtype type) {
    size_t len = strlen(word);
    avl_jscalar v;
    if (p->n - p->pos < len || memcmp(p->s + p->pos, word, len) != 0)
        return fail(p, "invalid literal");
    p->pos += len;
    memset(&v, 0, sizeof v);
    v.type = type;
    return stopped(p, p->sink->scalar(p->sink, &v));
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* strtod on a NUL-terminated copy, with the C locale's decimal point (a
 * host may have called setlocale). */
static int to_double(parser *p, const char *s, size_t len, double *out) {
    char small[64], *copy, point = '.';
    const struct lconv *lc = localeconv();
    size_t i;
    if (len < sizeof small) {
        memcpy(small, s, len);
        small[len] = '\0';
        copy = small;
    } else if ((copy = avl_strndup(s, len)) == NULL) {
        return fail(p, "out of memory");
    }
    if (lc != NULL && lc->decimal_point != NULL && lc->decimal_point[0] != '\0')
        point = lc->decimal_point[0];
    for (i = 0; i < len; i++)
        if (copy[i] == '.')
            copy[i] = point;
    *out = strtod(copy, NULL);
    if (copy != small)
        free(copy);
    return 0;
}

static int parse_number(parser *p) {
    size_t start = p->pos, digits;
    int negative = 0, integral = 1;
    avl_jscalar v;
    memset(&v, 0, sizeof v);
    v.type = AVL_JNUMBER;
    if (p->pos < p->n && p->s[p->pos] == '-') {
        negative = 1;
        p->pos++;
    }
    if (p->pos >= p->n || !is_digit(p->s[p->pos]))
        return fail(p, "invalid number");
    if (p->s[p->pos] == '0')
        p->pos++;
    else
        while (p->pos < p->n && is_digit(p->s[p->pos]))
            p->pos++;
    digits = p->pos - start - (size_t)negative;
    if (p->pos < p->n && p->s[p->pos] == '.') {
        integral = 0;
        p->pos++;
        if (p->pos >= p->n || !is_digit(p->s[p->pos]))
            return fail(p, "invalid number");
        while (p->pos < p->n && is_digit(p->s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integral = 0;
        p->pos++;
        if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->n || !is_digit(p->s[p->pos]))
            return fail(p, "invalid number");
        while (p->pos < p->n && is_digit(p->s[p->pos]))
            p->pos++;
    }
    if (integral && digits <= 18) {
        /* the common case (ids, counts): exact, and no strtod */
        size_t i;
        for (i = start + (size_t)negative; i < p->pos; i++)
            v.integer = v.integer * 10 + (p->s[i] - '0');
        if (negative)
            v.integer = -v.integer;
        v.is_integer = 1;
        v.number = (double)v.integer;
    } else if (to_double(p, p->s + start, p->pos - start, &v.number) != 0) {
        return -1;
    }
    return stopped(p, p->sink->scalar(p->sink, &v));
}

static int hex4(parser *p, unsigned *out) {
    size_t i;
    unsigned v = 0;
    if (p->n - p->pos < 4)
        return fail(p, "invalid \\u escape");
    for (i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(p, "invalid \\u escape");
    }
    p->pos += 4;
    *out = v;
    return 0;
}

static int put(parser *p, const char *s, size_t n) {
    return avl_buf_append(&p->scratch, s, n) != 0 ? fail(p, "out of memory") : 0;
}

/* Decodes the escape after a backslash into the scratch buffer; every
 * failure has called fail(). */
static int parse_escape(parser *p) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *simple;
    char u[4];
    unsigned cp, lo;
    size_t n;
    if (p->pos >= p->n)
        return fail(p, "unterminated string");
    simple = p->s[p->pos] != '\0' ? strchr(from, p->s[p->pos]) : NULL;
    if (simple != NULL) {
        p->pos++;
        return put(p, &to[simple - from], 1);
    }
    if (p->s[p->pos] != 'u')
        return fail(p, "invalid escape");
    p->pos++;
    if (hex4(p, &cp) != 0)
        return -1;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(p, "unpaired surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return fail(p, "unpaired surrogate in \\u escape");
        p->pos += 2;
        if (hex4(p, &lo) != 0)
            return -1;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail(p, "unpaired surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return put(p, u, n);
}

/* Scans a string at p->pos (the opening quote): *out points into the input
 * when it has no escape, else into the scratch buffer. */
static int parse_string(parser *p, const char **out, size_t *out_len) {
    size_t start = ++p->pos;
    int escaped = 0;
    for (;;) {
        char c;
        if (p->pos >= p->n)
            return fail(p, "unterminated string");
        c = p->s[p->pos];
        if ((unsigned char)c < 0x20)
            return fail(p, "control character in string");
        if (c != '"' && c != '\\') {
            p->pos++;
            continue;
        }
        if (c == '"' && !escaped) {
            *out = p->s + start;
            *out_len = p->pos++ - start;
            return 0;
        }
        if (!escaped) {
            escaped = 1;
            p->scratch.len = 0;
        }
        /* Flush the plain run; the append also makes scratch.data non-NULL. */
        if (put(p, p->s + start, p->pos - start) != 0)
            return -1;
        p->pos++;
        if (c == '"')
            break;
        if (parse_escape(p) != 0)
            return -1;
        start = p->pos;
    }
    *out = p->scratch.data;
    *out_len = p->scratch.len;
    return 0;
}

static int parse_value(parser *p, int depth);

static int parse_container(parser *p, int depth) {
    int object = p->s[p->pos] == '{';
    char close = object ? '}' : ']';
    if (depth >= p->max_depth)
        return fail(p, "nesting too deep");
    if (stopped(p, p->sink->open(p->sink, object ? AVL_JOBJECT : AVL_JARRAY)) != 0)
        return -1;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        return stopped(p, p->sink->close(p->sink));
    }
    for (;;) {
        skip_ws(p);
        if (object) {
            const char *key;
            size_t key_len;
            if (p->pos >= p->n || p->s[p->pos] != '"')
                return fail(p, "expected a member name");
            if (parse_string(p, &key, &key_len) != 0 ||
                stopped(p, p->sink->member(p->sink, key, key_len)) != 0)
                return -1;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':')
                return fail(p, "expected ':'");
            p->pos++;
        }
        if (parse_value(p, depth + 1) != 0)
            return -1;
        skip_ws(p);
        if (p->pos >= p->n)
            return fail(p, "unexpected end of input");
        if (p->s[p->pos] == close) {
            p->pos++;
            return stopped(p, p->sink->close(p->sink));
        }
        if (p->s[p->pos] != ',')
            return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        p->pos++;
        if (p->flags & AVL_JSON_TRAILING_COMMA) {
            skip_ws(p);
            if (p->pos < p->n && p->s[p->pos] == close) {
                p->pos++;
                return stopped(p, p->sink->close(p->sink));
            }
        }
    }
}

static int parse_value(parser *p, int depth) {
    skip_ws(p);
    if (p->pos >= p->n)
        return fail(p, "unexpected end of input");
    switch (p->s[p->pos]) {
    case '{': case '[':
        return parse_container(p, depth);
    case '"': {
        avl_jscalar v;
        memset(&v, 0, sizeof v);
        v.type = AVL_JSTRING;
        if (parse_string(p, &v.s, &v.len) != 0)
            return -1;
        return stopped(p, p->sink->scalar(p->sink, &v));
    }
    case 't':
        return literal(p, "true", AVL_JTRUE);
    case 'f':
        return literal(p, "false", AVL_JFALSE);
    case 'n':
        return literal(p, "null", AVL_JNULL);
    default:
        return parse_number(p);
    }
}

int avl_json_scan(const char *s, size_t n, int flags, int max_depth, avl_json_sink *sink,
                  char *err, size_t err_size) {
    parser p;
    int rc = -1;
    p.s = s;
    p.n = n;
    p.pos = 0;
    p.flags = flags;
    p.max_depth = max_depth;
    p.sink = sink;
    p.err = err;
    p.err_size = err_size;
    avl_buf_init(&p.scratch);
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    skip_ws(&p);
    if (p.pos >= n) {
        fail(&p, "empty input");
    } else if (parse_value(&p, 0) == 0) {
        skip_ws(&p);
        if (p.pos == n)
            rc = 0;
        else
            fail(&p, "trailing data");
    }
    avl_buf_free(&p.scratch); /* strings may be tokens: wiped */
    return rc;
}

/* ------------------------------------------------------------------ DOM */

typedef struct {
    avl_json_sink sink;
    avl_json *root;
    avl_json *open[AVL_JSON_MAX_DEPTH + 1]; /* the containers being filled */
    size_t cap[AVL_JSON_MAX_DEPTH + 1];
    int depth;
    char *key;              /* the pending member name */
    size_t key_len;
    int filled;             /* the root has its value */
} dom;

static void json_clear(avl_json *j) {
    size_t i;
    if (j->string != NULL) {
        avl_wipe(j->string, j->len);
        free(j->string);
    }
    if (j->key != NULL) {
        avl_wipe(j->key, j->key_len);
        free(j->key);
    }
    for (i = 0; i < j->count; i++)
        json_clear(&j->items[i]);
    free(j->items);
    memset(j, 0, sizeof *j);
}

/* The node the next value goes into: the root, or a new child of the
 * innermost container (with the pending member name); NULL on OOM. */
static avl_json *slot(dom *d) {
    avl_json *c, *item;
    size_t *cap;
    if (d->depth == 0)
        return d->filled++ == 0 ? d->root : NULL;
    c = d->open[d->depth - 1];
    cap = &d->cap[d->depth - 1];
    if (c->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        avl_json *items;
        if (ncap > (size_t)-1 / sizeof *items || (items = realloc(c->items, ncap * sizeof *items)) == NULL)
            return NULL;
        c->items = items;
        *cap = ncap;
    }
    item = &c->items[c->count++];
    memset(item, 0, sizeof *item);
    item->key = d->key;
    item->key_len = d->key_len;
    d->key = NULL;
    return item;
}

static int dom_scalar(avl_json_sink *k, const avl_jscalar *v) {
    dom *d = (dom *)k;
    avl_json *j = slot(d);
    if (j == NULL)
        return -2;
    j->type = v->type;
    j->number = v->number;
    if (v->type == AVL_JSTRING) {
        if ((j->string = avl_strndup(v->s, v->len)) == NULL)
            return -2;
        j->len = v->len;
    }
    return 0;
}

static int dom_open(avl_json_sink *k, avl_jtype type) {
    dom *d = (dom *)k;
    avl_json *j = slot(d);
    if (j == NULL)
        return -2;
    j->type = type;
    d->open[d->depth] = j;
    d->cap[d->depth++] = 0;
    return 0;
}

static int dom_member(avl_json_sink *k, const char *key, size_t n) {
    dom *d = (dom *)k;
    if ((d->key = avl_strndup(key, n)) == NULL)
        return -2;
    d->key_len = n;
    return 0;
}

static int dom_close(avl_json_sink *k) {
    ((dom *)k)->depth--;
    return 0;
}

avl_json *avl_json_parse(const char *s, size_t n, int flags, char *err, size_t err_size) {
    dom d;
    memset(&d, 0, sizeof d);
    d.sink.scalar = dom_scalar;
    d.sink.open = dom_open;
    d.sink.member = dom_member;
    d.sink.close = dom_close;
    d.root = calloc(1, sizeof *d.root);
    if (d.root == NULL) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "out of memory at byte 0");
        return NULL;
    }
    if (avl_json_scan(s, n, flags, AVL_JSON_MAX_DEPTH, &d.sink, err, err_size) == 0)
        return d.root;
    if (d.key != NULL) {
        avl_wipe(d.key, d.key_len);
        free(d.key);
    }
    avl_json_free(d.root);
    return NULL;
}

const avl_json *avl_json_get(const avl_json *object, const char *key) {
    const avl_json *found = NULL;
    size_t i, len;
    if (object == NULL || object->type != AVL_JOBJECT)
        return NULL;
    len = strlen(key);
    /* The last of duplicate members wins, as in lua-cjson and JavaScript. */
    for (i = 0; i < object->count; i++)
        if (object->items[i].key_len == len && memcmp(object->items[i].key, key, len) == 0)
            found = &object->items[i];
    return found;
}

const char *avl_json_string(const avl_json *object, const char *key) {
    const avl_json *j = avl_json_get(object, key);
    return j != NULL && j->type == AVL_JSTRING ? j->string : NULL;
}

void avl_json_free(avl_json *j) {
    if (j != NULL) {
        json_clear(j);
        free(j);
    }
}
