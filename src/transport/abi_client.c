/*
 * The plain C ABI's libcurl client (include/avalara/abi.h): a pool of
 * handles in memory of its own, and one exchange on it.
 */
#include <stdlib.h>
#include <string.h>

#include "transport/abi.h"
#include "transport/easy.h"

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

/* ------------------------------------------------ a transfer for a multi of the caller's */

struct avl_xfer {
    avl_client *c;
    const avl_req *req;
    avl_resp *resp;
    avl_easy t;
    int done;
};

avl_xfer *avl_xfer_new(avl_client *c, const avl_req *req, avl_resp *resp, avl_err *err) {
    avl_xfer *t = calloc(1, sizeof *t);
    if (t == NULL) {
        if (err != NULL) {
            avl_error e;
            avl_error_init(&e, "transport");
            avl_error_nomem(&e);
            avl_abi_err_from(err, &e);
        }
        return NULL;
    }
    t->c = c;
    t->req = req;
    t->resp = resp;
    if (avl_easy_start(c->pool, &req->o, &t->t, &req->r, &resp->r, &resp->fail) != 0) {
        /* refused or OOM: the error is the response's too, as avl_client_perform leaves it */
        resp->failed = 1;
        if (err != NULL)
            avl_abi_err_from(err, &resp->fail);
        free(t);
        return NULL;
    }
    return t;
}

void *avl_xfer_easy(avl_xfer *t) { return t != NULL ? t->t.easy : NULL; }

void avl_xfer_done(avl_xfer *t, int curl_code) {
    if (t == NULL || t->done)
        return;
    t->done = 1;
    if (avl_easy_finish((CURLcode)curl_code, t->t.errbuf, &t->t.ctx, &t->req->r, &t->resp->r, &t->resp->fail) != 0)
        t->resp->failed = 1;
}

void avl_xfer_free(avl_xfer *t) {
    if (t == NULL)
        return;
    if (!t->done) {
        static const char why[] = "the transfer was freed before it ended";
        avl_resp_fail(t->resp, "transport", why, sizeof why - 1);
    }
    avl_easy_stop(t->c->pool, &t->req->o, &t->t);
    free(t);
}
