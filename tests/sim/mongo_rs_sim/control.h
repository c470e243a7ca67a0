/* SPDX-License-Identifier: Apache-2.0 */
/* Control channel of the simulator (protocol in README.md). */
#ifndef MONGO_SIM_CONTROL_H
#define MONGO_SIM_CONTROL_H

#include "core/strbuf.h"
#include "sim.h"

/* Run one command line (modified in place); append the reply line without
 * its newline to out. Returns 0 or -EINVAL (the reply then starts with ERR). */
int sim_control_exec(sim_t *sim, char *line, poh_strbuf_t *out);

/* Create collections c000000..c<n-1> in db; existing ones are kept. */
int sim_create_collections(sim_t *sim, const char *db, long n, long *created);

#endif
