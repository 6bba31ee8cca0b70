/*
 * The grants (grants.c): core.client_credentials, authorization_code,
 * refresh_token, generate_token, revoke, device_authorization (its device:
 * device.c), authorize_url, prepare_grant,
 * and core.pkce, core.hmac_sha256, core.hmac_sha512 (pkce.c).
 */
#ifndef AVALARA_LUA_GRANTS_H
#define AVALARA_LUA_GRANTS_H

#include "lua/compat.h"

void avl_grants_open(lua_State *L, int uv);

#endif
