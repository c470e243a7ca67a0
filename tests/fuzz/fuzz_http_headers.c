/* SPDX-License-Identifier: Apache-2.0 */
/* Request headers the exporter interprets: Accept (exposition format),
 * Accept-Encoding (gzip) and X-Prometheus-Scrape-Timeout-Seconds. The input
 * is one header value, in a buffer of exactly its size plus the NUL, so a
 * read past the end is an ASan report. */
#include <math.h>
#include <stdlib.h>

#include "fuzz.h"
#include "http/http.h"
#include "metrics/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = fuzz_cstring(data, size);
    if (!v)
        return 0;
    poh_format_t f = poh_format_negotiate(v);
    FUZZ_CHECK(poh_format_content_type(f) != NULL);
    (void)poh_http_accepts_gzip(v);
    double t = poh_http_parse_scrape_timeout(v);
    FUZZ_CHECK(t == 0 || (isfinite(t) && t > 0 && t <= 86400));
    free(v);
    return 0;
}
