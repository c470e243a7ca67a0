/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz targets of the exporter's parsers of others' bytes (issue 14).
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput. It is linked two ways:
 * with replay_main.c into fuzz_<name>_replay, which CTest runs on every file
 * of corpus/<name>/ in every build (plain and ASan + UBSan), and, when the
 * compiler is clang with libFuzzer, with -fsanitize=fuzzer into fuzz_<name>
 * (scripts/fuzz.sh). A target aborts (or a sanitizer reports) on any
 * failure; it must never leak, hang or grow without bound. */
#ifndef POH_FUZZ_H
#define POH_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data as a NUL-terminated string of exactly size + 1 bytes (malloc), so
 * that ASan catches any read past the end; NULL when out of memory. */
char *fuzz_cstring(const uint8_t *data, size_t size);

/* abort() with a message when cond is false: a finding. */
#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond))                                                                      \
            fuzz_fail(__FILE__, __LINE__, #cond);                                         \
    } while (0)
void fuzz_fail(const char *file, int line, const char *what);

#endif
