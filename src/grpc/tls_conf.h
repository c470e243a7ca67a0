/* SPDX-License-Identifier: Apache-2.0 */
/* The one TLS configuration of the exporter's gRPC clients (probe groups'
 * `tls` and `tracing.tls`): its struct, its one schema table and the one
 * check that a client certificate comes with its key. No gRPC here, so that
 * configuration structs can embed it; grpc/tls.h builds credentials from it. */
#ifndef POH_GRPC_TLS_CONF_H
#define POH_GRPC_TLS_CONF_H

#include <stdbool.h>

#include "config/schema.h"

typedef struct poh_grpc_tls {
    bool enabled;              /* TLS on; also implied by any key below (grpc groups only:
                                  for tracing the endpoint and these keys decide) */
    char *ca_file;             /* PEM roots; NULL = system roots */
    char *cert_file;           /* client certificate chain (mTLS); needs key_file */
    char *key_file;
    char *server_name;         /* name checked against the certificate, and :authority */
    bool insecure_skip_verify; /* accept any server certificate */
} poh_grpc_tls_t;

/* The `tls` section of a grpc group: enabled, ca_file, cert_file, key_file,
 * server_name, insecure_skip_verify. */
extern const poh_cfg_section_t poh_grpc_tls_section;
/* The same table without its `enabled` key (`tracing.tls`: TLS follows the
 * endpoint's scheme and these keys). */
extern const poh_cfg_section_t poh_grpc_tls_implied_section;

#define POH_GRPC_TLS_UNPAIRED_WHY "cert_file and key_file must be given together"

/* NULL when t is consistent; else the reason (POH_GRPC_TLS_UNPAIRED_WHY) and,
 * in *key, the key it is about. The one place this rule is checked: by the
 * schema, the tracer's resolution and the probe's credentials. */
const char *poh_grpc_tls_problem(const poh_grpc_tls_t *t, const char **key);

/* Whether any file, server_name or insecure_skip_verify is set. */
bool poh_grpc_tls_has_settings(const poh_grpc_tls_t *t);

/* Deep copy of src into dst (strings duplicated, "" as NULL); -ENOMEM leaves
 * dst cleared. */
int poh_grpc_tls_copy(poh_grpc_tls_t *dst, const poh_grpc_tls_t *src);
/* Frees the strings of a copy made by poh_grpc_tls_copy(); leaves t zeroed. */
void poh_grpc_tls_clear(poh_grpc_tls_t *t);

#endif
