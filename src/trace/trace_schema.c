/* SPDX-License-Identifier: Apache-2.0 */
/* Schema of the `tracing` section (issue 6): OTLP/gRPC span export. The
 * environment fallbacks (OTEL_* and OTLP_GRPC_ENDPOINT) are applied by the
 * tracer itself, so that they follow the OpenTelemetry rules (several
 * variables per key, percent-decoded lists). The defaults and bounds here
 * are the only ones: poh_tracer_create() holds a struct to the same table
 * (poh_tracing_config_check), and tools build one with
 * poh_tracing_config_parse(). Hooked into the root by one entry in
 * appconfig/app_schema.c. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "config/schema.h"
#include "trace/trace_conf.h"
#include "trace/trace.h"

static const char *const enabled_choices[] = {"auto", "true", "false", NULL};

#define TR(f) offsetof(poh_config_tracing_t, f)
static const poh_cfg_entry_t tracing_entries[] = {
    {.name = "enabled", .type = POH_CFG_ENUM, .offset = TR(enabled), .def = "auto",
     .choices = enabled_choices},
    {.name = "endpoint", .type = POH_CFG_STRING, .offset = TR(endpoint),
     .flags = POH_CFG_NONEMPTY, .check = poh_tracing_check_endpoint},
    {.name = "service_name", .type = POH_CFG_STRING, .offset = TR(service_name),
     .flags = POH_CFG_NONEMPTY},
    {.name = "resource_attributes", .type = POH_CFG_STRING_MAP, .offset = TR(resource_attributes),
     .count_offset = TR(resource_attributes_count)},
    {.name = "headers", .type = POH_CFG_STRING_MAP, .offset = TR(headers),
     .count_offset = TR(headers_count), .flags = POH_CFG_FILE_VALUES},
    {.name = "tls", .type = POH_CFG_SECTION, .offset = TR(tls), .section = &poh_grpc_tls_implied_section},
    {.name = "sample_ratio", .type = POH_CFG_DOUBLE, .offset = TR(sample_ratio), .def = "1",
     .min = 0, .max = 1},
    {.name = "queue_size", .type = POH_CFG_UINT, .offset = TR(queue_size), .def = "2048",
     .min = 1, .max = 16777216},
    {.name = "batch_size", .type = POH_CFG_UINT, .offset = TR(batch_size), .def = "512",
     .min = 1, .max = 65536},
    {.name = "batch_timeout", .type = POH_CFG_DURATION, .offset = TR(batch_timeout),
     .def = "5s", .min = 0.001, .max = 3600},
    {.name = "export_timeout", .type = POH_CFG_DURATION, .offset = TR(export_timeout),
     .def = "10s", .min = 0.001, .max = 600},
    {.name = "retry_initial_backoff", .type = POH_CFG_DURATION,
     .offset = TR(retry_initial_backoff), .def = "1s", .min = 0.001, .max = 600},
    {.name = "retry_max_backoff", .type = POH_CFG_DURATION, .offset = TR(retry_max_backoff),
     .def = "5s", .min = 0.001, .max = 3600},
    {.name = "retry_max_elapsed", .type = POH_CFG_DURATION, .offset = TR(retry_max_elapsed),
     .def = "30s", .min = 0, .max = 86400},
    {.name = "shutdown_timeout", .type = POH_CFG_DURATION, .offset = TR(shutdown_timeout),
     .def = "5s", .min = 0, .max = 600},
    {.name = "drop_log_interval", .type = POH_CFG_DURATION, .offset = TR(drop_log_interval),
     .def = "60s", .min = 0.01, .max = 86400},
    {NULL},
};
#undef TR

/* The rules between keys, for validate_tracing and poh_tracing_config_check. */
static bool batch_fits(const poh_config_tracing_t *t)
{
    return t->batch_size <= t->queue_size;
}

static bool backoffs_ordered(const poh_config_tracing_t *t)
{
    return t->retry_max_backoff >= t->retry_initial_backoff;
}

#define BATCH_FITS_WHY "must not exceed queue_size (%u)"
#define BACKOFFS_WHY "must not be below retry_initial_backoff"

static int validate_tracing(poh_cfg_ctx_t *ctx, void *obj)
{
    const poh_config_tracing_t *t = obj;
    int rc = 0;
    if (!batch_fits(t)) {
        poh_cfg_error(ctx, "batch_size", BATCH_FITS_WHY, t->queue_size);
        rc = -EINVAL;
    }
    if (!backoffs_ordered(t)) {
        poh_cfg_error(ctx, "retry_max_backoff", BACKOFFS_WHY);
        rc = -EINVAL;
    }
    for (size_t i = 0; i < t->headers_count; i++) {
        poh_strbuf_t why = POH_STRBUF_INIT;
        if (poh_tracing_check_header(t->headers[i].key, t->headers[i].value, &why) < 0) {
            poh_cfg_error(ctx, "headers", "%s", why.data ? why.data : "invalid header");
            rc = -EINVAL;
        }
        poh_strbuf_free(&why);
    }
    return rc;
}

const poh_cfg_section_t poh_cfg_tracing_section = {sizeof(poh_config_tracing_t), tracing_entries,
                                                   validate_tracing, NULL};

int poh_tracing_config_check(const poh_tracing_config_t *cfg, poh_strbuf_t *why)
{
    for (const poh_cfg_entry_t *e = tracing_entries; e->name; e++) {
        const char *field = (const char *)cfg + e->offset;
        double v;
        if (e->type == POH_CFG_UINT)
            v = *(const unsigned *)field;
        else if (e->type == POH_CFG_DOUBLE || e->type == POH_CFG_DURATION)
            memcpy(&v, field, sizeof v);
        else
            continue;
        if (e->min < e->max && !(v >= e->min && v <= e->max)) {
            poh_strbuf_printf(why, "%s: %.15g is out of range (%.15g to %.15g)", e->name, v,
                              e->min, e->max);
            return -EINVAL;
        }
    }
    if (!batch_fits(cfg)) {
        poh_strbuf_printf(why, "batch_size: " BATCH_FITS_WHY, cfg->queue_size);
        return -EINVAL;
    }
    if (!backoffs_ordered(cfg)) {
        poh_strbuf_puts(why, "retry_max_backoff: " BACKOFFS_WHY);
        return -EINVAL;
    }
    return 0;
}

int poh_tracing_config_parse(const char *yaml, poh_tracing_config_t *cfg, poh_strbuf_t *err)
{
    memset(cfg, 0, sizeof *cfg);
    return poh_cfg_parse(&poh_cfg_tracing_section, cfg, "tracing", yaml, strlen(yaml), NULL, err);
}

void poh_tracing_config_release(poh_tracing_config_t *cfg)
{
    poh_cfg_release(&poh_cfg_tracing_section, cfg);
}
