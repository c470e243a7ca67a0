/* SPDX-License-Identifier: Apache-2.0 */
/* TCP listener with one thread per connection. The simulator runs two: the
 * MongoDB wire listener and the control channel. */
#ifndef MONGO_SIM_SERVER_H
#define MONGO_SIM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"

typedef struct sim_server sim_server_t;
typedef struct sim_conn sim_conn_t;

/* Serve one connection until it closes; the server closes the fd afterwards. */
typedef void (*sim_serve_fn)(sim_server_t *srv, sim_conn_t *c);

/* Listen on bind_addr:port (0 = ephemeral). NULL on failure (logged). */
sim_server_t *sim_server_start(sim_t *sim, const char *name, const char *bind_addr, int port, int max_conns,
                               sim_serve_fn serve);
int sim_server_port(const sim_server_t *srv);
/* Close every open connection now; returns how many. */
int sim_server_drop_all(sim_server_t *srv);
int sim_server_count(sim_server_t *srv);
/* Stop accepting, close connections, wait (bounded) for their threads.
 * Returns 0, or -EBUSY if a thread did not stop (srv is then left allocated). */
int sim_server_stop(sim_server_t *srv);

/* For serve functions. */
int sim_conn_fd(const sim_conn_t *c);
sim_client_t *sim_conn_client(sim_conn_t *c);
sim_t *sim_server_sim(const sim_server_t *srv);

/* Read exactly n bytes. With idle_ok the wait for the first byte is unbounded;
 * otherwise each wait is bounded. Returns 1, 0 on EOF before the first byte
 * (idle_ok only), or a negative errno (-EPIPE: EOF in the middle). */
int sim_read_full(int fd, void *buf, size_t n, bool idle_ok);
int sim_write_full(int fd, const void *a, size_t alen, const void *b, size_t blen);

/* The wire protocol and control channel serve functions. */
void sim_serve_mongo(sim_server_t *srv, sim_conn_t *c);
void sim_serve_control(sim_server_t *srv, sim_conn_t *c);

#endif
