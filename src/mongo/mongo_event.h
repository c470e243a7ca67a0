/* SPDX-License-Identifier: Apache-2.0 */
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

#include "mongo/mongo_conf.h"
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

/* Why a change event gave no latency value: the `reason` label of
 * poh_mongodb_change_field_errors_total{field,reason}. */
typedef enum {
    POH_FIELD_MISSING = 0,     /* "missing": the field (or the event's wallTime) is absent */
    POH_FIELD_NOT_A_TIME,      /* "not_a_time": another type, NaN/Inf, not RFC 3339 */
    POH_FIELD_OUT_OF_RANGE,    /* "out_of_range": a number or Date outside years 0000-9999 */
    POH_FIELD_NEGATIVE,        /* "negative": to - from below minus the clock-skew allowance */
    POH_FIELD_TOO_LARGE,       /* "too_large": to - from above the latency's max */
    POH_FIELD_REASONS
} poh_mongo_field_reason_t;

/* "missing", "not_a_time", ...; "unknown" for anything else. */
const char *poh_mongo_field_reason_name(int reason);

/* State files keep field errors as "<reason>:<field>" counts. Write that key
 * into buf (truncated to size). */
void poh_mongo_field_error_key(char *buf, size_t size, const char *field, int reason);
/* Split a saved key: the field, with *reason set; a key without a known
 * reason prefix (saved before reasons existed) is a whole field name and
 * *reason is -1 ("unknown"). */
const char *poh_mongo_field_error_split(const char *key, int *reason);

/* Default plausible window of a latency, in seconds: values below
 * -POH_MONGO_DEFAULT_CLOCK_SKEW or above POH_MONGO_DEFAULT_MAX_LATENCY are
 * refused; values between -clock_skew and 0 are observed as 0. */
#define POH_MONGO_DEFAULT_CLOCK_SKEW 1.0
#define POH_MONGO_DEFAULT_MAX_LATENCY 86400.0

typedef struct poh_mongo_latency_spec {
    char *name;
    char *from_field;
    char *to_field;            /* NULL: to the commit (wallTime) */
    uint32_t on_mask;          /* commit latencies: 1 << op of the operations observed */
    poh_epoch_unit_t unit;
    size_t from_err, to_err;   /* indexes into the spec's fields */
    size_t from_path, to_path; /* indexes into the spec's paths (to_path: with to_field) */
    double min_ms, max_ms;     /* plausible window of to - from: [-clock_skew, max] */
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
    char **paths;              /* distinct document paths read: from/to fields, traceparent */
    size_t npaths;
    size_t trace_path;         /* index of traceparent_field in paths */
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

/* An event split by $changeStreamSplitLargeEvent being joined across
 * fragments (and batches): only the fields the stream reads are kept. */
typedef struct poh_mongo_split {
    int64_t of, next;          /* its fragments, the one expected next; 0: none */
    bson_t *kept;              /* operationType, clusterTime, wallTime and the configured
                                * fields of fullDocument and updatedFields, by path */
} poh_mongo_split_t;

typedef struct poh_mongo_batch {
    uint64_t ops[POH_OP_COUNT];
    uint64_t *field_errors;    /* [field * POH_FIELD_REASONS + reason] */
    poh_mongo_lat_values_t *lat;
    double newest_wall;        /* unix milliseconds of the newest event; 0 = none */
    size_t events;             /* change events seen, processed or not */
    const uint8_t *last_id;    /* _id of the last whole event, or of the last fragment of a split
                                * one (points into the reply); never a position inside an event */
    uint32_t last_id_len;
    bool invalidated;          /* an invalidate event ended the stream */
    poh_mongo_commit_span_t *spans; /* POH_MONGO_MAX_COMMIT_SPANS slots */
    size_t nspans;
    poh_mongo_split_t split;   /* kept by poh_mongo_batch_reset: fragments span batches */
} poh_mongo_batch_t;

/* Field errors of spec field f for one reason. */
static inline uint64_t poh_mongo_batch_field_errors(const poh_mongo_batch_t *b, size_t f,
                                                   poh_mongo_field_reason_t reason)
{
    return b->field_errors[f * POH_FIELD_REASONS + reason];
}

int poh_mongo_batch_init(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec);
void poh_mongo_batch_reset(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec);
void poh_mongo_batch_free(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec);

/* Fold one change event (a BSON document) into the batch. Returns 0,
 * -EINVAL when it is not a change event (no _id document), -ENOMEM.
 * Fragments of a split event (splitEvent {fragment, of}) are joined and the
 * event is counted once, with its last fragment; while one is unfinished
 * (b->split.of != 0) the caller must save b->last_id, not the reply's
 * postBatchResumeToken, which points inside the event. */
int poh_mongo_batch_add(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec,
                        const uint8_t *data, uint32_t len);
/* Forget an unfinished split event (the stream is reopened at its saved
 * token, before the event's first fragment). */
void poh_mongo_batch_split_reset(poh_mongo_batch_t *b);

/* The exemplars of latency l in this batch, sorted by observation index,
 * into out (room for nbounds + 1); returns how many. */
size_t poh_mongo_batch_exemplars(const poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec,
                                 size_t l, const poh_mongo_exemplar_t **out);

#endif
