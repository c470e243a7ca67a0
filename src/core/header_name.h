/* SPDX-License-Identifier: Apache-2.0 */
/* The one rule for header names the exporter sends on a gRPC call: probe
 * metadata (grpc: metadata) and OTLP export headers (tracing: headers). */
#ifndef POH_HEADER_NAME_H
#define POH_HEADER_NAME_H

typedef enum {
    POH_HEADER_NAME_OK = 0,
    POH_HEADER_NAME_EMPTY,         /* ""                                           */
    POH_HEADER_NAME_BAD_CHAR,      /* not lowercase letters, digits, '-', '_', '.' */
    POH_HEADER_NAME_GRPC_RESERVED, /* grpc-*                                       */
    POH_HEADER_NAME_BINARY,        /* ends in -bin (binary values not supported)   */
    POH_HEADER_NAME_SET_BY_US,     /* te, content-type, user-agent, host, ...      */
} poh_header_name_problem_t;

/* Checks an already lowercased name (callers that accept any case fold it
 * first); the problems are tested in the order they are listed above. */
poh_header_name_problem_t poh_header_name_check(const char *name);

#endif
