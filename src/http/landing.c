/* SPDX-License-Identifier: Apache-2.0 */
/* The landing page's history and pictures (see landing.h). */
#include "http/landing.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "collectors/collector.h"
#include "poh_version.h"

/* The last hour: a target keeps a point every 5 minutes (its hour's ratio
 * and mean need only a start: about 1 KB a target with its labels), a
 * stream one every 10 s (its charts). */
#define HOUR 3600.0
#define TARGET_SLOT 300.0
#define STREAM_SLOT 10.0
#define MAX_TRACKS 20000    /* targets + streams + members kept, whatever the config */
#define CELL 12             /* px of a target's cell */
#define CELLS_PER_ROW 50
#define CHART_W 240
#define CHART_H 48

enum { T_REQ, T_ACK, T_SUM, T_CNT, T_NV }; /* a target's cumulative counters */

typedef struct track {
    char *key;               /* "kind\0a\0b": kind t (target), s (stream), m (member), c (cluster) */
    char *a, *b;             /* group/target, cluster/stream, cluster/member, cluster */
    unsigned gen;            /* scrape that last saw it */
    double seen;             /* when (Unix seconds): unseen for an hour, it is dropped */
    size_t nv;               /* cumulative values kept per point */
    double *cur, *prev;      /* this scrape's and the previous scrape's */
    double *first;           /* the first scrape's: the hour's start until an hour has passed */
    double first_t;
    double *ring;            /* nslots x nv: the last scrape of each slot's period */
    long *sid;               /* which period (now / slot_secs) a slot holds; -1: none */
    double *st;              /* when that slot's scrape was (Unix seconds) */
    size_t nslots;
    double slot_secs;
    double gauge;            /* target: probe_success; member: lag; cluster: up */
    double last_latency;     /* target: mean call latency of the last scrape, NaN: unknown */
    double health;           /* member */
    char state[24];          /* member */
    /* stream: per configured latency, where its values start in cur: count,
     * then nb + 1 cumulative buckets */
    size_t nlat;
    struct lat {
        char *name;
        size_t off, nb;
        double *bounds;
    } *lat;
    struct track *next_order; /* insertion order */
} track_t;

struct poh_landing {
    pthread_mutex_t mu;
    track_t **map;           /* open addressing by key */
    size_t cap, used;
    track_t *first, *last;   /* insertion order */
    unsigned gen;
    double last_scrape;      /* Unix seconds; 0: none yet */
    unsigned long scrapes;
};

static uint64_t hash_key(const char *k, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return h;
}

poh_landing_t *poh_landing_new(void)
{
    poh_landing_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

static void track_free(track_t *t)
{
    for (size_t i = 0; i < t->nlat; i++) {
        free(t->lat[i].name);
        free(t->lat[i].bounds);
    }
    free(t->lat);
    free(t->cur);
    free(t->prev);
    free(t->first);
    free(t->ring);
    free(t->sid);
    free(t->st);
    free(t->key);
    free(t);
}

void poh_landing_free(poh_landing_t *l)
{
    if (!l)
        return;
    for (track_t *t = l->first, *n; t; t = n) {
        n = t->next_order;
        track_free(t);
    }
    free(l->map);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static size_t key_len(const char *key)
{
    size_t n = 0;
    for (int part = 0; part < 3; part++)
        n += strlen(key + n) + 1;
    return n;
}

static int grow(poh_landing_t *l)
{
    size_t cap = l->cap ? l->cap * 2 : 256;
    while (cap < 2 * (l->used + 1))
        cap *= 2;
    track_t **m = calloc(cap, sizeof *m);
    if (!m)
        return -1;
    for (track_t *t = l->first; t; t = t->next_order) {
        size_t i = hash_key(t->key, key_len(t->key)) & (cap - 1);
        while (m[i])
            i = (i + 1) & (cap - 1);
        m[i] = t;
    }
    free(l->map);
    l->map = m;
    l->cap = cap;
    return 0;
}

/* The track of (kind, a, b), created with nv values when new; NULL when
 * out of memory or over MAX_TRACKS. */
static track_t *track_get(poh_landing_t *l, char kind, const char *a, const char *b, size_t nv)
{
    size_t la = strlen(a), lb = strlen(b), len = 2 + la + 1 + lb + 1;
    char stack[512], *key = len <= sizeof stack ? stack : malloc(len);
    if (!key)
        return NULL;
    key[0] = kind;
    key[1] = '\0';
    memcpy(key + 2, a, la + 1);
    memcpy(key + 3 + la, b, lb + 1);
    uint64_t h = hash_key(key, len);
    track_t *t = NULL;
    if (l->cap) {
        for (size_t i = h & (l->cap - 1); l->map[i]; i = (i + 1) & (l->cap - 1))
            if (key_len(l->map[i]->key) == len && memcmp(l->map[i]->key, key, len) == 0) {
                t = l->map[i];
                goto out;
            }
    }
    if (l->used >= MAX_TRACKS || ((l->used + 1) * 2 > l->cap && grow(l) < 0))
        goto out;
    t = calloc(1, sizeof *t);
    if (!t)
        goto out;
    t->slot_secs = kind == 's' ? STREAM_SLOT : TARGET_SLOT;
    t->nslots = nv ? (size_t)(HOUR / t->slot_secs) : 0;
    if (!(t->key = malloc(len)) || !(t->cur = calloc(nv ? nv : 1, sizeof *t->cur)) ||
        !(t->prev = calloc(nv ? nv : 1, sizeof *t->prev)) ||
        !(t->first = calloc(nv ? nv : 1, sizeof *t->first)) ||
        !(t->ring = calloc(t->nslots * nv + 1, sizeof *t->ring)) ||
        !(t->sid = calloc(t->nslots + 1, sizeof *t->sid)) ||
        !(t->st = calloc(t->nslots + 1, sizeof *t->st))) {
        track_free(t);
        t = NULL;
        goto out;
    }
    memcpy(t->key, key, len);
    t->a = t->key + 2;
    t->b = t->a + la + 1;
    t->nv = nv;
    t->gauge = NAN;
    t->last_latency = NAN;
    t->health = NAN;
    for (size_t i = 0; i < t->nslots; i++)
        t->sid[i] = -1;
    size_t i = h & (l->cap - 1);
    while (l->map[i])
        i = (i + 1) & (l->cap - 1);
    l->map[i] = t;
    l->used++;
    if (l->last)
        l->last->next_order = t;
    else
        l->first = t;
    l->last = t;
out:
    if (key != stack)
        free(key);
    return t;
}

/* First sight of a track in this scrape: its sums start again. */
static void touch(poh_landing_t *l, track_t *t)
{
    if (t->gen == l->gen)
        return;
    t->gen = l->gen;
    memset(t->cur, 0, t->nv * sizeof *t->cur);
}

typedef struct visit {
    poh_landing_t *l;
    int field;
    const char *lat;         /* on_latency: the latency's name */
    const poh_config_t *cfg;
} visit_t;

static void on_target(void *ctx, const poh_series_t *s, const char *const *v, size_t n)
{
    visit_t *x = ctx;
    if (n < 2)
        return;
    track_t *t = track_get(x->l, 't', v[0], v[1], T_NV);
    if (!t)
        return;
    touch(x->l, t);
    if (x->field < 0)
        t->gauge = poh_series_value(s);
    else if (x->field == T_SUM) {
        t->cur[T_SUM] += poh_series_value(s);
        t->cur[T_CNT] += (double)poh_histogram_count(s);
    } else
        t->cur[x->field] += poh_series_value(s);
}

static void on_changes(void *ctx, const poh_series_t *s, const char *const *v, size_t n)
{
    visit_t *x = ctx;
    if (n < 3 || strcmp(v[2], "insert") != 0)
        return;
    for (track_t *t = x->l->first; t; t = t->next_order)
        if (t->key[0] == 's' && !strcmp(t->a, v[0]) && !strcmp(t->b, v[1])) {
            touch(x->l, t);
            t->cur[0] += poh_series_value(s);
        }
}

static void on_latency(void *ctx, const poh_series_t *s, const char *const *v, size_t n)
{
    visit_t *x = ctx;
    if (n < 2)
        return;
    for (track_t *t = x->l->first; t; t = t->next_order) {
        if (t->key[0] != 's' || strcmp(t->a, v[0]) || strcmp(t->b, v[1]))
            continue;
        struct lat *lt = NULL;
        for (size_t k = 0; k < t->nlat && !lt; k++)
            if (!strcmp(t->lat[k].name, x->lat))
                lt = &t->lat[k];
        if (!lt)
            continue;
        uint64_t cum[POH_MAX_BUCKETS + 1];
        size_t nb = poh_histogram_read(s, cum, POH_MAX_BUCKETS + 1);
        if (nb != lt->nb + 1)
            return;
        touch(x->l, t);
        t->cur[lt->off] += (double)poh_histogram_count(s);
        for (size_t i = 0; i < nb; i++)
            t->cur[lt->off + 1 + i] += (double)cum[i];
    }
}

/* Labels cluster, shard (empty for a replica set), member[, state]. */
static void on_member(void *ctx, const poh_series_t *s, const char *const *v, size_t n)
{
    visit_t *x = ctx;
    if (n < 3)
        return;
    track_t *t = track_get(x->l, 'm', v[0], v[2], 0);
    if (!t)
        return;
    double val = poh_series_value(s);
    if (x->field == 0 && n >= 4 && val == 1)
        snprintf(t->state, sizeof t->state, "%s", v[3]);
    else if (x->field == 1)
        t->gauge = val;
    else if (x->field == 2)
        t->health = val;
    t->gen = x->l->gen;
}

/* Labels cluster, shard: the cluster's own (router or replica set) only. */
static void on_cluster(void *ctx, const poh_series_t *s, const char *const *v, size_t n)
{
    visit_t *x = ctx;
    track_t *t = n >= 1 && (n < 2 || !v[1][0]) ? track_get(x->l, 'c', v[0], "", 0) : NULL;
    if (t) {
        t->gauge = poh_series_value(s);
        t->gen = x->l->gen;
    }
}

/* A stream's track, emptied and made for nv values (its history is for
 * other latencies or buckets). */
static int reshape(track_t *t, size_t nv)
{
    double *cur = calloc(nv, sizeof *cur), *prev = calloc(nv, sizeof *prev),
           *first = calloc(nv, sizeof *first), *ring = calloc(t->nslots * nv, sizeof *ring);
    if (!cur || !prev || !first || !ring) {
        free(cur), free(prev), free(first), free(ring);
        return -1;
    }
    free(t->cur), free(t->prev), free(t->first), free(t->ring);
    t->cur = cur, t->prev = prev, t->first = first, t->ring = ring;
    t->nv = nv;
    t->first_t = 0;
    for (size_t i = 0; i < t->nslots; i++)
        t->sid[i] = -1;
    for (size_t i = 0; i < t->nlat; i++) {
        free(t->lat[i].name);
        free(t->lat[i].bounds);
    }
    free(t->lat);
    t->lat = NULL;
    t->nlat = 0;
    return 0;
}

/* The change streams of the configuration, with room for their latencies
 * (the histogram's bounds are the stream's buckets). */
static void streams_from_config(poh_landing_t *l, const poh_config_t *cfg, double now)
{
    for (size_t c = 0; c < cfg->mongodb_count; c++)
        for (size_t i = 0; i < cfg->mongodb[c].change_streams_count; i++) {
            const poh_config_mongo_stream_t *cs = &cfg->mongodb[c].change_streams[i];
            size_t nb = cs->buckets_count ? cs->buckets_count : poh_default_buckets_len;
            size_t nv = 1 + cs->latencies_count * (1 + nb + 1);
            track_t *t = track_get(l, 's', cfg->mongodb[c].name, cs->name, nv);
            if (t)
                t->seen = now; /* configured: kept while it is */
            if (t && t->nv != nv && reshape(t, nv) < 0)
                continue; /* a reload changed its latencies or buckets */
            if (!t || t->lat)
                continue;
            t->lat = calloc(cs->latencies_count ? cs->latencies_count : 1, sizeof *t->lat);
            if (!t->lat)
                continue;
            for (size_t k = 0; k < cs->latencies_count; k++) {
                struct lat *lt = &t->lat[k];
                lt->name = strdup(cs->latencies[k].name);
                lt->bounds = malloc(nb * sizeof *lt->bounds);
                if (!lt->name || !lt->bounds) {
                    free(lt->name);
                    free(lt->bounds);
                    break;
                }
                memcpy(lt->bounds, cs->buckets_count ? cs->buckets : poh_default_buckets,
                       nb * sizeof *lt->bounds);
                lt->nb = nb;
                lt->off = 1 + k * (1 + nb + 1);
                t->nlat++;
            }
        }
}

/* Drop what no scrape has shown for an hour (targets, streams or members a
 * reload removed), so the history is bounded by what is configured. */
static void prune(poh_landing_t *l, double now)
{
    bool stale = false;
    for (track_t *t = l->first; t && !stale; t = t->next_order) {
        if (t->gen == l->gen || t->seen == 0)
            t->seen = now;
        stale = t->seen < now - HOUR;
    }
    if (!stale)
        return;
    track_t *keep = NULL, *tail = NULL;
    size_t used = 0;
    for (track_t *t = l->first, *n; t; t = n) {
        n = t->next_order;
        if (t->gen == l->gen || t->seen == 0)
            t->seen = now;
        if (t->seen < now - HOUR) {
            track_free(t);
            continue;
        }
        t->next_order = NULL;
        if (tail)
            tail->next_order = t;
        else
            keep = t;
        tail = t;
        used++;
    }
    l->first = keep;
    l->last = tail;
    l->used = used;
    free(l->map);
    l->map = NULL;
    l->cap = 0;
    if (used && grow(l) < 0) { /* no map: start over rather than keep a broken one */
        for (track_t *t = l->first, *n; t; t = n) {
            n = t->next_order;
            track_free(t);
        }
        l->first = l->last = NULL;
        l->used = 0;
    }
}

/* Does a stream before (c, i, k) in the configuration have a latency of
 * the same name (so its family was visited already)? */
static bool latency_seen_before(const poh_config_t *cfg, size_t c, size_t i, size_t k)
{
    const char *name = cfg->mongodb[c].change_streams[i].latencies[k].name;
    for (size_t c2 = 0; c2 <= c; c2++)
        for (size_t i2 = 0; i2 < cfg->mongodb[c2].change_streams_count; i2++) {
            const poh_config_mongo_stream_t *cs = &cfg->mongodb[c2].change_streams[i2];
            for (size_t k2 = 0; k2 < cs->latencies_count; k2++) {
                if (c2 == c && i2 == i && k2 == k)
                    return false;
                if (!strcmp(cs->latencies[k2].name, name))
                    return true;
            }
        }
    return false;
}

void poh_landing_observe(void *ctx, poh_registry_t *const *regs, size_t n,
                         const poh_config_t *cfg, double now)
{
    poh_landing_t *l = ctx;
    pthread_mutex_lock(&l->mu);
    l->gen++;
    streams_from_config(l, cfg, now);
    for (size_t r = 0; r < n; r++) {
        visit_t x = {.l = l, .cfg = cfg, .field = -1};
        poh_registry_visit(regs[r], "poh_probe_success", on_target, &x);
        x.field = T_REQ;
        poh_registry_visit(regs[r], "poh_requests_total", on_target, &x);
        x.field = T_ACK;
        poh_registry_visit(regs[r], "poh_ack_total", on_target, &x);
        x.field = T_SUM;
        poh_registry_visit(regs[r], "poh_grpc_method_latency_seconds", on_target, &x);
        poh_registry_visit(regs[r], "poh_mongodb_changes_total", on_changes, &x);
        /* each latency family once, whichever streams have it */
        for (size_t c = 0; c < cfg->mongodb_count; c++)
            for (size_t i = 0; i < cfg->mongodb[c].change_streams_count; i++) {
                const poh_config_mongo_stream_t *cs = &cfg->mongodb[c].change_streams[i];
                for (size_t k = 0; k < cs->latencies_count; k++) {
                    const char *name = cs->latencies[k].name;
                    if (latency_seen_before(cfg, c, i, k))
                        continue;
                    char fam[256];
                    snprintf(fam, sizeof fam, "poh_%s_latency_seconds", name);
                    x.lat = name;
                    poh_registry_visit(regs[r], fam, on_latency, &x);
                }
            }
        x.field = 0;
        poh_registry_visit(regs[r], "poh_mongodb_member_state", on_member, &x);
        x.field = 1;
        poh_registry_visit(regs[r], "poh_mongodb_replication_lag_seconds", on_member, &x);
        x.field = 2;
        poh_registry_visit(regs[r], "poh_mongodb_member_health", on_member, &x);
        poh_registry_visit(regs[r], "poh_mongodb_up", on_cluster, &x);
    }
    for (track_t *t = l->first; t; t = t->next_order) {
        if (t->gen != l->gen || !t->nv)
            continue;
        if (t->key[0] == 't') {
            double dc = t->cur[T_CNT] - t->prev[T_CNT];
            t->last_latency = dc > 0 ? (t->cur[T_SUM] - t->prev[T_SUM]) / dc : NAN;
        }
        memcpy(t->prev, t->cur, t->nv * sizeof *t->cur);
        if (t->first_t == 0) {
            memcpy(t->first, t->cur, t->nv * sizeof *t->cur);
            t->first_t = now;
        }
        long id = (long)floor(now / t->slot_secs);
        size_t slot = (size_t)id % t->nslots;
        t->sid[slot] = id;
        t->st[slot] = now;
        memcpy(t->ring + slot * t->nv, t->cur, t->nv * sizeof *t->cur);
    }
    prune(l, now);
    l->last_scrape = now;
    l->scrapes++;
    pthread_mutex_unlock(&l->mu);
}

/* ---------------------------------------------------------------- page */

static void num(poh_strbuf_t *h, double v)
{
    char b[32];
    poh_format_double(b, v);
    poh_strbuf_puts(h, b);
}

/* The oldest point of the last hour and the newest (indexes into the ring),
 * or -1 when there are fewer than two. */
static void hour_span(const track_t *t, double now, int *oldest, int *newest)
{
    *oldest = *newest = -1;
    long lo = 0, hi = -1, now_id = (long)floor(now / t->slot_secs);
    for (size_t i = 0; i < t->nslots; i++) {
        long m = t->sid[i];
        if (m < 0 || m <= now_id - (long)t->nslots)
            continue;
        if (*oldest < 0 || m < lo)
            lo = m, *oldest = (int)i;
        if (*newest < 0 || m > hi)
            hi = m, *newest = (int)i;
    }
    if (*oldest == *newest)
        *oldest = *newest = -1;
}

/* The values at the start of the last hour: the first scrape's while the
 * exporter has run less than an hour (every point kept is later), else the
 * oldest point kept from the hour. NULL: nothing before this scrape. */
static const double *hour_base(const track_t *t, double now)
{
    if (t->first_t > now - HOUR)
        return t->first_t < now ? t->first : NULL;
    int o, n;
    hour_span(t, now, &o, &n);
    return o >= 0 ? t->ring + (size_t)o * t->nv : NULL;
}

enum { UP, SLOW, DOWN };
static const char *const colours[] = {"#1a9850", "#fdae61", "#d73027"};

static int cell_state(const track_t *t, double slow)
{
    if (!(t->gauge == 1))
        return DOWN; /* or never probed */
    if (!isnan(t->last_latency) && t->last_latency > slow)
        return SLOW;
    return UP;
}

static double group_timeout(const poh_config_t *cfg, const char *group)
{
    for (size_t i = 0; i < cfg->grpc_count; i++)
        if (!strcmp(cfg->grpc[i].name, group))
            return cfg->grpc[i].timeout;
    return 2;
}

static void render_groups(poh_landing_t *l, const poh_config_t *cfg, double now,
                          poh_strbuf_t *h)
{
    for (size_t g = 0; g < cfg->grpc_count; g++) {
        const char *name = cfg->grpc[g].name;
        double slow = group_timeout(cfg, name) / 2;
        size_t up = 0, sl = 0, down = 0;
        double req = 0, ack = 0, sum = 0, cnt = 0;
        for (track_t *t = l->first; t; t = t->next_order) {
            if (t->key[0] != 't' || strcmp(t->a, name) || t->gen != l->gen)
                continue;
            int st = cell_state(t, slow);
            st == UP ? up++ : st == SLOW ? sl++ : down++;
            const double *a = hour_base(t, now), *b = t->cur;
            if (a) {
                req += b[T_REQ] - a[T_REQ], ack += b[T_ACK] - a[T_ACK];
                sum += b[T_SUM] - a[T_SUM], cnt += b[T_CNT] - a[T_CNT];
            }
        }
        size_t total = up + sl + down;
        poh_strbuf_puts(h, "<section class=\"group\"><h3>");
        poh_html_escape(h, name);
        poh_strbuf_printf(h, "</h3>\n<p class=\"summary\" data-group=\"");
        poh_html_escape(h, name);
        poh_strbuf_printf(h, "\" data-up=\"%zu\" data-slow=\"%zu\" data-down=\"%zu\">%zu targets: "
                             "<b class=\"up\">%zu up</b>, <b class=\"slow\">%zu slow</b> (over "
                             "%.3g s), <b class=\"down\">%zu down</b>; last hour: ",
                          up, sl, down, total, up, sl, slow, down);
        if (req > 0)
            poh_strbuf_printf(h, "%.2f%% of %.0f calls acked, mean latency %.1f ms", 100 * ack / req,
                              req, cnt > 0 ? 1000 * sum / cnt : 0);
        else
            poh_strbuf_puts(h, "no calls between scrapes yet");
        poh_strbuf_puts(h, "</p>\n");
        if (!total) {
            poh_strbuf_puts(h, "</section>\n");
            continue;
        }
        /* big cells for a few targets, small ones for a thousand */
        size_t cell = total <= 100 ? 2 * CELL : CELL;
        size_t rows = (total + CELLS_PER_ROW - 1) / CELLS_PER_ROW;
        size_t cols = total < CELLS_PER_ROW ? total : CELLS_PER_ROW;
        poh_strbuf_printf(h, "<svg class=\"grid\" width=\"%zu\" height=\"%zu\" role=\"img\">",
                          cols * cell, rows * cell);
        size_t i = 0;
        for (track_t *t = l->first; t; t = t->next_order) {
            if (t->key[0] != 't' || strcmp(t->a, name) || t->gen != l->gen)
                continue;
            double hreq = 0, hack = 0, hsum = 0, hcnt = 0;
            const double *a = hour_base(t, now), *b = t->cur;
            if (a) {
                hreq = b[T_REQ] - a[T_REQ], hack = b[T_ACK] - a[T_ACK];
                hsum = b[T_SUM] - a[T_SUM], hcnt = b[T_CNT] - a[T_CNT];
            }
            poh_strbuf_printf(h, "<rect x=\"%zu\" y=\"%zu\" width=\"%zu\" height=\"%zu\" "
                                 "fill=\"%s\" data-t=\"",
                              (i % CELLS_PER_ROW) * cell, (i / CELLS_PER_ROW) * cell, cell - 1,
                              cell - 1, colours[cell_state(t, slow)]);
            poh_html_escape(h, t->b);
            poh_strbuf_puts(h, "\" data-success=\"");
            num(h, t->gauge);
            poh_strbuf_puts(h, "\" data-requests=\"");
            num(h, t->cur[T_REQ]);
            poh_strbuf_puts(h, "\" data-acks=\"");
            num(h, t->cur[T_ACK]);
            poh_strbuf_puts(h, "\"><title>");
            poh_html_escape(h, t->b);
            static const char *const words[] = {"up", "slow", "down"};
            poh_strbuf_printf(h, ": %s", words[cell_state(t, slow)]);
            if (!isnan(t->last_latency))
                poh_strbuf_printf(h, ", %.1f ms", 1000 * t->last_latency);
            if (hreq > 0)
                poh_strbuf_printf(h, "; last hour %.1f%% acked, mean %.1f ms", 100 * hack / hreq,
                                  hcnt > 0 ? 1000 * hsum / hcnt : 0);
            poh_strbuf_puts(h, "</title></rect>");
            i++;
        }
        poh_strbuf_puts(h, "</svg></section>\n");
    }
}

/* histogram_quantile over the bucket increases between two points. */
static double quantile(double q, const struct lat *lt, const double *a, const double *b)
{
    double total = b[lt->off + 1 + lt->nb] - a[lt->off + 1 + lt->nb];
    if (!(total > 0))
        return NAN;
    double rank = q * total, below = 0, lo = 0;
    for (size_t i = 0; i <= lt->nb; i++) {
        double c = b[lt->off + 1 + i] - a[lt->off + 1 + i];
        if (c >= rank) {
            if (i == lt->nb)
                return lt->nb ? lt->bounds[lt->nb - 1] : NAN;
            double hi = lt->bounds[i], inb = c - below;
            return inb > 0 ? lo + (hi - lo) * (rank - below) / inb : hi;
        }
        below = c;
        lo = lt->bounds[i];
    }
    return NAN;
}

/* A line chart over the last hour: xs are seconds before now (0..HOUR),
 * NaN ys are gaps. */
static void chart(poh_strbuf_t *h, const char *title, const char *cls, const double *xs,
                  const double *ys, size_t n, const char *unit, double scale)
{
    /* the hour, or as much of it as there is history for (at least a minute) */
    double max = 0, span = 60;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(ys[i]) && ys[i] > max)
            max = ys[i];
        if (xs[i] > span)
            span = xs[i];
    }
    if (span > HOUR)
        span = HOUR;
    poh_strbuf_printf(h, "<figure class=\"%s\"><figcaption>", cls);
    poh_html_escape(h, title);
    double lastv = n ? ys[n - 1] : NAN;
    if (!isnan(lastv))
        poh_strbuf_printf(h, ": <b>%.3g %s</b>", lastv * scale, unit);
    char period[32];
    if (span >= HOUR - 1)
        snprintf(period, sizeof period, "last hour");
    else
        snprintf(period, sizeof period, "last %.0f min", ceil(span / 60));
    poh_strbuf_printf(h, " <small>(max %.3g %s, %s)</small></figcaption>"
                         "<svg width=\"%d\" height=\"%d\" role=\"img\"><rect width=\"%d\" "
                         "height=\"%d\" fill=\"#f7f7f7\"/><polyline fill=\"none\" "
                         "stroke=\"#2c7bb6\" stroke-width=\"1.5\" points=\"",
                      max * scale, unit, period, CHART_W, CHART_H, CHART_W, CHART_H);
    double lx = -1, ly = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(ys[i]))
            continue;
        lx = 2 + (CHART_W - 5) * (1 - xs[i] / span);
        /* zero at the bottom, the maximum at 80% of the height */
        ly = CHART_H - 3 - (max > 0 ? ys[i] / max * 0.8 * (CHART_H - 6) : 0);
        poh_strbuf_printf(h, "%.1f,%.1f ", lx, ly);
    }
    poh_strbuf_puts(h, "\"/>");
    if (lx >= 0) /* the newest point, visible even alone */
        poh_strbuf_printf(h, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"#2c7bb6\"/>", lx, ly);
    poh_strbuf_puts(h, "</svg></figure>\n");
}

static void render_streams(poh_landing_t *l, double now, poh_strbuf_t *h)
{
    size_t cap = (size_t)(HOUR / STREAM_SLOT);
    int *idx = malloc(cap * sizeof *idx);
    double *xs = malloc(cap * sizeof *xs), *ys = malloc(cap * sizeof *ys);
    for (track_t *t = l->first; t && idx && xs && ys; t = t->next_order) {
        if (t->key[0] != 's' || !t->nv || t->nslots > cap)
            continue;
        /* points in time order; a chart value needs the point before */
        size_t np = 0;
        long now_id = (long)floor(now / t->slot_secs);
        for (long m = now_id - (long)t->nslots + 1; m <= now_id; m++) {
            size_t s = (size_t)(m % (long)t->nslots);
            if (m >= 0 && t->sid[s] == m)
                idx[np++] = (int)s;
        }
        poh_strbuf_puts(h, "<section class=\"stream\" data-cluster=\"");
        poh_html_escape(h, t->a);
        poh_strbuf_puts(h, "\" data-stream=\"");
        poh_html_escape(h, t->b);
        poh_strbuf_puts(h, "\" data-inserts=\"");
        num(h, t->cur[0]);
        poh_strbuf_puts(h, "\"><h3>");
        poh_html_escape(h, t->a);
        poh_strbuf_puts(h, " / ");
        poh_html_escape(h, t->b);
        poh_strbuf_puts(h, "</h3>\n");
        size_t n = 0;
        for (size_t i = 1; i < np; i++) {
            const double *a = t->ring + (size_t)idx[i - 1] * t->nv,
                         *b = t->ring + (size_t)idx[i] * t->nv;
            double dt = t->st[idx[i]] - t->st[idx[i - 1]];
            xs[n] = now - t->st[idx[i]];
            ys[n++] = dt > 0 ? (b[0] - a[0]) / dt : NAN;
        }
        chart(h, "Tx/s (inserts)", "chart tx", xs, ys, n, "/s", 1);
        for (size_t k = 0; k < t->nlat; k++) {
            for (int qi = 0; qi < 2; qi++) {
                double q = qi ? 0.99 : 0.5;
                n = 0;
                for (size_t i = 1; i < np; i++)
                    ys[n++] = quantile(q, &t->lat[k], t->ring + (size_t)idx[i - 1] * t->nv,
                                       t->ring + (size_t)idx[i] * t->nv);
                char title[160];
                snprintf(title, sizeof title, "%s latency p%s", t->lat[k].name, qi ? "99" : "50");
                chart(h, title, "chart latency", xs, ys, n, "ms", 1000);
            }
        }
        poh_strbuf_puts(h, "</section>\n");
    }
    free(idx);
    free(xs);
    free(ys);
}

static void render_clusters(poh_landing_t *l, poh_strbuf_t *h)
{
    for (track_t *c = l->first; c; c = c->next_order) {
        if (c->key[0] != 'c')
            continue;
        poh_strbuf_puts(h, "<section class=\"cluster\"><h3>");
        poh_html_escape(h, c->a);
        poh_strbuf_printf(h, " <small class=\"%s\">%s</small></h3>\n<table><tr><th>Member</th>"
                             "<th>State</th><th>Health</th><th>Lag</th></tr>\n",
                          c->gauge == 1 ? "up" : "down", c->gauge == 1 ? "up" : "down");
        for (track_t *m = l->first; m; m = m->next_order) {
            if (m->key[0] != 'm' || strcmp(m->a, c->a) || m->gen != l->gen)
                continue;
            bool primary = !strcmp(m->state, "PRIMARY"), sec = !strcmp(m->state, "SECONDARY");
            poh_strbuf_puts(h, "<tr data-member=\"");
            poh_html_escape(h, m->b);
            poh_strbuf_puts(h, "\"><td>");
            poh_html_escape(h, m->b);
            poh_strbuf_printf(h, "</td><td class=\"%s\">", primary || sec ? "up" : "down");
            poh_html_escape(h, m->state[0] ? m->state : "?");
            poh_strbuf_printf(h, "</td><td>%s</td><td>", m->health == 1 ? "ok" : "unhealthy");
            if (!isnan(m->gauge))
                poh_strbuf_printf(h, "%.3g s", m->gauge);
            poh_strbuf_puts(h, "</td></tr>\n");
        }
        poh_strbuf_puts(h, "</table></section>\n");
    }
}

void poh_landing_render(poh_landing_t *l, const poh_config_t *cfg, const char *host,
                        poh_strbuf_t *h)
{
    pthread_mutex_lock(&l->mu);
    if (!l->scrapes) {
        poh_strbuf_puts(h, "<section class=\"first\"><h2>Nothing has scraped this exporter yet"
                           "</h2>\n<p>The pictures below fill at each scrape of ");
        poh_html_escape(h, cfg->web.telemetry_path);
        poh_strbuf_puts(h, ". Add this job to Prometheus' <code>scrape_configs</code>:</p>\n"
                           "<pre>scrape_configs:\n  - job_name: poh_exporter\n"
                           "    scrape_interval: 15s\n    metrics_path: ");
        poh_html_escape(h, cfg->web.telemetry_path);
        poh_strbuf_puts(h, "\n    static_configs:\n      - targets: [\"");
        poh_html_escape(h, host && *host ? host : "HOST:8000");
        poh_strbuf_puts(h, "\"]</pre></section>\n");
        pthread_mutex_unlock(&l->mu);
        return;
    }
    double now = l->last_scrape;
    char when[64];
    time_t ts = (time_t)l->last_scrape;
    struct tm tm;
    gmtime_r(&ts, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    poh_strbuf_printf(h, "<p class=\"asof\" data-scrape=\"%.3f\">As of the last scrape, %s "
                         "(%lu scrapes since start). The numbers are those that scrape returned."
                         "</p>\n",
                      l->last_scrape, when, l->scrapes);
    if (cfg->grpc_count) {
        poh_strbuf_puts(h, "<h2>gRPC targets</h2>\n");
        render_groups(l, cfg, now, h);
    }
    if (cfg->mongodb_count) {
        poh_strbuf_puts(h, "<h2>Change streams</h2>\n");
        render_streams(l, now, h);
        poh_strbuf_puts(h, "<h2>MongoDB clusters</h2>\n");
        render_clusters(l, h);
    }
    pthread_mutex_unlock(&l->mu);
}

static const char style[] =
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
    "h2{margin-top:1.5em;border-bottom:1px solid #ddd}h3{margin:.8em 0 .3em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;"
    "text-align:left}.up{color:#1a9850}.slow{color:#d08000}.down{color:#d73027}"
    "figure{display:inline-block;margin:0 1.5em .8em 0}figcaption{font-size:.9em}"
    "svg.grid rect:hover{stroke:#000}pre{background:#f4f4f4;padding:.6em}"
    ".asof{color:#555}";

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

static void status_latency(poh_strbuf_t *h, const poh_status_row_t *r)
{
    switch (r->latency_kind) {
    case POH_STATUS_LATENCY_S: poh_strbuf_printf(h, "%.3f s", r->latency); break;
    case POH_STATUS_LATENCY_MS: poh_strbuf_printf(h, "%.3f ms", r->latency * 1e3); break;
    case POH_STATUS_LATENCY_LAG: poh_strbuf_printf(h, "lag %.3f s", r->latency); break;
    case POH_STATUS_LATENCY_NONE: break;
    }
}

void poh_landing_status_rows(const poh_status_rows_t *rows, poh_strbuf_t *h)
{
    if (rows->len == 0 && !rows->failed)
        poh_strbuf_puts(h, "<tr><td colspan=\"5\">No collectors configured.</td></tr>\n");
    for (size_t i = 0; i < rows->len; i++) {
        const poh_status_row_t *r = &rows->items[i];
        poh_strbuf_puts(h, "<tr><td>");
        poh_html_escape(h, r->collector);
        poh_strbuf_puts(h, "</td><td>");
        poh_html_escape(h, r->target);
        poh_strbuf_puts(h, "</td><td>");
        poh_html_escape(h, r->result);
        poh_strbuf_puts(h, "</td><td>");
        status_latency(h, r);
        poh_strbuf_puts(h, "</td><td>");
        poh_html_escape(h, r->error);
        poh_strbuf_puts(h, "</td></tr>\n");
    }
}

void poh_landing_page(poh_landing_t *l, struct poh_app *app, const char *host, unsigned refresh,
                      poh_strbuf_t *h)
{
    poh_app_view_t *v = poh_app_acquire(app);
    const poh_config_t *cfg = poh_app_view_config(v);
    /* no favicon request: the page needs nothing but itself */
    poh_strbuf_puts(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<link rel=\"icon\" href=\"data:,\">");
    if (refresh)
        poh_strbuf_printf(h, "<meta http-equiv=\"refresh\" content=\"%u\">", refresh);
    poh_strbuf_printf(h, "<title>poh_exporter</title><style>%s</style></head><body>\n"
                         "<h1>poh_exporter</h1>\n<p>Prometheus exporter for the PoH/DAG network."
                         " Version " POH_VERSION " (revision " POH_REVISION "). <a href=\"",
                      style);
    poh_html_escape(h, cfg->web.telemetry_path);
    poh_strbuf_puts(h, "\">Metrics</a> (");
    poh_html_escape(h, cfg->web.telemetry_path);
    poh_strbuf_puts(h, ") &middot; <a href=\"/-/healthy\">/-/healthy</a> &middot; "
                       "<a href=\"/-/ready\">/-/ready</a>");
    if (refresh)
        poh_strbuf_printf(h, " &middot; this page reloads every %u s (<a href=\"/?refresh=0\">"
                             "stop</a>)", refresh);
    poh_strbuf_puts(h, "</p>\n<p>Configuration: ");
    poh_html_escape(h, cfg->source ? cfg->source : "<embedded>");
    poh_strbuf_puts(h, "</p>\n");
    if (l)
        poh_landing_render(l, cfg, host, h);
    poh_strbuf_puts(h, "<h2>Targets</h2>\n<table>\n<tr><th>Collector</th><th>Target</th>"
                       "<th>Last result</th><th>Latency</th><th>Error</th></tr>\n");
    poh_status_rows_t rows = POH_STATUS_ROWS_INIT;
    poh_app_collector_status(app, &rows);
    poh_landing_status_rows(&rows, h);
    poh_status_rows_free(&rows);
    poh_strbuf_puts(h, "</table>\n</body></html>\n");
    poh_app_release(v);
}
