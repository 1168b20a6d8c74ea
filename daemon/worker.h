/* daemon/worker.h: a worker is one event loop in one thread with its own Lua state, the
 * handlers of the listeners it serves, the sockets it reads, one receive ring and one send
 * queue. Workers share nothing but the daemon context's locked registries. */
#ifndef LUADGRAM_WORKER_H
#define LUADGRAM_WORKER_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <lua.h>

#include "config.h"
#include "dgram.h"
#include "log.h"
#include "netio.h"
#include "peerlimit.h"
#include "sockset.h"
#include "stats.h"
#include "watchdog.h"

struct event;
struct event_base;
struct lalloc;
struct worker;

/* What workers need from the daemon: set up once, read-only while they run (the logger and
 * the registries lock or use atomics themselves). */
struct daemon_shared {
    struct logger *log;
    struct stats_registry *stats;
    long long heartbeat_ns;   /* each worker stamps loop_turned_ns this often (its loop's
                                 liveness, for systemd's watchdog: sdwatch.c); 0: never */
};

/* One socket a worker reads. */
struct wsock {
    struct wlistener *wl;
    const struct sock_entry *entry;
    int fd;
    int family;
    uint16_t local_port;
    int bound_unicast;        /* bound to one unicast IP address: replies need no pktinfo */
    struct event *ev;
    struct event *poll_ev;    /* read again from the loop while busy (dispatch.c) */
    int polling;              /* busy: ev is out of epoll, poll_ev drives the reads */
    uint32_t *last_ovfl;      /* last SO_RXQ_OVFL total seen (the socket entry's) */
};

/* A listener's Lua state in one worker: its allocator (capped at handler_memory), the
 * sandbox, its handler module and message object. Rebuilt as a whole (worker.c) when it
 * stays over 80 % of its cap. */
struct lstate {
    struct wlistener *wl;
    struct lalloc *pool;      /* L's memory */
    lua_State *L;
    int module_ref;           /* the handler's module table */
    int message_ref;          /* its message function */
    int error_ref;            /* its error function, or LUA_NOREF */
    int msg_ref;              /* the reusable message object */
    void *msg;                /* ... and its userdata (struct msg_obj *) */
    char where[160];          /* file:line of the first allocation the cap refused in the
                                 current call ("" if none) */
};

/* One listener as a worker serves it. */
struct wlistener {
    struct worker *w;
    const struct listener_cfg *cfg;
    struct lstats *stats;
    struct wsock *socks;
    size_t nsocks;
    struct wsock clients[2];  /* unbound UDP sockets (IPv4, IPv6) for sends the listener's
                                 own sockets cannot make; fd -1 until first needed */
    struct lstate *st;        /* its Lua state in this worker (NULL: another worker reads it) */
    size_t mem_limit;         /* handler_memory in bytes, 0: no cap */
    struct event *rebuild_ev; /* activated when st must be rebuilt, runs from the loop */
    struct recv_ring ring;    /* recv.batch buffers of recv.size, allocated once */
    struct ratelimit err_rl;  /* handler error log lines */
    struct ratelimit drop_rl; /* truncation / kernel drop log lines */
    struct peerlimit *limit;  /* ratelimit = { ... }: this worker's table, or NULL */
    struct ratelimit limit_rl; /* rate limit drop log lines */
};

/* Replies and sends waiting for the end of a batch (or for writability). Data lives in an
 * arena allocated once; nothing is allocated per datagram. */
struct sendq {
    struct send_item *items;
    struct lstats **owners;   /* whose counters each item's outcome goes to */
    unsigned head, n, cap;    /* items[head..n) wait; those before head are done */
    uint8_t *arena;
    size_t used, arena_cap;
    struct event *wev;        /* waiting for writability of blocked_fd */
    int blocked_fd;           /* -1 unless the kernel said EAGAIN */
    struct ratelimit err_rl;
};

struct worker {
    const struct daemon_shared *d;
    const struct config *cfg;
    int slot;
    struct event_base *base;
    struct event *stop_ev;    /* activated by another thread to stop this one */
    struct event *heartbeat_ev; /* every d->heartbeat_ns: stamps loop_turned_ns */
    atomic_llong loop_turned_ns; /* monotonic time of its loop's last turn seen (written by
                                    the worker, read by the main thread) */
    lua_State *cur_L;         /* the state whose protected call runs now (watchdog signal) */
    char *package_path;       /* package.path of every state (rebuilds too) */
    pthread_t thread;
    int running;
    int stopped;              /* handlers' stop has been called */
    struct wlistener *listeners;
    size_t nlisteners;
    struct sendq sq;
    int in_batch;             /* inside a receive batch: sends are queued till its end */
    int paused;               /* reads stopped while the send queue is blocked */
    struct watchdog wd;       /* handler_timeout */
    volatile sig_atomic_t timed_out; /* set by the watchdog's signal: the call is stopping */
    char timeout_text[32];    /* handler_timeout as the error message gives it */
    int call_stopped;         /* the last protected call was stopped (budget or time) */
    int budget_hit;           /* set by the instruction-count hook */
    int budget_step;          /* instructions between two runs of the hook, 0: no budget */
    long budget_left;         /* instructions left to the current protected call */
    int in_call;              /* inside worker_pcall: the hook counts */
    const char *load_stage;   /* worker_load_handler: "loading", "init" or "" */
    const struct sockset *socks;
    /* broadcast addresses of the interfaces, re-read when the watch says they changed */
    uint32_t bcasts[64];
    size_t nbcasts;
    int64_t bcasts_at;        /* monotonic second of the last read, 0: to be read */
    struct ifaddr_watch *ifaddrs; /* NULL: re-read every 5 s */
    struct event *ifaddrs_ev; /* its notices, taken on the loop */
};

/* Creates a worker for slot: its loop, its Lua state, every handler it serves loaded and
 * initialised (init called), its sockets registered but not yet read. Returns NULL with err
 * set ("listener 'echo': scripts/echo.lua:3: ...") on failure, having freed everything. */
struct worker *worker_create(const struct daemon_shared *d, const struct config *cfg,
                             const struct sockset *socks, int slot, char *err, size_t errlen);

/* Starts its thread. 0 or -1 (err set). */
int worker_start(struct worker *w, char *err, size_t errlen);

/* From another thread: makes the worker leave its loop, call every handler's stop, flush
 * its send queue and end its thread; waits for that. */
void worker_stop(struct worker *w);

/* Monotonic time (ns) at which w's loop last ran its heartbeat (or w was created): any
 * thread. */
long long worker_loop_turned_ns(struct worker *w);

/* Frees a worker (stopped, or never started: then stop() is called here). */
void worker_destroy(struct worker *w);

/* ---- used by the Lua bindings ---- */

/* The worker that owns L. */
struct worker *worker_of(lua_State *L);

/* The listener whose state L is. */
struct wlistener *wlistener_of(lua_State *L);

/* Queues (or, outside a batch, sends at once) data from socket `ws` to `to`, leaving from
 * `from` on `ifindex` (from.ss_family == AF_UNSPEC: the kernel picks). Returns 0 or an errno
 * (ENOBUFS when the queue is full and blocked). */
int worker_send(struct worker *w, struct wsock *ws, const struct sockaddr *to, socklen_t tolen,
                const struct sockaddr_storage *from, unsigned ifindex, const void *data,
                size_t len);

/* Picks the socket of listener `name` that can reach `to` (this worker's own first; for an
 * IP destination the listener has no socket for, an unbound UDP socket of the worker's).
 * NULL with *err set when there is none. */
struct wsock *worker_sock_for(struct worker *w, const char *name, const struct sockaddr *to,
                              const char **err);

/* Gives the next handler call its full budget and time: called before each datagram when
 * several are handled inside one protected call (dispatch.c). */
void worker_call_next(struct worker *w);

/* Sends what is queued now (outside a batch: after a timer, at stop). */
void worker_flush(struct worker *w);

/* 1 if d's destination is a broadcast address of this host (or the limited broadcast). */
int worker_is_bcast(struct worker *w, const struct dgram *d);

/* Calls the function below the nargs arguments on top of the stack of wl's state, under the
 * handler's limits (time, budget, memory) and the traceback handler, popping both. An error
 * is logged (rate-limited, with its traceback) and counted against wl (in handler_errors
 * unless `what` is "timer"). After a stopped call the state is collected and freed memory
 * given back; a state still over 80 % of handler_memory is rebuilt at the loop's next turn.
 * Returns 0, or -1 when it raised. */
int worker_call(struct worker *w, struct wlistener *wl, int nargs, const char *what);

#endif
