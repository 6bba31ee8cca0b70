/* libFuzzer harness: avl_token_response_parse. The first byte picks the
 * status and content type, the rest is the body. */
#include <stddef.h>
#include <stdint.h>

#include "protocol/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int statuses[] = {200, 201, 400, 401, 500};
    static const char *const types[] = {NULL, "application/json", "application/x-www-form-urlencoded",
                                        "text/html; charset=utf-8"};
    avl_token_response r;
    if (size == 0)
        return 0;
    (void)avl_token_response_parse(statuses[data[0] % 5], types[(data[0] / 5) % 4],
                                   (const char *)data + 1, size - 1, 1700000000.0, &r);
    avl_token_response_free(&r);
    avl_token_response_free(&r);
    return 0;
}
