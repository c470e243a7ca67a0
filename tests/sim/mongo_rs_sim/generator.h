/* SPDX-License-Identifier: Apache-2.0 */
/* Transaction generator: inserts into dag.transactions at --rate per second
 * (and in bursts on request), each document carrying created_at = commit
 * wall time - commit_delay_ms and a W3C traceparent; with approve_after_ms,
 * sets approved_at on each document that much later. */
#ifndef MONGO_SIM_GENERATOR_H
#define MONGO_SIM_GENERATOR_H

#include <stdint.h>

#include "sim.h"

#define SIM_GEN_DB "dag"
#define SIM_GEN_COLL "transactions"

typedef struct sim_gen sim_gen_t;

sim_gen_t *sim_gen_start(sim_t *sim);
void sim_gen_stop(sim_gen_t *g);
void sim_gen_set_rate(sim_gen_t *g, double rate);
/* Insert n generated documents into db.coll now; returns 0 or -ENOMEM/-EINVAL. */
int sim_gen_burst(sim_gen_t *g, const char *db, const char *coll, uint64_t n, uint64_t *inserted);
/* Caller holds sim->mu. */
void sim_gen_counts(const sim_gen_t *g, uint64_t *generated, uint64_t *approved, double *rate);

#endif
