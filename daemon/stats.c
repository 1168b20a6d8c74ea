/* daemon/stats.c: the registry of per-listener counters and of handlers' named counters. */
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const lstats_names[LSTATS_NFIELDS] = {
    "received", "bytes", "handled", "handler_errors", "handler_timeouts", "truncated",
    "ctruncated", "kernel_drops", "recv_errors", "socket_errors", "sent", "send_errors",
    "send_dropped", "handler_memory_errors", "handler_restarts", "ratelimited",
};
const char *const lstats_help[LSTATS_NFIELDS] = {
    "Datagrams received",
    "Bytes received (true datagram sizes)",
    "Datagrams whose handler returned without error",
    "Datagrams whose handler raised an error or ran past its budget (dropped)",
    "Handler calls stopped for running past their instruction budget",
    "Datagrams cut to the receive buffer (MSG_TRUNC): the rest was lost",
    "Datagrams whose control data was cut (MSG_CTRUNC)",
    "Datagrams the kernel dropped because the socket buffer was full (SO_RXQ_OVFL)",
    "Receive calls that failed",
    "Errors taken from the socket error queue (ICMP errors for datagrams sent)",
    "Datagrams sent (replies and luadgram.send)",
    "Datagrams the kernel refused to send",
    "Datagrams dropped because the send queue was full",
    "Handler calls stopped because the Lua state reached handler_memory",
    "Lua states rebuilt from their scripts because they stayed over 80% of handler_memory",
    "Datagrams dropped before the handler by the listener's per-peer rate limit",
};

void stats_init(struct stats_registry *r)
{
    pthread_mutex_init(&r->lock, NULL);
    r->listeners = NULL;
    r->counters = NULL;
}

void stats_destroy(struct stats_registry *r)
{
    for (struct lstats_entry *e = r->listeners, *n; e; e = n) {
        n = e->next;
        free(e->listener);
        free(e);
    }
    for (struct counter *c = r->counters, *n; c; c = n) {
        n = c->next;
        free(c->name);
        free(c->help);
        free(c);
    }
    r->listeners = NULL;
    r->counters = NULL;
    pthread_mutex_destroy(&r->lock);
}

struct lstats *stats_listener(struct stats_registry *r, const char *listener, int slot)
{
    struct lstats *found = NULL;
    pthread_mutex_lock(&r->lock);
    for (struct lstats_entry *e = r->listeners; e; e = e->next)
        if (e->slot == slot && strcmp(e->listener, listener) == 0) {
            found = &e->s;
            goto out;
        }
    struct lstats_entry *e = calloc(1, sizeof *e);
    if (!e)
        goto out;
    e->listener = strdup(listener);
    if (!e->listener) {
        free(e);
        goto out;
    }
    e->slot = slot;
    /* calloc left every atomic at zero, which is a valid initial state for them. */
    struct lstats_entry **tail = &r->listeners;
    while (*tail)
        tail = &(*tail)->next;
    *tail = e;
    found = &e->s;
out:
    pthread_mutex_unlock(&r->lock);
    return found;
}

struct counter *stats_counter(struct stats_registry *r, const char *name, const char *help)
{
    struct counter *found = NULL;
    pthread_mutex_lock(&r->lock);
    for (struct counter *c = r->counters; c; c = c->next)
        if (strcmp(c->name, name) == 0) {
            found = c;
            goto out;
        }
    struct counter *c = calloc(1, sizeof *c);
    if (!c)
        goto out;
    c->name = strdup(name);
    c->help = strdup(help ? help : "");
    if (!c->name || !c->help) {
        free(c->name);
        free(c->help);
        free(c);
        goto out;
    }
    struct counter **tail = &r->counters;
    while (*tail)
        tail = &(*tail)->next;
    *tail = c;
    found = c;
out:
    pthread_mutex_unlock(&r->lock);
    return found;
}

static void stats_add(uint64_t *sums, const struct lstats *s)
{
    for (int i = 0; i < LSTATS_NFIELDS; i++)
        sums[i] += atomic_load_explicit(&s->v[i], memory_order_relaxed);
}

void stats_sum_listeners(struct stats_registry *r,
                         void (*fn)(void *arg, const char *listener, const uint64_t *sums),
                         void *arg)
{
    pthread_mutex_lock(&r->lock);
    for (struct lstats_entry *e = r->listeners; e; e = e->next) {
        int seen = 0;
        for (struct lstats_entry *p = r->listeners; p != e; p = p->next)
            if (strcmp(p->listener, e->listener) == 0)
                seen = 1;
        if (seen)
            continue;
        uint64_t sums[LSTATS_NFIELDS] = {0};
        for (struct lstats_entry *p = e; p; p = p->next)
            if (strcmp(p->listener, e->listener) == 0)
                stats_add(sums, &p->s);
        fn(arg, e->listener, sums);
    }
    pthread_mutex_unlock(&r->lock);
}

void stats_each_listener(struct stats_registry *r,
                         void (*fn)(void *arg, const char *listener, int slot,
                                    const struct lstats *s),
                         void *arg)
{
    pthread_mutex_lock(&r->lock);
    for (struct lstats_entry *e = r->listeners; e; e = e->next)
        fn(arg, e->listener, e->slot, &e->s);
    pthread_mutex_unlock(&r->lock);
}

void stats_each_counter(struct stats_registry *r,
                        void (*fn)(void *arg, const struct counter *c), void *arg)
{
    pthread_mutex_lock(&r->lock);
    for (struct counter *c = r->counters; c; c = c->next)
        fn(arg, c);
    pthread_mutex_unlock(&r->lock);
}

int stats_process_start_ticks(unsigned long long *ticks)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
                            "%*d %*d %*d %llu", ticks) != 1)
        return -1;
    return 0;
}
