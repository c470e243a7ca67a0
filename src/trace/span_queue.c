/* SPDX-License-Identifier: Apache-2.0 */
/* Bounded multi-producer single-consumer queue of spans (Dmitry Vyukov's
 * bounded MPMC queue with the consumer side simplified). Producers claim a
 * position with one CAS and publish with a release store; nobody ever waits,
 * a full queue is reported at once. Positions are 64-bit and never wrap in
 * practice; cells are addressed modulo their count, so any size works. The
 * algorithm needs two cells at least, so the bound is also checked against
 * the consumer's position (which only grows: the check is conservative). */
#include <errno.h>
#include <stdlib.h>

#include "trace/trace_internal.h"

int poh_span_queue_init(poh_span_queue_t *q, size_t cap)
{
    if (cap == 0 || cap > (1u << 30))
        return -EINVAL;
    q->ncells = cap < 2 ? 2 : cap;
    q->cells = calloc(q->ncells, sizeof *q->cells);
    if (!q->cells)
        return -ENOMEM;
    q->cap = cap;
    for (uint64_t i = 0; i < q->ncells; i++)
        atomic_init(&q->cells[i].seq, i);
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    return 0;
}

void poh_span_queue_destroy(poh_span_queue_t *q)
{
    poh_span_t *s;
    if (!q->cells)
        return;
    while ((s = poh_span_queue_pop(q)))
        poh_span_free(s);
    free(q->cells);
    q->cells = NULL;
}

long poh_span_queue_push(poh_span_queue_t *q, poh_span_t *item)
{
    uint64_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    poh_span_queue_cell_t *c;

    for (;;) {
        if (pos - atomic_load_explicit(&q->tail, memory_order_acquire) >= q->cap)
            return -ENOSPC;
        c = &q->cells[pos % q->ncells];
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            return -ENOSPC; /* the cell still holds an item a lap behind: full */
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
    c->item = item;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    return pos >= tail ? (long)(pos - tail) : 0;
}

poh_span_t *poh_span_queue_pop(poh_span_queue_t *q)
{
    uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    poh_span_queue_cell_t *c = &q->cells[pos % q->ncells];
    uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);

    if (seq != pos + 1)
        return NULL; /* empty, or the producer has claimed but not published */
    poh_span_t *item = c->item;
    c->item = NULL;
    atomic_store_explicit(&c->seq, pos + q->ncells, memory_order_release);
    atomic_store_explicit(&q->tail, pos + 1, memory_order_release);
    return item;
}

uint64_t poh_span_queue_len(const poh_span_queue_t *q)
{
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    return head > tail ? head - tail : 0;
}
