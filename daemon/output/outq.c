/* daemon/output/outq.c: the single-producer, single-consumer ring of outq.h. Frames are
 * 16-byte aligned: a header (u32 frame size, u32 subject length, u64 data length), the
 * subject, the data. A frame never wraps: when it does not fit before the ring's end, a
 * skip frame fills the rest and the record starts at offset 0. head and tail count bytes
 * since the start (they never wrap in 64 bits); head is written by the producer only, tail
 * by the consumer only. The wake-up is an event count: the consumer says it sleeps and then
 * looks at head once more; the producer publishes head and then looks at that flag; with
 * sequentially consistent accesses one of the two sees the other, so no record waits for
 * a wake-up that never comes. */
#include "outq.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define OUTQ_ALIGN 16
#define OUTQ_HDR 16
#define OUTQ_SKIP UINT32_MAX   /* subject length of a skip frame */

struct outq_hdr {
    uint32_t size;         /* the whole frame, header and padding included */
    uint32_t subject_len;  /* OUTQ_SKIP: a skip frame */
    uint64_t len;
};

struct outq {
    size_t cap;
    uint8_t *buf;
    _Alignas(64) atomic_uint_fast64_t head;  /* producer writes */
    uint64_t head_local;                      /* producer's copy */
    _Alignas(64) atomic_uint_fast64_t tail;  /* consumer writes */
    uint64_t tail_local;                      /* consumer's copy */
    uint32_t peeked;                          /* size of the frame outq_peek gave */
    _Alignas(64) atomic_int sleeping;
};

static size_t outq_align(size_t n)
{
    return (n + OUTQ_ALIGN - 1) & ~(size_t)(OUTQ_ALIGN - 1);
}

struct outq *outq_new(size_t bytes)
{
    if (bytes < OUTQ_MIN_BYTES)
        bytes = OUTQ_MIN_BYTES;
    bytes = outq_align(bytes);
    struct outq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    /* aligned_alloc: the headers are read and written in place as u32/u64 */
    q->buf = aligned_alloc(OUTQ_ALIGN, bytes);
    if (!q->buf) {
        free(q);
        return NULL;
    }
    q->cap = bytes;
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    atomic_init(&q->sleeping, 1);
    return q;
}

void outq_free(struct outq *q)
{
    if (!q)
        return;
    free(q->buf);
    free(q);
}

size_t outq_max_record(const struct outq *q)
{
    return q->cap / 4 - OUTQ_HDR;
}

int outq_push(struct outq *q, const char *subject, size_t subject_len, const void *data,
              size_t len)
{
    if (subject_len > outq_max_record(q) || len > outq_max_record(q) - subject_len)
        return -1;
    size_t need = outq_align(OUTQ_HDR + subject_len + len);
    uint64_t head = q->head_local;
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    size_t off = (size_t)(head % q->cap);
    size_t skip = q->cap - off < need ? q->cap - off : 0;
    if (head + skip + need - tail > q->cap)
        return -1;
    if (skip) {
        struct outq_hdr h = {(uint32_t)skip, OUTQ_SKIP, 0};
        memcpy(q->buf + off, &h, sizeof h);
        off = 0;
    }
    struct outq_hdr h = {(uint32_t)need, (uint32_t)subject_len, (uint64_t)len};
    memcpy(q->buf + off, &h, sizeof h);
    if (subject_len)
        memcpy(q->buf + off + OUTQ_HDR, subject, subject_len);
    if (len)
        memcpy(q->buf + off + OUTQ_HDR + subject_len, data, len);
    q->head_local = head + skip + need;
    atomic_store(&q->head, q->head_local); /* seq_cst: ordered before the flag's load */
    if (atomic_load(&q->sleeping) && atomic_exchange(&q->sleeping, 0))
        return 1;
    return 0;
}

int outq_peek(struct outq *q, struct outq_rec *r)
{
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    while (q->tail_local != head) {
        struct outq_hdr h;
        const uint8_t *p = q->buf + q->tail_local % q->cap;
        memcpy(&h, p, sizeof h);
        if (h.subject_len == OUTQ_SKIP) {
            q->tail_local += h.size;
            atomic_store_explicit(&q->tail, q->tail_local, memory_order_release);
            continue;
        }
        r->subject = (const char *)p + OUTQ_HDR;
        r->subject_len = h.subject_len;
        r->data = p + OUTQ_HDR + h.subject_len;
        r->len = (size_t)h.len;
        q->peeked = h.size;
        return 1;
    }
    return 0;
}

void outq_pop(struct outq *q)
{
    q->tail_local += q->peeked;
    q->peeked = 0;
    atomic_store_explicit(&q->tail, q->tail_local, memory_order_release);
}

size_t outq_backlog(const struct outq *q)
{
    return (size_t)(atomic_load_explicit(&q->head, memory_order_acquire) - q->tail_local);
}

size_t outq_size(const struct outq *q)
{
    return q->cap;
}

int outq_sleep(struct outq *q)
{
    atomic_store(&q->sleeping, 1); /* seq_cst: ordered before head's load */
    if (atomic_load(&q->head) == q->tail_local)
        return 1;
    atomic_store(&q->sleeping, 0);
    return 0;
}
