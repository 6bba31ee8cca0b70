/*
 * The protocol layer: pure functions, no I/O, no Lua. Everything here is
 * testable (and fuzzable) from plain C. Implementations live in one file per
 * concept: buf.c, form.c, json.c, datetime.c, token_response.c, api_error.c.
 *
 * Conventions: functions returning int give 0 on success, -1 on failure
 * (out of memory or malformed input, as documented per function). Every
 * heap string handed out is owned by the struct that holds it and released
 * by that struct's *_free function, which wipes secrets before freeing.
 */
#ifndef AVALARA_PROTOCOL_H
#define AVALARA_PROTOCOL_H

#include <stddef.h>

/* ---- buf.c: growable byte buffer, always NUL-terminated when data != NULL */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} avl_buf;

void avl_buf_init(avl_buf *b);
int avl_buf_append(avl_buf *b, const char *s, size_t n);
int avl_buf_appendz(avl_buf *b, const char *s);
int avl_buf_putc(avl_buf *b, char c);
void avl_buf_free(avl_buf *b);      /* wipes, then frees; safe to call twice */
void avl_wipe(void *p, size_t n);   /* a memset the compiler cannot drop */
char *avl_strndup(const char *s, size_t n); /* NUL-terminated copy, NULL on OOM */
void avl_free_secret(char **s);     /* wipe strlen(*s) bytes, free, set NULL */

/* ---- form.c: percent and application/x-www-form-urlencoded coding */
/* Appends s percent-encoded: unreserved (ALPHA DIGIT - . _ ~) kept; with
 * form != 0 a space becomes '+' (x-www-form-urlencoded), else "%20". */
int avl_pct_encode(avl_buf *out, const char *s, size_t n, int form);
/* Appends the decoding of s; with form != 0 '+' means space. A '%' not
 * followed by two hex digits is kept literally (lenient, as servers are). */
int avl_pct_decode(avl_buf *out, const char *s, size_t n, int form);
/* Appends "key=value" form-encoded, preceded by '&' when out is not empty. */
int avl_form_add(avl_buf *out, const char *key, const char *value, size_t value_len);
/* The same with a counted key (keys may hold any byte). */
int avl_form_addn(avl_buf *out, const char *key, size_t key_len, const char *value, size_t value_len);
/* Calls cb for each decoded pair of a form body ("a=1&b=2"); stops and
 * returns cb's non-zero value, or -1 on OOM. Keys without '=' get "". */
typedef int (*avl_form_cb)(void *ud, const char *key, size_t key_len,
                           const char *value, size_t value_len);
int avl_form_parse(const char *body, size_t n, avl_form_cb cb, void *ud);

/* ---- json.c: a small JSON DOM, enough for token responses and errors */
typedef enum { AVL_JNULL, AVL_JFALSE, AVL_JTRUE, AVL_JNUMBER, AVL_JSTRING,
               AVL_JARRAY, AVL_JOBJECT } avl_jtype;
typedef struct avl_json avl_json;
struct avl_json {
    avl_jtype type;
    double number;          /* AVL_JNUMBER */
    char *string;           /* AVL_JSTRING: decoded, NUL-terminated (may hold NULs: see len) */
    size_t len;
    char *key;              /* member name when inside an object, else NULL */
    avl_json *items;        /* AVL_JARRAY / AVL_JOBJECT: count children */
    size_t count;
    size_t key_len;         /* length of key: member names may hold NULs too */
};
#define AVL_JSON_TRAILING_COMMA 1  /* accept "[1,]" and "{"a":1, }" (the 2012 sample) */
#define AVL_JSON_MAX_DEPTH 64
/* Parses the whole of s (whitespace around allowed). NULL on error, with a
 * short reason in err ("<what> at byte N", never quoting the input: it may
 * hold secrets; err may be NULL). Nesting deeper than AVL_JSON_MAX_DEPTH
 * fails with "nesting too deep"; out of memory gives "out of memory...". */
avl_json *avl_json_parse(const char *s, size_t n, int flags, char *err, size_t err_size);
/* The member named key (the last one when repeated, as lua-cjson does);
 * NULL when object is NULL or not an object. */
const avl_json *avl_json_get(const avl_json *object, const char *key);
const char *avl_json_string(const avl_json *object, const char *key); /* NULL unless a string member */
void avl_json_free(avl_json *j);    /* wipes strings; NULL-safe */

/* ---- datetime.c */
/* "YYYY-MM-DDTHH:MM:SS[.fraction][Z|+hh:mm|-hh:mm]" (a space may stand for
 * 'T'); no zone means UTC. Year 9999 is fine (no time_t overflow games).
 * Stores seconds since the epoch. 0 ok, -1 malformed. */
int avl_parse_datetime(const char *s, size_t n, double *epoch);

/* ---- token_response.c */
typedef enum {
    AVL_TOKEN_OK = 0,
    AVL_TOKEN_OAUTH_ERROR,  /* error member (JSON or form), any status */
    AVL_TOKEN_HTTP_ERROR,   /* non-2xx with a body that says nothing usable */
    AVL_TOKEN_PARSE_ERROR,  /* 2xx but unreadable, or no access_token */
    AVL_TOKEN_NOMEM
} avl_token_result;

typedef struct {
    char *access_token;     /* secrets: wiped on free */
    char *refresh_token;
    char *token_type;
    char *scope;
    int has_expiry;         /* 0 when the response carried no usable expires_in */
    double expires_at;      /* epoch seconds: now + expires_in, or the datetime */
    char *error;            /* AVL_TOKEN_OAUTH_ERROR: "invalid_grant", ... */
    char *error_description;
    char *error_uri;
    char reason[128];       /* parse/http errors: a readable reason, no body text */
} avl_token_response;

/* Parses a token endpoint response: JSON (with a trailing comma tolerated)
 * or application/x-www-form-urlencoded (decided by content type, falling
 * back to sniffing the first non-space byte). expires_in may be a number, a
 * numeric string, or a datetime string (absolute). `now` is the epoch time
 * the response was received.
 * Results: a non-empty `error` member (string, or an AvaTax {"code",
 * "message"} object) gives AVL_TOKEN_OAUTH_ERROR at any status; otherwise a
 * non-2xx gives AVL_TOKEN_HTTP_ERROR; a 2xx that is unreadable, has no
 * access_token, a token with control characters or spaces, or an unreadable
 * expires_in gives AVL_TOKEN_PARSE_ERROR. On any failure access_token and
 * refresh_token hold whatever string the body carried (NULL if none), only
 * so the caller can redact them from a body it keeps: never use them. `out`
 * is zeroed first and must be freed whatever the result. */
avl_token_result avl_token_response_parse(int status, const char *content_type,
                                          const char *body, size_t n, double now,
                                          avl_token_response *out);
void avl_token_response_free(avl_token_response *r); /* wipes secrets; safe twice */

/* ---- api_error.c: AvaTax error bodies {"error":{"code","message","target","details":[...]}} */
typedef struct {
    char *code;
    char *message;
    char *target;
    char *detail_description; /* first detail's description, else its message; NULL if none */
    int number;               /* first detail's `number` (AvaTax ErrorCodeId), 0 if none */
} avl_api_error;
/* 0 when body is an AvaTax error object, -1 otherwise (out is then empty). */
int avl_api_error_parse(const char *body, size_t n, avl_api_error *out);
void avl_api_error_free(avl_api_error *e);

#endif
