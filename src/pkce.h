/*
 * PKCE (RFC 7636) and the small primitives it needs: SHA-256 (FIPS 180-4),
 * base64 / base64url (RFC 4648) and random bytes from the kernel. SHA-256 is
 * written out here rather than taken from libcrypto so that the module links
 * only libcurl, whatever TLS backend libcurl was built with.
 */
#ifndef AVALARA_PKCE_H
#define AVALARA_PKCE_H

#include <stddef.h>
#include "compat.h"

#define AVL_SHA256_LEN 32

void avl_sha256(const void *data, size_t n, unsigned char out[AVL_SHA256_LEN]);

/* Encoded length of n bytes, without a NUL: padded base64, or unpadded base64url. */
size_t avl_base64_len(size_t n, int url);
/* Writes the encoding plus a NUL into out (avl_base64_len(n, url) + 1 bytes). */
void avl_base64(const unsigned char *in, size_t n, char *out, int url);

/* Fills buf from getrandom(2) (or /dev/urandom); 0 ok, -1 no randomness. */
int avl_random_bytes(void *buf, size_t n);

/* core.pkce([verifier]) -> verifier, challenge (S256). */
int avl_pkce_lua(lua_State *L);

#endif
