/* Change events → counts and latency observations, without I/O.
 *
 * A stream's configuration is compiled once into a poh_mongo_stream_spec_t.
 * Each reply batch is folded into a poh_mongo_batch_t (operation counts,
 * field errors, latency values, one exemplar per histogram bucket); the
 * caller persists the resume token and only then applies the batch to the
 * metrics, so nothing a scrape sees is ahead of the saved state. */
#ifndef POH_MONGO_EVENT_H
#define POH_MONGO_EVENT_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "mongo/mongo_util.h"
#include "trace/trace.h"

typedef enum {
    POH_OP_INSERT = 0,
    POH_OP_UPDATE,
    POH_OP_REPLACE,
    POH_OP_DELETE,
    POH_OP_DROP,
    POH_OP_RENAME,
    POH_OP_DROP_DATABASE,
    POH_OP_INVALIDATE,
    POH_OP_OTHER,        /* any other operationType (label "other") */
    POH_OP_COUNT
} poh_mongo_op_t;

/* "insert", ... "invalidate", "other". */
const char *poh_mongo_op_name(int op);
/* The operation of a configured name, or -1 (also for "other"). */
int poh_mongo_op_parse(const char *s);

typedef struct poh_mongo_latency_spec {
    char *name;
    char *from_field;
    char *to_field;            /* NULL: to the commit (wallTime) */
    uint32_t on_mask;          /* commit latencies: 1 << op of the operations observed */
    poh_epoch_unit_t unit;
    size_t from_err, to_err;   /* indexes into the spec's fields */
} poh_mongo_latency_spec_t;

typedef struct poh_mongo_stream_spec {
    uint32_t op_mask;          /* operations processed; others are skipped */
    poh_mongo_latency_spec_t *lat;
    size_t nlat;
    char **fields;             /* distinct field names of field errors; the last is "wallTime" */
    size_t nfields;
    double *bounds;            /* histogram bounds (for the exemplar slots) */
    size_t nbounds;
    char *traceparent_field;   /* NULL: no exemplars */
    bool update_lookup;        /* some latency reads fullDocument of updates */
} poh_mongo_stream_spec_t;

/* Compile a stream's configuration. Returns 0 or -ENOMEM. */
int poh_mongo_stream_spec_init(poh_mongo_stream_spec_t *spec,
                               const poh_config_mongo_stream_t *cfg);
void poh_mongo_stream_spec_free(poh_mongo_stream_spec_t *spec);

typedef struct poh_mongo_exemplar {
    int64_t idx;               /* observation index in the batch; -1 = none */
    double ts;
    char trace_id[33];
    char span_id[17];
} poh_mongo_exemplar_t;

typedef struct poh_mongo_lat_values {
    double *v;
    size_t n, cap;
    poh_mongo_exemplar_t *ex;  /* nbounds + 1 slots, one per bucket */
} poh_mongo_lat_values_t;

/* A traced document's commit: the storage.commit span to join to the
 * application's trace (parent from the document's traceparent), from the
 * document's timestamp to the commit. One per event, for the first commit
 * latency observed. */
typedef struct poh_mongo_commit_span {
    poh_span_context_t parent;
    double from_ms, commit_ms;  /* unix milliseconds */
} poh_mongo_commit_span_t;

/* Candidates kept per batch; the stream's span rate limit is far lower. */
#define POH_MONGO_MAX_COMMIT_SPANS 256

typedef struct poh_mongo_batch {
    uint64_t ops[POH_OP_COUNT];
    uint64_t *field_errors;    /* per spec field */
    poh_mongo_lat_values_t *lat;
    double newest_wall;        /* unix milliseconds of the newest event; 0 = none */
    size_t events;             /* change events seen, processed or not */
    const uint8_t *last_id;    /* _id of the last event (points into the reply) */
    uint32_t last_id_len;
    bool invalidated;          /* an invalidate event ended the stream */
    poh_mongo_commit_span_t *spans; /* POH_MONGO_MAX_COMMIT_SPANS slots */
    size_t nspans;
} poh_mongo_batch_t;

int poh_mongo_batch_init(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec);
void poh_mongo_batch_reset(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec);
void poh_mongo_batch_free(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec);

/* Fold one change event (a BSON document) into the batch. Returns 0,
 * -EINVAL when it is not a change event (no _id document), -ENOMEM. */
int poh_mongo_batch_add(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec,
                        const uint8_t *data, uint32_t len);

/* The exemplars of latency l in this batch, sorted by observation index,
 * into out (room for nbounds + 1); returns how many. */
size_t poh_mongo_batch_exemplars(const poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec,
                                 size_t l, const poh_mongo_exemplar_t **out);

#endif
