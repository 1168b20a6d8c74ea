/* daemon/runtime.c: putting a configuration in force. A new configuration is built beside
 * the running one (sockets reused or opened, one new worker per slot with its handlers
 * loaded and initialised); only when all of that succeeded are the old workers stopped
 * (their datagrams stay queued in the kernel meanwhile) and the new ones started. A failure
 * at any step leaves the running state untouched. */
#include "daemon.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "errname.h"

int daemon_drop_privileges(struct daemon_ctx *dc, char *err, size_t errlen)
{
    const char *user = dc->cfg ? dc->cfg->user : NULL;
    if (!user || dc->privileges_dropped)
        return 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "user '%s': no such user", user);
        return -1;
    }
    if (getuid() != 0) {
        if (getuid() == pw->pw_uid) {
            dc->privileges_dropped = 1;
            return 0;
        }
        snprintf(err, errlen, "user '%s': cannot switch users when not started as root", user);
        return -1;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        int e = errno;
        snprintf(err, errlen, "user '%s': cannot switch: %s (%s)", user, strerror(e),
                 errno_name(e));
        return -1;
    }
    dc->privileges_dropped = 1;
    log_info(&dc->log, "running as user %s (uid %d, gid %d)", user, (int)pw->pw_uid,
             (int)pw->pw_gid);
    return 0;
}

static void daemon_free_workers(struct worker **ws, int n)
{
    for (int i = 0; i < n; i++)
        worker_destroy(ws[i]);
    free(ws);
}

int daemon_apply(struct daemon_ctx *dc, struct config *cfg, char *err, size_t errlen)
{
    struct sockset socks;
    struct worker **ws = NULL;
    int n = cfg->workers;
    if (sockset_build(&socks, dc->cfg ? &dc->socks : NULL, cfg, n, &dc->inherited, &dc->log,
                      err, errlen) != 0) {
        config_free(cfg);
        return -1;
    }
    if (!dc->cfg && cfg->user) {
        /* First start: sockets are bound, now leave root before any script runs. */
        struct config *none = dc->cfg;
        dc->cfg = cfg;
        int rc = daemon_drop_privileges(dc, err, errlen);
        dc->cfg = none;
        if (rc != 0)
            goto fail;
    }
    ws = calloc((size_t)n, sizeof *ws);
    if (!ws) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        ws[i] = worker_create(&dc->shared, cfg, &socks, i, err, errlen);
        if (!ws[i])
            goto fail;
    }
    /* Commit: from here on the new state replaces the old. */
    atomic_store(&dc->log.level, cfg->log_level);
    for (int i = 0; i < dc->nworkers; i++)
        worker_stop(dc->workers[i]);
    daemon_free_workers(dc->workers, dc->nworkers);
    dc->workers = NULL;
    dc->nworkers = 0;
    if (dc->cfg)
        sockset_retire(&dc->socks, &socks, &dc->log);
    dc->socks = socks;
    config_free(dc->cfg);
    dc->cfg = cfg;
    dc->workers = ws;
    dc->nworkers = n;
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].unsafe)
            log_warn(&dc->log, "listener '%s': unsafe = true: its handler runs without the "
                     "sandbox (os.execute, io.popen, package.loadlib, debug, ... allowed)",
                     cfg->listeners[i].name);
    for (int i = 0; i < n; i++) {
        if (worker_start(ws[i], err, errlen) != 0)
            return -2; /* fatal: the old state is gone */
    }
    return 0;
fail:
    if (ws)
        daemon_free_workers(ws, n);
    sockset_discard(&socks);
    config_free(cfg);
    return -1;
}

void daemon_reload(struct daemon_ctx *dc)
{
    char err[1024];
    struct config *cfg = NULL;
    notify_systemd("RELOADING=1");
    log_info(&dc->log, "reloading %s", dc->conf_file);
    if (config_load(dc->conf_file, &cfg, err, sizeof err) != 0) {
        dc->reload_failures++;
        log_error(&dc->log, "reload failed, keeping the running configuration: %s", err);
        sdwatch_notify(dc, "READY=1", "reload failed: configuration error");
        return;
    }
    char *new_metrics = cfg->metrics ? strdup(cfg->metrics) : NULL;
    int rc = daemon_apply(dc, cfg, err, sizeof err);
    if (rc == -2) {
        log_error(&dc->log, "reload: %s; stopping", err);
        dc->exit_code = 1;
        event_base_loopbreak(dc->base);
        free(new_metrics);
        return;
    }
    if (rc != 0) {
        dc->reload_failures++;
        log_error(&dc->log, "reload failed, keeping the running configuration: %s", err);
        sdwatch_notify(dc, "READY=1", "reload failed");
        free(new_metrics);
        return;
    }
    dc->reloads++;
    /* The metrics endpoint moves only when its address changed. */
    const char *cur = dc->metrics ? metrics_addr(dc->metrics) : NULL;
    if (!new_metrics || !cur || strcmp(new_metrics, cur) != 0) {
        struct metrics *m = NULL;
        if (new_metrics) {
            m = metrics_start(dc, new_metrics, err, sizeof err);
            if (!m)
                log_error(&dc->log, "reload: metrics: %s; metrics are off", err);
        }
        if (dc->metrics)
            metrics_stop(dc->metrics);
        dc->metrics = m;
    }
    free(new_metrics);
    log_info(&dc->log, "reloaded: %zu listeners, %d workers", dc->cfg->nlisteners,
             dc->nworkers);
    sdwatch_notify(dc, "READY=1", NULL);
}

void daemon_shutdown(struct daemon_ctx *dc)
{
    for (int i = 0; i < dc->nworkers; i++)
        worker_stop(dc->workers[i]);
    daemon_free_workers(dc->workers, dc->nworkers);
    dc->workers = NULL;
    dc->nworkers = 0;
    if (dc->cfg)
        sockset_close_all(&dc->socks);
    config_free(dc->cfg);
    dc->cfg = NULL;
}
