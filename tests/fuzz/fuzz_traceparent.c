/* SPDX-License-Identifier: Apache-2.0 */
/* W3C traceparent, as read from documents and from scrape requests: a
 * parsed context formats back to a traceparent that parses to the same. */
#include <string.h>

#include "fuzz.h"
#include "trace/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    poh_span_context_t ctx, again;
    if (poh_traceparent_parse((const char *)data, size, &ctx) != 0)
        return 0;
    FUZZ_CHECK(poh_span_context_valid(&ctx));
    char buf[POH_TRACEPARENT_LEN + 1];
    FUZZ_CHECK(poh_traceparent_format(&ctx, buf, sizeof buf) == POH_TRACEPARENT_LEN);
    FUZZ_CHECK(poh_traceparent_parse(buf, POH_TRACEPARENT_LEN, &again) == 0);
    FUZZ_CHECK(memcmp(ctx.trace_id, again.trace_id, sizeof ctx.trace_id) == 0);
    FUZZ_CHECK(memcmp(ctx.span_id, again.span_id, sizeof ctx.span_id) == 0);
    return 0;
}
