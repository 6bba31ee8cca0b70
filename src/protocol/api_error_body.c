/*
 * AvaTax REST v2 error bodies:
 *   {"error":{"code":"EntityNotFoundError","message":"...","target":"HttpRequest",
 *             "details":[{"code":..,"message":..,"description":..,...}]}}
 */
#include <stdlib.h>
#include <string.h>

#include "protocol/protocol.h"

static int copy(char **dst, const avl_json *j) {
    if (j == NULL || j->type != AVL_JSTRING)
        return 0;
    *dst = avl_strndup(j->string, j->len);
    return *dst == NULL ? -1 : 0;
}

int avl_api_error_parse(const char *body, size_t n, avl_api_error *out) {
    avl_json *root = avl_json_parse(body, n, AVL_JSON_TRAILING_COMMA, NULL, 0);
    int rc = avl_api_error_from_json(root, out);
    avl_json_free(root);
    return rc;
}

int avl_api_error_from_json(const avl_json *root, avl_api_error *out) {
    const avl_json *err = avl_json_get(root, "error"), *details, *detail = NULL, *text = NULL;
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (err == NULL || err->type != AVL_JOBJECT ||
        (avl_json_string(err, "code") == NULL && avl_json_string(err, "message") == NULL))
        return -1;
    details = avl_json_get(err, "details");
    if (details != NULL && details->type == AVL_JARRAY && details->count > 0)
        detail = &details->items[0];
    /* The first detail's description says the most; its message is next best. */
    if (avl_json_string(detail, "description") != NULL)
        text = avl_json_get(detail, "description");
    else if (avl_json_string(detail, "message") != NULL)
        text = avl_json_get(detail, "message");
    {
        const avl_json *num = avl_json_get(detail, "number");
        /* an ErrorCodeId is a small integer: anything else is ignored */
        if (num != NULL && num->type == AVL_JNUMBER && num->number >= 1 && num->number <= 1e6 &&
            num->number == (double)(int)num->number)
            out->number = (int)num->number;
    }
    if (copy(&out->code, avl_json_get(err, "code")) == 0 &&
        copy(&out->message, avl_json_get(err, "message")) == 0 &&
        copy(&out->target, avl_json_get(err, "target")) == 0 &&
        copy(&out->detail_description, text) == 0)
        rc = 0;
    if (rc != 0)
        avl_api_error_free(out);
    return rc;
}

void avl_api_error_free(avl_api_error *e) {
    /* Error texts can echo request data: wipe them like everything else. */
    avl_free_secret(&e->code);
    avl_free_secret(&e->message);
    avl_free_secret(&e->target);
    avl_free_secret(&e->detail_description);
    e->number = 0;
}
