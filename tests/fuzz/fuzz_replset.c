/* SPDX-License-Identifier: Apache-2.0 */
/* Replies of a MongoDB server as the status scrape and the streams read
 * them: replSetGetStatus members (and replication lag), time fields of
 * every type, and the error classification of a failed command's reply. */
#include <bson/bson.h>
#include <math.h>

#include "fuzz.h"
#include <mongoc/mongoc.h>

#include "mongo/mongo_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bson_t doc;
    if (!bson_init_static(&doc, data, size))
        return 0;
    poh_mongo_member_t m[64];
    int n = poh_mongo_members_parse(&doc, m, 64);
    FUZZ_CHECK(n <= 64);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(m[i].state >= -1 && m[i].state <= 10);
        double lag = poh_mongo_replication_lag(m, (size_t)n, (size_t)i);
        FUZZ_CHECK(isnan(lag) || lag >= 0);
    }
    bson_iter_t it;
    if (bson_iter_init(&it, &doc))
        while (bson_iter_next(&it)) {
            double ms;
            for (int unit = POH_EPOCH_MS; unit <= POH_EPOCH_S; unit++)
                if (poh_mongo_time_value(&it, (poh_epoch_unit_t)unit, &ms) == 0)
                    FUZZ_CHECK(isfinite(ms) && ms >= POH_MONGO_TIME_MIN_MS &&
                               ms <= POH_MONGO_TIME_MAX_MS);
        }
    bson_error_t err = {.domain = MONGOC_ERROR_SERVER, .code = 286};
    (void)poh_mongo_error_kind(&err, &doc);
    return 0;
}
