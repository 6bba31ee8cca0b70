/*
 * A small strict JSON parser (RFC 8259) to a DOM. Recursive descent with a
 * depth limit, so hostile input cannot exhaust the C stack. Error reasons
 * give a byte offset, never input text: the input may be a token response.
 * Raw bytes inside strings are passed through as they are (not validated as
 * UTF-8); escapes, including surrogate pairs, are decoded to UTF-8.
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

typedef struct {
    const char *s;
    size_t n;
    size_t pos;
    int flags;
    char *err;
    size_t err_size;
} parser;

static int fail(parser *p, const char *what) {
    if (p->err != NULL && p->err_size > 0)
        snprintf(p->err, p->err_size, "%s at byte %lu", what, (unsigned long)p->pos);
    return -1;
}

static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

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

static int literal(parser *p, const char *word) {
    size_t len = strlen(word);
    if (p->n - p->pos < len || memcmp(p->s + p->pos, word, len) != 0)
        return fail(p, "invalid literal");
    p->pos += len;
    return 0;
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

static int parse_number(parser *p, avl_json *out) {
    size_t start = p->pos, len, i;
    char small[64], *copy, point = '.';
    const struct lconv *lc;
    if (p->pos < p->n && p->s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->n || !is_digit(p->s[p->pos]))
        return fail(p, "invalid number");
    if (p->s[p->pos] == '0')
        p->pos++;
    else
        while (p->pos < p->n && is_digit(p->s[p->pos]))
            p->pos++;
    if (p->pos < p->n && p->s[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->n || !is_digit(p->s[p->pos]))
            return fail(p, "invalid number");
        while (p->pos < p->n && is_digit(p->s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->n || !is_digit(p->s[p->pos]))
            return fail(p, "invalid number");
        while (p->pos < p->n && is_digit(p->s[p->pos]))
            p->pos++;
    }
    /* strtod needs a NUL-terminated copy, and honours the C locale's
     * decimal point (a host may have called setlocale). */
    len = p->pos - start;
    if (len < sizeof small) {
        memcpy(small, p->s + start, len);
        small[len] = '\0';
        copy = small;
    } else if ((copy = avl_strndup(p->s + start, len)) == NULL) {
        return fail(p, "out of memory");
    }
    lc = localeconv();
    if (lc != NULL && lc->decimal_point != NULL && lc->decimal_point[0] != '\0')
        point = lc->decimal_point[0];
    for (i = 0; i < len; i++)
        if (copy[i] == '.')
            copy[i] = point;
    out->type = AVL_JNUMBER;
    out->number = strtod(copy, NULL);
    if (copy != small)
        free(copy);
    return 0;
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

static int put(parser *p, avl_buf *b, const char *s, size_t n) {
    return avl_buf_append(b, s, n) != 0 ? fail(p, "out of memory") : 0;
}

/* Decodes the escape after a backslash; every failure has called fail(). */
static int parse_escape(parser *p, avl_buf *b) {
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
        return put(p, b, &to[simple - from], 1);
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
    return put(p, b, u, n);
}

/* Parses a string at p->pos (the opening quote) into a fresh heap copy. */
static int parse_string(parser *p, char **out, size_t *out_len) {
    avl_buf b;
    size_t start;
    avl_buf_init(&b);
    p->pos++;
    start = p->pos;
    for (;;) {
        char c;
        if (p->pos >= p->n) {
            avl_buf_free(&b);
            return fail(p, "unterminated string");
        }
        c = p->s[p->pos];
        if ((unsigned char)c < 0x20) {
            avl_buf_free(&b);
            return fail(p, "control character in string");
        }
        if (c != '"' && c != '\\') {
            p->pos++;
            continue;
        }
        /* Flush the plain run; the append also makes b.data non-NULL. */
        if (put(p, &b, p->s + start, p->pos - start) != 0) {
            avl_buf_free(&b);
            return -1;
        }
        p->pos++;
        if (c == '"')
            break;
        if (parse_escape(p, &b) != 0) {
            avl_buf_free(&b);
            return -1;
        }
        start = p->pos;
    }
    *out = b.data;
    *out_len = b.len;
    return 0;
}

static int parse_value(parser *p, avl_json *out, int depth);

/* Appends a zeroed child slot to a container; NULL on OOM. */
static avl_json *push_item(avl_json *j, size_t *cap) {
    if (j->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        avl_json *items;
        if (ncap > (size_t)-1 / sizeof *items)
            return NULL;
        items = realloc(j->items, ncap * sizeof *items);
        if (items == NULL)
            return NULL;
        j->items = items;
        *cap = ncap;
    }
    memset(&j->items[j->count], 0, sizeof j->items[0]);
    return &j->items[j->count++];
}

static int parse_container(parser *p, avl_json *out, int depth) {
    int object = p->s[p->pos] == '{';
    char close = object ? '}' : ']';
    size_t cap = 0;
    if (depth >= AVL_JSON_MAX_DEPTH)
        return fail(p, "nesting too deep");
    out->type = object ? AVL_JOBJECT : AVL_JARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        avl_json *item = push_item(out, &cap);
        if (item == NULL)
            return fail(p, "out of memory");
        skip_ws(p);
        if (object) {
            if (p->pos >= p->n || p->s[p->pos] != '"')
                return fail(p, "expected a member name");
            if (parse_string(p, &item->key, &item->key_len) != 0)
                return -1;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':')
                return fail(p, "expected ':'");
            p->pos++;
        }
        if (parse_value(p, item, depth + 1) != 0)
            return -1;
        skip_ws(p);
        if (p->pos >= p->n)
            return fail(p, "unexpected end of input");
        if (p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        if (p->s[p->pos] != ',')
            return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        p->pos++;
        if (p->flags & AVL_JSON_TRAILING_COMMA) {
            skip_ws(p);
            if (p->pos < p->n && p->s[p->pos] == close) {
                p->pos++;
                return 0;
            }
        }
    }
}

static int parse_value(parser *p, avl_json *out, int depth) {
    skip_ws(p);
    if (p->pos >= p->n)
        return fail(p, "unexpected end of input");
    switch (p->s[p->pos]) {
    case '{': case '[':
        return parse_container(p, out, depth);
    case '"':
        out->type = AVL_JSTRING;
        return parse_string(p, &out->string, &out->len);
    case 't':
        out->type = AVL_JTRUE;
        return literal(p, "true");
    case 'f':
        out->type = AVL_JFALSE;
        return literal(p, "false");
    case 'n':
        out->type = AVL_JNULL;
        return literal(p, "null");
    default:
        return parse_number(p, out);
    }
}

avl_json *avl_json_parse(const char *s, size_t n, int flags, char *err, size_t err_size) {
    parser p;
    avl_json *root = calloc(1, sizeof *root);
    p.s = s;
    p.n = n;
    p.pos = 0;
    p.flags = flags;
    p.err = err;
    p.err_size = err_size;
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (root == NULL) {
        fail(&p, "out of memory");
        return NULL;
    }
    skip_ws(&p);
    if (p.pos >= n) {
        fail(&p, "empty input");
    } else if (parse_value(&p, root, 0) == 0) {
        skip_ws(&p);
        if (p.pos == n)
            return root;
        fail(&p, "trailing data");
    }
    avl_json_free(root);
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
