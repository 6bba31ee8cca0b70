/* libFuzzer harness: the plain C ABI's request/response path
 * (include/avalara/abi.h, src/transport/abi.c), as a transport of one's
 * own drives it: a request built from a spec (method, URL, extra header and
 * body from the input; a fixed bearer token), its wire bytes, then a
 * response fed back (status, headers, body in pieces) and its outcome. The
 * token must never appear in an outcome's texts, whatever the server
 * echoes. Input: byte 0 picks the status, byte 1 the options (method, a
 * HEAD, small max_body, Retry-After, a transport failure); the rest is
 * split at NUL bytes into URL tail, header value, request body, response
 * header value, response body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <avalara/abi.h> /* the public header, include/ (-Iinclude) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char token[] = "tok3n+s3cr/t\"x\\%20y";

/* The next piece of the input: up to the next NUL (or the end). */
static const char *piece(const uint8_t **p, const uint8_t *end, size_t *n) {
    const uint8_t *s = *p, *z = s < end ? memchr(s, 0, (size_t)(end - s)) : NULL;
    *n = z != NULL ? (size_t)(z - s) : (size_t)(end - s);
    *p = z != NULL ? z + 1 : end;
    return (const char *)s;
}

static void no_secret(const char *s) {
    if (strstr(s, token) != NULL)
        abort();
}

/* The same over n bytes that may hold NULs (an error's body). */
static void no_secret_in(const char *s, size_t n) {
    size_t k = sizeof token - 1, i;
    for (i = 0; i + k <= n; i++)
        if (memcmp(s + i, token, k) == 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int statuses[] = {200, 201, 204, 100, 400, 401, 403, 404, 408, 422, 429, 500, 503, 0};
    static const char *const methods[] = {NULL, "get", "POST", "HEAD", "put", "x y", "", "DELETE"};
    static const char *const retry[] = {"1", "Wed, 21 Oct 2015 07:28:00 GMT", "1e999", "-3"};
    const uint8_t *p, *end = data + size;
    char url[512], hv[256], *wire = NULL;
    const char *s, *headers[5];
    size_t n, wn;
    avl_req_spec spec;
    avl_req *req;
    avl_resp *resp;
    avl_result res;
    avl_err err;
    if (size < 2)
        return 0;
    p = data + 2;
    memset(&spec, 0, sizeof spec);
    spec.method = methods[data[1] & 7];
    s = piece(&p, end, &n);
    memcpy(url, "http://127.0.0.1:1/", 19);
    n = n < sizeof url - 20 ? n : sizeof url - 20;
    memcpy(url + 19, s, n);
    url[19 + n] = '\0';
    spec.url = url;
    spec.url_len = (data[1] & 8) ? 19 + n : 0;
    spec.token = token;
    s = piece(&p, end, &n);
    n = n < sizeof hv - 1 ? n : sizeof hv - 1;
    memcpy(hv, s, n);
    hv[n] = '\0';
    headers[0] = "X-Fuzz";
    headers[1] = hv;
    headers[2] = (data[1] & 16) ? "Content-Type" : NULL;
    headers[3] = "text/plain";
    headers[4] = NULL;
    spec.headers = headers;
    s = piece(&p, end, &n);
    spec.body = (data[1] & 32) ? s : NULL;
    spec.body_len = n;
    spec.max_body = (data[1] & 64) ? 16 : 0;
    req = avl_req_new(&spec, &err);
    if (req == NULL) {
        no_secret(err.message);
        return 0;
    }
    if (avl_req_wire(req, &wire, &wn, &err) == 0) {
        if (strlen(wire) > wn)
            abort();
        avl_bytes_free(wire, wn);
    } else {
        no_secret(err.message);
    }
    resp = avl_resp_new(req);
    if (resp == NULL)
        goto done;
    avl_resp_status(resp, statuses[data[0] % 14]);
    if (data[0] & 0x80) {
        avl_resp_status(resp, 100);
        (void)avl_resp_header(resp, "X-Interim", 9, token, sizeof token - 1);
        avl_resp_status(resp, statuses[data[0] % 14]);
    }
    s = piece(&p, end, &n);
    (void)avl_resp_header(resp, "Content-Type", 12, "application/json", 16);
    (void)avl_resp_header(resp, "X-Correlation-Id", 16, s, n);
    (void)avl_resp_header(resp, "Retry-After", 11, retry[(data[0] >> 4) & 3], strlen(retry[(data[0] >> 4) & 3]));
    s = piece(&p, end, &n);
    (void)avl_resp_body(resp, s, n / 2);
    (void)avl_resp_body(resp, s + n / 2, n - n / 2);
    if (data[1] & 128)
        avl_resp_fail(resp, (data[0] & 64) ? "timeout" : "bogus", s, n);
    avl_result_of(req, resp, &res);
    if (res.verdict != AVL_OK) {
        no_secret(res.err.message);
        no_secret(res.err.code);
        no_secret(res.err.request_id);
        no_secret_in(res.err.body, res.err.body_len);
        if (res.err.body_len > AVL_ERR_BODY_MAX || res.err.body[res.err.body_len] != '\0' ||
            (!res.err.has_body && res.err.body_len != 0))
            abort();
        if (res.body != NULL)
            abort();
    } else {
        avl_result_decode_failed(req, resp, "fuzz", &res);
        no_secret(res.err.message);
        no_secret_in(res.err.body, res.err.body_len);
    }
    avl_resp_free(resp);
done:
    avl_req_free(req);
    return 0;
}
