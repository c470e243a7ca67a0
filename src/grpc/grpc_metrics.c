/* SPDX-License-Identifier: Apache-2.0 */
/* The grpc collector's metric families (grpc_metrics.h). */
#include "grpc/grpc_metrics.h"

static const char *const l_gtm[] = {"group", "target", "method"};
static const char *const l_gtmc[] = {"group", "target", "method", "code"};
static const char *const l_gtmr[] = {"group", "target", "metric", "reason"};
static const char *const l_gt[] = {"group", "target"};
static const char *const l_gts[] = {"group", "target", "status"};
static const char *const l_m[] = {"method"};
static const char *const l_s[] = {"status"};

const poh_family_desc_t poh_grpc_metrics[] = {
    [POH_GRPC_M_REQUESTS] = {"poh_requests_total", POH_COUNTER,
                             "gRPC probe calls issued (PoH_REQUEST), by group, target and method.",
                             3, l_gtm},
    [POH_GRPC_M_ACK] = {"poh_ack_total", POH_COUNTER,
                        "gRPC probe calls answered OK, and SERVING for health checks (PoH_ACK).",
                        3, l_gtm},
    [POH_GRPC_M_LATENCY] = {"poh_grpc_method_latency_seconds", POH_HISTOGRAM,
                            "Round trip of gRPC probe calls, whatever their outcome.", 3, l_gtm},
    [POH_GRPC_M_FAILURES] = {"poh_request_failures_total", POH_COUNTER,
                             "Failed gRPC probe calls by gRPC status name, NOT_SERVING or "
                             "INVALID_RESPONSE.",
                             4, l_gtmc},
    [POH_GRPC_M_FIELD_ERRORS] = {"poh_grpc_state_field_errors_total", POH_COUNTER,
                                 "State reply fields that could not be read, by reason.", 4,
                                 l_gtmr},
    [POH_GRPC_M_SUCCESS] = {"poh_probe_success", POH_GAUGE,
                            "1 if this scrape's gRPC probe succeeded.", 2, l_gt},
    [POH_GRPC_M_HEALTH] = {"poh_grpc_health_status", POH_GAUGE,
                           "1 for the grpc.health.v1 status the target returned, 0 for the "
                           "others.",
                           3, l_gts},
    {NULL},
};

const poh_family_desc_t poh_grpc_probe_metrics[] = {
    [POH_GRPC_P_SUCCESS] = {"poh_probe_success", POH_GAUGE, "1 if the gRPC probe succeeded.", 0,
                            NULL},
    [POH_GRPC_P_DURATION] = {"poh_probe_duration_seconds", POH_GAUGE, "Wall time of the probe.",
                             0, NULL},
    [POH_GRPC_P_CODE] = {"poh_grpc_status_code", POH_GAUGE,
                         "gRPC status code of each call (0 = OK).", 1, l_m},
    [POH_GRPC_P_HEALTH] = {"poh_grpc_health_status", POH_GAUGE,
                           "1 for the grpc.health.v1 status the target returned, 0 for the "
                           "others.",
                           1, l_s},
    {NULL},
};
