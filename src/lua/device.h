/*
 * The device authorization grant (RFC 8628): the `avalara.device` userdata
 * that core.device_authorization returns (its arguments are read in
 * grants.c, as every grant's), and its poll (core.device_token,
 * device:poll, device:prepare_poll). The device code stays inside it:
 * never in tostring, a field, an error or a log (it is registered with
 * the redaction of every request that carries it).
 */
#ifndef AVALARA_LUA_DEVICE_H
#define AVALARA_LUA_DEVICE_H

#include "lua/compat.h"

#define AVL_DEVICE_MT "avalara.device"

/* What grants.c read and checked: pointers into the arguments table. */
typedef struct {
    const char *url;            /* the device authorization endpoint */
    const char *token_url;      /* NULL: derived from url */
    const char *revocation_url; /* NULL: derived from the token URL */
    const char *client_id;
    const char *client_secret;  /* NULL: a public client */
    const char *scope;          /* NULL: the server's default */
    int basic;
} avl_device_in;

/* Pushes the exchange of a device authorization request (the arguments
 * table at idx gives the options): its finish pushes the device, or nil,
 * err. Raises (naming fn) when no token URL can be derived. */
void avl_device_prepare(lua_State *L, int idx, const char *fn, const avl_device_in *in);

/* Registers the avalara.device metatable, core.device_token and
 * core.protocol.parse_device_response (after avl_protocol_open). */
void avl_device_open(lua_State *L, int uv);

#endif
