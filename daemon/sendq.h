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

/* Takes the next slot with len bytes of the arena at slot->data (the caller fills the
 * slot and copies the payload in: no intermediate copy). Flushes first when full. Returns
 * NULL with *err = ENOBUFS when there is no room because the queue is blocked on a socket
 * (counted as send_dropped), or EMSGSIZE when len exceeds the arena. */
struct send_item *sendq_reserve(struct worker *w, size_t len, struct lstats *owner, int *err);

/* Sends what is queued. Errors other than EAGAIN are counted, logged (rate-limited) and the
 * item skipped; EAGAIN keeps the rest and waits for writability. */
void sendq_flush(struct worker *w);

#endif
