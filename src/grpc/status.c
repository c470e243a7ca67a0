/* SPDX-License-Identifier: Apache-2.0 */
/* Names of gRPC status codes and of health-check serving statuses. */
#include "grpc/grpc_probe.h"

#include <errno.h>
#include <stdlib.h>
#include <strings.h>

static const char *const code_names[] = {
    "OK",                 "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",  "NOT_FOUND",         "ALREADY_EXISTS",   "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",        "OUT_OF_RANGE",
    "UNIMPLEMENTED",      "INTERNAL",          "UNAVAILABLE",      "DATA_LOSS",
    "UNAUTHENTICATED",
};
#define NCODES (sizeof code_names / sizeof code_names[0])

const char *poh_grpc_code_name(int code)
{
    return code >= 0 && (size_t)code < NCODES ? code_names[code] : "UNKNOWN";
}

int poh_grpc_code_parse(const char *s, int *code)
{
    if (!s || !*s)
        return -EINVAL;
    if (s[0] >= '0' && s[0] <= '9') {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end || v < 0 || (size_t)v >= NCODES)
            return -EINVAL;
        *code = (int)v;
        return 0;
    }
    for (size_t i = 0; i < NCODES; i++) {
        if (strcasecmp(s, code_names[i]) == 0) {
            *code = (int)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *poh_grpc_serving_status_name(int status)
{
    switch (status) {
    case POH_GRPC_SERVING_UNKNOWN: return "UNKNOWN";
    case POH_GRPC_SERVING_SERVING: return "SERVING";
    case POH_GRPC_SERVING_NOT_SERVING: return "NOT_SERVING";
    case POH_GRPC_SERVING_SERVICE_UNKNOWN: return "SERVICE_UNKNOWN";
    default: return "INVALID";
    }
}
