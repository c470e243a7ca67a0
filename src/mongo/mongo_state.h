/* SPDX-License-Identifier: Apache-2.0 */
/* Persistent state of one change stream: the resume token and the stream's
 * cumulative counters, saved together in one BSON file so that a restart
 * (even after kill -9) resumes exactly after the last counted event with the
 * counters it had: no event missed, none counted twice.
 *
 * A save writes "<name>.tmp" in the directory, fsyncs it, renames it over
 * "<name>" and fsyncs the directory, so the file is always either the old or
 * the new state, never a mix.
 *
 * Every file here (state, temporary, lock) is opened so that nothing put in
 * its place can block or redirect it: a symbolic link is not followed
 * (-ELOOP), and a FIFO, device, socket or directory is refused
 * (POH_MONGO_STATE_ENOTREG) before it is opened, and again after (fstat), in
 * case it was swapped in between; opens are non-blocking and close-on-exec.
 * The directory itself must belong to the exporter's user and not be
 * writable by anyone else (poh_mongo_state_dir_check). */
#ifndef POH_MONGO_STATE_H
#define POH_MONGO_STATE_H

#include <bson/bson.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Returned (negated) when a state file's name is held by something other
 * than a regular file. Print it with poh_mongo_state_strerror(). */
#define POH_MONGO_STATE_ENOTREG EMEDIUMTYPE

#define POH_MONGO_STATE_MAX_COUNTS 32
/* Counter names: operation names and "<reason>:<field>" field errors. */
#define POH_MONGO_STATE_NAME_MAX 128

typedef struct poh_mongo_count {
    char name[POH_MONGO_STATE_NAME_MAX];
    uint64_t n;
} poh_mongo_count_t;

/* A latency histogram saved with the counters, so that after a restart its
 * _count still equals the events it observed. Per-bucket (not cumulative)
 * counts, the last one +Inf. */
#define POH_MONGO_STATE_MAX_HISTS 8
#define POH_MONGO_STATE_MAX_BOUNDS 64
typedef struct poh_mongo_hist {
    char name[POH_MONGO_STATE_NAME_MAX];
    size_t nbounds;
    double bounds[POH_MONGO_STATE_MAX_BOUNDS];
    uint64_t counts[POH_MONGO_STATE_MAX_BOUNDS + 1];
    double sum;
} poh_mongo_hist_t;

typedef struct poh_mongo_state {
    bson_t *token;         /* resume token; NULL = start from now */
    char *ns;              /* "db.collection" the token belongs to; NULL = unknown */
    int64_t last_wall_ms;  /* wallTime of the newest event counted; 0 = none */
    poh_mongo_count_t changes[POH_MONGO_STATE_MAX_COUNTS];      /* by operation */
    size_t nchanges;
    poh_mongo_count_t field_errors[POH_MONGO_STATE_MAX_COUNTS]; /* by field */
    size_t nfield_errors;
    uint64_t resumes, history_lost;
    uint64_t invalidations; /* invalidate events that closed the stream (reopened after them) */
    bool start_after;       /* token is an invalidate's: reopen with startAfter, not resumeAfter */
    uint64_t gap_from;      /* history lost after this Timestamp (t << 32 | i), the stream not yet
                             * open again from now; 0 = no gap open */
    uint64_t history_lost_seconds; /* cluster seconds of history never seen, over all gaps */
    uint64_t too_large;     /* events over 16 MB skipped (BSONObjectTooLarge) */
    poh_mongo_hist_t hists[POH_MONGO_STATE_MAX_HISTS]; /* by latency name */
    size_t nhists;
} poh_mongo_state_t;

/* Free what st owns and zero it (a zeroed state is empty and valid). */
void poh_mongo_state_clear(poh_mongo_state_t *st);

/* Replace the token with a copy of the document data (NULL/0: none).
 * Returns 0 or -ENOMEM / -EINVAL (not a valid BSON document). */
int poh_mongo_state_set_token(poh_mongo_state_t *st, const uint8_t *data, uint32_t len);
int poh_mongo_state_set_ns(poh_mongo_state_t *st, const char *ns);

/* The counter called name in arr (creating it when there is room), or NULL
 * when the array is full. Names longer than the limit are truncated, at a
 * UTF-8 character boundary. */
uint64_t *poh_mongo_count_slot(poh_mongo_count_t *arr, size_t *n, const char *name);

/* The histogram called name in st with these bounds: the saved one, reset
 * to empty when its bounds differ, or a new one when there is room. NULL
 * when the state holds POH_MONGO_STATE_MAX_HISTS others or nbounds is over
 * POH_MONGO_STATE_MAX_BOUNDS. */
poh_mongo_hist_t *poh_mongo_hist_slot(poh_mongo_state_t *st, const char *name,
                                      const double *bounds, size_t nbounds);
/* The saved histogram called name if its bounds are these, else NULL. */
const poh_mongo_hist_t *poh_mongo_hist_find(const poh_mongo_state_t *st, const char *name,
                                            const double *bounds, size_t nbounds);
/* Observe v as a histogram with bounds (v <= bound: that bucket) does. */
void poh_mongo_hist_observe(poh_mongo_hist_t *h, double v);

/* What a negative return of this module means, for messages: the two
 * refusals above in words, strerror() otherwise. */
const char *poh_mongo_state_strerror(int rc);

/* Open (creating it 0600 if absent) the lock file dirfd/name for flock().
 * Returns the descriptor, -ELOOP for a symbolic link,
 * -POH_MONGO_STATE_ENOTREG for anything else that is not a regular file,
 * or another negative errno. */
int poh_mongo_state_open_lock(int dirfd, const char *name);

/* Whether a state directory (st from stat/fstat) is safe to use: a
 * directory, owned by euid, not writable by group or others. Another user
 * who can write there could replace, remove or plant state files. Returns 0,
 * or -ENOTDIR / -EPERM with the reason written to why ("is writable by its
 * group and others (mode 0777)"...). */
int poh_mongo_state_dir_check(const struct stat *st, uid_t euid, char *why, size_t whylen);

/* Atomically replace dirfd/name with st. Returns 0 or a negative errno
 * (the old file, if any, is then intact): -ELOOP / -POH_MONGO_STATE_ENOTREG
 * when the temporary's name "<name>.tmp" is held by a symbolic link or
 * another non-regular file. */
int poh_mongo_state_save(int dirfd, const char *name, const poh_mongo_state_t *st);

/* Load dirfd/name into st (cleared first). Returns 0, -ENOENT when there is
 * no file, -EBADMSG when it is not a valid state file (st is then empty),
 * -ELOOP / -POH_MONGO_STATE_ENOTREG when the name is not a regular file
 * (never opened for reading, so a FIFO cannot block), or another negative
 * errno. */
int poh_mongo_state_load(int dirfd, const char *name, poh_mongo_state_t *st);

#endif
