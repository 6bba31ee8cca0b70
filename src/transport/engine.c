/*
 * The engine: a curl multi handle with slots, driven without blocking
 * (core.multi, core.request_many), on the pool's handles (easy.h). HTTP/2
 * multiplexing is on: transfers to one HTTPS origin that offers h2 share
 * a connection.
 */
#include <stdlib.h>
#include <sys/select.h>

#include "transport/easy.h"

struct avl_engine {
    CURLM *multi;
    int concurrency;
    int running;
    avl_easy *slots;         /* easy == NULL: free */
};

avl_engine *avl_engine_new(int concurrency) {
    avl_engine *g = calloc(1, sizeof *g);
    if (concurrency < 1)
        concurrency = 1;
    if (g == NULL || (g->slots = calloc((size_t)concurrency, sizeof *g->slots)) == NULL ||
        (g->multi = curl_multi_init()) == NULL) {
        if (g != NULL)
            free(g->slots);
        free(g);
        return NULL;
    }
    g->concurrency = concurrency;
    curl_multi_setopt(g->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(g->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)concurrency);
    curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, (long)concurrency);
    return g;
}

int avl_engine_free_slots(const avl_engine *g) {
    return g->concurrency - g->running;
}

int avl_engine_running(const avl_engine *g) {
    return g->running;
}

/* Takes a slot's transfer off the multi handle and back to the pool. */
static void vacate(avl_engine *g, avl_pool *p, avl_easy *t) {
    curl_multi_remove_handle(g->multi, t->easy);
    avl_easy_stop(p, t->o, t);
    t->ud = NULL;
    g->running--;
}

int avl_engine_start(avl_engine *g, avl_pool *p, const avl_options *o, const avl_request *req,
                     avl_response *r, avl_error *e, void *ud) {
    avl_easy *t = NULL;
    int i;
    for (i = 0; i < g->concurrency && t == NULL; i++)
        if (g->slots[i].easy == NULL)
            t = &g->slots[i];
    if (t == NULL) {
        avl_error_init(e, "transport");
        avl_error_setf(e, "transport", "no free slot");
        return -1;
    }
    if (avl_easy_start(p, o, t, req, r, e) != 0)
        return -1;
    /* h2: wait for a connection that can multiplex rather than open another */
    curl_easy_setopt(t->easy, CURLOPT_PIPEWAIT, 1L);
    if (curl_multi_add_handle(g->multi, t->easy) != CURLM_OK) {
        avl_easy_stop(p, o, t);
        avl_error_init(e, "transport");
        avl_error_nomem(e);
        return -1;
    }
    t->ud = ud;
    t->o = o;
    t->req = req;
    t->e = e;
    g->running++;
    return 0;
}

/* Reports every finished transfer; returns how many. */
static int harvest(avl_engine *g, avl_pool *p, avl_done_fn done, void *ctx) {
    CURLMsg *msg;
    int left, n = 0, i;
    while ((msg = curl_multi_info_read(g->multi, &left)) != NULL) {
        avl_easy *t = NULL;
        void *ud;
        int failed;
        if (msg->msg != CURLMSG_DONE)
            continue;
        for (i = 0; i < g->concurrency && t == NULL; i++)
            if (g->slots[i].easy == msg->easy_handle)
                t = &g->slots[i];
        if (t == NULL)
            continue;
        failed = avl_easy_finish(msg->data.result, t->errbuf, &t->ctx, t->req, t->ctx.r, t->e) != 0;
        ud = t->ud;
        vacate(g, p, t);
        done(ctx, ud, failed);
        n++;
    }
    return n;
}

static void fail_all(avl_engine *g, avl_pool *p, avl_done_fn done, void *ctx, const char *why) {
    int i;
    for (i = 0; i < g->concurrency; i++)
        if (g->slots[i].easy != NULL) {
            avl_easy *t = &g->slots[i];
            void *ud = t->ud;
            avl_error_init(t->e, "transport");
            avl_error_setf(t->e, "transport", "%s", why);
            vacate(g, p, t);
            done(ctx, ud, 1);
        }
}

int avl_engine_run(avl_engine *g, avl_pool *p, double timeout, avl_done_fn done, void *ctx) {
    double deadline = avl_now() + (timeout > 0 ? timeout : 0);
    int still, n = 0;
    while (g->running > 0) {
        double left;
        if (curl_multi_perform(g->multi, &still) != CURLM_OK) {
            fail_all(g, p, done, ctx, "curl multi interface failed");
            return n + 1;
        }
        n += harvest(g, p, done, ctx);
        left = deadline - avl_now();
        if (n > 0 || g->running == 0 || left <= 0)
            break;
        curl_multi_poll(g->multi, NULL, 0, (int)(left * 1000 < 1000 ? left * 1000 + 1 : 1000), NULL);
    }
    return n;
}

int avl_engine_abort(avl_engine *g, avl_pool *p, const void *ud) {
    int i;
    for (i = 0; i < g->concurrency; i++)
        if (g->slots[i].easy != NULL && g->slots[i].ud == ud) {
            avl_error *e = g->slots[i].e;
            vacate(g, p, &g->slots[i]);
            avl_error_init(e, "transport");
            avl_error_setf(e, "transport", "aborted");
            return 0;
        }
    return -1;
}

/* From curl_multi_fdset, which works with curl_multi_perform (socket
 * callbacks belong to curl_multi_socket_action): descriptors at or above
 * FD_SETSIZE are not listed (the timer still brings the loop back). */
int avl_engine_sockets(const avl_engine *g, int *fds, int *what, int max) {
    fd_set r, w, x;
    int top = -1, fd, n = 0;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&x);
    if (curl_multi_fdset(g->multi, &r, &w, &x, &top) != CURLM_OK)
        return 0;
    for (fd = 0; fd <= top && n < max; fd++) {
        int bits = (FD_ISSET(fd, &r) ? 1 : 0) | (FD_ISSET(fd, &w) ? 2 : 0);
        if (bits != 0) {
            fds[n] = fd;
            what[n++] = bits;
        }
    }
    return n;
}

double avl_engine_timeout(avl_engine *g) {
    long wait_ms = -1;
    if (curl_multi_timeout(g->multi, &wait_ms) != CURLM_OK || wait_ms < 0)
        return -1;
    return (double)wait_ms / 1000.0;
}

void avl_engine_free(avl_engine *g, avl_pool *p) {
    int i;
    if (g == NULL)
        return;
    for (i = 0; i < g->concurrency; i++)
        if (g->slots[i].easy != NULL)
            vacate(g, p, &g->slots[i]);
    curl_multi_cleanup(g->multi);
    free(g->slots);
    free(g);
}

/* ------------------------------------------------------------ a batch */

static void fail_item(avl_transfer *it, const char *message) {
    avl_error_init(&it->err, "transport");
    avl_error_setf(&it->err, "transport", "%s", message);
    it->failed = 1;
}

static void item_done(void *ctx, void *ud, int failed) {
    (void)ctx;
    ((avl_transfer *)ud)->failed = failed;
}

/* Runs n transfers on an engine, at most `concurrency` at once; every item
 * ends with failed = 0 and resp filled, or failed = 1 and err filled. */
void avl_curl_perform_many(avl_pool *p, const avl_options *o, avl_transfer *items, size_t n, int concurrency) {
    avl_engine *g = avl_engine_new((size_t)concurrency < n ? concurrency : (int)n);
    size_t next = 0;
    if (g == NULL) {
        size_t i;
        for (i = 0; i < n; i++)
            fail_item(&items[i], "out of memory");
        return;
    }
    while (next < n || avl_engine_running(g) > 0) {
        while (next < n && avl_engine_free_slots(g) > 0) {
            avl_transfer *it = &items[next++];
            if (avl_engine_start(g, p, o, it->req, &it->resp, &it->err, it) != 0)
                it->failed = 1;
        }
        avl_engine_run(g, p, 1.0, item_done, NULL);
    }
    avl_engine_free(g, p);
}

