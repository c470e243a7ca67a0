/* SPDX-License-Identifier: Apache-2.0 */
/* The `tracing` section's configuration struct; its schema table is
 * trace_schema.c, read by poh_tracer_create() (trace/trace.h). */
#ifndef POH_TRACE_CONF_H
#define POH_TRACE_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "config/schema.h"
#include "grpc/tls_conf.h"

/* tracing (issue 6): OTLP/gRPC span export; schema in trace_schema.c,
 * consumed by poh_tracer_create() (trace/trace.h). */
typedef struct poh_tracing_config {
    char *enabled;                 /* auto|true|false; default auto: on when an endpoint
                                      is set here or in the environment */
    char *endpoint;                /* NULL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
                                      OTEL_EXPORTER_OTLP_ENDPOINT, OTLP_GRPC_ENDPOINT,
                                      localhost:4317 */
    char *service_name;            /* NULL: OTEL_SERVICE_NAME, then poh-exporter */
    poh_config_kv_t *resource_attributes; /* over OTEL_RESOURCE_ATTRIBUTES */
    size_t resource_attributes_count;
    poh_config_kv_t *headers;      /* over OTEL_EXPORTER_OTLP_HEADERS; secret values */
    size_t headers_count;
    poh_grpc_tls_t tls;            /* schema: poh_grpc_tls_implied_section (no `enabled`) */
    double sample_ratio;           /* 0..1; default 1 */
    unsigned queue_size;           /* spans; default 2048 */
    unsigned batch_size;           /* spans per Export; default 512 */
    double batch_timeout;          /* seconds; default 5 */
    double export_timeout;         /* seconds per Export call; default 10 */
    double retry_initial_backoff;  /* seconds; default 1 */
    double retry_max_backoff;      /* seconds; default 5 */
    double retry_max_elapsed;      /* seconds retrying one batch; default 30 */
    double shutdown_timeout;       /* seconds the final flush may take; default 5 */
    double drop_log_interval;      /* seconds between "spans dropped" lines; default 60 */
} poh_config_tracing_t;

#endif
