/* daemon/engine_state.c: the engine state file of engine_state.h. The file is text:
 *   engine_id=80001f88...\nboots=N\nstarted=S\nprocess=PID:STARTTIME\n
 * "process" names the process that last raised boots (its pid and its start time in
 * /proc/self/stat), so that the loads of one process raise it once. Owns nothing past a
 * call: the lock's descriptor is closed before returning. */
#include "engine_state.h"
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* "PID:STARTTIME" of this process (field 22 of /proc/self/stat). */
static void process_tag(char *out, size_t cap)
{
    unsigned long long start = 0;
    if (stats_process_start_ticks(&start) != 0)
        start = 0;
    snprintf(out, cap, "%ld:%llu", (long)getpid(), start);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads the file's fields; 1 when it held an engine ID. */
static int read_state(FILE *f, struct engine_state *st, char *process, size_t cap)
{
    char line[256];
    int have = 0;
    process[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "engine_id=", 10) == 0) {
            const char *h = line + 10;
            size_t n = 0;
            while (h[0] && h[1] && n < sizeof st->id && hexval(h[0]) >= 0 &&
                   hexval(h[1]) >= 0) {
                st->id[n++] = (uint8_t)(hexval(h[0]) << 4 | hexval(h[1]));
                h += 2;
            }
            st->id_len = n;
            have = n >= 5 && !h[0];
        } else if (strncmp(line, "boots=", 6) == 0) {
            st->boots = (uint32_t)strtoul(line + 6, NULL, 10);
        } else if (strncmp(line, "started=", 8) == 0) {
            st->started = (int64_t)strtoll(line + 8, NULL, 10);
        } else if (strncmp(line, "process=", 8) == 0) {
            size_t k = strnlen(line + 8, cap - 1);
            memcpy(process, line + 8, k);
            process[k] = '\0';
        }
    }
    return have;
}

static int write_state(const char *path, const struct engine_state *st, const char *process,
                       char *err, size_t errlen)
{
    char tmp[4096], hex[65];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    for (size_t i = 0; i < st->id_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", st->id[i]);
    hex[2 * st->id_len] = '\0';
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    char text[512];
    int n = snprintf(text, sizeof text, "engine_id=%s\nboots=%" PRIu32 "\nstarted=%" PRId64
                     "\nprocess=%s\n", hex, st->boots, st->started, process);
    if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        goto fail;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0)
        goto fail;
    return 0;

fail:
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return -1;
}

int engine_state_load(const char *path, int have_id, struct engine_state *st, char *err,
                      size_t errlen)
{
    char lock[4096], process[64], theirs[64] = "";
    if ((size_t)snprintf(lock, sizeof lock, "%s.lock", path) >= sizeof lock) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX) != 0) {
        snprintf(err, errlen, "cannot lock %s: %s", lock, strerror(errno));
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    process_tag(process, sizeof process);
    struct engine_state file = {.boots = 0};
    int had = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        had = read_state(f, &file, theirs, sizeof theirs);
        fclose(f);
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        close(lfd);
        return -1;
    }
    int same_id = had && (!have_id || (file.id_len == st->id_len &&
                                       memcmp(file.id, st->id, st->id_len) == 0));
    int rc = 0;
    if (same_id && strcmp(theirs, process) == 0) {       /* this process raised it already */
        *st = file;
    } else {
        if (!have_id && had) {
            memcpy(st->id, file.id, file.id_len);
            st->id_len = file.id_len;
        } else if (!have_id) {
            static const uint8_t prefix[] = {0x80, 0x00, 0x1f, 0x88, 0x80};
            memcpy(st->id, prefix, sizeof prefix);
            if (getrandom(st->id + sizeof prefix, 8, 0) != 8) {
                snprintf(err, errlen, "getrandom: %s", strerror(errno));
                close(lfd);
                return -1;
            }
            st->id_len = sizeof prefix + 8;
        }
        /* RFC 3414 §2.2.2: boots count the engine's starts, 1 for a new engine ID */
        st->boots = same_id && file.boots < INT32_MAX - 1 ? file.boots + 1 : 1;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        st->started = ts.tv_sec;
        rc = write_state(path, st, process, err, errlen);
    }
    close(lfd);
    return rc;
}
