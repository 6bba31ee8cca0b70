/*
 * The error record (docs/design.md section 6) before it becomes a Lua table
 * (lua/error.c pushes it). Text that came from a server or a transport
 * function is redacted as it is stored, whole, before it is cut to its
 * field: no secret, nor a part of one, is ever kept here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/protocol.h"

static const char *const kinds[] = {
    "transport", "timeout", "tls", "http", "oauth", "api", "permission", "quota", "parse", "store", "input",
    NULL
};

const char *avl_error_kind(const char *name) {
    size_t i;
    if (name == NULL)
        return NULL;
    for (i = 0; kinds[i] != NULL; i++)
        if (strcmp(kinds[i], name) == 0)
            return kinds[i];
    return NULL;
}

void avl_error_init(avl_error *e, const char *kind) {
    memset(e, 0, sizeof *e);
    e->kind = kind != NULL ? kind : "transport";
    e->retry_after = -1;
}

void avl_error_setf(avl_error *e, const char *kind, const char *fmt, ...) {
    va_list ap;
    if (kind != NULL)
        e->kind = kind;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void avl_error_nomem(avl_error *e) {
    avl_error_setf(e, "transport", "out of memory");
}

void avl_error_free(avl_error *e) {
    if (e->body != NULL) {
        avl_wipe(e->body, e->body_len);
        free(e->body);
        e->body = NULL;
    }
    e->body_len = 0;
}

void avl_error_set_body(avl_error *e, const char *body, size_t n, const avl_secrets *secrets) {
    char *copy;
    avl_error_free(e);
    if (body == NULL)
        return;
    copy = malloc(AVL_ERROR_BODY_MAX + 1);
    if (copy == NULL)
        return; /* the error stays useful without its body */
    e->body_len = avl_redact(copy, AVL_ERROR_BODY_MAX, body, n, secrets);
    copy[e->body_len] = '\0';
    e->body = copy;
}

void avl_error_text(char *field, size_t size, const char *src, size_t n, const avl_secrets *secrets) {
    size_t len;
    if (size == 0)
        return;
    if (src == NULL)
        n = 0;
    /* avl_redact matches against the whole input and only its output is
     * capped: a secret that starts before the cut is replaced whole. */
    len = avl_redact(field, size - 1, src, n, secrets);
    field[len] = '\0';
}

void avl_error_textf(avl_error *e, const avl_secrets *secrets, const char *kind, const char *fmt, ...) {
    char small[1024], *heap;
    va_list ap;
    int n;
    if (kind != NULL)
        e->kind = kind;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof small)
        avl_error_text(e->message, sizeof e->message, small, (size_t)n, secrets);
    avl_wipe(small, sizeof small);
    if (n < 0)
        e->message[0] = '\0';
    if (n < 0 || (size_t)n < sizeof small)
        return;
    /* longer than the field: formatted whole, so the redaction sees it whole */
    heap = malloc((size_t)n + 1);
    if (heap == NULL) {
        avl_error_setf(e, NULL, "(message withheld: out of memory)");
        return;
    }
    va_start(ap, fmt);
    vsnprintf(heap, (size_t)n + 1, fmt, ap);
    va_end(ap);
    avl_error_text(e->message, sizeof e->message, heap, (size_t)n, secrets);
    avl_wipe(heap, (size_t)n);
    free(heap);
}
