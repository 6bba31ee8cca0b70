/*
 * The device authorization response (RFC 8628 section 3.2): what
 * core.device_authorization reads (lua/device.c). Pure C, no Lua, so
 * fuzz/fuzz_device_response.c reaches it.
 */
#ifndef AVALARA_DEVICE_H
#define AVALARA_DEVICE_H

#include "protocol/protocol.h"

/* The interval when the response has none (RFC 8628 3.2), and the most
 * any interval is taken as (a server cannot stall a client for hours). */
#define AVL_DEVICE_INTERVAL 5
#define AVL_DEVICE_MAX_INTERVAL 300

typedef struct {
    char *device_code;               /* the secret: wiped on free */
    char *user_code;
    char *verification_uri;          /* "verification_url" (Google's spelling) is read too */
    char *verification_uri_complete; /* NULL when absent */
    double expires_in;               /* seconds */
    double interval;                 /* seconds, AVL_DEVICE_INTERVAL when absent */
    char reason[128];                /* failures: a readable reason, no body text */
} avl_device_response;

/* Parses a device authorization response (JSON). AVL_TOKEN_OK when a 2xx
 * carries device_code, user_code and verification_uri (visible ASCII, not
 * empty) and a non-negative expires_in; AVL_TOKEN_HTTP_ERROR for a non-2xx
 * (the caller reads its error body with avl_token_response_parse);
 * AVL_TOKEN_PARSE_ERROR for a 2xx that cannot be used (reason says why);
 * AVL_TOKEN_NOMEM. On failure device_code holds whatever string the body
 * carried (NULL if none), only so the caller can redact it. `out` is
 * zeroed first and must be freed whatever the result. */
avl_token_result avl_device_response_parse(int status, const char *body, size_t n, avl_device_response *out);
void avl_device_response_free(avl_device_response *r); /* wipes; safe twice */

/* The token endpoint next to a device authorization endpoint:
 * /connect/deviceauthorization -> /connect/token (a query is dropped).
 * Malloc'd; NULL when it cannot be derived, or OOM. */
char *avl_device_token_url(const char *device_url);

#endif
