/* SPDX-License-Identifier: Apache-2.0 */
/* What an OTLP collector sends back to the tracer (trace/otlp_encode.c): an
 * ExportTraceServiceResponse (partial_success) and the
 * grpc-status-details-bin trailer, a google.rpc.Status whose RetryInfo sets
 * the retry delay. The same bytes go to both decoders. Uses the internal
 * header of src/trace, as its unit tests do. */
#include <errno.h>
#include <math.h>

#include "core/strbuf.h"
#include "fuzz.h"
#include "trace/trace_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t rejected = -1;
    poh_strbuf_t msg = POH_STRBUF_INIT;
    int rc = poh_otlp_decode_response(data, size, &rejected, &msg);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
    FUZZ_CHECK(rc == 0 || rejected == 0);
    FUZZ_CHECK(msg.len <= size);
    poh_strbuf_free(&msg);

    double delay = -1;
    rc = poh_otlp_retry_info(data, size, &delay);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EBADMSG);
    if (rc == 0)
        FUZZ_CHECK(isfinite(delay) && delay >= 0);
    return 0;
}
