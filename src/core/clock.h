/* SPDX-License-Identifier: Apache-2.0 */
/* Clocks: monotonic for deadlines and durations, realtime for timestamps. */
#ifndef POH_CLOCK_H
#define POH_CLOCK_H

#include <time.h>

#include <stdint.h>

double poh_now_mono(void); /* CLOCK_MONOTONIC, seconds */
uint64_t poh_now_mono_ns(void); /* CLOCK_MONOTONIC, nanoseconds */
double poh_now_real(void); /* CLOCK_REALTIME, unix seconds */
/* Absolute CLOCK_REALTIME timespec for a monotonic deadline, for
 * pthread_cond_timedwait on a default (realtime) condition variable. */
struct timespec poh_mono_to_abs_realtime(double mono_deadline);

#endif
