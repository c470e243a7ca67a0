/* SPDX-License-Identifier: Apache-2.0 */
/* Change-event mapping (mongo/mongo_event.c): a change event as the
 * server's cursor hands it over, through a stream with a commit latency,
 * a to_field latency and an operations filter, as the stream thread does
 * (a batch of events, then reset). Observed latencies must be finite and
 * inside the plausible window. */
#include <bson/bson.h>
#include <math.h>

#include "config/config.h"
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
    for (size_t l = 0; l < spec.nlat; l++)
        for (size_t i = 0; i < batch.lat[l].n; i++) {
            double v = batch.lat[l].v[i];
            FUZZ_CHECK(isfinite(v) && v >= 0 && v <= 86400.0);
        }
    poh_mongo_batch_reset(&batch, &spec);
    return 0;
}
