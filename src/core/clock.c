/* SPDX-License-Identifier: Apache-2.0 */
#include "core/clock.h"

static double ts_sec(const struct timespec *ts)
{
    return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

double poh_now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts_sec(&ts);
}

uint64_t poh_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double poh_now_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts_sec(&ts);
}

struct timespec poh_mono_to_abs_realtime(double mono_deadline)
{
    double remaining = mono_deadline - poh_now_mono();
    if (remaining < 0)
        remaining = 0;
    double abs = poh_now_real() + remaining;
    struct timespec ts;
    ts.tv_sec = (time_t)abs;
    ts.tv_nsec = (long)((abs - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
