/* Unit checks of the plain C ABI (include/avalara/abi.h) without a server:
 * spec/integration/core/abi_spec.lua builds it with the static library
 * (under ASan+UBSan when it can) and expects "abi_unit: N checks, 0 failed". */
#include <stdio.h>
#include <string.h>

#include <avalara/abi.h>

static int checks, failed;

#define CHECK(cond)                                                              \
    do {                                                                         \
        checks++;                                                                \
        if (!(cond)) {                                                           \
            failed++;                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

static const char token[] = "s3cr+t/tok\"en";

static avl_req *make(const char *method, const char *url, const char *body, size_t max_body) {
    avl_req_spec s;
    avl_err err;
    memset(&s, 0, sizeof s);
    s.method = method;
    s.url = url;
    s.token = token;
    s.body = body;
    s.body_len = body != NULL ? strlen(body) : 0;
    s.max_body = max_body;
    return avl_req_new(&s, &err);
}

/* The outcome of status + headers + body for a GET. */
static avl_verdict answer(int status, const char *retry_after, const char *body, avl_result *res) {
    avl_req *req = make(NULL, "https://api.example/x", NULL, 0);
    avl_resp *resp = avl_resp_new(req);
    avl_verdict v;
    avl_resp_status(resp, status);
    avl_resp_header(resp, "Content-Type", 12, "application/json", 16);
    if (retry_after != NULL)
        avl_resp_header(resp, "Retry-After", 11, retry_after, strlen(retry_after));
    avl_resp_body(resp, body, strlen(body));
    v = avl_result_of(req, resp, res);
    /* body pointers die with resp: copy what is checked */
    if (res->body != NULL)
        res->body = res->body_len > 0 ? "(json)" : NULL;
    avl_resp_free(resp);
    avl_req_free(req);
    return v;
}

int main(void) {
    avl_req_spec s;
    avl_err err;
    avl_result res;
    avl_req *req;
    avl_resp *resp;
    char *wire;
    size_t n;

    /* building */
    memset(&s, 0, sizeof s);
    CHECK(avl_req_new(&s, &err) == NULL && strcmp(err.kind, "argument") == 0);
    s.url = "http://api.example.com/x";
    s.token = token;
    CHECK(avl_req_new(&s, &err) == NULL && strstr(err.message, "not loopback") != NULL);
    s.allow_http = 1;
    s.method = "GE T";
    CHECK(avl_req_new(&s, &err) == NULL && strstr(err.message, "'method'") != NULL);

    req = make("post", "https://user:pw@api.example:8443/v2/items?a=1#frag", "{\"a\":1}", 0);
    CHECK(req != NULL && strcmp(avl_req_method(req), "POST") == 0);
    CHECK(avl_req_header_count(req) == 3);  /* Authorization, Accept, Content-Type */
    CHECK(strcmp(avl_req_header_line(req, 0), "Authorization: Bearer s3cr+t/tok\"en") == 0);
    CHECK(avl_req_header_line(req, 3) == NULL);
    CHECK(avl_req_timeout(req) == 30.0);
    CHECK(avl_req_header(req, "Bad Name", "v", 1, &err) == -1 && strcmp(err.kind, "argument") == 0);
    CHECK(avl_req_header(req, "X-Ok", "v", 1, &err) == 0 && avl_req_header_count(req) == 4);
    CHECK(avl_req_wire(req, &wire, &n, &err) == 0);
    CHECK(strncmp(wire, "POST /v2/items?a=1 HTTP/1.1\r\nHost: api.example:8443\r\n", 53) == 0);
    CHECK(strstr(wire, "Content-Length: 7\r\n\r\n{\"a\":1}") != NULL && n == strlen(wire));
    CHECK(strstr(wire, "user:pw") == NULL && strstr(wire, "#frag") == NULL);
    avl_bytes_free(wire, n);
    /* a caller's framing headers never reach the wire: one Host, one Content-Length, no chunking */
    CHECK(avl_req_header(req, "content-length", "0", 1, &err) == 0 && avl_req_header(req, "Host", "evil", 4, &err) == 0);
    CHECK(avl_req_header(req, "Transfer-Encoding", "chunked", 7, &err) == 0);
    CHECK(avl_req_wire(req, &wire, &n, &err) == 0);
    CHECK(strstr(wire, "evil") == NULL && strstr(wire, "chunked") == NULL && strstr(wire, "Content-Length: 0") == NULL);
    CHECK(strstr(wire, "Host: api.example:8443\r\n") != NULL && strstr(wire, "Content-Length: 7\r\n") != NULL);
    avl_bytes_free(wire, n);
    avl_req_free(req);

    /* a value unfit to send: refused when sent, not when built */
    memset(&s, 0, sizeof s);
    s.url = "https://api.example/x";
    s.token = "tok\r\nX-Evil: 1";
    req = avl_req_new(&s, &err);
    CHECK(req != NULL && avl_req_check(req, &err) == -1 && strcmp(err.kind, "transport") == 0);
    CHECK(strstr(err.message, "request not sent") != NULL && strstr(err.message, "Evil") == NULL);
    CHECK(avl_req_wire(req, &wire, &n, &err) == -1 && wire == NULL);
    {
        /* a transfer for a multi of one's own: refused too, before any handle is given */
        avl_client *c = avl_client_new(NULL, &err);
        avl_resp *rs = avl_resp_new(req);
        avl_result r;
        CHECK(c != NULL && rs != NULL && avl_xfer_new(c, req, rs, &err) == NULL);
        CHECK(strcmp(err.kind, "transport") == 0 && strstr(err.message, "request not sent") != NULL);
        CHECK(avl_result_of(req, rs, &r) == AVL_ERROR && strstr(r.err.message, "Evil") == NULL);
        avl_resp_free(rs);
        avl_req_free(req);
        /* set up, then freed before it ran: the response says so */
        s.token = "tok";
        req = avl_req_new(&s, &err);
        rs = avl_resp_new(req);
        {
            avl_xfer *x = avl_xfer_new(c, req, rs, &err);
            CHECK(x != NULL && avl_xfer_easy(x) != NULL);
            avl_xfer_free(x);
        }
        CHECK(avl_result_of(req, rs, &r) == AVL_RETRY && strcmp(r.err.kind, "transport") == 0);
        CHECK(strstr(r.err.message, "freed before it ended") != NULL);
        avl_xfer_free(NULL);
        avl_resp_free(rs);
        avl_client_free(c);
    }
    avl_req_free(req);

    /* outcomes */
    CHECK(answer(200, NULL, "{\"id\":1}", &res) == AVL_OK && res.status == 200 && res.body != NULL);
    CHECK(res.err.kind == NULL && !res.err.has_body && res.err.body_len == 0 && res.err.retry_after < 0);
    CHECK(avl_abi_version() == AVL_ABI_VERSION && AVL_ABI_VERSION == 2);
    CHECK(answer(204, NULL, "", &res) == AVL_OK && res.body == NULL);
    CHECK(answer(429, "7", "{\"error\":{\"code\":\"RequestLimitExceeded\",\"message\":\"slow\"}}", &res) == AVL_ERROR);
    CHECK(strcmp(res.err.kind, "quota") == 0 && res.err.retry_after == 7);
    CHECK(answer(503, "2", "<html>down</html>", &res) == AVL_RETRY && res.err.retry_after == 2);
    CHECK(res.err.has_body && res.err.body_len == 17 && strcmp(res.err.body, "<html>down</html>") == 0);
    CHECK(answer(401, NULL, "{\"error\":{\"code\":\"BearerTokenInvalid\",\"message\":\"bad s3cr+t/tok\\\"en\"}}",
                 &res) == AVL_RENEW);
    CHECK(strcmp(res.err.kind, "oauth") == 0 && strstr(res.err.message, "s3cr+t") == NULL);
    CHECK(strstr(res.err.message, "[REDACTED]") != NULL);
    CHECK(res.err.has_body && strstr(res.err.body, "s3cr+t") == NULL);
    CHECK(strstr(res.err.body, "BearerTokenInvalid") != NULL);
    CHECK(strlen(res.err.body) == res.err.body_len);
    CHECK(answer(404, NULL, "{}", &res) == AVL_ERROR && strcmp(res.err.kind, "http") == 0);
    CHECK(answer(401, NULL, "{\"error\":\"invalid_token\",\"error_description\":\"expired s3cr+t/tok\\\"en\"}",
                 &res) == AVL_RENEW);
    CHECK(strstr(res.err.error_description, "expired") != NULL && strstr(res.err.error_description, "s3cr+t") == NULL);

    /* limits, interim responses, failures of one's own, decoding failures */
    req = make("GET", "https://api.example/x", NULL, 8);
    resp = avl_resp_new(req);
    avl_resp_status(resp, 100);
    avl_resp_header(resp, "X-Interim", 9, "1", 1);
    avl_resp_status(resp, 200);
    CHECK(strstr(avl_resp_headers(resp, &n), "X-Interim") == NULL);
    CHECK(avl_resp_body(resp, "0123456789", 10) == -1 && avl_resp_body(resp, "x", 1) == -1);
    CHECK(avl_result_of(req, resp, &res) == AVL_ERROR && strstr(res.err.message, "max_body") != NULL);
    avl_resp_free(resp);
    resp = avl_resp_new(req);
    avl_resp_fail(resp, "timeout", "timed out talking to s3cr+t/tok\"en", 35);
    CHECK(avl_result_of(req, resp, &res) == AVL_RETRY && strcmp(res.err.kind, "timeout") == 0);
    CHECK(strstr(res.err.message, "s3cr+t") == NULL);
    avl_resp_free(resp);
    resp = avl_resp_new(req);
    avl_resp_status(resp, 200);
    avl_resp_body(resp, "{x", 2);
    CHECK(avl_result_of(req, resp, &res) == AVL_OK);
    avl_result_decode_failed(req, resp, "bad JSON at byte 1", &res);
    CHECK(res.verdict != AVL_OK && strcmp(res.err.kind, "parse") == 0 && res.body == NULL);
    avl_resp_free(resp);
    avl_req_free(req);
    avl_req_free(NULL);
    avl_resp_free(NULL);
    avl_client_free(NULL);

    printf("abi_unit: %d checks, %d failed\n", checks, failed);
    return failed != 0;
}
