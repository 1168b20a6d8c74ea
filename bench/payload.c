/* bench/payload.c: loading the payloads of payload.h; every length is bounded by
 * PAYLOAD_MAX_FILE and BENCH_MAX_DGRAM. */
#include "payload.h"
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int payload_alloc_index(struct payload *p, size_t n)
{
    p->off = calloc(n, sizeof *p->off);
    p->len = calloc(n, sizeof *p->len);
    return p->off && p->len ? 0 : -1;
}

int payload_pattern(struct payload *p, size_t size, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (size == 0 || size > BENCH_MAX_DGRAM) {
        snprintf(err, errlen, "size %zu: must be 1..%u", size, BENCH_MAX_DGRAM);
        return -1;
    }
    p->buf = malloc(size);
    if (!p->buf || payload_alloc_index(p, 1) < 0)
        goto nomem;
    for (size_t i = 0; i < size; i++)
        p->buf[i] = (unsigned char)('a' + i % 26);
    p->n = 1;
    p->len[0] = size;
    p->minlen = p->maxlen = size;
    return 0;
nomem:
    payload_free(p);
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* Reads at most PAYLOAD_MAX_FILE bytes of path into a new buffer. */
static unsigned char *read_file(const char *path, size_t *lenp, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;

    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s (%s)", path, strerror(e), bench_errname(e));
        return NULL;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            unsigned char *nb;
            if (cap >= PAYLOAD_MAX_FILE) {
                if (fread(buf + len, 1, 1, f) == 0)
                    break; /* exactly at the limit */
                snprintf(err, errlen, "%s: larger than %u bytes", path, PAYLOAD_MAX_FILE);
                goto fail;
            }
            cap = cap ? cap * 2 : 65536;
            nb = realloc(buf, cap + 1); /* + 1: room to probe past the limit */
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        snprintf(err, errlen, "%s: %s (%s)", path, strerror(e), bench_errname(e));
        goto fail;
    }
    fclose(f);
    *lenp = len;
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

int payload_load(struct payload *p, const char *path, int lines, char *err, size_t errlen)
{
    size_t len, n = 0;

    memset(p, 0, sizeof *p);
    p->buf = read_file(path, &len, err, errlen);
    if (!p->buf)
        return -1;
    if (!lines) {
        if (len == 0 || len > BENCH_MAX_DGRAM) {
            snprintf(err, errlen, "%s: %zu bytes: a payload must be 1..%u", path, len,
                     BENCH_MAX_DGRAM);
            goto fail;
        }
        if (payload_alloc_index(p, 1) < 0)
            goto nomem;
        p->n = 1;
        p->len[0] = len;
        p->minlen = p->maxlen = len;
        return 0;
    }
    /* Upper bound on the number of lines, then one pass that records each. */
    for (size_t i = 0; i < len; i++)
        n += p->buf[i] == '\n';
    if (payload_alloc_index(p, n + 1) < 0)
        goto nomem;
    for (size_t start = 0, lineno = 1; start < len; lineno++) {
        const unsigned char *nl = memchr(p->buf + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - p->buf) : len, l = end - start;
        if (l > 0 && p->buf[start + l - 1] == '\r')
            l--;
        if (l > BENCH_MAX_DGRAM) {
            snprintf(err, errlen, "%s:%zu: line of %zu bytes, above %u", path, lineno, l,
                     BENCH_MAX_DGRAM);
            goto fail;
        }
        if (l > 0) {
            p->off[p->n] = start;
            p->len[p->n] = l;
            if (p->n == 0 || l < p->minlen)
                p->minlen = l;
            if (l > p->maxlen)
                p->maxlen = l;
            p->n++;
        }
        start = end + 1;
    }
    if (p->n == 0) {
        snprintf(err, errlen, "%s: no non-empty line", path);
        goto fail;
    }
    return 0;
nomem:
    snprintf(err, errlen, "%s: out of memory", path);
fail:
    payload_free(p);
    return -1;
}

void payload_free(struct payload *p)
{
    free(p->buf);
    free(p->off);
    free(p->len);
    memset(p, 0, sizeof *p);
}
