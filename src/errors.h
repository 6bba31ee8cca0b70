/*
 * Structured errors (design.md section 6). C code fills an avl_error, then
 * pushes it as a Lua table with the `avalara.error` metatable (__tostring).
 * Nothing in here may ever hold a secret: bodies are scrubbed of the
 * request's secrets before they are stored (avl_error_set_body).
 */
#ifndef AVALARA_ERRORS_H
#define AVALARA_ERRORS_H

#include <stddef.h>
#include "compat.h"

#define AVL_ERROR_BODY_MAX 4096

typedef struct {
    const char *kind;        /* "transport" "timeout" "tls" "http" "oauth" "api" "quota" "parse" (static) */
    int status;              /* HTTP status or 0 */
    char code[128];          /* OAuth error / Avalara error.code, "" if none */
    int number;              /* AvaTax ErrorCodeId (error.details[1].number), 0 if none */
    char message[512];       /* readable, secret-free */
    int retryable;
    int needs_refresh;       /* a 401 that a new token would cure */
    double retry_after;      /* seconds, < 0 when absent */
    char request_id[128];    /* x-correlation-id, "" if none */
    char error_description[512];
    char error_uri[256];
    char *body;              /* raw body, truncated to AVL_ERROR_BODY_MAX, secrets replaced */
    size_t body_len;
} avl_error;

void avl_error_init(avl_error *e, const char *kind);
void avl_error_setf(avl_error *e, const char *kind, const char *fmt, ...);
/* Copies at most AVL_ERROR_BODY_MAX bytes of body, replacing every
 * occurrence of each non-empty string in secrets (NULL-terminated list)
 * with "[REDACTED]". */
void avl_error_set_body(avl_error *e, const char *body, size_t n, const char *const *secrets);
/* Replaces every secret in the text fields and the body (messages from
 * servers or transport functions may echo what they were sent). */
void avl_error_redact(avl_error *e, const char *const *secrets);
/* The static kind string equal to name, or NULL when name is not a kind. */
const char *avl_error_kind(const char *name);
void avl_error_free(avl_error *e);
/* Pushes the error table (and frees e's heap parts). Returns 1. */
int avl_error_push(lua_State *L, avl_error *e);
/* Pushes nil, err; returns 2: the luaL_fileresult of this module. */
int avl_error_result(lua_State *L, avl_error *e);
/* Registers the avalara.error metatable, core.error(t) (gives a table the
 * metatable after checking kind and message) and core.is_error(v). */
void avl_errors_open(lua_State *L);

#endif
