/* SPDX-License-Identifier: Apache-2.0 */
/* The exporter's own metrics: poh_exporter_build_info and the standard
 * process_* metrics of the Prometheus client libraries, read from /proc. */
#ifndef POH_SELF_H
#define POH_SELF_H

#include "metrics/metrics.h"

/* The system's boot time (Unix seconds, /proc/stat's btime; process start
 * = btime + starttime/HZ), or -1 if unknown. It never changes: the app reads
 * it once, not at every scrape. */
double poh_self_boot_time(void);

/* Write build info and process metrics into r (a per-scrape registry);
 * boot_time from poh_self_boot_time() (< 0: no process_start_time_seconds).
 * Returns 0, or a negative errno if /proc could not be read (build info is
 * still written). */
int poh_self_metrics(poh_registry_t *r, double boot_time);

#endif
