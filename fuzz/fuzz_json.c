/* libFuzzer harness: avl_json_parse, strict and tolerant, plus lookups. */
#include <stddef.h>
#include <stdint.h>

#include "protocol/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int flags;
    for (flags = 0; flags <= AVL_JSON_TRAILING_COMMA; flags++) {
        char err[128];
        avl_json *j = avl_json_parse((const char *)data, size, flags, err, sizeof err);
        if (j != NULL) {
            (void)avl_json_string(j, "access_token");
            (void)avl_json_get(j, "error");
        }
        avl_json_free(j);
    }
    return 0;
}
