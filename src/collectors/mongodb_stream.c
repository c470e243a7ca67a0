/* SPDX-License-Identifier: Apache-2.0 */
/* Change stream threads of the MongoDB collectors.
 *
 * The stream is driven with plain aggregate/getMore commands pinned to one
 * server, so every reply is one batch we can account for: fold the batch,
 * save token + totals (mongo/mongo_state.h), then apply the batch to the
 * persistent registry. A scrape therefore never shows a count the state
 * file does not hold, and a restarted exporter, reading the file, continues
 * the same counters from the same position: no event missed, none twice.
 *
 * Events over 16 MB: the pipeline ends with $changeStreamSplitLargeEvent
 * (dropped for good after a 40324 from a server that does not know it); the
 * fragments are joined by the batch (mongo_event.h) and the event counted
 * with its last one, the saved position staying before the event until
 * then. Without the stage such an event is skipped (BSONObjectTooLarge).
 *
 * Errors: resumable ones (network, the ResumableChangeStreamError label and
 * the specification's codes) reopen the stream after the saved token with
 * capped exponential backoff, for ever; history loss (286/280) is counted,
 * logged once and the stream restarts from now; other errors are retried
 * the same way as resumable ones and logged.
 *
 * Reload: a new collector set is built before the old one is destroyed, so
 * two threads for one stream may exist for a moment. A table of slots, one
 * per cluster/stream, in a store the app owns (poh_mongodb_store_t, handed
 * over in poh_collector_env_t) lets only one run at a time; the slot keeps
 * the in-memory state, so the successor neither reloads the file into the
 * counters a second time nor loses the position. Slots live as long as the
 * store (a few hundred bytes each). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collectors/mongodb_internal.h"
#include "collectors/mongodb_metrics.h"
#include "core/clock.h"
#include "core/log.h"
#include "mongo/mongo_state.h"

#define MODULE "mongodb"
#define AWAIT_MS 500            /* getMore maxTimeMS: also bounds how long a stop takes */
#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 10.0
#define IDLE_SAVE_INTERVAL 10.0 /* seconds between saves of a token that moved without events */
#define EVENT_BYTES_GUESS 1024  /* event size assumed until a larger one is seen */
#define MAX_BATCH 10000         /* events per batch, whatever the memory allows */

typedef struct slot {
    struct slot *next;
    char *key;
    bool busy;
    const poh_registry_t *loaded_into; /* registry whose counters include st's totals */
    poh_mongo_state_t st;
} slot_t;

struct poh_mongodb_store {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a slot was released, or a stream asked to stop */
    slot_t *slots;
};

poh_mongodb_store_t *poh_mongodb_store_new(void)
{
    poh_mongodb_store_t *store = calloc(1, sizeof *store);
    if (!store)
        return NULL;
    pthread_mutex_init(&store->mu, NULL);
    pthread_cond_init(&store->cv, NULL);
    return store;
}

void poh_mongodb_store_free(poh_mongodb_store_t *store)
{
    if (!store)
        return;
    for (slot_t *sl = store->slots, *next; sl; sl = next) {
        next = sl->next;
        poh_mongo_state_clear(&sl->st);
        free(sl->key);
        free(sl);
    }
    pthread_mutex_destroy(&store->mu);
    pthread_cond_destroy(&store->cv);
    free(store);
}

static const char *const l_stream[] = {"cluster", "stream"};

struct mongo_stream {
    mongo_cluster_t *cl;
    char *name, *db, *coll, *ns, *key, *file, *lock_file;
    poh_mongo_stream_spec_t spec;
    poh_mongo_batch_t batch;

    poh_family_t *f_changes, *f_field_err;
    poh_series_t *s_changes[POH_OP_COUNT]; /* created on first use */
    poh_series_t **s_field_err;            /* per spec field and reason, created on first use */
    poh_series_t **s_lat;                  /* per latency */
    poh_series_t *s_resumes, *s_lost, *s_inv, *s_lost_s, *s_big;

    pthread_t th;
    bool started;
    atomic_bool stop;
    pthread_mutex_t mu;                    /* cv for naps; guards status and error */
    pthread_cond_t cv;
    atomic_llong newest_wall_ms;
    atomic_bool open;
    char status[48];
    char error[256];

    /* Owned by the thread. */
    poh_span_rate_limit_t span_rl;         /* storage.commit spans */
    slot_t *slot;
    int dirfd, lockfd;
    mongoc_client_t *client;
    uint32_t server_id;
    int64_t cursor_id;
    bool failing;                          /* an error since the last success */
    double last_save;
    unsigned long long warned_code;        /* domain << 32 | code of the last warning */
    uint32_t max_event;                    /* largest event seen, bytes */
    bool no_split_stage;                   /* the server refused $changeStreamSplitLargeEvent */
};

/* --------------------------------------------------------------- status */

static void set_status(mongo_stream_t *s, const char *status, const char *error)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->status, sizeof s->status, "%s", status);
    if (error)
        snprintf(s->error, sizeof s->error, "%s", error);
    pthread_mutex_unlock(&s->mu);
}

/* Sleep up to sec unless asked to stop; false when stopping. */
static bool nap(mongo_stream_t *s, double sec)
{
    struct timespec abs = poh_mono_to_abs_realtime(poh_now_mono() + sec);
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stop))
        if (pthread_cond_timedwait(&s->cv, &s->mu, &abs) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->mu);
    return !atomic_load(&s->stop);
}

static double next_backoff(double b)
{
    return b * 2 < BACKOFF_MAX ? b * 2 : BACKOFF_MAX;
}

/* ---------------------------------------------------------------- slots */

static slot_t *slot_acquire(mongo_stream_t *s)
{
    poh_mongodb_store_t *store = s->cl->store;
    pthread_mutex_lock(&store->mu);
    slot_t *sl = store->slots;
    while (sl && strcmp(sl->key, s->key))
        sl = sl->next;
    if (!sl) {
        sl = calloc(1, sizeof *sl);
        if (!sl || !(sl->key = strdup(s->key))) {
            free(sl);
            pthread_mutex_unlock(&store->mu);
            return NULL;
        }
        sl->next = store->slots;
        store->slots = sl;
    }
    while (sl->busy && !atomic_load(&s->stop)) {
        struct timespec abs = poh_mono_to_abs_realtime(poh_now_mono() + 0.5);
        pthread_cond_timedwait(&store->cv, &store->mu, &abs);
    }
    bool ok = !sl->busy;
    sl->busy |= ok;
    pthread_mutex_unlock(&store->mu);
    return ok ? sl : NULL;
}

static void slot_release(poh_mongodb_store_t *store, slot_t *sl)
{
    pthread_mutex_lock(&store->mu);
    sl->busy = false;
    pthread_cond_broadcast(&store->cv);
    pthread_mutex_unlock(&store->mu);
}

/* -------------------------------------------------------------- metrics */

static poh_series_t *op_series(mongo_stream_t *s, const char *op)
{
    const char *lv[] = {s->cl->name, s->name, op};
    return poh_family_series(s->f_changes, lv);
}

static poh_series_t *field_series(mongo_stream_t *s, const char *field, int reason)
{
    const char *lv[] = {s->cl->name, s->name, field, poh_mongo_field_reason_name(reason)};
    return poh_family_series(s->f_field_err, lv);
}

/* The saved totals join the counters once per process (and registry).
 * Field errors saved before reasons existed come back as reason="unknown". */
static void restore_counters(mongo_stream_t *s, const poh_mongo_state_t *st)
{
    for (size_t i = 0; i < st->nchanges; i++)
        poh_counter_add(op_series(s, st->changes[i].name), (double)st->changes[i].n);
    for (size_t i = 0; i < st->nfield_errors; i++) {
        int reason;
        const char *field = poh_mongo_field_error_split(st->field_errors[i].name, &reason);
        poh_counter_add(field_series(s, field, reason), (double)st->field_errors[i].n);
    }
    poh_counter_add(s->s_resumes, (double)st->resumes);
    poh_counter_add(s->s_lost, (double)st->history_lost);
    poh_counter_add(s->s_inv, (double)st->invalidations);
    poh_counter_add(s->s_lost_s, (double)st->history_lost_seconds);
    poh_counter_add(s->s_big, (double)st->too_large);
    /* Histograms saved with other buckets (or not at all) start empty. */
    for (size_t l = 0; l < s->spec.nlat; l++) {
        const poh_mongo_hist_t *h =
            poh_mongo_hist_find(st, s->spec.lat[l].name, s->spec.bounds, s->spec.nbounds);
        if (h)
            poh_histogram_restore(s->s_lat[l], h->counts, h->nbounds + 1, h->sum);
    }
}

/* Fold a batch's latency values into the saved histograms (the registry's
 * get the same values in apply_batch). A latency beyond the state's room is
 * not saved: its histogram starts empty after a restart. */
static void fold_histograms(mongo_stream_t *s, const poh_mongo_batch_t *b, poh_mongo_state_t *next)
{
    for (size_t l = 0; l < s->spec.nlat; l++) {
        const poh_mongo_lat_values_t *lv = &b->lat[l];
        if (!lv->n)
            continue;
        poh_mongo_hist_t *h =
            poh_mongo_hist_slot(next, s->spec.lat[l].name, s->spec.bounds, s->spec.nbounds);
        for (size_t i = 0; h && i < lv->n; i++)
            poh_mongo_hist_observe(h, lv->v[i]);
    }
}

/* Unix ms to ns, whole milliseconds scaled in integers: a double of ns
 * since 1970 is only good to 256 ns and could round below the millisecond.
 * Times past 2554 (beyond uint64 ns) are clamped, never wrapped. */
static uint64_t ms_to_ns(double ms)
{
    const uint64_t max_ms = UINT64_MAX / 1000000u - 1;
    if (!(ms > 0))
        return 0;
    if (ms >= (double)max_ms)
        return max_ms * 1000000u;
    double whole = floor(ms);
    return (uint64_t)whole * 1000000u + (uint64_t)llround((ms - whole) * 1e6);
}

/* storage.commit spans: children of the application's traces, from the
 * document's timestamp to its commit, within the stream's rate limit. */
static void commit_spans(mongo_stream_t *s, const poh_mongo_batch_t *b)
{
    poh_tracer_t *t = s->cl->tracer;
    for (size_t i = 0; t && i < b->nspans; i++) {
        const poh_mongo_commit_span_t *c = &b->spans[i];
        if (!poh_span_rate_limit_take(&s->span_rl))
            continue;
        uint64_t from = ms_to_ns(c->from_ms), to = ms_to_ns(c->commit_ms);
        poh_span_t *sp = poh_span_start_at(t, "storage.commit", POH_SPAN_KIND_INTERNAL,
                                           &c->parent, from);
        poh_span_set_str(sp, "db.system", "mongodb");
        poh_span_set_str(sp, "db.name", s->db);
        poh_span_set_str(sp, "db.mongodb.collection", s->coll);
        poh_span_set_str(sp, "poh.cluster", s->cl->name);
        poh_span_set_str(sp, "poh.stream", s->name);
        poh_span_end_at(sp, to > from ? to : from);
    }
}

static void apply_batch(mongo_stream_t *s, const poh_mongo_batch_t *b)
{
    commit_spans(s, b);
    for (int op = 0; op < POH_OP_COUNT; op++) {
        if (!b->ops[op])
            continue;
        if (!s->s_changes[op])
            s->s_changes[op] = op_series(s, poh_mongo_op_name(op));
        poh_counter_add(s->s_changes[op], (double)b->ops[op]);
    }
    for (size_t i = 0; i < s->spec.nfields * POH_FIELD_REASONS; i++) {
        if (!b->field_errors[i])
            continue;
        if (!s->s_field_err[i])
            s->s_field_err[i] = field_series(s, s->spec.fields[i / POH_FIELD_REASONS],
                                             (int)(i % POH_FIELD_REASONS));
        poh_counter_add(s->s_field_err[i], (double)b->field_errors[i]);
    }
    const poh_mongo_exemplar_t *ex[POH_MAX_BUCKETS + 1];
    for (size_t l = 0; l < s->spec.nlat; l++) {
        const poh_mongo_lat_values_t *lv = &b->lat[l];
        size_t nex = poh_mongo_batch_exemplars(b, &s->spec, l, ex), j = 0;
        for (size_t i = 0; i < lv->n; i++) {
            if (j < nex && ex[j]->idx == (int64_t)i) {
                poh_histogram_observe_exemplar(s->s_lat[l], lv->v[i], ex[j]->trace_id,
                                               ex[j]->span_id, ex[j]->ts);
                j++;
            } else {
                poh_histogram_observe(s->s_lat[l], lv->v[i]);
            }
        }
    }
    if (b->newest_wall > 0) {
        long long ms = (long long)llround(b->newest_wall);
        if (ms > atomic_load(&s->newest_wall_ms))
            atomic_store(&s->newest_wall_ms, ms);
    }
}

/* ---------------------------------------------------------------- state */

/* Log a failure once per distinct error (then at debug level), and show it
 * on the landing page with status what. */
static void warn_once_msg(mongo_stream_t *s, const char *what, const char *msg, int rc)
{
    set_status(s, what, msg);
    unsigned long long key = (0xffffull << 32) | (unsigned)-rc;
    if (s->warned_code == key) {
        POH_DEBUG(MODULE, "%s: %s: %s", s->key, what, msg);
        return;
    }
    s->warned_code = key;
    POH_ERROR(MODULE, "%s: %s: %s", s->key, what, msg);
}

/* The same for an errno; file: the state file concerned, named with
 * state_dir in the message (NULL: none). */
static void warn_once(mongo_stream_t *s, const char *what, const char *file, int rc)
{
    char msg[sizeof s->error];
    if (file)
        snprintf(msg, sizeof msg, "%s/%s: %s", s->cl->state_dir, file,
                 poh_mongo_state_strerror(rc));
    else
        snprintf(msg, sizeof msg, "%s", poh_mongo_state_strerror(rc));
    warn_once_msg(s, what, msg, rc);
}

/* What a commit changes besides a batch and the token. */
typedef struct commit_extra {
    bool clear_token;      /* no token: start from now */
    uint64_t resumes;      /* add to the counters */
    uint64_t lost;
    uint64_t gap_from;     /* open a history gap after this Timestamp, unless one is open */
    bool gap_close;        /* close the open gap, gap_seconds long */
    uint64_t gap_seconds;
    uint64_t too_large;    /* events skipped as too large to be sent */
} commit_extra_t;

/* Save the slot's state with a batch (or a counter bump) folded in, then
 * make it visible. Retries a failing save until it works or the stream
 * stops; the batch is then dropped unapplied and the next owner reads it
 * again from the server. token: the new position (NULL keeps the current
 * one unless x->clear_token). x: NULL for nothing more. */
static int commit(mongo_stream_t *s, const poh_mongo_batch_t *b, const uint8_t *tok,
                  uint32_t tok_len, const commit_extra_t *x)
{
    static const commit_extra_t none = {0};
    if (!x)
        x = &none;
    bool clear_token = x->clear_token;
    slot_t *sl = s->slot;
    /* next shares ns (and the token when it is kept) with the slot's state;
     * only the new token is owned here until the swap. */
    poh_mongo_state_t next = sl->st;
    bson_t *newtok = NULL;
    if (tok) {
        if (!(newtok = bson_new_from_data(tok, tok_len)))
            return -EINVAL;
        next.token = newtok;
    } else if (clear_token) {
        next.token = NULL;
    }
    /* An invalidate's token can only be started after; any other token
     * saved later is resumed after again. */
    bool invalidated = b && b->invalidated;
    if (invalidated || tok || clear_token)
        next.start_after = invalidated;
    next.invalidations += invalidated;
    for (int op = 0; b && op < POH_OP_COUNT; op++) {
        uint64_t *c;
        if (b->ops[op] && (c = poh_mongo_count_slot(next.changes, &next.nchanges,
                                                    poh_mongo_op_name(op))))
            *c += b->ops[op];
    }
    for (size_t i = 0; b && i < s->spec.nfields * POH_FIELD_REASONS; i++) {
        char key[POH_MONGO_STATE_NAME_MAX];
        uint64_t *c;
        if (!b->field_errors[i])
            continue;
        poh_mongo_field_error_key(key, sizeof key, s->spec.fields[i / POH_FIELD_REASONS],
                                  (int)(i % POH_FIELD_REASONS));
        if ((c = poh_mongo_count_slot(next.field_errors, &next.nfield_errors, key)))
            *c += b->field_errors[i];
    }
    if (b)
        fold_histograms(s, b, &next);
    if (b && b->newest_wall > 0 && (int64_t)llround(b->newest_wall) > next.last_wall_ms)
        next.last_wall_ms = (int64_t)llround(b->newest_wall);
    next.resumes += x->resumes;
    next.too_large += x->too_large;
    next.history_lost += x->lost;
    if (x->gap_from && !next.gap_from)
        next.gap_from = x->gap_from;
    if (x->gap_close) {
        next.gap_from = 0;
        next.history_lost_seconds += x->gap_seconds;
    }

    double backoff = BACKOFF_MIN;
    for (;;) {
        int rc = poh_mongo_state_save(s->dirfd, s->file, &next);
        if (rc == 0)
            break;
        warn_once(s, "cannot save state (counting paused)", s->file, rc);
        if (!nap(s, backoff)) {
            if (newtok)
                bson_destroy(newtok);
            return -ECANCELED;
        }
        backoff = next_backoff(backoff);
    }
    if (sl->st.token && sl->st.token != next.token)
        bson_destroy(sl->st.token);
    sl->st = next;
    s->last_save = poh_now_mono();
    if (b)
        apply_batch(s, b);
    poh_counter_add(s->s_resumes, (double)x->resumes);
    poh_counter_add(s->s_lost, (double)x->lost);
    poh_counter_add(s->s_inv, (double)invalidated);
    poh_counter_add(s->s_lost_s, (double)(x->gap_close ? x->gap_seconds : 0));
    poh_counter_add(s->s_big, (double)x->too_large);
    return 0;
}

/* An invalid state file is renamed <file>.corrupt-<unix time>, its bytes
 * kept, and the stream starts from now. When it cannot be renamed it is
 * never overwritten: -1, and the stream waits with the error. */
static int move_aside(mongo_stream_t *s)
{
    char aside[320];
    snprintf(aside, sizeof aside, "%s.corrupt-%lld", s->file, (long long)time(NULL));
    if (renameat(s->dirfd, s->file, s->dirfd, aside) < 0) {
        warn_once(s, "state file is not valid and cannot be moved aside", s->file, -errno);
        return -1;
    }
    POH_ERROR(MODULE, "%s: state file %s/%s is not valid; moved aside as %s, starting "
                      "from now with counters at 0",
              s->key, s->cl->state_dir, s->file, aside);
    return 0;
}

/* Open the state directory, lock this stream's state against another
 * exporter using the same directory, and load the saved state once. Nothing
 * here can block: a FIFO, device or link in place of a state file is
 * refused with its path (mongo_state.h), and the stream retries with backoff
 * until it is removed, so a stop is still prompt. */
static int prepare(mongo_stream_t *s)
{
    slot_t *sl = s->slot;
    int rc;
    if (s->dirfd < 0) {
        s->dirfd = open(s->cl->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dirfd < 0) {
            rc = -errno;
            warn_once(s, "cannot open state_dir", NULL, rc);
            return rc;
        }
    }
    /* Checked at start too (mongodb.c); again here on the directory we
     * hold, which is the one every state file is opened in. */
    struct stat st;
    char why[128], msg[sizeof s->error];
    if (fstat(s->dirfd, &st) < 0) {
        rc = -errno;
        snprintf(why, sizeof why, "cannot be examined: %s", strerror(-rc));
    } else {
        rc = poh_mongo_state_dir_check(&st, geteuid(), why, sizeof why);
    }
    if (rc < 0) {
        snprintf(msg, sizeof msg, "state_dir %s %s", s->cl->state_dir, why);
        warn_once_msg(s, "unsafe state_dir, waiting until it is fixed", msg, rc);
        close(s->dirfd);
        s->dirfd = -1;
        return rc;
    }
    if (s->lockfd < 0) {
        s->lockfd = poh_mongo_state_open_lock(s->dirfd, s->lock_file);
        if (s->lockfd < 0) {
            rc = s->lockfd;
            s->lockfd = -1;
            warn_once(s, "cannot open the state lock file", s->lock_file, rc);
            return rc;
        }
    }
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
        rc = -errno;
        warn_once(s, rc == -EWOULDBLOCK ? "another process uses this stream's state file"
                                        : "cannot lock the state file",
                  s->lock_file, rc);
        return rc;
    }
    if (sl->loaded_into != s->cl->persistent) {
        rc = poh_mongo_state_load(s->dirfd, s->file, &sl->st);
        if (rc == -EBADMSG) {
            if (move_aside(s) < 0)
                return -EBADMSG;
        } else if (rc < 0 && rc != -ENOENT) {
            warn_once(s, "cannot use the state file", s->file, rc);
            return rc;
        } else if (rc == 0) {
            POH_INFO(MODULE, "%s: resuming from the saved state (%s)", s->key,
                     sl->st.token ? "with a resume token" : "no resume token");
        }
        restore_counters(s, &sl->st);
        sl->loaded_into = s->cl->persistent;
    }
    if (sl->st.ns && strcmp(sl->st.ns, s->ns)) {
        POH_WARN(MODULE, "%s: the stream now watches %s instead of %s; starting from now",
                 s->key, s->ns, sl->st.ns);
        poh_mongo_state_set_token(&sl->st, NULL, 0);
        sl->st.start_after = false;
    }
    if (!sl->st.ns || strcmp(sl->st.ns, s->ns))
        if (poh_mongo_state_set_ns(&sl->st, s->ns) < 0)
            return -ENOMEM;
    if (sl->st.last_wall_ms > atomic_load(&s->newest_wall_ms))
        atomic_store(&s->newest_wall_ms, sl->st.last_wall_ms);
    s->warned_code = 0;
    return 0;
}

/* ------------------------------------------------------------- commands */

typedef struct cmd_err {
    bson_error_t err;
    poh_mongo_err_kind_t kind;
} cmd_err_t;

static bool run(mongo_stream_t *s, const bson_t *cmd, bson_t *reply, cmd_err_t *ce)
{
    bool ok = mongoc_client_command_simple_with_server_id(s->client, s->db, cmd, NULL,
                                                          s->server_id, reply, &ce->err);
    if (!ok)
        ce->kind = poh_mongo_error_kind(&ce->err, reply);
    return ok;
}

/* Events asked for per batch: the stream's share of memory.buffer_limit over
 * the largest event seen so far, so that a reply stays within the share
 * however large the events (at least one event, whatever its size). */
static int64_t batch_size(const mongo_stream_t *s)
{
    size_t ev = s->max_event > EVENT_BYTES_GUESS ? s->max_event : EVENT_BYTES_GUESS;
    size_t n = s->cl->stream_batch_bytes / ev;
    return n < 1 ? 1 : n > MAX_BATCH ? MAX_BATCH : (int64_t)n;
}

/* Fold a cursor reply's batch, save, apply; then remember the cursor. */
static int process_reply(mongo_stream_t *s, const bson_t *reply, const char *batch_key,
                         cmd_err_t *ce)
{
    bson_iter_t it, cur, arr;
    const uint8_t *pbrt = NULL;
    uint32_t pbrt_len = 0;
    int64_t id = -1;
    bool have_batch = false;
    if (!bson_iter_init_find(&it, reply, "cursor") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
        !bson_iter_recurse(&it, &cur))
        goto bad;
    while (bson_iter_next(&cur)) {
        const char *k = bson_iter_key(&cur);
        if (!strcmp(k, "id") && BSON_ITER_HOLDS_INT(&cur))
            id = bson_iter_as_int64(&cur);
        else if (!strcmp(k, batch_key) && BSON_ITER_HOLDS_ARRAY(&cur))
            have_batch = bson_iter_recurse(&cur, &arr);
        else if (!strcmp(k, "postBatchResumeToken") && BSON_ITER_HOLDS_DOCUMENT(&cur))
            bson_iter_document(&cur, &pbrt_len, &pbrt);
    }
    if (id < 0 || !have_batch)
        goto bad;

    poh_mongo_batch_t *b = &s->batch;
    poh_mongo_batch_reset(b, &s->spec);
    while (bson_iter_next(&arr)) {
        const uint8_t *d;
        uint32_t n;
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr))
            goto bad;
        bson_iter_document(&arr, &n, &d);
        if (n > s->max_event)
            s->max_event = n;
        int rc = poh_mongo_batch_add(b, &s->spec, d, n);
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0)
            goto bad; /* an event without a resume token: we could not resume after it */
    }
    /* Inside a split event the position saved is the last whole event's:
     * the reply's postBatchResumeToken points between its fragments. */
    if (b->split.of)
        pbrt = NULL;
    const uint8_t *tok = pbrt ? pbrt : b->last_id;
    uint32_t tok_len = pbrt ? pbrt_len : b->last_id_len;
    const bson_t *cur_tok = s->slot->st.token;
    bool moved = tok && (!cur_tok || cur_tok->len != tok_len ||
                         memcmp(bson_get_data(cur_tok), tok, tok_len));
    bool save = b->events > 0 ||
                (moved && (!cur_tok || poh_now_mono() - s->last_save >= IDLE_SAVE_INTERVAL));
    if (save) {
        int rc = commit(s, b, moved ? tok : NULL, tok_len, NULL);
        if (rc == -EINVAL)
            goto bad; /* the token is not a BSON document */
        if (rc < 0)
            return rc;
    }
    s->cursor_id = id;
    if (b->invalidated) {
        /* The server closed the cursor; the saved token is the invalidate's. */
        POH_WARN(MODULE, "%s: change stream invalidated (%s dropped or renamed, or its database "
                         "dropped); reopening after the invalidate with startAfter",
                 s->key, s->ns);
        s->cursor_id = 0;
    }
    return 0;
bad:
    bson_set_error(&ce->err, MONGOC_ERROR_PROTOCOL, MONGOC_ERROR_PROTOCOL_INVALID_REPLY,
                   "malformed change stream reply");
    ce->kind = POH_MONGO_ERR_RESUMABLE;
    return -EPROTO;
}

static void close_gap(mongo_stream_t *s, const bson_t *reply);

static int stream_open(mongo_stream_t *s, cmd_err_t *ce)
{
    const mongoc_read_prefs_t *prefs = mongoc_client_get_read_prefs(s->client);
    mongoc_server_description_t *sd = mongoc_client_select_server(s->client, false, prefs,
                                                                  &ce->err);
    if (!sd) {
        ce->kind = POH_MONGO_ERR_RESUMABLE;
        return -EHOSTUNREACH;
    }
    s->server_id = mongoc_server_description_id(sd);
    mongoc_server_description_destroy(sd);

    /* The server starts again at the saved token: before any fragment. */
    poh_mongo_batch_split_reset(&s->batch);
    bson_t cmd = BSON_INITIALIZER, pipeline, stage, cs, cursor, reply;
    BSON_APPEND_UTF8(&cmd, "aggregate", s->coll);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "pipeline", &pipeline);
    BSON_APPEND_DOCUMENT_BEGIN(&pipeline, "0", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$changeStream", &cs);
    if (s->spec.update_lookup)
        BSON_APPEND_UTF8(&cs, "fullDocument", "updateLookup");
    if (s->slot->st.token)
        BSON_APPEND_DOCUMENT(&cs, s->slot->st.start_after ? "startAfter" : "resumeAfter",
                             s->slot->st.token);
    bson_append_document_end(&stage, &cs);
    bson_append_document_end(&pipeline, &stage);
    if (!s->no_split_stage) { /* events over 16 MB come in fragments (7.0, 6.0.9) */
        BSON_APPEND_DOCUMENT_BEGIN(&pipeline, "1", &stage);
        BSON_APPEND_DOCUMENT_BEGIN(&stage, "$changeStreamSplitLargeEvent", &cs);
        bson_append_document_end(&stage, &cs);
        bson_append_document_end(&pipeline, &stage);
    }
    bson_append_array_end(&cmd, &pipeline);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "cursor", &cursor);
    BSON_APPEND_INT64(&cursor, "batchSize", batch_size(s));
    bson_append_document_end(&cmd, &cursor);
    int rc = run(s, &cmd, &reply, ce) ? process_reply(s, &reply, "firstBatch", ce) : -EIO;
    if (rc == 0 && s->slot->st.gap_from)
        close_gap(s, &reply);
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return rc;
}

static int stream_getmore(mongo_stream_t *s, cmd_err_t *ce)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT64(&cmd, "getMore", s->cursor_id);
    BSON_APPEND_UTF8(&cmd, "collection", s->coll);
    BSON_APPEND_INT64(&cmd, "batchSize", batch_size(s));
    BSON_APPEND_INT64(&cmd, "maxTimeMS", AWAIT_MS);
    int rc = run(s, &cmd, &reply, ce) ? process_reply(s, &reply, "nextBatch", ce) : -EIO;
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return rc;
}

static void kill_cursor(mongo_stream_t *s)
{
    bson_t cmd = BSON_INITIALIZER, ids, reply;
    cmd_err_t ce;
    BSON_APPEND_UTF8(&cmd, "killCursors", s->coll);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "cursors", &ids);
    BSON_APPEND_INT64(&ids, "0", s->cursor_id);
    bson_append_array_end(&cmd, &ids);
    run(s, &cmd, &reply, &ce);
    bson_destroy(&reply);
    bson_destroy(&cmd);
    s->cursor_id = 0;
}

/* --------------------------------------------------------------- thread */

static void report_error(mongo_stream_t *s, const cmd_err_t *ce)
{
    char msg[256];
    mongo_cluster_scrub(s->cl, ce->err.message, msg, sizeof msg);
    unsigned long long key = ((unsigned long long)ce->err.domain << 32) | ce->err.code;
    if (key != s->warned_code) {
        s->warned_code = key;
        POH_WARN(MODULE, "%s: change stream error, retrying with backoff: %s", s->key, msg);
    } else {
        POH_DEBUG(MODULE, "%s: change stream error: %s", s->key, msg);
    }
    set_status(s, ce->kind == POH_MONGO_ERR_OTHER ? "failing, retrying" : "resuming", msg);
}

static void history_lost(mongo_stream_t *s, const cmd_err_t *ce)
{
    char msg[256];
    mongo_cluster_scrub(s->cl, ce->err.message, msg, sizeof msg);
    POH_WARN(MODULE, "%s: change stream history lost (%s); events since the saved position are "
                     "missed, restarting from now",
             s->key, msg);
    set_status(s, "history lost, restarted", msg);
    /* The gap starts at the lost position: the token's cluster time, or
     * the newest event's wallTime when the token is opaque. */
    const poh_mongo_state_t *st = &s->slot->st;
    uint64_t from = poh_mongo_token_time(st->token);
    if (!from && st->last_wall_ms > 0)
        from = (uint64_t)(st->last_wall_ms / 1000) << 32;
    commit_extra_t x = {.clear_token = true, .lost = 1, .gap_from = from};
    commit(s, NULL, NULL, 0, &x);
    s->failing = false;
}

/* A stream open again after history was lost: the gap ends where the
 * server started it (the reply's operationTime). The seconds between are
 * exact; how many events they held is not knowable, since the oplog no
 * longer has them (and holds no count of what it dropped). */
static void close_gap(mongo_stream_t *s, const bson_t *reply)
{
    bson_iter_t it;
    uint32_t t = 0, i = 0;
    uint64_t from = s->slot->st.gap_from;
    if (bson_iter_init_find(&it, reply, "operationTime") && BSON_ITER_HOLDS_TIMESTAMP(&it))
        bson_iter_timestamp(&it, &t, &i);
    else
        t = (uint32_t)poh_now_real(); /* a server without operationTime: our clock */
    uint32_t from_t = (uint32_t)(from >> 32);
    commit_extra_t x = {.gap_close = true, .gap_seconds = t > from_t ? t - from_t : 0};
    if (commit(s, NULL, NULL, 0, &x) < 0)
        return;
    POH_WARN(MODULE, "%s: history gap: %llu s of history not seen, from Timestamp(%u, %u) to the "
                     "restart at Timestamp(%u, %u); the events in it are not counted (the oplog "
                     "no longer holds them, so their number is unknown)",
             s->key, (unsigned long long)x.gap_seconds, from_t, (uint32_t)from, t, i);
}

/* BSONObjectTooLarge (10334): the next event is over 16 MB and the server
 * (before 7.0, or without $changeStreamSplitLargeEvent) cannot send it, so
 * reopening at the saved token fails the same way for ever. mongod names
 * the event's resume token in the message ("First element: _id: { _data:
 * \"...\" }"): save it, so the stream resumes after that event, and count
 * the event as too large (not in changes_total: its type is not known).
 * Returns false when the message holds no token (then retried as before). */
static bool skip_too_large(mongo_stream_t *s, const cmd_err_t *ce)
{
    const char *p = strstr(ce->err.message, "_data: \"");
    if (!p)
        return false;
    p += 8;
    size_t n = strspn(p, "0123456789abcdefABCDEF");
    if (n < 2 || n > 1024 || p[n] != '"')
        return false;
    char hex[1025];
    memcpy(hex, p, n);
    hex[n] = 0;
    bson_t *tok = BCON_NEW("_data", BCON_UTF8(hex));
    commit_extra_t x = {.too_large = 1};
    int rc = commit(s, NULL, bson_get_data(tok), tok->len, &x);
    bson_destroy(tok);
    if (rc < 0)
        return false;
    POH_WARN(MODULE, "%s: a change event over 16 MB could not be read (BSONObjectTooLarge); "
                     "skipped after its resume token %s and counted in "
                     "poh_mongodb_change_stream_events_too_large_total",
             s->key, hex);
    s->failing = false;
    return true;
}

/* 40324 to an aggregate with $changeStreamSplitLargeEvent: a server before
 * 7.0 and 6.0.9 does not know the stage. Open without it from now on (an
 * event over 16 MB is then skipped as BSONObjectTooLarge); logged once per
 * stream. False for any other error. */
static bool drop_split_stage(mongo_stream_t *s, const cmd_err_t *ce)
{
    if (s->no_split_stage || ce->err.code != 40324 ||
        !strstr(ce->err.message, "$changeStreamSplitLargeEvent"))
        return false;
    s->no_split_stage = true;
    POH_WARN(MODULE, "%s: the server does not know $changeStreamSplitLargeEvent (before MongoDB "
                     "7.0 and 6.0.9); reading the change stream without it: an event over 16 MB "
                     "will be skipped and counted in "
                     "poh_mongodb_change_stream_events_too_large_total",
             s->key);
    return true;
}

static void *stream_main(void *arg)
{
    mongo_stream_t *s = arg;
    double backoff = BACKOFF_MIN;
    set_status(s, "waiting for the previous owner", NULL);
    if (!(s->slot = slot_acquire(s)))
        return NULL;
    set_status(s, "preparing state", NULL);
    while (!atomic_load(&s->stop) && prepare(s) < 0) {
        if (!nap(s, backoff))
            break;
        backoff = next_backoff(backoff);
    }
    if (!atomic_load(&s->stop))
        s->client = mongoc_client_pool_pop(s->cl->pool);
    backoff = BACKOFF_MIN;
    while (s->client && !atomic_load(&s->stop)) {
        cmd_err_t ce = {0};
        bool opening = s->cursor_id == 0;
        bool resumed = opening && s->failing && s->slot->st.token;
        int rc = opening ? stream_open(s, &ce) : stream_getmore(s, &ce);
        if (rc == -ECANCELED)
            break;
        if (rc == 0) {
            atomic_store(&s->open, s->cursor_id != 0);
            if (opening) {
                if (resumed) {
                    commit_extra_t x = {.resumes = 1};
                    commit(s, NULL, NULL, 0, &x);
                    POH_INFO(MODULE, "%s: change stream resumed", s->key);
                }
                set_status(s, "streaming", "");
            }
            s->failing = false;
            s->warned_code = 0;
            backoff = BACKOFF_MIN;
            continue;
        }
        atomic_store(&s->open, false);
        s->cursor_id = 0;
        if (rc == -ENOMEM) {
            warn_once(s, "out of memory", NULL, rc);
        } else if (ce.kind == POH_MONGO_ERR_HISTORY_LOST) {
            history_lost(s, &ce);
            continue;
        } else if (ce.err.code == 10334 && skip_too_large(s, &ce)) {
            continue;
        } else if (opening && drop_split_stage(s, &ce)) {
            continue;
        } else {
            report_error(s, &ce);
        }
        s->failing = true;
        if (!nap(s, backoff))
            break;
        backoff = next_backoff(backoff);
    }
    if (s->client) {
        if (s->cursor_id)
            kill_cursor(s);
        mongoc_client_pool_push(s->cl->pool, s->client);
        s->client = NULL;
    }
    atomic_store(&s->open, false);
    if (s->lockfd >= 0)
        close(s->lockfd); /* releases the flock */
    s->lockfd = -1;
    if (s->dirfd >= 0)
        close(s->dirfd);
    s->dirfd = -1;
    slot_release(s->cl->store, s->slot);
    set_status(s, "stopped", NULL);
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

/* The stream's families and series in the persistent registry r. Returns
 * 0, or -1 (a histogram already exported with other buckets is logged). */
static int stream_families(mongo_stream_t *s, poh_registry_t *r)
{
    const char *lv[] = {s->cl->name, s->name};
    const poh_family_desc_t *m = poh_mongodb_metrics;
    s->f_changes = poh_registry_family_desc(r, &m[POH_MONGODB_M_CHANGES]);
    s->f_field_err = poh_registry_family_desc(r, &m[POH_MONGODB_M_FIELD_ERRORS]);
    poh_family_t *fres = poh_registry_family_desc(r, &m[POH_MONGODB_M_RESUMES]);
    poh_family_t *flost = poh_registry_family_desc(r, &m[POH_MONGODB_M_HISTORY_LOST]);
    poh_family_t *finv = poh_registry_family_desc(r, &m[POH_MONGODB_M_INVALIDATIONS]);
    poh_family_t *flost_s = poh_registry_family_desc(r, &m[POH_MONGODB_M_HISTORY_LOST_SECONDS]);
    poh_family_t *fbig = poh_registry_family_desc(r, &m[POH_MONGODB_M_TOO_LARGE]);
    if (!s->f_changes || !s->f_field_err || !fres || !flost || !finv || !flost_s || !fbig)
        return -1;
    s->s_resumes = poh_family_series(fres, lv);
    s->s_lost = poh_family_series(flost, lv);
    s->s_inv = poh_family_series(finv, lv);
    s->s_lost_s = poh_family_series(flost_s, lv);
    s->s_big = poh_family_series(fbig, lv);
    for (size_t i = 0; i < s->spec.nlat; i++) {
        char name[160], help[200];
        snprintf(name, sizeof name, "poh_%s_latency_seconds", s->spec.lat[i].name);
        if (s->spec.lat[i].to_field)
            snprintf(help, sizeof help, "Time from the document's %s to its %s.",
                     s->spec.lat[i].from_field, s->spec.lat[i].to_field);
        else
            snprintf(help, sizeof help, "Time from the document's %s to its commit (wallTime).",
                     s->spec.lat[i].from_field);
        poh_family_t *f = poh_registry_family(r, POH_HISTOGRAM, name, help, 2, l_stream,
                                              s->spec.bounds, s->spec.nbounds);
        if (!f) {
            POH_ERROR(MODULE,
                      "%s: %s is already exported with other buckets (another cluster, or "
                      "changed since the exporter started: restart it to apply)",
                      s->key, name);
            return -1;
        }
        s->s_lat[i] = poh_family_series(f, lv);
    }
    return 0;
}

mongo_stream_t *mongo_stream_new(mongo_cluster_t *cl, const poh_config_mongo_stream_t *cfg)
{
    mongo_stream_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cl = cl;
    s->dirfd = s->lockfd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    atomic_init(&s->stop, false);
    atomic_init(&s->open, false);
    atomic_init(&s->newest_wall_ms, 0);
    snprintf(s->status, sizeof s->status, "not started");
    /* Bursts up to one second's worth, at least one span. */
    poh_span_rate_limit_init(&s->span_rl, cfg->commit_spans_per_second,
                             cfg->commit_spans_per_second > 1 ? cfg->commit_spans_per_second : 1);
    s->name = strdup(cfg->name);
    s->db = strdup(cfg->database);
    s->coll = strdup(cfg->collection);
    /* '@' cannot occur in names, so cluster and stream cannot run together. */
    if (asprintf(&s->ns, "%s.%s", cfg->database, cfg->collection) < 0)
        s->ns = NULL;
    if (asprintf(&s->key, "%s/%s", cl->name, cfg->name) < 0)
        s->key = NULL;
    if (asprintf(&s->file, "mongodb@%s@%s.state", cl->name, cfg->name) < 0)
        s->file = NULL;
    if (asprintf(&s->lock_file, "mongodb@%s@%s.lock", cl->name, cfg->name) < 0)
        s->lock_file = NULL;
    if (!s->name || !s->db || !s->coll || !s->ns || !s->key || !s->file || !s->lock_file ||
        poh_mongo_stream_spec_init(&s->spec, cfg) < 0)
        goto err;
    if (poh_mongo_batch_init(&s->batch, &s->spec) < 0)
        goto err;
    s->s_field_err = calloc((s->spec.nfields ? s->spec.nfields : 1) * POH_FIELD_REASONS,
                            sizeof *s->s_field_err);
    s->s_lat = calloc(s->spec.nlat ? s->spec.nlat : 1, sizeof *s->s_lat);
    if (!s->s_field_err || !s->s_lat)
        goto err;

    if (stream_families(s, cl->persistent) < 0)
        goto err;
    return s;
err:
    mongo_stream_destroy(s);
    return NULL;
}

int mongo_stream_start(mongo_stream_t *s)
{
    int err = pthread_create(&s->th, NULL, stream_main, s);
    if (err) {
        POH_ERROR(MODULE, "%s: cannot start the change stream thread: %s", s->key, strerror(err));
        return -err;
    }
    s->started = true;
    return 0;
}

void mongo_stream_request_stop(mongo_stream_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    poh_mongodb_store_t *store = s->cl->store;
    pthread_mutex_lock(&store->mu);
    pthread_cond_broadcast(&store->cv);
    pthread_mutex_unlock(&store->mu);
}

void mongo_stream_destroy(mongo_stream_t *s)
{
    if (!s)
        return;
    mongo_stream_request_stop(s);
    if (s->started)
        pthread_join(s->th, NULL);
    poh_mongo_batch_free(&s->batch, &s->spec);
    poh_mongo_stream_spec_free(&s->spec);
    free(s->s_field_err);
    free(s->s_lat);
    free(s->name);
    free(s->db);
    free(s->coll);
    free(s->ns);
    free(s->key);
    free(s->file);
    free(s->lock_file);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ----------------------------------------------------------- scrape side */

void mongo_stream_collect(mongo_stream_t *s, poh_registry_t *out)
{
    const char *lv[] = {s->cl->name, s->name};
    poh_family_t *fup =
        poh_registry_family_desc(out, &poh_mongodb_metrics[POH_MONGODB_M_STREAM_UP]);
    poh_gauge_set(poh_family_series(fup, lv), atomic_load(&s->open));
    long long ms = atomic_load(&s->newest_wall_ms);
    if (ms <= 0)
        return;
    poh_family_t *flag =
        poh_registry_family_desc(out, &poh_mongodb_metrics[POH_MONGODB_M_STREAM_LAG]);
    double lag = poh_now_real() - (double)ms / 1000.0;
    poh_gauge_set(poh_family_series(flag, lv), lag > 0 ? lag : 0);
}

void mongo_stream_status(mongo_stream_t *s, poh_status_rows_t *rows)
{
    pthread_mutex_lock(&s->mu);
    char status[sizeof s->status], error[sizeof s->error];
    memcpy(status, s->status, sizeof status);
    memcpy(error, s->error, sizeof error);
    pthread_mutex_unlock(&s->mu);
    long long ms = atomic_load(&s->newest_wall_ms);
    poh_status_text_t text = {
        .kind = "mongodb",
        .name = s->key,
        .target_prefix = "change stream ",
        .target = s->ns,
        .result = status,
        .error = error,
    };
    poh_status_rows_add(rows, &text, ms > 0 ? POH_STATUS_LATENCY_LAG : POH_STATUS_LATENCY_NONE,
                        ms > 0 ? poh_now_real() - (double)ms / 1000.0 : 0);
}
