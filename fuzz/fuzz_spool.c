/* fuzz/fuzz_spool.c: arbitrary bytes as a spool segment left on disk by an earlier run
 * (daemon/output/spool.c). First through spool_parse frame by frame: every record it
 * accepts lies inside the input and frames back to the very same bytes. Then as a real
 * segment file in a temporary folder, replayed with spool_open / spool_next: the records
 * replayed are exactly those spool_parse accepted before the first bad frame, and the cut
 * covers the rest. Aborts when a promise the replay relies on breaks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The records spool_parse accepts from the start of data, up to the first bad frame. */
static size_t parse_all(const uint8_t *data, size_t size, size_t *good_bytes)
{
    size_t off = 0, n = 0;
    for (;;) {
        struct spool_rec r;
        size_t used = 0;
        if (off >= size || spool_parse(data + off, size - off, &r, &used) != 1)
            break;
        if (used > size - off || used != spool_frame_size(&r))
            abort();
        const uint8_t *lo = data + off, *hi = data + off + used;
        if ((const uint8_t *)r.id < lo || (const uint8_t *)r.id + r.id_len > hi ||
            (const uint8_t *)r.subject + r.subject_len > hi || r.data + r.len != hi)
            abort();
        uint8_t *again = malloc(used);
        if (!again)
            abort();
        spool_frame(&r, again);
        if (memcmp(again, lo, used) != 0)
            abort();
        free(again);
        off += used;
        n++;
    }
    *good_bytes = off;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t good = 0, n = parse_all(data, size, &good);
    char dir[] = "/tmp/fuzz_spool.XXXXXX";
    if (!mkdtemp(dir))
        return 0;
    char path[64];
    snprintf(path, sizeof path, "%s/0000000000000001.seg", dir);
    FILE *f = fopen(path, "wb");
    if (f) {
        if (size)
            fwrite(data, 1, size, f);
        fclose(f);
    }
    char err[256];
    struct spool *s = spool_open(dir, UINT64_C(1) << 40, err, sizeof err);
    if (s) {
        struct spool_rec r;
        uint64_t cut = 0, total_cut = 0;
        size_t got = 0;
        while (spool_next(s, &r, &cut, 0) == 1)
            got++;
        total_cut += cut;
        if (got != n || total_cut != size - good)
            abort();
        spool_release(s, 0);
        if (spool_pending(s) || spool_bytes(s) != 0)
            abort();
        spool_close(s);
    }
    unlink(path);
    rmdir(dir);
    return 0;
}
