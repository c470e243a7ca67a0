/* SPDX-License-Identifier: Apache-2.0 */
/* The grpc collector (issue 3): one collector "grpc/<group>" per configured
 * group. At each scrape it probes every target of its group at once (a
 * grpc.health.v1 Check, plus the optional unary state call) on one
 * completion queue, over channels kept between scrapes.
 *
 * Persistent (counters across scrapes, in the registry given at creation):
 *   poh_requests_total{group,target,method}
 *   poh_ack_total{group,target,method}
 *   poh_request_failures_total{group,target,method,code}
 *   poh_grpc_method_latency_seconds{group,target,method}      histogram
 *   poh_grpc_state_field_errors_total{group,target,metric,reason}
 * Per scrape:
 *   poh_probe_success{group,target}
 *   poh_grpc_health_status{group,target,status}
 *   <state field gauges>{group,target}
 * code is a gRPC status name (UNAVAILABLE, DEADLINE_EXCEEDED, ...), or
 * NOT_SERVING when Check answered OK with another status than SERVING, or
 * INVALID_RESPONSE when its reply was not a HealthCheckResponse.
 *
 * /probe (ops->probe, module = group name) probes one target with the group's
 * settings and writes, without group/target labels (Prometheus adds the
 * target through relabelling): poh_probe_success, poh_probe_duration_seconds,
 * poh_grpc_status_code{method}, poh_grpc_health_status{status} and the state
 * gauges. It does not touch the counters above. */
#ifndef POH_COLLECTOR_GRPC_H
#define POH_COLLECTOR_GRPC_H

#include "collectors/collector.h"

extern const poh_collector_ops_t poh_grpc_collector_ops;

/* The kind (poh_grpc_kind, collector.h) makes one collector per group;
 * this makes those of cfg->grpc. */
int poh_grpc_collectors_create(const poh_config_t *cfg, const poh_collector_env_t *env,
                               poh_collector_list_t *list);

#endif
