/* SPDX-License-Identifier: Apache-2.0 */
/* A stream's state file (mongo/mongo_state.c) as found on disk: loaded (in
 * a temporary directory made once per process), its field-error keys split
 * as a resuming stream does, and when valid, saved and loaded back to the
 * same state. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "mongo/mongo_event.h"
#include "mongo/mongo_state.h"

static int state_dirfd = -1;
static char state_dir[64];

static void cleanup(void)
{
    static const char *const names[] = {"s.state", "t.state", "t.state.tmp"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlinkat(state_dirfd, names[i], 0);
    close(state_dirfd);
    rmdir(state_dir);
}

static void same_counts(const poh_mongo_count_t *a, size_t na, const poh_mongo_count_t *b,
                        size_t nb)
{
    FUZZ_CHECK(na == nb && na <= POH_MONGO_STATE_MAX_COUNTS);
    for (size_t i = 0; i < na; i++)
        FUZZ_CHECK(a[i].n == b[i].n && !strcmp(a[i].name, b[i].name));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (state_dirfd < 0) {
        /* tmpfs when there is one: a save fsyncs, which a disk makes slow */
        struct stat sb;
        const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) &&
                                   access("/dev/shm", W_OK | X_OK) == 0
                               ? "/dev/shm"
                               : "/tmp";
        snprintf(state_dir, sizeof state_dir, "%s/poh-fuzz-state-XXXXXX", base);
        FUZZ_CHECK(mkdtemp(state_dir) != NULL);
        state_dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        FUZZ_CHECK(state_dirfd >= 0);
        atexit(cleanup);
    }
    int fd = openat(state_dirfd, "s.state", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    close(fd);
    poh_mongo_state_t st = {0}, again = {0};
    int rc = poh_mongo_state_load(state_dirfd, "s.state", &st);
    if (rc == 0) {
        for (size_t i = 0; i < st.nfield_errors; i++) {
            int reason;
            const char *f = poh_mongo_field_error_split(st.field_errors[i].name, &reason);
            FUZZ_CHECK(f && reason >= -1 && reason < POH_FIELD_REASONS);
            FUZZ_CHECK(strlen(st.field_errors[i].name) < POH_MONGO_STATE_NAME_MAX);
        }
        FUZZ_CHECK(poh_mongo_state_save(state_dirfd, "t.state", &st) == 0);
        FUZZ_CHECK(poh_mongo_state_load(state_dirfd, "t.state", &again) == 0);
        same_counts(st.changes, st.nchanges, again.changes, again.nchanges);
        same_counts(st.field_errors, st.nfield_errors, again.field_errors, again.nfield_errors);
        FUZZ_CHECK(again.resumes == st.resumes && again.history_lost == st.history_lost &&
                   again.last_wall_ms == st.last_wall_ms);
        FUZZ_CHECK(!st.ns == !again.ns && (!st.ns || !strcmp(st.ns, again.ns)));
        FUZZ_CHECK(!st.token == !again.token && (!st.token || bson_equal(st.token, again.token)));
    } else {
        FUZZ_CHECK(st.token == NULL && st.ns == NULL && st.nchanges == 0 &&
                   st.nfield_errors == 0);
    }
    poh_mongo_state_clear(&st);
    poh_mongo_state_clear(&again);
    return 0;
}
