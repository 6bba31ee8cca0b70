/*
 * Internal to src/transport/: one transfer on a pooled easy handle
 * (curl.c), which the engine (engine.c) also runs on its multi handle.
 */
#ifndef AVALARA_TRANSPORT_EASY_H
#define AVALARA_TRANSPORT_EASY_H

#include <curl/curl.h>

#include "transport/transport.h"

/* One transfer's C-side state: callbacks' context and what curl points to. */
typedef struct {
    CURL *easy;
    avl_receive ctx;
    char errbuf[CURL_ERROR_SIZE];
    /* in an engine: what the slot runs */
    void *ud;
    const avl_options *o;
    const avl_request *req;
    avl_error *e;
} avl_easy;

/* Acquires a handle and sets it up; 0, or -1 with e filled (nothing held). */
int avl_easy_start(avl_pool *p, const avl_options *o, avl_easy *t, const avl_request *req,
                   avl_response *r, avl_error *e);
/* Ends a transfer started by avl_easy_start (the handle back to the pool). */
void avl_easy_stop(avl_pool *p, const avl_options *o, avl_easy *t);
/* Turns a finished transfer's outcome into 0 (r holds a response) or -1 (e
 * filled). */
int avl_easy_finish(CURLcode rc, const char *errbuf, const avl_receive *c, const avl_request *req,
                    avl_response *r, avl_error *e);

#endif
