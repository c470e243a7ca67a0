/* SPDX-License-Identifier: Apache-2.0 */
/* W3C traceparent parsing/formatting and random ids. */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "trace/trace_internal.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase is invalid in traceparent */
}

/* Decode 2n lowercase hex chars; -1 on any other character. */
static int hex_decode(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

void poh_hex_encode(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

bool poh_span_context_valid(const poh_span_context_t *ctx)
{
    return ctx && !all_zero(ctx->trace_id, 16) && !all_zero(ctx->span_id, 8);
}

int poh_traceparent_parse(const char *s, size_t len, poh_span_context_t *out)
{
    uint8_t version;
    poh_span_context_t c;

    if (!s || !out || len < POH_TRACEPARENT_LEN)
        return -EINVAL;
    if (hex_decode(s, &version, 1) < 0 || version == 0xff)
        return -EINVAL;
    /* Version 00 is exactly 55 chars; a later version may append fields, each
     * introduced by '-', and is read with the 00 layout. */
    if (version == 0 && len != POH_TRACEPARENT_LEN)
        return -EINVAL;
    if (len > POH_TRACEPARENT_LEN && s[POH_TRACEPARENT_LEN] != '-')
        return -EINVAL;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -EINVAL;
    memset(&c, 0, sizeof c);
    if (hex_decode(s + 3, c.trace_id, 16) < 0 || hex_decode(s + 36, c.span_id, 8) < 0 ||
        hex_decode(s + 53, &c.flags, 1) < 0)
        return -EINVAL;
    if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8))
        return -EINVAL;
    c.remote = true;
    *out = c;
    return 0;
}

int poh_traceparent_format(const poh_span_context_t *ctx, char *buf, size_t size)
{
    if (!poh_span_context_valid(ctx) || !buf)
        return -EINVAL;
    if (size < POH_TRACEPARENT_LEN + 1)
        return -ENOSPC;
    memcpy(buf, "00-", 3);
    poh_hex_encode(ctx->trace_id, 16, buf + 3);
    buf[35] = '-';
    poh_hex_encode(ctx->span_id, 8, buf + 36);
    buf[52] = '-';
    poh_hex_encode(&ctx->flags, 1, buf + 53);
    return POH_TRACEPARENT_LEN;
}

/* xoshiro256** (Blackman & Vigna), one state per thread so id generation
 * takes no lock. Ids need uniqueness, not secrecy. */
typedef struct {
    uint64_t s[4];
    bool seeded;
} rng_t;

static _Thread_local rng_t tls_rng;

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r)
{
    uint64_t seed[4];
    if (getrandom(seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        /* Early boot without entropy: mix time, address and thread state. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)r;
        for (int i = 0; i < 4; i++)
            seed[i] = splitmix64(&x);
    }
    memcpy(r->s, seed, sizeof seed);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
    r->seeded = true;
}

static uint64_t rng_next(void)
{
    rng_t *r = &tls_rng;
    if (!r->seeded)
        rng_seed(r);
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void poh_trace_random_trace_id(uint8_t out[16])
{
    do {
        uint64_t a = rng_next(), b = rng_next();
        memcpy(out, &a, 8);
        memcpy(out + 8, &b, 8);
    } while (all_zero(out, 16));
}

void poh_trace_random_span_id(uint8_t out[8])
{
    do {
        uint64_t a = rng_next();
        memcpy(out, &a, 8);
    } while (all_zero(out, 8));
}
