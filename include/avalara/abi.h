/*
 * avalara/abi.h: the request/response path of the core as plain C (issue
 * 27, item 1). No Lua types: a host, a LuaJIT ffi.cdef, or the classic
 * binding (src/lua/request.c) builds a request from a small struct, sends
 * it over libcurl (avl_client, or avl_xfer: the libcurl transfer for a
 * multi handle of one's own) or takes its bytes to send some other way,
 * feeds the answer (status, headers, body) back, and reads an outcome:
 * ok, retry, renew, or an error whose message is already redacted.
 *
 *     avl_req_spec s = {0};              // zero means "the default" everywhere
 *     avl_err err;
 *     avl_result res;
 *     s.url = "https://host/api/v2/...";
 *     s.token = token; s.token_len = strlen(token);
 *     avl_req *rq = avl_req_new(&s, &err);            // NULL: err says why (a caller's mistake)
 *     avl_client *c = avl_client_new(NULL, &err);
 *     avl_resp *rs = avl_resp_new(rq);
 *     avl_client_perform(c, rq, rs, &res);            // or: avl_req_wire + own I/O + avl_resp_*
 *     if (res.verdict == AVL_OK) use(res.body, res.body_len);   // JSON bytes (NULL: empty 2xx)
 *     avl_resp_free(rs); avl_req_free(rq); avl_client_free(c);
 *
 * Ownership: every handle is made by an avl_*_new and freed by its
 * avl_*_free (NULL-safe); whatever holds credentials (a request, its wire
 * bytes, a response) is wiped before it is freed. Strings in avl_err and
 * avl_result are the struct's own (fixed arrays) or static; body pointers
 * in an avl_result point into the avl_resp and live as long as it does.
 * The spec's strings are copied: the caller may free them after avl_req_new.
 *
 * Errors: functions that can fail return NULL or -1 and fill an avl_err
 * (never quoting a secret: every text from a server is redacted of the
 * request's credentials in every form a server may echo them). `kind` is a
 * static string: "argument" (a caller's mistake, found before anything is
 * sent), "transport", "timeout", "tls", "http", "oauth", "api",
 * "permission", "quota", "parse" (docs/errors.md).
 *
 * Globals: none is hidden. avl_client_new calls curl_global_init once per
 * process under a mutex (as luaopen_avalara_core does); nothing else
 * touches process state. The wall clock is read to date a Retry-After.
 *
 * Threads: handles are not locked. One thread at a time per handle; any
 * number of threads may each use their own handles at once. A request may
 * be read (avl_req_*, avl_resp_new, avl_result) by several threads at once
 * once built: nothing reads it mutably.
 */
#ifndef AVALARA_ABI_H
#define AVALARA_ABI_H

#include <stddef.h>

#ifndef AVALARA_API
#if defined(__GNUC__)
#define AVALARA_API __attribute__((visibility("default")))
#else
#define AVALARA_API
#endif
#endif

/* Bumped when a struct below changes layout (an FFI cdef must match;
 * avl_abi_version() says which one a library was built with). 2: avl_err
 * carries the redacted response body. */
#define AVL_ABI_VERSION 2

/* The most bytes of a response body an avl_err keeps (the Lua error's `body`). */
#define AVL_ERR_BODY_MAX 4096

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avl_req avl_req;         /* a built request (owns copies of everything) */
typedef struct avl_resp avl_resp;       /* a response being read, then read */
typedef struct avl_client avl_client;   /* libcurl handles kept alive between calls */

/* What to send. Zero (or NULL) fields take the defaults. */
typedef struct {
    const char *method;          /* letters only, upper-cased; NULL: "GET" */
    const char *url;             /* http(s)://...; plain http only to loopback unless allow_http */
    size_t url_len;              /* 0: strlen(url) */
    const char *token;           /* a bearer token: "Authorization: Bearer <token>" */
    size_t token_len;            /* 0: strlen(token) */
    const char *authorization;   /* or the whole Authorization value (used when token is NULL) */
    size_t authorization_len;    /* 0: strlen(authorization) */
    const char *const *headers;  /* NULL, or name, value, name, value, ..., NULL */
    const char *body;            /* NULL: no body; else JSON unless a Content-Type header says */
    size_t body_len;
    /* options (docs/design.md section 5) */
    double timeout;              /* seconds, total; <= 0: 30 */
    double connect_timeout;      /* seconds; <= 0: 10 */
    size_t max_body;             /* bytes of response body accepted; 0: 4 MiB */
    int allow_http;              /* plain http:// to any host */
    int insecure;                /* do not verify the server's certificate */
    const char *cafile;          /* NULL: the system's */
    const char *capath;
    const char *proxy;           /* may carry credentials: wiped */
    const char *user_agent;      /* NULL: the client's, "avalara-hscode/<v> libcurl/<v> <host>" */
} avl_req_spec;

typedef struct {
    const char *kind;            /* static: see above; NULL in an avl_result that is not an error */
    int status;                  /* HTTP status, 0 when none came */
    int number;                  /* AvaTax ErrorCodeId, 0 if none */
    int retryable;               /* the same request may succeed later */
    int needs_refresh;           /* a new token may cure it (renew once, retry once) */
    double retry_after;          /* seconds (Retry-After), < 0 when absent */
    char code[128];              /* OAuth error / Avalara error.code, "" if none */
    char message[512];           /* readable, redacted */
    char request_id[128];        /* x-correlation-id, "" if none */
    char error_description[512]; /* OAuth / RFC 6750 error_description, redacted, "" if none */
    char error_uri[256];         /* its error_uri, "" if none */
    int has_body;                /* the error kept the response's body (it may be empty) */
    size_t body_len;             /* bytes in body */
    char body[AVL_ERR_BODY_MAX + 1]; /* its first AVL_ERR_BODY_MAX bytes, secrets replaced, NUL-terminated */
} avl_err;

typedef enum {
    AVL_OK = 0,                  /* a 2xx: body/body_len hold its JSON (body NULL when empty) */
    AVL_RETRY = 1,               /* err.retryable: wait err.retry_after (when >= 0) and resend */
    AVL_RENEW = 2,               /* err.needs_refresh: get a new token, then resend once */
    AVL_ERROR = 3                /* err says what */
} avl_verdict;

typedef struct {
    avl_verdict verdict;
    int status;
    const char *body;            /* AVL_OK: the response body (into the avl_resp), else NULL */
    size_t body_len;
    avl_err err;                 /* AVL_RETRY, AVL_RENEW, AVL_ERROR */
} avl_result;

/* AVL_ABI_VERSION as the library was built (a cdef checks it before use). */
AVALARA_API int avl_abi_version(void);

/* ---- requests */

/* Builds a request: NULL with err filled (kind "argument": a bad method,
 * URL, URL scheme, header name; or out of memory). A value that is not fit
 * to send (a control character in the token, a header value or the URL)
 * does not fail here: the request is marked refused, and avl_req_check,
 * avl_req_wire and avl_client_perform report it (kind "transport",
 * "request not sent: ..."). */
AVALARA_API avl_req *avl_req_new(const avl_req_spec *spec, avl_err *err);
AVALARA_API void avl_req_free(avl_req *req);
/* Adds "name: value" (value[0..n)): 0, or -1 with err (bad name, OOM). */
AVALARA_API int avl_req_header(avl_req *req, const char *name, const char *value, size_t n, avl_err *err);
/* 0 when req may go on the wire, else -1 with err. */
AVALARA_API int avl_req_check(const avl_req *req, avl_err *err);
/* Read access: the method, URL, header lines ("Name: value", i < count)
 * and body (NULL when none) the request sends. */
AVALARA_API const char *avl_req_method(const avl_req *req);
AVALARA_API const char *avl_req_url(const avl_req *req);
AVALARA_API size_t avl_req_header_count(const avl_req *req);
AVALARA_API const char *avl_req_header_line(const avl_req *req, size_t i);
AVALARA_API const char *avl_req_body(const avl_req *req, size_t *n);
AVALARA_API double avl_req_timeout(const avl_req *req);
/* The request as HTTP/1.1 bytes (request line with the URL's path and
 * query, Host, the headers but a caller's Host, Content-Length and
 * Transfer-Encoding, Content-Length, the body) for a transport of
 * one's own: 0 with *out (NUL-terminated, *n bytes; free it with
 * avl_bytes_free, which wipes it) or -1 with err (refused, OOM). */
AVALARA_API int avl_req_wire(const avl_req *req, char **out, size_t *n, avl_err *err);
AVALARA_API void avl_bytes_free(char *bytes, size_t n);

/* ---- responses: fed by a transport of one's own, or by avl_client_perform */

/* A response to req (its max_body, whether it is HEAD, its secrets to
 * redact): req must outlive it. NULL on OOM. */
AVALARA_API avl_resp *avl_resp_new(const avl_req *req);
AVALARA_API void avl_resp_free(avl_resp *resp);
AVALARA_API void avl_resp_status(avl_resp *resp, int status);
/* One header of the final response: 0, or -1 when a limit stops the
 * reading (headers too large, a Content-Length over max_body, OOM). */
AVALARA_API int avl_resp_header(avl_resp *resp, const char *name, size_t nl, const char *value, size_t vl);
/* Body bytes: 0, or -1 when a limit stops the reading (over max_body, OOM). */
AVALARA_API int avl_resp_body(avl_resp *resp, const char *p, size_t n);
/* A transport failure of one's own (kind "transport", "timeout", "tls";
 * another or NULL: "transport"): the outcome becomes that error, with
 * message[0..n) redacted (NULL: "transport failed"); retryable unless tls. */
AVALARA_API void avl_resp_fail(avl_resp *resp, const char *kind, const char *message, size_t n);
AVALARA_API int avl_resp_get_status(const avl_resp *resp);
/* The raw header block ("Name: value\r\n"...), NUL-terminated. */
AVALARA_API const char *avl_resp_headers(const avl_resp *resp, size_t *n);

/* What the response means (out filled; returns out->verdict). */
AVALARA_API avl_verdict avl_result_of(const avl_req *req, const avl_resp *resp, avl_result *out);
/* An AVL_OK body that the caller could not decode as JSON: out becomes the
 * "parse" error (reason from the decoder, never quoting the body). */
AVALARA_API void avl_result_decode_failed(const avl_req *req, const avl_resp *resp, const char *reason,
                                          avl_result *out);

/* ---- libcurl */

/* A pool of libcurl handles (keep-alive and TLS sessions across calls);
 * `host` ends the default user agent ("C" when NULL). NULL with err when
 * libcurl cannot be initialised or on OOM. */
AVALARA_API avl_client *avl_client_new(const char *host, avl_err *err);
AVALARA_API void avl_client_free(avl_client *c);
/* Sends req and reads the answer into resp (which must be new), then
 * out = avl_result_of(req, resp). Blocks for at most req's timeout. */
AVALARA_API avl_verdict avl_client_perform(avl_client *c, const avl_req *req, avl_resp *resp, avl_result *out);

/* ---- libcurl, in a multi handle of one's own (an event loop that already drives libcurl) */

typedef struct avl_xfer avl_xfer;    /* one transfer on one of a client's handles */

/* The transfer of req, set up on one of c's handles to read into resp (which must be new), not
 * started: NULL with err when req is refused (kind "transport", "request not sent: ...") or on
 * OOM. Add avl_xfer_easy(t) to your CURLM; when curl_multi_info_read reports it done, call
 * avl_xfer_done(t, msg->data.result), curl_multi_remove_handle, avl_xfer_free(t), then
 * avl_result_of(req, resp, ...). req and resp must outlive t; c must outlive t. */
AVALARA_API avl_xfer *avl_xfer_new(avl_client *c, const avl_req *req, avl_resp *resp, avl_err *err);
/* The configured easy handle, a CURL * (void * here: this header needs no curl.h). Do not change
 * its options; it goes back to c's pool at avl_xfer_free. */
AVALARA_API void *avl_xfer_easy(avl_xfer *t);
/* The transfer ended with libcurl's result `curl_code` (a CURLcode): resp gets the outcome (what
 * avl_client_perform would have read). Once. */
AVALARA_API void avl_xfer_done(avl_xfer *t, int curl_code);
/* Gives the handle back to its client's pool (remove it from your multi first) and frees t.
 * A transfer freed before avl_xfer_done leaves resp as a transport failure. NULL-safe. */
AVALARA_API void avl_xfer_free(avl_xfer *t);

#ifdef __cplusplus
}
#endif

#endif
