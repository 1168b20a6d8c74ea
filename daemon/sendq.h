/* daemon/sendq.h: a worker's queue of outgoing datagrams: filled during a receive batch,
 * flushed with send_batch at its end, in order. When the kernel says EAGAIN the rest waits
 * for writability (and the worker stops reading meanwhile) instead of being dropped. */
#ifndef LUADGRAM_SENDQ_H
#define LUADGRAM_SENDQ_H

#include "worker.h"

int sendq_init(struct sendq *q, unsigned cap, size_t arena_cap);
/* Frees the queue; datagrams still in it (the socket stayed blocked until the worker
 * stopped) are counted as send_dropped and logged. */
void sendq_free(struct sendq *q, struct logger *lg);

/* Appends one datagram (data copied). Flushes first when full. Returns 0, or ENOBUFS when
 * there is no room because the queue is blocked on a socket (counted as send_dropped), or
 * EMSGSIZE when len exceeds the arena. */
int sendq_push(struct worker *w, const struct send_item *it, struct lstats *owner);

/* Sends what is queued. Errors other than EAGAIN are counted, logged (rate-limited) and the
 * item skipped; EAGAIN keeps the rest and waits for writability. */
void sendq_flush(struct worker *w);

#endif
