/* SPDX-License-Identifier: Apache-2.0 */
/* Parent-based sampler with a trace-id ratio sampler for new traces, and the
 * span rate limiter. */
#include <math.h>

#include "trace/trace_internal.h"

void poh_sampler_init(poh_sampler_t *s, double ratio)
{
    if (!(ratio > 0.0)) /* also NaN */
        ratio = 0.0;
    if (ratio > 1.0)
        ratio = 1.0;
    s->ratio = ratio;
    s->always = ratio >= 1.0;
    /* ratio * 2^63 fits in uint64_t for ratio < 1. */
    s->threshold = s->always ? UINT64_MAX : (uint64_t)ldexp(ratio, 63);
}

bool poh_sampler_should_sample(const poh_sampler_t *s, const poh_span_context_t *parent,
                               const uint8_t trace_id[16])
{
    if (parent)
        return (parent->flags & POH_TRACE_FLAG_SAMPLED) != 0;
    if (s->always)
        return true;
    uint64_t v = 0;
    for (int i = 8; i < 16; i++)
        v = v << 8 | trace_id[i];
    return (v & 0x7fffffffffffffffull) < s->threshold;
}

void poh_span_rate_limit_init(poh_span_rate_limit_t *rl, double rate, double burst)
{
    rl->rate = rate > 0 ? rate : 0;
    rl->burst = burst >= 1 ? burst : 1;
    rl->tokens = rl->burst;
    rl->last = (double)poh_trace_mono_ns() / 1e9;
    rl->refused = 0;
}

bool poh_span_rate_limit_take(poh_span_rate_limit_t *rl)
{
    double now = (double)poh_trace_mono_ns() / 1e9;
    rl->tokens = fmin(rl->burst, rl->tokens + (now - rl->last) * rl->rate);
    rl->last = now;
    if (rl->rate > 0 && rl->tokens >= 1.0) {
        rl->tokens -= 1.0;
        return true;
    }
    rl->refused++;
    return false;
}
