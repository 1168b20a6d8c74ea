/* daemon/output/nats_out.h: the NATS JetStream transport of an output (libnats). */
#ifndef LUADGRAM_NATS_OUT_H
#define LUADGRAM_NATS_OUT_H

#include <stdint.h>
#include "output.h"

struct nats_out_cfg {
    const char **servers;       /* "nats://host:port" */
    int nservers;
    const char *subject;        /* default subject of publish */
    const char *stream;         /* must exist and hold subject, unless create */
    int create;                 /* create the stream when missing */
    int64_t replicas, max_bytes, duplicate_window_s;
    int64_t ack_wait_ms;        /* an ack not come after this: the record is sent again */
};

/* 1 if s is a subject a record may be published to (tokens of printable bytes without
 * space, '*' or '>', none empty). */
int nats_subject_ok(const char *s, size_t len);

/* Checks the servers and the stream (creating it if asked) with a short-lived connection,
 * then connects o's transport on the loop of o (base). 0 or -1 with err set. */
int nats_out_open(struct output *o, struct event_base *base, const struct nats_out_cfg *cfg,
                  char *err, size_t errlen);

#endif
