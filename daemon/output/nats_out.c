/* daemon/output/nats_out.c: the NATS JetStream transport. It owns the libnats connection,
 * attached to the output's libevent base through nats_loop.c (reads, writes and the
 * connection's socket run on the output's loop, in its thread), and its JetStream context.
 * libnats still runs threads of its own: the reconnect thread (which re-attaches the socket
 * to the loop), the timers (pings, the async publish MaxWait), the delivery of the publish
 * acks and its garbage collector; nats_out_open runs on the output's thread (output_call),
 * so they all start from it, at its priority. The ack handler and the connection callbacks
 * here only touch the output's atomics and its locked list (output_done, output_set_up),
 * which wake the output's loop; no Lua runs there. */
#include "nats_out.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nats/nats.h>

#include "nats_loop.h"

#define NATS_CHECK_MS 10000

struct nats_out {
    struct output *o;
    natsConnection *nc;
    jsCtx *js;
    struct nats_loop *loop;
    char *stream;
    int64_t ack_wait_ms;
    /* a record was handed to js_PublishMsgAsync: only then may nats_close ask libnats for
     * the pending list (libnats 3.4's js_PublishAsyncGetPendingList reads the pending map,
     * which its first async publish creates, without checking it: a publisher closed
     * before it published crashed the daemon at reload or stop) */
    int published;
    /* libnats calls the connection callbacks from its own thread, after Close returned:
     * nats_close waits for the closed callback (the last one) before freeing this. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int closed;
};

int nats_subject_ok(const char *s, size_t len)
{
    if (len == 0 || len > 255)
        return 0;
    size_t tok = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (tok == 0)
                return 0;
            tok = 0;
            continue;
        }
        if (c <= ' ' || c >= 0x7f || c == '*' || c == '>')
            return 0;
        tok++;
    }
    return tok > 0;
}

/* 1 if subject (no wildcards) matches pattern (tokens, '*' one token, '>' the rest). */
static int nats_subject_match(const char *pattern, const char *subject)
{
    const char *p = pattern, *s = subject;
    for (;;) {
        size_t pl = strcspn(p, "."), sl = strcspn(s, ".");
        if (pl == 1 && p[0] == '>')
            return sl > 0;
        if (!(pl == 1 && p[0] == '*') && (pl != sl || memcmp(p, s, pl) != 0))
            return 0;
        p += pl;
        s += sl;
        if (!*p || !*s)
            return !*p && !*s;
        p++;
        s++;
    }
}

static void nats_err(char *err, size_t errlen, const char *what, natsStatus s)
{
    const char *last = nats_GetLastError(NULL);
    snprintf(err, errlen, "%s: %s%s%s", what, natsStatus_GetText(s),
             last && *last ? ": " : "", last && *last ? last : "");
}

/* Options shared by the check connection and the loop's one. */
static natsStatus nats_options(natsOptions **opts, const struct nats_out_cfg *cfg)
{
    natsStatus s = natsOptions_Create(opts);
    if (s == NATS_OK)
        s = natsOptions_SetServers(*opts, cfg->servers, cfg->nservers);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(*opts, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetNoRandomize(*opts, true);
    return s;
}

/* 1 for the JetStream API errors of a cluster that is starting: its meta leader does not
 * know every peer yet ("no suitable peers for placement" for an R3 stream) or has not
 * been elected. */
static int nats_cluster_settling(jsErrCode jerr)
{
    return jerr == JSClusterNoPeersErr || jerr == JSClusterNotAvailErr ||
           jerr == JSClusterNotLeaderErr;
}

/* Connects without the loop (libnats' own threads), finds the stream or creates it, and
 * checks that it holds cfg->subject. */
static int nats_check(const struct nats_out_cfg *cfg, char *err, size_t errlen)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    int rc = -1;
    char what[200];
    natsStatus s = nats_options(&opts, cfg);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 100);
    if (s != NATS_OK) {
        nats_err(err, errlen, "nats options", s);
        goto out;
    }
    s = natsConnection_Connect(&nc, opts);
    if (s != NATS_OK) {
        snprintf(err, errlen, "nats: cannot connect to %s%s: %s", cfg->servers[0],
                 cfg->nservers > 1 ? " (or the other servers)" : "", natsStatus_GetText(s));
        goto out;
    }
    s = natsConnection_JetStream(&js, nc, NULL);
    /* A cluster that is starting answers before it has a meta leader: transient errors are
     * tried again for up to NATS_CHECK_MS (init runs before the loop: waiting is fine). */
    int64_t deadline = nats_Now() + NATS_CHECK_MS;
    for (;;) {
        if (s == NATS_OK)
            s = js_GetStreamInfo(&si, js, cfg->stream, NULL, &jerr);
        if (s == NATS_NOT_FOUND && cfg->create) {
            jsStreamConfig sc;
            jsStreamConfig_Init(&sc);
            const char *subjects[1] = {cfg->subject};
            sc.Name = cfg->stream;
            sc.Subjects = subjects;
            sc.SubjectsLen = 1;
            sc.Storage = js_FileStorage;
            sc.Replicas = cfg->replicas;
            if (cfg->max_bytes > 0)
                sc.MaxBytes = cfg->max_bytes;
            sc.Duplicates = cfg->duplicate_window_s * 1000000000LL;
            s = js_AddStream(&si, js, &sc, NULL, &jerr);
            if (s == NATS_OK)
                break;
            snprintf(what, sizeof what, "nats: cannot create stream '%s'", cfg->stream);
        } else if (s == NATS_NOT_FOUND) {
            snprintf(err, errlen, "nats: stream '%s' not found (give create = { ... } to "
                     "create it)", cfg->stream);
            goto out;
        } else if (s == NATS_OK) {
            break;
        } else {
            snprintf(what, sizeof what, "nats: stream '%s'", cfg->stream);
        }
        /* a JetStream API error (jerr) is the server's answer: not tried again, unless it
         * says the cluster is still settling */
        if ((jerr != 0 && !nats_cluster_settling(jerr)) || nats_Now() >= deadline) {
            nats_err(err, errlen, what, s);
            goto out;
        }
        nats_Sleep(200);
        s = NATS_OK;
        jerr = 0;
    }
    int holds = 0;
    for (int i = 0; si->Config && i < si->Config->SubjectsLen; i++)
        holds |= nats_subject_match(si->Config->Subjects[i], cfg->subject);
    if (!holds) {
        snprintf(err, errlen, "nats: stream '%s' does not hold subject '%s'", cfg->stream,
                 cfg->subject);
        goto out;
    }
    rc = 0;
out:
    if (si)
        jsStreamInfo_Destroy(si);
    if (js)
        jsCtx_Destroy(js);
    if (nc)
        natsConnection_Destroy(nc);
    if (opts)
        natsOptions_Destroy(opts);
    return rc;
}

/* A record as the ack handler gets it back: the message's subject, data and id header. */
static void nats_record_of(natsMsg *m, struct spool_rec *r)
{
    const char *id = NULL;
    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || !id)
        id = "?";
    r->id = id;
    r->id_len = strlen(id);
    r->subject = natsMsg_GetSubject(m);
    r->subject_len = strlen(r->subject);
    r->data = (const uint8_t *)natsMsg_GetData(m);
    r->len = (size_t)natsMsg_GetDataLength(m);
}

/* libnats' thread: one record's outcome. A duplicate is an ack (the stream has it). */
static void nats_on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
    (void)js;
    struct nats_out *n = arg;
    if (pa || !pae) {
        output_done(n->o, NULL);
    } else {
        struct spool_rec r;
        nats_record_of(m, &r);
        output_done(n->o, &r);
    }
    natsMsg_Destroy(m);
}

static void nats_on_disconnected(natsConnection *nc, void *arg)
{
    (void)nc;
    struct nats_out *n = arg;
    output_set_up(n->o, 0);
}

/* libnats stops polling the socket: the connection is lost (or closed). Said at once, so
 * that the loop stops publishing before the reconnect thread holds the connection's lock
 * for its handshakes (the disconnected callback comes later, from another thread). */
static void nats_on_stop(void *arg)
{
    struct nats_out *n = arg;
    output_set_up(n->o, 0);
}

static void nats_on_closed(natsConnection *nc, void *arg)
{
    (void)nc;
    struct nats_out *n = arg;
    pthread_mutex_lock(&n->lock);
    n->closed = 1;
    pthread_cond_signal(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

static void nats_on_reconnected(natsConnection *nc, void *arg)
{
    (void)nc;
    struct nats_out *n = arg;
    output_set_up(n->o, 1);
}

static int nats_send(void *t, const struct spool_rec *r, char *err, size_t errlen)
{
    struct nats_out *n = t;
    char id[256], subject[256];
    if (r->id_len >= sizeof id || r->subject_len >= sizeof subject) {
        snprintf(err, errlen, "nats: id or subject too long");
        return -1;
    }
    memcpy(id, r->id, r->id_len);
    id[r->id_len] = '\0';
    memcpy(subject, r->subject, r->subject_len);
    subject[r->subject_len] = '\0';
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, (const char *)r->data, (int)r->len);
    if (s == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id;
        po.ExpectStream = n->stream;
        po.MaxWait = n->ack_wait_ms;
        s = js_PublishMsgAsync(n->js, &m, &po);
    }
    natsMsg_Destroy(m); /* NULL once the library took it */
    n->published = 1;   /* even on failure: the async publish may have made the map */
    if (s != NATS_OK) {
        nats_err(err, errlen, "nats publish", s);
        return -1;
    }
    return 0;
}

static void nats_close(void *t)
{
    struct nats_out *n = t;
    natsMsgList pending = {0};
    if (n->js && n->published && js_PublishAsyncGetPendingList(&pending, n->js) == NATS_OK) {
        for (int i = 0; i < pending.Count; i++) {
            struct spool_rec r;
            nats_record_of(pending.Msgs[i], &r);
            output_done(n->o, &r);
        }
        natsMsgList_Destroy(&pending);
    }
    if (n->js)
        jsCtx_Destroy(n->js);
    int closed = 1;
    if (n->nc) {
        natsConnection_Close(n->nc);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        pthread_mutex_lock(&n->lock);
        while (!n->closed &&
               pthread_cond_timedwait(&n->cond, &n->lock, &until) == 0)
            ;
        closed = n->closed;
        pthread_mutex_unlock(&n->lock);
        natsConnection_Destroy(n->nc);
    }
    if (!closed) { /* libnats may still call back into it: left allocated, never used again */
        n->o->base_kept = 1;
        return;
    }
    nats_loop_free(n->loop);
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->lock);
    free(n->stream);
    free(n);
}

static const struct output_ops nats_ops = {"nats", nats_send, nats_close};

int nats_out_open(struct output *o, struct event_base *base, const struct nats_out_cfg *cfg,
                  char *err, size_t errlen)
{
    if (nats_check(cfg, err, errlen) != 0)
        return -1;
    struct nats_out *n = calloc(1, sizeof *n);
    natsOptions *opts = NULL;
    if (!n || !(n->stream = strdup(cfg->stream)) ||
        !(n->loop = nats_loop_new(base, nats_on_stop, n))) {
        if (n)
            free(n->stream);
        free(n);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    n->o = o;
    n->ack_wait_ms = cfg->ack_wait_ms;
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->cond, NULL);
    n->closed = 1; /* until connected: nothing to wait for */
    natsStatus s = nats_options(&opts, cfg);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 200);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(opts, nats_on_disconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(opts, nats_on_reconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(opts, nats_on_closed, n);
    /* With an event loop, "send asap" only asks the loop for the write event (once, until
     * it wrote): the loop's write then sends all that was buffered. Without it every publish
     * signals libnats' flusher thread, a wake-up and a lock per record. */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(opts, true);
    if (s == NATS_OK)
        s = nats_loop_use(n->loop, opts);
    if (s == NATS_OK)
        s = natsConnection_Connect(&n->nc, opts);
    if (s == NATS_OK)
        n->closed = 0;
    if (s == NATS_OK) {
        jsOptions jo;
        jsOptions_Init(&jo);
        /* Ours stops first, by far: libnats counts a record pending until after our ack
         * handler returned, and at its own limit js_PublishMsgAsync would wait (StallWait)
         * on the output's loop; should it ever, 1 ms, then the record goes to the spool. */
        jo.PublishAsync.MaxPending = (int64_t)o->max_inflight * 2 + 64;
        jo.PublishAsync.StallWait = 1;
        jo.PublishAsync.AckHandler = nats_on_ack;
        jo.PublishAsync.AckHandlerClosure = n;
        s = natsConnection_JetStream(&n->js, n->nc, &jo);
    }
    if (opts)
        natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        nats_err(err, errlen, "nats connect", s);
        nats_close(n);
        return -1;
    }
    output_attach(o, &nats_ops, n);
    output_set_up(o, 1);
    return 0;
}
