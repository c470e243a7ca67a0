/* SPDX-License-Identifier: Apache-2.0 */
/* Content negotiation (RFC 9110 Accept) between the two formats we produce.
 *
 * Each media range is parsed with its parameters (token or quoted-string
 * values) and q-value; a malformed range is ignored, not the whole header.
 * An offer takes the q of the most specific range that matches it (exact type
 * with a version parameter > exact type > "text/any" > "any/any"; equal specificity:
 * the highest q). A version parameter must equal the version we produce
 * (OpenMetrics 1.0.0, text 0.0.4), a charset parameter must be utf-8; other
 * parameters such as escaping= are accepted (our names are valid in every
 * escaping scheme). Parameters after q are accept-extensions and ignored.
 *
 * OpenMetrics is chosen only when an explicit application/openmetrics-text
 * range matches with q > 0 and q >= the q of text; wildcards alone (curl's
 * default, browsers) get text, as with the Prometheus client libraries. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "metrics/metrics.h"

#define CT_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define CT_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"

const char *poh_format_content_type(poh_format_t fmt)
{
    return fmt == POH_FMT_OPENMETRICS ? CT_OPENMETRICS : CT_TEXT;
}

typedef struct span {
    const char *p;
    size_t n;
} span_t;

typedef struct best {
    int spec; /* -1: no range matched */
    int q;    /* thousandths */
} best_t;

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static const char *token(const char *p, span_t *out)
{
    out->p = p;
    while (is_tchar(*p))
        p++;
    out->n = (size_t)(p - out->p);
    return p;
}

static bool span_is(span_t s, const char *lit)
{
    return s.n == strlen(lit) && strncasecmp(s.p, lit, s.n) == 0;
}

/* A quoted-string; out gets the raw inside (escapes kept). NULL if unterminated. */
static const char *quoted(const char *p, span_t *out)
{
    p++;
    out->p = p;
    while (*p && *p != '"') {
        if (*p == '\\' && p[1])
            p++;
        p++;
    }
    if (*p != '"')
        return NULL;
    out->n = (size_t)(p - out->p);
    return p + 1;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths. */
static bool parse_q(span_t v, int *q)
{
    if (v.n == 0 || (v.p[0] != '0' && v.p[0] != '1'))
        return false;
    int whole = v.p[0] - '0', frac = 0, scale = 100;
    if (v.n > 1) {
        if (v.p[1] != '.' || v.n > 5)
            return false;
        for (size_t i = 2; i < v.n; i++) {
            if (v.p[i] < '0' || v.p[i] > '9')
                return false;
            frac += (v.p[i] - '0') * scale;
            scale /= 10;
        }
    }
    if (whole == 1 && frac != 0)
        return false;
    *q = whole * 1000 + frac;
    return true;
}

static void offer(best_t *b, int spec, int q)
{
    if (spec > b->spec) {
        b->spec = spec;
        b->q = q;
    } else if (spec == b->spec && q > b->q) {
        b->q = q;
    }
}

/* Skip to the next top-level comma (or the end), stepping over quoted strings. */
static const char *skip_element(const char *p)
{
    while (*p && *p != ',') {
        if (*p == '"') {
            span_t ignored;
            const char *e = quoted(p, &ignored);
            if (!e)
                return p + strlen(p);
            p = e;
        } else {
            p++;
        }
    }
    return p;
}

/* Parse one media range at p; on success update the offers and return the
 * position after it, NULL if malformed. */
static const char *media_range(const char *p, best_t *om, best_t *text)
{
    span_t type, sub, version = {0}, charset = {0};
    bool has_version = false, has_charset = false;
    int q = 1000;
    p = token(p, &type);
    if (type.n == 0 || *p != '/')
        return NULL;
    p = token(p + 1, &sub);
    if (sub.n == 0)
        return NULL;
    bool seen_q = false;
    for (;;) {
        p = skip_ows(p);
        if (*p != ';')
            break;
        p = skip_ows(p + 1);
        span_t name, value;
        p = token(p, &name);
        if (name.n == 0 || *p != '=')
            return NULL;
        p++;
        if (*p == '"') {
            p = quoted(p, &value);
            if (!p)
                return NULL;
        } else {
            p = token(p, &value);
        }
        if (seen_q)
            continue;
        if (span_is(name, "q")) {
            if (!parse_q(value, &q))
                return NULL;
            seen_q = true;
        } else if (span_is(name, "version")) {
            version = value;
            has_version = true;
        } else if (span_is(name, "charset")) {
            charset = value;
            has_charset = true;
        }
    }
    if (*p && *p != ',')
        return NULL;
    if (has_charset && !span_is(charset, "utf-8"))
        return p;
    bool star_type = span_is(type, "*"), star_sub = span_is(sub, "*");
    if (star_type && !star_sub)
        return NULL;
    if (span_is(type, "application") && span_is(sub, "openmetrics-text")) {
        if (!has_version || span_is(version, "1.0.0"))
            offer(om, has_version ? 2 : 1, q);
    } else if (span_is(type, "text") && span_is(sub, "plain")) {
        if (!has_version || span_is(version, "0.0.4"))
            offer(text, has_version ? 3 : 2, q);
    } else if (span_is(type, "text") && star_sub) {
        offer(text, 1, q);
    } else if (star_type) {
        offer(text, 0, q);
    }
    return p;
}

poh_format_t poh_format_negotiate(const char *accept)
{
    if (!accept)
        return POH_FMT_TEXT;
    best_t om = {-1, 0}, text = {-1, 0};
    const char *p = accept;
    while (*p) {
        p = skip_ows(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (!*p)
            break;
        const char *e = media_range(p, &om, &text);
        p = e ? e : skip_element(p);
    }
    if (om.spec >= 0 && om.q > 0 && om.q >= (text.spec >= 0 ? text.q : 0))
        return POH_FMT_OPENMETRICS;
    return POH_FMT_TEXT;
}
