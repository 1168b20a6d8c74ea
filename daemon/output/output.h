/* daemon/output/output.h: what every output (NATS JetStream, Redis Streams) shares: record
 * ids, bounded in-flight, the spool it falls back to and replays from, its counters and its
 * state-change log lines. A transport (nats_out.c, redis_out.c) only sends and reports. */
#ifndef LUADGRAM_OUTPUT_H
#define LUADGRAM_OUTPUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "spool.h"
#include "stats.h"

struct event;
struct event_base;
struct output;

struct output_ops {
    const char *kind;  /* "nats", "redis" */
    /* Sends r asynchronously: 0 (its outcome comes later through output_done), or -1 with
     * err set (r was not sent). Loop thread. */
    int (*send)(void *t, const struct spool_rec *r, char *err, size_t errlen);
    /* Closes the transport: records still waiting for their ack come back through
     * output_done(failed) before it returns; frees t. Loop thread. */
    void (*close)(void *t);
};

/* Where an output lives: its loop, log, counters, identity. */
struct output_env {
    struct event_base *base;
    struct logger *log;
    struct stats_registry *stats;
    const char *listener;
    int slot;
};

struct output_done_rec;

struct output {
    const struct output_ops *ops;
    void *t;
    struct logger *log;
    struct ostats *st;
    char name[64];            /* "nats" / "redis" or options.name: the metrics' output label */
    char id_prefix[160];      /* "<listener>/<worker>/<boot id>/" */
    char label[240];          /* "listener 'x' output 'nats'": log lines */
    unsigned max_inflight;
    struct spool *spool;      /* NULL: no spool (records the bus cannot take are dropped) */
    struct event *wake_ev;    /* activated from any thread: completions, state changes */
    struct event *tick_ev;    /* 200 ms: replay, spool sync */
    int ticks;
    /* Replay backoff: after a failed send or ack the spool is not replayed before
     * replay_after (ms, monotonic); the pause doubles from 200 ms to 2 s while failures
     * go on, and ends at an ack or a reconnect. Loop thread. */
    unsigned backoff_ms;
    int64_t replay_after;
    uint64_t acked_seen;      /* OS_ACKED at the last run */
    atomic_uint inflight;
    atomic_uint_fast64_t completed;  /* sends that reached a final state */
    uint64_t sent;            /* sends made (loop thread) */
    atomic_int up;            /* the transport says connected */
    int logged_up;            /* the state last logged (-1: none yet) */
    int spooling;             /* logged "spooling", not yet "drained" */
    pthread_mutex_t lock;     /* guards failed */
    struct output_done_rec *failed, **failed_tail;
    int closing;
};

/* Sets up o (name, transport filled later with output_attach). 0 or -1 with err set. The
 * spool is opened when spool_dir is not NULL. */
int output_init(struct output *o, const struct output_env *env, const char *name,
                unsigned max_inflight, const char *spool_dir, uint64_t spool_max,
                char *err, size_t errlen);
void output_attach(struct output *o, const struct output_ops *ops, void *t);

/* Publishes data under subject (may be empty). 0: sent or spooled; -1: dropped (err set).
 * Loop thread. Never blocks on the network. */
int output_publish(struct output *o, const char *subject, size_t subject_len,
                   const void *data, size_t len, char *err, size_t errlen);

/* From any thread: the transport's outcome for one record sent: acknowledged (r NULL), or
 * failed (r: the record, copied here, to spool and send again). */
void output_done(struct output *o, const struct spool_rec *r);
/* From any thread: the transport is connected (1) or not (0). */
void output_set_up(struct output *o, int up);

/* Closes the transport (records waiting for acks go to the spool), syncs and closes the
 * spool. Loop thread (or the loop no longer running). */
void output_close(struct output *o);

#endif
