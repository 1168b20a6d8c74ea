/* daemon/sendq.c: the send queue, its flush and its back-pressure. */
#include "sendq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "addr.h"
#include "errname.h"

int sendq_init(struct sendq *q, unsigned cap, size_t arena_cap)
{
    memset(q, 0, sizeof *q);
    q->items = calloc(cap, sizeof *q->items);
    q->owners = calloc(cap, sizeof *q->owners);
    q->arena = malloc(arena_cap);
    if (!q->items || !q->owners || !q->arena) {
        sendq_free(q, NULL);
        return -1;
    }
    q->cap = cap;
    q->arena_cap = arena_cap;
    q->blocked_fd = -1;
    return 0;
}

void sendq_free(struct sendq *q, struct logger *lg)
{
    if (q->n > q->head && q->owners) {
        for (unsigned i = q->head; i < q->n; i++)
            if (q->owners[i])
                lstats_add(q->owners[i], LS_SEND_DROPPED, 1);
        if (lg)
            log_warn(lg, "send queue: %u datagrams still blocked at stop were dropped",
                     q->n - q->head);
    }
    if (q->wev)
        event_free(q->wev);
    free(q->items);
    free(q->owners);
    free(q->arena);
    memset(q, 0, sizeof *q);
    q->blocked_fd = -1;
}

/* Stops or restarts reading every socket of the worker (back-pressure). */
static void sendq_pause_reads(struct worker *w, int pause)
{
    if (w->paused == pause)
        return;
    w->paused = pause;
    for (size_t i = 0; i < w->nlisteners; i++)
        for (size_t j = 0; j < w->listeners[i].nsocks; j++) {
            struct event *ev = w->listeners[i].socks[j].ev;
            if (!ev)
                continue;
            if (pause)
                event_del(ev);
            else
                event_add(ev, NULL);
        }
}

static void sendq_on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    w->sq.blocked_fd = -1;
    sendq_flush(w);
}

/* Drops the first k waiting items: O(1), the space is reclaimed when the queue empties
 * or by sendq_compact when a push needs it. */
static void sendq_consume(struct sendq *q, unsigned k)
{
    q->head += k;
    if (q->head >= q->n) {
        q->head = q->n = 0;
        q->used = 0;
    }
}

/* Moves the waiting items (and their data) to the front. */
static void sendq_compact(struct sendq *q)
{
    if (q->head == 0)
        return;
    size_t off = (size_t)(q->items[q->head].data - q->arena);
    memmove(q->arena, q->arena + off, q->used - off);
    q->used -= off;
    for (unsigned i = q->head; i < q->n; i++) {
        q->items[i - q->head] = q->items[i];
        q->items[i - q->head].data -= off;
        q->owners[i - q->head] = q->owners[i];
    }
    q->n -= q->head;
    q->head = 0;
}

void sendq_flush(struct worker *w)
{
    struct sendq *q = &w->sq;
    while (q->n > q->head && q->blocked_fd < 0) {
        int err = 0;
        struct send_item *items = q->items + q->head;
        struct lstats **owners = q->owners + q->head;
        unsigned waiting = q->n - q->head;
        unsigned sent = send_batch(items, waiting, &err);
        for (unsigned i = 0; i < sent; i++)
            if (owners[i])
                lstats_add(owners[i], LS_SENT, 1);
        if (sent == waiting) {
            sendq_consume(q, sent);
            break;
        }
        /* ENOBUFS (a full device queue) is not waited for: the socket would poll writable
         * at once and the loop spin; it is counted as a failed send below. */
        if (err == EAGAIN || err == EWOULDBLOCK) {
            /* Wait for room, keep order, stop reading meanwhile. */
            sendq_consume(q, sent);
            q->blocked_fd = q->items[q->head].fd;
            if (q->wev)
                event_free(q->wev);
            q->wev = event_new(w->base, q->blocked_fd, EV_WRITE, sendq_on_writable, w);
            if (q->wev && event_add(q->wev, NULL) == 0) {
                sendq_pause_reads(w, 1);
                return;
            }
            /* Cannot wait: count what is left as dropped. */
            for (unsigned i = q->head; i < q->n; i++)
                if (q->owners[i])
                    lstats_add(q->owners[i], LS_SEND_DROPPED, 1);
            log_error(w->d->log, "send queue: cannot wait for writability: %u datagrams "
                      "dropped", q->n - q->head);
            q->blocked_fd = -1;
            sendq_consume(q, q->n - q->head);
            break;
        }
        /* This item failed for good: count, log, skip it. */
        if (owners[sent])
            lstats_add(owners[sent], LS_SEND_ERRORS, 1);
        unsigned suppressed;
        if (ratelimit_allow(&q->err_rl, 5, &suppressed)) {
            char to[ADDR_STRLEN];
            const struct send_item *it = &items[sent];
            log_warn(w->d->log, "send to %s failed: %s (%s)%s",
                     addr_format((const struct sockaddr *)&it->to, it->tolen, 1, to, sizeof to),
                     strerror(err), errno_name(err), suppressed ? " (and more, suppressed)" : "");
        }
        sendq_consume(q, sent + 1);
    }
    if (q->n == 0 && q->blocked_fd < 0)
        sendq_pause_reads(w, 0);
}

struct send_item *sendq_reserve(struct worker *w, size_t len, struct lstats *owner, int *err)
{
    struct sendq *q = &w->sq;
    if (len > q->arena_cap) {
        *err = EMSGSIZE;
        return NULL;
    }
    if (q->n == q->cap || q->arena_cap - q->used < len) {
        sendq_flush(w);
        sendq_compact(q);
        if (q->n == q->cap || q->arena_cap - q->used < len) {
            if (owner)
                lstats_add(owner, LS_SEND_DROPPED, 1);
            *err = ENOBUFS;
            return NULL;
        }
    }
    struct send_item *slot = &q->items[q->n];
    slot->data = q->arena + q->used;
    slot->len = len;
    q->used += len;
    q->owners[q->n] = owner;
    q->n++;
    return slot;
}
