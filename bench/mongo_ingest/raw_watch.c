/* SPDX-License-Identifier: Apache-2.0 */
/* bench_mongo_raw_watch: the plainest libmongoc change stream consumer
 * (mongoc_collection_watch and mongoc_change_stream_next, nothing else),
 * the peer poh_exporter's change stream ingest is compared with.
 *
 *   bench_mongo_raw_watch URI DB.COLL COUNT START_T START_I
 * Starts at operation time (START_T, START_I), reads COUNT events, prints
 * "events=N seconds=S" and exits 0; exits 1 on a stream error. */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 6 || !strchr(argv[2], '.')) {
        fprintf(stderr, "usage: bench_mongo_raw_watch URI DB.COLL COUNT START_T START_I\n");
        return 2;
    }
    const char *dot = strchr(argv[2], '.');
    char db[128];
    snprintf(db, sizeof db, "%.*s", (int)(dot - argv[2]), argv[2]);
    long count = strtol(argv[3], NULL, 10);
    uint32_t t = (uint32_t)strtoul(argv[4], NULL, 10), i = (uint32_t)strtoul(argv[5], NULL, 10);

    mongoc_init();
    bson_error_t err;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &err);
    mongoc_client_t *client = uri ? mongoc_client_new_from_uri(uri) : NULL;
    if (!client) {
        fprintf(stderr, "bench_mongo_raw_watch: %s\n", uri ? "cannot create a client" : err.message);
        return 1;
    }
    mongoc_collection_t *coll = mongoc_client_get_collection(client, db, dot + 1);
    bson_t *opts = BCON_NEW("startAtOperationTime", BCON_TIMESTAMP(t, i), "maxAwaitTimeMS",
                            BCON_INT64(500));
    bson_t pipeline = BSON_INITIALIZER;
    double t0 = now();
    mongoc_change_stream_t *cs = mongoc_collection_watch(coll, &pipeline, opts);
    const bson_t *doc, *err_doc;
    long n = 0;
    int rc = 0;
    while (n < count) {
        if (mongoc_change_stream_next(cs, &doc)) {
            n++;
        } else if (mongoc_change_stream_error_document(cs, &err, &err_doc)) {
            fprintf(stderr, "bench_mongo_raw_watch: %s\n", err.message);
            rc = 1;
            break;
        }
    }
    printf("events=%ld seconds=%.6f\n", n, now() - t0);
    mongoc_change_stream_destroy(cs);
    bson_destroy(&pipeline);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return rc;
}
