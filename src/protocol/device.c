/*
 * Device authorization responses (see device.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/device.h"

static int visible(const char *s, size_t n) {
    size_t i;
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7F)
            return 0;
    return 1;
}

/* A string member's copy into *out: 0 (absent: *out stays NULL), 1 copied,
 * -1 present but not a usable string, -2 OOM. */
static int copy_member(const avl_json *root, const char *name, char **out) {
    const avl_json *j = avl_json_get(root, name);
    if (j == NULL || j->type == AVL_JNULL)
        return 0;
    if (j->type != AVL_JSTRING)
        return -1;
    *out = avl_strndup(j->string, j->len);
    if (*out == NULL)
        return -2;
    return visible(j->string, j->len) ? 1 : -1;
}

/* A number member (a JSON number or a numeric string): 0 absent, 1 read,
 * -1 unreadable or negative. */
static int number_member(const avl_json *root, const char *name, double *out) {
    const avl_json *j = avl_json_get(root, name);
    char *end;
    if (j == NULL || j->type == AVL_JNULL)
        return 0;
    if (j->type == AVL_JNUMBER) {
        *out = j->number;
    } else if (j->type == AVL_JSTRING && j->len > 0 && j->len < 32 && strlen(j->string) == j->len &&
               j->string[0] >= '0' && j->string[0] <= '9') {
        *out = strtod(j->string, &end);
        if (*end != '\0')
            return -1;
    } else {
        return -1;
    }
    return isfinite(*out) && *out >= 0 ? 1 : -1;
}

static avl_token_result fail(avl_device_response *out, avl_token_result r, const char *reason) {
    char *device_code = out->device_code; /* kept for the caller's redaction */
    out->device_code = NULL;
    avl_device_response_free(out);
    out->device_code = device_code;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
    return r;
}

avl_token_result avl_device_response_parse(int status, const char *body, size_t n, avl_device_response *out) {
    char err[64];
    avl_json *root;
    avl_token_result r = AVL_TOKEN_OK;
    const char *why = NULL;
    int rc;
    memset(out, 0, sizeof *out);
    out->interval = AVL_DEVICE_INTERVAL;
    if (status < 200 || status > 299) {
        snprintf(err, sizeof err, "device authorization endpoint returned HTTP %d", status);
        return fail(out, AVL_TOKEN_HTTP_ERROR, err);
    }
    root = avl_json_parse(body, n, 0, err, sizeof err);
    if (root == NULL) {
        char reason[sizeof out->reason];
        if (strncmp(err, "out of memory", 13) == 0)
            return fail(out, AVL_TOKEN_NOMEM, "out of memory");
        snprintf(reason, sizeof reason, "device authorization response is not valid JSON: %s", err);
        return fail(out, AVL_TOKEN_PARSE_ERROR, reason);
    }
    if (root->type != AVL_JOBJECT) {
        avl_json_free(root);
        return fail(out, AVL_TOKEN_PARSE_ERROR, "device authorization response is not a JSON object");
    }
    /* device_code first: whatever else fails, it is there to redact */
    rc = copy_member(root, "device_code", &out->device_code);
    if (rc == -2)
        r = AVL_TOKEN_NOMEM, why = "out of memory";
    else if (rc != 1)
        r = AVL_TOKEN_PARSE_ERROR, why = "device authorization response has no usable device_code";
    if (why == NULL && (rc = copy_member(root, "user_code", &out->user_code)) != 1)
        r = rc == -2 ? AVL_TOKEN_NOMEM : AVL_TOKEN_PARSE_ERROR,
        why = rc == -2 ? "out of memory" : "device authorization response has no usable user_code";
    if (why == NULL) {
        rc = copy_member(root, "verification_uri", &out->verification_uri);
        if (rc == 0)
            rc = copy_member(root, "verification_url", &out->verification_uri);
        if (rc != 1)
            r = rc == -2 ? AVL_TOKEN_NOMEM : AVL_TOKEN_PARSE_ERROR,
            why = rc == -2 ? "out of memory" : "device authorization response has no usable verification_uri";
    }
    if (why == NULL && (rc = copy_member(root, "verification_uri_complete", &out->verification_uri_complete)) < 0)
        r = rc == -2 ? AVL_TOKEN_NOMEM : AVL_TOKEN_PARSE_ERROR,
        why = rc == -2 ? "out of memory" : "device authorization response has an unusable verification_uri_complete";
    if (why == NULL && number_member(root, "expires_in", &out->expires_in) != 1)
        r = AVL_TOKEN_PARSE_ERROR, why = "device authorization response has no usable expires_in";
    if (why == NULL && number_member(root, "interval", &out->interval) < 0)
        r = AVL_TOKEN_PARSE_ERROR, why = "device authorization response has an unusable interval";
    avl_json_free(root);
    if (why != NULL)
        return fail(out, r, why);
    if (out->interval > AVL_DEVICE_MAX_INTERVAL)
        out->interval = AVL_DEVICE_MAX_INTERVAL;
    return AVL_TOKEN_OK;
}

void avl_device_response_free(avl_device_response *r) {
    avl_free_secret(&r->device_code);
    avl_free_secret(&r->user_code);
    avl_free_secret(&r->verification_uri);
    avl_free_secret(&r->verification_uri_complete);
    r->reason[0] = '\0';
}

char *avl_device_token_url(const char *device_url) {
    static const char from[] = "/connect/deviceauthorization", to[] = "/connect/token";
    size_t end = strcspn(device_url, "?#"), fl = sizeof from - 1;
    char *u;
    if (end < fl || memcmp(device_url + end - fl, from, fl) != 0)
        return NULL;
    u = malloc(end - fl + sizeof to);
    if (u != NULL) {
        memcpy(u, device_url, end - fl);
        memcpy(u + end - fl, to, sizeof to);
    }
    return u;
}
