/*
 * The plain C ABI (include/avalara/abi.h) from a C program, no Lua at all:
 *
 *     call BASE_URL PATH        (the bearer token in the environment: AVL_TOKEN)
 *
 * 1. over libcurl (avl_client_perform): the verdict and the body size;
 * 2. the same request's bytes (avl_req_wire) over a socket of its own to
 *    127.0.0.1, the answer fed back (avl_resp_status/header/body);
 * 3. a wrong token: the verdict (renew) and its redacted message;
 * 4. a caller's mistake (a bad URL scheme), found before anything is sent;
 * 5. two requests at once on a libcurl multi handle of the program's own
 *    (avl_xfer: the library's configured easy handles, the program's loop).
 * Prints one line per step; spec/integration/core/abi_spec.lua runs it
 * against the emulator, built with the static library (make static).
 *
 *     cc call.c -Iinclude build/lua5.4/libavalara_core.a -lcurl -pthread
 */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include <avalara/abi.h>

static const char *const verdicts[] = {"ok", "retry", "renew", "error"};

static void print(const char *step, const avl_result *r, const char *token) {
    printf("%s: %s status=%d", step, verdicts[r->verdict], r->status);
    if (r->verdict == AVL_OK)
        printf(" bytes=%zu json=%c", r->body_len, r->body != NULL ? r->body[0] : '-');
    else
        printf(" kind=%s message=%s", r->err.kind, r->err.message);
    printf(" secret=%s\n", token != NULL && strstr(r->err.message, token) != NULL ? "LEAKED" : "none");
}

/* Reads the whole answer (the request said Connection: close). */
static char *read_all(int fd, size_t *n) {
    size_t cap = 8192, len = 0;
    char *b = malloc(cap);
    ssize_t got;
    while (b != NULL && (got = read(fd, b + len, cap - len - 1)) > 0) {
        len += (size_t)got;
        if (cap - len < 1024) {
            char *nb = realloc(b, cap *= 2);
            if (nb == NULL)
                free(b);
            b = nb;
        }
    }
    if (b != NULL)
        b[len] = '\0';
    *n = len;
    return b;
}

/* Feeds a raw HTTP/1.1 answer to resp: status line, headers, body (chunked or not). */
static int feed(avl_resp *resp, char *raw, size_t n) {
    char *p = raw, *end = raw + n, *eol, *body;
    int chunked = 0;
    if (n < 12 || strncmp(raw, "HTTP/1.", 7) != 0)
        return -1;
    avl_resp_status(resp, atoi(raw + 9));
    body = strstr(raw, "\r\n\r\n");
    if (body == NULL)
        return -1;
    p = strstr(raw, "\r\n") + 2;
    while (p < body) {
        char *colon;
        eol = strstr(p, "\r\n");
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL) {
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            if ((size_t)(colon - p) == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0)
                chunked = strncasecmp(v, "chunked", 7) == 0;
            if (avl_resp_header(resp, p, (size_t)(colon - p), v, (size_t)(eol - v)) != 0)
                return 0;
        }
        p = eol + 2;
    }
    body += 4;
    if (!chunked)
        return avl_resp_body(resp, body, (size_t)(end - body)) == 0 ? 0 : 0;
    while (body < end) {
        size_t size = strtoul(body, &eol, 16);
        eol = strstr(eol, "\r\n");
        if (eol == NULL || size == 0)
            break;
        if (avl_resp_body(resp, eol + 2, size) != 0)
            break;
        body = eol + 2 + size + 2;
    }
    return 0;
}

static int own_transport(const avl_req *req, int port, avl_resp *resp) {
    struct sockaddr_in a;
    char *wire, *raw;
    size_t wn, rn;
    avl_err err;
    int fd, rc = -1;
    if (avl_req_wire(req, &wire, &wn, &err) != 0) {
        printf("wire: %s\n", err.message);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, wire, wn) == (ssize_t)wn) {
        raw = read_all(fd, &rn);
        if (raw != NULL) {
            rc = feed(resp, raw, rn);
            free(raw);
        }
    }
    if (rc != 0) {
        static const char why[] = "the socket failed";
        avl_resp_fail(resp, "transport", why, sizeof why - 1);
    }
    if (fd >= 0)
        close(fd);
    avl_bytes_free(wire, wn);
    return rc;
}

/* Two requests at once on a multi handle of our own: the library sets up each easy handle
 * (avl_xfer_new), our loop drives them, the library reads each outcome (avl_xfer_done). */
static void own_multi(avl_client *client, const avl_req_spec *spec, const char *token) {
    CURLM *m = curl_multi_init();
    avl_req *req[2];
    avl_resp *resp[2];
    avl_xfer *x[2];
    avl_result res;
    avl_err err;
    int i, running = 0, left;
    for (i = 0; i < 2; i++) {
        req[i] = avl_req_new(spec, &err);
        resp[i] = avl_resp_new(req[i]);
        x[i] = avl_xfer_new(client, req[i], resp[i], &err);
        if (x[i] == NULL) {
            printf("multi: %s\n", err.message);
            return;
        }
        curl_multi_add_handle(m, (CURL *)avl_xfer_easy(x[i]));
    }
    do {
        CURLMsg *msg;
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            for (i = 0; i < 2; i++)
                if (msg->msg == CURLMSG_DONE && x[i] != NULL && msg->easy_handle == avl_xfer_easy(x[i])) {
                    avl_xfer_done(x[i], (int)msg->data.result);
                    curl_multi_remove_handle(m, msg->easy_handle);
                    avl_xfer_free(x[i]);
                    x[i] = NULL;
                }
        }
        if (running > 0)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    } while (running > 0);
    for (i = 0; i < 2; i++) {
        avl_result_of(req[i], resp[i], &res);
        print(i == 0 ? "multi 1" : "multi 2", &res, token);
        avl_resp_free(resp[i]);
        avl_req_free(req[i]);
    }
    curl_multi_cleanup(m);
}

int main(int argc, char **argv) {
    const char *token = getenv("AVL_TOKEN");
    const char *const headers[] = {"Connection", "close", NULL};
    char url[512];
    avl_req_spec spec;
    avl_client *client;
    avl_req *req;
    avl_resp *resp;
    avl_result res;
    avl_err err;
    int port;
    if (argc != 3 || token == NULL) {
        fprintf(stderr, "usage: AVL_TOKEN=... call BASE_URL PATH\n");
        return 2;
    }
    snprintf(url, sizeof url, "%s%s", argv[1], argv[2]);
    port = atoi(strrchr(argv[1], ':') + 1);
    memset(&spec, 0, sizeof spec);
    spec.url = url;
    spec.token = token;
    spec.headers = headers;
    spec.timeout = 10;

    client = avl_client_new("C example", &err);
    req = avl_req_new(&spec, &err);
    if (client == NULL || req == NULL) {
        fprintf(stderr, "setup: %s\n", err.message);
        return 1;
    }
    /* 1. libcurl */
    resp = avl_resp_new(req);
    avl_client_perform(client, req, resp, &res);
    print("libcurl", &res, token);
    avl_resp_free(resp);
    /* 2. the bytes, over a socket of our own */
    resp = avl_resp_new(req);
    own_transport(req, port, resp);
    avl_result_of(req, resp, &res);
    print("wire", &res, token);
    avl_resp_free(resp);
    avl_req_free(req);
    /* 3. a token the server does not know */
    spec.token = "not-a-token-the-server-issued-0123456789";
    req = avl_req_new(&spec, &err);
    resp = avl_resp_new(req);
    avl_client_perform(client, req, resp, &res);
    print("bad token", &res, spec.token);
    avl_resp_free(resp);
    /* 4. a caller's mistake: found before anything is sent */
    spec.url = "ftp://127.0.0.1/x";
    if (avl_req_new(&spec, &err) == NULL)
        printf("argument: kind=%s message=%s\n", err.kind, err.message);
    avl_req_free(req);
    /* 5. a multi handle of our own */
    spec.url = url;
    spec.token = token;
    own_multi(client, &spec, token);
    avl_client_free(client);
    return 0;
}
