/* SPDX-License-Identifier: Apache-2.0 */
/* The exporter's own metrics: poh_exporter_build_info and the standard
 * process_* metrics of the Prometheus client libraries, read from /proc. */
#ifndef POH_SELF_H
#define POH_SELF_H

#include "metrics/metrics.h"

/* Write build info and process metrics into r (a per-scrape registry).
 * Returns 0, or a negative errno if /proc could not be read (build info is
 * still written). */
int poh_self_metrics(poh_registry_t *r);

#endif
