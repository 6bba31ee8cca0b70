/*
 * core.pkce: PKCE verifier/challenge pairs (RFC 7636, S256 only), and
 * core.hmac_sha256 and core.hmac_sha512: the signatures of webhook deliveries.
 */
#include <string.h>

#include "lua/args.h"
#include "lua/pkce.h"
#include "protocol/protocol.h"

/* ---- core.pkce */

#define VERIFIER_BYTES 32 /* 43 base64url characters, RFC 7636 section 4.1 */

/* With a verifier argument the challenge is computed for it (an existing
 * verifier, or a known vector); without one a fresh verifier is made. */
int avl_pkce_lua(lua_State *L) {
    char verifier[129];
    unsigned char digest[AVL_SHA256_LEN];
    char challenge[44];
    size_t n;

    if (lua_isnoneornil(L, 1)) {
        unsigned char raw[VERIFIER_BYTES];
        if (avl_random_bytes(raw, sizeof raw) != 0)
            return luaL_error(L, "pkce: no random bytes available (getrandom and /dev/urandom failed)");
        avl_base64(raw, sizeof raw, verifier, 1);
        avl_wipe(raw, sizeof raw);
        n = strlen(verifier);
    } else {
        const char *v;
        size_t i;
        avl_arg_type(L, 1, 1, LUA_TSTRING, "pkce");
        v = lua_tolstring(L, 1, &n);
        if (n < 43 || n > 128)
            return avl_arg_error(L, 1, "pkce", "verifier must be 43 to 128 characters (RFC 7636 4.1)");
        for (i = 0; i < n; i++)
            if (!avl_is_unreserved((unsigned char)v[i]))
                return avl_arg_error(L, 1, "pkce", "verifier may hold only A-Z a-z 0-9 - . _ ~");
        memcpy(verifier, v, n + 1);
    }
    avl_sha256(verifier, n, digest);
    avl_base64(digest, sizeof digest, challenge, 1);
    lua_pushlstring(L, verifier, n);
    lua_pushstring(L, challenge);
    avl_wipe(verifier, sizeof verifier);
    avl_wipe(digest, sizeof digest);
    return 2;
}

/* ---- core.hmac_sha256, core.hmac_sha512 */

static void push_hex(lua_State *L, unsigned char *mac, size_t n) {
    static const char hexdigits[] = "0123456789abcdef";
    char hex[2 * AVL_SHA512_LEN];
    size_t i;
    for (i = 0; i < n; i++) {
        hex[2 * i] = hexdigits[mac[i] >> 4];
        hex[2 * i + 1] = hexdigits[mac[i] & 15];
    }
    lua_pushlstring(L, hex, 2 * n);
    avl_wipe(mac, n);
    avl_wipe(hex, sizeof hex);
}

int avl_hmac_sha256_lua(lua_State *L) {
    unsigned char mac[AVL_SHA256_LEN];
    const char *key, *msg;
    size_t klen, n;

    avl_arg_type(L, 1, 1, LUA_TSTRING, "hmac_sha256");
    avl_arg_type(L, 2, 2, LUA_TSTRING, "hmac_sha256");
    key = lua_tolstring(L, 1, &klen);
    msg = lua_tolstring(L, 2, &n);
    avl_hmac_sha256(key, klen, msg, n, mac);
    push_hex(L, mac, sizeof mac);
    return 1;
}

int avl_hmac_sha512_lua(lua_State *L) {
    unsigned char mac[AVL_SHA512_LEN];
    const char *key, *msg;
    size_t klen, n;

    avl_arg_type(L, 1, 1, LUA_TSTRING, "hmac_sha512");
    avl_arg_type(L, 2, 2, LUA_TSTRING, "hmac_sha512");
    key = lua_tolstring(L, 1, &klen);
    msg = lua_tolstring(L, 2, &n);
    avl_hmac_sha512(key, klen, msg, n, mac);
    push_hex(L, mac, sizeof mac);
    return 1;
}
