/* daemon/watchdog_linux.c: the watchdog's thread. It wakes every period (a quarter of the limit,
 * at most 250 ms), and when the same call (same seq, still active) has been seen running
 * for the limit, records that call in expired_seq and signals the owner thread once. A call
 * is therefore stopped between limit and limit + period after it started. */
#include "watchdog.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void *watchdog_main(void *arg)
{
    struct watchdog *wd = arg;
    struct watchdog_scan scan = {0, 0, monotonic_ns()};
    pthread_mutex_lock(&wd->lock);
    while (!wd->stop) {
        long long due = monotonic_ns() + wd->period_ns;
        struct timespec ts = {(time_t)(due / 1000000000LL), (long)(due % 1000000000LL)};
        while (!wd->stop && pthread_cond_timedwait(&wd->wake, &wd->lock, &ts) != ETIMEDOUT)
            ;
        if (wd->stop)
            break;
        if (watchdog_scan(wd, &scan, monotonic_ns()))
            pthread_kill(wd->owner, WATCHDOG_SIGNAL);
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

int watchdog_start(struct watchdog *wd, double limit_s, char *err, size_t errlen)
{
    watchdog_arm(wd, limit_s);
    wd->owner = pthread_self();
    wd->stop = 0;
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc == 0) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        rc = pthread_cond_init(&wd->wake, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the handler watchdog: %s", strerror(rc));
        return -1;
    }
    pthread_mutex_init(&wd->lock, NULL);
    /* Its thread takes no signal: they are the main thread's (and WATCHDOG_SIGNAL the
     * owner's). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&wd->thread, NULL, watchdog_main, wd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&wd->wake);
        pthread_mutex_destroy(&wd->lock);
        snprintf(err, errlen, "cannot start the handler watchdog: %s", strerror(rc));
        return -1;
    }
    wd->running = 1;
    return 0;
}

void watchdog_set_owner(struct watchdog *wd)
{
    if (!wd->running)
        return;
    pthread_mutex_lock(&wd->lock);
    wd->owner = pthread_self();
    pthread_mutex_unlock(&wd->lock);
}

void watchdog_stop(struct watchdog *wd)
{
    if (!wd->running)
        return;
    pthread_mutex_lock(&wd->lock);
    wd->stop = 1;
    pthread_cond_signal(&wd->wake);
    pthread_mutex_unlock(&wd->lock);
    pthread_join(wd->thread, NULL);
    pthread_cond_destroy(&wd->wake);
    pthread_mutex_destroy(&wd->lock);
    wd->running = 0;
}
