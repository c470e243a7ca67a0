/* SPDX-License-Identifier: Apache-2.0 */
/* The front door (see web_gate.h). */
#include "http/web_gate.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/log.h"
#include "http/web_auth.h"
#include "http/web_config.h"

/* What a file looked like at the last attempt to load it. */
typedef struct file_sig {
    int err; /* errno of stat, 0 when it worked */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_sig_t;

#define WATCHED 4 /* the file, cert_file, key_file, client_ca_file */

struct poh_web_gen {
    atomic_uint refs;
    poh_web_config_t *cfg;
    poh_web_tls_t *tls;
    poh_web_auth_t *auth;
    pthread_mutex_t rate_mu;
    double tokens, refilled;   /* token bucket of rate_limit, under rate_mu */
};

struct poh_web_gate {
    char *path;
    bool tls;
    pthread_mutex_t mu;        /* gen */
    poh_web_gen_t *gen;
    pthread_mutex_t reload_mu; /* one reload at a time; sigs */
    char *watched[WATCHED];    /* paths of the last attempt */
    file_sig_t sigs[WATCHED];
    poh_self_t *self; /* NULL: not reported */
    poh_log_throttle_t log_throttle; /* failed-login lines: one a second */
};

static void gen_free(poh_web_gen_t *gen)
{
    poh_web_tls_unref(gen->tls);
    poh_web_auth_free(gen->auth);
    poh_web_config_free(gen->cfg);
    pthread_mutex_destroy(&gen->rate_mu);
    free(gen);
}

void poh_web_gen_release(poh_web_gen_t *gen)
{
    if (gen && atomic_fetch_sub(&gen->refs, 1) == 1)
        gen_free(gen);
}

/* Load path into a new generation. The errors go to err. */
static int gen_build(const char *path, poh_web_gen_t **out, poh_strbuf_t *err)
{
    *out = NULL;
    poh_web_gen_t *gen = calloc(1, sizeof *gen);
    if (!gen)
        return -ENOMEM;
    atomic_init(&gen->refs, 1);
    pthread_mutex_init(&gen->rate_mu, NULL);
    int rc = 0;
    if (path) {
        rc = poh_web_config_load(path, &gen->cfg, err);
        if (rc == 0 && gen->cfg->tls_enabled)
            rc = poh_web_tls_build(gen->cfg, &gen->tls, err);
        if (rc == 0) {
            bool oom = false;
            gen->auth = poh_web_auth_new(gen->cfg->users, gen->cfg->users_count, &oom);
            rc = oom ? -ENOMEM : 0;
        }
        if (rc == 0) {
            gen->tokens = gen->cfg->rate_limit.burst;
            gen->refilled = poh_now_mono();
        }
    }
    if (rc < 0) {
        gen_free(gen);
        return rc;
    }
    *out = gen;
    return 0;
}

static void sig_of(const char *path, file_sig_t *s)
{
    memset(s, 0, sizeof *s);
    if (!path)
        return;
    struct stat st;
    if (stat(path, &st) < 0) {
        s->err = errno;
        return;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime = st.st_mtim;
    s->ctime = st.st_ctim;
}

static bool sig_same(const file_sig_t *a, const file_sig_t *b)
{
    return a->err == b->err && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Under reload_mu: remember what the files look like now, and which files
 * gen (NULL: the file did not load) names. */
static void remember(poh_web_gate_t *g, const poh_web_gen_t *gen)
{
    const char *names[WATCHED] = {g->path, NULL, NULL, NULL};
    if (gen && gen->cfg) {
        names[1] = gen->cfg->tls.cert_file;
        names[2] = gen->cfg->tls.key_file;
        names[3] = gen->cfg->tls.client_ca_file;
    }
    for (int i = 1; i < WATCHED; i++) {
        /* a file that failed to load keeps the previous names watched */
        if (!gen && g->watched[i])
            continue;
        free(g->watched[i]);
        g->watched[i] = names[i] ? strdup(names[i]) : NULL;
    }
    for (int i = 0; i < WATCHED; i++)
        sig_of(i == 0 ? g->path : g->watched[i], &g->sigs[i]);
}

/* The errors of a failed load as one log line. */
static void log_errors(const char *what, poh_strbuf_t *err)
{
    if (err->data)
        for (char *p = err->data; *p; p++)
            if (*p == '\n')
                *p = p[1] ? ';' : '\0';
    POH_ERROR("http", "%s: %s", what, err->data ? err->data : "out of memory");
}

static void gen_metrics(poh_web_gate_t *g, const poh_web_gen_t *gen)
{
    if (g->self)
        poh_self_web_loaded(g->self, true, poh_now_real(),
                            gen->tls ? poh_web_tls_not_after(gen->tls) : -1);
}

int poh_web_gate_reload(poh_web_gate_t *g)
{
    if (!g->path)
        return 0;
    pthread_mutex_lock(&g->reload_mu);
    poh_strbuf_t err = POH_STRBUF_INIT;
    poh_web_gen_t *gen = NULL;
    int rc = gen_build(g->path, &gen, &err);
    if (rc == 0 && (gen->tls != NULL) != g->tls) {
        poh_strbuf_printf(&err, "%s: TLS was turned %s; that takes a restart\n", g->path,
                          g->tls ? "off" : "on");
        gen_free(gen);
        gen = NULL;
        rc = -EINVAL;
    }
    remember(g, gen);
    if (rc < 0) {
        if (g->self)
            poh_self_web_loaded(g->self, false, 0, -1);
        log_errors("web config reload failed, keeping the previous one", &err);
        poh_strbuf_free(&err);
        pthread_mutex_unlock(&g->reload_mu);
        return -EINVAL;
    }
    pthread_mutex_lock(&g->mu);
    poh_web_gen_t *old = g->gen;
    g->gen = gen;
    pthread_mutex_unlock(&g->mu);
    poh_web_gen_release(old);
    gen_metrics(g, gen);
    poh_strbuf_free(&err);
    pthread_mutex_unlock(&g->reload_mu);
    POH_INFO("http", "web config %s loaded (TLS %s, %zu basic auth users)", g->path,
             gen->tls ? "on" : "off", gen->cfg->users_count);
    return 0;
}

void poh_web_gate_poll(poh_web_gate_t *g)
{
    if (!g || !g->path)
        return;
    bool changed = false;
    pthread_mutex_lock(&g->reload_mu);
    for (int i = 0; i < WATCHED && !changed; i++) {
        file_sig_t now;
        sig_of(i == 0 ? g->path : g->watched[i], &now);
        changed = !sig_same(&now, &g->sigs[i]);
    }
    pthread_mutex_unlock(&g->reload_mu);
    if (changed)
        poh_web_gate_reload(g);
}

int poh_web_gate_new(const char *path, poh_self_t *self, poh_web_gate_t **out,
                     poh_strbuf_t *err)
{
    *out = NULL;
    poh_web_gate_t *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    pthread_mutex_init(&g->mu, NULL);
    pthread_mutex_init(&g->reload_mu, NULL);
    poh_log_throttle_init(&g->log_throttle, 1.0);
    int rc = -ENOMEM;
    if (path && !(g->path = strdup(path)))
        goto err;
    if ((rc = gen_build(path, &g->gen, err)) < 0)
        goto err;
    g->tls = g->gen->tls != NULL;
    remember(g, g->gen);
    if (path && self) {
        g->self = self;
        gen_metrics(g, g->gen);
    }
    if (path)
        POH_INFO("http", "web config %s loaded (TLS %s, %zu basic auth users)", path,
                 g->tls ? "on" : "off", g->gen->cfg->users_count);
    *out = g;
    return 0;
err:
    poh_web_gate_free(g);
    return rc;
}

void poh_web_gate_free(poh_web_gate_t *g)
{
    if (!g)
        return;
    poh_web_gen_release(g->gen);
    for (int i = 0; i < WATCHED; i++)
        free(g->watched[i]);
    free(g->path);
    pthread_mutex_destroy(&g->mu);
    pthread_mutex_destroy(&g->reload_mu);
    poh_log_throttle_fini(&g->log_throttle);
    free(g);
}

int poh_web_gate_check_file(const char *path, poh_strbuf_t *err)
{
    poh_web_gen_t *gen = NULL;
    int rc = gen_build(path, &gen, err);
    if (gen)
        gen_free(gen);
    return rc;
}

bool poh_web_gate_tls(const poh_web_gate_t *g)
{
    return g->tls;
}

poh_web_gen_t *poh_web_gate_acquire(poh_web_gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    poh_web_gen_t *gen = g->gen;
    atomic_fetch_add(&gen->refs, 1);
    pthread_mutex_unlock(&g->mu);
    return gen;
}

poh_web_tls_t *poh_web_gen_tls(const poh_web_gen_t *gen)
{
    return gen->tls;
}

bool poh_web_gen_needs_auth(const poh_web_gen_t *gen)
{
    return gen->auth != NULL;
}

const poh_config_kv_t *poh_web_gen_headers(const poh_web_gen_t *gen, size_t *n)
{
    *n = gen->cfg ? gen->cfg->http.headers_count : 0;
    return gen->cfg ? gen->cfg->http.headers : NULL;
}

static bool take_token(poh_web_gen_t *gen)
{
    const poh_web_rate_limit_t *rl = &gen->cfg->rate_limit;
    pthread_mutex_lock(&gen->rate_mu);
    double now = poh_now_mono();
    gen->tokens += (now - gen->refilled) / rl->interval;
    if (gen->tokens > rl->burst)
        gen->tokens = rl->burst;
    gen->refilled = now;
    bool ok = gen->tokens >= 1;
    if (ok)
        gen->tokens -= 1;
    pthread_mutex_unlock(&gen->rate_mu);
    return ok;
}

/* A user name as it may be logged: printable ASCII, quotes and backslashes
 * replaced, at most 64 characters. */
static void shown_user(const char *user, char out[72])
{
    size_t n = 0;
    for (; user[n] && n < 64; n++)
        out[n] = isprint((unsigned char)user[n]) && user[n] != '"' && user[n] != '\\' ? user[n]
                                                                                      : '?';
    strcpy(out + n, user[n] ? "..." : "");
}

static void log_failure(poh_web_gate_t *g, const char *user, const char *client,
                        const char *reason)
{
    unsigned long suppressed;
    if (!poh_log_throttle_pass(&g->log_throttle, &suppressed))
        return;
    char shown[72];
    shown_user(user ? user : "", shown);
    POH_WARN("http",
             "authentication failed: user=\"%s\" client=%s reason=%s (%lu more failures not "
             "logged in the last second)",
             shown, client ? client : "?", reason, suppressed);
}

poh_admit_t poh_web_gen_admit(poh_web_gate_t *g, poh_web_gen_t *gen, const char *user,
                              const char *password, const char *client)
{
    if (gen->cfg && gen->cfg->rate_limit.interval > 0 && !take_token(gen))
        return POH_ADMIT_RATE_LIMITED;
    if (!gen->auth)
        return POH_ADMIT_OK;
    if (!user || !password) {
        /* a browser's first request, or a scraper without credentials:
         * counted, not logged */
        if (g->self)
            poh_self_web_auth_failure(g->self, POH_SELF_AUTH_NO_CREDENTIALS);
        return POH_ADMIT_UNAUTHORIZED;
    }
    if (poh_web_auth_check(gen->auth, user, password))
        return POH_ADMIT_OK;
    if (g->self)
        poh_self_web_auth_failure(g->self, POH_SELF_AUTH_BAD_CREDENTIALS);
    log_failure(g, user, client, "bad_credentials");
    return POH_ADMIT_UNAUTHORIZED;
}
