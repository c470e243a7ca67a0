/* SPDX-License-Identifier: Apache-2.0 */
/* Collector framework: building sets of collectors from config and running a
 * scrape across them concurrently with a deadline. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collectors/collector.h"
#include "collectors/self.h"
#include "core/clock.h"
#include "core/log.h"

const char *poh_label_value(const char *const *names, const char *const *values, size_t n,
                            const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return values[i];
    return NULL;
}

/* The instances of kind ref in the root cfg. */
static const void *kind_confs(const poh_config_t *cfg, const poh_collector_kind_ref_t *ref,
                              size_t *n)
{
    const char *root = (const char *)cfg;
    *n = *(const size_t *)(root + ref->count_offset);
    return *(const void *const *)(root + ref->offset);
}

typedef struct sweep {
    const poh_config_t *cfg;
    const poh_collector_kind_ref_t *kinds;
} sweep_t;

static bool keep_series(const char *family, const char *const *names, const char *const *values,
                        size_t n, void *ctx)
{
    const sweep_t *sw = ctx;
    for (const poh_collector_kind_ref_t *k = sw->kinds; k->kind; k++) {
        size_t nconfs;
        const void *confs = kind_confs(sw->cfg, k, &nconfs);
        if (k->kind->keep && !k->kind->keep(confs, nconfs, family, names, values, n))
            return false;
    }
    return true;
}

size_t poh_collectors_sweep(const poh_config_t *cfg, poh_registry_t *persistent)
{
    sweep_t sw = {cfg, poh_collector_kinds};
    return poh_registry_remove_series_if(persistent, keep_series, &sw);
}

struct run;

typedef struct slot {
    poh_collector_t c;
    pthread_mutex_t mu;      /* guards inflight, the worker fields and last_* */
    struct run *inflight;    /* the run in progress, shared by concurrent scrapes */
    /* The slot's worker thread, started at its first run and kept: a run is
     * handed over in todo (one at a time: a new one only starts once
     * inflight is done); quit ends it when the set is destroyed. */
    pthread_cond_t cv;
    pthread_t worker;
    bool has_worker, quit;
    struct run *todo;
    bool ran, last_ok;
    int last_rc;
    double last_duration, last_time;
} slot_t;

struct poh_collector_sets_live {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when n drops to 0 */
    int n;
};

poh_collector_sets_live_t *poh_collector_sets_live_new(void)
{
    poh_collector_sets_live_t *live = calloc(1, sizeof *live);
    if (!live)
        return NULL;
    pthread_mutex_init(&live->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&live->cv, &ca);
    pthread_condattr_destroy(&ca);
    return live;
}

static void sets_live_add(poh_collector_sets_live_t *live, int d)
{
    if (!live)
        return;
    pthread_mutex_lock(&live->mu);
    live->n += d;
    if (live->n == 0)
        pthread_cond_broadcast(&live->cv);
    pthread_mutex_unlock(&live->mu);
}

bool poh_collector_sets_live_wait(poh_collector_sets_live_t *live, double timeout)
{
    if (!live)
        return true;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    double end = (double)until.tv_sec + until.tv_nsec / 1e9 + timeout;
    until.tv_sec = (time_t)end;
    until.tv_nsec = (long)((end - (double)until.tv_sec) * 1e9);
    pthread_mutex_lock(&live->mu);
    int rc = 0;
    while (live->n > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&live->cv, &live->mu, &until);
    bool none = live->n == 0;
    pthread_mutex_unlock(&live->mu);
    return none;
}

void poh_collector_sets_live_free(poh_collector_sets_live_t *live)
{
    if (!live)
        return;
    pthread_mutex_destroy(&live->mu);
    pthread_cond_destroy(&live->cv);
    free(live);
}

struct poh_collector_set {
    atomic_int refs;
    slot_t *slots;
    size_t n;
    poh_collector_sets_live_t *live; /* NULL: not counted */
};

int poh_collector_list_push(poh_collector_list_t *l, const poh_collector_ops_t *ops,
                            void *state, const char *name)
{
    if (l->len == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        poh_collector_t *n = realloc(l->items, ncap * sizeof *n);
        if (!n) {
            ops->destroy(state);
            return -ENOMEM;
        }
        l->items = n;
        l->cap = ncap;
    }
    poh_collector_t *c = &l->items[l->len++];
    c->ops = ops;
    c->state = state;
    snprintf(c->name, sizeof c->name, "%s", name);
    return 0;
}

static void list_destroy(poh_collector_list_t *l)
{
    for (size_t i = 0; i < l->len; i++)
        l->items[i].ops->destroy(l->items[i].state);
    free(l->items);
    memset(l, 0, sizeof *l);
}

poh_collector_set_t *poh_collector_set_from_list(poh_collector_list_t *list)
{
    poh_collector_set_t *s = calloc(1, sizeof *s);
    if (!s || (list->len && !(s->slots = calloc(list->len, sizeof *s->slots)))) {
        free(s);
        list_destroy(list);
        return NULL;
    }
    for (size_t i = 0; i < list->len; i++) {
        s->slots[i].c = list->items[i];
        pthread_mutex_init(&s->slots[i].mu, NULL);
        pthread_cond_init(&s->slots[i].cv, NULL);
    }
    s->n = list->len;
    free(list->items);
    memset(list, 0, sizeof *list);
    atomic_init(&s->refs, 1);
    return s;
}

poh_collector_set_t *poh_collector_set_create_kinds(const poh_config_t *cfg,
                                                    const poh_collector_env_t *env,
                                                    const poh_collector_kind_ref_t *kinds)
{
    poh_collector_list_t list = {0};
    for (const poh_collector_kind_ref_t *k = kinds; k->kind; k++) {
        size_t n;
        const void *confs = kind_confs(cfg, k, &n);
        int rc = k->kind->create(cfg, confs, n, env, &list);
        if (rc < 0) {
            POH_ERROR("collectors", "creating %s collectors failed: %s", k->kind->name,
                      strerror(-rc));
            list_destroy(&list);
            return NULL;
        }
    }
    poh_collector_set_t *s = poh_collector_set_from_list(&list);
    if (s && env->live) {
        s->live = env->live;
        sets_live_add(s->live, 1);
    }
    return s;
}

poh_collector_set_t *poh_collector_set_create(const poh_config_t *cfg,
                                              const poh_collector_env_t *env)
{
    return poh_collector_set_create_kinds(cfg, env, poh_collector_kinds);
}

void poh_collector_set_ref(poh_collector_set_t *s)
{
    atomic_fetch_add(&s->refs, 1);
}

/* Drops a reference; true when that destroyed the set. Workers are idle
 * then (a run holds a reference), except the calling thread itself when it
 * is one: it is detached instead of joined and must not touch its slot. */
static bool set_release(poh_collector_set_t *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return false;
    for (size_t i = 0; i < s->n; i++) {
        slot_t *sl = &s->slots[i];
        pthread_mutex_lock(&sl->mu);
        bool has = sl->has_worker;
        sl->quit = true;
        pthread_cond_signal(&sl->cv);
        pthread_mutex_unlock(&sl->mu);
        if (has && pthread_equal(sl->worker, pthread_self()))
            pthread_detach(sl->worker);
        else if (has)
            pthread_join(sl->worker, NULL);
    }
    for (size_t i = 0; i < s->n; i++) {
        s->slots[i].c.ops->destroy(s->slots[i].c.state);
        pthread_mutex_destroy(&s->slots[i].mu);
        pthread_cond_destroy(&s->slots[i].cv);
    }
    poh_collector_sets_live_t *live = s->live;
    free(s->slots);
    free(s);
    sets_live_add(live, -1); /* last: the app may free what the set used */
    return true;
}

void poh_collector_set_unref(poh_collector_set_t *s)
{
    set_release(s);
}

size_t poh_collector_set_len(const poh_collector_set_t *s)
{
    return s ? s->n : 0;
}

const poh_collector_t *poh_collector_set_get(const poh_collector_set_t *s, size_t i)
{
    return i < poh_collector_set_len(s) ? &s->slots[i].c : NULL;
}

const poh_collector_t *poh_collector_set_find_kind(const poh_collector_set_t *s,
                                                   const char *kind)
{
    for (size_t i = 0; i < poh_collector_set_len(s); i++)
        if (strcmp(s->slots[i].c.ops->kind, kind) == 0)
            return &s->slots[i].c;
    return NULL;
}

/* One run of one collector. Concurrent scrapes share it: a scrape that finds
 * the collector already running waits for that run (up to its own deadline)
 * and renders the same output, so two Prometheus servers scraping at once
 * probe each target once, and a hung collector never piles up threads. A
 * scrape never joins a run whose deadline is later than its own (a long
 * X-Prometheus-Scrape-Timeout-Seconds would otherwise make every shorter
 * scrape behind it miss): it runs the collector itself, on a thread of its
 * own that ends with the run, so such runs are bounded by the HTTP
 * connections. Collectors are written for that (mongodb.c gives a second run
 * its own client; the gRPC engine its own connections). The worker, the
 * slot (while in flight) and every waiting scrape hold a reference; the
 * registry is read-only once done. */
typedef struct run {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    double started, duration;
    poh_registry_t *reg;
    slot_t *slot;
    poh_collector_set_t *set;   /* kept alive while the worker runs */
    double deadline;
    poh_trace_parent_t trace;
} run_t;

static void run_release(run_t *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    poh_registry_free(r->reg);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* Runs r, on its slot's worker or on the scraping thread (a bounded
 * collector); true when that ended the set (and the slot). */
static bool execute_run(run_t *r)
{
    slot_t *sl = r->slot;
    poh_scrape_t sc = {.out = r->reg, .deadline = r->deadline, .trace = r->trace};
    int rc = sl->c.ops->collect(sl->c.state, &sc);
    double dur = poh_now_mono() - r->started;
    if (rc < 0)
        POH_DEBUG("collectors", "%s failed: %s", sl->c.name, strerror(-rc));

    pthread_mutex_lock(&sl->mu);
    if (sl->inflight == r) {
        sl->inflight = NULL;
        run_release(r);           /* the slot's reference */
    }
    pthread_mutex_unlock(&sl->mu);
    pthread_mutex_lock(&r->mu);
    r->rc = rc;
    r->duration = dur;
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    poh_collector_set_t *set = r->set;
    run_release(r);               /* the worker's reference */
    return set_release(set);      /* last: may destroy the collector */
}

static void *private_main(void *p)
{
    execute_run(p); /* the slot is not touched after it, whatever it returns */
    return NULL;
}

static void *worker_main(void *p)
{
    slot_t *sl = p;
    pthread_mutex_lock(&sl->mu);
    for (;;) {
        while (!sl->todo && !sl->quit)
            pthread_cond_wait(&sl->cv, &sl->mu);
        if (sl->quit)
            break;
        run_t *r = sl->todo;
        sl->todo = NULL;
        pthread_mutex_unlock(&sl->mu);
        if (execute_run(r))
            return NULL; /* the slot is gone with its set */
        pthread_mutex_lock(&sl->mu);
    }
    pthread_mutex_unlock(&sl->mu);
    return NULL;
}

/* The slot's current run, or a new one started for this deadline. Returns a
 * reference for the caller, or NULL (errno-style code in *err). */
static run_t *run_join_or_start(poh_collector_set_t *s, slot_t *sl, double deadline,
                                const poh_trace_parent_t *trace, bool here, bool *run_here,
                                int *err)
{
    pthread_mutex_lock(&sl->mu);
    run_t *r = sl->inflight;
    if (r && r->deadline <= deadline) {
        atomic_fetch_add(&r->refs, 1);
        pthread_mutex_unlock(&sl->mu);
        return r;
    }
    bool private = r != NULL; /* a run with a later deadline is in flight */
    r = calloc(1, sizeof *r);
    if (!r || !(r->reg = poh_registry_new())) {
        free(r);
        pthread_mutex_unlock(&sl->mu);
        *err = -ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->slot = sl;
    r->set = s;
    r->deadline = deadline;
    if (trace)
        r->trace = *trace;
    r->started = poh_now_mono();
    atomic_init(&r->refs, private ? 2 : 3); /* caller, slot (not a private run's), executor */
    poh_collector_set_ref(s);
    if (private) {
        pthread_mutex_unlock(&sl->mu);
        pthread_attr_t attr;
        pthread_t th;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int e = pthread_create(&th, &attr, private_main, r);
        pthread_attr_destroy(&attr);
        if (e) {
            POH_ERROR("collectors", "cannot start a thread for %s: %s", sl->c.name, strerror(e));
            poh_collector_set_unref(s);
            atomic_store(&r->refs, 1);
            run_release(r);
            *err = -e;
            return NULL;
        }
        return r;
    }
    if (here) {
        /* The caller runs it (execute_run) as soon as it has started the
         * others; concurrent scrapes join it as they would a worker's. */
        sl->inflight = r;
        pthread_mutex_unlock(&sl->mu);
        *run_here = true;
        return r;
    }
    int e = 0;
    if (!sl->has_worker) {
        e = pthread_create(&sl->worker, NULL, worker_main, sl);
        sl->has_worker = e == 0;
    }
    if (e) {
        pthread_mutex_unlock(&sl->mu);
        POH_ERROR("collectors", "cannot start a thread for %s: %s", sl->c.name, strerror(e));
        poh_collector_set_unref(s);
        atomic_store(&r->refs, 1);
        run_release(r);
        *err = -e;
        return NULL;
    }
    sl->inflight = r;
    sl->todo = r;
    pthread_cond_signal(&sl->cv);
    pthread_mutex_unlock(&sl->mu);
    return r;
}

/* Start (or join) a run of every collector, one bounded collector (the
 * last) on this thread, the rest on their workers, all at once. */
static void start_runs(poh_collector_set_t *s, double deadline, const poh_trace_parent_t *trace,
                       run_t **runs, int *errs)
{
    size_t n = poh_collector_set_len(s);
    size_t here = n;
    for (size_t i = n; i-- > 0;)
        if (s->slots[i].c.ops->bounded) {
            here = i;
            break;
        }
    run_t *mine = NULL;
    for (size_t i = 0; i < n; i++) {
        bool run_here = false;
        runs[i] = run_join_or_start(s, &s->slots[i], deadline, trace, i == here, &run_here,
                                    &errs[i]);
        if (run_here)
            mine = runs[i];
    }
    if (mine)
        execute_run(mine); /* the caller holds the set: this never ends it */
}

/* Wait for one slot's run until abs; its output joins out if it finished.
 * Records the outcome in the slot and in *res (for the self collector). */
static void finish_run(slot_t *sl, run_t *r, int rc, const struct timespec *abs,
                       poh_self_run_t *res, poh_scrape_output_t *out)
{
    bool done = false;
    double dur = 0;
    if (r) {
        pthread_mutex_lock(&r->mu);
        while (!r->done && pthread_cond_timedwait(&r->cv, &r->mu, abs) != ETIMEDOUT)
            ;
        done = r->done;
        rc = done ? r->rc : -ETIMEDOUT;
        dur = done ? r->duration : poh_now_mono() - r->started;
        pthread_mutex_unlock(&r->mu);
        if (done) {
            /* Partial output of a failed collector is kept. */
            out->regs[out->n] = r->reg;
            out->held[out->n++] = r;
        } else {
            POH_WARN("collectors", "%s missed the scrape deadline after %.3fs", sl->c.name, dur);
            run_release(r);
        }
    }
    bool ok = done && rc == 0;
    *res = (poh_self_run_t){sl->c.name, ok, dur};
    pthread_mutex_lock(&sl->mu);
    sl->ran = true;
    sl->last_ok = ok;
    sl->last_rc = rc;
    sl->last_duration = dur;
    sl->last_time = poh_now_real();
    pthread_mutex_unlock(&sl->mu);
}

int poh_collector_set_scrape(poh_collector_set_t *s, double deadline,
                             const poh_trace_parent_t *trace, poh_registry_t *self,
                             poh_scrape_output_t *out)
{
    memset(out, 0, sizeof *out);
    size_t n = poh_collector_set_len(s);
    if (!n)
        return 0;
    run_t **runs = calloc(n, sizeof *runs);
    int *errs = calloc(n, sizeof *errs);
    poh_self_run_t *res = calloc(n, sizeof *res);
    out->regs = calloc(n, sizeof *out->regs);
    out->held = calloc(n, sizeof *out->held);
    int rc = -ENOMEM;
    if (!runs || !errs || !res || !out->regs || !out->held) {
        poh_scrape_output_free(out);
        goto done;
    }
    start_runs(s, deadline, trace, runs, errs);
    struct timespec abs = poh_mono_to_abs_realtime(deadline);
    for (size_t i = 0; i < n; i++)
        finish_run(&s->slots[i], runs[i], errs[i], &abs, &res[i], out);
    rc = poh_self_write_runs(self, res, n);
done:
    free(runs);
    free(errs);
    free(res);
    return rc;
}

void poh_scrape_output_free(poh_scrape_output_t *out)
{
    for (size_t i = 0; out->held && i < out->n; i++)
        run_release(out->held[i]);
    free(out->regs);
    free(out->held);
    memset(out, 0, sizeof *out);
}

static char *status_join(const char *a, const char *sep, const char *b, bool *failed)
{
    size_t la = a ? strlen(a) + strlen(sep) : 0, lb = b ? strlen(b) : 0;
    char *r = malloc(la + lb + 1);
    if (!r) {
        *failed = true;
        return NULL;
    }
    if (a) {
        memcpy(r, a, la - strlen(sep));
        memcpy(r + la - strlen(sep), sep, strlen(sep));
    }
    if (b)
        memcpy(r + la, b, lb);
    r[la + lb] = 0;
    return r;
}

void poh_status_rows_add(poh_status_rows_t *rows, const poh_status_text_t *text,
                         poh_status_latency_t latency_kind, double latency)
{
    if (rows->len == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 16;
        poh_status_row_t *items = realloc(rows->items, cap * sizeof *items);
        if (!items) {
            rows->failed = true;
            return;
        }
        rows->items = items;
        rows->cap = cap;
    }
    bool failed = false;
    poh_status_row_t r = {
        .collector = status_join(text->kind, "/", text->name, &failed),
        .target = status_join(text->target_prefix, "", text->target, &failed),
        .result = status_join(NULL, "", text->result, &failed),
        .error = status_join(NULL, "", text->error, &failed),
        .latency_kind = latency_kind,
        .latency = latency,
    };
    rows->items[rows->len++] = r;
    if (failed) {
        rows->failed = true;
        rows->len--;
        free(r.collector);
        free(r.target);
        free(r.result);
        free(r.error);
    }
}

void poh_status_rows_free(poh_status_rows_t *rows)
{
    for (size_t i = 0; i < rows->len; i++) {
        free(rows->items[i].collector);
        free(rows->items[i].target);
        free(rows->items[i].result);
        free(rows->items[i].error);
    }
    free(rows->items);
    memset(rows, 0, sizeof *rows);
}

void poh_collector_set_status(poh_collector_set_t *s, poh_status_rows_t *rows)
{
    for (size_t i = 0; i < poh_collector_set_len(s); i++) {
        slot_t *sl = &s->slots[i];
        pthread_mutex_lock(&sl->mu);
        bool ran = sl->ran, ok = sl->last_ok;
        int rc = sl->last_rc;
        double dur = sl->last_duration;
        pthread_mutex_unlock(&sl->mu);
        const char *error = NULL;
        if (ran && !ok)
            error = rc == -ETIMEDOUT ? "missed the scrape deadline" : strerror(-rc);
        poh_status_text_t t = {
            .name = sl->c.name,
            .target = "(collector)",
            .result = !ran ? "not scraped yet" : ok ? "ok" : "failed",
            .error = error,
        };
        poh_status_rows_add(rows, &t, ran ? POH_STATUS_LATENCY_S : POH_STATUS_LATENCY_NONE, dur);
        if (sl->c.ops->status)
            sl->c.ops->status(sl->c.state, rows);
    }
}
