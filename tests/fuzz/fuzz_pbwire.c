/* SPDX-License-Identifier: Apache-2.0 */
/* The protobuf wire reader (grpc/pbwire.c) on a state reply, at paths and
 * types as configured, and protobuf-c's decoding of a health reply as the
 * probe does it. */
#include <stdlib.h>

#include "fuzz.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/pbwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const paths[] = {"1", "2", "3", "5.2", "1.1.1", "7.3.2.1", "536870911"};
    static const poh_pb_type_t types[] = {POH_PB_AUTO,    POH_PB_UINT64, POH_PB_SINT64,
                                          POH_PB_INT32,   POH_PB_BOOL,   POH_PB_DOUBLE,
                                          POH_PB_FLOAT,   POH_PB_FIXED32, POH_PB_SFIXED64};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        poh_pb_path_t path;
        FUZZ_CHECK(poh_pb_path_parse(paths[i], &path) == 0);
        for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
            poh_pb_value_t v;
            int rc = poh_pb_read(data, size, &path, types[k], &v);
            if (rc == 0) {
                FUZZ_CHECK(v.type != POH_PB_AUTO);
                (void)poh_pb_value_double(&v);
            } else {
                FUZZ_CHECK(poh_pb_strerror(rc) != NULL);
            }
        }
    }
    uint64_t u;
    size_t n = poh_pb_varint_decode(data, size, &u);
    FUZZ_CHECK(n <= size && n <= 10);
    if (n) { /* what decodes encodes back to the same value */
        uint8_t enc[10];
        uint64_t again;
        size_t m = poh_pb_varint_encode(u, enc);
        FUZZ_CHECK(m >= 1 && m <= n && poh_pb_varint_decode(enc, m, &again) == m && again == u);
    }
    Grpc__Health__V1__HealthCheckResponse *r =
        grpc__health__v1__health_check_response__unpack(NULL, size, data);
    if (r)
        grpc__health__v1__health_check_response__free_unpacked(r, NULL);
    /* the path syntax itself, from the configuration */
    char *s = fuzz_cstring(data, size < 64 ? size : 64);
    poh_pb_path_t p;
    if (s && poh_pb_path_parse(s, &p) == 0)
        FUZZ_CHECK(p.depth >= 1 && p.depth <= POH_PB_MAX_DEPTH);
    free(s);
    return 0;
}
