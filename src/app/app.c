/* SPDX-License-Identifier: Apache-2.0 */
#include "app/app.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/collector.h"
#include "collectors/mongodb.h"
#include "collectors/self.h"
#include "core/clock.h"
#include "core/log.h"
#include "poh_version.h"
#include "trace/trace.h"

/* One loaded configuration and the collectors built from it. Scrapes hold a
 * reference, so a reload never frees what a scrape in flight is using. */
typedef struct runtime {
    atomic_int refs;
    poh_config_t *cfg;
    poh_collector_set_t *set;
} runtime_t;

struct poh_app {
    char *config_path;                /* NULL: embedded default */
    char *ov_listen, *ov_path, *ov_level, *ov_format, *ov_web_config;
    poh_scrape_observer_fn observer; /* the landing page's history */
    void *observer_ctx;
    poh_registry_t *persistent;       /* lives across reloads */
    poh_self_t *self;                 /* the self collector: poh_exporter_*, process_* */
    pthread_mutex_t mu;               /* guards rt */
    pthread_mutex_t reload_mu;        /* one reload at a time */
    runtime_t *rt;
    poh_collector_sets_live_t *live;  /* sets not yet destroyed, waited for at exit */
    poh_mongodb_store_t *mongodb_store; /* change streams' state across reloads */
    poh_tracer_t *tracer;             /* NULL: tracing off; from the startup config */
    bool tracing_set_up;
    /* Size of the last body per format: the next is reserved at once, not
     * grown by doubling (each step copied the body so far and, past glibc's
     * mmap threshold, faulted in fresh pages: bench/render, 100k series with
     * exemplars, 141 -> 39 ms), and holds little more than it needs. */
    atomic_size_t last_body[POH_FMT_OPENMETRICS + 1];
};

static void runtime_unref(runtime_t *rt)
{
    if (!rt || atomic_fetch_sub(&rt->refs, 1) != 1)
        return;
    poh_collector_set_unref(rt->set);
    poh_config_free(rt->cfg);
    free(rt);
}

static runtime_t *runtime_get(poh_app_t *app)
{
    pthread_mutex_lock(&app->mu);
    runtime_t *rt = app->rt;
    atomic_fetch_add(&rt->refs, 1);
    pthread_mutex_unlock(&app->mu);
    return rt;
}

static int replace_str(char **field, const char *v)
{
    if (!v)
        return 0;
    char *d = strdup(v);
    if (!d)
        return -ENOMEM;
    free(*field);
    *field = d;
    return 0;
}

/* Flags win over the file; they are validated like file values. */
static int apply_overrides(poh_config_t *cfg, const poh_overrides_t *ov, poh_strbuf_t *err)
{
    const char *listen = ov->listen_address, *path = ov->telemetry_path,
               *level = ov->log_level, *format = ov->log_format;
    char host[256];
    unsigned port;
    poh_log_level_t lv;
    poh_log_format_t lf;
    if (listen && poh_parse_listen_address(listen, host, sizeof host, &port) < 0) {
        poh_strbuf_printf(err, "--web.listen-address: invalid address \"%s\" (want host:port)\n",
                          listen);
        return -EINVAL;
    }
    if (path && path[0] != '/') {
        poh_strbuf_printf(err, "--web.telemetry-path: must start with '/': \"%s\"\n", path);
        return -EINVAL;
    }
    if (level && poh_log_level_parse(level, &lv) < 0) {
        poh_strbuf_printf(err, "--log.level: want debug, info, warn or error, not \"%s\"\n",
                          level);
        return -EINVAL;
    }
    if (format && poh_log_format_parse(format, &lf) < 0) {
        poh_strbuf_printf(err, "--log.format: want logfmt or json, not \"%s\"\n", format);
        return -EINVAL;
    }
    if (ov->web_config_file && !ov->web_config_file[0]) {
        poh_strbuf_puts(err, "--web.config.file: empty path\n");
        return -EINVAL;
    }
    if (replace_str(&cfg->web.config_file, ov->web_config_file) < 0 ||
        replace_str(&cfg->web.listen_address, listen) < 0 ||
        replace_str(&cfg->web.telemetry_path, path) < 0 ||
        replace_str(&cfg->log.level, level) < 0 || replace_str(&cfg->log.format, format) < 0)
        return -ENOMEM;
    return 0;
}

/* web.config_file as written is relative to the config file's directory. */
static int resolve_web_config(poh_config_t *cfg, const char *path)
{
    const char *f = cfg->web.config_file, *slash = path ? strrchr(path, '/') : NULL;
    if (!f || f[0] == '/' || !slash)
        return 0;
    size_t dl = (size_t)(slash - path) + 1, n = dl + strlen(f) + 1;
    char *full = malloc(n);
    if (!full)
        return -ENOMEM;
    memcpy(full, path, dl);
    strcpy(full + dl, f);
    free(cfg->web.config_file);
    cfg->web.config_file = full;
    return 0;
}

static int load_config(const char *path, const poh_overrides_t *ov, poh_config_t **out,
                       poh_strbuf_t *err)
{
    int rc = path ? poh_config_load_file(path, out, err) : poh_config_load_default(out, err);
    if (rc < 0)
        return rc;
    rc = resolve_web_config(*out, path);
    if (rc == 0)
        rc = apply_overrides(*out, ov, err);
    if (rc < 0) {
        poh_config_free(*out);
        *out = NULL;
    }
    return rc;
}

static void apply_logging(const poh_config_t *cfg)
{
    poh_log_level_t lv = POH_LOG_INFO;
    poh_log_format_t lf = POH_LOG_LOGFMT;
    poh_log_level_parse(cfg->log.level, &lv);
    poh_log_format_parse(cfg->log.format, &lf);
    poh_log_setup(lv, lf);
}

static runtime_t *runtime_build(poh_app_t *app, poh_strbuf_t *err)
{
    runtime_t *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    atomic_init(&rt->refs, 1);
    poh_overrides_t ov = {.listen_address = app->ov_listen, .telemetry_path = app->ov_path,
                          .log_level = app->ov_level, .log_format = app->ov_format,
                          .web_config_file = app->ov_web_config};
    if (load_config(app->config_path, &ov, &rt->cfg, err) < 0)
        goto err;
    apply_logging(rt->cfg);
    /* Tracing is set up once, from the first configuration: a reload does
     * not move the OTLP pipeline. */
    if (!app->tracing_set_up) {
        const poh_config_tracing_t *tc = &rt->cfg->tracing;
        if (poh_tracing_enabled(tc) && !(app->tracer = poh_tracer_create(tc))) {
            poh_strbuf_puts(err, "tracing: the configuration is unusable (see the log)\n");
            goto err;
        }
        app->tracing_set_up = true;
    }
    poh_collector_env_t env = {
        .persistent = app->persistent, .tracer = app->tracer, .live = app->live,
        .mongodb_store = app->mongodb_store};
    rt->set = poh_collector_set_create(rt->cfg, &env);
    if (!rt->set) {
        poh_strbuf_puts(err, "creating the collectors failed (see the log)\n");
        goto err;
    }
    return rt;
err:
    poh_config_free(rt->cfg);
    free(rt);
    return NULL;
}

int poh_app_check_config(const char *config_path, const poh_overrides_t *ov, poh_strbuf_t *err,
                         int (*extra)(void *ctx, const poh_config_t *cfg, poh_strbuf_t *err),
                         void *ctx)
{
    poh_config_t *cfg = NULL;
    int rc = load_config(config_path, ov, &cfg, err);
    if (rc == 0 && extra)
        rc = extra(ctx, cfg, err);
    poh_config_free(cfg);
    return rc;
}

void poh_app_set_scrape_observer(poh_app_t *app, poh_scrape_observer_fn fn, void *ctx)
{
    app->observer = fn;
    app->observer_ctx = ctx;
}

poh_self_t *poh_app_self(poh_app_t *app)
{
    return app->self;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

poh_app_t *poh_app_create(const char *config_path, const poh_overrides_t *ov, poh_strbuf_t *err)
{
    poh_app_t *app = calloc(1, sizeof *app);
    if (!app)
        return NULL;
    pthread_mutex_init(&app->mu, NULL);
    pthread_mutex_init(&app->reload_mu, NULL);
    app->config_path = dup_or_null(config_path);
    app->ov_listen = dup_or_null(ov->listen_address);
    app->ov_path = dup_or_null(ov->telemetry_path);
    app->ov_level = dup_or_null(ov->log_level);
    app->ov_format = dup_or_null(ov->log_format);
    app->ov_web_config = dup_or_null(ov->web_config_file);
    app->self = poh_self_new();
    app->persistent = poh_registry_new();
    app->live = poh_collector_sets_live_new();
    app->mongodb_store = poh_mongodb_store_new();
    if (!app->self || !app->persistent || !app->live || !app->mongodb_store)
        goto err;
    app->rt = runtime_build(app, err);
    if (!app->rt)
        goto err;
    poh_self_config_loaded(app->self, true, poh_now_real());
    return app;
err:
    poh_app_destroy(app);
    return NULL;
}

void poh_app_destroy(poh_app_t *app)
{
    if (!app)
        return;
    runtime_unref(app->rt);
    app->rt = NULL;
    /* A collector still running past its deadline keeps its set, and may
     * still end spans; give it a bounded moment before the tracer goes. */
    if (poh_collector_sets_live_wait(app->live, 5.0)) {
        poh_tracer_destroy(app->tracer);
        poh_registry_free(app->persistent);
        poh_self_free(app->self);
        poh_collector_sets_live_free(app->live);
        poh_mongodb_store_free(app->mongodb_store);
    } else {
        poh_tracer_shutdown(app->tracer); /* stragglers: leave memory to exit */
        POH_WARN("main", "a collector is still running at shutdown");
    }
    free(app->config_path);
    free(app->ov_listen);
    free(app->ov_path);
    free(app->ov_level);
    free(app->ov_format);
    free(app->ov_web_config);
    pthread_mutex_destroy(&app->mu);
    pthread_mutex_destroy(&app->reload_mu);
    free(app);
}

int poh_app_reload(poh_app_t *app, poh_strbuf_t *err)
{
    pthread_mutex_lock(&app->reload_mu);
    runtime_t *nrt = runtime_build(app, err);
    if (!nrt) {
        poh_self_config_loaded(app->self, false, 0);
        pthread_mutex_unlock(&app->reload_mu);
        POH_ERROR("config", "reload failed, keeping the running configuration: %s",
                  err->data ? err->data : "out of memory");
        return -EINVAL;
    }
    pthread_mutex_lock(&app->mu);
    runtime_t *old = app->rt;
    app->rt = nrt;
    pthread_mutex_unlock(&app->mu);
    if (strcmp(old->cfg->web.listen_address, nrt->cfg->web.listen_address) != 0)
        POH_WARN("config", "web.listen_address changed; it takes effect after a restart");
    runtime_unref(old);
    size_t swept = poh_collectors_sweep(nrt->cfg, app->persistent);
    if (swept)
        POH_INFO("config", "dropped %zu series of targets no longer configured", swept);
    poh_self_config_loaded(app->self, true, poh_now_real());
    pthread_mutex_unlock(&app->reload_mu);
    POH_INFO("config", "reloaded %s", app->config_path ? app->config_path : "<embedded>");
    return 0;
}

struct poh_app_view {
    runtime_t rt;
};

poh_app_view_t *poh_app_acquire(poh_app_t *app)
{
    return (poh_app_view_t *)runtime_get(app);
}

const poh_config_t *poh_app_view_config(const poh_app_view_t *v)
{
    return ((const runtime_t *)v)->cfg;
}

void poh_app_release(poh_app_view_t *v)
{
    runtime_unref((runtime_t *)v);
}

static double scrape_deadline(const poh_config_t *cfg, double timeout)
{
    if (timeout <= 0)
        timeout = cfg->web.default_scrape_timeout;
    if (timeout > cfg->web.max_scrape_timeout)
        timeout = cfg->web.max_scrape_timeout;
    double budget = timeout - cfg->web.scrape_timeout_offset;
    if (budget < 0.05) /* a tiny or negative budget still lets fast collectors answer */
        budget = 0.05;
    return poh_now_mono() + budget;
}

int poh_app_scrape(poh_app_t *app, double timeout, poh_format_t fmt, poh_strbuf_t *body,
                   const poh_render_sink_t *sink)
{
    runtime_t *rt = runtime_get(app);
    double deadline = scrape_deadline(rt->cfg, timeout);
    poh_span_t *root = poh_span_start(app->tracer, "scrape", POH_SPAN_KIND_SERVER, NULL);
    poh_span_set_str(root, "url.path", rt->cfg->web.telemetry_path);
    poh_trace_parent_t parent = poh_span_parent_ref(root);
    poh_registry_t *self = poh_registry_new();
    poh_scrape_output_t out = {0};
    int rc = -ENOMEM;
    if (!self)
        goto done;
    rc = poh_self_collect(app->self, app->tracer, self);
    if (rc == -ENOMEM)
        goto done;
    if (rc < 0)
        POH_WARN("self", "reading process metrics failed: %s", strerror(-rc));
    rc = poh_collector_set_scrape(rt->set, deadline, &parent, self, &out);
    if (rc < 0)
        goto done;
    size_t n = out.n + 2;
    poh_registry_t **regs = malloc(n * sizeof *regs);
    if (!regs) {
        rc = -ENOMEM;
        goto done;
    }
    regs[0] = app->persistent;
    regs[1] = self;
    if (out.n)
        memcpy(regs + 2, out.regs, out.n * sizeof *regs);
    if (app->observer)
        app->observer(app->observer_ctx, regs, n, rt->cfg, poh_now_real());
    size_t hint = atomic_load_explicit(&app->last_body[fmt], memory_order_relaxed);
    if (!sink && hint && body->len == 0 && poh_strbuf_reserve(body, hint + hint / 8) < 0) {
        poh_strbuf_free(body); /* clears the failure: the render grows it instead */
        *body = (poh_strbuf_t)POH_STRBUF_INIT;
    }
    rc = poh_render_to(body, regs, n, fmt, sink);
    if (rc >= 0 && !sink)
        atomic_store_explicit(&app->last_body[fmt], body->len, memory_order_relaxed);
    free(regs);
done:
    if (rc < 0)
        poh_span_set_status(root, POH_SPAN_STATUS_ERROR, strerror(-rc));
    poh_span_end(root);
    poh_scrape_output_free(&out);
    poh_registry_free(self);
    runtime_unref(rt);
    return rc;
}

int poh_app_probe(poh_app_t *app, const char *module, const char *target, double timeout,
                  poh_format_t fmt, bool debug, poh_strbuf_t *body)
{
    poh_strbuf_t log = POH_STRBUF_INIT, mod = POH_STRBUF_INIT;
    runtime_t *rt = runtime_get(app);
    int rc = -ENOENT;
    poh_span_t *root = poh_span_start(app->tracer, "probe", POH_SPAN_KIND_SERVER, NULL);
    poh_span_set_str(root, "url.path", "/probe");
    poh_registry_t *reg = poh_registry_new();
    if (!reg) {
        rc = -ENOMEM;
        goto done;
    }
    poh_scrape_t sc = {.out = reg, .deadline = scrape_deadline(rt->cfg, timeout),
                       .trace = poh_span_parent_ref(root),
                       .debug_log = debug ? &log : NULL, .debug_module = debug ? &mod : NULL};
    for (size_t i = 0; i < poh_collector_set_len(rt->set) && rc == -ENOENT; i++) {
        const poh_collector_t *c = poh_collector_set_get(rt->set, i);
        if (c->ops->probe)
            rc = c->ops->probe(c->state, module, target, &sc);
    }
    if (rc == -ENOENT) {
        poh_strbuf_printf(body, "unknown module \"%s\"\n", module);
        rc = -EINVAL;
    } else if (rc == -EINVAL) {
        poh_strbuf_printf(body, "invalid target \"%s\"\n", target);
    } else if (rc == -EACCES) {
        poh_strbuf_printf(body,
                          "target \"%s\" is not allowed for module \"%s\": /probe reaches the "
                          "group's targets and what its probe.allow lists\n",
                          target, module);
    } else if (rc == 0 && debug) {
        poh_strbuf_puts(body, "Logs for the probe:\n");
        poh_strbuf_append(body, log.data ? log.data : "", log.len);
        poh_strbuf_puts(body, "\n\nMetrics that would have been returned:\n");
        rc = poh_render(body, &reg, 1, POH_FMT_TEXT);
        poh_strbuf_puts(body, "\n\nModule configuration:\n");
        poh_strbuf_append(body, mod.data ? mod.data : "", mod.len);
    } else if (rc == 0) {
        rc = poh_render(body, &reg, 1, fmt);
    }
done:
    poh_strbuf_free(&log);
    poh_strbuf_free(&mod);
    if (rc < 0)
        poh_span_set_status(root, POH_SPAN_STATUS_ERROR, strerror(-rc));
    poh_span_end(root);
    poh_registry_free(reg);
    runtime_unref(rt);
    return rc;
}

void poh_app_collector_status(poh_app_t *app, poh_status_rows_t *rows)
{
    runtime_t *rt = runtime_get(app);
    poh_collector_set_status(rt->set, rows);
    runtime_unref(rt);
}
