/* SPDX-License-Identifier: Apache-2.0 */
/* mongo_sim_watch: open a change stream with libmongoc and print each event as
 * canonical extended JSON, one per line. Used by the pymongo tests to show
 * that two independent drivers see the same events.
 *
 *   mongo_sim_watch --uri URI --ns db.coll --count N [--start-at T,I]
 *                   [--resume-after JSON] [--full-document updateLookup]
 *                   [--timeout-ms MS]
 * Exit 0 after N events; 1 on a stream error or when the timeout passes. */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: mongo_sim_watch --uri URI --ns db.coll --count N [--start-at T,I] "
                    "[--resume-after JSON] [--full-document updateLookup] [--timeout-ms MS]\n");
}

int main(int argc, char **argv)
{
    const char *uri = NULL, *ns = NULL, *start_at = NULL, *resume = NULL, *full = NULL;
    long count = -1, timeout_ms = 30000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--uri"))
            uri = argv[i + 1];
        else if (!strcmp(argv[i], "--ns"))
            ns = argv[i + 1];
        else if (!strcmp(argv[i], "--count"))
            count = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--start-at"))
            start_at = argv[i + 1];
        else if (!strcmp(argv[i], "--resume-after"))
            resume = argv[i + 1];
        else if (!strcmp(argv[i], "--full-document"))
            full = argv[i + 1];
        else if (!strcmp(argv[i], "--timeout-ms"))
            timeout_ms = strtol(argv[i + 1], NULL, 10);
        else {
            usage();
            return 2;
        }
    }
    const char *dot = ns ? strchr(ns, '.') : NULL;
    if (!uri || !dot || count < 0 || (argc - 1) % 2) {
        usage();
        return 2;
    }
    char db[128];
    snprintf(db, sizeof db, "%.*s", (int)(dot - ns), ns);

    int rc = 1;
    bson_error_t err;
    bson_t opts = BSON_INITIALIZER, pipeline = BSON_INITIALIZER;
    mongoc_init();
    mongoc_client_t *client = mongoc_client_new(uri);
    if (!client) {
        fprintf(stderr, "mongo_sim_watch: bad URI\n");
        goto out;
    }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    mongoc_collection_t *coll = mongoc_client_get_collection(client, db, dot + 1);
    BSON_APPEND_INT64(&opts, "maxAwaitTimeMS", 200);
    if (full)
        BSON_APPEND_UTF8(&opts, "fullDocument", full);
    if (start_at) {
        unsigned t, inc;
        if (sscanf(start_at, "%u,%u", &t, &inc) != 2) {
            fprintf(stderr, "mongo_sim_watch: --start-at wants T,I\n");
            goto out_coll;
        }
        BSON_APPEND_TIMESTAMP(&opts, "startAtOperationTime", t, inc);
    }
    if (resume) {
        bson_t *tok = bson_new_from_json((const uint8_t *)resume, -1, &err);
        if (!tok) {
            fprintf(stderr, "mongo_sim_watch: --resume-after: %s\n", err.message);
            goto out_coll;
        }
        BSON_APPEND_DOCUMENT(&opts, "resumeAfter", tok);
        bson_destroy(tok);
    }
    mongoc_change_stream_t *cs = mongoc_collection_watch(coll, &pipeline, &opts);
    int64_t deadline = bson_get_monotonic_time() + timeout_ms * 1000;
    long seen = 0;
    while (seen < count && bson_get_monotonic_time() < deadline) {
        const bson_t *ev, *reply;
        if (mongoc_change_stream_next(cs, &ev)) {
            char *json = bson_as_canonical_extended_json(ev, NULL);
            printf("%s\n", json);
            bson_free(json);
            seen++;
        } else if (mongoc_change_stream_error_document(cs, &err, &reply)) {
            fprintf(stderr, "mongo_sim_watch: stream error %u: %s\n", err.code, err.message);
            break;
        }
    }
    fflush(stdout);
    if (seen == count)
        rc = 0;
    else
        fprintf(stderr, "mongo_sim_watch: saw %ld of %ld events\n", seen, count);
    mongoc_change_stream_destroy(cs);
out_coll:
    mongoc_collection_destroy(coll);
out:
    mongoc_client_destroy(client);
    bson_destroy(&opts);
    bson_destroy(&pipeline);
    mongoc_cleanup();
    return rc;
}
