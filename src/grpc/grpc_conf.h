/* SPDX-License-Identifier: Apache-2.0 */
/* The `grpc` section's configuration structs; schema table in
 * grpc_schema.c; read by collectors/grpc.c. */
#ifndef POH_GRPC_CONF_H
#define POH_GRPC_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "config/schema.h"
#include "grpc/tls_conf.h"

/* grpc: a list of probe groups (issue 3); schema in grpc_schema.c. */
typedef struct poh_config_grpc_field {
    char *path;                    /* protobuf field path in the reply, "1" or "5.2" */
    char *metric;                  /* gauge name */
    char *help;
    char *type;                    /* auto|uint64|int64|sint64|...; default auto */
} poh_config_grpc_field_t;

typedef struct poh_config_grpc_state {
    char *method;                  /* "/pkg.Service/Method"; NULL = no state call */
    char *request_hex;             /* request bytes in hex; default "" (empty message) */
    poh_config_grpc_field_t *fields;
    size_t fields_count;
} poh_config_grpc_state_t;

/* What /probe?module=<group> may reach besides the group's own targets. */
typedef struct poh_config_grpc_probe {
    char **allow;                  /* CIDRs and host-name globs (core/netmatch.h); default none */
    size_t allow_count;
    bool send_credentials;         /* metadata and client certificate to allowed targets too */
} poh_config_grpc_probe_t;

typedef struct poh_config_grpc_group {
    char *name;                    /* label group="..."; /probe module */
    char **targets;                /* "host:port", "[v6]:port" */
    size_t targets_count;
    char *health_service;          /* default "" (whole server) */
    double timeout;                /* seconds; default 2 */
    poh_grpc_tls_t tls;            /* schema: poh_grpc_tls_section */
    poh_config_kv_t *metadata;     /* headers sent with every call; "x_file" reads x from a file */
    size_t metadata_count;
    poh_config_grpc_state_t state;
    size_t max_reply_size;         /* largest reply accepted, bytes; default 4 MiB */
    poh_config_grpc_probe_t probe;
} poh_config_grpc_group_t;

/* One group's schema table and checks (grpc_schema.c); the section itself,
 * poh_cfg_grpc_section, is the kind's (collectors/grpc.c), which also checks
 * the state gauges' names against the exporter's other metric tables. */
extern const poh_cfg_entry_t poh_cfg_grpc_entries[];
int poh_cfg_grpc_validate(poh_cfg_ctx_t *ctx, void *obj);

#endif
