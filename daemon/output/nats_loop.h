/* daemon/output/nats_loop.h: attaches one libnats connection to a libevent base (the
 * callbacks of natsOptions_SetEventLoop), without ever waiting for the loop from libnats'
 * threads. */
#ifndef LUADGRAM_NATS_LOOP_H
#define LUADGRAM_NATS_LOOP_H

#include <nats/nats.h>

struct event_base;
struct nats_loop;

/* A loop attachment on base. on_stop(arg) is called (from any thread, with libnats' lock
 * held: it must only set flags and wake the loop) when libnats stops polling the socket,
 * the first sign that the connection is lost. NULL when out of memory. Loop thread. */
struct nats_loop *nats_loop_new(struct event_base *base, void (*on_stop)(void *), void *arg);

/* Sets l as opts' event loop. */
natsStatus nats_loop_use(struct nats_loop *l, natsOptions *opts);

/* Frees l once its connection is closed and destroyed (libnats called detach, or never
 * attached). Loop thread. */
void nats_loop_free(struct nats_loop *l);

#endif
