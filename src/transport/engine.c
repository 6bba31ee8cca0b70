/*
 * The engine: a curl multi handle with slots, driven without blocking
 * (core.multi, core.request_many), on the pool's handles (easy.h). HTTP/2
 * multiplexing is on: transfers to one HTTPS origin that offers h2 share
 * a connection.
 *
 * It is driven with curl_multi_socket_action: libcurl tells the sockets it
 * watches (on_socket), the engine waits on them with one poll(2) and hands
 * libcurl only the sockets that are ready, so only their transfers run.
 * (curl_multi_perform runs every transfer, and libcurl 7.x then checks each
 * one's socket with a poll(2) of its own: 64 system calls a turn at
 * concurrency 64; docs/performance.md, "Batches".) Should the list of
 * sockets not grow (out of memory), the engine falls back to
 * curl_multi_perform, which needs no list.
 */
#include <poll.h>
#include <stdlib.h>
#include <sys/select.h>

#include "transport/easy.h"

struct avl_engine {
    CURLM *multi;
    int concurrency;
    int running;
    avl_easy *slots;         /* easy == NULL: free */
    struct pollfd *fds;      /* the sockets libcurl watches, [nfds] of [cap] */
    struct pollfd *ready;    /* [cap]: those a poll found ready */
    int nfds, cap;
    int perform;             /* the list could not grow: curl_multi_perform */
};

static short events_of(int what) {
    return (short)((what == CURL_POLL_IN || what == CURL_POLL_INOUT ? POLLIN : 0) |
                   (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? POLLOUT : 0));
}

/* CURLMOPT_SOCKETFUNCTION: the list of watched sockets kept up to date. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    avl_engine *g = userp;
    int i;
    (void)easy;
    (void)socketp;
    for (i = 0; i < g->nfds && g->fds[i].fd != s; i++)
        ;
    if (what == CURL_POLL_REMOVE) {
        if (i < g->nfds)
            g->fds[i] = g->fds[--g->nfds];
        return 0;
    }
    if (i == g->nfds) {
        if (g->nfds == g->cap) {
            int cap = 2 * g->cap;
            struct pollfd *fds = realloc(g->fds, (size_t)cap * sizeof *fds), *ready;
            if (fds != NULL)
                g->fds = fds;
            ready = fds != NULL ? realloc(g->ready, (size_t)cap * sizeof *ready) : NULL;
            if (ready == NULL) {
                g->perform = 1;
                return 0;
            }
            g->ready = ready;
            g->cap = cap;
        }
        g->fds[g->nfds].fd = s;
        g->fds[g->nfds++].revents = 0;
    }
    g->fds[i].events = events_of(what);
    return 0;
}

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
    g->cap = 4; /* grows by doubling (a connection's socket each, two while happy eyeballs race) */
    g->fds = malloc((size_t)g->cap * sizeof *g->fds);
    g->ready = malloc((size_t)g->cap * sizeof *g->ready);
    if (g->fds == NULL || g->ready == NULL) {
        free(g->fds);
        free(g->ready);
        g->fds = g->ready = NULL;
        g->cap = 0;
        g->perform = 1;
    } else {
        curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g);
    }
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

/* The transfers whose timers are due (those just started among them: libcurl
 * gives a new transfer a timer of 0), then the sockets `ready` found ready. */
static CURLMcode act(avl_engine *g, int nready) {
    int still, i;
    long ms = -1;
    CURLMcode rc = CURLM_OK;
    for (i = 0; i < nready && rc == CURLM_OK; i++) {
        short ev = g->ready[i].revents;
        int bits = ((ev & (POLLIN | POLLHUP)) != 0 ? CURL_CSELECT_IN : 0) |
                   ((ev & POLLOUT) != 0 ? CURL_CSELECT_OUT : 0) |
                   ((ev & (POLLERR | POLLNVAL)) != 0 ? CURL_CSELECT_ERR : 0);
        rc = curl_multi_socket_action(g->multi, g->ready[i].fd, bits, &still);
    }
    if (rc == CURLM_OK && curl_multi_timeout(g->multi, &ms) == CURLM_OK && ms == 0)
        rc = curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &still);
    return rc;
}

/* Waits up to `ms` for a watched socket (or libcurl's next timer); copies
 * the ready ones to g->ready (the list may change while they are handled):
 * how many. */
static int wait_ready(avl_engine *g, int ms) {
    long timer = -1;
    int n, i, k = 0;
    if (curl_multi_timeout(g->multi, &timer) == CURLM_OK && timer >= 0 && timer < ms)
        ms = (int)timer;
    n = poll(g->fds, (nfds_t)g->nfds, ms);
    for (i = 0; n > 0 && i < g->nfds; i++)
        if (g->fds[i].revents != 0)
            g->ready[k++] = g->fds[i];
    return k;
}

int avl_engine_run(avl_engine *g, avl_pool *p, double timeout, avl_done_fn done, void *ctx) {
    double deadline = avl_now() + (timeout > 0 ? timeout : 0);
    int still, n = 0, nready = 0, last = 0;
    while (g->running > 0) {
        double left;
        int ms;
        CURLMcode rc = g->perform ? curl_multi_perform(g->multi, &still) : act(g, nready);
        if (rc != CURLM_OK) {
            fail_all(g, p, done, ctx, "curl multi interface failed");
            return n + 1;
        }
        n += harvest(g, p, done, ctx);
        left = deadline - avl_now();
        if (n > 0 || g->running == 0 || last)
            break;
        ms = left <= 0 ? 0 : (int)(left * 1000 < 1000 ? left * 1000 + 1 : 1000);
        if (g->perform) {
            if (left <= 0)
                break;
            curl_multi_poll(g->multi, NULL, 0, ms, NULL);
        } else {
            /* the time up, what is ready now still counts: handled, then the run ends */
            nready = wait_ready(g, ms);
            if (left <= 0) {
                if (nready == 0)
                    break;
                last = 1;
            }
        }
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
    free(g->fds);
    free(g->ready);
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

