/* daemon/output/redis_out.c: the Redis Streams transport. It owns the hiredis async context
 * (attached to the output's libevent base with hiredis' libevent adapter: everything,
 * replies included, runs on the output's thread), a copy of each record until its reply, and
 * the timer that reconnects after the server went away. Each record is one
 * XADD <stream> [MAXLEN ~ n] * id <record id> data <bytes>. */
#include "redis_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "addr.h"

#define REDIS_RETRY_MS 200

struct redis_out {
    struct output *o;
    struct event_base *base;
    char ip[ADDR_STRLEN];
    int port;
    char maxlen[24];           /* "" when unbounded */
    redisAsyncContext *ac;     /* NULL while disconnected */
    struct event *retry_ev;
    int closing;
};

/* A record waiting for its reply: the XADD's privdata. */
struct redis_pending {
    struct spool_rec r;
    char bytes[];
};

static void redis_connect(struct redis_out *x);

static void redis_retry_later(struct redis_out *x)
{
    if (x->closing)
        return;
    struct timeval tv = {0, REDIS_RETRY_MS * 1000};
    event_add(x->retry_ev, &tv);
}

static void redis_on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    redis_connect(arg);
}

static void redis_on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_out *x = ac->data;
    if (status != REDIS_OK) { /* hiredis frees ac after this */
        x->ac = NULL;
        redis_retry_later(x);
        return;
    }
    output_set_up(x->o, 1);
}

static void redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct redis_out *x = ac->data;
    x->ac = NULL;
    output_set_up(x->o, 0);
    redis_retry_later(x);
}

static void redis_connect(struct redis_out *x)
{
    redisAsyncContext *ac = redisAsyncConnect(x->ip, x->port);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        redis_retry_later(x);
        return;
    }
    ac->data = x;
    if (redisLibeventAttach(ac, x->base) != REDIS_OK) {
        redisAsyncFree(ac);
        redis_retry_later(x);
        return;
    }
    redisAsyncSetConnectCallback(ac, redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, redis_on_disconnect);
    x->ac = ac;
}

/* The XADD's reply (NULL: the connection went away before it came). */
static void redis_on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct redis_pending *p = privdata;
    struct redis_out *x = ac->data;
    const redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_STRING)
        output_done(x->o, NULL);
    else
        output_done(x->o, &p->r); /* copied there: spooled, sent again with its id */
    free(p);
}

static int redis_send(void *t, const struct spool_rec *r, char *err, size_t errlen)
{
    struct redis_out *x = t;
    if (!x->ac) {
        snprintf(err, errlen, "redis: not connected");
        return -1;
    }
    struct redis_pending *p = malloc(sizeof *p + r->id_len + r->subject_len + r->len);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(p->bytes, r->id, r->id_len);
    memcpy(p->bytes + r->id_len, r->subject, r->subject_len);
    if (r->len)
        memcpy(p->bytes + r->id_len + r->subject_len, r->data, r->len);
    p->r = (struct spool_rec){p->bytes, r->id_len, p->bytes + r->id_len, r->subject_len,
                              (const uint8_t *)p->bytes + r->id_len + r->subject_len, r->len};
    /* XADD key [MAXLEN ~ n] * id <id> data <data>: at most 10 arguments */
    const char *argv[10];
    size_t lens[10];
    int n = 0;
#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
    ARG("XADD", 4);
    ARG(p->r.subject, p->r.subject_len);
    if (x->maxlen[0]) {
        ARG("MAXLEN", 6);
        ARG("~", 1);
        ARG(x->maxlen, strlen(x->maxlen));
    }
    ARG("*", 1);
    ARG("id", 2);
    ARG(p->r.id, p->r.id_len);
    ARG("data", 4);
    ARG((const char *)p->r.data, p->r.len);
#undef ARG
    if (redisAsyncCommandArgv(x->ac, redis_on_reply, p, n, argv, lens) != REDIS_OK) {
        free(p);
        snprintf(err, errlen, "redis: %s", x->ac->errstr[0] ? x->ac->errstr : "cannot send");
        return -1;
    }
    return 0;
}

static void redis_close(void *t)
{
    struct redis_out *x = t;
    x->closing = 1;
    if (x->ac) {
        redisAsyncContext *ac = x->ac;
        redisAsyncFree(ac); /* replies not come: redis_on_reply(NULL) spools them */
        x->ac = NULL;
    }
    event_free(x->retry_ev);
    free(x);
}

static const struct output_ops redis_ops = {"redis", redis_send, redis_close};

int redis_out_open(struct output *o, struct event_base *base, const struct redis_out_cfg *cfg,
                   char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    char why[256];
    if (addr_parse_peer(cfg->server, &sa, &salen, why, sizeof why) != 0 ||
        sa.ss_family == AF_UNIX) {
        snprintf(err, errlen, "redis: bad server '%s' (\"ip:port\" or \"[ip6]:port\")",
                 cfg->server);
        return -1;
    }
    struct redis_out *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    x->o = o;
    x->base = base;
    addr_ip((struct sockaddr *)&sa, x->ip, sizeof x->ip);
    x->port = (int)addr_port((struct sockaddr *)&sa);
    if (cfg->maxlen > 0)
        snprintf(x->maxlen, sizeof x->maxlen, "%lld", (long long)cfg->maxlen);
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(x->ip, x->port, tv);
    redisReply *rep = NULL;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        rep = redisCommand(c, "PING");
    }
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis: cannot reach %s: %s", cfg->server,
                 rep ? rep->str : c ? c->errstr : "out of memory");
        if (rep)
            freeReplyObject(rep);
        if (c)
            redisFree(c);
        free(x);
        return -1;
    }
    freeReplyObject(rep);
    redisFree(c);
    x->retry_ev = event_new(base, -1, 0, redis_on_retry, x);
    if (!x->retry_ev) {
        free(x);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    output_attach(o, &redis_ops, x);
    redis_connect(x);
    return 0;
}
