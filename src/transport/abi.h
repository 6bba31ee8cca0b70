/*
 * Internal to the core: what the plain C ABI (include/avalara/abi.h,
 * transport/abi.c) is made of, so the classic binding (lua/request.c)
 * builds a request with the same code: method, target and URL policy,
 * credential, headers, body.
 */
#ifndef AVALARA_TRANSPORT_ABI_H
#define AVALARA_TRANSPORT_ABI_H

#include <avalara/abi.h> /* the public header, include/ (-Iinclude) */
#include "transport/transport.h"

struct avl_req {
    avl_request r;
    avl_options o;
    int flags;               /* AVL_ABI_HAS_* */
};

struct avl_resp {
    const avl_req *req;
    avl_response r;
    avl_receive rc;
    avl_error fail;          /* failed: a transport failure (avl_resp_fail, libcurl's) */
    int failed;
};

/* What the headers given so far settle (avl_abi_header, avl_abi_body). */
#define AVL_ABI_HAS_ACCEPT 1
#define AVL_ABI_HAS_TYPE 2
#define AVL_ABI_HAS_CREDENTIAL 4

/* The method s[0..n) (letters only) upper-cased into out; s NULL: "GET".
 * 0, or -1 when it is not a method name. */
int avl_abi_method(char *out, size_t size, const char *s, size_t n);
/* Sets method and URL: a NUL in the URL marks req refused; with
 * check_policy the URL policy applies (avl_url_allowed). 0, -1 refused by
 * the policy (why filled), -2 OOM. */
int avl_abi_target(avl_request *req, const char *method, const char *url, size_t n, int check_policy,
                   int allow_http, char *why, size_t why_size);
/* The Authorization value "<scheme> <value>" (value alone when scheme is
 * NULL), its credential registered as a secret; an empty one or one with a
 * control character marks req refused. 0, -1 OOM. */
int avl_abi_credential(avl_request *req, const char *scheme, const char *value, size_t n);
/* The same, registered once: the Authorization line and its secrets come
 * from a shared set (avl_secret_set), found among slots[0..nslots) by its
 * exact bytes or made into slot (*next)++ % nslots (next NULL: slot 0),
 * dropping that slot's reference. The request borrows the line and holds a
 * reference, so replacing or dropping a slot never changes a request built
 * from it. slots belong to one thread at a time (a Lua state's cache, a
 * token); the sets they hold are immutable and may be read from any. A
 * value unfit to send is refused as avl_abi_credential does. 0, -1 OOM. */
int avl_abi_credential_shared(avl_request *req, avl_secret_set **slots, size_t nslots, size_t *next,
                              const char *scheme, const char *value, size_t n);
/* The credential sets a Lua state keeps for token strings (the classic
 * binding: lua/state.c), a few, replaced in turn; zeroed memory is empty. */
#define AVL_CRED_SLOTS 4
typedef struct avl_cred_cache {
    avl_secret_set *slot[AVL_CRED_SLOTS];
    size_t next;
} avl_cred_cache;
/* Drops every set (each wiped with its last reference); c is empty after. */
void avl_cred_cache_clear(avl_cred_cache *c);
/* One header given by the caller: an Authorization header is the
 * credential unless *flags has one already; Accept and Content-Type are
 * noted in *flags. 0, -1 OOM, -2 a bad name. */
int avl_abi_header(avl_request *req, const char *name, size_t nl, const char *value, size_t vl, int *flags);
/* Ends the building: Accept (unless given), then the body (NULL: none) with
 * its Content-Type (unless given). 0, -1 OOM. */
int avl_abi_body(avl_request *req, const char *body, size_t n, int flags);
/* What an API response means (outcome.c, with req's secrets redacted):
 * avl_result_of and the classic binding's core.request both read it here. */
avl_outcome avl_abi_outcome(const avl_request *req, const avl_response *r, avl_error *e);
/* e as the ABI's error struct. */
void avl_abi_err_from(avl_err *out, const avl_error *e);

/* An avl_client over a pool owned elsewhere (the Lua state's: the FFI
 * binding sends on the classic binding's connections), in memory of
 * avl_client_size() bytes the caller owns; avl_client_free leaves both. */
size_t avl_client_size(void);
void avl_client_over(avl_client *c, avl_pool *p);

#endif
