/* daemon/output/output.c: the part of every output that is not its protocol: it owns the
 * output's thread and loop, the queue from the worker's loop (outq.c), the spool, the list
 * of records whose send failed (filled from the client's threads, emptied on the output's
 * loop), the drain, wake and tick events, and decides for each record: send now, spool, or
 * drop. Records go to the spool while it holds anything, so replay keeps their order. */
#include "output.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <event2/event.h>

struct output_done_rec {
    struct output_done_rec *next;
    size_t id_len, subject_len, len;
    char bytes[];   /* id, subject, data */
};

#define OUTPUT_TICK_MS 200
#define OUTPUT_SYNC_TICKS 5   /* the spool is synced every 5 ticks (1 s) when written */
#define OUTPUT_BACKOFF_MIN_MS OUTPUT_TICK_MS
#define OUTPUT_BACKOFF_MAX_MS 2000
#define OUTPUT_DRAIN_BATCH 256  /* records taken from the queue per turn of the loop */

static void output_drain(evutil_socket_t fd, short what, void *arg);

static void output_gauge(struct output *o, enum ostats_field f, uint64_t v)
{
    atomic_store_explicit(&o->st->v[f], v, memory_order_relaxed);
}

static void output_count(struct output *o, enum ostats_field f)
{
    atomic_fetch_add_explicit(&o->st->v[f], 1, memory_order_relaxed);
}

/* Appends r to the spool, or counts it dropped. 0 or -1 (err set). */
static int output_spool(struct output *o, const struct spool_rec *r, char *err, size_t errlen)
{
    if (!o->spool) {
        output_count(o, OS_DROPPED);
        snprintf(err, errlen, "%s: server unavailable and no spool: record dropped", o->label);
        return -1;
    }
    char why[256];
    int rc = spool_append(o->spool, r, why, sizeof why);
    if (rc != 0) {
        output_count(o, OS_DROPPED);
        if (rc > 0)
            snprintf(err, errlen, "%s: spool full: record dropped", o->label);
        else
            snprintf(err, errlen, "%s: %s: record dropped", o->label, why);
        return -1;
    }
    output_count(o, OS_SPOOLED);
    output_gauge(o, OS_SPOOL_BYTES, spool_bytes(o->spool));
    return 0;
}

/* Writes what the spool gathered (after each batch of the drain, and at each tick); counts
 * and logs the records a failed write lost. */
static void output_spool_flush(struct output *o)
{
    if (!o->spool)
        return;
    spool_flush(o->spool);
    char why[256];
    uint64_t lost = spool_lost(o->spool, why, sizeof why);
    if (lost) {
        atomic_fetch_add_explicit(&o->st->v[OS_DROPPED], lost, memory_order_relaxed);
        log_warn(o->log, "%s: %s: %" PRIu64 " records lost", o->label, why, lost);
    }
}

static int output_send(struct output *o, const struct spool_rec *r, char *err, size_t errlen)
{
    atomic_fetch_add_explicit(&o->inflight, 1, memory_order_relaxed);
    if (o->ops->send(o->t, r, err, errlen) != 0) {
        atomic_fetch_sub_explicit(&o->inflight, 1, memory_order_relaxed);
        return -1;
    }
    o->sent++;
    return 0;
}

static int output_can_send(struct output *o)
{
    return o->t && !o->closing && atomic_load(&o->up) &&
           atomic_load_explicit(&o->inflight, memory_order_relaxed) < o->max_inflight;
}

/* The queue from the worker fills faster than the output's thread sends (a burst above
 * what the bus takes, or the thread short of CPU): records go to the spool, the cheap way,
 * and the spool is not replayed until the queue is low again. So the queue, and the
 * receive path behind it, never waits for the bus; the spool absorbs the burst. */
#define OUTPUT_PRESSED_FRACTION 16   /* pressed above 1/16 of the queue */

static int output_pressed(const struct output *o)
{
    return o->spool && outq_backlog(o->q) > outq_size(o->q) / OUTPUT_PRESSED_FRACTION;
}

static int64_t output_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A send or an ack failed: replay pauses, longer while failures go on. Without it a stream
 * with no leader (which fails each ack at once) would have the spool re-sent as fast as the
 * acks come back. */
static void output_backoff(struct output *o)
{
    if (o->backoff_ms == 0)
        o->backoff_ms = OUTPUT_BACKOFF_MIN_MS;
    else if ((o->backoff_ms *= 2) > OUTPUT_BACKOFF_MAX_MS)
        o->backoff_ms = OUTPUT_BACKOFF_MAX_MS;
    o->replay_after = output_now_ms() + o->backoff_ms;
}

static int output_paused(struct output *o)
{
    return o->replay_after != 0 && output_now_ms() < o->replay_after;
}

/* An ack came, or the transport connected again: replay as soon as it can send. */
static void output_backoff_end(struct output *o)
{
    o->backoff_ms = 0;
    o->replay_after = 0;
}

/* Moves the failed records to the spool; logs state changes; replays the spool while the
 * transport takes records. tick: called from the tick timer. Output thread. */
static void output_run(struct output *o, int tick)
{
    pthread_mutex_lock(&o->lock);
    struct output_done_rec *f = o->failed;
    o->failed = NULL;
    o->failed_tail = &o->failed;
    pthread_mutex_unlock(&o->lock);
    char err[512];
    uint64_t acked = atomic_load_explicit(&o->st->v[OS_ACKED], memory_order_relaxed);
    if (f)
        output_backoff(o);
    else if (acked != o->acked_seen)
        output_backoff_end(o);
    o->acked_seen = acked;
    while (f) {
        struct output_done_rec *n = f->next;
        struct spool_rec r = {f->bytes, f->id_len, f->bytes + f->id_len, f->subject_len,
                              (const uint8_t *)f->bytes + f->id_len + f->subject_len, f->len};
        if (output_spool(o, &r, err, sizeof err) != 0)
            log_warn(o->log, "%s", err);
        free(f);
        f = n;
    }
    int up = atomic_load(&o->up);
    if (up != o->logged_up) {
        if (up) {
            log_info(o->log, "%s: connected", o->label);
            output_backoff_end(o);
        } else if (o->logged_up == 1) {
            log_warn(o->log, "%s: connection lost", o->label);
        }
        o->logged_up = up;
    }
    if (!o->spool)
        goto gauges;
    while (output_can_send(o) && !output_paused(o) && !output_pressed(o)) {
        struct spool_rec r;
        uint64_t cut = 0;
        int got = spool_next(o->spool, &r, &cut, o->sent);
        if (cut)
            log_warn(o->log, "%s: spool: %" PRIu64 " bytes of a torn or corrupt segment cut",
                     o->label, cut);
        if (!got)
            break;
        if (output_send(o, &r, err, sizeof err) != 0) {
            /* not taken after all: to the spool's end again, its id kept */
            if (output_spool(o, &r, err, sizeof err) != 0)
                log_warn(o->log, "%s", err);
            output_backoff(o);
            break;
        }
        output_count(o, OS_RETRIED);
    }
    spool_release(o->spool, atomic_load(&o->completed));
    if (!o->spooling && spool_pending(o->spool) && (tick || !atomic_load(&o->up))) {
        /* logged when the server is away, or when the spool outlived a tick: not for a
         * burst over max_inflight that the next acks drain */
        o->spooling = 1;
        log_warn(o->log, "%s: spooling (%s)", o->label,
                 atomic_load(&o->up) ? "in-flight full" : "not connected");
    }
    if (o->spooling && !spool_pending(o->spool)) {
        o->spooling = 0;
        log_info(o->log, "%s: spool drained", o->label);
    }
    output_gauge(o, OS_SPOOL_BYTES, spool_bytes(o->spool));
    atomic_store_explicit(&o->ack_wakes, spool_pending(o->spool) || o->replay_after != 0,
                          memory_order_relaxed);
gauges:
    output_gauge(o, OS_INFLIGHT, atomic_load(&o->inflight));
}

/* Any thread: wakes the output's loop (the doorbell's bell_ev). */
static void output_ring(struct output *o)
{
    uint64_t one = 1;
    if (write(o->bell_fd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is full, so a wake-up is pending anyway */
    }
}

/* Any thread: output_run is due on the output's loop. */
static void output_ring_run(struct output *o)
{
    atomic_store(&o->run_pending, 1);
    if (!o->closing)
        output_ring(o);
}

/* Output thread: the doorbell rang. */
static void output_bell(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct output *o = arg;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0) {
        /* EAGAIN: another wake-up took it */
    }
    if (atomic_exchange(&o->call_pending, 0)) {
        int rc = o->call_fn(o->call_arg);
        pthread_mutex_lock(&o->lock);
        o->call_rc = rc;
        o->call_done = 1;
        pthread_cond_signal(&o->call_cond);
        pthread_mutex_unlock(&o->lock);
    }
    if (atomic_exchange(&o->run_pending, 0))
        output_run(o, 0);
    output_drain(-1, 0, o);
}

static void output_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct output *o = arg;
    atomic_store_explicit(&o->refusing, 0, memory_order_relaxed); /* records may try again */
    output_spool_flush(o);
    output_run(o, 1);
    if (o->spool && ++o->ticks % OUTPUT_SYNC_TICKS == 0)
        spool_sync(o->spool);
}

int output_init(struct output *o, const struct output_env *env, const struct output_cfg *cfg,
                char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->bell_fd = -1;
    o->log = env->log;
    o->max_inflight = cfg->max_inflight;
    o->nice = cfg->nice;
    o->logged_up = -1;
    o->failed_tail = &o->failed;
    snprintf(o->name, sizeof o->name, "%s", cfg->name);
    snprintf(o->label, sizeof o->label, "listener '%s' output '%s'", env->listener, cfg->name);
    snprintf(o->id_prefix, sizeof o->id_prefix, "%s/%d/%s/", env->listener, env->slot + 1,
             env->stats->boot_id);
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->call_cond, NULL);
    o->st = stats_output(env->stats, env->listener, cfg->name, env->slot);
    o->bell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    o->base = o->bell_fd >= 0 ? event_base_new() : NULL;
    o->q = outq_new(cfg->queue_bytes);
    if (o->base) {
        o->drain_ev = event_new(o->base, -1, 0, output_drain, o);
        o->bell_ev = event_new(o->base, o->bell_fd, EV_READ | EV_PERSIST, output_bell, o);
        o->tick_ev = event_new(o->base, -1, EV_PERSIST, output_tick, o);
    }
    if (!o->st || !o->base || !o->q || !o->drain_ev || !o->bell_ev || !o->tick_ev) {
        snprintf(err, errlen, "%s", o->bell_fd < 0 ? strerror(errno) : "out of memory");
        return -1;
    }
    event_add(o->bell_ev, NULL);
    if (cfg->spool_dir &&
        !(o->spool = spool_open(cfg->spool_dir, cfg->spool_max, err, errlen)))
        return -1;
    struct timeval tv = {0, OUTPUT_TICK_MS * 1000};
    event_add(o->tick_ev, &tv);
    if (o->spool && spool_pending(o->spool)) {
        o->spooling = 1;
        log_info(o->log, "%s: %" PRIu64 " bytes spooled by an earlier run, replaying them",
                 o->label, spool_bytes(o->spool));
    }
    return 0;
}

void output_attach(struct output *o, const struct output_ops *ops, void *t)
{
    o->ops = ops;
    o->t = t;
}

/* The output's thread: lowers its own CPU priority (the client library's threads it starts
 * inherit it), then runs the output's loop until output_close breaks it. */
static void *output_main(void *arg)
{
    struct output *o = arg;
    if (o->nice > 0) {
        id_t tid = (id_t)syscall(SYS_gettid);
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, tid);
        int want = (errno ? 0 : cur) + o->nice;
        if (setpriority(PRIO_PROCESS, tid, want > 19 ? 19 : want) != 0)
            log_warn(o->log, "%s: cannot lower the output thread's priority: %s", o->label,
                     strerror(errno));
    }
    event_base_loop(o->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int output_start(struct output *o, char *err, size_t errlen)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals are the main thread's */
    int rc = pthread_create(&o->thread, NULL, output_main, o);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot start its thread: %s", o->label, strerror(rc));
        return -1;
    }
    o->started = 1;
    char tname[16];
    snprintf(tname, sizeof tname, "out:%.11s", o->name);
    pthread_setname_np(o->thread, tname);
    return 0;
}

/* Output thread: one record from the queue: sent now, or spooled, or dropped (counted;
 * logged once until a record is taken again). */
static void output_take(struct output *o, const struct outq_rec *q)
{
    char id[256], err[1024];
    uint64_t seq = atomic_fetch_add_explicit(&o->st->next_seq, 1, memory_order_relaxed) + 1;
    int n = snprintf(id, sizeof id, "%s%" PRIu64, o->id_prefix, seq);
    struct spool_rec r = {id, (size_t)n, q->subject, q->subject_len, q->data, q->len};
    int rc;
    if (n <= 0 || n > 255) {
        output_count(o, OS_DROPPED);
        snprintf(err, sizeof err, "%s: record id too long", o->label);
        rc = -1;
    } else if ((o->spool && spool_pending(o->spool)) || !output_can_send(o) ||
               output_pressed(o)) {
        rc = output_spool(o, &r, err, sizeof err);
    } else if ((rc = output_send(o, &r, err, sizeof err)) != 0) {
        output_backoff(o);
        rc = output_spool(o, &r, err, sizeof err);
    }
    if (rc != 0)
        atomic_store_explicit(&o->refusing, 1, memory_order_relaxed);
    if (rc != 0 && !o->dropping) {
        o->dropping = 1;
        log_warn(o->log, "%s (and the records after it, until one is taken again)", err);
    } else if (rc == 0 && o->dropping) {
        o->dropping = 0;
        log_info(o->log, "%s: records taken again", o->label);
    }
}

/* Output thread: takes what the queue holds, a batch per turn of the loop (the acks and
 * the socket get their turn between batches); when it is empty, sleeps until a push. */
static void output_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct output *o = arg;
    struct outq_rec r;
    for (int i = 0; i < OUTPUT_DRAIN_BATCH; i++) {
        if (!outq_peek(o->q, &r)) {
            if (!outq_sleep(o->q))
                continue;
            output_spool_flush(o);
            if (o->spool && spool_pending(o->spool))
                output_run(o, 0); /* replay what a burst spooled, now the queue is empty */
            return;
        }
        output_take(o, &r);
        outq_pop(o->q);
    }
    output_spool_flush(o);
    event_active(o->drain_ev, EV_TIMEOUT, 0);
}

int output_publish(struct output *o, const char *subject, size_t subject_len,
                   const void *data, size_t len, char *err, size_t errlen)
{
    if (atomic_load_explicit(&o->refusing, memory_order_relaxed)) {
        output_count(o, OS_DROPPED);
        snprintf(err, errlen, "%s: dropping records (the spool is full, or there is none, "
                 "while the bus cannot take them): record dropped", o->label);
        return -1;
    }
    int rc = outq_push(o->q, subject, subject_len, data, len);
    if (rc < 0) {
        output_count(o, OS_DROPPED);
        if (subject_len + len > outq_max_record(o->q))
            snprintf(err, errlen, "%s: record of %zu bytes larger than a quarter of the "
                     "queue (queue_bytes): record dropped", o->label, subject_len + len);
        else
            snprintf(err, errlen, "%s: queue full (the output's thread is behind): record "
                     "dropped", o->label);
        return -1;
    }
    if (rc == 1)
        output_ring(o);
    output_count(o, OS_PUBLISHED);
    return 0;
}

void output_done(struct output *o, const struct spool_rec *r)
{
    atomic_fetch_sub_explicit(&o->inflight, 1, memory_order_relaxed);
    if (!r) {
        output_count(o, OS_ACKED);
        atomic_fetch_add(&o->completed, 1);
        /* a plain ack needs nothing of the loop (the tick updates the gauges): no wake-up,
         * unless acks drive the replay */
        if (atomic_load_explicit(&o->ack_wakes, memory_order_relaxed))
            output_ring_run(o);
        return;
    }
    struct output_done_rec *f = malloc(sizeof *f + r->id_len + r->subject_len + r->len);
    if (f) {
        f->next = NULL;
        f->id_len = r->id_len;
        f->subject_len = r->subject_len;
        f->len = r->len;
        memcpy(f->bytes, r->id, r->id_len);
        memcpy(f->bytes + r->id_len, r->subject, r->subject_len);
        if (r->len)
            memcpy(f->bytes + r->id_len + r->subject_len, r->data, r->len);
    } else {
        output_count(o, OS_DROPPED);
    }
    pthread_mutex_lock(&o->lock);
    if (f) {
        *o->failed_tail = f;
        o->failed_tail = &f->next;
    }
    pthread_mutex_unlock(&o->lock);
    atomic_fetch_add(&o->completed, 1);
    output_ring_run(o);
}

void output_set_up(struct output *o, int up)
{
    atomic_store(&o->up, up);
    output_ring_run(o);
}

int output_call(struct output *o, int (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&o->lock);
    o->call_fn = fn;
    o->call_arg = arg;
    o->call_done = 0;
    pthread_mutex_unlock(&o->lock);
    atomic_store(&o->call_pending, 1);
    output_ring(o);
    pthread_mutex_lock(&o->lock);
    while (!o->call_done)
        pthread_cond_wait(&o->call_cond, &o->lock);
    int rc = o->call_rc;
    pthread_mutex_unlock(&o->lock);
    return rc;
}

void output_close(struct output *o)
{
    if (!o->base) {
        if (o->bell_fd >= 0)
            close(o->bell_fd);
        o->bell_fd = -1;
        return;
    }
    if (o->started) {
        event_base_loopbreak(o->base);
        pthread_join(o->thread, NULL);
        o->started = 0;
    }
    /* From here the output's loop does not run: this thread owns everything. */
    o->closing = 1;
    if (o->t) {
        o->ops->close(o->t); /* pending records come back through output_done */
        o->t = NULL;
    }
    atomic_store(&o->up, 0);
    o->logged_up = 0; /* closed, not lost */
    if (o->bell_ev && o->st)
        output_run(o, 0);  /* the records sent and not acknowledged, to the spool first */
    struct outq_rec r;
    while (o->q && outq_peek(o->q, &r)) { /* then the records still queued */
        output_take(o, &r);
        outq_pop(o->q);
    }
    output_spool_flush(o);
    if (o->spool) {
        if (spool_pending(o->spool))
            log_info(o->log, "%s: %" PRIu64 " bytes left in the spool for the next start",
                     o->label, spool_bytes(o->spool));
        spool_close(o->spool);
        o->spool = NULL;
    }
    if (o->drain_ev)
        event_free(o->drain_ev);
    if (o->bell_ev)
        event_free(o->bell_ev);
    if (o->tick_ev)
        event_free(o->tick_ev);
    o->drain_ev = o->bell_ev = o->tick_ev = NULL;
    outq_free(o->q);
    o->q = NULL;
    if (!o->base_kept) { /* a transport that could not close keeps its events on it */
        event_base_free(o->base);
        close(o->bell_fd);
    }
    o->base = NULL;
    if (o->st)
        output_gauge(o, OS_INFLIGHT, 0);
    pthread_cond_destroy(&o->call_cond);
    pthread_mutex_destroy(&o->lock);
}
