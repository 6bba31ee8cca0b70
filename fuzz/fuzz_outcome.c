/* libFuzzer harness: response classification (outcome.c) and the OAuth
 * finishing (oauth.c) it serves, with redaction. The first byte picks the
 * status and content type, the second sets a Retry-After header, the rest
 * is the body; the request carries secrets that the body may echo. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protocol/oauth.h"
#include "protocol/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int statuses[] = {200, 201, 204, 400, 401, 403, 404, 408, 415, 422, 429, 500, 502, 503};
    static const char *const types[] = {NULL, "application/json", "application/x-www-form-urlencoded",
                                        "text/html; charset=utf-8"};
    static const char *const params[] = {"grant_type", "refresh_token", "refresh_token", "r+t/=", NULL};
    static const char *const retry[] = {"1", "Wed, 21 Oct 2015 07:28:00 GMT", "999999999999999999999999999", ""};
    avl_oauth_post post = {"https://id.example/connect/token", "id", "s3cr+t/\"x\\ %", 0, params};
    avl_request req;
    avl_response r;
    avl_error e;
    avl_token_response tr;
    if (size < 2)
        return 0;
    avl_request_init(&req);
    avl_response_init(&r);
    post.basic = data[1] & 1;
    if (avl_oauth_build(&post, &req) != 0)
        goto done;
    r.status = statuses[data[0] % 14];
    if (types[(data[0] / 14) % 4] != NULL)
        (void)avl_response_header(&r, "Content-Type", 12, types[(data[0] / 14) % 4],
                                  strlen(types[(data[0] / 14) % 4]), 1700000000.0, NULL);
    (void)avl_response_header(&r, "Retry-After", 11, retry[(data[1] >> 1) % 4], strlen(retry[(data[1] >> 1) % 4]),
                              1700000000.0, NULL);
    if (avl_buf_append(&r.body, (const char *)data + 2, size - 2) != 0)
        goto done;
    if (avl_api_outcome(&r, &req.secrets, &e) == AVL_OUTCOME_ERROR)
        avl_error_free(&e);
    if (avl_oauth_finish_grant(&req, &r, 1700000000.0, &tr, &e) == 0)
        avl_token_response_free(&tr);
    else
        avl_error_free(&e);
    if (avl_oauth_finish_revoke(&req, &r, 1700000000.0, &e) == -1)
        avl_error_free(&e);
done:
    avl_response_free(&r);
    avl_request_free(&req);
    return 0;
}
