/* daemon/signals_linux.c: the daemon's signals on Linux (daemon.h): SIGTERM and SIGINT
 * stop the main loop, SIGHUP reloads. Owns the three libevent signal events. */
#include <signal.h>
#include <stdlib.h>
#include <event2/event.h>

#include "daemon.h"

struct stop_signals {
    struct event *term, *intr, *hup;
};

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon_ctx *dc = arg;
    log_info(&dc->log, "signal %d: stopping", (int)sig);
    event_base_loopbreak(dc->base);
}

static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    daemon_reload(arg);
}

struct stop_signals *stop_signals_install(struct daemon_ctx *dc)
{
    struct stop_signals *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->term = evsignal_new(dc->base, SIGTERM, on_stop_signal, dc);
    s->intr = evsignal_new(dc->base, SIGINT, on_stop_signal, dc);
    s->hup = evsignal_new(dc->base, SIGHUP, on_reload_signal, dc);
    if (!s->term || !s->intr || !s->hup || evsignal_add(s->term, NULL) != 0 ||
        evsignal_add(s->intr, NULL) != 0 || evsignal_add(s->hup, NULL) != 0) {
        stop_signals_free(s);
        return NULL;
    }
    return s;
}

void stop_signals_free(struct stop_signals *s)
{
    if (!s)
        return;
    if (s->term)
        event_free(s->term);
    if (s->intr)
        event_free(s->intr);
    if (s->hup)
        event_free(s->hup);
    free(s);
}
