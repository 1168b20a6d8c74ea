/* daemon/stats.c: the registry of per-listener counters, of handlers' named counters and of
 * the outputs' counters (with the process's boot id their record ids carry). */
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

const char *const ostats_names[OSTATS_NFIELDS] = {
    "published", "acked", "retried", "spooled", "dropped", "spool_bytes", "inflight",
};

const char *const ostats_help[OSTATS_NFIELDS] = {
    "Records handed to an output's publish and taken into its queue",
    "Records the output's server acknowledged",
    "Records sent again from the output's spool",
    "Records written to the output's local spool",
    "Records dropped: the output's queue was full, or its spool full or absent while the "
    "server could not take them",
    "Bytes in the output's spool files",
    "Records sent to the output's server and not yet acknowledged",
};

void stats_init(struct stats_registry *r)
{
    pthread_mutex_init(&r->lock, NULL);
    r->listeners = NULL;
    r->counters = NULL;
    r->outputs = NULL;
    uint64_t id = 0;
    if (getentropy(&id, sizeof id) != 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        id = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)getpid() << 40;
    }
    snprintf(r->boot_id, sizeof r->boot_id, "%016llx", (unsigned long long)id);
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
    for (struct ostats_entry *o = r->outputs, *n; o; o = n) {
        n = o->next;
        free(o->listener);
        free(o->output);
        free(o);
    }
    r->listeners = NULL;
    r->counters = NULL;
    r->outputs = NULL;
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

struct ostats *stats_output(struct stats_registry *r, const char *listener, const char *output,
                            int slot)
{
    struct ostats *found = NULL;
    pthread_mutex_lock(&r->lock);
    struct ostats_entry **tail = &r->outputs;
    for (; *tail; tail = &(*tail)->next)
        if ((*tail)->slot == slot && strcmp((*tail)->listener, listener) == 0 &&
            strcmp((*tail)->output, output) == 0) {
            found = &(*tail)->s;
            goto out;
        }
    struct ostats_entry *e = calloc(1, sizeof *e);
    if (!e)
        goto out;
    e->listener = strdup(listener);
    e->output = strdup(output);
    if (!e->listener || !e->output) {
        free(e->listener);
        free(e->output);
        free(e);
        goto out;
    }
    e->slot = slot;
    *tail = e;
    found = &e->s;
out:
    pthread_mutex_unlock(&r->lock);
    return found;
}

void stats_sum_outputs(struct stats_registry *r,
                       void (*fn)(void *arg, const char *listener, const char *output,
                                  const uint64_t *sums),
                       void *arg)
{
    pthread_mutex_lock(&r->lock);
    for (struct ostats_entry *e = r->outputs; e; e = e->next) {
        int first = 1;
        for (struct ostats_entry *p = r->outputs; p != e; p = p->next)
            if (strcmp(p->listener, e->listener) == 0 && strcmp(p->output, e->output) == 0)
                first = 0;
        if (!first)
            continue;
        uint64_t sums[OSTATS_NFIELDS] = {0};
        for (struct ostats_entry *p = e; p; p = p->next)
            if (strcmp(p->listener, e->listener) == 0 && strcmp(p->output, e->output) == 0)
                for (int f = 0; f < OSTATS_NFIELDS; f++)
                    sums[f] += atomic_load_explicit(&p->s.v[f], memory_order_relaxed);
        fn(arg, e->listener, e->output, sums);
    }
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
