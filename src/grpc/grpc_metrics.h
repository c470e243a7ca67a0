/* SPDX-License-Identifier: Apache-2.0 */
/* The metric families the grpc collector writes (collectors/grpc.c), one
 * table per place they appear. The schema (grpc_schema.c) reserves their
 * names, the README's reference is checked against them
 * (tests/e2e/test_metric_reference.py, poh_exporter --print-metric-table). */
#ifndef POH_GRPC_METRICS_H
#define POH_GRPC_METRICS_H

#include "metrics/metrics.h"

/* /metrics: persistent counters and the latency histogram, then the gauges
 * of each scrape; indexed by these. */
enum {
    POH_GRPC_M_REQUESTS,
    POH_GRPC_M_ACK,
    POH_GRPC_M_LATENCY,
    POH_GRPC_M_FAILURES,
    POH_GRPC_M_FIELD_ERRORS,
    POH_GRPC_M_SUCCESS,
    POH_GRPC_M_HEALTH,
};
extern const poh_family_desc_t poh_grpc_metrics[];

/* /probe (no group/target labels: Prometheus adds the target). */
enum {
    POH_GRPC_P_SUCCESS,
    POH_GRPC_P_DURATION,
    POH_GRPC_P_CODE,
    POH_GRPC_P_HEALTH,
};
extern const poh_family_desc_t poh_grpc_probe_metrics[];

#endif
