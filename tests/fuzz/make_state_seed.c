/* SPDX-License-Identifier: Apache-2.0 */
/* Writes DIR/saved: a state file as poh_mongo_state_save writes it (resume
 * token, namespace, counters of operations and field errors), the seed
 * tests/fuzz/corpus/state_file/saved. CTest's fuzz.state_file_saved also
 * runs it into the build tree and replays the result, so a change of the
 * saved format is fuzzed from its first build. Usage: fuzz_make_state_seed DIR */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "fuzz.h"
#include "mongo/mongo_state.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        perror(argv[1]);
        return 1;
    }
    poh_mongo_state_t st = {0};
    bson_t *token = BCON_NEW("_data", BCON_UTF8("8263A1B2C3000000012B022C0100296E5A1004"));
    FUZZ_CHECK(poh_mongo_state_set_token(&st, bson_get_data(token), token->len) == 0);
    bson_destroy(token);
    FUZZ_CHECK(poh_mongo_state_set_ns(&st, "dag.transactions") == 0);
    st.last_wall_ms = 1795621335123;
    *poh_mongo_count_slot(st.changes, &st.nchanges, "insert") = 36004680;
    *poh_mongo_count_slot(st.changes, &st.nchanges, "update") = 12;
    *poh_mongo_count_slot(st.changes, &st.nchanges, "delete") = 1;
    *poh_mongo_count_slot(st.field_errors, &st.nfield_errors, "missing:created_at") = 3;
    *poh_mongo_count_slot(st.field_errors, &st.nfield_errors, "too_large:approved_at") = 2;
    st.resumes = 4;
    st.history_lost = 1;
    int rc = poh_mongo_state_save(dfd, "saved", &st);
    poh_mongo_state_clear(&st);
    close(dfd);
    if (rc < 0) {
        fprintf(stderr, "%s/saved: %s\n", argv[1], poh_mongo_state_strerror(rc));
        return 1;
    }
    return 0;
}
