/* The floor of the per-call benchmark: N sequential authenticated GETs on
 * one reused libcurl easy handle (keep-alive, TLS session reuse), each body
 * collected into a buffer and checked for the classified status.
 *
 *   build/bench/percall_libcurl URL TOKEN CAFILE N   ->  prints "N seconds" */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *data;
    size_t len, cap;
} buffer;

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud) {
    buffer *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int one_call(CURL *h, buffer *b) {
    long status = 0;
    b->len = 0;
    if (curl_easy_perform(h) != CURLE_OK)
        return -1;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status == 200 && b->data && strstr(b->data, "\"status\":\"CLASSIFIED\"") ? 0 : -1;
}

int main(int argc, char **argv) {
    char auth[512];
    struct curl_slist *headers = NULL;
    buffer b = {NULL, 0, 0};
    CURL *h;
    long i, n;
    double t0;
    if (argc != 5) {
        fprintf(stderr, "usage: %s URL TOKEN CAFILE N\n", argv[0]);
        return 2;
    }
    n = atol(argv[4]);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", argv[2]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    h = curl_easy_init();
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, "Accept: application/json");
    curl_easy_setopt(h, CURLOPT_URL, argv[1]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_CAINFO, argv[3]);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (one_call(h, &b) != 0) { /* warm: connection and TLS session */
        fprintf(stderr, "percall_libcurl: bad answer\n");
        return 1;
    }
    t0 = now();
    for (i = 0; i < n; i++)
        if (one_call(h, &b) != 0) {
            fprintf(stderr, "percall_libcurl: bad answer at call %ld\n", i);
            return 1;
        }
    printf("%ld\t%f\n", n, now() - t0);
    free(b.data);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    return 0;
}
