/* Number formatting for the exposition formats.
 *
 * Sample values use the shortest decimal that parses back to the same double.
 * Most values take one of two fast paths without printf: integers below 2^53
 * (counters, bucket counts), and short fractions (0.25, 12.5, 0.0031), found by
 * scaling by 10^k: when round(v * 10^k) / 10^k == v the decimal m * 10^-k
 * round-trips, because m and 10^k are exact doubles and IEEE division is
 * correctly rounded, exactly like strtod. Everything else (17-digit sums,
 * tiny and huge values) goes through %.15g / %.16g / %.17g with a strtod check:
 * %.15g is the shortest whenever a representation of at most 15 digits exists
 * (a double is within 1.2e-16 relative of it, well inside the 15-digit rounding
 * interval), so the first precision that round-trips is the shortest.
 * Subnormals are searched from one digit up. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_impl.h"

#define TWO53 9007199254740992.0

static const double pow10_tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

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

/* m (an integer < 2^53) scaled by 10^-k, trailing zeros dropped. */
static size_t put_scaled(char *buf, uint64_t m, int k)
{
    while (k > 0 && m % 10 == 0) {
        m /= 10;
        k--;
    }
    char d[20];
    size_t nd = poh_format_u64(d, m);
    char *p = buf;
    if (k == 0) {
        memcpy(p, d, nd);
        return nd;
    }
    if (nd <= (size_t)k) {
        *p++ = '0';
        *p++ = '.';
        for (size_t z = nd; z < (size_t)k; z++)
            *p++ = '0';
        memcpy(p, d, nd);
        p += nd;
    } else {
        size_t ip = nd - (size_t)k;
        memcpy(p, d, ip);
        p += ip;
        *p++ = '.';
        memcpy(p, d + ip, (size_t)k);
        p += k;
    }
    return (size_t)(p - buf);
}

static size_t format_positive(char *buf, double v)
{
    if (v < TWO53) {
        uint64_t iv = (uint64_t)v;
        if ((double)iv == v)
            return poh_format_u64(buf, iv);
        if (v >= 1e-4) {
            for (int k = 1; k <= 17; k++) {
                double s = v * pow10_tab[k];
                if (s >= TWO53)
                    break;
                double m = nearbyint(s);
                if (m / pow10_tab[k] == v)
                    return put_scaled(buf, (uint64_t)m, k);
            }
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
