/* SPDX-License-Identifier: Apache-2.0 */
/* Unit-test helper: the value of a series that the code under test must have
 * emitted, read without touching the registry.
 *
 * poh_registry_family() and poh_family_series() create what they do not find,
 * so a helper built on them reads 0 from a series nobody wrote and an
 * "== 0" check cannot fail. This lookup renders the registry (text format,
 * the public read-only path a scrape takes) and looks for the family's
 * "# TYPE" line and the series' sample line; a series that is absent (never
 * emitted, or removed) fails the test with its name and labels. */
#ifndef POH_TEST_SERIES_LOOKUP_H
#define POH_TEST_SERIES_LOOKUP_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "metrics/metrics.h"

/* name{l1="v1",...} with the values escaped as the text format does; "name"
 * alone without labels. */
static inline void series_selector(poh_strbuf_t *sel, const char *name, size_t nl,
                                   const char *const *ln, const char *const *lv)
{
    poh_strbuf_append(sel, name, strlen(name));
    if (nl == 0)
        return;
    poh_strbuf_append(sel, "{", 1);
    for (size_t i = 0; i < nl; i++) {
        if (i)
            poh_strbuf_append(sel, ",", 1);
        poh_strbuf_append(sel, ln[i], strlen(ln[i]));
        poh_strbuf_append(sel, "=\"", 2);
        for (const char *p = lv[i] ? lv[i] : ""; *p; p++) {
            if (*p == '\\')
                poh_strbuf_append(sel, "\\\\", 2);
            else if (*p == '"')
                poh_strbuf_append(sel, "\\\"", 2);
            else if (*p == '\n')
                poh_strbuf_append(sel, "\\n", 2);
            else
                poh_strbuf_append(sel, p, 1);
        }
        poh_strbuf_append(sel, "\"", 1);
    }
    poh_strbuf_append(sel, "}", 1);
}

/* Finds the sample of series name{ln=lv} (a counter or gauge) in r. Returns
 * false if r does not render it under a "# TYPE name <type>" line; on
 * success *value is the rendered value, which the text format prints exactly
 * (shortest round trip). */
static inline bool series_find(poh_registry_t *r, poh_metric_type_t type, const char *name,
                               size_t nl, const char *const *ln, const char *const *lv,
                               double *value)
{
    /* A leading newline lets the first line match like the others. */
    poh_strbuf_t text = POH_STRBUF_INIT, type_line = POH_STRBUF_INIT, sample = POH_STRBUF_INIT;
    poh_strbuf_putc(&text, '\n');
    ck_assert_int_eq(poh_render(&text, &r, 1, POH_FMT_TEXT), 0);
    poh_strbuf_printf(&type_line, "\n# TYPE %s %s\n", name, poh_metric_type_name(type));
    poh_strbuf_putc(&sample, '\n');
    series_selector(&sample, name, nl, ln, lv);
    poh_strbuf_putc(&sample, ' ');
    ck_assert(!text.failed && !type_line.failed && !sample.failed);

    bool found = false;
    const char *s;
    if (strstr(text.data, type_line.data) && (s = strstr(text.data, sample.data))) {
        char *end;
        *value = strtod(s + sample.len, &end);
        found = end != s + sample.len && (*end == '\n' || *end == ' ');
    }
    poh_strbuf_free(&sample);
    poh_strbuf_free(&type_line);
    poh_strbuf_free(&text);
    return found;
}

/* The value of a series that must have been emitted; fails the test, naming
 * the series, if it was not. */
static inline double series_value(poh_registry_t *r, poh_metric_type_t type,
                                  const char *name, size_t nl, const char *const *ln,
                                  const char *const *lv)
{
    double v = 0;
    if (!series_find(r, type, name, nl, ln, lv, &v)) {
        char msg[512];
        poh_strbuf_t sel = POH_STRBUF_INIT;
        series_selector(&sel, name, nl, ln, lv);
        snprintf(msg, sizeof msg, "%s", sel.data ? sel.data : name);
        poh_strbuf_free(&sel);
        ck_abort_msg("series %s (%s) missing: it was never emitted", msg,
                     poh_metric_type_name(type));
    }
    return v;
}

#endif
