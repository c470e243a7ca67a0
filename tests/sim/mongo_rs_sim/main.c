/* SPDX-License-Identifier: Apache-2.0 */
/* mongo_rs_sim: a MongoDB replica-set primary that speaks the wire protocol,
 * for tests, demos and benchmarks. See README.md. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "core/log.h"
#include "generator.h"
#include "server.h"
#include "shard.h"
#include "sim.h"

enum { OPT_INT, OPT_LONG, OPT_SIZE, OPT_DOUBLE, OPT_STR, OPT_MB };

static const struct opt {
    const char *name;
    int type;
    size_t off;
    double lo, hi;
    size_t size; /* OPT_STR buffer size */
    const char *help;
} opts[] = {
    {"--port", OPT_INT, offsetof(sim_config_t, port), 0, 65535, 0, "wire protocol port, 0 = ephemeral (default 0)"},
    {"--bind", OPT_STR, offsetof(sim_config_t, bind), 0, 0, 64, "IPv4 address to listen on (default 127.0.0.1)"},
    {"--control-port", OPT_INT, offsetof(sim_config_t, control_port), 0, 65535, 0,
     "control channel port, 0 = ephemeral (default 0)"},
    {"--set-name", OPT_STR, offsetof(sim_config_t, set_name), 0, 0, 64, "replica set name (default rs0)"},
    {"--secondaries", OPT_INT, offsetof(sim_config_t, secondaries), 0, SIM_MAX_MEMBERS - 1, 0,
     "simulated secondaries: listed, never connectable (default 0)"},
    {"--rate", OPT_DOUBLE, offsetof(sim_config_t, rate), 0, 1e7, 0,
     "generated inserts per second into dag.transactions (default 0)"},
    {"--approve-after", OPT_INT, offsetof(sim_config_t, approve_after_ms), 0, 86400000, 0,
     "set approved_at this many ms after each generated insert (default 0 = never)"},
    {"--commit-delay-ms", OPT_INT, offsetof(sim_config_t, commit_delay_ms), 0, 86400000, 0,
     "created_at = commit wall time minus this (default 50)"},
    {"--oplog-size-mb", OPT_MB, offsetof(sim_config_t, oplog_max_bytes), 1, 1 << 20, 0,
     "oplog bound in MB, oldest entries go first (default 64)"},
    {"--max-docs", OPT_SIZE, offsetof(sim_config_t, max_docs), 0, 1e10, 0,
     "documents kept per collection, oldest evicted silently; 0 = unbounded (default 1000000)"},
    {"--collections", OPT_LONG, offsetof(sim_config_t, collections), 0, 1000000, 0,
     "create this many empty collections c000000.. at start (default 0)"},
    {"--collections-db", OPT_STR, offsetof(sim_config_t, collections_db), 0, 0, 64,
     "database for --collections (default bulk)"},
    {"--server-version", OPT_STR, offsetof(sim_config_t, server_version), 0, 0, 8,
     "5.0|6.0|7.0: 5.0 and 6.0 do not know $changeStreamSplitLargeEvent (5.0: no wallTime); "
     "7.0 splits events over 16 MB with it (default: 7.0's change streams, reported as 6.0.0)"},
    {"--max-connections", OPT_INT, offsetof(sim_config_t, max_connections), 1, 100000, 0,
     "concurrent client connections (default 4096)"},
    {"--auth-user", OPT_STR, offsetof(sim_config_t, auth_user), 0, 0, 128,
     "require SCRAM-SHA-256 login as this admin-database user (default none)"},
    {"--shards", OPT_INT, offsetof(sim_config_t, shards), 0, SIM_MAX_SHARDS, 0,
     "sharded cluster: a mongos front on --port over this many shard replica sets (default 0 = a replica set)"},
    {"--auth-password-file", OPT_STR, offsetof(sim_config_t, auth_password_file), 0, 0, 512,
     "file holding that user's password, ASCII, one trailing newline ignored"},
};

/* Set up --auth-user from its password file; 0, or -1 logged. */
static int setup_auth(sim_t *sim)
{
    char pw[1024];
    const sim_config_t *cfg = &sim->cfg;
    if (!cfg->auth_user[0] && !cfg->auth_password_file[0])
        return 0;
    if (!cfg->auth_user[0] || !cfg->auth_password_file[0]) {
        POH_ERROR(SIM_LOG, "--auth-user and --auth-password-file go together");
        return -1;
    }
    FILE *f = fopen(cfg->auth_password_file, "r");
    if (!f) {
        POH_ERROR(SIM_LOG, "cannot read %s: %s", cfg->auth_password_file, strerror(errno));
        return -1;
    }
    size_t n = fread(pw, 1, sizeof pw - 1, f);
    fclose(f);
    if (n > 0 && pw[n - 1] == '\n')
        n--;
    pw[n] = 0;
    int rc = n == 0 || memchr(pw, 0, n) ? -1 : sim_auth_init(&sim->auth, cfg->auth_user, pw, n);
    memset(pw, 0, sizeof pw);
    if (rc < 0)
        POH_ERROR(SIM_LOG, "cannot set up authentication from %s (empty password?)", cfg->auth_password_file);
    else
        POH_INFO(SIM_LOG, "authentication required: SCRAM-SHA-256, user %s in admin", cfg->auth_user);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mongo_rs_sim [options]\n"
               "Prints the wire port on the first stdout line and the control port on the second.\n");
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        fprintf(f, "  %-18s %s\n", opts[i].name, opts[i].help);
    fprintf(f, "  %-18s %s\n", "--log-level", "debug|info|warn|error (default info)");
}

static int set_opt(sim_config_t *cfg, const struct opt *o, const char *v)
{
    char *end;
    void *field = (char *)cfg + o->off;
    if (o->type == OPT_STR) {
        if (!*v || strlen(v) >= o->size)
            return -EINVAL;
        if (!strcmp(o->name, "--server-version") && strcmp(v, "5.0") && strcmp(v, "6.0") && strcmp(v, "7.0"))
            return -EINVAL;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    }
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || d < o->lo || d > o->hi)
        return -EINVAL;
    if (o->type != OPT_DOUBLE && d != (double)(long long)d)
        return -EINVAL;
    switch (o->type) {
    case OPT_INT: *(int *)field = (int)d; break;
    case OPT_LONG: *(long *)field = (long)d; break;
    case OPT_SIZE: *(size_t *)field = (size_t)d; break;
    case OPT_MB: *(uint64_t *)field = (uint64_t)d * 1024 * 1024; break;
    default: *(double *)field = d; break;
    }
    return 0;
}

int main(int argc, char **argv)
{
    sim_config_t cfg = {
        .bind = "127.0.0.1", .set_name = "rs0", .commit_delay_ms = 50, .oplog_max_bytes = 64ULL << 20,
        .max_docs = 1000000, .collections_db = "bulk", .max_connections = 4096,
    };
    poh_log_level_t level = POH_LOG_INFO;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mongo_rs_sim: %s needs a value\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (!strcmp(argv[i], "--log-level")) {
            if (poh_log_level_parse(argv[++i], &level) < 0) {
                fprintf(stderr, "mongo_rs_sim: bad --log-level '%s'\n", argv[i]);
                return 2;
            }
            continue;
        }
        size_t k = 0;
        while (k < sizeof opts / sizeof opts[0] && strcmp(argv[i], opts[k].name))
            k++;
        if (k == sizeof opts / sizeof opts[0]) {
            fprintf(stderr, "mongo_rs_sim: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (set_opt(&cfg, &opts[k], argv[i + 1]) < 0) {
            fprintf(stderr, "mongo_rs_sim: bad value '%s' for %s\n", argv[i + 1], argv[i]);
            return 2;
        }
        i++;
    }
    poh_log_setup(level, POH_LOG_LOGFMT);

    /* SIGTERM/SIGINT are taken by sigwait() below; every thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    long created = 0;
    sim_t *sim = sim_new(&cfg);
    if (!sim)
        return 1;
    sim->main_thread = pthread_self();
    if (setup_auth(sim) < 0)
        goto out;
    if (cfg.collections > 0 && sim_create_collections(sim, cfg.collections_db, cfg.collections, &created) < 0) {
        POH_ERROR(SIM_LOG, "cannot create %ld collections in %s", cfg.collections, cfg.collections_db);
        goto out;
    }
    if (cfg.shards > 0 && !(sim->cluster = sim_cluster_start(sim, cfg.shards)))
        goto out;
    sim->server = sim_server_start(sim, "wire", cfg.bind, cfg.port, cfg.max_connections, sim_serve_mongo);
    if (!sim->server)
        goto out;
    sim->port = sim_server_port(sim->server);
    snprintf(sim->members[0].host, sizeof sim->members[0].host, "%s:%d", cfg.bind, sim->port);
    sim->control = sim_server_start(sim, "control", cfg.bind, cfg.control_port, 64, sim_serve_control);
    if (!sim->control)
        goto out;
    sim->control_port = sim_server_port(sim->control);
    sim->gen = sim_gen_start(sim);
    if (!sim->gen)
        goto out;
    printf("%d\n%d\n", sim->port, sim->control_port);
    fflush(stdout);
    POH_INFO(SIM_LOG, "replica set %s primary on %s, control on %s:%d, %d simulated secondaries, rate %g/s, "
                      "%ld collections in %s",
             cfg.set_name, sim->members[0].host, cfg.bind, sim->control_port, cfg.secondaries, cfg.rate, created,
             cfg.collections_db);
    if (sim->cluster)
        POH_INFO(SIM_LOG, "mongos front on %s over %d shards", sim->members[0].host, cfg.shards);

    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    POH_INFO(SIM_LOG, "signal %d: shutting down", sig);
    rc = 0;
out:
    atomic_store(&sim->stopping, true);
    pthread_mutex_lock(&sim->mu);
    pthread_cond_broadcast(&sim->wake);
    pthread_mutex_unlock(&sim->mu);
    int busy = sim_server_stop(sim->server) | sim_server_stop(sim->control);
    sim_gen_stop(sim->gen);
    if (!busy)
        sim_cluster_stop(sim->cluster);
    /* A connection thread that would not stop still uses sim: leave it be. */
    if (!busy)
        sim_destroy(sim);
    return busy ? 1 : rc;
}
