/* SPDX-License-Identifier: Apache-2.0 */
/* In-memory data of the simulator: documents, collections, one bounded oplog
 * that every write goes through, change-stream rendering and cursors.
 * Nothing here locks: every function expects the caller to hold sim->mu. */
#ifndef MONGO_SIM_STORE_H
#define MONGO_SIM_STORE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bsonutil.h"

/* mongod's BSONObjMaxInternalSize: a change event larger than this cannot be
 * sent (BSONObjectTooLarge), unless split by $changeStreamSplitLargeEvent. */
#define SIM_MAX_EVENT_BYTES 16793600

/* Cluster times are Timestamp(t, i) packed as t << 32 | i so they compare as integers. */
#define SIM_TS(t, i) (((uint64_t)(t) << 32) | (uint32_t)(i))
#define SIM_TS_T(ts) ((uint32_t)((ts) >> 32))
#define SIM_TS_I(ts) ((uint32_t)(ts))

/* An immutable BSON document shared by reference between a collection and the
 * oplog; prev/next link it into its collection's natural order. */
typedef struct sim_doc {
    uint32_t refs;
    uint32_t len;
    struct sim_doc *prev, *next;
    uint32_t id_off, id_len; /* _id value bytes inside data */
    uint8_t id_type;
    uint8_t data[];
} sim_doc_t;

/* Copy of b; NULL on allocation failure or if b has no _id. */
sim_doc_t *sim_doc_new(const bson_t *b);
/* A document that need not have an _id (oplog "o" of updates, cursor results). */
sim_doc_t *sim_doc_new_raw(const bson_t *b);
void sim_doc_unref(sim_doc_t *d);
void sim_doc_view(const sim_doc_t *d, bson_t *out);

/* Data operations (counted per collection), the no-op, then the DDL
 * operations (oplog "c" entries, counted apart). */
enum {
    SIM_EV_INSERT, SIM_EV_UPDATE, SIM_EV_REPLACE, SIM_EV_DELETE, SIM_EV_COUNT, SIM_EV_NOOP = SIM_EV_COUNT,
    SIM_EV_DROP, SIM_EV_RENAME, SIM_EV_DROPDB,
    SIM_EV_CANNED /* EVENT <file>: a change event sent as written (o), an oplog no-op */
};
#define SIM_DDL_COUNT 3
#define SIM_DDL_INDEX(op) ((op) - SIM_EV_DROP)
extern const char *const sim_ev_names[SIM_EV_COUNT];
extern const char *const sim_ddl_names[SIM_DDL_COUNT]; /* "drop", "rename", "dropDatabase" */

typedef struct sim_coll {
    char *db, *name, *ns;
    sim_doc_t **slots; /* open addressing by _id */
    size_t cap, count;
    sim_doc_t *head, *tail;
    uint64_t bytes;
    uint64_t counts[SIM_EV_COUNT];
    uint64_t ddl_counts[SIM_DDL_COUNT]; /* drops of it, renames from it (dropDatabase: 0) */
    /* Dropped (or renamed away) and not written since. The object stays:
     * oplog entries and cursors point at it, and a collection created again
     * under the name is the same object, as change streams go by name. */
    bool dropped;
} sim_coll_t;

typedef struct sim_entry {
    uint64_t ts;
    int64_t wall_ms;
    int64_t term;
    uint8_t op;         /* SIM_EV_* */
    sim_coll_t *coll;   /* NULL for a no-op and dropDatabase; rename: the source */
    sim_coll_t *to;     /* rename: the target */
    char *db;           /* dropDatabase: the database */
    sim_doc_t *o;       /* insert/replace: document; update: {$v: 2, diff}; delete: {_id}; no-op: {msg};
                         * drop: {drop: name}; rename: {renameCollection, to, dropTarget}; {dropDatabase: 1} */
    sim_doc_t *key;     /* {_id} for update/replace/delete */
    uint32_t bytes;
    bool expanded;      /* canned: an expanded DDL event (sent only with showExpandedEvents) */
} sim_entry_t;

enum { SIM_CUR_FIND, SIM_CUR_CHANGE };
enum { SIM_SCOPE_COLL, SIM_SCOPE_DB, SIM_SCOPE_CLUSTER };

typedef struct sim_cursor {
    int64_t id;
    int kind;
    char *ns;
    bool in_use, killed;
    int64_t last_used_ms;
    /* find cursors: materialised results, all referenced until the cursor is freed */
    sim_doc_t **docs;
    size_t ndocs, pos;
    sim_proj_t proj;
    bson_t *proj_spec;
    /* change streams */
    int scope;
    char *db, *coll_name;
    sim_coll_t *coll;
    uint64_t after;     /* deliver entries with ts > after */
    uint64_t next_seq;
    bool lookup;
    bool inv_pending;   /* the invalidate of the entry at `after` is still to be delivered */
    bool invalidated;   /* the invalidate was delivered: the cursor is closed */
    int64_t inv_wall_ms;
    bool past_inv;      /* started after the invalidate of the entry at `after` (its token is the PBRT) */
    bson_t *match;      /* $match stages combined, or NULL */
    bool no_wall;       /* 5.0: events carry no wallTime */
    bool split;         /* $changeStreamSplitLargeEvent ends the pipeline */
    bool expanded;      /* showExpandedEvents: true */
    uint64_t frag_ts;   /* the event being sent in fragments (0: none) */
    uint32_t frag_done; /* its fragments sent (or skipped by a resume) */
} sim_cursor_t;

typedef struct sim_store {
    /* collections by namespace, and in creation order */
    sim_coll_t **cslots;
    size_t ccap, ccount;
    sim_coll_t **clist;
    size_t clist_cap;
    /* the oplog ring, entries [first_seq, end_seq) */
    sim_entry_t *ring;
    size_t ring_cap;
    uint64_t first_seq, end_seq;
    uint64_t oplog_bytes, oplog_max_bytes;
    uint64_t evicted_max; /* newest ts no longer in the oplog */
    uint64_t last_ts;
    int64_t last_wall_ms;
    int64_t term;
    size_t max_docs;
    size_t max_event_bytes; /* 0: send events of any size; else larger ones fail with 10334
                             * or are split by $changeStreamSplitLargeEvent */
    bool no_wall_time;      /* 5.0: change events without wallTime */
    uint32_t frag_hold;     /* SPLIT_HOLD: send no fragment past this many of an event (0: off) */
    uint64_t frags_sent;    /* split-event fragments sent */
    uint64_t counts[SIM_EV_COUNT];
    uint64_t ddl_counts[SIM_DDL_COUNT];
    uint64_t docs_evicted;
    /* cursors by id */
    sim_cursor_t **kslots;
    size_t kcap, kcount;
    uint64_t cursor_seq;
    int64_t last_reap_ms;
    struct sim_clock *clock; /* sharded mode: cluster times come from this shared clock */
} sim_store_t;

typedef struct sim_err {
    int code;
    const char *label; /* errorLabels entry, or NULL */
    char msg[512];
} sim_err_t;

int sim_err_set(sim_err_t *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

sim_store_t *sim_store_new(uint64_t oplog_max_bytes, size_t max_docs);
void sim_store_destroy(sim_store_t *s);

/* The collection db.name: an existing one (NULL if absent or dropped), or
 * with create, an existing or new one (a dropped one comes back, empty). */
sim_coll_t *sim_store_coll(sim_store_t *s, const char *db, const char *name, bool create);
/* Valid user namespace: non-empty, no '$' or NUL, not in local/admin/config. */
bool sim_ns_writable(const char *db, const char *name, sim_err_t *e);

/* Reserve the next cluster time and wall clock for a write. */
void sim_store_tick(sim_store_t *s, uint64_t *ts, int64_t *wall_ms);
/* The shared clock's next time, strictly after every earlier one (shard.c). */
void sim_clock_next(struct sim_clock *c, uint64_t *ts, int64_t *wall_ms);
/* Move (a copy of) document d of from into to without an oplog entry (a
 * chunk migration: fromMigrate writes are no change events). 0 or -ENOMEM. */
int sim_coll_move_doc(sim_coll_t *from, sim_coll_t *to, sim_doc_t *d);
int sim_store_noop(sim_store_t *s, const char *msg);
/* A change event of the corpus, sent as written to the streams that watch its
 * ns (its _id replaced by the entry's resume token); an expanded DDL event
 * (create, createIndexes, modify, ...) only to streams opened with
 * showExpandedEvents. Events that close a stream (invalidate, drop, rename,
 * dropDatabase) are refused: the simulator's own DDL makes those. */
int sim_store_canned_event(sim_store_t *s, const bson_t *ev, sim_err_t *e);

sim_doc_t *sim_coll_find_id(const sim_coll_t *c, uint8_t type, const uint8_t *val, uint32_t len);
sim_doc_t *sim_coll_find_iter(const sim_coll_t *c, const bson_iter_t *id);

/* Writes. Each returns 0, or -1 with e set (a write error for that statement). */
int sim_store_insert(sim_store_t *s, sim_coll_t *c, const bson_t *doc, sim_err_t *e);
/* Insert a document built by the caller at time ts/wall (from sim_store_tick). */
int sim_store_insert_at(sim_store_t *s, sim_coll_t *c, const bson_t *doc, uint64_t ts, int64_t wall_ms,
                        sim_err_t *e);
typedef struct sim_update_result {
    uint32_t n, modified;
    bool upserted;
    bson_value_t upserted_id; /* owned; bson_value_destroy when upserted */
} sim_update_result_t;
int sim_store_update(sim_store_t *s, sim_coll_t *c, const bson_t *q, const bson_t *u, bool upsert, bool multi,
                     sim_update_result_t *r, sim_err_t *e);
int sim_store_delete(sim_store_t *s, sim_coll_t *c, const bson_t *q, bool multi, uint32_t *n, sim_err_t *e);
/* DDL. Each writes its oplog entries and returns 0, or -1 with e set:
 * drop of a missing collection is 26 (NamespaceNotFound, as 6.0 answers);
 * rename of a missing source 26, onto an existing target without
 * drop_target 48, onto itself 20. dropDatabase drops each collection of db
 * (one drop entry each), then writes a dropDatabase entry; *n: how many. */
int sim_store_drop(sim_store_t *s, sim_coll_t *c, sim_err_t *e);
int sim_store_rename(sim_store_t *s, sim_coll_t *from, const char *to_db, const char *to_name, bool drop_target,
                     sim_err_t *e);
int sim_store_drop_db(sim_store_t *s, const char *db, uint32_t *n, sim_err_t *e);
/* Check an update document before running it. */
bool sim_update_check(const bson_t *u, sim_err_t *e);

/* Oplog. */
uint64_t sim_oplog_count(const sim_store_t *s);
const sim_entry_t *sim_oplog_at(const sim_store_t *s, uint64_t seq);
uint64_t sim_oplog_seq_after(const sim_store_t *s, uint64_t ts); /* first seq with ts > ts */
void sim_entry_render(const sim_entry_t *e, bson_t *out);
uint64_t sim_oplog_truncate(sim_store_t *s, uint64_t keep);

/* Resume tokens: {_data: "82<8 hex t><8 hex i>"}, followed for a position
 * inside an entry by 4 hex digits of sub: SIM_TOKEN_INVALIDATE for the
 * invalidate that follows the entry's event, SIM_TOKEN_FRAGMENT | k for a
 * fragment of its event split by $changeStreamSplitLargeEvent. */
#define SIM_TOKEN_INVALIDATE 0x0100u
/* SIM_TOKEN_FRAGMENT | k: after fragment k (from 0) of the entry's split event. */
#define SIM_TOKEN_FRAGMENT 0x0200u
#define SIM_MAX_FRAGMENTS 0x100u
void sim_token_append(bson_t *parent, const char *key, uint64_t ts);
void sim_token_append_sub(bson_t *parent, const char *key, uint64_t ts, uint32_t sub);
bool sim_token_parse(const bson_t *token, uint64_t *ts);
bool sim_token_parse_sub(const bson_t *token, uint64_t *ts, uint32_t *sub);

/* Cursors. */
sim_cursor_t *sim_cursor_new(sim_store_t *s, int kind, const char *ns);
sim_cursor_t *sim_cursor_get(sim_store_t *s, int64_t id);
void sim_cursor_free(sim_store_t *s, sim_cursor_t *c);
/* Drop idle cursors not in use; returns how many. */
size_t sim_cursor_reap(sim_store_t *s, int64_t now_ms, int64_t idle_ms);

/* Change streams: position a new stream after ts (deliver ts' > after).
 * Returns 0, or -1 with e set (286 when history is gone). */
int sim_cs_position(sim_store_t *s, sim_cursor_t *cur, uint64_t after, sim_err_t *e);
/* Position a stream resumed from a token (resumeAfter unless start_after).
 * A token of an event that invalidates this stream delivers the invalidate
 * first; an invalidate token is refused with 260 under resumeAfter and
 * starts after the entry under startAfter. A fragment's token continues
 * with the next fragment (280 without cur->split, as mongod refuses it). */
int sim_cs_resume(sim_store_t *s, sim_cursor_t *cur, uint64_t ts, uint32_t sub, bool start_after, sim_err_t *e);
/* The postBatchResumeToken of the cursor's position. */
void sim_cs_append_pbrt(const sim_cursor_t *cur, bson_t *parent);
/* Append up to max_events events (stopping short of max_bytes) as elements of
 * array arr, starting with index *idx. scratch is a reusable bson_t. An
 * event over s->max_event_bytes is split into fragments when cur->split
 * (as mongod 7.0 and 6.0.9 do), else fails with 10334 BSONObjectTooLarge.
 * Returns the number appended, or -1 with e set (history lost, ...). */
long sim_cs_fill(sim_store_t *s, sim_cursor_t *cur, bson_t *arr, uint32_t *idx, size_t max_events,
                 size_t max_bytes, bson_t *scratch, sim_err_t *e);

int64_t sim_now_ms(void);
int64_t sim_mono_ms(void);

#endif
