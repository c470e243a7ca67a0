/* SPDX-License-Identifier: Apache-2.0 */
/* For trace unit tests that point a tracing config's fields at their own
 * strings: the schema's defaults, read by the config engine from an empty
 * section, with every string unset (enabled NULL = auto), so the struct owns
 * nothing and is never released. */
#ifndef POH_TEST_TRACE_SCHEMA_DEFAULTS_H
#define POH_TEST_TRACE_SCHEMA_DEFAULTS_H

#include <check.h>

#include "trace/trace.h"

static inline void trace_schema_defaults(poh_tracing_config_t *cfg)
{
    poh_strbuf_t err = POH_STRBUF_INIT;
    ck_assert_int_eq(poh_tracing_config_parse("{}", cfg, &err), 0);
    poh_tracing_config_release(cfg);
    poh_strbuf_free(&err);
}

#endif
