/* libFuzzer harness: avl_device_response_parse and avl_device_token_url.
 * The first byte picks the status, the rest is the body (and, NUL-ended,
 * the URL). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int statuses[] = {200, 201, 400, 401, 500};
    avl_device_response r;
    char *url, *token_url;
    if (size == 0)
        return 0;
    (void)avl_device_response_parse(statuses[data[0] % 5], (const char *)data + 1, size - 1, &r);
    avl_device_response_free(&r);
    avl_device_response_free(&r);
    url = malloc(size);
    if (url == NULL)
        return 0;
    memcpy(url, data + 1, size - 1);
    url[size - 1] = '\0';
    token_url = avl_device_token_url(url);
    free(token_url);
    free(url);
    return 0;
}
