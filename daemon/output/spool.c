/* daemon/output/spool.c: an output's local spool. It owns the folder's segment files
 * ("<16 hex digits>.seg", replayed in name order), the descriptor of the segment being
 * written and of the one being read, the write buffer (frames gathered for one write(),
 * flushed by the output after each batch and before any read, sync or close), the read
 * buffer, and one thread that runs fdatasync so that the loop never waits for the disk.
 * Frames: spool.h. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SPOOL_SEG_MAX (8u << 20)   /* a segment rolls past this (or max_bytes / 4) */
#define SPOOL_WBUF (64u << 10)     /* frames gathered for one write() */

struct spool_seg {
    uint64_t num;
    uint64_t size;
    uint64_t ticket;   /* the caller's ticket when it was read to its end */
    int ended;         /* read to its end */
};

struct spool {
    char *dir;
    uint64_t max_bytes, seg_max, bytes;
    struct spool_seg *segs;    /* oldest first; the last may be the one being written */
    size_t nsegs, cap;
    size_t head;               /* index of the segment being read */
    uint64_t next_num;
    int wfd;                   /* the last segment's, or -1 */
    int rfd;                   /* segs[head]'s, or -1 */
    uint64_t roff;
    uint8_t *rbuf;
    size_t rcap;
    /* frames appended and not yet written: counted in the segment's size and in bytes */
    uint8_t *wbuf;
    size_t wlen;
    uint64_t wrecs;
    uint64_t lost;             /* records a failed write lost, not yet taken (spool_lost) */
    char lost_why[200];
    /* the sync thread: syncs `sync_fd` (a dup, closed by the thread) when asked */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int sync_fd;
    int stopping;
};

static uint32_t spool_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void spool_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int spool_parse(const uint8_t *buf, size_t len, struct spool_rec *r, size_t *used)
{
    if (len < SPOOL_HEADER)
        return memcmp(buf, SPOOL_MAGIC, len < 4 ? len : 4) == 0 ? 0 : -1;
    if (memcmp(buf, SPOOL_MAGIC, 4) != 0)
        return -1;
    uint32_t body = spool_le32(buf + 4), crc = spool_le32(buf + 8);
    if (body < 3 || body > SPOOL_MAX_BODY)
        return -1;
    if (len - SPOOL_HEADER < body)
        return 0;
    const uint8_t *b = buf + SPOOL_HEADER;
    if ((uint32_t)crc32(0L, b, body) != crc)
        return -1;
    size_t id_len = b[0];
    if (id_len == 0 || 1 + id_len + 2 > body)
        return -1;
    size_t subj_len = (size_t)b[1 + id_len] | (size_t)b[2 + id_len] << 8;
    if (3 + id_len + subj_len > body)
        return -1;
    r->id = (const char *)b + 1;
    r->id_len = id_len;
    r->subject = (const char *)b + 3 + id_len;
    r->subject_len = subj_len;
    r->data = b + 3 + id_len + subj_len;
    r->len = body - 3 - id_len - subj_len;
    *used = SPOOL_HEADER + body;
    return 1;
}

size_t spool_frame_size(const struct spool_rec *r)
{
    return SPOOL_HEADER + 3 + r->id_len + r->subject_len + r->len;
}

void spool_frame(const struct spool_rec *r, uint8_t *out)
{
    uint8_t *b = out + SPOOL_HEADER;
    size_t body = 3 + r->id_len + r->subject_len + r->len;
    b[0] = (uint8_t)r->id_len;
    memcpy(b + 1, r->id, r->id_len);
    b[1 + r->id_len] = (uint8_t)r->subject_len;
    b[2 + r->id_len] = (uint8_t)(r->subject_len >> 8);
    memcpy(b + 3 + r->id_len, r->subject, r->subject_len);
    if (r->len)
        memcpy(b + 3 + r->id_len + r->subject_len, r->data, r->len);
    memcpy(out, SPOOL_MAGIC, 4);
    spool_put32(out + 4, (uint32_t)body);
    spool_put32(out + 8, (uint32_t)crc32(0L, b, (uInt)body));
}

static void *spool_sync_main(void *arg)
{
    struct spool *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->sync_fd < 0 && !s->stopping)
            pthread_cond_wait(&s->cond, &s->lock);
        if (s->sync_fd < 0)
            break;
        int fd = s->sync_fd;
        s->sync_fd = -1;
        pthread_mutex_unlock(&s->lock);
        fdatasync(fd);
        close(fd);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void spool_end_write(struct spool *s);

/* Writes the buffered frames. A failed or short write loses them: the segment is cut back
 * to what was on disk before, they are counted in lost, and the segment ends. */
void spool_flush(struct spool *s)
{
    if (s->wlen == 0 || s->wfd < 0)
        return;
    ssize_t w = write(s->wfd, s->wbuf, s->wlen);
    if (w == (ssize_t)s->wlen) {
        s->wlen = 0;
        s->wrecs = 0;
        return;
    }
    int e = errno;
    struct spool_seg *seg = &s->segs[s->nsegs - 1];
    uint64_t before = seg->size - s->wlen;
    if (w > 0 && ftruncate(s->wfd, (off_t)before) != 0)
        before += (uint64_t)w; /* not cut: the reader cuts the torn frame */
    s->bytes -= seg->size - before;
    seg->size = before;
    s->lost += s->wrecs;
    snprintf(s->lost_why, sizeof s->lost_why, "spool %s: write: %s", s->dir,
             w < 0 ? strerror(e) : "short");
    s->wlen = 0;
    s->wrecs = 0;
    spool_end_write(s);
}

uint64_t spool_lost(struct spool *s, char *why, size_t whylen)
{
    uint64_t n = s->lost;
    if (n)
        snprintf(why, whylen, "%s", s->lost_why);
    s->lost = 0;
    return n;
}

void spool_sync(struct spool *s)
{
    if (s->wfd < 0)
        return;
    spool_flush(s);
    if (s->wfd < 0)
        return;
    pthread_mutex_lock(&s->lock);
    if (s->sync_fd < 0) { /* else a sync is already asked for: it covers these bytes too */
        s->sync_fd = dup(s->wfd);
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
}

static void spool_seg_path(const struct spool *s, uint64_t num, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%016" PRIx64 ".seg", s->dir, num);
}

static int spool_seg_cmp(const void *a, const void *b)
{
    const struct spool_seg *x = a, *y = b;
    return x->num < y->num ? -1 : x->num > y->num;
}

static int spool_add_seg(struct spool *s, uint64_t num, uint64_t size)
{
    if (s->nsegs == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct spool_seg *n = realloc(s->segs, cap * sizeof *n);
        if (!n)
            return -1;
        s->segs = n;
        s->cap = cap;
    }
    s->segs[s->nsegs++] = (struct spool_seg){.num = num, .size = size};
    return 0;
}

/* Folders: each path component created when missing. */
static int spool_mkdirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return ENAMETOOLONG;
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0750) != 0 && errno != EEXIST)
                return errno;
            *p = '/';
        }
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return errno;
    return 0;
}

struct spool *spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen)
{
    int e = spool_mkdirs(dir);
    if (e) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(e));
        return NULL;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        return NULL;
    }
    struct spool *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir)) || !(s->wbuf = malloc(SPOOL_WBUF))) {
        if (s)
            free(s->dir);
        free(s);
        closedir(d);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->max_bytes = max_bytes;
    s->seg_max = max_bytes / 4 < SPOOL_SEG_MAX ? max_bytes / 4 : SPOOL_SEG_MAX;
    if (s->seg_max < 4096)
        s->seg_max = 4096;
    s->wfd = s->rfd = s->sync_fd = -1;
    struct dirent *de;
    int failed = 0;
    while ((de = readdir(d)) && !failed) {
        char *end;
        if (strlen(de->d_name) != 20 || strcmp(de->d_name + 16, ".seg") != 0)
            continue;
        uint64_t num = strtoull(de->d_name, &end, 16);
        if (end != de->d_name + 16)
            continue;
        char path[4200];
        struct stat st;
        spool_seg_path(s, num, path, sizeof path);
        if (stat(path, &st) != 0)
            continue;
        failed = spool_add_seg(s, num, (uint64_t)st.st_size) != 0;
        s->bytes += (uint64_t)st.st_size;
        if (num >= s->next_num)
            s->next_num = num + 1;
    }
    closedir(d);
    if (s->nsegs)
        qsort(s->segs, s->nsegs, sizeof *s->segs, spool_seg_cmp);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (failed || pthread_create(&s->thread, NULL, spool_sync_main, s) != 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s->segs);
        free(s->wbuf);
        free(s->dir);
        free(s);
        snprintf(err, errlen, "spool %s: out of memory or threads", dir);
        return NULL;
    }
    return s;
}

/* Closes the segment being written: it becomes one more segment to read. */
static void spool_end_write(struct spool *s)
{
    if (s->wfd < 0)
        return;
    spool_sync(s); /* flushes first */
    if (s->wfd < 0)
        return;    /* the flush failed and ended it */
    close(s->wfd);
    s->wfd = -1;
}

int spool_append(struct spool *s, const struct spool_rec *r, char *err, size_t errlen)
{
    size_t n = spool_frame_size(r);
    if (s->bytes + n > s->max_bytes)
        return 1;
    if (s->wfd >= 0 && s->segs[s->nsegs - 1].size + n > s->seg_max)
        spool_end_write(s);
    if (s->wfd < 0) {
        char path[4200];
        spool_seg_path(s, s->next_num, path, sizeof path);
        s->wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
        if (s->wfd < 0 || spool_add_seg(s, s->next_num, 0) != 0) {
            snprintf(err, errlen, "spool %s: %s", path, strerror(errno));
            if (s->wfd >= 0)
                close(s->wfd);
            s->wfd = -1;
            return -1;
        }
        s->next_num++;
    }
    struct spool_seg *seg = &s->segs[s->nsegs - 1];
    if (s->wlen + n > SPOOL_WBUF)
        spool_flush(s);
    if (s->wfd < 0) { /* the flush failed: it ended the segment and counted its records */
        snprintf(err, errlen, "%s", s->lost_why);
        return -1;
    }
    if (n <= SPOOL_WBUF) {
        spool_frame(r, s->wbuf + s->wlen);
        s->wlen += n;
        s->wrecs++;
        seg->size += n;
        s->bytes += n;
        return 0;
    }
    uint8_t *frame = malloc(n); /* larger than the buffer (which is empty now): at once */
    if (!frame) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    spool_frame(r, frame);
    ssize_t w = write(s->wfd, frame, n);
    int e = errno;
    free(frame);
    if (w != (ssize_t)n) {
        /* a short write leaves a torn frame: cut it, end this segment */
        if (w > 0 && ftruncate(s->wfd, (off_t)seg->size) != 0)
            seg->size += (uint64_t)w;
        spool_end_write(s);
        snprintf(err, errlen, "spool %s: write: %s", s->dir, w < 0 ? strerror(e) : "short");
        return -1;
    }
    seg->size += n;
    s->bytes += n;
    return 0;
}

static int spool_open_head(struct spool *s)
{
    char path[4200];
    spool_seg_path(s, s->segs[s->head].num, path, sizeof path);
    s->rfd = open(path, O_RDWR | O_CLOEXEC);
    s->roff = 0;
    return s->rfd >= 0 ? 0 : -1;
}

/* The head segment is read: it waits for its ticket, the reader moves on. */
static void spool_head_done(struct spool *s, uint64_t ticket)
{
    if (s->rfd >= 0)
        close(s->rfd);
    s->rfd = -1;
    s->roff = 0;
    s->segs[s->head].ticket = ticket;
    s->segs[s->head].ended = 1;
    s->head++;
}

static int spool_reserve(struct spool *s, size_t n)
{
    if (n <= s->rcap)
        return 0;
    uint8_t *b = realloc(s->rbuf, n);
    if (!b)
        return -1;
    s->rbuf = b;
    s->rcap = n;
    return 0;
}

int spool_next(struct spool *s, struct spool_rec *r, uint64_t *cut, uint64_t ticket)
{
    *cut = 0;
    spool_flush(s); /* the reader reads files */
    while (s->head < s->nsegs) {
        struct spool_seg *seg = &s->segs[s->head];
        int writing = s->wfd >= 0 && s->head == s->nsegs - 1;
        if (s->roff >= seg->size) {
            if (writing)
                spool_end_write(s); /* caught up with the writer: next append starts anew */
            spool_head_done(s, ticket);
            continue;
        }
        if (s->rfd < 0 && spool_open_head(s) != 0) {
            *cut += seg->size;
            spool_head_done(s, ticket);
            continue;
        }
        size_t avail = (size_t)(seg->size - s->roff), want = SPOOL_HEADER;
        if (spool_reserve(s, SPOOL_HEADER) != 0)
            return 0;
        int rc = 0;
        size_t used = 0;
        if (avail >= SPOOL_HEADER &&
            pread(s->rfd, s->rbuf, SPOOL_HEADER, (off_t)s->roff) == SPOOL_HEADER) {
            uint32_t body = spool_le32(s->rbuf + 4);
            want = body <= SPOOL_MAX_BODY ? SPOOL_HEADER + body : SPOOL_HEADER;
            if (want > avail)
                want = avail;
            if (spool_reserve(s, want) != 0)
                return 0;
            if (pread(s->rfd, s->rbuf, want, (off_t)s->roff) == (ssize_t)want)
                rc = spool_parse(s->rbuf, want, r, &used);
        }
        if (rc == 1) {
            s->roff += used;
            return 1;
        }
        /* torn (0) or corrupt (-1): the rest of this segment is cut */
        *cut += seg->size - s->roff;
        if (ftruncate(s->rfd, (off_t)s->roff) == 0) {
            s->bytes -= seg->size - s->roff;
            seg->size = s->roff;
        }
        if (writing)
            spool_end_write(s);
        spool_head_done(s, ticket);
    }
    return 0;
}

void spool_release(struct spool *s, uint64_t done)
{
    size_t n = 0;
    while (n < s->head && s->segs[n].ended && s->segs[n].ticket <= done) {
        char path[4200];
        spool_seg_path(s, s->segs[n].num, path, sizeof path);
        unlink(path);
        s->bytes -= s->segs[n].size;
        n++;
    }
    if (n) {
        memmove(s->segs, s->segs + n, (s->nsegs - n) * sizeof *s->segs);
        s->nsegs -= n;
        s->head -= n;
    }
}

int spool_pending(const struct spool *s)
{
    return s->head < s->nsegs && !(s->head == s->nsegs - 1 && s->roff >= s->segs[s->head].size);
}

uint64_t spool_bytes(const struct spool *s)
{
    return s->bytes;
}

void spool_close(struct spool *s)
{
    if (!s)
        return;
    spool_flush(s);
    if (s->wfd >= 0)
        fdatasync(s->wfd);
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    if (s->sync_fd >= 0)
        close(s->sync_fd);
    if (s->wfd >= 0)
        close(s->wfd);
    if (s->rfd >= 0)
        close(s->rfd);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->rbuf);
    free(s->wbuf);
    free(s->segs);
    free(s->dir);
    free(s);
}
