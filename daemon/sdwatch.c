/* daemon/sdwatch.c: systemd's service watchdog and the STATUS= line, on the main loop. Owns
 * the main loop's tick event (struct sdwatch, in the daemon context). With $WATCHDOG_USEC
 * set (and $WATCHDOG_PID unset or ours) each tick, every half interval, sends WATCHDOG=1,
 * but only while every worker's loop has stamped its heartbeat (worker.c, every quarter
 * interval) within the interval: a worker stuck in C stops the pings and systemd restarts
 * the service. Each tick also refreshes STATUS= (listeners, datagrams handled, drops);
 * without the watchdog the tick comes every SDWATCH_STATUS_PERIOD_S, under systemd only. */
#include "daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#define SDWATCH_STATUS_PERIOD_S 10

long long sdwatch_configure(struct sdwatch *sw, struct logger *log)
{
    memset(sw, 0, sizeof *sw);
    const char *usec = getenv("WATCHDOG_USEC");
    if (!usec || !*usec)
        return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && *pid) {
        char *end;
        errno = 0;
        long long p = strtoll(pid, &end, 10);
        if (errno || *end || p != (long long)getpid())
            return 0; /* the pings are another process's to send */
    }
    char *end;
    errno = 0;
    unsigned long long us = strtoull(usec, &end, 10);
    if (errno || *end || us == 0 || us > 86400ULL * 1000000ULL || usec[0] == '-') {
        log_warn(log, "WATCHDOG_USEC=%s is not a number of microseconds (1 s to 1 day): "
                 "systemd's watchdog is not served", usec);
        return 0;
    }
    sw->interval_ns = (long long)us * 1000LL;
    return sw->interval_ns / 4;
}

/* The STATUS= value: listeners in force and totals since start. */
struct sdwatch_totals {
    uint64_t handled, kernel_drops, handler_errors;
};

static void sdwatch_add(void *arg, const char *listener, const uint64_t *sums)
{
    (void)listener;
    struct sdwatch_totals *t = arg;
    t->handled += sums[LS_HANDLED];
    t->kernel_drops += sums[LS_KERNEL_DROPS];
    t->handler_errors += sums[LS_HANDLER_ERRORS];
}

void sdwatch_notify(struct daemon_ctx *dc, const char *state, const char *note)
{
    struct sdwatch_totals t = {0, 0, 0};
    stats_sum_listeners(&dc->stats, sdwatch_add, &t);
    size_t n = dc->cfg ? dc->cfg->nlisteners : 0;
    char msg[512];
    snprintf(msg, sizeof msg,
             "%s%sSTATUS=%s%s%zu listener%s, %" PRIu64 " datagrams handled, %" PRIu64
             " kernel drops, %" PRIu64 " handler errors",
             state, *state ? "\n" : "", note ? note : "", note ? "; " : "",
             n, n == 1 ? "" : "s", t.handled, t.kernel_drops,
             t.handler_errors);
    notify_systemd(msg);
}

/* The first worker whose loop has not turned within the interval (its slot), or -1. */
static int sdwatch_stalled_worker(struct daemon_ctx *dc, long long now, long long *age)
{
    for (int i = 0; i < dc->nworkers; i++) {
        *age = now - worker_loop_turned_ns(dc->workers[i]);
        if (*age > dc->sdwatch.interval_ns)
            return i;
    }
    return -1;
}

static void sdwatch_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon_ctx *dc = arg;
    struct sdwatch *sw = &dc->sdwatch;
    if (sw->interval_ns <= 0) {
        sdwatch_notify(dc, "", NULL);
        return;
    }
    long long age = 0;
    int slot = sdwatch_stalled_worker(dc, monotonic_ns(), &age);
    if (slot < 0) {
        if (sw->stalled)
            log_info(&dc->log, "every worker's loop turns again: systemd's watchdog is served");
        sw->stalled = 0;
        sdwatch_notify(dc, "WATCHDOG=1", NULL);
        return;
    }
    if (!sw->stalled)
        log_error(&dc->log, "worker %d: its loop has not turned for %.1f s (a handler stuck "
                  "in C?): systemd's watchdog is no longer served", slot + 1, (double)age / 1e9);
    sw->stalled = 1;
    char note[64];
    snprintf(note, sizeof note, "worker %d stalled for %.0f s", slot + 1, (double)age / 1e9);
    sdwatch_notify(dc, "", note);
}

int sdwatch_start(struct daemon_ctx *dc, char *err, size_t errlen)
{
    struct sdwatch *sw = &dc->sdwatch;
    if (sw->interval_ns <= 0 && !getenv("NOTIFY_SOCKET"))
        return 0;
    long long period = sw->interval_ns > 0 ? sw->interval_ns / 2
                                           : SDWATCH_STATUS_PERIOD_S * 1000000000LL;
    struct timeval tv = {(time_t)(period / 1000000000LL),
                         (suseconds_t)(period % 1000000000LL / 1000)};
    sw->tick = event_new(dc->base, -1, EV_PERSIST, sdwatch_tick, dc);
    if (!sw->tick || event_add(sw->tick, &tv) != 0) {
        snprintf(err, errlen, "cannot start the systemd watchdog's timer");
        return -1;
    }
    return 0;
}

void sdwatch_stop(struct sdwatch *sw)
{
    if (sw->tick)
        event_free(sw->tick);
    sw->tick = NULL;
}
