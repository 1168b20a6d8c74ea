/* daemon/output/outq.h: the queue from a worker's loop to its output's thread. One producer
 * (the handler's publish, on the worker's loop), one consumer (the output thread); a ring of
 * bytes allocated once, records copied in by the producer and read in place by the
 * consumer: no allocation and no lock per record. The consumer sleeps in its own loop when
 * the ring is empty; the producer learns from its push when it must wake it. */
#ifndef LUADGRAM_OUTQ_H
#define LUADGRAM_OUTQ_H

#include <stddef.h>
#include <stdint.h>

struct outq;

struct outq_rec {
    const char *subject;
    size_t subject_len;
    const uint8_t *data;
    size_t len;
};

#define OUTQ_MIN_BYTES (64u << 10)

/* A ring of `bytes` (rounded up to 16, at least OUTQ_MIN_BYTES). NULL when out of memory. */
struct outq *outq_new(size_t bytes);
void outq_free(struct outq *q);

/* The largest subject_len + len a record may have in q (a quarter of the ring). */
size_t outq_max_record(const struct outq *q);

/* Producer: copies the record in. 1: queued, and the consumer sleeps: wake it; 0: queued;
 * -1: no room now (the consumer is behind) or larger than outq_max_record. */
int outq_push(struct outq *q, const char *subject, size_t subject_len, const void *data,
              size_t len);

/* Consumer: the oldest record, in place (valid until outq_pop): 1, or 0 when empty. */
int outq_peek(struct outq *q, struct outq_rec *r);
/* Consumer: gives the room of the record outq_peek returned back to the producer. */
void outq_pop(struct outq *q);

/* Consumer: the bytes waiting in the ring, and its size. */
size_t outq_backlog(const struct outq *q);
size_t outq_size(const struct outq *q);

/* Consumer, about to wait in its loop: 1 when the ring is empty (the next push says to
 * wake it), 0 when a record came meanwhile (go on reading). */
int outq_sleep(struct outq *q);

#endif
