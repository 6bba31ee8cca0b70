/* Replays inputs through a libFuzzer harness without libFuzzer: each file
 * named on the command line is read and passed to LLVMFuzzerTestOneInput
 * once. Built with gcc and ASan+UBSan by `make fuzz-replay`; spec/unit/core
 * runs it over fuzz/corpus and fuzz/regress on every `make test`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay(const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    long size;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        if (f)
            fclose(f);
        fprintf(stderr, "replay: cannot read %s\n", path);
        return 1;
    }
    data = malloc(size ? (size_t)size : 1);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        fclose(f);
        fprintf(stderr, "replay: cannot read %s\n", path);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, (size_t)size);
    free(data);
    return 0;
}

int main(int argc, char **argv) {
    int i, failed = 0;
    for (i = 1; i < argc; i++)
        failed |= replay(argv[i]);
    printf("replayed %d input%s\n", argc - 1, argc == 2 ? "" : "s");
    return failed;
}
