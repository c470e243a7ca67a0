/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a byte string is one wire message. It is parsed and, if
 * well formed, dispatched against an in-process simulator, exercising the
 * framing, BSON validation and every command handler with hostile input.
 * The first byte chooses whether the length header is kept as given or
 * fixed up, so both framing errors and deep command paths are reached. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "fuzz_wire.h"
#include "sim.h"

unsigned long sim_fuzz_parsed, sim_fuzz_ok;

static sim_t *fuzz_sim;
static sim_client_t fuzz_client;
static bson_t fuzz_reply;

static void fuzz_init(void)
{
    sim_config_t cfg = {.bind = "127.0.0.1", .set_name = "rs0", .secondaries = 2, .commit_delay_ms = 50,
                        .oplog_max_bytes = 4 << 20, .max_docs = 10000, .max_connections = 16};
    poh_log_setup(POH_LOG_ERROR, POH_LOG_LOGFMT);
    fuzz_sim = sim_new(&cfg);
    if (!fuzz_sim)
        abort();
    snprintf(fuzz_sim->members[0].host, sizeof fuzz_sim->members[0].host, "127.0.0.1:27017");
    /* "Stopping" makes awaiting getMores and stalls return at once. */
    atomic_store(&fuzz_sim->stopping, true);
    fuzz_client.sim = fuzz_sim;
    fuzz_client.conn_id = 1;
    bson_init(&fuzz_client.scratch);
    bson_init(&fuzz_reply);
}

void sim_fuzz_cleanup(void)
{
    if (!fuzz_sim)
        return;
    sim_destroy(fuzz_sim);
    bson_destroy(&fuzz_client.scratch);
    bson_destroy(&fuzz_reply);
    fuzz_sim = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_sim)
        fuzz_init();
    if (size < 1 || size > SIM_MAX_MESSAGE)
        return 0;
    bool fix_length = data[0] & 1;
    size--;
    uint8_t *msg = malloc(size ? size : 1);
    if (!msg)
        return 0;
    memcpy(msg, data + 1, size);
    if (fix_length && size >= 4) {
        for (int i = 0; i < 4; i++)
            msg[i] = (uint8_t)(size >> (8 * i));
    }
    sim_request_t req;
    const char *why;
    if (sim_wire_parse(msg, size, &req, &why) == 0) {
        bson_iter_t it;
        sim_fuzz_parsed++;
        bson_reinit(&fuzz_reply);
        sim_dispatch(fuzz_sim, &fuzz_client, &req, &fuzz_reply);
        if (bson_iter_init_find(&it, &fuzz_reply, "ok") && bson_iter_as_double(&it) == 1.0)
            sim_fuzz_ok++;
        /* Keep the in-process store small across millions of runs. */
        pthread_mutex_lock(&fuzz_sim->mu);
        sim_cursor_reap(fuzz_sim->store, INT64_MAX / 2, 0);
        pthread_mutex_unlock(&fuzz_sim->mu);
    }
    free(msg);
    return 0;
}
