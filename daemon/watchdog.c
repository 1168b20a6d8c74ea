/* daemon/watchdog.c: the platform-neutral half of the handler watchdog (watchdog.h): its
 * timing, and the look its thread takes every period. The thread itself, its waits and how
 * a call past the limit is stopped are watchdog_linux.c's and watchdog_win.c's. */
#include "watchdog.h"

void watchdog_arm(struct watchdog *wd, double limit_s)
{
    wd->limit_ns = (long long)(limit_s * 1e9);
    wd->period_ns = wd->limit_ns / 4;
    if (wd->period_ns > 250000000LL)
        wd->period_ns = 250000000LL;
    if (wd->period_ns < 1000000LL)
        wd->period_ns = 1000000LL;
    atomic_init(&wd->seq, 0);
    atomic_init(&wd->active, 0);
    atomic_init(&wd->expired_seq, 0);
}

int watchdog_scan(struct watchdog *wd, struct watchdog_scan *s, long long now_ns)
{
    unsigned long seq = atomic_load_explicit(&wd->seq, memory_order_relaxed);
    if (!atomic_load_explicit(&wd->active, memory_order_relaxed) || seq != s->seen) {
        s->seen = seq;
        s->seen_at = now_ns;
        return 0;
    }
    if (now_ns - s->seen_at < wd->limit_ns || seq == s->signalled)
        return 0;
    s->signalled = seq;
    atomic_store_explicit(&wd->expired_seq, seq, memory_order_relaxed);
    return 1;
}
