/* SPDX-License-Identifier: Apache-2.0 */
/* Replies of a MongoDB server as the status scrape and the streams read
 * them: replSetGetStatus members (and replication lag), time fields of
 * every type, the error classification of a failed command's reply, and
 * the input itself as an RFC 3339 string. */
#include <bson/bson.h>
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include <mongoc/mongoc.h>

#include "mongo/mongo_util.h"

static void check_time(double ms)
{
    FUZZ_CHECK(isfinite(ms) && ms >= POH_MONGO_TIME_MIN_MS && ms <= POH_MONGO_TIME_MAX_MS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    double ms;
    if (poh_parse_rfc3339((const char *)data, size, &ms) == 0)
        check_time(ms);
    bson_t doc;
    if (!bson_init_static(&doc, data, size))
        return 0;
    poh_mongo_member_t m[64];
    int n = poh_mongo_members_parse(&doc, m, 64);
    FUZZ_CHECK(n <= 64);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(memchr(m[i].name, '\0', sizeof m[i].name) != NULL);
        FUZZ_CHECK(memchr(m[i].state_str, '\0', sizeof m[i].state_str) != NULL);
        FUZZ_CHECK(m[i].state >= -1 && m[i].state <= 10);
        FUZZ_CHECK(m[i].health >= -1 && m[i].health <= 1);
        FUZZ_CHECK(isfinite(m[i].optime)); /* <= 0: none */
        double lag = poh_mongo_replication_lag(m, (size_t)n, (size_t)i);
        FUZZ_CHECK(isnan(lag) || (isfinite(lag) && lag >= 0));
    }
    /* a reply with room for fewer members than it lists */
    FUZZ_CHECK(poh_mongo_members_parse(&doc, m, 2) <= 2);
    bson_iter_t it;
    if (bson_iter_init(&it, &doc))
        while (bson_iter_next(&it)) {
            for (int unit = POH_EPOCH_MS; unit <= POH_EPOCH_S; unit++)
                if (poh_mongo_time_value(&it, (poh_epoch_unit_t)unit, &ms) == 0)
                    check_time(ms);
        }
    static const bson_error_t errs[] = {
        {.domain = MONGOC_ERROR_SERVER, .code = 286},
        {.domain = MONGOC_ERROR_QUERY, .code = 43},
        {.domain = MONGOC_ERROR_STREAM, .code = MONGOC_ERROR_STREAM_SOCKET},
    };
    for (size_t i = 0; i < sizeof errs / sizeof *errs; i++) {
        poh_mongo_err_kind_t k = poh_mongo_error_kind(&errs[i], &doc);
        FUZZ_CHECK(k == POH_MONGO_ERR_RESUMABLE || k == POH_MONGO_ERR_HISTORY_LOST ||
                   k == POH_MONGO_ERR_OTHER);
    }
    return 0;
}
