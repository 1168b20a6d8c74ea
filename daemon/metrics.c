/* daemon/metrics.c: GET /metrics in Prometheus text format, served by libevent's evhttp on
 * the main loop: per-listener counters summed over workers, handlers' named counters, and
 * the daemon's own state. */
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/http.h>

#include "addr.h"
#include "errname.h"

struct metrics {
    struct daemon_ctx *dc;
    struct evhttp *http;
    char addr[ADDR_STRLEN];
};

struct metrics_rows {
    size_t n, cap;
    char **names;
    uint64_t (*sums)[LSTATS_NFIELDS];
    int failed;
};

static void metrics_collect(void *arg, const char *listener, const uint64_t *sums)
{
    struct metrics_rows *r = arg;
    if (r->failed)
        return;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        char **names = realloc(r->names, cap * sizeof *names);
        if (!names) {
            r->failed = 1;
            return;
        }
        r->names = names;
        uint64_t(*s)[LSTATS_NFIELDS] = realloc(r->sums, cap * sizeof *s);
        if (!s) {
            r->failed = 1;
            return;
        }
        r->sums = s;
        r->cap = cap;
    }
    r->names[r->n] = strdup(listener);
    if (!r->names[r->n]) {
        r->failed = 1;
        return;
    }
    memcpy(r->sums[r->n], sums, sizeof r->sums[r->n]);
    r->n++;
}

/* A HELP text as the exposition format wants it: backslash and line feed escaped. */
static void metrics_add_help(struct evbuffer *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            evbuffer_add(b, "\\\\", 2);
        else if (*s == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, s, 1);
    }
}

static void metrics_counter_line(void *arg, const struct counter *c)
{
    struct evbuffer *b = arg;
    if (c->help[0]) {
        evbuffer_add_printf(b, "# HELP luadgramd_user_%s ", c->name);
        metrics_add_help(b, c->help);
        evbuffer_add(b, "\n", 1);
    }
    evbuffer_add_printf(b, "# TYPE luadgramd_user_%s counter\nluadgramd_user_%s %lld\n",
                        c->name, c->name,
                        (long long)atomic_load_explicit(&c->value, memory_order_relaxed));
}

/* One output's rows; the HELP/TYPE lines come first (metrics_outputs). */
struct metrics_output_rows {
    struct evbuffer *b;
    int field;
};

static void metrics_output_line(void *arg, const char *listener, const char *output,
                                const uint64_t *sums)
{
    struct metrics_output_rows *r = arg;
    evbuffer_add_printf(r->b, "luadgramd_output_%s%s{listener=\"%s\",output=\"%s\"} %llu\n",
                        ostats_names[r->field], r->field < OSTATS_NCOUNTERS ? "_total" : "",
                        listener, output, (unsigned long long)sums[r->field]);
}

/* luadgramd_output_<field>[_total]{listener=,output=}: the outputs' counters and gauges,
 * summed over workers. */
static void metrics_outputs(struct stats_registry *st, struct evbuffer *b)
{
    for (int f = 0; f < OSTATS_NFIELDS; f++) {
        const char *suffix = f < OSTATS_NCOUNTERS ? "_total" : "";
        evbuffer_add_printf(b, "# HELP luadgramd_output_%s%s %s\n"
                            "# TYPE luadgramd_output_%s%s %s\n", ostats_names[f], suffix,
                            ostats_help[f], ostats_names[f], suffix,
                            f < OSTATS_NCOUNTERS ? "counter" : "gauge");
        struct metrics_output_rows r = {b, f};
        stats_sum_outputs(st, metrics_output_line, &r);
    }
}

static void metrics_lua_memory_line(void *arg, const char *listener, int slot,
                                    const struct lstats *s)
{
    evbuffer_add_printf(arg, "luadgramd_lua_memory_bytes{listener=\"%s\",worker=\"%d\"} %llu\n",
                        listener, slot + 1,
                        (unsigned long long)atomic_load_explicit(&s->lua_bytes,
                                                                 memory_order_relaxed));
}

/* The process's resident size in bytes (/proc/self/statm), or -1. */
static long long metrics_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size, resident;
    int n = f ? fscanf(f, "%lld %lld", &size, &resident) : 0;
    if (f)
        fclose(f);
    return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

/* Open file descriptors (entries of /proc/self/fd, less the one reading it), or -1. */
static long long metrics_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* The process's start, epoch seconds: field 22 of /proc/self/stat (clock ticks after boot)
 * plus btime of /proc/stat, as Prometheus' client libraries compute it; -1 if unknown. */
static double metrics_start_time(void)
{
    char buf[1024];
    unsigned long long ticks = 0;
    if (stats_process_start_ticks(&ticks) != 0)
        return -1;
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long btime = 0;
    int found = 0;
    while (f && fgets(buf, sizeof buf, f))
        if (sscanf(buf, "btime %llu", &btime) == 1) {
            found = 1;
            break;
        }
    if (f)
        fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    return found && hz > 0 ? (double)btime + (double)ticks / (double)hz : -1;
}

static void metrics_process(struct evbuffer *b)
{
    long long rss = metrics_rss(), fds = metrics_open_fds();
    double start = metrics_start_time();
    if (rss >= 0)
        evbuffer_add_printf(b, "# HELP process_resident_memory_bytes Resident memory size in "
                            "bytes\n# TYPE process_resident_memory_bytes gauge\n"
                            "process_resident_memory_bytes %lld\n", rss);
    if (fds >= 0)
        evbuffer_add_printf(b, "# HELP process_open_fds Number of open file descriptors\n"
                            "# TYPE process_open_fds gauge\nprocess_open_fds %lld\n", fds);
    if (start >= 0)
        evbuffer_add_printf(b, "# HELP process_start_time_seconds Start time of the process "
                            "since unix epoch in seconds\n"
                            "# TYPE process_start_time_seconds gauge\n"
                            "process_start_time_seconds %.2f\n", start);
}

static void metrics_page(struct evhttp_request *req, void *arg)
{
    struct metrics *m = arg;
    struct daemon_ctx *dc = m->dc;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
        evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
        evhttp_send_error(req, 405, "Method Not Allowed");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, "Out of memory");
        return;
    }
    struct metrics_rows rows = {0};
    stats_sum_listeners(&dc->stats, metrics_collect, &rows);
    for (int f = 0; f < LSTATS_NFIELDS && !rows.failed; f++) {
        evbuffer_add_printf(b, "# HELP luadgramd_%s_total %s\n# TYPE luadgramd_%s_total counter\n",
                            lstats_names[f], lstats_help[f], lstats_names[f]);
        for (size_t i = 0; i < rows.n; i++)
            evbuffer_add_printf(b, "luadgramd_%s_total{listener=\"%s\"} %llu\n",
                                lstats_names[f], rows.names[i],
                                (unsigned long long)rows.sums[i][f]);
    }
    for (size_t i = 0; i < rows.n; i++)
        free(rows.names[i]);
    free(rows.names);
    free(rows.sums);
    evbuffer_add_printf(b, "# HELP luadgramd_lua_memory_bytes Memory held by the listener's "
                        "Lua state in a worker\n# TYPE luadgramd_lua_memory_bytes gauge\n");
    stats_each_listener(&dc->stats, metrics_lua_memory_line, b);
    stats_each_counter(&dc->stats, metrics_counter_line, b);
    metrics_outputs(&dc->stats, b);
    metrics_process(b);
    evbuffer_add_printf(b,
                        "# HELP luadgramd_workers Worker threads running\n"
                        "# TYPE luadgramd_workers gauge\nluadgramd_workers %d\n"
                        "# HELP luadgramd_reloads_total Successful reloads (SIGHUP)\n"
                        "# TYPE luadgramd_reloads_total counter\nluadgramd_reloads_total %llu\n"
                        "# HELP luadgramd_reload_failures_total Reloads that failed and kept "
                        "the running configuration\n"
                        "# TYPE luadgramd_reload_failures_total counter\n"
                        "luadgramd_reload_failures_total %llu\n"
                        "# HELP luadgramd_build_info Version of the running daemon\n"
                        "# TYPE luadgramd_build_info gauge\n"
                        "luadgramd_build_info{version=\"%s\"} 1\n",
                        dc->nworkers, (unsigned long long)dc->reloads,
                        (unsigned long long)dc->reload_failures, LUADGRAM_VERSION);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void metrics_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_send_error(req, 404, "Not Found (try /metrics)");
}

struct metrics *metrics_start(struct daemon_ctx *dc, const char *addr, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    socklen_t len;
    char why[256], ip[ADDR_STRLEN];
    if (addr_parse_peer(addr, &sa, &len, why, sizeof why) != 0 || sa.ss_family == AF_UNIX) {
        snprintf(err, errlen, "metrics %s: bad address", addr);
        return NULL;
    }
    struct metrics *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->dc = dc;
    snprintf(m->addr, sizeof m->addr, "%s", addr);
    m->http = evhttp_new(dc->base);
    if (!m->http) {
        snprintf(err, errlen, "out of memory");
        free(m);
        return NULL;
    }
    addr_ip((struct sockaddr *)&sa, ip, sizeof ip);
    errno = 0;
    if (!evhttp_bind_socket_with_handle(m->http, ip, (uint16_t)addr_port((struct sockaddr *)&sa))) {
        int e = errno ? errno : EADDRINUSE;
        snprintf(err, errlen, "metrics: bind %s: %s (%s)", addr, strerror(e), errno_name(e));
        evhttp_free(m->http);
        free(m);
        return NULL;
    }
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_cb(m->http, "/metrics", metrics_page, m);
    evhttp_set_gencb(m->http, metrics_other, m);
    evhttp_set_timeout(m->http, 10);
    log_info(&dc->log, "metrics on http://%s/metrics", addr);
    return m;
}

void metrics_stop(struct metrics *m)
{
    if (!m)
        return;
    evhttp_free(m->http);
    free(m);
}

const char *metrics_addr(const struct metrics *m)
{
    return m->addr;
}
