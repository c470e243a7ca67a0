/* SPDX-License-Identifier: Apache-2.0 */
/* Run mongo_rs_sim as a child process from C tests: start it on ephemeral
 * ports, talk to its control channel, stop it and check it exited cleanly. */
#ifndef MONGO_SIM_SIMPROC_H
#define MONGO_SIM_SIMPROC_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct simproc {
    pid_t pid;
    int port;
    int control_port;
    int ctl_fd;
    char log_path[64];
    char uri[160];        /* mongodb://127.0.0.1:PORT/?replicaSet=rs0 */
    char direct_uri[160]; /* mongodb://127.0.0.1:PORT/?directConnection=true */
} simproc_t;

/* Start the simulator ($MONGO_RS_SIM, else the binary built with the test)
 * with extra arguments (NULL-terminated list or NULL). */
int simproc_start(simproc_t *p, const char *const *args);
/* Send one control line; copy the reply (without newline) into reply. Returns
 * 0 if the reply is OK/JSON, -1 on ERR or I/O failure. */
int simproc_ctl(simproc_t *p, const char *line, char *reply, size_t n);
/* Send a control line whose reply carries a JSON object; returns a new bson_t or NULL. */
bson_t *simproc_ctl_json(simproc_t *p, const char *line);
/* Integer at a dotted path ("insert", "oplog.first_ts.t"), or -1. */
long long simproc_json_int(const bson_t *doc, const char *path);
/* Count of a command in COMMANDS (0 if never received). */
long long simproc_command_count(simproc_t *p, const char *name);
/* CPU seconds the simulator has used (utime + stime). */
double simproc_cpu_seconds(const simproc_t *p);
/* Shut down; returns 0 if it exited with status 0 and its log has no sanitizer report. */
int simproc_stop(simproc_t *p);
double simproc_now(void);

#endif
