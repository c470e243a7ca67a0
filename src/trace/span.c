/* SPDX-License-Identifier: Apache-2.0 */
/* Span model: ids, attributes, status and timing; end hands the span over. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "trace/trace_internal.h"

#define NO_TEXT UINT32_MAX

uint64_t poh_trace_now_unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t poh_trace_mono_ns(void)
{
    return poh_now_mono_ns();
}

/* Length of the valid UTF-8 sequence at p (at most avail bytes), 0 if the
 * bytes there are not one. Rejects overlong forms, surrogates, > U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (avail < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

static int text_reserve(poh_span_t *s, size_t need)
{
    if (s->text_len + need <= s->text_cap)
        return 0;
    if (s->text_len + need > POH_SPAN_MAX_TEXT)
        return -ENOSPC;
    size_t cap = s->text_cap * 2;
    while (cap < s->text_len + need)
        cap *= 2;
    if (cap > POH_SPAN_MAX_TEXT)
        cap = POH_SPAN_MAX_TEXT;
    char *p;
    if (s->text == s->inline_text) {
        p = malloc(cap);
        if (p)
            memcpy(p, s->text, s->text_len);
    } else {
        p = realloc(s->text, cap);
    }
    if (!p)
        return -ENOMEM;
    s->text = p;
    s->text_cap = (uint32_t)cap;
    return 0;
}

/* Append str as valid UTF-8 (an invalid byte becomes '?'), cut at max bytes
 * on a character boundary. Returns its offset, or NO_TEXT when the span's
 * text budget is spent. */
static uint32_t text_add(poh_span_t *s, const char *str, size_t max)
{
    if (!str || !*str)
        return 0;
    size_t len = strnlen(str, max + 4);
    if (text_reserve(s, (len < max ? len : max) + 1) < 0)
        return NO_TEXT;
    uint32_t off = s->text_len;
    const unsigned char *p = (const unsigned char *)str;
    char *out = s->text + off;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0) {
            if (o + 1 > max)
                break;
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + n > max)
            break;
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
    s->text_len += (uint32_t)o + 1;
    return off;
}

static void span_init(poh_span_t *s, poh_tracer_t *t, const char *name, poh_span_kind_t kind,
                      const poh_span_context_t *parent, uint64_t start_ns, bool recording)
{
    s->tracer = t;
    s->text = s->inline_text;
    s->text[0] = '\0';
    s->text_len = 1;
    s->text_cap = POH_SPAN_INLINE_TEXT;
    s->nattrs = 0;
    s->dropped_attrs = 0;
    s->status = POH_SPAN_STATUS_UNSET;
    s->status_message = 0;
    s->kind = (uint8_t)(kind >= POH_SPAN_KIND_INTERNAL && kind <= POH_SPAN_KIND_CONSUMER
                            ? kind
                            : POH_SPAN_KIND_INTERNAL);
    s->recording = recording;
    s->start_mono_ns = start_ns ? 0 : poh_trace_mono_ns();
    s->start_ns = start_ns ? start_ns : poh_trace_now_unix_ns();
    s->end_ns = 0;
    s->ctx.flags = recording ? POH_TRACE_FLAG_SAMPLED : 0;
    s->ctx.remote = false;
    poh_trace_random_span_id(s->ctx.span_id);
    s->parent_remote = parent && parent->remote;
    s->has_parent = parent != NULL;
    if (parent)
        memcpy(s->parent_span_id, parent->span_id, 8);
    else
        memset(s->parent_span_id, 0, 8);
    s->name = 0;
    if (recording) {
        uint32_t off = text_add(s, name, POH_SPAN_MAX_VALUE);
        s->name = off == NO_TEXT ? 0 : off;
    }
}

static poh_span_t *span_start(poh_tracer_t *t, const char *name, poh_span_kind_t kind,
                              const poh_span_context_t *parent, uint64_t start_ns)
{
    if (!t)
        return NULL;
    poh_span_t *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    if (!poh_span_context_valid(parent))
        parent = NULL; /* an invalid parent starts a new trace, as W3C says */
    if (parent)
        memcpy(s->ctx.trace_id, parent->trace_id, 16);
    else
        poh_trace_random_trace_id(s->ctx.trace_id);
    bool sampled = poh_tracer_should_sample(t, parent, s->ctx.trace_id);
    span_init(s, t, name, kind, parent, start_ns, sampled);
    return s;
}

poh_span_t *poh_span_start(poh_tracer_t *t, const char *name, poh_span_kind_t kind,
                           const poh_span_context_t *parent)
{
    return span_start(t, name, kind, parent, 0);
}

poh_span_t *poh_span_start_at(poh_tracer_t *t, const char *name, poh_span_kind_t kind,
                              const poh_span_context_t *parent, uint64_t start_unix_ns)
{
    return span_start(t, name, kind, parent, start_unix_ns);
}

poh_span_t *poh_span_new_detached(const char *name, poh_span_kind_t kind,
                                  const poh_span_context_t *parent, uint64_t start_unix_ns)
{
    poh_span_t *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    if (!poh_span_context_valid(parent))
        parent = NULL;
    if (parent)
        memcpy(s->ctx.trace_id, parent->trace_id, 16);
    else
        poh_trace_random_trace_id(s->ctx.trace_id);
    span_init(s, NULL, name, kind, parent, start_unix_ns, true);
    return s;
}

void poh_span_free(poh_span_t *s)
{
    if (!s)
        return;
    if (s->text != s->inline_text)
        free(s->text);
    free(s);
}

/* Slot for key: the existing one, a new one, or NULL (limit reached). */
static poh_attr_t *attr_slot(poh_span_t *s, const char *key)
{
    if (!key || !*key) {
        s->dropped_attrs++;
        return NULL;
    }
    for (uint16_t i = 0; i < s->nattrs; i++)
        if (strcmp(s->text + s->attrs[i].key, key) == 0)
            return &s->attrs[i];
    if (s->nattrs >= POH_SPAN_MAX_ATTRS) {
        s->dropped_attrs++;
        return NULL;
    }
    uint32_t k = text_add(s, key, POH_SPAN_MAX_VALUE);
    if (k == NO_TEXT || k == 0) {
        s->dropped_attrs++;
        return NULL;
    }
    poh_attr_t *a = &s->attrs[s->nattrs++];
    a->key = k;
    a->type = 0;
    return a;
}

/* A slot whose value could not be stored is given back (it was the last one
 * added) or keeps its old value. */
static void attr_release_new(poh_span_t *s, poh_attr_t *a)
{
    if (a->type == 0 && a == &s->attrs[s->nattrs - 1])
        s->nattrs--;
    s->dropped_attrs++;
}

void poh_span_set_str(poh_span_t *s, const char *key, const char *value)
{
    if (!s || !s->recording)
        return;
    poh_attr_t *a = attr_slot(s, key);
    if (!a)
        return;
    uint32_t v = text_add(s, value ? value : "", POH_SPAN_MAX_VALUE);
    if (v == NO_TEXT) {
        attr_release_new(s, a);
        return;
    }
    a->type = POH_ATTR_STR;
    a->v.s = v;
}

void poh_span_set_int(poh_span_t *s, const char *key, int64_t value)
{
    if (!s || !s->recording)
        return;
    poh_attr_t *a = attr_slot(s, key);
    if (!a)
        return;
    a->type = POH_ATTR_INT;
    a->v.i = value;
}

void poh_span_set_double(poh_span_t *s, const char *key, double value)
{
    if (!s || !s->recording)
        return;
    poh_attr_t *a = attr_slot(s, key);
    if (!a)
        return;
    a->type = POH_ATTR_DOUBLE;
    a->v.d = value;
}

void poh_span_set_bool(poh_span_t *s, const char *key, bool value)
{
    if (!s || !s->recording)
        return;
    poh_attr_t *a = attr_slot(s, key);
    if (!a)
        return;
    a->type = POH_ATTR_BOOL;
    a->v.b = value;
}

void poh_span_set_status(poh_span_t *s, poh_span_status_t code, const char *message)
{
    if (!s || !s->recording)
        return;
    if (code != POH_SPAN_STATUS_UNSET && code != POH_SPAN_STATUS_OK &&
        code != POH_SPAN_STATUS_ERROR)
        return;
    s->status = (uint8_t)code;
    s->status_message = 0;
    if (code == POH_SPAN_STATUS_ERROR && message) {
        uint32_t m = text_add(s, message, POH_SPAN_MAX_VALUE);
        s->status_message = m == NO_TEXT ? 0 : m;
    }
}

static void span_set_end(poh_span_t *s, uint64_t end_ns)
{
    if (!end_ns) {
        if (s->start_mono_ns) {
            /* Started "now": the duration comes from the monotonic clock, so a
             * wall-clock step cannot make it negative. */
            uint64_t mono = poh_trace_mono_ns();
            end_ns = s->start_ns + (mono > s->start_mono_ns ? mono - s->start_mono_ns : 0);
        } else {
            end_ns = poh_trace_now_unix_ns();
        }
    }
    s->end_ns = end_ns < s->start_ns ? s->start_ns : end_ns;
}

void poh_span_end_at(poh_span_t *s, uint64_t end_unix_ns)
{
    if (!s)
        return;
    if (!s->recording || !s->tracer) {
        poh_span_free(s);
        return;
    }
    span_set_end(s, end_unix_ns);
    poh_tracer_submit(s->tracer, s);
}

void poh_span_end(poh_span_t *s)
{
    poh_span_end_at(s, 0);
}

void poh_span_finish_detached(poh_span_t *s, uint64_t end_unix_ns)
{
    if (s)
        span_set_end(s, end_unix_ns);
}

poh_trace_parent_t poh_span_parent_ref(const poh_span_t *s)
{
    poh_trace_parent_t p;
    memset(&p, 0, sizeof p);
    if (s) {
        p.tracer = s->tracer;
        p.ctx = s->ctx;
    }
    return p;
}

poh_span_t *poh_span_start_child(const poh_trace_parent_t *p, const char *name,
                                 poh_span_kind_t kind)
{
    if (!p || !p->tracer)
        return NULL;
    return span_start(p->tracer, name, kind, &p->ctx, 0);
}

const poh_span_context_t *poh_span_context(const poh_span_t *s)
{
    return s ? &s->ctx : NULL;
}

bool poh_span_is_sampled(const poh_span_t *s)
{
    return s && (s->ctx.flags & POH_TRACE_FLAG_SAMPLED);
}

int poh_span_traceparent(const poh_span_t *s, char *buf, size_t size)
{
    if (!s)
        return -EINVAL;
    return poh_traceparent_format(&s->ctx, buf, size);
}

int poh_span_trace_id_hex(const poh_span_t *s, char out[POH_TRACE_ID_HEX_LEN + 1])
{
    if (!s || !s->recording)
        return -EINVAL;
    poh_hex_encode(s->ctx.trace_id, 16, out);
    return 0;
}
