/* libFuzzer harness: avl_parse_datetime. */
#include <stddef.h>
#include <stdint.h>

#include "protocol/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    double epoch;
    (void)avl_parse_datetime((const char *)data, size, &epoch);
    return 0;
}
