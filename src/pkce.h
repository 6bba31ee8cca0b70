/*
 * core.pkce([verifier]) -> verifier, challenge (RFC 7636, S256). The
 * primitives behind it are in the protocol layer (crypto.c).
 */
#ifndef AVALARA_PKCE_H
#define AVALARA_PKCE_H

#include "compat.h"

int avl_pkce_lua(lua_State *L);

#endif
