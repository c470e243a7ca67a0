/* SPDX-License-Identifier: Apache-2.0 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

/* A simulated secondary's address: a port we bind but never listen on, so
 * no other process takes it and drivers get "connection refused". */
static int reserve_port(const char *bind_addr, char *host, size_t hostlen)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        int e = errno ? -errno : -EINVAL;
        close(fd);
        return e;
    }
    snprintf(host, hostlen, "%s:%u", bind_addr, ntohs(sa.sin_port));
    return fd;
}

const char *sim_version(const sim_t *sim)
{
    const char *v = sim->cfg.server_version;
    return !strcmp(v, "5.0") ? "5.0.0" : !strcmp(v, "7.0") ? "7.0.0" : "6.0.0";
}

int sim_max_wire_version(const sim_t *sim)
{
    const char *v = sim->cfg.server_version;
    return !strcmp(v, "5.0") ? 13 : !strcmp(v, "7.0") ? 21 : 17;
}

bool sim_knows_split_stage(const sim_t *sim)
{
    const char *v = sim->cfg.server_version;
    return strcmp(v, "5.0") && strcmp(v, "6.0");
}

sim_t *sim_new(const sim_config_t *cfg)
{
    sim_t *sim = calloc(1, sizeof *sim);
    pthread_condattr_t ca;
    if (!sim)
        return NULL;
    sim->cfg = *cfg;
    pthread_mutex_init(&sim->mu, NULL);
    pthread_mutex_init(&sim->cmd_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sim->wake, &ca);
    pthread_condattr_destroy(&ca);
    sim->start_mono_ms = sim_mono_ms();
    sim->election_wall_ms = sim_now_ms();
    bson_oid_init(&sim->process_id, NULL);
    sim->primary = 0;
    for (int i = 0; i < SIM_MAX_MEMBERS; i++)
        sim->members[i].fd = -1;
    sim->nmembers = 1 + cfg->secondaries;
    for (int i = 1; i < sim->nmembers; i++) {
        int fd = reserve_port(cfg->bind, sim->members[i].host, sizeof sim->members[i].host);
        if (fd < 0) {
            POH_ERROR(SIM_LOG, "cannot reserve a port for simulated secondary %d: %s", i, strerror(-fd));
            goto err;
        }
        sim->members[i].fd = fd;
    }
    sim->store = sim_store_new(cfg->oplog_max_bytes, cfg->max_docs);
    if (sim->store) {
        sim->store->max_event_bytes = SIM_MAX_EVENT_BYTES;
        sim->store->no_wall_time = !strcmp(cfg->server_version, "5.0");
    }
    if (!sim->store || sim_store_noop(sim->store, "initiating set") < 0)
        goto err;
    /* Nothing before the set was initiated can be resumed from. */
    sim->store->evicted_max = sim->store->last_ts - 1;
    return sim;
err:
    sim_destroy(sim);
    return NULL;
}

void sim_destroy(sim_t *sim)
{
    if (!sim)
        return;
    for (int i = 0; i < SIM_MAX_MEMBERS; i++)
        if (sim->members[i].fd >= 0)
            close(sim->members[i].fd);
    sim_store_destroy(sim->store);
    sim_canned_clear(sim);
    free(sim->cmds);
    pthread_cond_destroy(&sim->wake);
    pthread_mutex_destroy(&sim->cmd_mu);
    pthread_mutex_destroy(&sim->mu);
    free(sim);
}

static void new_term(sim_t *sim, int primary)
{
    sim->primary = primary;
    sim->store->term++;
    sim->election_wall_ms = sim_now_ms();
    sim->topology_counter++;
    pthread_cond_broadcast(&sim->wake); /* awaitable hellos answer at once */
}

void sim_repl_tick(sim_t *sim)
{
    if (sim->stepdown_until_ms && sim_mono_ms() >= sim->stepdown_until_ms)
        sim_step_up(sim);
}

bool sim_is_primary(const sim_t *sim)
{
    return sim->primary == 0;
}

void sim_step_down(sim_t *sim, int seconds)
{
    int next = -1;
    for (int i = 1; i < sim->nmembers && next < 0; i++)
        if (!sim->members[i].unhealthy)
            next = i;
    new_term(sim, next);
    /* seconds == 0 means "until STEPUP": a far deadline keeps the tick simple. */
    sim->stepdown_until_ms = sim_mono_ms() + (seconds > 0 ? (int64_t)seconds * 1000 : INT64_MAX / 4);
    POH_INFO(SIM_LOG, "stepped down for %d s; primary is now %s (term %lld)", seconds,
             next >= 0 ? sim->members[next].host : "none", (long long)sim->store->term);
}

void sim_step_up(sim_t *sim)
{
    sim->stepdown_until_ms = 0;
    if (sim->primary == 0)
        return;
    new_term(sim, 0);
    POH_INFO(SIM_LOG, "elected primary again (term %lld)", (long long)sim->store->term);
}

int sim_member_find(const sim_t *sim, const char *spec)
{
    char *end;
    long v = strtol(spec, &end, 10);
    if (*spec && !*end)
        return v >= 0 && v < sim->nmembers ? (int)v : -1;
    for (int i = 0; i < sim->nmembers; i++)
        if (!strcmp(sim->members[i].host, spec))
            return i;
    return -1;
}

void sim_count_command(sim_t *sim, const char *name)
{
    pthread_mutex_lock(&sim->cmd_mu);
    size_t i = 0;
    while (i < sim->ncmds && strcmp(sim->cmds[i].name, name) != 0)
        i++;
    if (i == sim->ncmds) {
        /* Names come from clients: cap them so junk cannot grow the table. */
        if (sim->ncmds >= SIM_MAX_CMD_NAMES) {
            name = "<other>";
            for (i = 0; i < sim->ncmds && strcmp(sim->cmds[i].name, name) != 0;)
                i++;
        }
        if (i == sim->ncmds) {
            if (!sim->cmds)
                sim->cmds = calloc(SIM_MAX_CMD_NAMES + 1, sizeof *sim->cmds);
            if (!sim->cmds) {
                pthread_mutex_unlock(&sim->cmd_mu);
                return;
            }
            snprintf(sim->cmds[i].name, sizeof sim->cmds[i].name, "%s", name);
            sim->cmds[i].n = 0; /* the slot may hold a count from before RESET_COMMANDS */
            sim->ncmds++;
        }
    }
    sim->cmds[i].n++;
    pthread_mutex_unlock(&sim->cmd_mu);
}

void sim_canned_clear(sim_t *sim)
{
    for (int i = 0; i < sim->ncanned; i++)
        bson_destroy(sim->canned[i].doc);
    sim->ncanned = 0;
}

bool sim_canned_reply(sim_t *sim, const char *cmd, bson_t *reply)
{
    bool found = false;
    pthread_mutex_lock(&sim->mu);
    for (int i = 0; i < sim->ncanned && !found; i++)
        if (!strcmp(sim->canned[i].cmd, cmd)) {
            bson_concat(reply, sim->canned[i].doc);
            found = true;
        }
    pthread_mutex_unlock(&sim->mu);
    return found;
}
