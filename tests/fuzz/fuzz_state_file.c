/* SPDX-License-Identifier: Apache-2.0 */
/* A stream's state file (mongo/mongo_state.c) as found on disk: loaded,
 * and when valid, saved and loaded back to the same counters. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "mongo/mongo_state.h"

static int dirfd = -1;
static char dir[] = "/tmp/poh-fuzz-state-XXXXXX";

static void cleanup(void)
{
    static const char *const names[] = {"s.state", "t.state", "t.state.tmp"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlinkat(dirfd, names[i], 0);
    close(dirfd);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dirfd < 0) {
        FUZZ_CHECK(mkdtemp(dir) != NULL);
        dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        FUZZ_CHECK(dirfd >= 0);
        atexit(cleanup);
    }
    int fd = openat(dirfd, "s.state", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    close(fd);
    poh_mongo_state_t st = {0}, again = {0};
    int rc = poh_mongo_state_load(dirfd, "s.state", &st);
    if (rc == 0) {
        FUZZ_CHECK(poh_mongo_state_save(dirfd, "t.state", &st) == 0);
        FUZZ_CHECK(poh_mongo_state_load(dirfd, "t.state", &again) == 0);
        FUZZ_CHECK(again.nchanges == st.nchanges && again.resumes == st.resumes &&
                   again.history_lost == st.history_lost);
        for (size_t i = 0; i < st.nchanges; i++)
            FUZZ_CHECK(again.changes[i].n == st.changes[i].n &&
                       !strcmp(again.changes[i].name, st.changes[i].name));
    }
    poh_mongo_state_clear(&st);
    poh_mongo_state_clear(&again);
    return 0;
}
