/* libFuzzer harness: percent decoding, form parsing, and the round trip. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_pair(void *ud, const char *key, size_t key_len, const char *value, size_t value_len) {
    (void)key;
    (void)key_len;
    (void)value;
    (void)value_len;
    ++*(size_t *)ud;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    avl_buf enc, dec;
    size_t pairs = 0;
    int form;
    (void)avl_form_parse(s, size, count_pair, &pairs);
    for (form = 0; form <= 1; form++) {
        avl_buf_init(&enc);
        avl_buf_init(&dec);
        if (avl_pct_encode(&enc, s, size, form) == 0 && avl_pct_decode(&dec, enc.data, enc.len, form) == 0 &&
            (dec.len != size || memcmp(dec.data, s, size) != 0))
            abort(); /* encoding must round-trip every byte string */
        avl_buf_free(&enc);
        avl_buf_free(&dec);
        avl_buf_init(&dec);
        (void)avl_pct_decode(&dec, s, size, form);
        avl_buf_free(&dec);
    }
    return 0;
}
