/* daemon/output/redis_out.h: the Redis Streams transport of an output (hiredis). */
#ifndef LUADGRAM_REDIS_OUT_H
#define LUADGRAM_REDIS_OUT_H

#include <stdint.h>
#include "output.h"

struct redis_out_cfg {
    const char *server;   /* "ip:port" or "[ip6]:port" */
    const char *stream;   /* the stream key */
    int64_t maxlen;       /* XADD MAXLEN ~ maxlen; 0: unbounded */
};

/* Checks the server (a short synchronous PING), then connects o's transport on the loop
 * base. 0 or -1 with err set. */
int redis_out_open(struct output *o, struct event_base *base, const struct redis_out_cfg *cfg,
                   char *err, size_t errlen);

#endif
