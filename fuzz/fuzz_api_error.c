/* libFuzzer harness: avl_api_error_parse. */
#include <stddef.h>
#include <stdint.h>

#include "protocol/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    avl_api_error e;
    (void)avl_api_error_parse((const char *)data, size, &e);
    avl_api_error_free(&e);
    return 0;
}
