/* Collector framework: building sets of collectors from config and running a
 * scrape across them concurrently with a deadline. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/collector.h"
#include "collectors/grpc.h"
#include "core/clock.h"
#include "core/log.h"

/* One entry per collector kind. A kind whose section is absent adds nothing. */
static const struct {
    const char *kind;
    poh_collector_factory_fn create;
} factories[] = {
    {"grpc", poh_grpc_collectors_create},
    {NULL, NULL},
};

typedef struct slot {
    poh_collector_t c;
    atomic_bool busy;
    pthread_mutex_t mu;      /* guards the last_* fields */
    bool ran, last_ok;
    int last_rc;
    double last_duration, last_time;
} slot_t;

static atomic_int sets_alive;

int poh_collector_sets_alive(void)
{
    return atomic_load(&sets_alive);
}

struct poh_collector_set {
    atomic_int refs;
    slot_t *slots;
    size_t n;
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
        atomic_init(&s->slots[i].busy, false);
        pthread_mutex_init(&s->slots[i].mu, NULL);
    }
    s->n = list->len;
    free(list->items);
    memset(list, 0, sizeof *list);
    atomic_init(&s->refs, 1);
    atomic_fetch_add(&sets_alive, 1);
    return s;
}

poh_collector_set_t *poh_collector_set_create(const poh_config_t *cfg,
                                              poh_registry_t *persistent)
{
    poh_collector_list_t list = {0};
    for (size_t i = 0; factories[i].create; i++) {
        int rc = factories[i].create(cfg, persistent, &list);
        if (rc < 0) {
            POH_ERROR("collectors", "creating %s collectors failed: %s", factories[i].kind,
                      strerror(-rc));
            list_destroy(&list);
            return NULL;
        }
    }
    return poh_collector_set_from_list(&list);
}

void poh_collector_set_ref(poh_collector_set_t *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void poh_collector_set_unref(poh_collector_set_t *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n; i++) {
        s->slots[i].c.ops->destroy(s->slots[i].c.state);
        pthread_mutex_destroy(&s->slots[i].mu);
    }
    free(s->slots);
    free(s);
    atomic_fetch_sub(&sets_alive, 1);
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

/* A scrape in flight. Workers and the waiting caller each hold a reference;
 * whoever drops the last one frees it, so a worker that outlives its deadline
 * never writes into freed memory. */
typedef struct job {
    slot_t *slot;
    poh_registry_t *reg;     /* NULL once handed to the caller */
    int rc;
    double duration;
    bool done, started;
} job_t;

typedef struct scrape_run {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending;
    poh_collector_set_t *set;
    double deadline;
    poh_trace_parent_t trace;
    size_t n;
    job_t jobs[];
} scrape_run_t;

typedef struct worker_arg {
    scrape_run_t *run;
    job_t *job;
} worker_arg_t;

static void run_release(scrape_run_t *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    for (size_t i = 0; i < r->n; i++)
        poh_registry_free(r->jobs[i].reg);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    poh_collector_set_unref(r->set);
    free(r);
}

static void *worker_main(void *p)
{
    worker_arg_t a = *(worker_arg_t *)p;
    free(p);
    job_t *j = a.job;
    poh_scrape_t sc = {.out = j->reg, .deadline = a.run->deadline, .trace = a.run->trace};
    double t0 = poh_now_mono();
    int rc = j->slot->c.ops->collect(j->slot->c.state, &sc);
    double dur = poh_now_mono() - t0;
    atomic_store(&j->slot->busy, false);

    pthread_mutex_lock(&a.run->mu);
    j->rc = rc;
    j->duration = dur;
    j->done = true;
    a.run->pending--;
    pthread_cond_broadcast(&a.run->cv);
    pthread_mutex_unlock(&a.run->mu);
    if (rc < 0)
        POH_DEBUG("collectors", "%s failed: %s", j->slot->c.name, strerror(-rc));
    run_release(a.run);
    return NULL;
}

static const char *const collector_label[] = {"collector"};

int poh_collector_set_scrape(poh_collector_set_t *s, double deadline,
                             const poh_trace_parent_t *trace,
                             poh_registry_t *self, poh_scrape_output_t *out)
{
    memset(out, 0, sizeof *out);
    size_t n = poh_collector_set_len(s);
    poh_family_t *fsucc = poh_registry_family(
        self, POH_GAUGE, "poh_exporter_collector_success",
        "1 if the collector succeeded in this scrape, 0 if it failed or missed the deadline.",
        1, collector_label, NULL, 0);
    poh_family_t *fdur = poh_registry_family(
        self, POH_GAUGE, "poh_exporter_collector_duration_seconds",
        "Time the collector spent in this scrape.", 1, collector_label, NULL, 0);
    if (!n)
        return 0;
    if (!fsucc || !fdur)
        return -ENOMEM;

    scrape_run_t *r = calloc(1, sizeof *r + n * sizeof(job_t));
    out->regs = calloc(n, sizeof *out->regs);
    if (!r || !out->regs) {
        free(r);
        free(out->regs);
        out->regs = NULL;
        return -ENOMEM;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    poh_collector_set_ref(s);
    r->set = s;
    r->deadline = deadline;
    if (trace)
        r->trace = *trace;
    r->n = n;
    atomic_init(&r->refs, 1);

    double t0 = poh_now_mono();
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (size_t i = 0; i < n; i++) {
        job_t *j = &r->jobs[i];
        j->slot = &s->slots[i];
        j->rc = -ETIMEDOUT;
        bool was_busy = atomic_exchange(&j->slot->busy, true);
        if (was_busy) {
            j->rc = -EBUSY;
            j->done = true;
            continue;
        }
        worker_arg_t *wa = malloc(sizeof *wa);
        j->reg = poh_registry_new();
        pthread_t th;
        if (!wa || !j->reg) {
            free(wa);
            j->rc = -ENOMEM;
            j->done = true;
            atomic_store(&j->slot->busy, false);
            continue;
        }
        wa->run = r;
        wa->job = j;
        atomic_fetch_add(&r->refs, 1);
        pthread_mutex_lock(&r->mu);
        r->pending++;
        pthread_mutex_unlock(&r->mu);
        int err = pthread_create(&th, &attr, worker_main, wa);
        if (err) {
            free(wa);
            atomic_fetch_sub(&r->refs, 1);
            pthread_mutex_lock(&r->mu);
            r->pending--;
            pthread_mutex_unlock(&r->mu);
            j->rc = -err;
            j->done = true;
            atomic_store(&j->slot->busy, false);
            POH_ERROR("collectors", "cannot start a thread for %s: %s", j->slot->c.name,
                      strerror(err));
        } else {
            j->started = true;
        }
    }
    pthread_attr_destroy(&attr);

    struct timespec abs = poh_mono_to_abs_realtime(deadline);
    pthread_mutex_lock(&r->mu);
    while (r->pending > 0) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &abs) == ETIMEDOUT)
            break;
    }
    double now = poh_now_mono();
    for (size_t i = 0; i < n; i++) {
        job_t *j = &r->jobs[i];
        bool ok = j->done && j->rc == 0;
        double dur = j->started ? (j->done ? j->duration : now - t0) : 0;
        if (j->done && j->reg) {
            out->regs[out->n++] = j->reg; /* partial output of a failed collector is kept */
            j->reg = NULL;
        }
        if (!j->done)
            POH_WARN("collectors", "%s missed the scrape deadline after %.3fs", j->slot->c.name,
                     dur);
        const char *lv[] = {j->slot->c.name};
        poh_gauge_set(poh_family_series(fsucc, lv), ok ? 1 : 0);
        poh_gauge_set(poh_family_series(fdur, lv), dur);
        slot_t *sl = j->slot;
        pthread_mutex_lock(&sl->mu);
        sl->ran = true;
        sl->last_ok = ok;
        sl->last_rc = j->done ? j->rc : -ETIMEDOUT;
        sl->last_duration = dur;
        sl->last_time = poh_now_real();
        pthread_mutex_unlock(&sl->mu);
    }
    pthread_mutex_unlock(&r->mu);
    run_release(r);
    return 0;
}

void poh_scrape_output_free(poh_scrape_output_t *out)
{
    for (size_t i = 0; i < out->n; i++)
        poh_registry_free(out->regs[i]);
    free(out->regs);
    memset(out, 0, sizeof *out);
}

void poh_html_escape(poh_strbuf_t *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': poh_strbuf_puts(out, "&amp;"); break;
        case '<': poh_strbuf_puts(out, "&lt;"); break;
        case '>': poh_strbuf_puts(out, "&gt;"); break;
        case '"': poh_strbuf_puts(out, "&quot;"); break;
        case '\'': poh_strbuf_puts(out, "&#39;"); break;
        default: poh_strbuf_putc(out, *p);
        }
    }
}

void poh_collector_set_status_html(poh_collector_set_t *s, poh_strbuf_t *out)
{
    for (size_t i = 0; i < poh_collector_set_len(s); i++) {
        slot_t *sl = &s->slots[i];
        pthread_mutex_lock(&sl->mu);
        bool ran = sl->ran, ok = sl->last_ok;
        int rc = sl->last_rc;
        double dur = sl->last_duration;
        pthread_mutex_unlock(&sl->mu);
        poh_strbuf_puts(out, "<tr><td>");
        poh_html_escape(out, sl->c.name);
        poh_strbuf_puts(out, "</td><td>(collector)</td><td>");
        poh_strbuf_puts(out, !ran ? "not scraped yet" : ok ? "ok" : "failed");
        poh_strbuf_puts(out, "</td><td>");
        if (ran)
            poh_strbuf_printf(out, "%.3f s", dur);
        poh_strbuf_puts(out, "</td><td>");
        if (ran && !ok)
            poh_html_escape(out, rc == -ETIMEDOUT ? "missed the scrape deadline"
                                 : rc == -EBUSY   ? "previous run still busy"
                                                  : strerror(-rc));
        poh_strbuf_puts(out, "</td></tr>\n");
        if (sl->c.ops->status_html)
            sl->c.ops->status_html(sl->c.state, out);
    }
}
