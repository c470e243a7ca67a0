/* SPDX-License-Identifier: Apache-2.0 */
/* TLS channel credentials for every gRPC client of the exporter (probes and
 * the OTLP tracer): one PEM reader, one credential builder, and the one
 * place where a private key read from disk is wiped. */
#ifndef POH_GRPC_TLS_H
#define POH_GRPC_TLS_H

#include <stdbool.h>

#include <grpc/grpc_security.h>

/* PEM files larger than this are not certificates we want to load. */
#define POH_GRPC_MAX_PEM_BYTES (1u << 20)

/* PEM text read for one channel; the key is wiped when freed. */
typedef struct {
    char *ca, *cert, *key;
} poh_grpc_pems_t;

/* The whole file as a NUL-terminated string; NULL with errno set when it
 * cannot be opened or read (EINVAL: empty or over POH_GRPC_MAX_PEM_BYTES). */
char *poh_grpc_read_pem(const char *path);

/* Frees the three texts, wiping the private key first; leaves them NULL. */
void poh_grpc_pems_free(poh_grpc_pems_t *p);

/* Credentials from p (any part may be NULL; cert and key go together):
 * the system or given roots, or with skip_verify no verification at all.
 * NULL when gRPC refuses them. p is left to the caller. */
grpc_channel_credentials *poh_grpc_tls_credentials(const poh_grpc_pems_t *p, bool skip_verify);

#endif
