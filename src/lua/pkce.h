/*
 * core.pkce([verifier]) -> verifier, challenge (RFC 7636, S256), and
 * core.hmac_sha256(key, message) -> 64 hex digits and core.hmac_sha512(key,
 * message) -> 128 hex digits (RFC 2104, RFC 4231). The
 * primitives behind them are in the protocol layer (crypto.c).
 */
#ifndef AVALARA_PKCE_H
#define AVALARA_PKCE_H

#include "lua/compat.h"

int avl_pkce_lua(lua_State *L);
int avl_hmac_sha256_lua(lua_State *L);
int avl_hmac_sha512_lua(lua_State *L);

#endif
