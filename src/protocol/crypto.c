/*
 * The primitives PKCE, HTTP Basic and webhook signatures need: SHA-256 and
 * SHA-512 (FIPS 180-4), HMAC-SHA256 and HMAC-SHA512 (RFC 2104, RFC 4231),
 * base64 / base64url (RFC 4648) and random bytes from the kernel. The
 * hashes are written
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

/* ---- SHA-512 (FIPS 180-4, section 6.4) */

static const uint64_t K512[80] = {
    0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
    0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
    0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
    0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
    0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
    0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
    0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
    0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
    0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
    0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
    0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
    0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
    0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
    0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
    0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
    0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
    0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
    0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
    0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
    0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL
};

#define ROTR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

static void sha512_block(uint64_t h[8], const unsigned char *p) {
    uint64_t w[80], a, b, c, d, e, f, g, k;
    int i, j;
    for (i = 0; i < 16; i++) {
        w[i] = 0;
        for (j = 0; j < 8; j++)
            w[i] = w[i] << 8 | p[8 * i + j];
    }
    for (i = 16; i < 80; i++) {
        uint64_t s0 = ROTR64(w[i - 15], 1) ^ ROTR64(w[i - 15], 8) ^ (w[i - 15] >> 7);
        uint64_t s1 = ROTR64(w[i - 2], 19) ^ ROTR64(w[i - 2], 61) ^ (w[i - 2] >> 6);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; k = h[7];
    for (i = 0; i < 80; i++) {
        uint64_t t1 = k + (ROTR64(e, 14) ^ ROTR64(e, 18) ^ ROTR64(e, 41)) + ((e & f) ^ (~e & g)) + K512[i] + w[i];
        uint64_t t2 = (ROTR64(a, 28) ^ ROTR64(a, 34) ^ ROTR64(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
    avl_wipe(w, sizeof w);
}

void avl_sha512_init(avl_sha512_ctx *c) {
    static const uint64_t H0[8] = { 0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
                                    0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
                                    0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL };
    memcpy(c->h, H0, sizeof H0);
    c->used = 0;
    c->total = 0;
}

void avl_sha512_update(avl_sha512_ctx *c, const void *data, size_t n) {
    const unsigned char *p = data;
    c->total += n;
    if (c->used > 0) {
        size_t take = 128 - c->used < n ? 128 - c->used : n;
        memcpy(c->buf + c->used, p, take);
        c->used += take;
        p += take;
        n -= take;
        if (c->used < 128)
            return;
        sha512_block(c->h, c->buf);
        c->used = 0;
    }
    for (; n >= 128; n -= 128, p += 128)
        sha512_block(c->h, p);
    memcpy(c->buf, p, n);
    c->used = n;
}

/* The tail, 0x80, zeros and the 128-bit length (one or two blocks; the
 * high 64 bits of the length are zero for any size_t input); the context
 * is wiped afterwards. */
void avl_sha512_final(avl_sha512_ctx *c, unsigned char out[AVL_SHA512_LEN]) {
    uint64_t bits = c->total * 8;
    size_t i, pad = c->used < 112 ? 128 : 256;
    unsigned char last[256];

    memcpy(last, c->buf, c->used);
    last[c->used] = 0x80;
    memset(last + c->used + 1, 0, pad - c->used - 1);
    for (i = 0; i < 8; i++)
        last[pad - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha512_block(c->h, last);
    if (pad == 256)
        sha512_block(c->h, last + 128);
    for (i = 0; i < 8; i++) {
        int j;
        for (j = 0; j < 8; j++)
            out[8 * i + j] = (unsigned char)(c->h[i] >> (56 - 8 * j));
    }
    avl_wipe(last, sizeof last);
    avl_wipe(c, sizeof *c);
}

void avl_sha512(const void *data, size_t n, unsigned char out[AVL_SHA512_LEN]) {
    avl_sha512_ctx c;
    avl_sha512_init(&c);
    avl_sha512_update(&c, data, n);
    avl_sha512_final(&c, out);
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

/* ---- HMAC-SHA512 (RFC 2104 with SHA-512's 128-byte block, RFC 4231) */

void avl_hmac_sha512(const void *key, size_t klen, const void *msg, size_t n,
                     unsigned char out[AVL_SHA512_LEN]) {
    unsigned char k[128], pad[128], inner[AVL_SHA512_LEN];
    avl_sha512_ctx c;
    size_t i;

    memset(k, 0, sizeof k);
    if (klen > sizeof k)
        avl_sha512(key, klen, k); /* a long key is hashed first (64 bytes, the rest zeros) */
    else if (klen > 0)
        memcpy(k, key, klen);
    for (i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x36;
    avl_sha512_init(&c);
    avl_sha512_update(&c, pad, sizeof pad);
    avl_sha512_update(&c, msg, n);
    avl_sha512_final(&c, inner);
    for (i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x5c;
    avl_sha512_init(&c);
    avl_sha512_update(&c, pad, sizeof pad);
    avl_sha512_update(&c, inner, sizeof inner);
    avl_sha512_final(&c, out);
    avl_wipe(k, sizeof k);
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
