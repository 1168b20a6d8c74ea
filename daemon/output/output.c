/* daemon/output/output.c: the part of every output that is not its protocol: it owns the
 * spool, the queue of records whose send failed (filled from the client's threads, emptied
 * on the loop), the wake and tick events, and decides for each record: send now, spool, or
 * drop. Records go to the spool while it holds anything, so replay keeps their order. */
#include "output.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
 * transport takes records. tick: called from the tick timer. Loop thread. */
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
    while (output_can_send(o) && !output_paused(o)) {
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
gauges:
    output_gauge(o, OS_INFLIGHT, atomic_load(&o->inflight));
}

static void output_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    output_run(arg, 0);
}

static void output_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct output *o = arg;
    output_run(o, 1);
    if (o->spool && ++o->ticks % OUTPUT_SYNC_TICKS == 0)
        spool_sync(o->spool);
}

int output_init(struct output *o, const struct output_env *env, const char *name,
                unsigned max_inflight, const char *spool_dir, uint64_t spool_max,
                char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->log = env->log;
    o->max_inflight = max_inflight;
    o->logged_up = -1;
    o->failed_tail = &o->failed;
    snprintf(o->name, sizeof o->name, "%s", name);
    snprintf(o->label, sizeof o->label, "listener '%s' output '%s'", env->listener, name);
    snprintf(o->id_prefix, sizeof o->id_prefix, "%s/%d/%s/", env->listener, env->slot + 1,
             env->stats->boot_id);
    pthread_mutex_init(&o->lock, NULL);
    o->st = stats_output(env->stats, env->listener, name, env->slot);
    o->wake_ev = event_new(env->base, -1, 0, output_wake, o);
    o->tick_ev = event_new(env->base, -1, EV_PERSIST, output_tick, o);
    if (!o->st || !o->wake_ev || !o->tick_ev) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (spool_dir && !(o->spool = spool_open(spool_dir, spool_max, err, errlen)))
        goto fail;
    struct timeval tv = {0, OUTPUT_TICK_MS * 1000};
    event_add(o->tick_ev, &tv);
    if (o->spool && spool_pending(o->spool)) {
        o->spooling = 1;
        log_info(o->log, "%s: %" PRIu64 " bytes spooled by an earlier run, replaying them",
                 o->label, spool_bytes(o->spool));
    }
    return 0;
fail:
    if (o->wake_ev)
        event_free(o->wake_ev);
    if (o->tick_ev)
        event_free(o->tick_ev);
    o->wake_ev = o->tick_ev = NULL;
    pthread_mutex_destroy(&o->lock);
    return -1;
}

void output_attach(struct output *o, const struct output_ops *ops, void *t)
{
    o->ops = ops;
    o->t = t;
}

int output_publish(struct output *o, const char *subject, size_t subject_len,
                   const void *data, size_t len, char *err, size_t errlen)
{
    char id[256];
    uint64_t seq = atomic_fetch_add_explicit(&o->st->next_seq, 1, memory_order_relaxed) + 1;
    int n = snprintf(id, sizeof id, "%s%" PRIu64, o->id_prefix, seq);
    struct spool_rec r = {id, (size_t)n, subject, subject_len, data, len};
    if (n <= 0 || n > 255) {
        output_count(o, OS_DROPPED);
        snprintf(err, errlen, "%s: record id too long", o->label);
        return -1;
    }
    if (o->spool && spool_pending(o->spool)) {
        if (output_spool(o, &r, err, errlen) != 0)
            return -1;
    } else if (!output_can_send(o)) {
        if (output_spool(o, &r, err, errlen) != 0)
            return -1;
    } else if (output_send(o, &r, err, errlen) != 0) {
        output_backoff(o);
        if (output_spool(o, &r, err, errlen) != 0)
            return -1;
    }
    output_count(o, OS_PUBLISHED);
    return 0;
}

void output_done(struct output *o, const struct spool_rec *r)
{
    atomic_fetch_sub_explicit(&o->inflight, 1, memory_order_relaxed);
    if (!r) {
        output_count(o, OS_ACKED);
        atomic_fetch_add(&o->completed, 1);
        if (!o->closing)
            event_active(o->wake_ev, EV_TIMEOUT, 0);
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
    if (!o->closing)
        event_active(o->wake_ev, EV_TIMEOUT, 0);
}

void output_set_up(struct output *o, int up)
{
    atomic_store(&o->up, up);
    if (!o->closing)
        event_active(o->wake_ev, EV_TIMEOUT, 0);
}

void output_close(struct output *o)
{
    if (!o->wake_ev)
        return;
    o->closing = 1;
    if (o->t) {
        o->ops->close(o->t); /* pending records come back through output_done */
        o->t = NULL;
    }
    atomic_store(&o->up, 0);
    o->logged_up = 0; /* closed, not lost */
    output_run(o, 0);
    event_free(o->wake_ev);
    event_free(o->tick_ev);
    o->wake_ev = o->tick_ev = NULL;
    if (o->spool) {
        if (spool_pending(o->spool))
            log_info(o->log, "%s: %" PRIu64 " bytes left in the spool for the next start",
                     o->label, spool_bytes(o->spool));
        spool_close(o->spool);
        o->spool = NULL;
    }
    output_gauge(o, OS_INFLIGHT, 0);
    pthread_mutex_destroy(&o->lock);
}
