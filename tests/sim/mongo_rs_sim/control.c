/* SPDX-License-Identifier: Apache-2.0 */
/* The control channel: one command per line, one reply line each.
 * Replies start with "OK", "{" (a JSON object) or "ERR <message>".
 * The protocol is documented in README.md; keep both in step. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "control.h"
#include "generator.h"
#include "server.h"
#include "shard.h"

#define MAX_LINE 1024
#define MAX_ARGS 8

typedef struct ctl {
    sim_t *sim;
    int argc;
    char *argv[MAX_ARGS];
    poh_strbuf_t *out;
} ctl_t;

typedef int (*ctl_fn)(ctl_t *c);

static int err(ctl_t *c, const char *msg)
{
    poh_strbuf_printf(c->out, "ERR %s", msg);
    return -EINVAL;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static void json_str(poh_strbuf_t *sb, const char *s)
{
    poh_strbuf_putc(sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            poh_strbuf_printf(sb, "\\%c", *p);
        else if (*p < 0x20)
            poh_strbuf_printf(sb, "\\u%04x", *p);
        else
            poh_strbuf_putc(sb, (char)*p);
    }
    poh_strbuf_putc(sb, '"');
}

static void json_ts(poh_strbuf_t *sb, uint64_t ts)
{
    poh_strbuf_printf(sb, "{\"t\":%u,\"i\":%u}", SIM_TS_T(ts), SIM_TS_I(ts));
}

static void json_counts(poh_strbuf_t *sb, const uint64_t counts[SIM_EV_COUNT])
{
    uint64_t total = 0;
    for (int i = 0; i < SIM_EV_COUNT; i++) {
        poh_strbuf_printf(sb, "\"%s\":%llu,", sim_ev_names[i], (unsigned long long)counts[i]);
        total += counts[i];
    }
    poh_strbuf_printf(sb, "\"total\":%llu", (unsigned long long)total);
}

/* DDL operations (oplog entries): not change events of data, kept out of "total". */
static void json_ddl_counts(poh_strbuf_t *sb, const uint64_t *counts, int n)
{
    for (int i = 0; i < n; i++)
        poh_strbuf_printf(sb, ",\"%s\":%llu", sim_ddl_names[i], (unsigned long long)counts[i]);
}

static int c_ping(ctl_t *c)
{
    poh_strbuf_puts(c->out, "OK");
    return 0;
}

static int c_counts(ctl_t *c)
{
    sim_t *sim = c->sim;
    poh_strbuf_t *o = c->out;
    uint64_t generated, approved;
    double rate;
    pthread_mutex_lock(&sim->mu);
    const sim_store_t *s = sim->store;
    sim_gen_counts(sim->gen, &generated, &approved, &rate);
    poh_strbuf_putc(o, '{');
    json_counts(o, s->counts);
    json_ddl_counts(o, s->ddl_counts, SIM_DDL_COUNT);
    poh_strbuf_printf(o, ",\"generated\":%llu,\"approved\":%llu,\"docs_evicted\":%llu,\"fragments\":%llu,"
                         "\"last_ts\":",
                      (unsigned long long)generated, (unsigned long long)approved,
                      (unsigned long long)s->docs_evicted, (unsigned long long)s->frags_sent);
    json_ts(o, s->last_ts);
    poh_strbuf_printf(o, ",\"last_wall_ms\":%lld,\"oplog\":{\"count\":%llu,\"bytes\":%llu,\"max_bytes\":%llu,\"first_ts\":",
                      (long long)s->last_wall_ms, (unsigned long long)sim_oplog_count(s),
                      (unsigned long long)s->oplog_bytes, (unsigned long long)s->oplog_max_bytes);
    json_ts(o, sim_oplog_count(s) ? sim_oplog_at(s, s->first_seq)->ts : 0);
    poh_strbuf_puts(o, "},\"ns\":{");
    bool first = true;
    for (size_t i = 0; i < s->ccount; i++) {
        const sim_coll_t *cl = s->clist[i];
        uint64_t any = cl->count;
        for (int k = 0; k < SIM_EV_COUNT; k++)
            any |= cl->counts[k];
        for (int k = 0; k < SIM_DDL_COUNT; k++)
            any |= cl->ddl_counts[k];
        if (!any)
            continue;
        if (!first)
            poh_strbuf_putc(o, ',');
        first = false;
        json_str(o, cl->ns);
        poh_strbuf_putc(o, ':');
        poh_strbuf_putc(o, '{');
        json_counts(o, cl->counts);
        json_ddl_counts(o, cl->ddl_counts, 2); /* drop, rename (from it) */
        poh_strbuf_printf(o, ",\"docs\":%llu}", (unsigned long long)cl->count);
    }
    poh_strbuf_puts(o, "}}");
    pthread_mutex_unlock(&sim->mu);
    return 0;
}

static int c_commands(ctl_t *c)
{
    sim_t *sim = c->sim;
    poh_strbuf_putc(c->out, '{');
    pthread_mutex_lock(&sim->cmd_mu);
    for (size_t i = 0; i < sim->ncmds; i++) {
        if (i)
            poh_strbuf_putc(c->out, ',');
        json_str(c->out, sim->cmds[i].name);
        poh_strbuf_printf(c->out, ":%llu", (unsigned long long)sim->cmds[i].n);
    }
    pthread_mutex_unlock(&sim->cmd_mu);
    poh_strbuf_putc(c->out, '}');
    return 0;
}

static int c_reset_commands(ctl_t *c)
{
    pthread_mutex_lock(&c->sim->cmd_mu);
    c->sim->ncmds = 0;
    pthread_mutex_unlock(&c->sim->cmd_mu);
    poh_strbuf_puts(c->out, "OK");
    return 0;
}

static int c_status(ctl_t *c)
{
    sim_t *sim = c->sim;
    poh_strbuf_t *o = c->out;
    uint64_t generated, approved;
    double rate;
    int conns = sim_server_count(sim->server);
    pthread_mutex_lock(&sim->mu);
    sim_repl_tick(sim);
    sim_gen_counts(sim->gen, &generated, &approved, &rate);
    poh_strbuf_printf(o, "{\"port\":%d,\"control_port\":%d,\"set\":", sim->port, sim->control_port);
    json_str(o, sim->cfg.set_name);
    poh_strbuf_printf(o, ",\"state\":\"%s\",\"primary\":", sim_is_primary(sim) ? "PRIMARY" : "SECONDARY");
    if (sim->primary >= 0)
        json_str(o, sim->members[sim->primary].host);
    else
        poh_strbuf_puts(o, "null");
    poh_strbuf_printf(o, ",\"term\":%lld,\"members\":[", (long long)sim->store->term);
    for (int i = 0; i < sim->nmembers; i++) {
        const sim_member_t *m = &sim->members[i];
        poh_strbuf_printf(o, "%s{\"id\":%d,\"host\":", i ? "," : "", i);
        json_str(o, m->host);
        poh_strbuf_printf(o, ",\"lag_s\":%d,\"healthy\":%s,\"zero_optime\":%s}", m->lag_s,
                          m->unhealthy ? "false" : "true", m->zero_optime ? "true" : "false");
    }
    poh_strbuf_printf(o, "],\"connections\":%d,\"cursors\":%zu,\"collections\":%zu,\"rate\":%g,\"stall_ms\":%d,"
                         "\"oplog_count\":%llu,\"last_ts\":",
                      conns, sim->store->kcount, sim->store->ccount, rate, sim->stall_ms,
                      (unsigned long long)sim_oplog_count(sim->store));
    json_ts(o, sim->store->last_ts);
    poh_strbuf_printf(o, ",\"uptime_ms\":%lld}", (long long)(sim_mono_ms() - sim->start_mono_ms));
    pthread_mutex_unlock(&sim->mu);
    return 0;
}

static int c_drop(ctl_t *c)
{
    int n = sim_server_drop_all(c->sim->server);
    POH_INFO(SIM_LOG, "control: dropped %d client connections", n);
    poh_strbuf_printf(c->out, "OK {\"closed\":%d}", n);
    return 0;
}

static int c_stall(ctl_t *c)
{
    long ms;
    if (c->argc < 2 || c->argc > 3 || !parse_long(c->argv[1], 0, 3600000, &ms))
        return err(c, "usage: STALL <ms 0..3600000> [command]");
    pthread_mutex_lock(&c->sim->mu);
    c->sim->stall_ms = (int)ms;
    snprintf(c->sim->stall_cmd, sizeof c->sim->stall_cmd, "%s", c->argc == 3 ? c->argv[2] : "");
    pthread_mutex_unlock(&c->sim->mu);
    poh_strbuf_puts(c->out, "OK");
    return 0;
}

/* SPLIT_HOLD <n>|off: change streams send no fragment of a split event past
 * the n-th until released (a deterministic point between fragments). */
static int c_split_hold(ctl_t *c)
{
    long n = 0;
    if (c->argc != 2 || (strcmp(c->argv[1], "off") && !parse_long(c->argv[1], 1, SIM_MAX_FRAGMENTS, &n)))
        return err(c, "usage: SPLIT_HOLD <fragments 1..256>|off");
    pthread_mutex_lock(&c->sim->mu);
    c->sim->store->frag_hold = (uint32_t)n;
    pthread_cond_broadcast(&c->sim->wake);
    pthread_mutex_unlock(&c->sim->mu);
    poh_strbuf_puts(c->out, "OK");
    return 0;
}

static int add_fault(ctl_t *c, const char *cmd, const char *code_s, const char *count_s)
{
    long code, count = 1;
    if (!parse_long(code_s, 1, 1000000, &code) || (count_s && !parse_long(count_s, 1, 1000000000, &count)))
        return err(c, "code must be 1..1000000 and count 1..1000000000");
    if (strlen(cmd) >= sizeof c->sim->faults[0].cmd)
        return err(c, "command name too long");
    pthread_mutex_lock(&c->sim->mu);
    int rc = 0;
    if (c->sim->nfaults == SIM_MAX_FAULTS) {
        rc = -ENOSPC;
    } else {
        sim_fault_t *f = &c->sim->faults[c->sim->nfaults++];
        snprintf(f->cmd, sizeof f->cmd, "%s", cmd);
        f->code = (int)code;
        f->remaining = count;
    }
    pthread_mutex_unlock(&c->sim->mu);
    if (rc)
        return err(c, "too many armed faults (CLEAR_FAULTS first)");
    poh_strbuf_puts(c->out, "OK");
    return 0;
}

static int c_fail_getmore(ctl_t *c)
{
    if (c->argc < 2 || c->argc > 3)
        return err(c, "usage: FAIL_GETMORE <code> [count]");
    return add_fault(c, "getMore", c->argv[1], c->argc == 3 ? c->argv[2] : NULL);
}

static int c_fail_command(ctl_t *c)
{
    if (c->argc < 3 || c->argc > 4)
        return err(c, "usage: FAIL_COMMAND <command> <code> [count]");
    return add_fault(c, c->argv[1], c->argv[2], c->argc == 4 ? c->argv[3] : NULL);
}

/* The document in a file (Extended JSON, at most 16 MiB), without the keys
 * every reply gets from the simulator itself; NULL with why. */
static bson_t *canned_load(const char *path, char *why, size_t whylen)
{
    enum { MAX = 16 * 1024 * 1024 };
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX + 1);
    size_t n = buf ? fread(buf, 1, MAX + 1, f) : 0;
    fclose(f);
    bson_t *doc = NULL, *out = NULL;
    bson_error_t e;
    if (!buf)
        snprintf(why, whylen, "out of memory");
    else if (n > MAX)
        snprintf(why, whylen, "%s is over 16 MiB", path);
    else if (!(doc = bson_new_from_json((const uint8_t *)buf, (ssize_t)n, &e)))
        snprintf(why, whylen, "%s: %s", path, e.message);
    free(buf);
    if (doc) {
        out = bson_new();
        bson_copy_to_excluding_noinit(doc, out, "ok", "$clusterTime", "operationTime", NULL);
        bson_destroy(doc);
    }
    return out;
}

/* EVENT <file>: a change event of the corpus into the oplog, sent as written
 * (with its own resume token) to the streams that watch its ns. */
static int c_event(ctl_t *c)
{
    if (c->argc != 2)
        return err(c, "usage: EVENT <file>");
    char why[600];
    bson_t *doc = canned_load(c->argv[1], why, sizeof why);
    if (!doc)
        return err(c, why);
    sim_err_t e = {0};
    pthread_mutex_lock(&c->sim->mu);
    int rc = sim_store_canned_event(c->sim->store, doc, &e);
    uint64_t ts = c->sim->store->last_ts;
    if (rc == 0)
        pthread_cond_broadcast(&c->sim->wake);
    pthread_mutex_unlock(&c->sim->mu);
    bson_destroy(doc);
    if (rc < 0)
        return err(c, e.msg);
    poh_strbuf_printf(c->out, "OK {\"ts\": [%u, %u]}", SIM_TS_T(ts), SIM_TS_I(ts));
    return 0;
}

/* REPLY <command> <file>|off */
static int c_reply(ctl_t *c)
{
    if (c->argc != 3)
        return err(c, "usage: REPLY <command> <file>|off");
    sim_t *sim = c->sim;
    if (strlen(c->argv[1]) >= sizeof sim->canned[0].cmd)
        return err(c, "command name too long");
    bson_t *doc = NULL;
    if (strcmp(c->argv[2], "off") != 0) {
        char why[600];
        if (!(doc = canned_load(c->argv[2], why, sizeof why)))
            return err(c, why);
    }
    pthread_mutex_lock(&sim->mu);
    int i = 0;
    while (i < sim->ncanned && strcmp(sim->canned[i].cmd, c->argv[1]) != 0)
        i++;
    if (i < sim->ncanned) { /* replace or remove */
        bson_destroy(sim->canned[i].doc);
        sim->canned[i] = sim->canned[--sim->ncanned];
    }
    bool full = doc && sim->ncanned == SIM_MAX_FAULTS;
    if (doc && !full) {
        sim_canned_t *k = &sim->canned[sim->ncanned++];
        snprintf(k->cmd, sizeof k->cmd, "%s", c->argv[1]);
        k->doc = doc;
    }
    pthread_mutex_unlock(&sim->mu);
    if (full) {
        bson_destroy(doc);
        return err(c, "too many REPLY answers (CLEAR_FAULTS forgets them)");
    }
    POH_INFO(SIM_LOG, "control: %s answered %s", c->argv[1], doc ? c->argv[2] : "by the simulator");
    poh_strbuf_puts(c->out, "OK");
    return 0;
}

static int c_clear_faults(ctl_t *c)
{
    pthread_mutex_lock(&c->sim->mu);
    sim_canned_clear(c->sim);
    c->sim->nfaults = 0;
    c->sim->stall_ms = 0;
    c->sim->stall_cmd[0] = 0;
    pthread_mutex_unlock(&c->sim->mu);
    poh_strbuf_puts(c->out, "OK");
    return 0;
}

static int c_stepdown(ctl_t *c)
{
    long secs = 10;
    if (c->argc > 2 || (c->argc == 2 && !parse_long(c->argv[1], 0, 86400, &secs)))
        return err(c, "usage: STEPDOWN [seconds 0..86400] (0: until STEPUP)");
    pthread_mutex_lock(&c->sim->mu);
    sim_step_down(c->sim, (int)secs);
    poh_strbuf_puts(c->out, "OK {\"primary\":");
    if (c->sim->primary >= 0)
        json_str(c->out, c->sim->members[c->sim->primary].host);
    else
        poh_strbuf_puts(c->out, "null");
    poh_strbuf_printf(c->out, ",\"term\":%lld}", (long long)c->sim->store->term);
    pthread_cond_broadcast(&c->sim->wake);
    pthread_mutex_unlock(&c->sim->mu);
    return 0;
}

static int c_stepup(ctl_t *c)
{
    pthread_mutex_lock(&c->sim->mu);
    sim_step_up(c->sim);
    poh_strbuf_printf(c->out, "OK {\"term\":%lld}", (long long)c->sim->store->term);
    pthread_mutex_unlock(&c->sim->mu);
    return 0;
}

static int member_arg(ctl_t *c, const char *usage)
{
    if (c->argc != 3)
        return err(c, usage);
    pthread_mutex_lock(&c->sim->mu);
    int m = sim_member_find(c->sim, c->argv[1]);
    pthread_mutex_unlock(&c->sim->mu);
    if (m < 0)
        return err(c, "unknown member (give its index 0..N or host:port; see STATUS)");
    return m;
}

static int c_lag(ctl_t *c)
{
    long secs;
    int m = member_arg(c, "usage: LAG <member> <seconds>");
    if (m < 0)
        return m;
    if (!parse_long(c->argv[2], 0, 1000000, &secs))
        return err(c, "lag must be 0..1000000 seconds");
    pthread_mutex_lock(&c->sim->mu);
    c->sim->members[m].lag_s = (int)secs;
    pthread_mutex_unlock(&c->sim->mu);
    poh_strbuf_puts(c->out, "OK");
    return 0;
}

static int c_health(ctl_t *c)
{
    int m = member_arg(c, "usage: HEALTH <member> up|down");
    if (m < 0)
        return m;
    if (strcmp(c->argv[2], "up") && strcmp(c->argv[2], "down"))
        return err(c, "usage: HEALTH <member> up|down");
    if (m == 0)
        return err(c, "member 0 is the simulator itself and always answers");
    pthread_mutex_lock(&c->sim->mu);
    c->sim->members[m].unhealthy = !strcmp(c->argv[2], "down");
    pthread_mutex_unlock(&c->sim->mu);
    poh_strbuf_puts(c->out, "OK");
    return 0;
}

static int c_optime(ctl_t *c)
{
    int m = member_arg(c, "usage: OPTIME <member> zero|normal");
    if (m < 0)
        return m;
    if (strcmp(c->argv[2], "zero") && strcmp(c->argv[2], "normal"))
        return err(c, "usage: OPTIME <member> zero|normal");
    pthread_mutex_lock(&c->sim->mu);
    c->sim->members[m].zero_optime = !strcmp(c->argv[2], "zero");
    pthread_mutex_unlock(&c->sim->mu);
    poh_strbuf_puts(c->out, "OK");
    return 0;
}

static int c_truncate(ctl_t *c)
{
    long keep = 0;
    if (c->argc > 2 || (c->argc == 2 && !parse_long(c->argv[1], 0, LONG_MAX, &keep)))
        return err(c, "usage: TRUNCATE_OPLOG [keep_newest]");
    pthread_mutex_lock(&c->sim->mu);
    uint64_t n = sim_oplog_truncate(c->sim->store, (uint64_t)keep);
    pthread_cond_broadcast(&c->sim->wake);
    pthread_mutex_unlock(&c->sim->mu);
    poh_strbuf_printf(c->out, "OK {\"removed\":%llu}", (unsigned long long)n);
    return 0;
}

static int c_insert(ctl_t *c)
{
    long n;
    char db[128] = SIM_GEN_DB, coll[256] = SIM_GEN_COLL;
    uint64_t done;
    if (c->argc < 2 || c->argc > 3 || !parse_long(c->argv[1], 1, 100000000, &n))
        return err(c, "usage: INSERT <n 1..100000000> [db.collection]");
    if (c->argc == 3) {
        const char *dot = strchr(c->argv[2], '.');
        if (!dot || dot == c->argv[2] || (size_t)(dot - c->argv[2]) >= sizeof db || strlen(dot + 1) >= sizeof coll)
            return err(c, "namespace must be db.collection");
        memcpy(db, c->argv[2], (size_t)(dot - c->argv[2]));
        db[dot - c->argv[2]] = 0;
        strcpy(coll, dot + 1);
    }
    int rc = sim_gen_burst(c->sim->gen, db, coll, (uint64_t)n, &done);
    if (rc == -EINVAL)
        return err(c, "namespace is not writable (internal database or invalid name)");
    if (rc < 0)
        return err(c, "out of memory during the burst");
    pthread_mutex_lock(&c->sim->mu);
    uint64_t last = c->sim->store->last_ts;
    pthread_mutex_unlock(&c->sim->mu);
    poh_strbuf_printf(c->out, "OK {\"inserted\":%llu,\"last_ts\":", (unsigned long long)done);
    json_ts(c->out, last);
    poh_strbuf_putc(c->out, '}');
    return 0;
}

int sim_create_collections(sim_t *sim, const char *db, long n, long *created)
{
    sim_err_t e;
    *created = 0;
    if (!sim_ns_writable(db, "c", &e))
        return -EINVAL;
    pthread_mutex_lock(&sim->mu);
    for (long i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "c%06ld", i);
        if (sim_store_coll(sim->store, db, name, false))
            continue;
        if (!sim_store_coll(sim->store, db, name, true)) {
            pthread_mutex_unlock(&sim->mu);
            return -ENOMEM;
        }
        (*created)++;
    }
    pthread_mutex_unlock(&sim->mu);
    return 0;
}

static int c_collections(ctl_t *c)
{
    long n, created;
    if (c->argc < 2 || c->argc > 3 || !parse_long(c->argv[1], 1, 1000000, &n))
        return err(c, "usage: COLLECTIONS <n 1..1000000> [db]");
    int rc = sim_create_collections(c->sim, c->argc == 3 ? c->argv[2] : "bulk", n, &created);
    if (rc == -EINVAL)
        return err(c, "database is not writable");
    if (rc < 0)
        return err(c, "out of memory creating collections");
    poh_strbuf_printf(c->out, "OK {\"created\":%ld}", created);
    return 0;
}

static int c_rate(ctl_t *c)
{
    char *end;
    if (c->argc != 2)
        return err(c, "usage: RATE <inserts per second>");
    double r = strtod(c->argv[1], &end);
    if (*end || end == c->argv[1] || !(r >= 0 && r <= 10000000))
        return err(c, "rate must be 0..10000000");
    sim_gen_set_rate(c->sim->gen, r);
    poh_strbuf_puts(c->out, "OK");
    return 0;
}

static int c_shutdown(ctl_t *c)
{
    poh_strbuf_puts(c->out, "OK");
    /* Every thread blocks SIGTERM; main() waits for it with sigwait(). */
    kill(getpid(), SIGTERM);
    return 0;
}

static int c_help(ctl_t *c);

static const struct {
    const char *name;
    ctl_fn fn;
    const char *usage;
} ctl_commands[] = {
    {"COLLECTIONS", c_collections, "COLLECTIONS <n> [db]"},
    {"COMMANDS", c_commands, "COMMANDS"},
    {"COUNTS", c_counts, "COUNTS"},
    {"CLEAR_FAULTS", c_clear_faults, "CLEAR_FAULTS"},
    {"DROP", c_drop, "DROP"},
    {"EVENT", c_event, "EVENT <file>"},
    {"FAIL_COMMAND", c_fail_command, "FAIL_COMMAND <command> <code> [count]"},
    {"FAIL_GETMORE", c_fail_getmore, "FAIL_GETMORE <code> [count]"},
    {"HEALTH", c_health, "HEALTH <member> up|down"},
    {"HELP", c_help, "HELP"},
    {"INSERT", c_insert, "INSERT <n> [db.collection]"},
    {"LAG", c_lag, "LAG <member> <seconds>"},
    {"OPTIME", c_optime, "OPTIME <member> zero|normal"},
    {"PING", c_ping, "PING"},
    {"RATE", c_rate, "RATE <per second>"},
    {"REPLY", c_reply, "REPLY <command> <file>|off"},
    {"RESET_COMMANDS", c_reset_commands, "RESET_COMMANDS"},
    {"SHUTDOWN", c_shutdown, "SHUTDOWN"},
    {"SPLIT_HOLD", c_split_hold, "SPLIT_HOLD <n>|off"},
    {"STALL", c_stall, "STALL <ms> [command]"},
    {"STATUS", c_status, "STATUS"},
    {"STEPDOWN", c_stepdown, "STEPDOWN [seconds]"},
    {"STEPUP", c_stepup, "STEPUP"},
    {"TRUNCATE_OPLOG", c_truncate, "TRUNCATE_OPLOG [keep]"},
};

static int c_help(ctl_t *c)
{
    poh_strbuf_puts(c->out, "OK");
    for (size_t i = 0; i < sizeof ctl_commands / sizeof ctl_commands[0]; i++)
        poh_strbuf_printf(c->out, "%s%s", i ? "; " : " ", ctl_commands[i].usage);
    return 0;
}

int sim_control_exec(sim_t *sim, char *line, poh_strbuf_t *out)
{
    ctl_t c = {.sim = sim, .out = out};
    char *save = NULL;
    for (char *tok = strtok_r(line, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (c.argc == MAX_ARGS)
            return err(&c, "too many arguments");
        c.argv[c.argc++] = tok;
    }
    if (c.argc == 0)
        return err(&c, "empty command (try HELP)");
    if (sim->cluster) {
        int rc = sim_cluster_control(sim, c.argc, c.argv, out);
        if (rc != -ENOENT)
            return rc;
    }
    for (size_t i = 0; i < sizeof ctl_commands / sizeof ctl_commands[0]; i++)
        if (!strcasecmp(c.argv[0], ctl_commands[i].name))
            return ctl_commands[i].fn(&c);
    poh_strbuf_puts(out, "ERR unknown command \"");
    for (const char *p = c.argv[0]; *p && p - c.argv[0] < 32; p++)
        poh_strbuf_putc(out, *p >= 0x20 && *p < 0x7f && *p != '"' ? *p : '?');
    poh_strbuf_puts(out, "\" (try HELP)");
    return -EINVAL;
}

void sim_serve_control(sim_server_t *srv, sim_conn_t *conn)
{
    sim_t *sim = sim_server_sim(srv);
    int fd = sim_conn_fd(conn);
    char buf[MAX_LINE + 1];
    size_t len = 0;
    poh_strbuf_t out = POH_STRBUF_INIT;
    for (;;) {
        char *nl = memchr(buf, '\n', len);
        if (!nl) {
            if (len == MAX_LINE) {
                static const char msg[] = "ERR line too long\n";
                sim_write_full(fd, msg, sizeof msg - 1, NULL, 0);
                break;
            }
            ssize_t r = recv(fd, buf + len, MAX_LINE - len, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            len += (size_t)r;
            continue;
        }
        *nl = 0;
        poh_strbuf_reset(&out);
        sim_control_exec(sim, buf, &out);
        poh_strbuf_putc(&out, '\n');
        if (out.failed || sim_write_full(fd, out.data, out.len, NULL, 0) < 0)
            break;
        size_t used = (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, len - used);
        len -= used;
    }
    poh_strbuf_free(&out);
}
