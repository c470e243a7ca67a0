/* SPDX-License-Identifier: Apache-2.0 */
/* TLS channel credentials for every gRPC client of the exporter (probes and
 * the OTLP tracer): one PEM reader, one credential builder, and the one
 * place where a private key read from disk is wiped. */
#ifndef POH_GRPC_TLS_H
#define POH_GRPC_TLS_H

#include <stdbool.h>

#include <grpc/grpc_security.h>

#include "grpc/tls_conf.h"

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

/* Why poh_grpc_tls_creds() gave no credentials. */
typedef struct poh_grpc_tls_failure {
    enum { POH_GRPC_TLS_UNREADABLE = 1, POH_GRPC_TLS_UNPAIRED, POH_GRPC_TLS_REJECTED } kind;
    const char *key;  /* UNREADABLE: "ca_file", "cert_file" or "key_file" */
    const char *path; /* UNREADABLE: that file */
    int err;          /* UNREADABLE: errno of the read */
} poh_grpc_tls_failure_t;

/* Channel credentials for tls: its files read (NULL or "": none; the first
 * unreadable one stops), cert and key paired (poh_grpc_tls_problem), then built as
 * poh_grpc_tls_credentials() does; the PEM text is freed and the key wiped
 * before returning. NULL with *why filled when any step fails. */
grpc_channel_credentials *poh_grpc_tls_creds(const poh_grpc_tls_t *tls,
                                             poh_grpc_tls_failure_t *why);

#endif
