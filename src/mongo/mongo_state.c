/* SPDX-License-Identifier: Apache-2.0 */
/* Change stream state files (see mongo_state.h). */
#include "mongo/mongo_state.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_VERSION 1
#define MAX_STATE_BYTES (16u << 20)

void poh_mongo_state_clear(poh_mongo_state_t *st)
{
    if (st->token)
        bson_destroy(st->token);
    free(st->ns);
    memset(st, 0, sizeof *st);
}

int poh_mongo_state_set_token(poh_mongo_state_t *st, const uint8_t *data, uint32_t len)
{
    bson_t *t = NULL;
    if (data && len) {
        t = bson_new_from_data(data, len);
        if (!t || !bson_validate(t, BSON_VALIDATE_NONE, NULL)) {
            bson_destroy(t);
            return -EINVAL;
        }
    }
    if (st->token)
        bson_destroy(st->token);
    st->token = t;
    return 0;
}

int poh_mongo_state_set_ns(poh_mongo_state_t *st, const char *ns)
{
    char *d = ns ? strdup(ns) : NULL;
    if (ns && !d)
        return -ENOMEM;
    free(st->ns);
    st->ns = d;
    return 0;
}

/* name cut to fit a counter's name, at a character boundary, so that a name
 * that is valid UTF-8 stays so (a state file is a BSON document, whose keys
 * must be; one saved with a split character would not load again). */
static size_t name_len(const char *name)
{
    size_t len = strnlen(name, POH_MONGO_STATE_NAME_MAX);
    if (len < POH_MONGO_STATE_NAME_MAX)
        return len;
    len = POH_MONGO_STATE_NAME_MAX - 1;
    while (len > 0 && ((unsigned char)name[len] & 0xC0) == 0x80)
        len--; /* name[len] continues a character: cut before its lead byte */
    return len;
}

uint64_t *poh_mongo_count_slot(poh_mongo_count_t *arr, size_t *n, const char *name)
{
    size_t len = name_len(name);
    for (size_t i = 0; i < *n; i++)
        if (strncmp(arr[i].name, name, len) == 0 && arr[i].name[len] == '\0')
            return &arr[i].n;
    if (*n == POH_MONGO_STATE_MAX_COUNTS)
        return NULL;
    poh_mongo_count_t *c = &arr[(*n)++];
    memcpy(c->name, name, len);
    c->name[len] = '\0';
    c->n = 0;
    return &c->n;
}

static bool same_bounds(const poh_mongo_hist_t *h, const double *bounds, size_t nbounds)
{
    return h->nbounds == nbounds && (!nbounds || !memcmp(h->bounds, bounds, nbounds * sizeof *bounds));
}

const poh_mongo_hist_t *poh_mongo_hist_find(const poh_mongo_state_t *st, const char *name,
                                            const double *bounds, size_t nbounds)
{
    size_t len = name_len(name);
    for (size_t i = 0; i < st->nhists; i++)
        if (!strncmp(st->hists[i].name, name, len) && !st->hists[i].name[len])
            return same_bounds(&st->hists[i], bounds, nbounds) ? &st->hists[i] : NULL;
    return NULL;
}

poh_mongo_hist_t *poh_mongo_hist_slot(poh_mongo_state_t *st, const char *name,
                                      const double *bounds, size_t nbounds)
{
    size_t len = name_len(name);
    if (nbounds > POH_MONGO_STATE_MAX_BOUNDS)
        return NULL;
    poh_mongo_hist_t *h = NULL;
    for (size_t i = 0; i < st->nhists && !h; i++)
        if (!strncmp(st->hists[i].name, name, len) && !st->hists[i].name[len])
            h = &st->hists[i];
    if (h && same_bounds(h, bounds, nbounds))
        return h;
    if (!h && st->nhists == POH_MONGO_STATE_MAX_HISTS)
        return NULL;
    if (!h)
        h = &st->hists[st->nhists++];
    memset(h, 0, sizeof *h);
    memcpy(h->name, name, len);
    h->nbounds = nbounds;
    if (nbounds)
        memcpy(h->bounds, bounds, nbounds * sizeof *bounds);
    return h;
}

void poh_mongo_hist_observe(poh_mongo_hist_t *h, double v)
{
    size_t lo = 0, hi = h->nbounds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    h->counts[lo]++;
    h->sum += v;
}

const char *poh_mongo_state_strerror(int rc)
{
    if (rc == -POH_MONGO_STATE_ENOTREG)
        return "not a regular file (a FIFO, device, socket or directory is never opened)";
    if (rc == -ELOOP)
        return "a symbolic link (state files are never followed through links)";
    return strerror(-rc);
}

/* Open dirfd/name as a regular file, whatever was put in its place. The
 * name is looked at first without following a link, so a FIFO or a device
 * is refused before open() could block on it or touch the device; the open
 * itself does not follow a link nor block (O_NONBLOCK), and what it opened
 * is checked again, in case the name changed in between. */
static int open_regular(int dirfd, const char *name, int flags, mode_t mode)
{
    struct stat sb;
    if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(sb.st_mode))
            return -ELOOP;
        if (!S_ISREG(sb.st_mode))
            return -POH_MONGO_STATE_ENOTREG;
    } else if (errno != ENOENT || !(flags & O_CREAT)) {
        return -errno;
    }
    int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int rc = fstat(fd, &sb) < 0 ? -errno : S_ISREG(sb.st_mode) ? 0 : -POH_MONGO_STATE_ENOTREG;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int poh_mongo_state_open_lock(int dirfd, const char *name)
{
    return open_regular(dirfd, name, O_RDWR | O_CREAT, 0600);
}

int poh_mongo_state_dir_check(const struct stat *st, uid_t euid, char *why, size_t whylen)
{
    if (!S_ISDIR(st->st_mode)) {
        snprintf(why, whylen, "is not a directory");
        return -ENOTDIR;
    }
    if (st->st_uid != euid) {
        snprintf(why, whylen, "is owned by uid %lu, not by the exporter's uid %lu",
                 (unsigned long)st->st_uid, (unsigned long)euid);
        return -EPERM;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(why, whylen, "is writable by %s (mode %04o)",
                 (st->st_mode & S_IWGRP) && (st->st_mode & S_IWOTH) ? "its group and others"
                 : st->st_mode & S_IWGRP                             ? "its group"
                                                                     : "others",
                 (unsigned)(st->st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

static void append_counts(bson_t *doc, const char *key, const poh_mongo_count_t *arr, size_t n)
{
    bson_t sub;
    bson_append_document_begin(doc, key, -1, &sub);
    for (size_t i = 0; i < n; i++)
        bson_append_int64(&sub, arr[i].name, -1, (int64_t)arr[i].n);
    bson_append_document_end(doc, &sub);
}

/* "lat": {name: {bounds: [..], counts: [..] (one more than bounds), sum}} */
static void append_hists(bson_t *doc, const poh_mongo_state_t *st)
{
    bson_t lat, h, arr;
    char kb[16];
    const char *key;
    bson_append_document_begin(doc, "lat", -1, &lat);
    for (size_t i = 0; i < st->nhists; i++) {
        const poh_mongo_hist_t *x = &st->hists[i];
        bson_append_document_begin(&lat, x->name, -1, &h);
        bson_append_array_begin(&h, "bounds", -1, &arr);
        for (size_t k = 0; k < x->nbounds; k++) {
            size_t kl = bson_uint32_to_string((uint32_t)k, &key, kb, sizeof kb);
            bson_append_double(&arr, key, (int)kl, x->bounds[k]);
        }
        bson_append_array_end(&h, &arr);
        bson_append_array_begin(&h, "counts", -1, &arr);
        for (size_t k = 0; k <= x->nbounds; k++) {
            size_t kl = bson_uint32_to_string((uint32_t)k, &key, kb, sizeof kb);
            bson_append_int64(&arr, key, (int)kl, (int64_t)x->counts[k]);
        }
        bson_append_array_end(&h, &arr);
        bson_append_double(&h, "sum", -1, x->sum);
        bson_append_document_end(&lat, &h);
    }
    bson_append_document_end(doc, &lat);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int poh_mongo_state_save(int dirfd, const char *name, const poh_mongo_state_t *st)
{
    char tmp[512];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", name) >= sizeof tmp)
        return -ENAMETOOLONG;
    bson_t doc = BSON_INITIALIZER;
    bson_append_int32(&doc, "v", -1, STATE_VERSION);
    if (st->ns)
        bson_append_utf8(&doc, "ns", -1, st->ns, -1);
    if (st->token)
        bson_append_document(&doc, "token", -1, st->token);
    bson_append_int64(&doc, "last_wall_ms", -1, st->last_wall_ms);
    append_counts(&doc, "changes", st->changes, st->nchanges);
    append_counts(&doc, "field_errors", st->field_errors, st->nfield_errors);
    bson_append_int64(&doc, "resumes", -1, (int64_t)st->resumes);
    bson_append_int64(&doc, "history_lost", -1, (int64_t)st->history_lost);
    /* Fields added later: older files lack them (0 / false), older
     * exporters ignore them. */
    bson_append_int64(&doc, "invalidations", -1, (int64_t)st->invalidations);
    bson_append_bool(&doc, "start_after", -1, st->start_after);
    bson_append_timestamp(&doc, "gap_from", -1, (uint32_t)(st->gap_from >> 32), (uint32_t)st->gap_from);
    bson_append_int64(&doc, "history_lost_seconds", -1, (int64_t)st->history_lost_seconds);
    bson_append_int64(&doc, "too_large", -1, (int64_t)st->too_large);
    append_hists(&doc, st);

    int rc = 0;
    int fd = open_regular(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        rc = fd;
        goto out;
    }
    rc = write_all(fd, bson_get_data(&doc), doc.len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
        rc = -errno;
    if (rc < 0) {
        unlinkat(dirfd, tmp, 0);
        goto out;
    }
    /* The rename is durable only once the directory is. */
    if (fsync(dirfd) < 0)
        rc = -errno;
out:
    bson_destroy(&doc);
    return rc;
}

static int read_counts(bson_iter_t *it, poh_mongo_count_t *arr, size_t *n)
{
    bson_iter_t sub;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &sub))
        return -EBADMSG;
    while (bson_iter_next(&sub)) {
        const char *key = bson_iter_key(&sub);
        size_t len = strlen(key);
        /* bson_validate() stops at the first string that is not UTF-8 and
         * calls the whole document valid, so what is kept is checked here:
         * a key that could not be saved back is a corrupt file. */
        if (!BSON_ITER_HOLDS_INT64(&sub) || bson_iter_int64(&sub) < 0 ||
            len >= POH_MONGO_STATE_NAME_MAX || !bson_utf8_validate(key, len, false))
            return -EBADMSG;
        uint64_t *slot = poh_mongo_count_slot(arr, n, key);
        if (!slot)
            return -EBADMSG;
        *slot = (uint64_t)bson_iter_int64(&sub);
    }
    /* bson_iter_next() also ends at a corrupt element: that is no end */
    return sub.err_off ? -EBADMSG : 0;
}

static int read_u64(bson_iter_t *it, uint64_t *out)
{
    if (!BSON_ITER_HOLDS_INT64(it) || bson_iter_int64(it) < 0)
        return -EBADMSG;
    *out = (uint64_t)bson_iter_int64(it);
    return 0;
}

/* One saved histogram; anything out of shape is a corrupt file. */
static int read_hist(bson_iter_t *it, poh_mongo_hist_t *h)
{
    bson_iter_t sub, arr;
    size_t nb = 0, nc = 0;
    bool have_sum = false;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &sub))
        return -EBADMSG;
    while (bson_iter_next(&sub)) {
        const char *k = bson_iter_key(&sub);
        if (!strcmp(k, "sum") && BSON_ITER_HOLDS_DOUBLE(&sub) && isfinite(bson_iter_double(&sub))) {
            h->sum = bson_iter_double(&sub);
            have_sum = true;
        } else if (!strcmp(k, "bounds") && BSON_ITER_HOLDS_ARRAY(&sub) && bson_iter_recurse(&sub, &arr)) {
            while (bson_iter_next(&arr)) {
                if (nb == POH_MONGO_STATE_MAX_BOUNDS || !BSON_ITER_HOLDS_DOUBLE(&arr))
                    return -EBADMSG;
                h->bounds[nb++] = bson_iter_double(&arr);
            }
        } else if (!strcmp(k, "counts") && BSON_ITER_HOLDS_ARRAY(&sub) && bson_iter_recurse(&sub, &arr)) {
            while (bson_iter_next(&arr)) {
                if (nc > POH_MONGO_STATE_MAX_BOUNDS || !BSON_ITER_HOLDS_INT64(&arr) ||
                    bson_iter_int64(&arr) < 0)
                    return -EBADMSG;
                h->counts[nc++] = (uint64_t)bson_iter_int64(&arr);
            }
        } else {
            return -EBADMSG;
        }
    }
    h->nbounds = nb;
    return have_sum && nc == nb + 1 && !sub.err_off ? 0 : -EBADMSG;
}

static int read_hists(bson_iter_t *it, poh_mongo_state_t *st)
{
    bson_iter_t sub;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &sub))
        return -EBADMSG;
    while (bson_iter_next(&sub)) {
        const char *key = bson_iter_key(&sub);
        size_t len = strlen(key);
        if (st->nhists == POH_MONGO_STATE_MAX_HISTS || len >= POH_MONGO_STATE_NAME_MAX ||
            !bson_utf8_validate(key, len, false))
            return -EBADMSG;
        poh_mongo_hist_t *h = &st->hists[st->nhists++];
        memset(h, 0, sizeof *h);
        memcpy(h->name, key, len);
        if (read_hist(&sub, h) < 0)
            return -EBADMSG;
    }
    return sub.err_off ? -EBADMSG : 0;
}

static int parse_state(const uint8_t *data, size_t len, poh_mongo_state_t *st)
{
    bson_t doc;
    bson_iter_t it;
    size_t off;
    if (!bson_init_static(&doc, data, len) || !bson_validate(&doc, BSON_VALIDATE_NONE, &off) ||
        !bson_iter_init(&it, &doc))
        return -EBADMSG;
    bool version = false;
    int rc = 0;
    while (rc == 0 && bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "v")) {
            version = BSON_ITER_HOLDS_INT32(&it) && bson_iter_int32(&it) == STATE_VERSION;
            rc = version ? 0 : -EBADMSG;
        } else if (!strcmp(k, "ns")) {
            uint32_t nslen = 0;
            const char *ns = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, &nslen) : NULL;
            rc = ns && bson_utf8_validate(ns, nslen, false) ? poh_mongo_state_set_ns(st, ns)
                                                          : -EBADMSG;
        } else if (!strcmp(k, "token")) {
            const uint8_t *d;
            uint32_t n;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it))
                return -EBADMSG;
            bson_iter_document(&it, &n, &d);
            rc = poh_mongo_state_set_token(st, d, n);
        } else if (!strcmp(k, "last_wall_ms")) {
            if (!BSON_ITER_HOLDS_INT64(&it))
                return -EBADMSG;
            st->last_wall_ms = bson_iter_int64(&it);
        } else if (!strcmp(k, "changes")) {
            rc = read_counts(&it, st->changes, &st->nchanges);
        } else if (!strcmp(k, "field_errors")) {
            rc = read_counts(&it, st->field_errors, &st->nfield_errors);
        } else if (!strcmp(k, "resumes")) {
            rc = read_u64(&it, &st->resumes);
        } else if (!strcmp(k, "history_lost")) {
            rc = read_u64(&it, &st->history_lost);
        } else if (!strcmp(k, "invalidations")) {
            rc = read_u64(&it, &st->invalidations);
        } else if (!strcmp(k, "too_large")) {
            rc = read_u64(&it, &st->too_large);
        } else if (!strcmp(k, "lat")) {
            rc = read_hists(&it, st);
        } else if (!strcmp(k, "gap_from")) {
            uint32_t t, i;
            if (!BSON_ITER_HOLDS_TIMESTAMP(&it))
                return -EBADMSG;
            bson_iter_timestamp(&it, &t, &i);
            st->gap_from = (uint64_t)t << 32 | i;
        } else if (!strcmp(k, "history_lost_seconds")) {
            rc = read_u64(&it, &st->history_lost_seconds);
        } else if (!strcmp(k, "start_after")) {
            if (!BSON_ITER_HOLDS_BOOL(&it))
                return -EBADMSG;
            st->start_after = bson_iter_bool(&it);
        }
    }
    if (rc == 0 && it.err_off)
        rc = -EBADMSG; /* iteration stopped at a corrupt element, not at the end */
    if (rc == -EINVAL)
        rc = -EBADMSG;
    return rc == 0 && !version ? -EBADMSG : rc;
}

int poh_mongo_state_load(int dirfd, const char *name, poh_mongo_state_t *st)
{
    poh_mongo_state_clear(st);
    int fd = open_regular(dirfd, name, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    uint8_t *buf = NULL;
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) < 0) {
        rc = -errno;
        goto out;
    }
    if (sb.st_size < 5 || (uint64_t)sb.st_size > MAX_STATE_BYTES) {
        rc = -EBADMSG;
        goto out;
    }
    size_t len = (size_t)sb.st_size, got = 0;
    buf = malloc(len);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EBADMSG;
            goto out;
        }
        got += (size_t)r;
    }
    rc = parse_state(buf, len, st);
out:
    if (rc < 0)
        poh_mongo_state_clear(st);
    free(buf);
    close(fd);
    return rc;
}
