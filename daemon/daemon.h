/* daemon/daemon.h: the daemon context, the one place that holds the daemon's state: the
 * configuration in force, its sockets, its workers, the shared registries and the main
 * loop (signals, metrics). */
#ifndef LUADGRAM_DAEMON_H
#define LUADGRAM_DAEMON_H

#include <stdint.h>
#include "config.h"
#include "log.h"
#include "sockset.h"
#include "stats.h"
#include "worker.h"

struct event;
struct event_base;
struct metrics;

/* systemd's service watchdog (sdwatch.c): the main loop's tick. */
struct sdwatch {
    long long interval_ns;         /* WATCHDOG_USEC; 0: no watchdog (STATUS= only) */
    struct event *tick;            /* every half interval (or the STATUS period); NULL: off */
    int stalled;                   /* the last tick found a worker late (logged once) */
};

struct daemon_ctx {
    struct logger log;
    struct stats_registry stats;
    struct daemon_shared shared;   /* what workers see of this */
    const char *conf_file;
    struct config *cfg;            /* in force */
    struct sockset socks;          /* open sockets of cfg */
    struct worker **workers;       /* cfg->workers of them, running */
    int nworkers;
    struct inherited_fds inherited;/* systemd sockets not yet claimed */
    struct event_base *base;       /* main loop: signals and metrics */
    struct metrics *metrics;
    struct sdwatch sdwatch;
    int privileges_dropped;
    uint64_t reloads, reload_failures;
    int exit_code;
};

/* Builds and starts everything for cfg (taking ownership of it). On failure returns -1,
 * with err set, leaving what ran before in force (cfg is freed). */
int daemon_apply(struct daemon_ctx *dc, struct config *cfg, char *err, size_t errlen);

/* SIGHUP: reads the configuration file again and applies it; logs the outcome. */
void daemon_reload(struct daemon_ctx *dc);

/* Stops workers (their stop handlers run), closes sockets and frees everything. */
void daemon_shutdown(struct daemon_ctx *dc);

/* Drops root to cfg->user after binding (once). 0 or -1 with err. */
int daemon_drop_privileges(struct daemon_ctx *dc, char *err, size_t errlen);

/* ---- signals_linux.c / signals_win.c ---- */
/* What stops and reloads the daemon from outside, on dc's loop: Linux SIGTERM/SIGINT stop
 * and SIGHUP reloads; Windows: stop_signals_win. NULL when they cannot be installed. */
struct stop_signals *stop_signals_install(struct daemon_ctx *dc);
void stop_signals_free(struct stop_signals *s);

/* ---- metrics.c ---- */
/* Serves GET /metrics on addr ("ip:port") from the main loop. NULL with err on failure. */
struct metrics *metrics_start(struct daemon_ctx *dc, const char *addr, char *err, size_t errlen);
void metrics_stop(struct metrics *m);
const char *metrics_addr(const struct metrics *m);

/* ---- notify.c ---- */
/* Sends a state line to systemd (NOTIFY_SOCKET); does nothing outside systemd. */
void notify_systemd(const char *state);

/* ---- sdwatch.c ---- */
/* Reads WATCHDOG_USEC and WATCHDOG_PID: returns the period of the workers' heartbeat (a
 * quarter of the interval), 0 when the watchdog is not ours to serve. */
long long sdwatch_configure(struct sdwatch *sw, struct logger *log);
/* Starts the tick on dc->base (nothing outside systemd). 0 or -1 with err. */
int sdwatch_start(struct daemon_ctx *dc, char *err, size_t errlen);
void sdwatch_stop(struct sdwatch *sw);
/* Sends `state` (e.g. "READY=1", or "" for STATUS= alone) with the STATUS= line: "N
 * listeners, N datagrams handled, N kernel drops, N handler errors", prefixed by `note`
 * when not NULL. */
void sdwatch_notify(struct daemon_ctx *dc, const char *state, const char *note);

#endif
