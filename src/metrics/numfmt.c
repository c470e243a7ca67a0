/* SPDX-License-Identifier: Apache-2.0 */
/* Number formatting for the exposition formats.
 *
 * Sample values use the shortest decimal that parses back to the same double,
 * without printf on the common paths:
 *   - integers below 2^53 (counters, bucket counts): plain digits;
 *   - other values in [1e-4, 2^53) (latencies, sums, ratios): exact shortest
 *     digits by Burger & Dybvig's free-format algorithm. Such a double is
 *     m * 2^-E with E <= 66, so its fraction and the half-gaps to its
 *     neighbours are exact integers over 2^(E+2) and every step fits in 128
 *     bits; the denominator being a power of two, digits come from shifts;
 *   - the rest (tiny, huge, subnormal): %.15g / %.16g / %.17g with a strtod
 *     check. %.15g is the shortest whenever a representation of at most 15
 *     digits exists (a normal double is within 1.2e-16 relative of it, well
 *     inside the 15-digit rounding interval), so the first precision that
 *     round-trips is the shortest; subnormals are searched from one digit. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_impl.h"

#define TWO53 9007199254740992.0

static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324"
                                  "25262728293031323334353637383940414243444546474849"
                                  "50515253545556575859606162636465666768697071727374"
                                  "75767778798081828384858687888990919293949596979899";

size_t poh_format_u64(char *buf, uint64_t v)
{
    char tmp[20];
    char *p = tmp + sizeof tmp;
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = digit_pairs[i + 1];
        *--p = digit_pairs[i];
    }
    if (v >= 10) {
        unsigned i = (unsigned)v * 2;
        *--p = digit_pairs[i + 1];
        *--p = digit_pairs[i];
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(buf, p, n);
    return n;
}

typedef unsigned __int128 u128;

/* Shortest round-trip digits of a non-integer v in [1e-4, 2^53), in fixed
 * notation. Returns the length, 0 if v is outside that domain. */
static size_t format_fraction(char *buf, double v)
{
    uint64_t bits = poh_double_to_bits(v);
    uint64_t m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
    int e = (int)((bits >> 52) & 0x7ff) - 1075; /* v = m * 2^e */
    if (e >= 0 || e < -66)
        return 0;
    int shift = -e + 2;            /* one unit = 2^(e-2): a quarter ulp */
    u128 s = (u128)1 << shift;     /* 1.0 in units */
    uint64_t ip = -e >= 64 ? 0 : m >> -e;
    u128 r = ((u128)m << 2) & (s - 1); /* fractional part in units */
    u128 mp = 2;                           /* half the gap to the next double */
    u128 mm = m == (1ULL << 52) ? 1 : 2;   /* ... to the previous one (closer at 2^k) */
    bool even = (m & 1) == 0; /* round-half-even readers accept the interval ends */

    char *p = buf + poh_format_u64(buf, ip);
    *p++ = '.';
    char *frac = p;
    for (int n = 0; n < 40; n++) {
        r *= 10;
        mp *= 10;
        mm *= 10;
        unsigned d = (unsigned)(r >> shift);
        r &= s - 1;
        bool low = even ? r <= mm : r < mm;
        bool high = even ? r + mp >= s : r + mp > s;
        if (!low && !high) {
            *p++ = (char)('0' + d);
            continue;
        }
        /* Stop: truncate (low), round up (high), or the closer of both. */
        if (high && (!low || 2 * r > s || (2 * r == s && (d & 1))))
            d++;
        if (d < 10) {
            *p++ = (char)('0' + d);
            return (size_t)(p - buf);
        }
        /* Carry: trailing nines become zeros, which are dropped. */
        while (p > frac && p[-1] == '9')
            p--;
        if (p == frac)
            return 0; /* would round to an integer: impossible for a non-integer */
        p[-1]++;
        return (size_t)(p - buf);
    }
    return 0;
}

static size_t format_positive(char *buf, double v)
{
    if (v < TWO53) {
        uint64_t iv = (uint64_t)v;
        if ((double)iv == v)
            return poh_format_u64(buf, iv);
        if (v >= 1e-4) {
            size_t n = format_fraction(buf, v);
            if (n)
                return n;
        }
    }
    /* Subnormals carry fewer than 53 bits, so the 15-digit shortcut does not
     * hold for them; they are rare enough for a full search. */
    for (int prec = v < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        int n = snprintf(buf, POH_NUM_MAX - 1, "%.*g", prec, v);
        if (prec == 17 || strtod(buf, NULL) == v)
            return (size_t)n;
    }
    return 0; /* unreachable: %.17g always round-trips */
}

size_t poh_format_double(char *buf, double v)
{
    size_t n;
    if (isnan(v)) {
        memcpy(buf, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        memcpy(buf, v > 0 ? "+Inf" : "-Inf", 5);
        return 4;
    }
    if (signbit(v)) {
        buf[0] = '-';
        n = 1 + format_positive(buf + 1, -v);
    } else {
        n = format_positive(buf, v);
    }
    buf[n] = '\0';
    return n;
}

size_t poh_format_le(char *buf, double v, bool canonical)
{
    if (isnan(v)) {
        memcpy(buf, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        memcpy(buf, v > 0 ? "+Inf" : "-Inf", 5);
        return 4;
    }
    /* Shortest digits via %e, then Go's %g layout: exponent form when the
     * decimal exponent is < -4 or >= 6 (OpenMetrics "Canonical Numbers"). */
    char e[POH_NUM_MAX];
    int prec = 0;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            break;
    }
    char *ep = strchr(e, 'e');
    int x = atoi(ep + 1);
    size_t n;
    if (x < -4 || x >= 6) {
        n = strlen(e);
        memcpy(buf, e, n + 1);
    } else {
        char digits[24];
        size_t nd = 0;
        const char *p = e;
        bool neg = *p == '-';
        if (neg)
            p++;
        for (; p < ep; p++)
            if (*p != '.')
                digits[nd++] = *p;
        char *o = buf;
        if (neg)
            *o++ = '-';
        if (x < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int z = -1; z > x; z--)
                *o++ = '0';
            memcpy(o, digits, nd);
            o += nd;
        } else {
            size_t ip = (size_t)x + 1;
            for (size_t i = 0; i < ip; i++)
                *o++ = i < nd ? digits[i] : '0';
            if (nd > ip) {
                *o++ = '.';
                memcpy(o, digits + ip, nd - ip);
                o += nd - ip;
            }
        }
        *o = '\0';
        n = (size_t)(o - buf);
    }
    if (canonical && !strpbrk(buf, ".e")) {
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    return n;
}

size_t poh_format_timestamp(char *buf, double ts)
{
    uint64_t ms = (uint64_t)llround(ts * 1000.0);
    size_t n = poh_format_u64(buf, ms / 1000);
    unsigned frac = (unsigned)(ms % 1000);
    buf[n++] = '.';
    buf[n++] = (char)('0' + frac / 100);
    buf[n++] = (char)('0' + frac / 10 % 10);
    buf[n++] = (char)('0' + frac % 10);
    buf[n] = '\0';
    return n;
}
