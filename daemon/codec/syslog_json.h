/* daemon/codec/syslog_json.h: one syslog record (syslog_parse.h) as one JSON object, the line
 * scripts/syslog.lua writes, in C: the keys and values lua-cjson gave the Lua handler
 * (numbers as "%.14g", facility/severity as names, sd elements without parameters have no
 * "params"), every string valid UTF-8 (a byte that does not start a valid sequence reads
 * U+FFFD) with '"', '\' and control characters escaped. No Lua, no allocation: the caller
 * gives a buffer of at least syslog_json_bound() bytes. */
#ifndef LUADGRAM_SYSLOG_JSON_H
#define LUADGRAM_SYSLOG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syslog_parse.h"

/* What the line holds beside the record. Strings are any bytes (made valid UTF-8). */
struct syslog_json_extra {
    const char *listener;       /* "listener" (NULL: left out) */
    size_t listener_len;
    double received;            /* "received": epoch seconds */
    const char *peer;           /* "peer" (NULL: left out) */
    size_t peer_len;
    const char *dst;            /* "dst" (NULL: left out) */
    size_t dst_len;
    bool has_creds;             /* "creds": { "pid", "uid", "gid" } (each when has_) */
    bool has_pid, has_uid, has_gid;
    double pid, uid, gid;
    bool raw_b64;               /* "raw_b64": the datagram's bytes, base64 */
};

/* The most bytes syslog_json_line can write for rec and extra. */
size_t syslog_json_bound(const struct syslog_rec *rec, const struct syslog_json_extra *extra);

/* Writes the object (no newline) into out[0, size); returns its length, or 0 when size is
 * too small (never with size >= syslog_json_bound()). */
size_t syslog_json_line(const struct syslog_rec *rec, const struct syslog_json_extra *extra,
                        char *out, size_t size);

/* A number as lua-cjson writes it with encode_number_precision(14): "%.14g", and "null"
 * for NaN and infinities. buf holds at least 32 bytes; returns the length. */
size_t syslog_json_number(char *buf, double v);

#endif
