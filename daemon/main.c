/* daemon/main.c: the command line, the daemon's lifecycle (configure, bind, drop privileges,
 * start workers, serve metrics, tell systemd) and its signals: SIGTERM/SIGINT stop, SIGHUP
 * reloads. Always runs in the foreground (systemd, a terminal or a supervisor runs it). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <lauxlib.h>
#include <lualib.h>

#include "daemon.h"

#define DEFAULT_CONFIG LUADGRAM_SYSCONFDIR "/luadgramd.conf"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: luadgramd [-c FILE] [-t]\n"
            "Runs Lua handlers on datagrams (UDP, unix, raw) in the foreground.\n\n"
            "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t, --test         check the configuration and handler scripts, then exit\n"
            "  -V, --version      print the version and exit\n"
            "  -h, --help         print this help and exit\n\n"
            "Signals: SIGHUP reloads configuration and scripts, SIGTERM/SIGINT stop.\n"
            "Exit status: 0 on a clean stop, 1 on a runtime failure, 2 on a configuration\n"
            "or bind error.\n");
}

/* -t: each handler script must compile (it is not run: that happens per worker). */
static int check_scripts(const struct config *cfg)
{
    int bad = 0;
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "luadgramd: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct listener_cfg *lc = &cfg->listeners[i];
        if (luaL_loadfilex(L, lc->handler_path, "t") != LUA_OK) {
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
            bad = 1;
        }
        lua_settop(L, 0);
    }
    lua_close(L);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *conf = DEFAULT_CONFIG;
    int test_only = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            conf = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'V':
            printf("luadgramd %s (%s, libevent %s)\n", LUADGRAM_VERSION, LUA_RELEASE,
                   event_get_version());
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "luadgramd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    char err[1024];
    struct config *cfg = NULL;
    if (config_load(conf, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (test_only) {
        int ok = check_scripts(cfg) == 0;
        if (ok)
            printf("%s: configuration is valid (%zu listeners)\n", conf, cfg->nlisteners);
        config_free(cfg);
        return ok ? 0 : 2;
    }

    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "luadgramd: libevent has no thread support\n");
        config_free(cfg);
        return 1;
    }
    struct daemon_ctx dc;
    memset(&dc, 0, sizeof dc);
    log_init(&dc.log, STDERR_FILENO);
    atomic_store(&dc.log.level, cfg->log_level);
    stats_init(&dc.stats);
    dc.shared.log = &dc.log;
    dc.shared.stats = &dc.stats;
    dc.shared.heartbeat_ns = sdwatch_configure(&dc.sdwatch, &dc.log);
    dc.conf_file = conf;
    inherited_fds_take(&dc.inherited);
    int rc = 0;
    struct stop_signals *sigs = NULL;
    dc.base = event_base_new();
    if (!dc.base) {
        fprintf(stderr, "luadgramd: cannot create the event loop\n");
        config_free(cfg);
        rc = 1;
        goto out;
    }
    /* Signals first: a SIGTERM that comes once sockets are bound must stop us cleanly. */
    sigs = stop_signals_install(&dc);
    if (!sigs) {
        fprintf(stderr, "luadgramd: cannot install signal handlers\n");
        config_free(cfg);
        rc = 1;
        goto out;
    }
    char *metrics = cfg->metrics ? strdup(cfg->metrics) : NULL;
    int applied = daemon_apply(&dc, cfg, err, sizeof err); /* takes cfg */
    if (applied != 0) {
        log_error(&dc.log, "%s", err);
        free(metrics);
        rc = applied == -2 ? 1 : 2;
        goto out;
    }
    if (metrics) {
        dc.metrics = metrics_start(&dc, metrics, err, sizeof err);
        free(metrics);
        if (!dc.metrics) {
            log_error(&dc.log, "%s", err);
            rc = 2;
            goto out;
        }
    }
    if (sdwatch_start(&dc, err, sizeof err) != 0) {
        log_error(&dc.log, "%s", err);
        rc = 1;
        goto out;
    }
    inherited_fds_release(&dc.inherited, &dc.log);
    log_info(&dc.log, "luadgramd %s running: %zu listeners, %d workers (pid %d)",
             LUADGRAM_VERSION, dc.cfg->nlisteners, dc.nworkers, (int)getpid());
    sdwatch_notify(&dc, "READY=1", NULL);
    event_base_dispatch(dc.base);
    rc = dc.exit_code;
    notify_systemd("STOPPING=1");
out:
    stop_signals_free(sigs);
    sdwatch_stop(&dc.sdwatch);
    metrics_stop(dc.metrics);
    daemon_shutdown(&dc);
    inherited_fds_release(&dc.inherited, &dc.log);
    if (dc.base)
        event_base_free(dc.base);
    if (rc == 0)
        log_info(&dc.log, "stopped");
    stats_destroy(&dc.stats);
    return rc;
}
