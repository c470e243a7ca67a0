/* SPDX-License-Identifier: Apache-2.0 */
/* Change events per second that mongo_rs_sim delivers to one libmongoc change
 * stream consumer, against the 200,000/s goal, side by side with a plain find
 * cursor reading the same documents through the same driver and connection
 * type (the transport + driver ceiling for documents of that size).
 *
 *   bench_mongo_sim SIM_BINARY [events]      (default 1,000,000)
 *
 * Phases, each on a fresh client:
 *   generate  control INSERT n: the simulator's own write rate (for reference)
 *   drain     a stream from before the burst reads n events already in the oplog
 *   live      a stream reads n events while a second thread inserts them
 *   find      a find cursor over the same n documents (the peer)
 * Every phase checks it saw exactly n documents with consecutive seq numbers. */
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simproc.h"

#define GOAL 200000.0

static simproc_t sim;

static long long seq_of(const bson_t *doc, const char *path)
{
    bson_iter_t it, f;
    return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &f) ? bson_iter_as_int64(&f) : -1;
}

/* Read n events; 0 on success (consecutive seq from first_seq). */
static int consume(mongoc_change_stream_t *cs, long n, long long first_seq, double timeout_s)
{
    const bson_t *ev, *reply;
    bson_error_t err;
    long got = 0;
    double end = simproc_now() + timeout_s;
    while (got < n && simproc_now() < end) {
        if (mongoc_change_stream_next(cs, &ev)) {
            if (seq_of(ev, "fullDocument.seq") != first_seq + got) {
                fprintf(stderr, "event %ld: seq %lld, want %lld\n", got, seq_of(ev, "fullDocument.seq"), first_seq + got);
                return -1;
            }
            got++;
        } else if (mongoc_change_stream_error_document(cs, &err, &reply)) {
            fprintf(stderr, "change stream error: %s\n", err.message);
            return -1;
        }
    }
    if (got != n)
        fprintf(stderr, "only %ld of %ld events in %.0fs\n", got, n, timeout_s);
    return got == n ? 0 : -1;
}

static mongoc_change_stream_t *watch_from(mongoc_collection_t *coll, long long t, long long i)
{
    bson_t pipeline = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    BSON_APPEND_INT32(&opts, "maxAwaitTimeMS", 1000);
    if (t >= 0)
        BSON_APPEND_TIMESTAMP(&opts, "startAtOperationTime", (uint32_t)t, (uint32_t)i);
    mongoc_change_stream_t *cs = mongoc_collection_watch(coll, &pipeline, &opts);
    bson_destroy(&pipeline);
    bson_destroy(&opts);
    return cs;
}

static int last_ts(long long *t, long long *i)
{
    bson_t *c = simproc_ctl_json(&sim, "COUNTS");
    *t = simproc_json_int(c, "last_ts.t");
    *i = simproc_json_int(c, "last_ts.i");
    bson_destroy(c);
    return *t > 0 ? 0 : -1;
}

typedef struct burst {
    long n;
    int rc;
} burst_t;

static void *burst_main(void *arg)
{
    burst_t *b = arg;
    simproc_t own = sim; /* its own control connection */
    char line[64], reply[256];
    own.ctl_fd = -1;
    snprintf(line, sizeof line, "INSERT %ld", b->n);
    b->rc = simproc_ctl(&own, line, reply, sizeof reply);
    if (own.ctl_fd >= 0)
        close(own.ctl_fd);
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 1000000;
    char line[64], reply[256], mb[32];
    long long t, i;
    int rc = 1;
    if (argc < 2 || n <= 0) {
        fprintf(stderr, "usage: bench_mongo_sim SIM_BINARY [events]\n");
        return 2;
    }
    setenv("MONGO_RS_SIM", argv[1], 1);
    /* Room for two bursts of history and documents, so nothing is evicted. */
    snprintf(mb, sizeof mb, "%ld", n / 1000 + 256);
    char maxdocs[32];
    snprintf(maxdocs, sizeof maxdocs, "%ld", 2 * n + 10);
    const char *args[] = {"--oplog-size-mb", mb, "--max-docs", maxdocs, "--log-level", "warn", NULL};
    if (simproc_start(&sim, args) < 0) {
        fprintf(stderr, "cannot start %s\n", argv[1]);
        return 1;
    }
    mongoc_init();
    mongoc_client_t *client = mongoc_client_new(sim.uri);
    mongoc_collection_t *coll = mongoc_client_get_collection(client, "dag", "transactions");

    /* generate + drain */
    if (last_ts(&t, &i) < 0)
        goto out;
    snprintf(line, sizeof line, "INSERT %ld", n);
    double t0 = simproc_now();
    if (simproc_ctl(&sim, line, reply, sizeof reply) < 0) {
        fprintf(stderr, "INSERT failed: %s\n", reply);
        goto out;
    }
    double gen_s = simproc_now() - t0;
    mongoc_change_stream_t *cs = watch_from(coll, t, i + 1);
    t0 = simproc_now();
    if (consume(cs, n, 1, 300) < 0)
        goto out;
    double drain_s = simproc_now() - t0;
    mongoc_change_stream_destroy(cs);

    /* live: the stream is open before the burst starts */
    cs = watch_from(coll, -1, 0);
    const bson_t *ev;
    mongoc_change_stream_next(cs, &ev); /* runs the aggregate; no events yet */
    burst_t b = {.n = n};
    pthread_t th;
    t0 = simproc_now();
    pthread_create(&th, NULL, burst_main, &b);
    int live_rc = consume(cs, n, n + 1, 300);
    double live_s = simproc_now() - t0;
    pthread_join(th, NULL);
    mongoc_change_stream_destroy(cs);
    if (live_rc < 0 || b.rc < 0)
        goto out;

    /* peer: a find cursor over the same documents */
    bson_t filter = BSON_INITIALIZER;
    const bson_t *doc;
    bson_error_t err;
    long found = 0;
    t0 = simproc_now();
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        if (seq_of(doc, "seq") != found + 1) {
            fprintf(stderr, "find: document %ld has seq %lld\n", found, seq_of(doc, "seq"));
            goto out;
        }
        found++;
    }
    double find_s = simproc_now() - t0;
    if (mongoc_cursor_error(cur, &err)) {
        fprintf(stderr, "find: %s\n", err.message);
        goto out;
    }
    mongoc_cursor_destroy(cur);
    if (found != 2 * n) {
        fprintf(stderr, "find returned %ld documents, want %ld\n", found, 2 * n);
        goto out;
    }

    double drain = n / drain_s, live = n / live_s, find = found / find_s;
    printf("mongo_sim: the simulator's own throughput (mongo_rs_sim on loopback, not a real "
           "mongod)\n");
    printf("mongo_sim: %ld change events per phase, one libmongoc consumer, goal %.0f/s\n", n, GOAL);
    printf("  %-44s %12.0f /s\n", "generate (control INSERT, in-process)", n / gen_s);
    printf("  %-44s %12.0f /s   x%.2f of goal\n", "change stream, drain (events already in oplog)", drain, drain / GOAL);
    printf("  %-44s %12.0f /s   x%.2f of goal\n", "change stream, live (inserted meanwhile)", live, live / GOAL);
    printf("  %-44s %12.0f /s   (peer)\n", "find cursor, same documents", find);
    printf("  change stream drain / find cursor: %.2f\n", drain / find);
    rc = drain >= GOAL && live >= GOAL ? 0 : 3;
    if (rc)
        printf("  BELOW GOAL\n");
out:
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    mongoc_cleanup();
    if (simproc_stop(&sim) < 0)
        rc = 1;
    return rc;
}
