/* SPDX-License-Identifier: Apache-2.0 */
/* Change-event mapping (mongo/mongo_event.c): a change event as the
 * server's cursor hands it over, through a stream with a commit latency,
 * a to_field latency and an operations filter, as the stream thread does
 * (a batch of events, then reset). Observed latencies must be finite and
 * inside the plausible window; exemplars and commit spans carry valid trace
 * context; the batch's pointer into the reply stays inside it. */
#include <bson/bson.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "appconfig/app_config.h"
#include "fuzz.h"
#include "mongo/mongo_event.h"

static double buckets[] = {0.005, 0.05, 0.5, 5};
static char *ops[] = {"insert", "update", "replace"};
static poh_config_mongo_latency_t lats[] = {
    {.name = "storage", .from_field = "created_at", .to = "commit", .epoch_unit = "ms",
     .max = 86400, .clock_skew = 1},
    {.name = "approval", .from_field = "meta.created", .to_field = "approved_at",
     .epoch_unit = "s", .max = 3600, .clock_skew = 0},
};
static poh_config_mongo_stream_t cfg = {
    .name = "tx", .database = "dag", .collection = "transactions",
    .operations = ops, .operations_count = 3,
    .latencies = lats, .latencies_count = 2,
    .buckets = buckets, .buckets_count = 4,
    .traceparent_field = "traceparent",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static poh_mongo_stream_spec_t spec;
    static poh_mongo_batch_t batch;
    static int ready;
    if (!ready) {
        FUZZ_CHECK(poh_mongo_stream_spec_init(&spec, &cfg) == 0);
        FUZZ_CHECK(poh_mongo_batch_init(&batch, &spec) == 0);
        ready = 1;
    }
    if (size > UINT32_MAX)
        return 0;
    /* the whole input as one event, and as it is read from a cursor batch:
     * only a document bson itself accepts */
    (void)poh_mongo_batch_add(&batch, &spec, data, (uint32_t)size);
    bson_t doc;
    if (bson_init_static(&doc, data, size) && bson_validate(&doc, BSON_VALIDATE_NONE, NULL))
        (void)poh_mongo_batch_add(&batch, &spec, data, (uint32_t)size);
    uint64_t counted = 0;
    for (int o = 0; o < POH_OP_COUNT; o++)
        counted += batch.ops[o];
    FUZZ_CHECK(counted <= batch.events && batch.events <= 2);
    /* the last _id is kept as a pointer into the reply: it must lie inside */
    FUZZ_CHECK(!batch.last_id || (batch.last_id >= data && batch.last_id_len <= size &&
                                  batch.last_id - data <= (ptrdiff_t)(size - batch.last_id_len)));
    FUZZ_CHECK(isfinite(batch.newest_wall));
    for (size_t l = 0; l < spec.nlat; l++) {
        for (size_t i = 0; i < batch.lat[l].n; i++) {
            double v = batch.lat[l].v[i];
            FUZZ_CHECK(isfinite(v) && v >= 0 && v <= 86400.0);
        }
        const poh_mongo_exemplar_t *ex[8];
        FUZZ_CHECK(spec.nbounds + 1 <= sizeof ex / sizeof *ex);
        size_t nex = poh_mongo_batch_exemplars(&batch, &spec, l, ex);
        FUZZ_CHECK(nex <= spec.nbounds + 1);
        for (size_t k = 0; k < nex; k++) {
            FUZZ_CHECK(ex[k]->idx >= 0 && (size_t)ex[k]->idx < batch.lat[l].n);
            FUZZ_CHECK(strlen(ex[k]->trace_id) == 32 && strlen(ex[k]->span_id) == 16);
            FUZZ_CHECK(strspn(ex[k]->trace_id, "0123456789abcdef") == 32 &&
                       strspn(ex[k]->span_id, "0123456789abcdef") == 16);
        }
    }
    FUZZ_CHECK(batch.nspans <= POH_MONGO_MAX_COMMIT_SPANS);
    for (size_t i = 0; i < batch.nspans; i++) {
        FUZZ_CHECK(poh_span_context_valid(&batch.spans[i].parent));
        FUZZ_CHECK(isfinite(batch.spans[i].from_ms) && isfinite(batch.spans[i].commit_ms));
    }
    poh_mongo_batch_reset(&batch, &spec);
    return 0;
}
