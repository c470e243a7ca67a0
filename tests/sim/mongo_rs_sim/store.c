/* SPDX-License-Identifier: Apache-2.0 */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIM_MAX_BSON (16 * 1024 * 1024)

const char *const sim_ev_names[SIM_EV_COUNT] = {"insert", "update", "replace", "delete"};
const char *const sim_ddl_names[SIM_DDL_COUNT] = {"drop", "rename", "dropDatabase"};

int sim_err_set(sim_err_t *e, int code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int64_t sim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sim_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* ---- documents ------------------------------------------------------------- */

static sim_doc_t *doc_alloc(const bson_t *b)
{
    sim_doc_t *d = malloc(sizeof *d + b->len);
    if (!d)
        return NULL;
    memset(d, 0, sizeof *d);
    d->refs = 1;
    d->len = b->len;
    memcpy(d->data, bson_get_data(b), b->len);
    return d;
}

sim_doc_t *sim_doc_new(const bson_t *b)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, b, "_id"))
        return NULL;
    sim_doc_t *d = doc_alloc(b);
    if (!d)
        return NULL;
    d->id_off = it.d1;
    d->id_len = it.next_off - it.d1;
    d->id_type = (uint8_t)bson_iter_type(&it);
    return d;
}

sim_doc_t *sim_doc_new_raw(const bson_t *b)
{
    return doc_alloc(b);
}

void sim_doc_unref(sim_doc_t *d)
{
    if (d && --d->refs == 0)
        free(d);
}

void sim_doc_view(const sim_doc_t *d, bson_t *out)
{
    bson_init_static(out, d->data, d->len);
}

static uint64_t doc_hash(const sim_doc_t *d)
{
    return hash_bytes(1469598103934665603ULL ^ d->id_type, d->data + d->id_off, d->id_len);
}

/* ---- collections ------------------------------------------------------------- */

static size_t coll_probe(const sim_coll_t *c, uint8_t type, const uint8_t *val, uint32_t len)
{
    size_t mask = c->cap - 1;
    size_t i = hash_bytes(1469598103934665603ULL ^ type, val, len) & mask;
    while (c->slots[i]) {
        const sim_doc_t *d = c->slots[i];
        if (d->id_type == type && d->id_len == len && memcmp(d->data + d->id_off, val, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

sim_doc_t *sim_coll_find_id(const sim_coll_t *c, uint8_t type, const uint8_t *val, uint32_t len)
{
    if (!c || c->count == 0)
        return NULL;
    return c->slots[coll_probe(c, type, val, len)];
}

sim_doc_t *sim_coll_find_iter(const sim_coll_t *c, const bson_iter_t *id)
{
    return sim_coll_find_id(c, (uint8_t)bson_iter_type(id), id->raw + id->d1, id->next_off - id->d1);
}

static int coll_grow(sim_coll_t *c)
{
    size_t ncap = c->cap ? c->cap * 2 : 16;
    sim_doc_t **ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < c->cap; i++) {
        sim_doc_t *d = c->slots[i];
        if (!d)
            continue;
        size_t j = doc_hash(d) & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = d;
    }
    free(c->slots);
    c->slots = ns;
    c->cap = ncap;
    return 0;
}

static size_t coll_slot_of(const sim_coll_t *c, const sim_doc_t *d)
{
    return coll_probe(c, d->id_type, d->data + d->id_off, d->id_len);
}

/* Takes over one reference of d. Caller checked that _id is not present. */
static int coll_add(sim_coll_t *c, sim_doc_t *d)
{
    if ((c->count + 1) * 2 > c->cap && coll_grow(c) < 0)
        return -ENOMEM;
    c->slots[coll_slot_of(c, d)] = d;
    c->count++;
    c->bytes += d->len;
    d->prev = c->tail;
    d->next = NULL;
    if (c->tail)
        c->tail->next = d;
    else
        c->head = d;
    c->tail = d;
    return 0;
}

static void coll_remove(sim_coll_t *c, sim_doc_t *d)
{
    size_t mask = c->cap - 1, i = coll_slot_of(c, d), j = i;
    c->slots[i] = NULL;
    /* Backward-shift deletion keeps linear probing chains intact. */
    for (;;) {
        j = (j + 1) & mask;
        if (!c->slots[j])
            break;
        size_t k = doc_hash(c->slots[j]) & mask;
        bool stay = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!stay) {
            c->slots[i] = c->slots[j];
            c->slots[j] = NULL;
            i = j;
        }
    }
    if (d->prev)
        d->prev->next = d->next;
    else
        c->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        c->tail = d->prev;
    c->count--;
    c->bytes -= d->len;
    sim_doc_unref(d);
}

/* Same _id, same position in natural order; takes over one reference of nd. */
static void coll_replace(sim_coll_t *c, sim_doc_t *old, sim_doc_t *nd)
{
    c->slots[coll_slot_of(c, old)] = nd;
    nd->prev = old->prev;
    nd->next = old->next;
    if (old->prev)
        old->prev->next = nd;
    else
        c->head = nd;
    if (old->next)
        old->next->prev = nd;
    else
        c->tail = nd;
    c->bytes += nd->len;
    c->bytes -= old->len;
    sim_doc_unref(old);
}

static void coll_free(sim_coll_t *c)
{
    sim_doc_t *d = c->head;
    while (d) {
        sim_doc_t *n = d->next;
        sim_doc_unref(d);
        d = n;
    }
    free(c->slots);
    free(c->db);
    free(c->name);
    free(c->ns);
    free(c);
}

static uint64_t str_hash(const char *s)
{
    return hash_bytes(1469598103934665603ULL, s, strlen(s));
}

static size_t ns_probe(const sim_store_t *s, const char *ns)
{
    size_t mask = s->ccap - 1, i = str_hash(ns) & mask;
    while (s->cslots[i] && strcmp(s->cslots[i]->ns, ns) != 0)
        i = (i + 1) & mask;
    return i;
}

static int ns_grow(sim_store_t *s)
{
    size_t ncap = s->ccap ? s->ccap * 2 : 64;
    sim_coll_t **ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < s->ccap; i++) {
        if (!s->cslots[i])
            continue;
        size_t j = str_hash(s->cslots[i]->ns) & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = s->cslots[i];
    }
    free(s->cslots);
    s->cslots = ns;
    s->ccap = ncap;
    return 0;
}

sim_coll_t *sim_store_coll(sim_store_t *s, const char *db, const char *name, bool create)
{
    char nsbuf[512];
    if (snprintf(nsbuf, sizeof nsbuf, "%s.%s", db, name) >= (int)sizeof nsbuf)
        return NULL;
    size_t i = ns_probe(s, nsbuf);
    if (s->cslots[i] && create)
        s->cslots[i]->dropped = false;
    if (s->cslots[i] || !create)
        return s->cslots[i] && !s->cslots[i]->dropped ? s->cslots[i] : NULL;
    if ((s->ccount + 1) * 2 > s->ccap) {
        if (ns_grow(s) < 0)
            return NULL;
        i = ns_probe(s, nsbuf);
    }
    if (s->ccount == s->clist_cap) {
        size_t ncap = s->clist_cap ? s->clist_cap * 2 : 64;
        sim_coll_t **nl = realloc(s->clist, ncap * sizeof *nl);
        if (!nl)
            return NULL;
        s->clist = nl;
        s->clist_cap = ncap;
    }
    sim_coll_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->db = strdup(db);
    c->name = strdup(name);
    c->ns = strdup(nsbuf);
    if (!c->db || !c->name || !c->ns) {
        coll_free(c);
        return NULL;
    }
    s->cslots[i] = c;
    s->clist[s->ccount++] = c;
    return c;
}

bool sim_ns_writable(const char *db, const char *name, sim_err_t *e)
{
    if (!*db || !*name || strchr(db, '$') || strchr(db, '.') || strchr(name, '$') || strlen(db) + strlen(name) > 250) {
        sim_err_set(e, 73, "Invalid namespace specified '%.64s.%.128s'", db, name);
        return false;
    }
    if (!strcmp(db, "local") || !strcmp(db, "admin") || !strcmp(db, "config")) {
        sim_err_set(e, 13, "cannot write to '%s.%.128s': the simulator keeps %s read-only", db, name, db);
        return false;
    }
    return true;
}

/* ---- store and oplog --------------------------------------------------------- */

sim_store_t *sim_store_new(uint64_t oplog_max_bytes, size_t max_docs)
{
    sim_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->oplog_max_bytes = oplog_max_bytes;
    s->max_docs = max_docs;
    s->term = 1;
    s->ring_cap = 1024;
    s->ring = calloc(s->ring_cap, sizeof *s->ring);
    if (!s->ring || ns_grow(s) < 0)
        goto err;
    s->kcap = 64;
    s->kslots = calloc(s->kcap, sizeof *s->kslots);
    if (!s->kslots)
        goto err;
    s->cursor_seq = (uint64_t)sim_now_ms();
    return s;
err:
    free(s->kslots);
    free(s->cslots);
    free(s->ring);
    free(s);
    return NULL;
}

static void entry_release(sim_entry_t *e)
{
    sim_doc_unref(e->o);
    sim_doc_unref(e->key);
    free(e->db);
    e->o = e->key = NULL;
    e->db = NULL;
    e->to = NULL;
}

void sim_store_destroy(sim_store_t *s)
{
    if (!s)
        return;
    /* Freeing shifts later entries back into slot i, so drain each slot. */
    for (size_t i = 0; i < s->kcap; i++)
        while (s->kslots[i])
            sim_cursor_free(s, s->kslots[i]);
    for (uint64_t q = s->first_seq; q < s->end_seq; q++)
        entry_release(&s->ring[q & (s->ring_cap - 1)]);
    for (size_t i = 0; i < s->ccount; i++)
        coll_free(s->clist[i]);
    free(s->kslots);
    free(s->clist);
    free(s->cslots);
    free(s->ring);
    free(s);
}

void sim_store_tick(sim_store_t *s, uint64_t *ts, int64_t *wall_ms)
{
    if (s->clock) {
        sim_clock_next(s->clock, &s->last_ts, &s->last_wall_ms);
        *ts = s->last_ts;
        *wall_ms = s->last_wall_ms;
        return;
    }
    int64_t now = sim_now_ms();
    if (now < s->last_wall_ms)
        now = s->last_wall_ms;
    uint32_t t = (uint32_t)(now / 1000);
    s->last_ts = t > SIM_TS_T(s->last_ts) ? SIM_TS(t, 1) : s->last_ts + 1;
    s->last_wall_ms = now;
    *ts = s->last_ts;
    *wall_ms = now;
}

uint64_t sim_oplog_count(const sim_store_t *s)
{
    return s->end_seq - s->first_seq;
}

const sim_entry_t *sim_oplog_at(const sim_store_t *s, uint64_t seq)
{
    return &s->ring[seq & (s->ring_cap - 1)];
}

static void oplog_evict_first(sim_store_t *s)
{
    sim_entry_t *e = &s->ring[s->first_seq & (s->ring_cap - 1)];
    s->oplog_bytes -= e->bytes;
    s->evicted_max = e->ts;
    entry_release(e);
    s->first_seq++;
}

static int oplog_reserve(sim_store_t *s)
{
    if (s->end_seq - s->first_seq < s->ring_cap)
        return 0;
    size_t ncap = s->ring_cap * 2;
    sim_entry_t *nr = calloc(ncap, sizeof *nr);
    if (!nr)
        return -ENOMEM;
    for (uint64_t q = s->first_seq; q < s->end_seq; q++)
        nr[q & (ncap - 1)] = s->ring[q & (s->ring_cap - 1)];
    free(s->ring);
    s->ring = nr;
    s->ring_cap = ncap;
    return 0;
}

/* Takes over one reference each of o and key. oplog_reserve() must have succeeded. */
static void oplog_append(sim_store_t *s, uint8_t op, sim_coll_t *c, sim_doc_t *o, sim_doc_t *key, uint64_t ts,
                         int64_t wall_ms)
{
    sim_entry_t *e = &s->ring[s->end_seq & (s->ring_cap - 1)];
    e->ts = ts;
    e->wall_ms = wall_ms;
    e->term = s->term;
    e->op = op;
    e->coll = c;
    e->to = NULL;
    e->db = NULL;
    e->o = o;
    e->key = key;
    e->expanded = false;
    /* Size of the rendered oplog document, near enough for collStats. */
    e->bytes = o->len + (key ? key->len : 0) + (c ? (uint32_t)strlen(c->ns) : 0) + 64;
    s->oplog_bytes += e->bytes;
    s->end_seq++;
    if (op < SIM_EV_COUNT) {
        s->counts[op]++;
        c->counts[op]++;
        c->dropped = false; /* a write creates the collection again */
    } else if (op > SIM_EV_NOOP && op <= SIM_EV_DROPDB) {
        s->ddl_counts[SIM_DDL_INDEX(op)]++;
        if (c)
            c->ddl_counts[SIM_DDL_INDEX(op)]++;
    }
    while (s->oplog_bytes > s->oplog_max_bytes && s->end_seq - s->first_seq > 1)
        oplog_evict_first(s);
}

int sim_store_noop(sim_store_t *s, const char *msg)
{
    bson_t b = BSON_INITIALIZER;
    uint64_t ts;
    int64_t wall;
    BSON_APPEND_UTF8(&b, "msg", msg);
    sim_doc_t *o = sim_doc_new_raw(&b);
    bson_destroy(&b);
    if (!o || oplog_reserve(s) < 0) {
        sim_doc_unref(o);
        return -ENOMEM;
    }
    sim_store_tick(s, &ts, &wall);
    oplog_append(s, SIM_EV_NOOP, NULL, o, NULL, ts, wall);
    return 0;
}

/* The operationType of an event and its ns {db, coll}. */
static bool event_shape(const bson_t *ev, const char **type, const char **db, const char **coll)
{
    bson_iter_t it, ns;
    *type = *db = *coll = NULL;
    if (bson_iter_init_find(&it, ev, "operationType") && BSON_ITER_HOLDS_UTF8(&it))
        *type = bson_iter_utf8(&it, NULL);
    if (bson_iter_init_find(&it, ev, "ns") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &ns))
        while (bson_iter_next(&ns)) {
            if (!strcmp(bson_iter_key(&ns), "db") && BSON_ITER_HOLDS_UTF8(&ns))
                *db = bson_iter_utf8(&ns, NULL);
            else if (!strcmp(bson_iter_key(&ns), "coll") && BSON_ITER_HOLDS_UTF8(&ns))
                *coll = bson_iter_utf8(&ns, NULL);
        }
    return *type && *db && *coll;
}

int sim_store_canned_event(sim_store_t *s, const bson_t *ev, sim_err_t *e)
{
    static const char *const closing[] = {"invalidate", "drop", "rename", "dropDatabase"};
    static const char *const data[] = {"insert", "update", "replace", "delete"};
    const char *type, *db, *name;
    bool expanded = true;
    sim_coll_t *c = NULL;
    bson_iter_t it;
    const sim_entry_t *prev = s->end_seq > s->first_seq ? sim_oplog_at(s, s->end_seq - 1) : NULL;
    bool shaped = event_shape(ev, &type, &db, &name);
    for (size_t i = 0; type && i < sizeof closing / sizeof *closing; i++)
        if (!strcmp(type, closing[i]))
            return sim_err_set(e, 2, "%s closes a stream: use the simulator's own DDL for it", type);
    if (shaped) {
        for (size_t i = 0; i < sizeof data / sizeof *data; i++)
            expanded = expanded && strcmp(type, data[i]);
        c = sim_store_coll(s, db, name, true);
    } else if (bson_iter_init_find(&it, ev, "splitEvent") && prev && prev->op == SIM_EV_CANNED) {
        /* a later fragment (_id, splitEvent, fields): it continues the last event */
        c = prev->coll;
        expanded = prev->expanded;
    } else {
        return sim_err_set(e, 2, "a change event needs operationType and ns {db, coll} "
                                 "(a later fragment of a split event: splitEvent, after the one before it)");
    }
    sim_doc_t *o = c ? sim_doc_new_raw(ev) : NULL;
    if (!o || oplog_reserve(s) < 0) {
        sim_doc_unref(o);
        return sim_err_set(e, 12, "out of memory");
    }
    uint64_t ts;
    int64_t wall;
    sim_store_tick(s, &ts, &wall);
    oplog_append(s, SIM_EV_CANNED, c, o, NULL, ts, wall);
    s->ring[(s->end_seq - 1) & (s->ring_cap - 1)].expanded = expanded;
    return 0;
}

uint64_t sim_oplog_seq_after(const sim_store_t *s, uint64_t ts)
{
    uint64_t lo = s->first_seq, hi = s->end_seq;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (sim_oplog_at(s, mid)->ts > ts)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

uint64_t sim_oplog_truncate(sim_store_t *s, uint64_t keep)
{
    uint64_t n = 0;
    while (sim_oplog_count(s) > keep) {
        oplog_evict_first(s);
        n++;
    }
    return n;
}

void sim_entry_render(const sim_entry_t *e, bson_t *out)
{
    static const char *const ops[] = {"i", "u", "u", "d", "n", "c", "c", "c", "n"};
    bson_t o;
    char cmd_ns[400];
    BSON_APPEND_UTF8(out, "op", ops[e->op]);
    if (e->op > SIM_EV_NOOP && e->op <= SIM_EV_DROPDB) {
        snprintf(cmd_ns, sizeof cmd_ns, "%s.$cmd", e->coll ? e->coll->db : e->db);
        BSON_APPEND_UTF8(out, "ns", cmd_ns);
    } else {
        BSON_APPEND_UTF8(out, "ns", e->coll ? e->coll->ns : "");
    }
    sim_doc_view(e->o, &o);
    BSON_APPEND_DOCUMENT(out, "o", &o);
    if (e->op == SIM_EV_UPDATE || e->op == SIM_EV_REPLACE) {
        bson_t k;
        sim_doc_view(e->key, &k);
        BSON_APPEND_DOCUMENT(out, "o2", &k);
    }
    BSON_APPEND_TIMESTAMP(out, "ts", SIM_TS_T(e->ts), SIM_TS_I(e->ts));
    BSON_APPEND_INT64(out, "t", e->term);
    BSON_APPEND_INT64(out, "v", 2);
    BSON_APPEND_DATE_TIME(out, "wall", e->wall_ms);
}

/* ---- writes ------------------------------------------------------------------ */

static sim_doc_t *key_doc(const sim_doc_t *d)
{
    bson_t view, k = BSON_INITIALIZER;
    bson_iter_t it;
    sim_doc_view(d, &view);
    if (bson_iter_init_find(&it, &view, "_id"))
        bson_append_iter(&k, "_id", 3, &it);
    sim_doc_t *kd = sim_doc_new_raw(&k);
    bson_destroy(&k);
    return kd;
}

int sim_coll_move_doc(sim_coll_t *from, sim_coll_t *to, sim_doc_t *d)
{
    /* A copy: the donor's oplog may still reference d under another lock. */
    bson_t v;
    sim_doc_view(d, &v);
    sim_doc_t *nd = sim_doc_new(&v);
    if (!nd || coll_add(to, nd) < 0) {
        sim_doc_unref(nd);
        return -ENOMEM;
    }
    coll_remove(from, d);
    return 0;
}

static void evict_over_cap(sim_store_t *s, sim_coll_t *c)
{
    while (s->max_docs && c->count > s->max_docs) {
        coll_remove(c, c->head);
        s->docs_evicted++;
    }
}

int sim_store_insert_at(sim_store_t *s, sim_coll_t *c, const bson_t *doc, uint64_t ts, int64_t wall_ms,
                        sim_err_t *e)
{
    bson_iter_t it;
    if (doc->len > SIM_MAX_BSON)
        return sim_err_set(e, 10334, "object to insert too large: %u bytes", doc->len);
    if (!bson_iter_init_find(&it, doc, "_id"))
        return sim_err_set(e, 2, "document has no _id");
    if (BSON_ITER_HOLDS_ARRAY(&it) || BSON_ITER_HOLDS_REGEX(&it))
        return sim_err_set(e, 2, "can't use an array or regex for _id");
    if (sim_coll_find_iter(c, &it))
        return sim_err_set(e, 11000, "E11000 duplicate key error collection: %.200s index: _id_", c->ns);
    sim_doc_t *d = sim_doc_new(doc);
    if (!d || oplog_reserve(s) < 0 || coll_add(c, d) < 0) {
        sim_doc_unref(d);
        return sim_err_set(e, 146, "out of memory");
    }
    d->refs++;
    oplog_append(s, SIM_EV_INSERT, c, d, NULL, ts, wall_ms);
    evict_over_cap(s, c);
    return 0;
}

int sim_store_insert(sim_store_t *s, sim_coll_t *c, const bson_t *doc, sim_err_t *e)
{
    uint64_t ts;
    int64_t wall;
    if (!bson_has_field(doc, "_id")) {
        bson_t with_id = BSON_INITIALIZER;
        bson_oid_t oid;
        bson_oid_init(&oid, NULL);
        BSON_APPEND_OID(&with_id, "_id", &oid);
        bson_concat(&with_id, doc);
        sim_store_tick(s, &ts, &wall);
        int r = sim_store_insert_at(s, c, &with_id, ts, wall, e);
        bson_destroy(&with_id);
        return r;
    }
    sim_store_tick(s, &ts, &wall);
    return sim_store_insert_at(s, c, doc, ts, wall, e);
}

static bool is_operator_update(const bson_t *u)
{
    bson_iter_t it;
    return bson_iter_init(&it, u) && bson_iter_next(&it) && bson_iter_key(&it)[0] == '$';
}

bool sim_update_check(const bson_t *u, sim_err_t *e)
{
    bson_iter_t it;
    if (!is_operator_update(u)) {
        if (bson_iter_init(&it, u))
            while (bson_iter_next(&it))
                if (bson_iter_key(&it)[0] == '$') {
                    sim_err_set(e, 2, "replacement document can't have $ fields: %.64s", bson_iter_key(&it));
                    return false;
                }
        return true;
    }
    bson_iter_init(&it, u);
    while (bson_iter_next(&it)) {
        const char *op = bson_iter_key(&it);
        bson_iter_t f;
        if (strcmp(op, "$set") && strcmp(op, "$unset")) {
            sim_err_set(e, 9, "Unsupported update operator %.64s: the simulator supports $set and $unset", op);
            return false;
        }
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &f)) {
            sim_err_set(e, 9, "Modifiers operate on fields but we found another type instead");
            return false;
        }
        while (bson_iter_next(&f)) {
            const char *k = bson_iter_key(&f);
            if (strchr(k, '.') || k[0] == '$' || !k[0]) {
                sim_err_set(e, 2, "unsupported field path '%.64s': the simulator updates top-level fields only", k);
                return false;
            }
        }
    }
    return true;
}

static bool same_value(const bson_iter_t *a, const bson_iter_t *b)
{
    uint32_t la = a->next_off - a->d1, lb = b->next_off - b->d1;
    return bson_iter_type(a) == bson_iter_type(b) && la == lb && memcmp(a->raw + a->d1, b->raw + b->d1, la) == 0;
}

static bool get_op(const bson_t *u, const char *op, bson_t *out)
{
    bson_iter_t it;
    uint32_t len;
    const uint8_t *data;
    if (!bson_iter_init_find(&it, u, op) || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return false;
    bson_iter_document(&it, &len, &data);
    return bson_init_static(out, data, len);
}

/* Apply $set/$unset to old into out and record the $v:2 diff. Returns 1 if
 * anything changed, 0 if not, -1 with e set. */
static int apply_ops(const bson_t *old, const bson_t *u, bson_t *out, bson_t *di, bson_t *du, bson_t *dd,
                     sim_err_t *e)
{
    bson_t set = BSON_INITIALIZER, unset = BSON_INITIALIZER;
    bson_iter_t it, f;
    int changed = 0;
    bool has_set = get_op(u, "$set", &set), has_unset = get_op(u, "$unset", &unset);
    if (has_set && has_unset && bson_iter_init(&it, &set)) {
        while (bson_iter_next(&it))
            if (bson_has_field(&unset, bson_iter_key(&it)))
                return sim_err_set(e, 40, "Updating the path '%.64s' would create a conflict", bson_iter_key(&it));
    }
    bson_iter_init(&it, old);
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (has_unset && bson_has_field(&unset, k)) {
            if (!strcmp(k, "_id"))
                return sim_err_set(e, 66, "Performing an update on the path '_id' would modify the immutable field '_id'");
            BSON_APPEND_BOOL(dd, k, false);
            changed = 1;
        } else if (has_set && bson_iter_init_find(&f, &set, k)) {
            if (same_value(&it, &f)) {
                bson_append_iter(out, NULL, 0, &it);
            } else {
                if (!strcmp(k, "_id"))
                    return sim_err_set(e, 66, "Performing an update on the path '_id' would modify the immutable field '_id'");
                bson_append_iter(out, NULL, 0, &f);
                bson_append_iter(du, NULL, 0, &f);
                changed = 1;
            }
        } else {
            bson_append_iter(out, NULL, 0, &it);
        }
    }
    if (has_set && bson_iter_init(&f, &set)) {
        while (bson_iter_next(&f)) {
            if (bson_has_field(old, bson_iter_key(&f)))
                continue;
            bson_append_iter(out, NULL, 0, &f);
            bson_append_iter(di, NULL, 0, &f);
            changed = 1;
        }
    }
    return changed;
}

static int replace_doc(const bson_t *old, const bson_t *u, bson_t *out, sim_err_t *e)
{
    bson_iter_t oid, nid, it;
    bson_iter_init_find(&oid, old, "_id");
    if (bson_iter_init_find(&nid, u, "_id") && !same_value(&oid, &nid))
        return sim_err_set(e, 66, "The _id field cannot be changed");
    bson_append_iter(out, "_id", 3, &oid);
    bson_iter_init(&it, u);
    while (bson_iter_next(&it))
        if (strcmp(bson_iter_key(&it), "_id"))
            bson_append_iter(out, NULL, 0, &it);
    return 0;
}

static int update_one_doc(sim_store_t *s, sim_coll_t *c, sim_doc_t *old, const bson_t *u, bool *modified,
                          sim_err_t *e)
{
    bson_t oldv, nd = BSON_INITIALIZER, di = BSON_INITIALIZER, du = BSON_INITIALIZER, dd = BSON_INITIALIZER;
    bson_t diff = BSON_INITIALIZER;
    sim_doc_t *nds = NULL, *od = NULL, *kd = NULL;
    uint8_t op;
    int r;
    *modified = false;
    sim_doc_view(old, &oldv);
    if (is_operator_update(u)) {
        op = SIM_EV_UPDATE;
        r = apply_ops(&oldv, u, &nd, &di, &du, &dd, e);
    } else {
        op = SIM_EV_REPLACE;
        r = replace_doc(&oldv, u, &nd, e);
        r = r < 0 ? r : !(nd.len == oldv.len && memcmp(bson_get_data(&nd), old->data, nd.len) == 0);
    }
    if (r <= 0)
        goto out;
    if (nd.len > SIM_MAX_BSON) {
        r = sim_err_set(e, 17419, "Resulting document after update is larger than 16777216");
        goto out;
    }
    if (op == SIM_EV_UPDATE) {
        bson_t d;
        BSON_APPEND_INT32(&diff, "$v", 2);
        BSON_APPEND_DOCUMENT_BEGIN(&diff, "diff", &d);
        if (!bson_empty(&dd))
            BSON_APPEND_DOCUMENT(&d, "d", &dd);
        if (!bson_empty(&du))
            BSON_APPEND_DOCUMENT(&d, "u", &du);
        if (!bson_empty(&di))
            BSON_APPEND_DOCUMENT(&d, "i", &di);
        bson_append_document_end(&diff, &d);
    }
    nds = sim_doc_new(&nd);
    kd = key_doc(old);
    if (op == SIM_EV_UPDATE)
        od = sim_doc_new_raw(&diff);
    else if (nds)
        od = (nds->refs++, nds);
    if (!nds || !kd || !od || oplog_reserve(s) < 0) {
        r = sim_err_set(e, 146, "out of memory");
        goto out;
    }
    uint64_t ts;
    int64_t wall;
    sim_store_tick(s, &ts, &wall);
    coll_replace(c, old, nds);
    nds = NULL;
    oplog_append(s, op, c, od, kd, ts, wall);
    od = kd = NULL;
    *modified = true;
    r = 0;
out:
    sim_doc_unref(nds);
    sim_doc_unref(od);
    sim_doc_unref(kd);
    bson_destroy(&nd);
    bson_destroy(&di);
    bson_destroy(&du);
    bson_destroy(&dd);
    bson_destroy(&diff);
    return r < 0 ? -1 : 0;
}

/* Documents matching q, in natural order (at most one unless multi). Caller frees *out. */
static size_t collect_matches(sim_coll_t *c, const bson_t *q, bool multi, sim_doc_t ***out)
{
    bson_iter_t id;
    size_t n = 0, cap = 0;
    *out = NULL;
    if (!c || c->count == 0)
        return 0;
    if (sim_filter_is_id_eq(q, &id)) {
        sim_doc_t *d = sim_coll_find_iter(c, &id);
        if (!d || !(*out = malloc(sizeof **out)))
            return 0;
        (*out)[0] = d;
        return 1;
    }
    for (sim_doc_t *d = c->head; d; d = d->next) {
        bson_t v;
        sim_doc_view(d, &v);
        if (!sim_match(&v, q))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            sim_doc_t **nl = realloc(*out, ncap * sizeof *nl);
            if (!nl)
                break;
            *out = nl;
            cap = ncap;
        }
        (*out)[n++] = d;
        if (!multi)
            break;
    }
    return n;
}

static bool iter_is_opdoc(const bson_iter_t *it)
{
    bson_iter_t sub;
    return BSON_ITER_HOLDS_DOCUMENT(it) && bson_iter_recurse(it, &sub) && bson_iter_next(&sub) &&
           bson_iter_key(&sub)[0] == '$';
}

static int upsert(sim_store_t *s, sim_coll_t *c, const bson_t *q, const bson_t *u, sim_update_result_t *r,
                  sim_err_t *e)
{
    bson_t seed = BSON_INITIALIZER, nd = BSON_INITIALIZER, di = BSON_INITIALIZER, du = BSON_INITIALIZER,
           dd = BSON_INITIALIZER;
    bson_iter_t it;
    int rc = -1;
    /* The new document starts from the filter's equality fields, like mongod. */
    if (bson_iter_init_find(&it, q, "_id") && !iter_is_opdoc(&it))
        bson_append_iter(&seed, "_id", 3, &it);
    if (!bson_has_field(&seed, "_id")) {
        bson_oid_t oid;
        bson_oid_init(&oid, NULL);
        BSON_APPEND_OID(&seed, "_id", &oid);
    }
    if (is_operator_update(u)) {
        bson_iter_init(&it, q);
        while (bson_iter_next(&it)) {
            const char *k = bson_iter_key(&it);
            if (k[0] == '$' || strchr(k, '.') || !strcmp(k, "_id") || iter_is_opdoc(&it))
                continue;
            bson_append_iter(&seed, NULL, 0, &it);
        }
        if (apply_ops(&seed, u, &nd, &di, &du, &dd, e) < 0)
            goto out;
    } else if (replace_doc(&seed, u, &nd, e) < 0) {
        goto out;
    }
    if (sim_store_insert(s, c, &nd, e) < 0)
        goto out;
    bson_iter_init_find(&it, &nd, "_id");
    bson_value_copy(bson_iter_value(&it), &r->upserted_id);
    r->upserted = true;
    r->n = 1;
    rc = 0;
out:
    bson_destroy(&seed);
    bson_destroy(&nd);
    bson_destroy(&di);
    bson_destroy(&du);
    bson_destroy(&dd);
    return rc;
}

int sim_store_update(sim_store_t *s, sim_coll_t *c, const bson_t *q, const bson_t *u, bool upsert_, bool multi,
                     sim_update_result_t *r, sim_err_t *e)
{
    sim_doc_t **m = NULL;
    memset(r, 0, sizeof *r);
    if (!sim_update_check(u, e))
        return -1;
    if (multi && !is_operator_update(u))
        return sim_err_set(e, 9, "multi update is not supported for replacement-style update");
    size_t n = collect_matches(c, q, multi, &m);
    if (n == 0) {
        free(m);
        return upsert_ ? upsert(s, c, q, u, r, e) : 0;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        bool mod;
        if (update_one_doc(s, c, m[i], u, &mod, e) < 0) {
            rc = -1;
            break;
        }
        r->n++;
        r->modified += mod;
    }
    free(m);
    return rc;
}

int sim_store_delete(sim_store_t *s, sim_coll_t *c, const bson_t *q, bool multi, uint32_t *n, sim_err_t *e)
{
    sim_doc_t **m = NULL;
    size_t k = collect_matches(c, q, multi, &m);
    *n = 0;
    for (size_t i = 0; i < k; i++) {
        sim_doc_t *kd = key_doc(m[i]);
        if (!kd || oplog_reserve(s) < 0) {
            sim_doc_unref(kd);
            free(m);
            return sim_err_set(e, 146, "out of memory");
        }
        uint64_t ts;
        int64_t wall;
        sim_store_tick(s, &ts, &wall);
        coll_remove(c, m[i]);
        kd->refs++;
        oplog_append(s, SIM_EV_DELETE, c, kd, kd, ts, wall);
        (*n)++;
    }
    free(m);
    return 0;
}

/* ---- DDL ------------------------------------------------------------------------ */

static sim_coll_t *coll_lookup(const sim_store_t *s, const char *db, const char *name)
{
    char nsbuf[512];
    if (snprintf(nsbuf, sizeof nsbuf, "%s.%s", db, name) >= (int)sizeof nsbuf)
        return NULL;
    return s->cslots[ns_probe(s, nsbuf)];
}

static void coll_clear(sim_coll_t *c)
{
    for (sim_doc_t *d = c->head, *n; d; d = n) {
        n = d->next;
        sim_doc_unref(d);
    }
    if (c->slots)
        memset(c->slots, 0, c->cap * sizeof *c->slots);
    c->head = c->tail = NULL;
    c->count = 0;
    c->bytes = 0;
}

/* Append a DDL entry (o: its oplog "o"); takes nothing over. */
static int ddl_entry(sim_store_t *s, uint8_t op, sim_coll_t *c, sim_coll_t *to, const char *db, const bson_t *o,
                     sim_err_t *e)
{
    uint64_t ts;
    int64_t wall;
    sim_doc_t *od = sim_doc_new_raw(o);
    char *dbc = db ? strdup(db) : NULL;
    if (!od || (db && !dbc) || oplog_reserve(s) < 0) {
        sim_doc_unref(od);
        free(dbc);
        return sim_err_set(e, 146, "out of memory");
    }
    sim_store_tick(s, &ts, &wall);
    oplog_append(s, op, c, od, NULL, ts, wall);
    /* Eviction never takes the newest entry. */
    sim_entry_t *en = &s->ring[(s->end_seq - 1) & (s->ring_cap - 1)];
    en->to = to;
    en->db = dbc;
    return 0;
}

int sim_store_drop(sim_store_t *s, sim_coll_t *c, sim_err_t *e)
{
    if (!c || c->dropped)
        return sim_err_set(e, 26, "ns not found");
    bson_t o = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&o, "drop", c->name);
    int rc = ddl_entry(s, SIM_EV_DROP, c, NULL, NULL, &o, e);
    bson_destroy(&o);
    if (rc < 0)
        return rc;
    coll_clear(c);
    c->dropped = true;
    return 0;
}

int sim_store_rename(sim_store_t *s, sim_coll_t *from, const char *to_db, const char *to_name, bool drop_target,
                     sim_err_t *e)
{
    if (!from || from->dropped)
        return sim_err_set(e, 26, "Source collection %.300s does not exist", from ? from->ns : "");
    sim_coll_t *to = coll_lookup(s, to_db, to_name);
    if (to == from)
        return sim_err_set(e, 20, "Can't rename a collection to itself");
    if (to && !to->dropped && !drop_target)
        return sim_err_set(e, 48, "target namespace exists");
    if (!(to = sim_store_coll(s, to_db, to_name, true)))
        return sim_err_set(e, 146, "out of memory");
    bson_t o = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&o, "renameCollection", from->ns);
    BSON_APPEND_UTF8(&o, "to", to->ns);
    BSON_APPEND_BOOL(&o, "stayTemp", false);
    BSON_APPEND_BOOL(&o, "dropTarget", drop_target);
    int rc = ddl_entry(s, SIM_EV_RENAME, from, to, NULL, &o, e);
    bson_destroy(&o);
    if (rc < 0)
        return rc;
    /* The documents move: the target's (emptied) storage goes to the source. */
    coll_clear(to);
    sim_coll_t tmp = *to;
    to->slots = from->slots;
    to->cap = from->cap;
    to->count = from->count;
    to->head = from->head;
    to->tail = from->tail;
    to->bytes = from->bytes;
    from->slots = tmp.slots;
    from->cap = tmp.cap;
    from->count = 0;
    from->head = from->tail = NULL;
    from->bytes = 0;
    from->dropped = true;
    return 0;
}

int sim_store_drop_db(sim_store_t *s, const char *db, uint32_t *n, sim_err_t *e)
{
    *n = 0;
    for (size_t i = 0; i < s->ccount; i++) {
        sim_coll_t *c = s->clist[i];
        if (c->dropped || strcmp(c->db, db))
            continue;
        if (sim_store_drop(s, c, e) < 0)
            return -1;
        (*n)++;
    }
    if (!*n)
        return 0;
    bson_t o = BSON_INITIALIZER;
    BSON_APPEND_INT32(&o, "dropDatabase", 1);
    int rc = ddl_entry(s, SIM_EV_DROPDB, NULL, NULL, db, &o, e);
    bson_destroy(&o);
    return rc;
}

/* ---- resume tokens ------------------------------------------------------------- */

static void hex32(char *out, uint32_t v)
{
    static const char digits[] = "0123456789ABCDEF";
    for (int i = 7; i >= 0; i--) {
        out[i] = digits[v & 15];
        v >>= 4;
    }
}

void sim_token_append_sub(bson_t *parent, const char *key, uint64_t ts, uint32_t sub)
{
    char data[27];
    bson_t tok;
    data[0] = '8';
    data[1] = '2';
    hex32(data + 2, SIM_TS_T(ts));
    hex32(data + 10, SIM_TS_I(ts));
    hex32(data + 18, sub);
    int len = sub ? 22 : 18; /* 4 hex digits of sub */
    memmove(data + 18, data + 22, 4);
    bson_append_document_begin(parent, key, -1, &tok);
    bson_append_utf8(&tok, "_data", 5, data, len);
    bson_append_document_end(parent, &tok);
}

void sim_token_append(bson_t *parent, const char *key, uint64_t ts)
{
    sim_token_append_sub(parent, key, ts, 0);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool sim_token_parse_sub(const bson_t *token, uint64_t *ts, uint32_t *sub)
{
    bson_iter_t it;
    uint32_t len;
    if (!bson_iter_init_find(&it, token, "_data") || !BSON_ITER_HOLDS_UTF8(&it))
        return false;
    const char *s = bson_iter_utf8(&it, &len);
    if ((len != 18 && len != 22) || s[0] != '8' || s[1] != '2')
        return false;
    uint64_t v = 0;
    uint32_t w = 0;
    for (uint32_t i = 2; i < len; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return false;
        if (i < 18)
            v = v << 4 | (uint64_t)h;
        else
            w = w << 4 | (uint32_t)h;
    }
    if (len == 22 && w == 0)
        return false; /* never issued: one spelling per position */
    *ts = v;
    *sub = w;
    return true;
}

bool sim_token_parse(const bson_t *token, uint64_t *ts)
{
    uint32_t sub;
    return sim_token_parse_sub(token, ts, &sub) && sub == 0;
}

/* ---- cursors ------------------------------------------------------------------- */

static size_t cur_probe(const sim_store_t *s, int64_t id)
{
    size_t mask = s->kcap - 1, i = mix64((uint64_t)id) & mask;
    while (s->kslots[i] && s->kslots[i]->id != id)
        i = (i + 1) & mask;
    return i;
}

sim_cursor_t *sim_cursor_get(sim_store_t *s, int64_t id)
{
    return s->kslots[cur_probe(s, id)];
}

sim_cursor_t *sim_cursor_new(sim_store_t *s, int kind, const char *ns)
{
    if ((s->kcount + 1) * 2 > s->kcap) {
        size_t ncap = s->kcap * 2;
        sim_cursor_t **nk = calloc(ncap, sizeof *nk);
        if (!nk)
            return NULL;
        for (size_t i = 0; i < s->kcap; i++) {
            if (!s->kslots[i])
                continue;
            size_t j = mix64((uint64_t)s->kslots[i]->id) & (ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = s->kslots[i];
        }
        free(s->kslots);
        s->kslots = nk;
        s->kcap = ncap;
    }
    sim_cursor_t *c = calloc(1, sizeof *c);
    if (!c || !(c->ns = strdup(ns))) {
        free(c);
        return NULL;
    }
    c->kind = kind;
    c->no_wall = s->no_wall_time;
    do {
        c->id = (int64_t)(mix64(++s->cursor_seq) & (uint64_t)INT64_MAX);
    } while (c->id == 0 || sim_cursor_get(s, c->id));
    c->last_used_ms = sim_mono_ms();
    s->kslots[cur_probe(s, c->id)] = c;
    s->kcount++;
    return c;
}

void sim_cursor_free(sim_store_t *s, sim_cursor_t *c)
{
    size_t mask = s->kcap - 1, i = cur_probe(s, c->id), j = i;
    if (s->kslots[i] == c) {
        s->kslots[i] = NULL;
        s->kcount--;
        for (;;) {
            j = (j + 1) & mask;
            if (!s->kslots[j])
                break;
            size_t k = mix64((uint64_t)s->kslots[j]->id) & mask;
            bool stay = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
            if (!stay) {
                s->kslots[i] = s->kslots[j];
                s->kslots[j] = NULL;
                i = j;
            }
        }
    }
    for (size_t k = 0; k < c->ndocs; k++)
        sim_doc_unref(c->docs[k]);
    free(c->docs);
    if (c->proj_spec)
        bson_destroy(c->proj_spec);
    if (c->match)
        bson_destroy(c->match);
    free(c->ns);
    free(c->db);
    free(c->coll_name);
    free(c);
}

size_t sim_cursor_reap(sim_store_t *s, int64_t now_ms, int64_t idle_ms)
{
    size_t n = 0;
    /* Backward-shift deletion only moves unvisited entries into slot i, so
     * look at slot i again after a free. */
    for (size_t i = 0; i < s->kcap;) {
        sim_cursor_t *c = s->kslots[i];
        if (c && !c->in_use && now_ms - c->last_used_ms > idle_ms) {
            sim_cursor_free(s, c);
            n++;
            continue;
        }
        i++;
    }
    return n;
}

/* ---- change streams -------------------------------------------------------------- */

int sim_cs_position(sim_store_t *s, sim_cursor_t *cur, uint64_t after, sim_err_t *e)
{
    if (s->evicted_max > after)
        return sim_err_set(e, 286, "Resume of change stream was not possible, as the resume point may no "
                                   "longer be in the oplog.");
    cur->after = after;
    cur->next_seq = sim_oplog_seq_after(s, after);
    return 0;
}

static bool internal_db(const char *db)
{
    return !strcmp(db, "admin") || !strcmp(db, "local") || !strcmp(db, "config");
}

static const char *entry_db(const sim_entry_t *en)
{
    return en->coll ? en->coll->db : en->db;
}

/* As mongod 6.0/7.0 filter the oplog: a collection stream sees its
 * collection's events, a rename from or onto it, and its drop (a
 * dropDatabase drops each collection first); a database stream every event
 * of the database, renames out of or into it included; a cluster stream
 * every event outside admin, local and config. */
static bool cs_wants(const sim_cursor_t *cur, const sim_entry_t *en)
{
    if (en->op == SIM_EV_NOOP || (en->op == SIM_EV_CANNED && en->expanded && !cur->expanded))
        return false;
    bool into = en->op == SIM_EV_RENAME;
    switch (cur->scope) {
    case SIM_SCOPE_COLL: return en->coll ? en->coll == cur->coll || (into && en->to == cur->coll) : false;
    case SIM_SCOPE_DB: return !strcmp(entry_db(en), cur->db) || (into && !strcmp(en->to->db, cur->db));
    default: return !internal_db(entry_db(en)) || (into && !internal_db(en->to->db));
    }
}

/* Whether the event of en (wanted by cur) is followed by an invalidate that
 * closes cur: drop and rename on a collection stream, dropDatabase on a
 * database stream; a cluster stream is never invalidated. */
static bool cs_invalidates(const sim_cursor_t *cur, const sim_entry_t *en)
{
    if (cur->scope == SIM_SCOPE_COLL)
        return en->op == SIM_EV_DROP || en->op == SIM_EV_RENAME;
    return cur->scope == SIM_SCOPE_DB && en->op == SIM_EV_DROPDB;
}

/* A collection stream goes by name: the collection may be created (or
 * dropped and created again) after the stream opened. */
static void cs_resolve(sim_store_t *s, sim_cursor_t *cur)
{
    if (cur->scope == SIM_SCOPE_COLL && !cur->coll)
        cur->coll = coll_lookup(s, cur->db, cur->coll_name);
}

/* Resume from fragment k's token: the entry at ts again, its first k + 1
 * fragments skipped (mongod re-splits the event the same way). */
static int cs_resume_fragment(sim_store_t *s, sim_cursor_t *cur, uint64_t ts, uint32_t k, sim_err_t *e)
{
    if (!cur->split)
        return sim_err_set(e, 280, "Attempting to resume a change stream from a split event fragment, but the "
                                   "pipeline does not end with $changeStreamSplitLargeEvent");
    if (!ts || sim_cs_position(s, cur, ts - 1, e) < 0)
        return ts ? -1 : sim_err_set(e, 260, "invalid resume token");
    cur->frag_ts = ts;
    cur->frag_done = k + 1;
    cs_resolve(s, cur);
    return 0;
}

int sim_cs_resume(sim_store_t *s, sim_cursor_t *cur, uint64_t ts, uint32_t sub, bool start_after, sim_err_t *e)
{
    if ((sub & ~(SIM_MAX_FRAGMENTS - 1)) == SIM_TOKEN_FRAGMENT)
        return cs_resume_fragment(s, cur, ts, sub & (SIM_MAX_FRAGMENTS - 1), e);
    if (sub == SIM_TOKEN_INVALIDATE && !start_after)
        return sim_err_set(e, 260, "Attempting to resume a change stream using 'resumeAfter' is not allowed from an "
                                   "invalidate notification.");
    if (sub != 0 && sub != SIM_TOKEN_INVALIDATE)
        return sim_err_set(e, 260, "invalid resume token: unknown position inside an event");
    if (sim_cs_position(s, cur, ts, e) < 0)
        return -1;
    if (sub) {
        cur->past_inv = true;
        return 0;
    }
    cs_resolve(s, cur);
    uint64_t seq = sim_oplog_seq_after(s, ts);
    if (seq > s->first_seq) {
        const sim_entry_t *en = sim_oplog_at(s, seq - 1);
        if (en->ts == ts && cs_wants(cur, en) && cs_invalidates(cur, en)) {
            cur->inv_pending = true;
            cur->inv_wall_ms = en->wall_ms;
        }
    }
    return 0;
}

void sim_cs_append_pbrt(const sim_cursor_t *cur, bson_t *parent)
{
    if (cur->frag_ts && cur->frag_done) {
        sim_token_append_sub(parent, "postBatchResumeToken", cur->frag_ts, SIM_TOKEN_FRAGMENT | (cur->frag_done - 1));
        return;
    }
    sim_token_append_sub(parent, "postBatchResumeToken", cur->after,
                         cur->invalidated || cur->past_inv ? SIM_TOKEN_INVALIDATE : 0);
}

static void append_update_description(bson_t *out, const sim_doc_t *o)
{
    bson_t ov, ud, uf, rf, ta;
    bson_iter_t it, diff, part;
    sim_doc_view(o, &ov);
    BSON_APPEND_DOCUMENT_BEGIN(out, "updateDescription", &ud);
    BSON_APPEND_DOCUMENT_BEGIN(&ud, "updatedFields", &uf);
    if (bson_iter_init_find(&it, &ov, "diff") && bson_iter_recurse(&it, &diff)) {
        while (bson_iter_next(&diff)) {
            const char *k = bson_iter_key(&diff);
            if ((!strcmp(k, "u") || !strcmp(k, "i")) && bson_iter_recurse(&diff, &part))
                while (bson_iter_next(&part))
                    bson_append_iter(&uf, NULL, 0, &part);
        }
    }
    bson_append_document_end(&ud, &uf);
    BSON_APPEND_ARRAY_BEGIN(&ud, "removedFields", &rf);
    if (bson_iter_init_find(&it, &ov, "diff") && bson_iter_recurse(&it, &diff) && bson_iter_find(&diff, "d") &&
        bson_iter_recurse(&diff, &part)) {
        uint32_t i = 0;
        while (bson_iter_next(&part)) {
            char kb[16];
            const char *key;
            size_t kl = bson_uint32_to_string(i++, &key, kb, sizeof kb);
            bson_append_utf8(&rf, key, (int)kl, bson_iter_key(&part), -1);
        }
    }
    bson_append_array_end(&ud, &rf);
    BSON_APPEND_ARRAY_BEGIN(&ud, "truncatedArrays", &ta);
    bson_append_array_end(&ud, &ta);
    bson_append_document_end(out, &ud);
}

static void append_ns(bson_t *out, const char *key, const char *db, const char *coll)
{
    bson_t nsd;
    bson_append_document_begin(out, key, -1, &nsd);
    bson_append_utf8(&nsd, "db", 2, db, -1);
    if (coll)
        bson_append_utf8(&nsd, "coll", 4, coll, -1);
    bson_append_document_end(out, &nsd);
}

/* drop {ns}, rename {ns, to}, dropDatabase {ns: {db}}, as 6.0 renders them
 * without showExpandedEvents. */
static void cs_ddl_event(const sim_cursor_t *cur, const sim_entry_t *en, bson_t *out)
{
    bson_append_utf8(out, "operationType", 13, sim_ddl_names[SIM_DDL_INDEX(en->op)], -1);
    bson_append_timestamp(out, "clusterTime", 11, SIM_TS_T(en->ts), SIM_TS_I(en->ts));
    if (!cur->no_wall)
        bson_append_date_time(out, "wallTime", 8, en->wall_ms);
    if (en->op == SIM_EV_DROPDB) {
        append_ns(out, "ns", en->db, NULL);
        return;
    }
    append_ns(out, "ns", en->coll->db, en->coll->name);
    if (en->op == SIM_EV_RENAME)
        append_ns(out, "to", en->to->db, en->to->name);
}

static void cs_invalidate_event(const sim_cursor_t *cur, bson_t *out)
{
    uint64_t ts = cur->after;
    sim_token_append_sub(out, "_id", ts, SIM_TOKEN_INVALIDATE);
    bson_append_utf8(out, "operationType", 13, "invalidate", -1);
    bson_append_timestamp(out, "clusterTime", 11, SIM_TS_T(ts), SIM_TS_I(ts));
    if (!cur->no_wall)
        bson_append_date_time(out, "wallTime", 8, cur->inv_wall_ms);
}

/* Render the change event of entry en as cursor cur sees it. */
static void cs_event(const sim_cursor_t *cur, const sim_entry_t *en, bson_t *out)
{
    bson_t v, nsd, dk;
    bson_iter_t it;
    sim_token_append(out, "_id", en->ts);
    if (en->op == SIM_EV_CANNED) { /* the corpus event as written, with its own token */
        bson_t ev;
        sim_doc_view(en->o, &ev);
        bson_copy_to_excluding_noinit(&ev, out, "_id", NULL);
        return;
    }
    if (en->op > SIM_EV_NOOP) {
        cs_ddl_event(cur, en, out);
        return;
    }
    bson_append_utf8(out, "operationType", 13, sim_ev_names[en->op], -1);
    bson_append_timestamp(out, "clusterTime", 11, SIM_TS_T(en->ts), SIM_TS_I(en->ts));
    if (!cur->no_wall) /* 5.0 events have none (added in 6.0) */
        bson_append_date_time(out, "wallTime", 8, en->wall_ms);
    if (en->op == SIM_EV_INSERT || en->op == SIM_EV_REPLACE) {
        sim_doc_view(en->o, &v);
        bson_append_document(out, "fullDocument", 12, &v);
    } else if (en->op == SIM_EV_UPDATE && cur->lookup) {
        bson_t k;
        sim_doc_view(en->key, &k);
        const sim_doc_t *now = NULL;
        if (bson_iter_init_find(&it, &k, "_id"))
            now = sim_coll_find_iter(en->coll, &it);
        if (now) {
            sim_doc_view(now, &v);
            bson_append_document(out, "fullDocument", 12, &v);
        } else {
            bson_append_null(out, "fullDocument", 12);
        }
    }
    bson_append_document_begin(out, "ns", 2, &nsd);
    bson_append_utf8(&nsd, "db", 2, en->coll->db, -1);
    bson_append_utf8(&nsd, "coll", 4, en->coll->name, -1);
    bson_append_document_end(out, &nsd);
    if (en->op == SIM_EV_INSERT) {
        sim_doc_view(en->o, &v);
        bson_append_document_begin(out, "documentKey", 11, &dk);
        if (bson_iter_init_find(&it, &v, "_id"))
            bson_append_iter(&dk, "_id", 3, &it);
        bson_append_document_end(out, &dk);
    } else {
        sim_doc_view(en->key, &v);
        bson_append_document(out, "documentKey", 11, &v);
    }
    if (en->op == SIM_EV_UPDATE)
        append_update_description(out, en->o);
}

/* mongod's BSONObjectTooLarge for an event it cannot send; the message
 * names the event's first element, its resume token, as mongod's does. */
static long cs_too_large(const bson_t *ev, sim_err_t *e)
{
    bson_iter_t it, tok;
    const char *data = "";
    if (bson_iter_init_find(&it, ev, "_id") && bson_iter_recurse(&it, &tok) && bson_iter_find(&tok, "_data") &&
        BSON_ITER_HOLDS_UTF8(&tok))
        data = bson_iter_utf8(&tok, NULL);
    return sim_err_set(e, 10334,
                       "Executor error during getMore :: caused by :: BSONObj size: %u (0x%X) is invalid. Size "
                       "must be between 0 and 16793600(16MB) First element: _id: { _data: \"%s\" }",
                       ev->len, ev->len, data);
}

static void arr_push(bson_t *arr, uint32_t *idx, const bson_t *doc)
{
    char kb[16];
    const char *key;
    size_t kl = bson_uint32_to_string((*idx)++, &key, kb, sizeof kb);
    bson_append_document(arr, key, (int)kl, doc);
}

/* ---- $changeStreamSplitLargeEvent (7.0, 6.0.9) ---- */

#define SPLIT_MAX_FIELDS 64

typedef struct split_field {
    bson_iter_t it;
    const char *key;
    uint32_t size;  /* the whole element: type, key, value */
    uint32_t frag;
} split_field_t;

/* As mongod orders them: by size, then by name, so that the first fragment
 * holds as many fields as fit. */
static int split_cmp(const void *a, const void *b)
{
    const split_field_t *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* Assign the top-level fields of ev (all but _id) to fragments greedily, in
 * size order, each fragment within the limit with its _id and splitEvent.
 * Returns the number of fragments, or -1 with e set (a field too large for
 * any fragment: mongod's 7182500). */
static int split_plan(const sim_store_t *s, uint64_t ts, const bson_t *ev, split_field_t *f, size_t *nf,
                      sim_err_t *e)
{
    bson_iter_t it;
    size_t n = 0;
    if (!bson_iter_init(&it, ev))
        return sim_err_set(e, 7182502, "Cannot split an empty event");
    while (bson_iter_next(&it)) {
        if (!strcmp(bson_iter_key(&it), "_id"))
            continue;
        if (n == SPLIT_MAX_FIELDS)
            return sim_err_set(e, 7182500, "Splitting change event failed: more than %d fields", SPLIT_MAX_FIELDS);
        f[n] = (split_field_t){it, bson_iter_key(&it), it.next_off - it.off, 0};
        n++;
    }
    if (!n)
        return sim_err_set(e, 7182502, "Cannot split an empty event or an event containing solely '_id' field");
    qsort(f, n, sizeof *f, split_cmp);
    bson_t head = BSON_INITIALIZER, se;
    sim_token_append_sub(&head, "_id", ts, SIM_TOKEN_FRAGMENT);
    size_t tok = head.len - 5, max = s->max_event_bytes - tok; /* room for the PBRT, as mongod leaves */
    BSON_APPEND_DOCUMENT_BEGIN(&head, "splitEvent", &se);
    BSON_APPEND_INT32(&se, "fragment", 1);
    BSON_APPEND_INT32(&se, "of", 0);
    bson_append_document_end(&head, &se);
    size_t base = head.len;
    bson_destroy(&head);
    uint32_t frag = 0;
    for (size_t i = 0; i < n; frag++) {
        size_t size = base;
        do {
            f[i].frag = frag;
            size += f[i++].size;
        } while (i < n && size + f[i].size <= max);
        if (size > max)
            return sim_err_set(e, 7182500, "Splitting change event failed: fragment size %zu is greater than maximum "
                                           "allowed fragment size %zu", size, max);
    }
    if (frag > SIM_MAX_FRAGMENTS)
        return sim_err_set(e, 7182500, "Splitting change event failed: more than %u fragments", SIM_MAX_FRAGMENTS);
    *nf = n;
    return (int)frag;
}

static void split_render(uint64_t ts, uint32_t k, int m, const split_field_t *f, size_t nf, bson_t *out)
{
    bson_t se;
    sim_token_append_sub(out, "_id", ts, SIM_TOKEN_FRAGMENT | k);
    BSON_APPEND_DOCUMENT_BEGIN(out, "splitEvent", &se);
    BSON_APPEND_INT32(&se, "fragment", (int32_t)k + 1);
    BSON_APPEND_INT32(&se, "of", m);
    bson_append_document_end(out, &se);
    for (size_t i = 0; i < nf; i++)
        if (f[i].frag == k)
            bson_append_iter(out, f[i].key, -1, &f[i].it);
}

/* Send the fragments of the too-large event ev (the entry at ts) from
 * cur->frag_done on, as many as the batch takes. Returns 1 when the last
 * was sent, 0 when the batch is full (or SPLIT_HOLD holds the rest), -1
 * with e set. */
static int cs_fill_fragments(sim_store_t *s, sim_cursor_t *cur, uint64_t ts, const bson_t *ev, bson_t *arr,
                             uint32_t *idx, long *n, size_t max_events, size_t max_bytes, sim_err_t *e)
{
    split_field_t f[SPLIT_MAX_FIELDS];
    size_t nf = 0;
    int m = split_plan(s, ts, ev, f, &nf, e);
    if (m < 0)
        return -1;
    if (cur->frag_ts != ts) {
        cur->frag_ts = ts;
        cur->frag_done = 0;
    }
    while (cur->frag_done < (uint32_t)m) {
        if ((s->frag_hold && cur->frag_done >= s->frag_hold) || (size_t)*n >= max_events)
            return 0;
        bson_t frag = BSON_INITIALIZER;
        split_render(ts, cur->frag_done, m, f, nf, &frag);
        bool fits = *n == 0 || (size_t)arr->len + frag.len + 16 <= max_bytes;
        if (fits)
            arr_push(arr, idx, &frag);
        bson_destroy(&frag);
        if (!fits)
            return 0;
        (*n)++;
        cur->frag_done++;
        s->frags_sent++;
    }
    return 1;
}

/* Deliver the pending invalidate if it fits; the cursor is then closed. */
static long cs_fill_invalidate(sim_cursor_t *cur, bson_t *arr, uint32_t *idx, long n, size_t max_events,
                               size_t max_bytes, bson_t *scratch)
{
    bson_reinit(scratch);
    cs_invalidate_event(cur, scratch);
    if ((size_t)n >= max_events || (n > 0 && (size_t)arr->len + scratch->len + 16 > max_bytes))
        return n;
    arr_push(arr, idx, scratch);
    cur->inv_pending = false;
    cur->invalidated = true;
    return n + 1;
}

long sim_cs_fill(sim_store_t *s, sim_cursor_t *cur, bson_t *arr, uint32_t *idx, size_t max_events,
                 size_t max_bytes, bson_t *scratch, sim_err_t *e)
{
    long n = 0;
    if (cur->invalidated)
        return 0;
    if (cur->inv_pending)
        return cs_fill_invalidate(cur, arr, idx, 0, max_events, max_bytes, scratch);
    if (cur->next_seq < s->first_seq) {
        if (s->evicted_max > cur->after)
            return sim_err_set(e, 286, "Resume of change stream was not possible, as the resume point may no "
                                       "longer be in the oplog.");
        cur->next_seq = s->first_seq;
    }
    cs_resolve(s, cur);
    for (uint64_t seq = cur->next_seq; seq < s->end_seq && (size_t)n < max_events; seq++) {
        const sim_entry_t *en = sim_oplog_at(s, seq);
        bool wanted = en->ts > cur->after && cs_wants(cur, en);
        if (wanted) {
            bson_reinit(scratch);
            cs_event(cur, en, scratch);
            bool big = s->max_event_bytes && scratch->len > s->max_event_bytes;
            if (cur->frag_ts == en->ts && cur->frag_done && !big)
                return sim_err_set(e, 280, "Attempting to resume a change stream from a split event fragment, but "
                                           "the event in the resumed stream is not split");
            if (big && !cur->split) {
                if (n > 0)
                    break; /* the events before it first */
                return cs_too_large(scratch, e);
            }
            if (!cur->match || sim_match(scratch, cur->match)) {
                int r = 1;
                if (big && (r = cs_fill_fragments(s, cur, en->ts, scratch, arr, idx, &n, max_events, max_bytes, e)) < 0)
                    return -1;
                if (r == 0 || (!big && n > 0 && (size_t)arr->len + scratch->len + 16 > max_bytes))
                    break; /* the rest of the event (or the event) in the next batch */
                if (!big) {
                    arr_push(arr, idx, scratch);
                    n++;
                }
            }
        }
        if (en->ts > cur->after) {
            cur->after = en->ts;
            cur->past_inv = false;
            cur->frag_ts = 0;
            cur->frag_done = 0;
        }
        cur->next_seq = seq + 1;
        if (wanted && cs_invalidates(cur, en)) {
            cur->inv_pending = true;
            cur->inv_wall_ms = en->wall_ms;
            return cs_fill_invalidate(cur, arr, idx, n, max_events, max_bytes, scratch);
        }
    }
    return n;
}
