/* daemon/output/output.h: what every output (NATS JetStream, Redis Streams) shares: its own
 * thread and loop, the queue the worker's loop hands records into, record ids, bounded
 * in-flight, the spool it falls back to and replays from, its counters and its state-change
 * log lines. A transport (nats_out.c, redis_out.c) only sends and reports, on the output's
 * loop. The worker's receive path only copies each record into the queue: the publish work
 * (the client library, the acks, the spool) runs on the output's thread, at a lower CPU
 * priority, so that it never takes the receive path's core from it. */
#ifndef LUADGRAM_OUTPUT_H
#define LUADGRAM_OUTPUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "outq.h"
#include "spool.h"
#include "stats.h"

struct event;
struct event_base;
struct output;

struct output_ops {
    const char *kind;  /* "nats", "redis" */
    /* Sends r asynchronously: 0 (its outcome comes later through output_done), or -1 with
     * err set (r was not sent). Output thread. */
    int (*send)(void *t, const struct spool_rec *r, char *err, size_t errlen);
    /* Closes the transport: records still waiting for their ack come back through
     * output_done(failed) before it returns; frees t. Output thread, or its loop stopped. */
    void (*close)(void *t);
};

/* Where an output lives: its log, counters, identity. */
struct output_env {
    struct logger *log;
    struct stats_registry *stats;
    const char *listener;
    int slot;
};

struct output_done_rec;

/* An output's settings (bindings/publish.c reads them from the handler's options). */
struct output_cfg {
    const char *name;          /* the metrics' output label */
    unsigned max_inflight;
    const char *spool_dir;     /* NULL: no spool */
    uint64_t spool_max;
    size_t queue_bytes;        /* the worker-to-output queue's ring */
    int nice;                  /* added to the output thread's nice value (0-19) */
};

struct output {
    /* The output's own loop and the thread that runs it (output_start). Everything below
     * that is not atomic or under lock belongs to that thread. */
    struct event_base *base;
    pthread_t thread;
    int started;
    int base_kept;            /* set by a transport that could not close: base not freed */
    int nice;
    struct outq *q;           /* worker's loop -> output thread */
    struct event *drain_ev;   /* the drain's next batch (the output's thread) */
    /* The doorbell: an eventfd the other threads write to wake the output's loop (the
     * producer when the queue was empty, the client's threads for a failure or a state
     * change, or an ack while acks drive the replay); no lock of the loop is taken. */
    int bell_fd;
    struct event *bell_ev;
    atomic_int run_pending;   /* output_run is due at the next ring */
    atomic_int ack_wakes;     /* an ack rings: the spool holds records, or replay paused */
    /* output_call: a function the caller's thread has the output's thread run */
    atomic_int call_pending;
    int (*call_fn)(void *);
    void *call_arg;
    int call_rc, call_done;
    pthread_cond_t call_cond; /* with lock */
    int dropping;             /* logged "dropping", not yet a record taken again */
    /* Set by the output's thread when it drops a record (spool full, or none, while the
     * bus cannot take it), cleared at its next tick: meanwhile output_publish refuses at
     * once, so that its caller knows (an inform is then not acknowledged). */
    atomic_int refusing;
    const struct output_ops *ops;
    void *t;
    struct logger *log;
    struct ostats *st;
    char name[64];            /* "nats" / "redis" or options.name: the metrics' output label */
    char id_prefix[160];      /* "<listener>/<worker>/<boot id>/" */
    char label[240];          /* "listener 'x' output 'nats'": log lines */
    unsigned max_inflight;
    struct spool *spool;      /* NULL: no spool (records the bus cannot take are dropped) */
    struct event *tick_ev;    /* 200 ms: replay, spool sync */
    int ticks;
    /* Replay backoff: after a failed send or ack the spool is not replayed before
     * replay_after (ms, monotonic); the pause doubles from 200 ms to 2 s while failures
     * go on, and ends at an ack or a reconnect. Output thread. */
    unsigned backoff_ms;
    int64_t replay_after;
    uint64_t acked_seen;      /* OS_ACKED at the last run */
    atomic_uint inflight;
    atomic_uint_fast64_t completed;  /* sends that reached a final state */
    uint64_t sent;            /* sends made (output thread) */
    atomic_int up;            /* the transport says connected */
    int logged_up;            /* the state last logged (-1: none yet) */
    int spooling;             /* logged "spooling", not yet "drained" */
    pthread_mutex_t lock;     /* guards failed */
    struct output_done_rec *failed, **failed_tail;
    int closing;
};

/* Sets up o: its loop (o->base, for the transport to open on), queue, spool, counters. The
 * transport is attached with output_attach, then output_start runs the loop. 0 or -1 with
 * err set (then output_close). Caller's thread. */
int output_init(struct output *o, const struct output_env *env, const struct output_cfg *cfg,
                char *err, size_t errlen);
void output_attach(struct output *o, const struct output_ops *ops, void *t);
/* Starts the output's thread on its loop. 0 or -1 with err set. */
int output_start(struct output *o, char *err, size_t errlen);
/* Runs fn(arg) on the output's thread (started) and returns its result once it returned:
 * the transport's open runs there, so that the threads a client library starts (libnats'
 * own, which inherit the creating thread's priority) start from the output's thread. */
int output_call(struct output *o, int (*fn)(void *), void *arg);

/* Hands data under subject (may be empty) to the output's thread. 0: queued; -1: dropped
 * and counted (err set): the queue is full (the output's thread is behind), the record
 * is larger than a quarter of it, or the output is dropping what it takes (refusing). The producer's thread (one per output). Copies the
 * record; never allocates, never waits. What becomes of it (sent, spooled, or dropped
 * with the spool full) the counters and the log say. */
int output_publish(struct output *o, const char *subject, size_t subject_len,
                   const void *data, size_t len, char *err, size_t errlen);

/* From any thread: the transport's outcome for one record sent: acknowledged (r NULL), or
 * failed (r: the record, copied here, to spool and send again). */
void output_done(struct output *o, const struct spool_rec *r);
/* From any thread: the transport is connected (1) or not (0). */
void output_set_up(struct output *o, int up);

/* Stops the output's thread, closes the transport (records waiting for acks, and those
 * still queued, go to the spool), syncs and closes the spool, frees the loop. The
 * producer's thread. */
void output_close(struct output *o);

#endif
