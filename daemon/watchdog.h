/* daemon/watchdog.h: the time limit of handler calls. A worker marks the start and end of
 * each handler call here (two plain stores, no system call); a thread of the watchdog's own
 * looks a few times per limit and, when one call has been running past the limit, sends the
 * thread running it WATCHDOG_SIGNAL. What the signal does to the Lua state is the worker's
 * business (worker.c): the watchdog knows nothing of Lua. */
#ifndef LUADGRAM_WATCHDOG_H
#define LUADGRAM_WATCHDOG_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#define WATCHDOG_SIGNAL (SIGRTMIN)

/* CLOCK_MONOTONIC in nanoseconds: the clock of every time limit and liveness stamp. */
static inline long long monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct watchdog {
    /* written by the thread running the calls, read by the watchdog's thread */
    atomic_ulong seq;           /* bumped at the start of every call */
    atomic_int active;          /* inside a call */
    atomic_ulong expired_seq;   /* the call the watchdog signalled (0: none yet) */
    /* the watchdog's own */
    long long limit_ns, period_ns;
    pthread_t thread;
    pthread_mutex_t lock;       /* guards owner and stop */
    pthread_cond_t wake;
    pthread_t owner;            /* the thread the calls run on, to be signalled */
    int stop;
    int running;
    /* Windows (watchdog_win.c): no signals; the watchdog's thread suspends the owner and
     * calls on_expire(expire_arg) itself. Set before watchdog_start; Linux ignores them. */
    void (*on_expire)(void *arg);
    void *expire_arg;
    void *plat;
};

/* What the watchdog's thread remembers between two looks (watchdog_scan). */
struct watchdog_scan {
    unsigned long seen, signalled; /* the call seen last; the last one stopped */
    long long seen_at;             /* when `seen` was first seen, ns */
};

/* watchdog.c, for both platforms' watchdog_start and thread: sets the limit, the period
 * (a quarter of it, 1 to 250 ms) and the counters. */
void watchdog_arm(struct watchdog *wd, double limit_s);

/* One look at time now_ns: 1 when the call running has been seen for the limit and was not
 * stopped yet (it is then recorded in expired_seq and in s->signalled), else 0. */
int watchdog_scan(struct watchdog *wd, struct watchdog_scan *s, long long now_ns);

/* Starts the watchdog of calls made on the calling thread, with a limit in seconds (> 0).
 * 0, or -1 with err set. */
int watchdog_start(struct watchdog *wd, double limit_s, char *err, size_t errlen);

/* The calls now run on the calling thread (a worker's loop thread, or back to the thread
 * that stops it). */
void watchdog_set_owner(struct watchdog *wd);

/* Stops and joins its thread; nothing for a watchdog never started (zeroed). */
void watchdog_stop(struct watchdog *wd);

/* A call starts (or the next datagram's call in a batch). */
static inline void watchdog_next(struct watchdog *wd)
{
    atomic_store_explicit(&wd->seq, atomic_load_explicit(&wd->seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline void watchdog_enter(struct watchdog *wd)
{
    watchdog_next(wd);
    atomic_store_explicit(&wd->active, 1, memory_order_relaxed);
}

static inline void watchdog_leave(struct watchdog *wd)
{
    atomic_store_explicit(&wd->active, 0, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* before the caller looks at what a signal did */
}

/* In the signal handler, on the thread that runs the calls: 1 when the call running now is
 * the one the watchdog found past the limit (not a call that has ended since). */
static inline int watchdog_expired(struct watchdog *wd)
{
    return atomic_load_explicit(&wd->active, memory_order_relaxed) &&
           atomic_load_explicit(&wd->seq, memory_order_relaxed) ==
               atomic_load_explicit(&wd->expired_seq, memory_order_relaxed);
}

#endif
