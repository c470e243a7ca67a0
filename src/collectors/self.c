/* SPDX-License-Identifier: Apache-2.0 */
/* The self collector (self.h): its metric tables, the plain data the rest of
 * the program reports to it, and the series it writes at each scrape. */
#include "collectors/self.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "poh_version.h"

static const char *const l_build[] = {"version", "revision"};
static const char *const l_reason[] = {"reason"};
static const char *const l_collector[] = {"collector"};

const poh_family_desc_t poh_self_metrics[] = {
    [POH_SELF_M_BUILD_INFO] = {"poh_exporter_build_info", POH_GAUGE,
                               "A metric with a constant '1' value labeled by version and "
                               "revision of poh_exporter.",
                               2, l_build},
    [POH_SELF_M_CPU] = {"process_cpu_seconds_total", POH_COUNTER,
                        "Total user and system CPU time spent in seconds.", 0, NULL},
    [POH_SELF_M_RSS] = {"process_resident_memory_bytes", POH_GAUGE,
                        "Resident memory size in bytes.", 0, NULL},
    [POH_SELF_M_VSIZE] = {"process_virtual_memory_bytes", POH_GAUGE,
                          "Virtual memory size in bytes.", 0, NULL},
    [POH_SELF_M_START_TIME] = {"process_start_time_seconds", POH_GAUGE,
                               "Start time of the process since unix epoch in seconds.", 0,
                               NULL},
    [POH_SELF_M_OPEN_FDS] = {"process_open_fds", POH_GAUGE, "Number of open file descriptors.",
                             0, NULL},
    [POH_SELF_M_MAX_FDS] = {"process_max_fds", POH_GAUGE,
                            "Maximum number of open file descriptors.", 0, NULL},
    [POH_SELF_M_SPANS_EXPORTED] = {"poh_exporter_spans_exported_total", POH_COUNTER,
                                   "Spans the OTLP collector accepted.", 0, NULL},
    [POH_SELF_M_SPANS_DROPPED] = {"poh_exporter_spans_dropped_total", POH_COUNTER,
                                  "Spans dropped before or during export, by reason: queue_full "
                                  "(the bounded queue was full), export_failed (non-retryable "
                                  "error or retries exhausted), rejected (the collector's "
                                  "partial_success), shutdown (left at exit).",
                                  1, l_reason},
    [POH_SELF_M_RELOAD_OK] = {"poh_exporter_config_last_reload_successful", POH_GAUGE,
                              "Whether the last configuration reload attempt was successful.", 0,
                              NULL},
    [POH_SELF_M_RELOAD_TS] = {"poh_exporter_config_last_reload_success_timestamp_seconds",
                              POH_GAUGE, "Timestamp of the last successful configuration reload.",
                              0, NULL},
    [POH_SELF_M_COLLECTOR_SUCCESS] = {"poh_exporter_collector_success", POH_GAUGE,
                                      "1 if the collector succeeded in this scrape, 0 if it "
                                      "failed or missed the deadline.",
                                      1, l_collector},
    [POH_SELF_M_COLLECTOR_DURATION] = {"poh_exporter_collector_duration_seconds", POH_GAUGE,
                                       "Time the collector spent in this scrape.", 1,
                                       l_collector},
    {NULL},
};

const poh_family_desc_t poh_self_web_metrics[] = {
    [POH_SELF_W_RELOAD_OK] = {"poh_exporter_web_config_last_reload_successful", POH_GAUGE,
                              "Whether the last load of the web config file (--web.config.file) "
                              "worked.",
                              0, NULL},
    [POH_SELF_W_RELOAD_TS] = {"poh_exporter_web_config_last_reload_success_timestamp_seconds",
                              POH_GAUGE, "When the web config file was last loaded successfully.",
                              0, NULL},
    [POH_SELF_W_AUTH_FAILURES] = {"poh_exporter_web_auth_failures_total", POH_COUNTER,
                                  "Requests refused by basic auth, by reason (no_credentials, "
                                  "bad_credentials).",
                                  1, l_reason},
    [POH_SELF_W_CERT_EXPIRY] = {"poh_exporter_web_tls_certificate_expiry_timestamp_seconds",
                                POH_GAUGE, "notAfter of the listener's TLS certificate in force.",
                                0, NULL},
    {NULL},
};

/* A load's outcome: the success gauge and the time of the last success. */
typedef struct {
    double ok, ts;
} load_t;

struct poh_self {
    double boot_time; /* read once: it never changes */
    pthread_mutex_t mu;
    load_t config;
    bool web;        /* a web config file is in use */
    load_t web_load;
    double cert_not_after; /* < 0: no TLS listener */
    _Atomic uint64_t auth_failures[2];
};

poh_self_t *poh_self_new(void)
{
    poh_self_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->boot_time = poh_self_boot_time();
    s->cert_not_after = -1;
    return s;
}

void poh_self_free(poh_self_t *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void loaded(load_t *l, bool ok, double now)
{
    l->ok = ok ? 1 : 0;
    if (ok)
        l->ts = now;
}

void poh_self_config_loaded(poh_self_t *s, bool ok, double now)
{
    pthread_mutex_lock(&s->mu);
    loaded(&s->config, ok, now);
    pthread_mutex_unlock(&s->mu);
}

void poh_self_web_loaded(poh_self_t *s, bool ok, double now, double cert_not_after)
{
    pthread_mutex_lock(&s->mu);
    s->web = true;
    loaded(&s->web_load, ok, now);
    if (ok && cert_not_after >= 0)
        s->cert_not_after = cert_not_after;
    pthread_mutex_unlock(&s->mu);
}

void poh_self_web_auth_failure(poh_self_t *s, poh_self_auth_t why)
{
    if ((unsigned)why < 2)
        atomic_fetch_add_explicit(&s->auth_failures[why], 1, memory_order_relaxed);
}

/* One series of family d with these label values set to v (counters: added
 * to a new series). */
static int put(poh_registry_t *r, const poh_family_desc_t *d, const char *const *values,
               double v)
{
    poh_family_t *f = poh_registry_family_desc(r, d);
    poh_series_t *s = f ? poh_family_series(f, values) : NULL;
    if (!s)
        return -ENOMEM;
    if (d->type == POH_COUNTER)
        poh_counter_add(s, v);
    else
        poh_gauge_set(s, v);
    return 0;
}

double poh_self_boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    double bt = -1;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    }
    fclose(f);
    return bt;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

/* The process_* series from /proc/self; boot_time < 0: no start time. */
static int process_metrics(poh_registry_t *r, double boot_time)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -errno;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which may itself hold spaces and ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -EINVAL;
    unsigned long utime = 0, stime = 0, vsize = 0;
    unsigned long long starttime = 0;
    long rss = 0;
    int got = sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d "
                     "%*d %llu %lu %ld",
                     &utime, &stime, &starttime, &vsize, &rss);
    if (got != 5)
        return -EINVAL;
    double hz = (double)sysconf(_SC_CLK_TCK);
    double page = (double)sysconf(_SC_PAGESIZE);
    const poh_family_desc_t *m = poh_self_metrics;
    put(r, &m[POH_SELF_M_CPU], NULL, (double)(utime + stime) / hz);
    put(r, &m[POH_SELF_M_RSS], NULL, (double)rss * page);
    put(r, &m[POH_SELF_M_VSIZE], NULL, (double)vsize);
    if (boot_time >= 0)
        put(r, &m[POH_SELF_M_START_TIME], NULL, boot_time + (double)starttime / hz);
    int fds = count_fds();
    if (fds >= 0)
        put(r, &m[POH_SELF_M_OPEN_FDS], NULL, fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        put(r, &m[POH_SELF_M_MAX_FDS], NULL,
            rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
    return 0;
}

int poh_self_write_tracer(poh_registry_t *r, const poh_tracer_t *tracer)
{
    poh_tracer_stats_t st;
    poh_tracer_stats(tracer, &st);
    if (put(r, &poh_self_metrics[POH_SELF_M_SPANS_EXPORTED], NULL, (double)st.exported) < 0)
        return -ENOMEM;
    for (int i = 0; i < POH_DROP_REASON_COUNT; i++) {
        const char *v[] = {poh_drop_reason_name((poh_drop_reason_t)i)};
        if (put(r, &poh_self_metrics[POH_SELF_M_SPANS_DROPPED], v, (double)st.dropped[i]) < 0)
            return -ENOMEM;
    }
    return 0;
}

int poh_self_write_runs(poh_registry_t *r, const poh_self_run_t *runs, size_t n)
{
    const poh_family_desc_t *m = poh_self_metrics;
    for (size_t i = 0; i < n; i++) {
        const char *v[] = {runs[i].collector};
        if (put(r, &m[POH_SELF_M_COLLECTOR_SUCCESS], v, runs[i].ok ? 1 : 0) < 0 ||
            put(r, &m[POH_SELF_M_COLLECTOR_DURATION], v, runs[i].duration) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* The two loads' series and the basic auth failures, from a snapshot. */
static int load_metrics(poh_self_t *s, poh_registry_t *r)
{
    pthread_mutex_lock(&s->mu);
    load_t config = s->config, web_load = s->web_load;
    bool web = s->web;
    double not_after = s->cert_not_after;
    pthread_mutex_unlock(&s->mu);
    const poh_family_desc_t *m = poh_self_metrics, *wm = poh_self_web_metrics;
    int rc = put(r, &m[POH_SELF_M_RELOAD_OK], NULL, config.ok);
    if (rc == 0)
        rc = put(r, &m[POH_SELF_M_RELOAD_TS], NULL, config.ts);
    if (rc < 0 || !web)
        return rc;
    static const char *const no_creds[] = {"no_credentials"}, *const bad_creds[] = {
        "bad_credentials"};
    uint64_t none = atomic_load_explicit(&s->auth_failures[0], memory_order_relaxed);
    uint64_t bad = atomic_load_explicit(&s->auth_failures[1], memory_order_relaxed);
    if (put(r, &wm[POH_SELF_W_RELOAD_OK], NULL, web_load.ok) < 0 ||
        put(r, &wm[POH_SELF_W_RELOAD_TS], NULL, web_load.ts) < 0 ||
        put(r, &wm[POH_SELF_W_AUTH_FAILURES], no_creds, (double)none) < 0 ||
        put(r, &wm[POH_SELF_W_AUTH_FAILURES], bad_creds, (double)bad) < 0)
        return -ENOMEM;
    if (not_after >= 0 && put(r, &wm[POH_SELF_W_CERT_EXPIRY], NULL, not_after) < 0)
        return -ENOMEM;
    return 0;
}

int poh_self_collect(poh_self_t *s, const poh_tracer_t *tracer, poh_registry_t *r)
{
    static const char *const build[] = {POH_VERSION, POH_REVISION};
    if (put(r, &poh_self_metrics[POH_SELF_M_BUILD_INFO], build, 1) < 0 ||
        poh_self_write_tracer(r, tracer) < 0 || load_metrics(s, r) < 0)
        return -ENOMEM;
    return process_metrics(r, s->boot_time);
}
