/* Preloaded into the interpreter by `make test-asan`:
 *
 * - dlclose does nothing, so the modules Lua unloads when it closes
 *   (avalara/core.so, and libcurl with it) stay mapped and LeakSanitizer can
 *   name the frames of what they allocated at exit;
 * - stdio is flushed before LeakSanitizer's exit check, which ends the
 *   process without flushing: busted's summary line would be lost. */
#include <stdio.h>
#include <stdlib.h>

int dlclose(void *handle);

int dlclose(void *handle) {
    (void)handle;
    return 0;
}

static void flush_stdio(void) {
    fflush(NULL);
}

/* The sanitizer runtime, preloaded first, has registered its check by now;
 * exit handlers run in reverse order, so this one runs before it. */
__attribute__((constructor)) static void flush_before_leak_check(void) {
    atexit(flush_stdio);
}
