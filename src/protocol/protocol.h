/*
 * The protocol layer: pure functions, no I/O, no Lua. Everything here is
 * testable (and fuzzable) from plain C. Implementations live in one file per
 * concept: buf.c, form.c, json.c, datetime.c, token_response.c, api_error_body.c, ...
 *
 * Conventions: functions returning int give 0 on success, -1 on failure
 * (out of memory or malformed input, as documented per function). Every
 * heap string handed out is owned by the struct that holds it and released
 * by that struct's *_free function, which wipes secrets before freeing.
 */
#ifndef AVALARA_PROTOCOL_H
#define AVALARA_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

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
void avl_wipe(void *p, size_t n);   /* explicit_bzero: a memset the compiler cannot drop */
char *avl_strndup(const char *s, size_t n); /* NUL-terminated copy, NULL on OOM */
void avl_free_secret(char **s);     /* wipe strlen(*s) bytes, free, set NULL */
/* Copies at most size - 1 bytes of src[0..n) into dst and terminates it
 * (src may be NULL: dst becomes ""). Returns the bytes copied. */
size_t avl_copy_field(char *dst, size_t size, const char *src, size_t n);
/* v clamped to [lo, hi] (NaN gives lo), as an int: every float-to-int
 * conversion of a number from outside goes through here. */
int avl_clamp_int(double v, int lo, int hi);

/* ---- form.c: percent and application/x-www-form-urlencoded coding */
int avl_is_unreserved(unsigned char c); /* RFC 3986 2.3: ALPHA DIGIT - . _ ~ */
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
#define AVL_JSON_MAX_DEPTH 64      /* the DOM's limit (token and error documents) */

/* The scanner under avl_json_parse, for other builders (lua/json.c pushes
 * Lua values): it reports each value to a sink, in document order. A
 * callback returning non-zero stops the scan (its error is the sink's). */
typedef struct {
    avl_jtype type;           /* a scalar: NULL, FALSE, TRUE, NUMBER, STRING */
    const char *s;            /* STRING: decoded bytes (valid until the callback returns) */
    size_t len;
    double number;            /* NUMBER */
    int is_integer;           /* NUMBER written as an integer of at most 18 digits: integer holds it */
    long long integer;
} avl_jscalar;

typedef struct avl_json_sink avl_json_sink;
struct avl_json_sink {
    int (*scalar)(avl_json_sink *k, const avl_jscalar *v);
    int (*open)(avl_json_sink *k, avl_jtype type);          /* an array or object begins */
    int (*member)(avl_json_sink *k, const char *key, size_t n); /* the next value is this member's */
    int (*close)(avl_json_sink *k);                          /* the innermost one ends */
};
/* 0 when s[0..n) is one JSON value (whitespace around allowed), every part
 * reported to the sink; -1 with a reason in err as for avl_json_parse
 * ("stopped" when a callback returned non-zero). */
int avl_json_scan(const char *s, size_t n, int flags, int max_depth, avl_json_sink *sink,
                  char *err, size_t err_size);
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

/* ---- crypto.c: what PKCE, HTTP Basic and webhook signatures need */
#define AVL_SHA256_LEN 32
typedef struct {
    uint32_t h[8];
    unsigned char buf[64];
    size_t used;    /* bytes waiting in buf */
    uint64_t total; /* bytes hashed so far */
} avl_sha256_ctx;
void avl_sha256_init(avl_sha256_ctx *c);
void avl_sha256_update(avl_sha256_ctx *c, const void *data, size_t n);
void avl_sha256_final(avl_sha256_ctx *c, unsigned char out[AVL_SHA256_LEN]); /* wipes c */
void avl_sha256(const void *data, size_t n, unsigned char out[AVL_SHA256_LEN]);
void avl_hmac_sha256(const void *key, size_t klen, const void *msg, size_t n,
                     unsigned char out[AVL_SHA256_LEN]);
#define AVL_SHA512_LEN 64
typedef struct {
    uint64_t h[8];
    unsigned char buf[128];
    size_t used;    /* bytes waiting in buf */
    uint64_t total; /* bytes hashed so far */
} avl_sha512_ctx;
void avl_sha512_init(avl_sha512_ctx *c);
void avl_sha512_update(avl_sha512_ctx *c, const void *data, size_t n);
void avl_sha512_final(avl_sha512_ctx *c, unsigned char out[AVL_SHA512_LEN]); /* wipes c */
void avl_sha512(const void *data, size_t n, unsigned char out[AVL_SHA512_LEN]);
void avl_hmac_sha512(const void *key, size_t klen, const void *msg, size_t n,
                     unsigned char out[AVL_SHA512_LEN]);
/* Encoded length of n bytes, without a NUL: padded base64, or unpadded base64url. */
size_t avl_base64_len(size_t n, int url);
/* Writes the encoding plus a NUL into out (avl_base64_len(n, url) + 1 bytes). */
void avl_base64(const unsigned char *in, size_t n, char *out, int url);
/* Fills buf from getrandom(2) (or /dev/urandom); 0 ok, -1 no randomness. */
int avl_random_bytes(void *buf, size_t n);

/* ---- api_error_body.c: AvaTax error bodies {"error":{"code","message","target","details":[...]}} */
typedef struct {
    char *code;
    char *message;
    char *target;
    char *detail_description; /* first detail's description, else its message; NULL if none */
    int number;               /* first detail's `number` (AvaTax ErrorCodeId), 0 if none */
} avl_api_error;
/* 0 when body is an AvaTax error object, -1 otherwise (out is then empty). */
int avl_api_error_parse(const char *body, size_t n, avl_api_error *out);
/* The same from a parsed document (root may be NULL). */
int avl_api_error_from_json(const avl_json *root, avl_api_error *out);
void avl_api_error_free(avl_api_error *e);

/* ---- redact.c: the credentials of one exchange, in every form a server
 * may echo them: as sent (raw, form- or percent-encoded, either hex case),
 * JSON-escaped (with or without "\/"), HTML-escaped. Only the raw secrets
 * are copied when they are added; their forms are made the first time
 * something is redacted (most exchanges succeed and never need them). */
/* A credential registered once and shared by the requests that send it
 * (a token's, or a token string's in the binding's cache): its header line
 * "Authorization: <value>" and, pointing into it, its secrets (the value,
 * and the part after its first space). Reference-counted (atomically) and
 * immutable once made: requests on any thread may point to it; the last
 * reference wipes and frees it. */
typedef struct avl_secret_set {
    int refs;
    size_t nraw;              /* 1 or 2 */
    const char *raw[2];       /* suffixes of line */
    size_t line_len;
    char line[];              /* "Authorization: <value>", never written after it is made */
} avl_secret_set;

/* A new set (one reference) for the Authorization value `scheme value`
 * (scheme NULL: value alone; else "scheme value"), or NULL out of memory.
 * The caller has checked the value (avl_header_value_ok, not empty). */
avl_secret_set *avl_secret_set_new(const char *scheme, const char *value, size_t n);
/* Whether set's Authorization value is `scheme value` (scheme as above). */
int avl_secret_set_is(const avl_secret_set *set, const char *scheme, const char *value, size_t n);
avl_secret_set *avl_secret_set_ref(avl_secret_set *set);
/* Drops a reference (NULL: nothing); the last one wipes and frees it. */
void avl_secret_set_unref(avl_secret_set *set);
/* How many sets are alive in the process (for tests). */
long avl_secret_set_live(void);

typedef struct {
    char **raw;               /* owned, wiped on free */
    size_t nraw, capraw;
    avl_secret_set *shared;   /* a reference (dropped on free), or NULL: more raw secrets, not copied */
    char **v;                 /* the forms (of raw and shared's): owned, wiped on free; longest first */
    size_t n, cap;
    int expanded;             /* v holds the forms of every raw secret */
} avl_secrets;

void avl_secrets_init(avl_secrets *s);
/* Adds a copy of s[0..n) (an empty secret is ignored). 0, -1 OOM. */
int avl_secrets_add(avl_secrets *s, const char *secret, size_t n);
/* Takes one more reference to set as s's shared secrets (s has none yet). */
void avl_secrets_share(avl_secrets *s, avl_secret_set *set);
/* Adds every secret of `from`, its shared ones too (NULL: nothing). 0, -1 OOM. */
int avl_secrets_extend(avl_secrets *s, const avl_secrets *from);
void avl_secrets_free(avl_secrets *s);
/* Copies in[0..n) to out (at most cap bytes, not terminated), replacing
 * each occurrence of a secret by "[REDACTED]"; returns the bytes written.
 * The scan covers the whole input, so a secret straddling the cut is still
 * replaced, never half-copied. secrets may be NULL. The forms are made
 * here on first use (out of memory, the raw secrets are still matched). */
size_t avl_redact(char *out, size_t cap, const char *in, size_t n, const avl_secrets *secrets);

/* ---- error_record.c: the error record (docs/design.md section 6), before it is a Lua
 * table. Nothing in here may ever hold a secret: text from servers is
 * redacted as it is stored. */
#define AVL_ERROR_BODY_MAX 4096

typedef struct {
    const char *kind;        /* "transport" "timeout" "tls" "http" "oauth" "api" "permission" "quota" "parse"
                                "store" (static) */
    int status;              /* HTTP status or 0 */
    char code[128];          /* OAuth error / Avalara error.code, "" if none */
    int number;              /* AvaTax ErrorCodeId (error.details[1].number), 0 if none */
    char message[512];       /* readable, secret-free */
    int retryable;
    int needs_refresh;       /* a 401 or 403 that a new token may cure (renew once, retry once) */
    double retry_after;      /* seconds, < 0 when absent */
    char request_id[128];    /* x-correlation-id, "" if none */
    char error_description[512];
    char error_uri[256];
    char *body;              /* raw body, truncated to AVL_ERROR_BODY_MAX, secrets replaced */
    size_t body_len;
} avl_error;

void avl_error_init(avl_error *e, const char *kind);
/* Sets the message (and the kind unless kind is NULL). */
void avl_error_setf(avl_error *e, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The out-of-memory error, worded once for the whole core. */
void avl_error_nomem(avl_error *e);
/* Keeps at most AVL_ERROR_BODY_MAX bytes of body, secrets replaced. */
void avl_error_set_body(avl_error *e, const char *body, size_t n, const avl_secrets *secrets);
/* Stores text from outside (a server, a transport function) in one of e's
 * fixed fields (field, size: e->code, sizeof e->code, ...): every secret in
 * the whole of src[0..n) is replaced first, then the result is cut to the
 * field, so a secret straddling the cut is never half kept. src may be
 * NULL (the field becomes ""), secrets too (a plain copy). */
void avl_error_text(char *field, size_t size, const char *src, size_t n, const avl_secrets *secrets);
/* avl_error_setf for a message that carries text from outside: the whole
 * message is formatted, redacted, then cut (out of memory for a long one,
 * the message says it was withheld). */
void avl_error_textf(avl_error *e, const avl_secrets *secrets, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The static kind string equal to name, or NULL when name is not a kind. */
const char *avl_error_kind(const char *name);
void avl_error_free(avl_error *e); /* the body only; safe twice */

/* ---- message.c: one HTTP exchange's request (owned, every byte wiped on
 * free: it carries credentials) and response. */
typedef struct {
    char *method;             /* "GET", "POST", ... */
    char *url;
    char **headers;           /* NULL-terminated "Name: value" lines (grown as needed) */
    size_t nheaders, cap;
    avl_buf body;             /* body.data == NULL: no body */
    avl_secrets secrets;      /* redacted from anything kept of a failure */
    const char *refused;      /* static: why it must not be sent (a value found unfit while it
                               * was built), or NULL; avl_request_check reports it */
} avl_request;

void avl_request_init(avl_request *r);
/* Set method and url (copies). 0, -1 OOM. */
int avl_request_target(avl_request *r, const char *method, const char *url, size_t url_len);
/* Appends "name: value". 0, -1 OOM. */
int avl_request_header(avl_request *r, const char *name, const char *value, size_t value_len);
/* Appends set's "Authorization: ..." line, borrowed, and takes a reference
 * to set for redaction (r->secrets.shared, which must be NULL). 0, -1 OOM. */
int avl_request_credential(avl_request *r, avl_secret_set *set);
void avl_request_free(avl_request *r);
/* 1 when s[0..n) may be a header field value: no control character (CR,
 * LF, NUL, ...: bytes below 0x20 but HTAB, and DEL). */
int avl_header_value_ok(const char *s, size_t n);
/* Whether r may go on the wire: 0, or -1 with e filled (kind "transport",
 * not retryable, "request not sent: ..."; never quoting a value). Refused:
 * r->refused; a method that is not a token; a URL with a space or a
 * control character; a header line whose name is not a token or whose
 * value holds a control character. Every transport asks before sending:
 * no value can add a header or a request line. */
int avl_request_check(const avl_request *r, avl_error *e);

#define AVL_HEADERS_MAX (256 * 1024)   /* cap on a response's header block */
#define AVL_RETRY_AFTER_MAX 1e9        /* seconds: longer Retry-After values are clamped */

typedef struct {
    int status;
    avl_buf body;
    avl_buf headers;          /* raw header block of the final response: "Name: value\r\n"... */
    char content_type[128];
    size_t request_id_at;     /* x-correlation-id: its whole value, headers.data[at..at+len) */
    size_t request_id_len;    /* (kept whole, so it is redacted before it is cut) */
    double retry_after;       /* seconds, < 0 when absent */
} avl_response;

void avl_response_init(avl_response *r);
void avl_response_free(avl_response *r);
/* Forgets the headers of an interim (1xx) response. */
void avl_response_reset_headers(avl_response *r);
/* The correlation id (x-correlation-id) of r, whole; *n = 0 when none. */
const char *avl_response_request_id(const avl_response *r, size_t *n);
/* Records one header of the final response; content type, correlation id
 * and Retry-After (delay-seconds or an HTTP date, given `now` and a date
 * parser that may be NULL) are picked out. 0, -1 OOM, -2 over AVL_HEADERS_MAX. */
int avl_response_header(avl_response *r, const char *name, size_t nl, const char *value, size_t vl,
                        double now, double (*parse_date)(const char *s));

/* ---- outcome.c: what a response means (docs/design.md section 6), sans I/O */
#define AVL_PARSE_MAX (64 * 1024)  /* error and token bodies larger than this are not parsed */

typedef enum {
    AVL_OUTCOME_JSON,         /* a 2xx with a body to decode */
    AVL_OUTCOME_EMPTY,        /* a 2xx with an empty or blank body */
    AVL_OUTCOME_ERROR         /* e filled */
} avl_outcome;

/* An API response (core.request): a 2xx is JSON or empty; anything else is
 * mapped to e: AvaTax error bodies (AuthenticationIncomplete and
 * BearerTokenInvalid -> "oauth" with needs_refresh, RequestLimitExceeded ->
 * "quota", IdentityServerError (36) retryable and AvalaraIdentityApiError
 * (608) not, whatever the status, others "api"), RFC 6750 bodies -> "oauth",
 * else "http"; 408, 429, 5xx retryable; any 401 or 403 sets needs_refresh
 * (Avalara's SDKs renew the token and retry once on both), and a 403 is
 * kind "permission" (the token's scope or the company does not allow it). */
avl_outcome avl_api_outcome(const avl_response *r, const avl_secrets *secrets, avl_error *e);
/* Fills e for a 2xx body that is not JSON (reason from the decoder). */
void avl_api_parse_failure(const avl_response *r, const char *reason, const avl_secrets *secrets,
                           avl_error *e);
/* A token or revocation endpoint's failed answer: tr is what the parser
 * read (its tokens are redacted too). */
void avl_token_failure(avl_token_result res, const avl_response *r, const avl_token_response *tr,
                       const avl_secrets *secrets, avl_error *e);
/* A transport failure of a token request: a body kept in e that names
 * tokens (a 2xx cut short) is dropped, never half-redacted. */
void avl_token_withhold(avl_error *e);

#endif
