/* SPDX-License-Identifier: Apache-2.0 */
/* One unary gRPC call as one batch of its six operations (send metadata,
 * message and close; receive metadata, message and status), shared by the
 * probes (grpc_probe.c) and the OTLP exporter (trace/tracer.c). */
#ifndef POH_GRPC_UNARY_H
#define POH_GRPC_UNARY_H

#include <grpc/grpc.h>

/* What the batch sends and receives; valid once its completion is seen. */
typedef struct poh_grpc_unary {
    grpc_byte_buffer *send;
    grpc_byte_buffer *recv; /* the reply; NULL when none came */
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string; /* gRPC's own words, or NULL */
} poh_grpc_unary_t;

/* Empty u (nothing to free). */
void poh_grpc_unary_init(poh_grpc_unary_t *u);

/* Starts the batch on call with initial metadata md[0..nmd) (read until the
 * completion) and request payload (referenced, not taken); its completion
 * comes with tag on the call's queue. GRPC_CALL_OK or gRPC's error. */
grpc_call_error poh_grpc_unary_start(poh_grpc_unary_t *u, grpc_call *call, grpc_metadata *md,
                                     size_t nmd, grpc_slice payload, void *tag);

/* Frees what u holds and empties it; may be called again. */
void poh_grpc_unary_release(poh_grpc_unary_t *u);

#endif
