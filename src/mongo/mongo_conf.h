/* SPDX-License-Identifier: Apache-2.0 */
/* The `mongodb` section's configuration structs; schema table in
 * mongo_schema.c; read by collectors/mongodb.c and mongo_event.h. */
#ifndef POH_MONGO_CONF_H
#define POH_MONGO_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "config/schema.h"

/* mongodb: clusters and their change streams (issue 5); schema in
 * mongo_schema.c, consumed by collectors/mongodb.c. */
typedef struct poh_config_mongo_latency {
    char *name;                    /* exported as poh_<name>_latency_seconds */
    char *from_field;              /* document field (dotted path) where the interval starts */
    char *to;                      /* "commit": the event's wallTime; NULL when to_field is set */
    char *to_field;                /* document field where it ends (needs updateLookup) */
    char **on;                     /* to: commit: operations observed; default [insert] */
    size_t on_count;
    char *epoch_unit;              /* numeric field values: ms|s; default ms */
    /* Plausible window of a value, in seconds: above max, or below
     * -clock_skew, it is not observed but counted as a field error (reason
     * too_large / negative); between -clock_skew and 0 it is observed as 0. */
    double max;                    /* default 1d; 0 (a config built by hand) = 1d */
    double clock_skew;             /* default 1s */
} poh_config_mongo_latency_t;

typedef struct poh_config_mongo_stream {
    char *name;                    /* label stream="..." */
    char *database;
    char *collection;
    char **operations;             /* operation types processed; none = all */
    size_t operations_count;
    poh_config_mongo_latency_t *latencies;
    size_t latencies_count;
    double *buckets;               /* histogram bounds in seconds */
    size_t buckets_count;
    char *traceparent_field;       /* W3C traceparent for exemplars; default traceparent */
    double commit_spans_per_second; /* storage.commit spans made at most; 0 = none */
} poh_config_mongo_stream_t;

typedef struct poh_config_mongodb {
    char *name;                    /* label cluster="..." */
    char *uri;                     /* mongodb:// URI; its password is never shown */
    char *password;                /* secret; password or password_file; over the URI's */
    poh_config_mongo_stream_t *change_streams;
    size_t change_streams_count;
} poh_config_mongodb_t;

/* One cluster's schema table and checks (mongo_schema.c); the section itself,
 * poh_cfg_mongodb_section, is the kind's (collectors/mongodb.c), which also
 * checks the names against the exporter's other metric tables. */
extern const poh_cfg_entry_t poh_cfg_mongodb_entries[];
int poh_cfg_mongodb_validate(poh_cfg_ctx_t *ctx, void *obj);

#endif
