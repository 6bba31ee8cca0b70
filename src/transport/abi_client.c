/*
 * The plain C ABI's libcurl client (include/avalara/abi.h): a pool of
 * handles in memory of its own, and one exchange on it.
 */
#include <stdlib.h>
#include <string.h>

#include "transport/abi.h"

struct avl_client {
    avl_pool *pool;
    int owned;   /* the pool is this client's (avl_client_new), not borrowed (avl_client_over) */
};

size_t avl_client_size(void) { return sizeof(avl_client); }

void avl_client_over(avl_client *c, avl_pool *p) {
    c->pool = p;
    c->owned = 0;
}

avl_client *avl_client_new(const char *host, avl_err *err) {
    avl_client *c;
    if (avl_transport_global_init() != 0) {
        if (err != NULL) {
            avl_error e;
            avl_error_init(&e, "transport");
            avl_error_setf(&e, NULL, "libcurl could not be initialised");
            avl_abi_err_from(err, &e);
        }
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (c != NULL)
        c->pool = calloc(1, avl_pool_size());
    if (c == NULL || c->pool == NULL) {
        free(c);
        if (err != NULL) {
            avl_error e;
            avl_error_init(&e, "transport");
            avl_error_nomem(&e);
            avl_abi_err_from(err, &e);
        }
        return NULL;
    }
    avl_pool_init(c->pool, host != NULL ? host : "C");
    c->owned = 1;
    return c;
}

void avl_client_free(avl_client *c) {
    if (c == NULL || !c->owned)
        return; /* a borrowed pool's client is its owner's memory too (avl_client_over) */
    avl_pool_close(c->pool);
    free(c->pool);
    free(c);
}

avl_verdict avl_client_perform(avl_client *c, const avl_req *req, avl_resp *resp, avl_result *out) {
    if (avl_curl_perform(c->pool, &req->o, &req->r, &resp->r, &resp->fail) != 0)
        resp->failed = 1;
    return avl_result_of(req, resp, out);
}
