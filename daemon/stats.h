/* daemon/stats.h: per-listener counters, one block per (listener, worker) so the hot path
 * never shares a cache line between threads; and the named counters handlers create with
 * luadgram.counter, shared by all workers. Both survive reloads and feed /metrics. */
#ifndef LUADGRAM_STATS_H
#define LUADGRAM_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* Per-listener counter indices (the order of lstats_names). */
enum lstats_field {
    LS_RECEIVED,         /* datagrams handed to the loop */
    LS_BYTES,            /* their true sizes */
    LS_HANDLED,          /* handler returned without error */
    LS_HANDLER_ERRORS,   /* handler raised (or ran past its budget): the datagram is dropped */
    LS_HANDLER_TIMEOUTS, /* of those: past the budget */
    LS_TRUNCATED,        /* payload cut (MSG_TRUNC): bytes lost */
    LS_CTRUNCATED,       /* control data cut (MSG_CTRUNC) */
    LS_KERNEL_DROPS,     /* socket overflows (SO_RXQ_OVFL deltas) */
    LS_RECV_ERRORS,      /* failed receive calls */
    LS_SOCK_ERRORS,      /* errors from the error queue (ICMP) */
    LS_SENT,             /* replies and sends that left */
    LS_SEND_ERRORS,      /* sends the kernel refused */
    LS_SEND_DROPPED,     /* sends dropped: queue full while the socket was blocked */
    LS_HANDLER_MEMORY_ERRORS, /* handler calls stopped by handler_memory */
    LS_HANDLER_RESTARTS, /* Lua states rebuilt (still over 80 % of handler_memory) */
    LS_RATELIMITED,      /* datagrams dropped by the listener's per-peer rate limit */
    LSTATS_NFIELDS
};

/* Written by one worker thread (relaxed atomics: plain adds on x86), read by metrics. */
struct lstats {
    atomic_uint_fast64_t v[LSTATS_NFIELDS];
    atomic_uint_fast64_t lua_bytes; /* gauge: the memory of the listener's Lua state */
};

static inline void lstats_add(struct lstats *s, enum lstats_field f, uint64_t n)
{
    atomic_fetch_add_explicit(&s->v[f], n, memory_order_relaxed);
}

struct lstats_entry {
    struct lstats_entry *next;
    char *listener;
    int slot;
    struct lstats s;
};

struct counter {
    struct counter *next;
    char *name;
    char *help;
    atomic_int_fast64_t value;
};

/* Outputs (daemon/output/): one block per (listener, output, worker), written by that
 * worker's loop (and by the NATS client's threads for acks), read by metrics. */
enum ostats_field {
    OS_PUBLISHED,        /* records handed to publish and taken into the output's queue */
    OS_ACKED,            /* records the bus acknowledged */
    OS_RETRIED,          /* records sent again: replayed from the spool */
    OS_SPOOLED,          /* records written to the spool */
    OS_DROPPED,          /* records lost: queue full, or spool full or absent while the bus
                          * could not take them */
    OS_SPOOL_BYTES,      /* gauge: bytes in the spool's files */
    OS_INFLIGHT,         /* gauge: records sent and not yet acknowledged */
    OSTATS_NFIELDS
};
#define OSTATS_NCOUNTERS OS_SPOOL_BYTES /* fields before it are counters, from it gauges */

struct ostats {
    atomic_uint_fast64_t v[OSTATS_NFIELDS];
    atomic_uint_fast64_t next_seq;   /* record ids' sequence: survives reloads */
};

struct ostats_entry {
    struct ostats_entry *next;
    char *listener;
    char *output;
    int slot;
    struct ostats s;
};

struct stats_registry {
    pthread_mutex_t lock;
    struct lstats_entry *listeners;
    struct counter *counters;
    struct ostats_entry *outputs;
    char boot_id[17];    /* 64 random bits in hex, drawn once per process: the outputs' ids */
};

void stats_init(struct stats_registry *r);
void stats_destroy(struct stats_registry *r);
/* The block of (listener, slot), created on first use. NULL on out of memory. */
struct lstats *stats_listener(struct stats_registry *r, const char *listener, int slot);
/* The named counter, created on first use. NULL on out of memory. */
struct counter *stats_counter(struct stats_registry *r, const char *name, const char *help);

/* This process's start in clock ticks after boot (field 22 of /proc/self/stat): 0 and
 * *ticks set, or -1 where it cannot be read (no /proc, as on Windows). */
int stats_process_start_ticks(unsigned long long *ticks);
/* Calls fn for each listener name once with the sum over its slots. Holds the lock. */
void stats_sum_listeners(struct stats_registry *r,
                         void (*fn)(void *arg, const char *listener, const uint64_t *sums),
                         void *arg);
/* Calls fn for each (listener, slot) block. Holds the lock. */
void stats_each_listener(struct stats_registry *r,
                         void (*fn)(void *arg, const char *listener, int slot,
                                    const struct lstats *s),
                         void *arg);
/* Calls fn for each counter. Holds the lock. */
void stats_each_counter(struct stats_registry *r,
                        void (*fn)(void *arg, const struct counter *c), void *arg);

/* The block of (listener, output, slot), created on first use. NULL on out of memory. */
struct ostats *stats_output(struct stats_registry *r, const char *listener, const char *output,
                            int slot);
/* Calls fn for each (listener, output) once with the sum over its slots. Holds the lock. */
void stats_sum_outputs(struct stats_registry *r,
                       void (*fn)(void *arg, const char *listener, const char *output,
                                  const uint64_t *sums),
                       void *arg);
extern const char *const ostats_names[OSTATS_NFIELDS];
extern const char *const ostats_help[OSTATS_NFIELDS];

/* Metric names and help texts, indexed by enum lstats_field. */
extern const char *const lstats_names[LSTATS_NFIELDS];
extern const char *const lstats_help[LSTATS_NFIELDS];

#endif
