/*
 * The error record (design.md section 6) before it becomes a Lua table
 * (errors.c pushes it). Text that came from a server or a transport
 * function is redacted as it is stored, so no secret is ever kept here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

static const char *const kinds[] = {
    "transport", "timeout", "tls", "http", "oauth", "api", "quota", "parse", "store", NULL
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

static void redact_field(char *field, size_t size, const avl_secrets *secrets) {
    char tmp[1024];
    size_t len, cap = size - 1 < sizeof tmp ? size - 1 : sizeof tmp;
    len = avl_redact(tmp, cap, field, strlen(field), secrets);
    memcpy(field, tmp, len);
    field[len] = '\0';
    avl_wipe(tmp, sizeof tmp);
}

void avl_error_redact(avl_error *e, const avl_secrets *secrets) {
    if (secrets == NULL || secrets->nraw == 0)
        return;
    redact_field(e->code, sizeof e->code, secrets);
    redact_field(e->message, sizeof e->message, secrets);
    redact_field(e->request_id, sizeof e->request_id, secrets);
    redact_field(e->error_description, sizeof e->error_description, secrets);
    redact_field(e->error_uri, sizeof e->error_uri, secrets);
    if (e->body != NULL) {
        char *old = e->body;
        size_t old_len = e->body_len;
        e->body = NULL;
        avl_error_set_body(e, old, old_len, secrets);
        avl_wipe(old, old_len);
        free(old);
    }
}
