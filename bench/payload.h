/* bench/payload.h: the datagram payloads a sender cycles through: a synthetic pattern of a
 * given size, one file's bytes, or one payload per line of a file (syslog lines). Loaded
 * once, read-only afterwards. */
#ifndef BENCH_PAYLOAD_H
#define BENCH_PAYLOAD_H

#include <stddef.h>

#define PAYLOAD_MAX_FILE (64u * 1024u * 1024u) /* bound on a --payload file */

struct payload {
    unsigned char *buf; /* all payload bytes, owned */
    size_t *off;        /* n offsets into buf, owned */
    size_t *len;        /* n lengths, owned */
    size_t n;           /* number of payloads, at least 1 once loaded */
    size_t minlen, maxlen;
};

/* size bytes of a repeating pattern. 0 or -1 (out of memory) with err set. */
int payload_pattern(struct payload *p, size_t size, char *err, size_t errlen);
/* The file's bytes as one payload, or with lines != 0 each non-empty line (without its
 * "\n" or "\r\n") as one payload. Each payload must be 1..BENCH_MAX_DGRAM bytes.
 * 0, or -1 with err set ("payload.txt: No such file or directory (ENOENT)"). */
int payload_load(struct payload *p, const char *path, int lines, char *err, size_t errlen);
void payload_free(struct payload *p);

#endif
