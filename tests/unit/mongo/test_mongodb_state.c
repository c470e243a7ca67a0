/* SPDX-License-Identifier: Apache-2.0 */
/* mongo/mongo_state: the change stream state file (resume token + totals):
 * round trip, atomic replacement, what a crash can leave behind, corrupt
 * and hostile files. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "mongo/mongo_state.h"

static char dir[64];
static int dirfd_;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/poh-state-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(dirfd_, 0);
}

static void teardown(void)
{
    char cmd[128];
    close(dirfd_);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *name, const void *data, size_t n)
{
    int fd = openat(dirfd_, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static void fill(poh_mongo_state_t *st, int64_t seq)
{
    bson_t *tok = BCON_NEW("_data", BCON_INT64(seq));
    ck_assert_int_eq(poh_mongo_state_set_token(st, bson_get_data(tok), tok->len), 0);
    bson_destroy(tok);
    ck_assert_int_eq(poh_mongo_state_set_ns(st, "dag.transactions"), 0);
    st->last_wall_ms = 1795621335123 + seq;
    *poh_mongo_count_slot(st->changes, &st->nchanges, "insert") = 1000 + (uint64_t)seq;
    *poh_mongo_count_slot(st->changes, &st->nchanges, "update") = 7;
    *poh_mongo_count_slot(st->field_errors, &st->nfield_errors, "created_at") = 3;
    st->resumes = 4;
    st->history_lost = 1;
    st->invalidations = 2;
    st->start_after = true;
    st->gap_from = (uint64_t)0x9A000000u << 32 | 7; /* past 2038: t above INT32_MAX */
    st->history_lost_seconds = 42;
    st->too_large = 3;
    static const double bounds[] = {0.01, 0.05, 0.1};
    poh_mongo_hist_t *h = poh_mongo_hist_slot(st, "storage", bounds, 3);
    ck_assert_ptr_nonnull(h);
    poh_mongo_hist_observe(h, 0.037);
    poh_mongo_hist_observe(h, 0.05);  /* le 0.05: inclusive */
    poh_mongo_hist_observe(h, 7.0);   /* +Inf */
}

static int64_t token_seq(const poh_mongo_state_t *st)
{
    bson_iter_t it;
    ck_assert_ptr_nonnull(st->token);
    ck_assert(bson_iter_init_find(&it, st->token, "_data"));
    return bson_iter_int64(&it);
}

START_TEST(test_round_trip)
{
    poh_mongo_state_t st = {0}, back = {0};
    fill(&st, 5);
    ck_assert_int_eq(poh_mongo_state_save(dirfd_, "s.state", &st), 0);
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, "s.state", &back), 0);
    ck_assert_int_eq(token_seq(&back), 5);
    ck_assert_str_eq(back.ns, "dag.transactions");
    ck_assert(back.last_wall_ms == 1795621335128);
    ck_assert_uint_eq(back.nchanges, 2);
    ck_assert_uint_eq(*poh_mongo_count_slot(back.changes, &back.nchanges, "insert"), 1005);
    ck_assert_uint_eq(*poh_mongo_count_slot(back.changes, &back.nchanges, "update"), 7);
    ck_assert_uint_eq(*poh_mongo_count_slot(back.field_errors, &back.nfield_errors, "created_at"), 3);
    ck_assert_uint_eq(back.resumes, 4);
    ck_assert_uint_eq(back.history_lost, 1);
    ck_assert_uint_eq(back.invalidations, 2);
    ck_assert(back.start_after);
    ck_assert(back.gap_from == ((uint64_t)0x9A000000u << 32 | 7));
    ck_assert_uint_eq(back.history_lost_seconds, 42);
    ck_assert_uint_eq(back.too_large, 3);
    static const double bounds[] = {0.01, 0.05, 0.1}, other[] = {0.01, 0.05};
    const poh_mongo_hist_t *h = poh_mongo_hist_find(&back, "storage", bounds, 3);
    ck_assert_ptr_nonnull(h);
    ck_assert(h->counts[0] == 0 && h->counts[1] == 2 && h->counts[2] == 0 && h->counts[3] == 1);
    ck_assert(fabs(h->sum - 7.087) < 1e-12);
    /* other buckets: not restored, and the slot starts again empty */
    ck_assert_ptr_null(poh_mongo_hist_find(&back, "storage", other, 2));
    poh_mongo_hist_t *again = poh_mongo_hist_slot(&back, "storage", other, 2);
    ck_assert(again && again->counts[1] == 0 && again->sum == 0 && back.nhists == 1);
    /* no temporary left behind */
    ck_assert_int_eq(faccessat(dirfd_, "s.state.tmp", F_OK, 0), -1);
    poh_mongo_state_clear(&st);
    poh_mongo_state_clear(&back);
}
END_TEST

START_TEST(test_empty_state)
{
    poh_mongo_state_t st = {0}, back = {0};
    ck_assert_int_eq(poh_mongo_state_save(dirfd_, "e.state", &st), 0);
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, "e.state", &back), 0);
    ck_assert_ptr_null(back.token);
    ck_assert_ptr_null(back.ns);
    ck_assert_uint_eq(back.nchanges, 0);
    poh_mongo_state_clear(&back);
}
END_TEST

START_TEST(test_missing)
{
    poh_mongo_state_t st = {0};
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, "absent.state", &st), -ENOENT);
    ck_assert_ptr_null(st.token);
}
END_TEST

/* Each save replaces the whole file; a crash between writing the temporary
 * and the rename leaves the previous state readable (the stale temporary
 * is ignored and overwritten by the next save). */
START_TEST(test_atomic_replace)
{
    poh_mongo_state_t st = {0}, back = {0};
    for (int64_t i = 1; i <= 50; i++) {
        fill(&st, i);
        ck_assert_int_eq(poh_mongo_state_save(dirfd_, "a.state", &st), 0);
    }
    write_file("a.state.tmp", "half-written garbage", 20);
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, "a.state", &back), 0);
    ck_assert_int_eq(token_seq(&back), 50);
    fill(&st, 51);
    ck_assert_int_eq(poh_mongo_state_save(dirfd_, "a.state", &st), 0);
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, "a.state", &back), 0);
    ck_assert_int_eq(token_seq(&back), 51);
    poh_mongo_state_clear(&st);
    poh_mongo_state_clear(&back);
}
END_TEST

/* A save that cannot complete leaves the old file intact. */
START_TEST(test_failed_save_keeps_old)
{
    poh_mongo_state_t st = {0}, back = {0};
    fill(&st, 9);
    ck_assert_int_eq(poh_mongo_state_save(dirfd_, "k.state", &st), 0);
    /* The temporary's name is taken by a directory: open() fails. */
    ck_assert_int_eq(mkdirat(dirfd_, "k.state.tmp", 0700), 0);
    fill(&st, 10);
    ck_assert_int_lt(poh_mongo_state_save(dirfd_, "k.state", &st), 0);
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, "k.state", &back), 0);
    ck_assert_int_eq(token_seq(&back), 9);
    ck_assert_int_eq(unlinkat(dirfd_, "k.state.tmp", AT_REMOVEDIR), 0);
    /* A name too long for the temporary is refused before touching anything. */
    char longname[600];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_int_eq(poh_mongo_state_save(dirfd_, longname, &st), -ENAMETOOLONG);
    poh_mongo_state_clear(&st);
    poh_mongo_state_clear(&back);
}
END_TEST

static void expect_bad(const char *name, const void *data, size_t n)
{
    poh_mongo_state_t st = {0};
    write_file(name, data, n);
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, name, &st), -EBADMSG);
    ck_assert_ptr_null(st.token);
    ck_assert_ptr_null(st.ns);
    ck_assert_uint_eq(st.nchanges, 0);
}

START_TEST(test_corrupt_files)
{
    expect_bad("empty", "", 0);
    expect_bad("text", "{\"token\": 1}\n", 13);
    /* a valid state, truncated */
    poh_mongo_state_t st = {0};
    fill(&st, 3);
    ck_assert_int_eq(poh_mongo_state_save(dirfd_, "good", &st), 0);
    poh_mongo_state_clear(&st);
    int fd = openat(dirfd_, "good", O_RDONLY);
    uint8_t buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    ck_assert_int_gt(n, 20);
    expect_bad("truncated", buf, (size_t)n - 7);
    /* one byte flipped inside the length prefix */
    buf[0] ^= 0x40;
    expect_bad("flipped", buf, (size_t)n);

    /* well-formed BSON that is not a state: no version, another version, a
     * negative count, a count of the wrong type, a token that is not a
     * document, ns not a string */
    bson_t *docs[] = {
        BCON_NEW("changes", "{", "insert", BCON_INT64(1), "}"),
        BCON_NEW("v", BCON_INT32(99)),
        BCON_NEW("v", BCON_INT32(1), "changes", "{", "insert", BCON_INT64(-1), "}"),
        BCON_NEW("v", BCON_INT32(1), "changes", "{", "insert", BCON_UTF8("many"), "}"),
        BCON_NEW("v", BCON_INT32(1), "token", BCON_UTF8("abc")),
        BCON_NEW("v", BCON_INT32(1), "ns", BCON_INT32(5)),
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu", i);
        expect_bad(name, bson_get_data(docs[i]), docs[i]->len);
        bson_destroy(docs[i]);
    }
    /* more distinct counters than the state holds */
    bson_t *many = BCON_NEW("v", BCON_INT32(1));
    bson_t sub;
    bson_append_document_begin(many, "changes", -1, &sub);
    for (int i = 0; i <= POH_MONGO_STATE_MAX_COUNTS; i++) {
        char k[16];
        snprintf(k, sizeof k, "op%d", i);
        bson_append_int64(&sub, k, -1, 1);
    }
    bson_append_document_end(many, &sub);
    expect_bad("many", bson_get_data(many), many->len);
    bson_destroy(many);
}
END_TEST

/* A resume token whose bytes are no BSON document (its terminator comes
 * first, garbage follows) is refused, from the stream and from a file.
 * libbson's bson_validate() stops at a string of invalid UTF-8 and reports
 * the document valid, so a file with such a string before a broken token
 * used to load; the state saved back then no longer did (fuzz_state_file,
 * tests/fuzz/corpus/state_file/crash-a7716858...). */
START_TEST(test_corrupt_token)
{
    uint8_t tok[16] = {sizeof tok, 0, 0, 0, 0, 0xb7, 'd', 'a', 't', 'a', 0, 1, 0, 0, 0, 0};
    poh_mongo_state_t st = {0};
    ck_assert_int_eq(poh_mongo_state_set_token(&st, tok, sizeof tok), -EINVAL);
    ck_assert_ptr_null(st.token);

    bson_t *doc = bson_new();
    BSON_APPEND_INT32(doc, "v", 1);
    bson_append_utf8(doc, "note", -1, "a\xe3" "b", -1); /* invalid UTF-8 */
    bson_t bad;
    ck_assert(bson_init_static(&bad, tok, sizeof tok));
    ck_assert(!bson_validate(&bad, BSON_VALIDATE_NONE, NULL));
    BSON_APPEND_DOCUMENT(doc, "token", &bad);
    ck_assert(bson_validate(doc, BSON_VALIDATE_NONE, NULL)); /* libbson's blind spot */
    expect_bad("hidden_token", bson_get_data(doc), doc->len);
    bson_destroy(doc);
}
END_TEST

/* What is kept from a file must save back to a file that loads: a counter
 * name or namespace that is not UTF-8 makes the file corrupt, even where
 * libbson's bson_validate() (which stops at the first string that is not
 * UTF-8) calls the document valid. Found by scripts/fuzz.sh. */
START_TEST(test_corrupt_names)
{
    bson_t *doc = bson_new(), sub;
    BSON_APPEND_INT32(doc, "v", 1);
    bson_append_utf8(doc, "note", -1, "a\xe3" "b", -1);
    bson_append_document_begin(doc, "changes", -1, &sub);
    bson_append_int64(&sub, "ins\xf5" "ert", -1, 12);
    bson_append_document_end(doc, &sub);
    ck_assert(bson_validate(doc, BSON_VALIDATE_NONE, NULL)); /* libbson's blind spot */
    expect_bad("hidden_key", bson_get_data(doc), doc->len);
    bson_destroy(doc);

    doc = bson_new();
    BSON_APPEND_INT32(doc, "v", 1);
    bson_append_utf8(doc, "ns", -1, "dag.tran\xe3" "ctions", -1);
    expect_bad("bad_ns", bson_get_data(doc), doc->len);
    bson_destroy(doc);

    char long_key[POH_MONGO_STATE_NAME_MAX + 8];
    memset(long_key, 'k', sizeof long_key);
    long_key[sizeof long_key - 1] = '\0';
    doc = bson_new();
    BSON_APPEND_INT32(doc, "v", 1);
    bson_append_document_begin(doc, "field_errors", -1, &sub);
    bson_append_int64(&sub, long_key, -1, 1);
    bson_append_document_end(doc, &sub);
    expect_bad("long_key", bson_get_data(doc), doc->len);
    bson_destroy(doc);
}
END_TEST

/* A name cut to fit is cut between characters, so the state saves and
 * loads back; the same long name finds the same counter. */
START_TEST(test_long_name_cut)
{
    /* "xy" then "é" (2 bytes) repeated: the limit falls inside a character */
    char name[2 + 2 * POH_MONGO_STATE_NAME_MAX] = "xy";
    for (size_t i = 2; i + 2 < sizeof name; i += 2)
        memcpy(name + i, "\xc3\xa9", 3);
    poh_mongo_state_t st = {0}, again = {0};
    uint64_t *c = poh_mongo_count_slot(st.field_errors, &st.nfield_errors, name);
    ck_assert_ptr_nonnull(c);
    *c = 5;
    ck_assert_ptr_eq(poh_mongo_count_slot(st.field_errors, &st.nfield_errors, name), c);
    size_t kept = strlen(st.field_errors[0].name);
    ck_assert_uint_lt(kept, POH_MONGO_STATE_NAME_MAX);
    ck_assert_uint_ge(kept, POH_MONGO_STATE_NAME_MAX - 3);
    ck_assert(bson_utf8_validate(st.field_errors[0].name, kept, false));
    ck_assert_int_eq(poh_mongo_state_save(dirfd_, "long", &st), 0);
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, "long", &again), 0);
    ck_assert_uint_eq(again.nfield_errors, 1);
    ck_assert_str_eq(again.field_errors[0].name, st.field_errors[0].name);
    ck_assert_uint_eq(again.field_errors[0].n, 5);
    poh_mongo_state_clear(&st);
    poh_mongo_state_clear(&again);
}
END_TEST

/* A symlink where the state file should be is not followed. */
START_TEST(test_symlink_refused)
{
    poh_mongo_state_t st = {0};
    ck_assert_int_eq(symlinkat("/etc/passwd", dirfd_, "link.state"), 0);
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, "link.state", &st), -ELOOP);
    ck_assert_int_eq(symlinkat("/tmp/poh-state-nowhere", dirfd_, "w.state.tmp"), 0);
    fill(&st, 1);
    ck_assert_int_eq(poh_mongo_state_save(dirfd_, "w.state", &st), -ELOOP);
    poh_mongo_state_clear(&st);
}
END_TEST

/* Each entry point refuses what stands at a name, with want: load the
 * state file `state`, open the lock file `lock`, and save as `save` (whose
 * temporary "<save>.tmp" the caller made; NULL: no save), leaving nothing
 * renamed into place. */
static void expect_refused(const char *state, const char *lock, const char *save, int want)
{
    poh_mongo_state_t st = {0};
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, state, &st), want);
    ck_assert_ptr_null(st.token);
    ck_assert_int_eq(poh_mongo_state_open_lock(dirfd_, lock), want);
    if (save) {
        fill(&st, 1);
        ck_assert_int_eq(poh_mongo_state_save(dirfd_, save, &st), want);
        ck_assert_int_eq(faccessat(dirfd_, save, F_OK, 0), -1); /* nothing renamed */
    }
    poh_mongo_state_clear(&st);
}

/* A FIFO in place of the state file must not block the stream: without a
 * writer, open(O_RDONLY) would wait for ever. Refused without opening it,
 * and the save's temporary and the lock likewise; the FIFO is left alone. */
START_TEST(test_fifo_refused)
{
    ck_assert_int_eq(mkfifoat(dirfd_, "f.state", 0600), 0);
    ck_assert_int_eq(mkfifoat(dirfd_, "g.state.tmp", 0600), 0);
    ck_assert_int_eq(mkfifoat(dirfd_, "f.lock", 0600), 0);
    expect_refused("f.state", "f.lock", "g.state", -POH_MONGO_STATE_ENOTREG);
    struct stat sb;
    ck_assert_int_eq(fstatat(dirfd_, "f.state", &sb, AT_SYMLINK_NOFOLLOW), 0);
    ck_assert(S_ISFIFO(sb.st_mode));
    ck_assert_str_eq(poh_mongo_state_strerror(-POH_MONGO_STATE_ENOTREG),
                     "not a regular file (a FIFO, device, socket or directory is never opened)");
}
END_TEST

/* A device node (here /dev/null's, when we may create one) or a link to a
 * device: never read, never written, never locked. Before, a device node
 * was opened and then reported as a corrupt state, and so renamed. */
START_TEST(test_device_refused)
{
    poh_mongo_state_t st = {0};
    ck_assert_int_eq(symlinkat("/dev/null", dirfd_, "n.state"), 0);
    ck_assert_int_eq(symlinkat("/dev/null", dirfd_, "n.lock"), 0);
    expect_refused("n.state", "n.lock", NULL, -ELOOP);
    ck_assert_str_eq(poh_mongo_state_strerror(-ELOOP),
                     "a symbolic link (state files are never followed through links)");
    if (mknodat(dirfd_, "d.state", S_IFCHR | 0600, makedev(1, 3)) == 0) {
        ck_assert_int_eq(mknodat(dirfd_, "d.lock", S_IFCHR | 0600, makedev(1, 3)), 0);
        ck_assert_int_eq(mknodat(dirfd_, "e.state.tmp", S_IFCHR | 0600, makedev(1, 3)), 0);
        expect_refused("d.state", "d.lock", "e.state", -POH_MONGO_STATE_ENOTREG);
    } else {
        ck_assert_int_eq(errno, EPERM); /* not root: no device nodes */
    }
    /* a directory in place of the state file is refused too, not renamed */
    ck_assert_int_eq(mkdirat(dirfd_, "dir.state", 0700), 0);
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, "dir.state", &st), -POH_MONGO_STATE_ENOTREG);
    poh_mongo_state_clear(&st);
}
END_TEST

/* The lock file: created 0600 when absent, reused when it is a regular
 * file, and its descriptor does not leak into child processes. */
START_TEST(test_lock_file)
{
    int fd = poh_mongo_state_open_lock(dirfd_, "s.lock");
    ck_assert_int_ge(fd, 0);
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    fd = poh_mongo_state_open_lock(dirfd_, "s.lock");
    ck_assert_int_ge(fd, 0);
    close(fd);
}
END_TEST

/* state_dir: ours alone, or refused with the reason. */
START_TEST(test_dir_check)
{
    char why[128];
    struct stat sb;
    ck_assert_int_eq(fstat(dirfd_, &sb), 0); /* mkdtemp: 0700, ours */
    ck_assert_int_eq(poh_mongo_state_dir_check(&sb, geteuid(), why, sizeof why), 0);
    sb.st_mode = S_IFDIR | 0755;
    ck_assert_int_eq(poh_mongo_state_dir_check(&sb, sb.st_uid, why, sizeof why), 0);
    sb.st_mode = S_IFDIR | 0777;
    ck_assert_int_eq(poh_mongo_state_dir_check(&sb, sb.st_uid, why, sizeof why), -EPERM);
    ck_assert_str_eq(why, "is writable by its group and others (mode 0777)");
    sb.st_mode = S_IFDIR | 01777; /* sticky, like /tmp: still shared */
    ck_assert_int_eq(poh_mongo_state_dir_check(&sb, sb.st_uid, why, sizeof why), -EPERM);
    ck_assert_str_eq(why, "is writable by its group and others (mode 1777)");
    sb.st_mode = S_IFDIR | 0770;
    ck_assert_int_eq(poh_mongo_state_dir_check(&sb, sb.st_uid, why, sizeof why), -EPERM);
    ck_assert_str_eq(why, "is writable by its group (mode 0770)");
    sb.st_mode = S_IFDIR | 0702;
    ck_assert_int_eq(poh_mongo_state_dir_check(&sb, sb.st_uid, why, sizeof why), -EPERM);
    ck_assert_str_eq(why, "is writable by others (mode 0702)");
    sb.st_mode = S_IFDIR | 0700;
    sb.st_uid = 1234;
    ck_assert_int_eq(poh_mongo_state_dir_check(&sb, 0, why, sizeof why), -EPERM);
    ck_assert_str_eq(why, "is owned by uid 1234, not by the exporter's uid 0");
    sb.st_mode = S_IFREG | 0600;
    ck_assert_int_eq(poh_mongo_state_dir_check(&sb, 1234, why, sizeof why), -ENOTDIR);
    ck_assert_str_eq(why, "is not a directory");
}
END_TEST

START_TEST(test_count_slots)
{
    poh_mongo_count_t arr[POH_MONGO_STATE_MAX_COUNTS];
    size_t n = 0;
    for (int i = 0; i < POH_MONGO_STATE_MAX_COUNTS; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        uint64_t *c = poh_mongo_count_slot(arr, &n, k);
        ck_assert_ptr_nonnull(c);
        *c = (uint64_t)i;
    }
    ck_assert_ptr_null(poh_mongo_count_slot(arr, &n, "one-too-many"));
    ck_assert_uint_eq(*poh_mongo_count_slot(arr, &n, "k7"), 7);
    ck_assert_uint_eq(n, POH_MONGO_STATE_MAX_COUNTS);
}
END_TEST

/* A file written before invalidations/start_after existed loads with them
 * 0/false; a start_after that is not a bool is a corrupt file. */
START_TEST(test_fields_added_later)
{
    bson_t *old = BCON_NEW("v", BCON_INT32(1), "ns", BCON_UTF8("dag.transactions"), "token", "{",
                           "_data", BCON_UTF8("82"), "}", "last_wall_ms", BCON_INT64(5), "changes",
                           "{", "insert", BCON_INT64(9), "}", "field_errors", "{", "}", "resumes",
                           BCON_INT64(1), "history_lost", BCON_INT64(0));
    write_file("old.state", bson_get_data(old), old->len);
    bson_destroy(old);
    poh_mongo_state_t back = {0};
    ck_assert_int_eq(poh_mongo_state_load(dirfd_, "old.state", &back), 0);
    ck_assert_uint_eq(*poh_mongo_count_slot(back.changes, &back.nchanges, "insert"), 9);
    ck_assert_uint_eq(back.invalidations, 0);
    ck_assert(!back.start_after);
    ck_assert(back.gap_from == 0 && back.history_lost_seconds == 0);
    poh_mongo_state_clear(&back);
    bson_t *bad[] = {
        BCON_NEW("v", BCON_INT32(1), "start_after", BCON_INT32(1)),
        /* histograms: counts not one more than bounds, a negative count, no sum, a string */
        BCON_NEW("v", BCON_INT32(1), "lat", "{", "s", "{", "bounds", "[", BCON_DOUBLE(1), "]",
                 "counts", "[", BCON_INT64(1), "]", "sum", BCON_DOUBLE(0), "}", "}"),
        BCON_NEW("v", BCON_INT32(1), "lat", "{", "s", "{", "bounds", "[", "]", "counts", "[",
                 BCON_INT64(-1), "]", "sum", BCON_DOUBLE(0), "}", "}"),
        BCON_NEW("v", BCON_INT32(1), "lat", "{", "s", "{", "bounds", "[", "]", "counts", "[",
                 BCON_INT64(1), "]", "}", "}"),
        BCON_NEW("v", BCON_INT32(1), "lat", "{", "s", BCON_UTF8("x"), "}"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad_new%zu", i);
        expect_bad(name, bson_get_data(bad[i]), bad[i]->len);
        bson_destroy(bad[i]);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mongodb_state");
    TCase *tc = tcase_create("state");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_empty_state);
    tcase_add_test(tc, test_missing);
    tcase_add_test(tc, test_atomic_replace);
    tcase_add_test(tc, test_failed_save_keeps_old);
    tcase_add_test(tc, test_corrupt_files);
    tcase_add_test(tc, test_corrupt_token);
    tcase_add_test(tc, test_corrupt_names);
    tcase_add_test(tc, test_long_name_cut);
    tcase_add_test(tc, test_symlink_refused);
    tcase_add_test(tc, test_fifo_refused);
    tcase_add_test(tc, test_device_refused);
    tcase_add_test(tc, test_lock_file);
    tcase_add_test(tc, test_dir_check);
    tcase_add_test(tc, test_count_slots);
    tcase_add_test(tc, test_fields_added_later);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
