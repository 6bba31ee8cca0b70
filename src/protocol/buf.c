/*
 * Growable byte buffer. Buffers carry secrets (form bodies with client
 * secrets, tokens), so growing copies into a fresh block and wipes the old
 * one instead of using realloc, which could leave a copy behind.
 */
#include <stdlib.h>
#include <string.h>

#include "protocol/protocol.h"

void avl_wipe(void *p, size_t n) {
    if (p != NULL && n > 0)
        explicit_bzero(p, n); /* glibc 2.25+: never optimised away */
}

size_t avl_copy_field(char *dst, size_t size, const char *src, size_t n) {
    if (size == 0)
        return 0;
    if (src == NULL)
        n = 0;
    if (n >= size)
        n = size - 1;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

int avl_clamp_int(double v, int lo, int hi) {
    if (!(v >= (double)lo)) /* NaN too */
        return lo;
    if (v >= (double)hi)
        return hi;
    return (int)v;
}

void avl_buf_init(avl_buf *b) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

static int buf_reserve(avl_buf *b, size_t extra) {
    size_t need, cap;
    char *p;
    if (extra > (size_t)-1 - b->len - 1)
        return -1;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    p = malloc(cap);
    if (p == NULL)
        return -1;
    if (b->data != NULL) {
        memcpy(p, b->data, b->len + 1);
        avl_wipe(b->data, b->cap);
        free(b->data);
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int avl_buf_append(avl_buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int avl_buf_appendz(avl_buf *b, const char *s) {
    return avl_buf_append(b, s, strlen(s));
}

int avl_buf_putc(avl_buf *b, char c) {
    return avl_buf_append(b, &c, 1);
}

void avl_buf_free(avl_buf *b) {
    if (b->data != NULL) {
        avl_wipe(b->data, b->cap);
        free(b->data);
    }
    avl_buf_init(b);
}

char *avl_strndup(const char *s, size_t n) {
    char *p;
    if (n == (size_t)-1)
        return NULL;
    p = malloc(n + 1);
    if (p == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void avl_free_secret(char **s) {
    if (*s != NULL) {
        avl_wipe(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}
