/* daemon/output/spool.h: the local spool of an output: records that could not be published
 * (bus down or slow, in-flight full) wait here, on disk, in append-only segment files, until
 * they are replayed in order. One spool per (output, worker); used only on the output's
 * thread. */
#ifndef LUADGRAM_SPOOL_H
#define LUADGRAM_SPOOL_H

#include <stddef.h>
#include <stdint.h>

/* A record's on-disk frame: "LDS1", u32 body length, u32 CRC-32 of the body (little endian),
 * then the body: u8 id length, id, u16 subject length, subject, data (the rest). */
#define SPOOL_MAGIC "LDS1"
#define SPOOL_HEADER 12
#define SPOOL_MAX_BODY (16u << 20)   /* a body longer than this is corrupt */

struct spool_rec {
    const char *id;
    size_t id_len;          /* 1..255 */
    const char *subject;
    size_t subject_len;     /* 0..65535 */
    const uint8_t *data;
    size_t len;
};

/* Parses one frame at the start of buf[0..len). Returns 1 and fills r (pointing into buf)
 * and *used; 0 when buf ends before the frame does (a torn tail at end of file); -1 when the
 * frame is corrupt (bad magic, length out of bounds, checksum, inner lengths). Never reads
 * past len. */
int spool_parse(const uint8_t *buf, size_t len, struct spool_rec *r, size_t *used);

/* Writes r's frame into out (room for spool_frame_size(r) bytes). */
size_t spool_frame_size(const struct spool_rec *r);
void spool_frame(const struct spool_rec *r, uint8_t *out);

struct spool;

/* Opens (creating) the folder dir, finds the segments a previous process left there (to be
 * replayed first) and counts their bytes. NULL with err set on failure. */
struct spool *spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen);
/* Appends r. 0; 1 when it would pass max_bytes (the caller drops and counts); -1 on a write
 * error (err set). The frame is gathered in the write buffer (64 KiB) and reaches the page
 * cache at spool_flush (or when the buffer is full, or before a read, a sync or the close);
 * spool_sync makes it durable. */
int spool_append(struct spool *s, const struct spool_rec *r, char *err, size_t errlen);
/* Writes the gathered frames. A write that fails loses them: see spool_lost. */
void spool_flush(struct spool *s);
/* Records lost by failed writes of gathered frames since the last call (why set when > 0). */
uint64_t spool_lost(struct spool *s, char *why, size_t whylen);
/* The oldest unread record: 1 and r (valid until the next call on s), 0 when none is left.
 * A corrupt or torn frame ends its segment (the file is cut there; *cut set to the bytes
 * lost). A segment read to its end keeps `ticket` (the caller's count of records sent so
 * far) and stays on disk until spool_release. */
int spool_next(struct spool *s, struct spool_rec *r, uint64_t *cut, uint64_t ticket);
/* done: the caller's count of sent records that reached a final state (acknowledged, or
 * appended again). Segments read to their end whose ticket is <= done are unlinked. */
void spool_release(struct spool *s, uint64_t done);
/* 1 if a record is waiting. */
int spool_pending(const struct spool *s);
/* Bytes on disk (all segment files). */
uint64_t spool_bytes(const struct spool *s);
/* Asks the spool's sync thread to fdatasync the segment being written (never blocks). */
void spool_sync(struct spool *s);
/* Syncs, stops the sync thread, closes and frees. Unread records stay for the next open. */
void spool_close(struct spool *s);

#endif
