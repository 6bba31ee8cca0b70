/* LD_PRELOAD for spec/integration/core/hardening_spec.lua: reports every free() of a
 * block that still holds one of the markers in $FREESCAN (comma-separated
 * secrets that should have been wiped), with the functions that freed it:
 *
 *   FREESCAN <marker> <size> <frame> <frame> ...
 *
 * Frames are "function(library)" from dladdr, innermost first. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void __libc_free(void *p);
void free(void *p);

static char buf[512];
static const char *markers[8];
static int nmarkers, busy, ready;

__attribute__((constructor)) static void init(void) {
    void *b[2];
    const char *m = getenv("FREESCAN");
    backtrace(b, 2); /* loads libgcc_s now, not from inside free() */
    if (m != NULL) {
        char *t;
        strncpy(buf, m, sizeof buf - 1);
        for (t = strtok(buf, ","); t != NULL && nmarkers < 8; t = strtok(NULL, ","))
            markers[nmarkers++] = t;
    }
    ready = 1;
}

static void report(const char *marker, size_t n) {
    void *frames[10];
    int count = backtrace(frames, 10), k;
    fprintf(stderr, "FREESCAN %s %zu", marker, n);
    for (k = 2; k < count; k++) {
        Dl_info d;
        if (dladdr(frames[k], &d) == 0)
            continue;
        fprintf(stderr, " %s(%s)", d.dli_sname != NULL ? d.dli_sname : "?",
                strrchr(d.dli_fname, '/') != NULL ? strrchr(d.dli_fname, '/') + 1 : d.dli_fname);
    }
    fprintf(stderr, "\n");
}

void free(void *p) {
    if (p != NULL && ready && !busy) {
        size_t n = malloc_usable_size(p);
        int i;
        for (i = 0; i < nmarkers; i++)
            if (memmem(p, n, markers[i], strlen(markers[i])) != NULL) {
                busy = 1;
                report(markers[i], n);
                busy = 0;
                break;
            }
    }
    __libc_free(p);
}
