/*
 * The primitives PKCE, HTTP Basic and webhook signatures need: SHA-256
 * (FIPS 180-4), HMAC-SHA256 (RFC 2104), base64 / base64url (RFC 4648) and
 * random bytes from the kernel. SHA-256 is written
 * out here rather than taken from libcrypto so that the module links only
 * libcurl, whatever TLS backend libcurl was built with.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#include "protocol/protocol.h"

/* ---- SHA-256 (FIPS 180-4, section 6.2) */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64], a, b, c, d, e, f, g, k;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; k = h[7];
    for (i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
    avl_wipe(w, sizeof w); /* the input may be a verifier */
}

void avl_sha256_init(avl_sha256_ctx *c) {
    static const uint32_t H0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(c->h, H0, sizeof H0);
    c->used = 0;
    c->total = 0;
}

void avl_sha256_update(avl_sha256_ctx *c, const void *data, size_t n) {
    const unsigned char *p = data;
    c->total += n;
    if (c->used > 0) {
        size_t take = 64 - c->used < n ? 64 - c->used : n;
        memcpy(c->buf + c->used, p, take);
        c->used += take;
        p += take;
        n -= take;
        if (c->used < 64)
            return;
        sha256_block(c->h, c->buf);
        c->used = 0;
    }
    for (; n >= 64; n -= 64, p += 64)
        sha256_block(c->h, p);
    memcpy(c->buf, p, n);
    c->used = n;
}

/* The tail, 0x80, zeros and the 64-bit length (one or two blocks); the
 * context is wiped afterwards. */
void avl_sha256_final(avl_sha256_ctx *c, unsigned char out[AVL_SHA256_LEN]) {
    uint64_t bits = (uint64_t)c->total * 8;
    size_t i, pad = c->used < 56 ? 64 : 128;
    unsigned char last[128];

    memcpy(last, c->buf, c->used);
    last[c->used] = 0x80;
    memset(last + c->used + 1, 0, pad - c->used - 1);
    for (i = 0; i < 8; i++)
        last[pad - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha256_block(c->h, last);
    if (pad == 128)
        sha256_block(c->h, last + 64);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(c->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c->h[i];
    }
    avl_wipe(last, sizeof last);
    avl_wipe(c, sizeof *c);
}

void avl_sha256(const void *data, size_t n, unsigned char out[AVL_SHA256_LEN]) {
    avl_sha256_ctx c;
    avl_sha256_init(&c);
    avl_sha256_update(&c, data, n);
    avl_sha256_final(&c, out);
}

/* ---- HMAC-SHA256 (RFC 2104, FIPS 198-1) */

void avl_hmac_sha256(const void *key, size_t klen, const void *msg, size_t n,
                     unsigned char out[AVL_SHA256_LEN]) {
    unsigned char k[64], pad[64], inner[AVL_SHA256_LEN];
    avl_sha256_ctx c;
    size_t i;

    memset(k, 0, sizeof k);
    if (klen > sizeof k)
        avl_sha256(key, klen, k); /* a long key is hashed first */
    else if (klen > 0)
        memcpy(k, key, klen);
    for (i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x36;
    avl_sha256_init(&c);
    avl_sha256_update(&c, pad, sizeof pad);
    avl_sha256_update(&c, msg, n);
    avl_sha256_final(&c, inner);
    for (i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x5c;
    avl_sha256_init(&c);
    avl_sha256_update(&c, pad, sizeof pad);
    avl_sha256_update(&c, inner, sizeof inner);
    avl_sha256_final(&c, out);
    avl_wipe(k, sizeof k); /* the key is a secret (a webhook signing key) */
    avl_wipe(pad, sizeof pad);
    avl_wipe(inner, sizeof inner);
}

/* ---- base64 (RFC 4648 sections 4 and 5) */

size_t avl_base64_len(size_t n, int url) {
    return url ? (n * 4 + 2) / 3 : (n + 2) / 3 * 4;
}

void avl_base64(const unsigned char *in, size_t n, char *out, int url) {
    const char *abc = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                          : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = abc[(v >> 6) & 63];
        else if (!url)
            out[o++] = '=';
        if (!url)
            out[o++] = '=';
    }
    out[o] = '\0';
}

/* ---- randomness */

int avl_random_bytes(void *buf, size_t n) {
    unsigned char *p = buf;
    int fd;
#if defined(__linux__)
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOSYS)
                break; /* a pre-3.17 kernel: fall back to the device */
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    if (n == 0)
        return 0;
#endif
    fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0)
        return -1;
    while (n > 0) {
        ssize_t got = read(fd, p, n);
        if (got <= 0) {
            if (got < 0 && errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    close(fd);
    return 0;
}
