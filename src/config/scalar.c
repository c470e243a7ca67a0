/* SPDX-License-Identifier: Apache-2.0 */
/* Scalar values of the configuration engine: strings, booleans, numbers,
 * durations, sizes, enums and secrets, one parser per type (poh_cfg_type_info). */
#include "config/cfg_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void why_value(poh_strbuf_t *why, const char *what, const char *s)
{
    poh_strbuf_printf(why, "expected %s, got ", what);
    poh_cfg_put_quoted(why, s, strlen(s));
}

int poh_cfg_parse_u64(const char *s, size_t maxdigits, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    size_t n = 0;
    for (; isdigit((unsigned char)s[n]); n++) {
        if (n == maxdigits)
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[n] - '0');
    }
    if (n == 0)
        return -EINVAL;
    *out = v;
    *end = s + n;
    return 0;
}

static int parse_duration(const char *s, double *seconds)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"w", 604800000}, {"d", 86400000}, {"h", 3600000},
                 {"m", 60000},     {"s", 1000},     {"ms", 1}};
    const size_t nunits = sizeof units / sizeof units[0];
    uint64_t total = 0;
    size_t next = 0;
    if (!s || !*s)
        return -EINVAL;
    while (*s) {
        uint64_t v;
        if (poh_cfg_parse_u64(s, 12, &v, &s) < 0)
            return -EINVAL;
        size_t ulen = 0;
        while (isalpha((unsigned char)s[ulen]))
            ulen++;
        size_t u = next;
        while (u < nunits && (strlen(units[u].unit) != ulen || memcmp(units[u].unit, s, ulen)))
            u++;
        if (u == nunits || (v && v > (UINT64_MAX - total) / units[u].ms))
            return -EINVAL;
        total += v * units[u].ms;
        next = u + 1;
        s += ulen;
    }
    *seconds = (double)total / 1000.0;
    return 0;
}

int poh_parse_duration(const char *s, double *seconds)
{
    double v;
    if (parse_duration(s, &v) < 0)
        return -EINVAL;
    *seconds = v;
    return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } sfx[] = {{"", 1}, {"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}};
    uint64_t v;
    const char *end;
    if (poh_cfg_parse_u64(s, 19, &v, &end) < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        if (strcmp(end, sfx[i].suffix) == 0) {
            if (v > UINT64_MAX / sfx[i].mult)
                return -EINVAL;
            *out = v * sfx[i].mult;
            return 0;
        }
    }
    return -EINVAL;
}

static int check_bounds(const poh_cfg_entry_t *e, double v, const char *unit, poh_strbuf_t *why)
{
    if (e->min < e->max && (v < e->min || v > e->max)) {
        poh_strbuf_printf(why, "%.15g%s is out of range (%.15g%s to %.15g%s)", v, unit, e->min, unit,
                          e->max, unit);
        return -EINVAL;
    }
    return 0;
}

static int set_string(char **dst, const char *s)
{
    char *d = strdup(s);
    if (!d)
        return -ENOMEM;
    free(*dst);
    *dst = d;
    return 0;
}

void poh_cfg_free_secret(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

int poh_cfg_string_checks(const poh_cfg_entry_t *e, const char *s, poh_strbuf_t *why)
{
    if ((e->flags & POH_CFG_NONEMPTY) && !*s) {
        poh_strbuf_puts(why, "must not be empty");
        return -EINVAL;
    }
    return e->check ? e->check(s, why) : 0;
}

static int sc_string(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    int rc = poh_cfg_string_checks(e, s, why);
    return rc < 0 ? rc : set_string(field, s);
}

static int sc_secret(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    if ((e->flags & POH_CFG_NONEMPTY) && !*s) {
        poh_strbuf_puts(why, "must not be empty");
        return -EINVAL;
    }
    if (e->check && e->check(s, why) < 0)
        return -EINVAL;
    char *d = strdup(s);
    if (!d)
        return -ENOMEM;
    poh_cfg_free_secret(field);
    *(char **)field = d;
    return 0;
}

static int sc_bool(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    (void)e;
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        *(bool *)field = s[0] == 't';
        return 0;
    }
    why_value(why, "true or false", s);
    return -EINVAL;
}

static int sc_uint(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    uint64_t v;
    const char *end;
    if (poh_cfg_parse_u64(s, 20, &v, &end) < 0 || *end || v > UINT_MAX) {
        why_value(why, "an unsigned integer", s);
        return -EINVAL;
    }
    if (check_bounds(e, (double)v, "", why) < 0)
        return -EINVAL;
    *(unsigned *)field = (unsigned)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!*s || strspn(s, "0123456789.eE+-") != strlen(s))
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v))
        return -EINVAL;
    *out = v;
    return 0;
}

int poh_cfg_sc_double(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    double v;
    if (parse_double(s, &v) < 0) {
        why_value(why, "a number", s);
        return -EINVAL;
    }
    if (check_bounds(e, v, "", why) < 0)
        return -EINVAL;
    *(double *)field = v;
    return 0;
}

static int sc_duration(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    double v;
    if (parse_duration(s, &v) < 0) {
        poh_strbuf_puts(why, "invalid duration ");
        poh_cfg_put_quoted(why, s, strlen(s));
        poh_strbuf_puts(why, " (expected a number and a unit such as 500ms, 2s, 1m30s or 1h)");
        return -EINVAL;
    }
    if (check_bounds(e, v, "s", why) < 0)
        return -EINVAL;
    *(double *)field = v;
    return 0;
}

static int sc_size(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    uint64_t v;
    if (parse_size(s, &v) < 0 || v > SIZE_MAX) {
        poh_strbuf_puts(why, "invalid size ");
        poh_cfg_put_quoted(why, s, strlen(s));
        poh_strbuf_puts(why, " (expected bytes such as 16384, 512B, 16KiB, 1MiB or 1GiB)");
        return -EINVAL;
    }
    if (check_bounds(e, (double)v, " bytes", why) < 0)
        return -EINVAL;
    *(size_t *)field = (size_t)v;
    return 0;
}

static int sc_address(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    poh_strbuf_t reason = POH_STRBUF_INIT;
    int rc = poh_cfg_parse_address(s, NULL, 0, NULL, &reason);
    if (rc < 0) {
        poh_strbuf_puts(why, "invalid address ");
        poh_cfg_put_quoted(why, s, strlen(s));
        poh_strbuf_printf(why, ": %s", reason.data ? reason.data : "");
    }
    poh_strbuf_free(&reason);
    if (rc < 0 || (e->check && e->check(s, why) < 0))
        return -EINVAL;
    return set_string(field, s);
}

static int sc_enum(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    size_t n = 0;
    while (e->choices[n])
        n++;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, e->choices[i]) == 0)
            return set_string(field, e->choices[i]);
    poh_strbuf_puts(why, "invalid value ");
    poh_cfg_put_quoted(why, s, strlen(s));
    poh_strbuf_puts(why, " (expected one of:");
    for (size_t i = 0; i < n; i++)
        poh_strbuf_printf(why, "%s %s", i ? "," : "", e->choices[i]);
    poh_strbuf_putc(why, ')');
    const char *near = poh_cfg_suggest(s, e->choices, n);
    if (near)
        poh_strbuf_printf(why, " (did you mean \"%s\"?)", near);
    return -EINVAL;
}

const poh_cfg_type_info_t poh_cfg_type_info[POH_CFG_TYPE_COUNT] = {
    [POH_CFG_STRING] = {"a string", sc_string},
    [POH_CFG_BOOL] = {"true or false", sc_bool},
    [POH_CFG_UINT] = {"an unsigned integer", sc_uint},
    [POH_CFG_DOUBLE] = {"a number", poh_cfg_sc_double},
    [POH_CFG_DURATION] = {"a duration", sc_duration},
    [POH_CFG_SIZE] = {"a size", sc_size},
    [POH_CFG_ADDRESS] = {"an address", sc_address},
    [POH_CFG_ENUM] = {"a string", sc_enum},
    [POH_CFG_SECRET] = {"a string", sc_secret},
    [POH_CFG_STRING_LIST] = {"a list", NULL},
    [POH_CFG_DOUBLE_LIST] = {"a list", NULL},
    [POH_CFG_STRING_MAP] = {"a mapping", NULL},
    [POH_CFG_SECTION] = {"a mapping", NULL},
    [POH_CFG_SECTION_LIST] = {"a list", NULL},
};
int poh_cfg_check_http_path(const char *value, poh_strbuf_t *why)
{
    if (value[0] != '/') {
        poh_strbuf_puts(why, "must start with \"/\"");
        return -EINVAL;
    }
    for (const char *p = value; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == '?' || *p == '#' || *p == 0x7f) {
            poh_strbuf_puts(why, "must be a plain URL path (no spaces, \"?\" or \"#\")");
            return -EINVAL;
        }
    }
    return 0;
}
