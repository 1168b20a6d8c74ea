/* daemon/codec/syslog_parse.h: the syslog datagram parser in C (no Lua): RFC 5424, RFC 3164 and
 * the variants devices send, read into one flat record of spans over the datagram. It is a
 * byte-for-byte port of scripts/lib/syslog_parse.lua (the reference; its header documents
 * every field): the same input gives the same record, which fuzz/fuzz_syslog_c.c checks.
 * Bounded: every read is checked against the datagram's end, no recursion, no allocation,
 * linear time in the input. */
#ifndef LUADGRAM_SYSLOG_PARSE_H
#define LUADGRAM_SYSLOG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum syslog_format { SYSLOG_UNKNOWN, SYSLOG_RFC5424, SYSLOG_RFC3164 };

/* rec.error: the first problem found. Those marked @ name a byte (rec.error_at, 1-based). */
enum syslog_error {
    SYSLOG_OK,
    SYSLOG_ERR_EMPTY,        /* "empty message" */
    SYSLOG_ERR_BAD_PRI,      /* "bad pri" */
    SYSLOG_ERR_PRI_RANGE,    /* "pri out of range" */
    SYSLOG_ERR_TRUNCATED,    /* "truncated header" */
    SYSLOG_ERR_HOSTNAME,     /* @ "bad HOSTNAME at byte N" */
    SYSLOG_ERR_APP_NAME,     /* @ "bad APP-NAME at byte N" */
    SYSLOG_ERR_PROCID,       /* @ "bad PROCID at byte N" */
    SYSLOG_ERR_MSGID,        /* @ "bad MSGID at byte N" */
    SYSLOG_ERR_SD,           /* @ "bad structured data at byte N" */
    SYSLOG_ERR_UTF8_MSG,     /* @ "invalid UTF-8 in MSG at byte N" */
    SYSLOG_ERR_UTF8_SD,      /* @ "invalid UTF-8 in structured data at byte N" */
    SYSLOG_ERR_TIMESTAMP,    /* @ "bad TIMESTAMP at byte N" */
};

/* Bytes data[off, off + len) of the datagram; absent fields have len 0 and their has_ flag
 * false (every present string field is non-empty, except msg). */
struct syslog_span {
    size_t off, len;
};

enum { SYSLOG_TS_MAX = 48 }; /* the longest timestamp text the parser builds, with NUL */

struct syslog_rec {
    const uint8_t *data;     /* the datagram (not owned) and its length */
    size_t len;
    uint8_t format;          /* enum syslog_format */
    uint8_t error;           /* enum syslog_error */
    uint8_t facility;        /* 0..23; 1 (user) without a valid PRI */
    uint8_t severity;        /* 0..7; 5 (notice) without a valid PRI */
    int16_t pri;             /* 0..191, or -1 when the datagram has no valid PRI */
    size_t error_at;         /* the byte an error names (1-based), else 0 */
    bool bom;                /* a UTF-8 BOM stood before MSG (not part of msg) */
    bool has_timestamp;      /* timestamp: ts_text[0 .. ts_len) (copied or built) */
    bool has_time;           /* time: time_i, or time_f when time_is_float */
    bool time_is_float;      /* the timestamp had a fraction */
    bool has_hostname, has_app_name, has_procid, has_msgid;
    bool has_sd;             /* sd: the STRUCTURED-DATA text, '[' .. last ']' */
    bool sd_lenient;         /* sd has a value unquoted or after "= " (read leniently) */
    bool has_seq;            /* Cisco sequence number */
    bool has_cisco;          /* "%FACILITY-SEV-MNEMONIC:" */
    uint8_t cisco_severity;  /* 0..9 */
    uint8_t ts_len;
    int64_t time_i;
    double time_f;
    int64_t seq;
    struct syslog_span hostname, app_name, procid, msgid, sd, msg;
    struct syslog_span cisco_facility, cisco_mnemonic;
    char ts_text[SYSLOG_TS_MAX];
};

/* Parses data[0, len) received at epoch second `now` (the year of "Mmm dd" timestamps;
 * within SYSLOG_NOW_MAX of the epoch, as the Lua parser takes it). has_tz: tz_offset
 * (seconds east of UTC, -86400 < tz < 86400) is the zone of timestamps without one. Never
 * fails: rec always describes the datagram (see syslog_parse.lua). */
#define SYSLOG_NOW_MAX INT64_C(1000000000000)
void syslog_parse(struct syslog_rec *rec, const uint8_t *data, size_t len, int64_t now,
                  bool has_tz, int32_t tz_offset);

/* The text of rec->error ("bad pri", "bad HOSTNAME at byte 9", ...) into buf (NUL-ended,
 * cut to size); returns its length. "" for SYSLOG_OK. */
size_t syslog_error_text(const struct syslog_rec *rec, char *buf, size_t size);

/* Walks the STRUCTURED-DATA at data[p - 1] (p 1-based, the '['): one item per call. The
 * parser validates with it; readers walk rec->sd again (it is known good then). An
 * unescaped ']' in a quoted value is an ERROR; spaces after '=' and unquoted values are
 * read (item.lenient). */
enum syslog_sd_kind { SYSLOG_SD_ELEMENT, SYSLOG_SD_PARAM, SYSLOG_SD_END, SYSLOG_SD_ERROR };
struct syslog_sd_iter {
    const uint8_t *data;
    size_t len;
    size_t p;                 /* 1-based position of the next byte to read */
    uint8_t state;            /* private */
};
struct syslog_sd_item {
    struct syslog_span id;    /* ELEMENT: the SD-ID */
    struct syslog_span name;  /* PARAM: its name and value as sent (between the quotes, or
                               * unquoted: up to ' ' or ']') */
    struct syslog_span value;
    bool escaped;             /* PARAM: the value holds '\' (unescape with syslog_sd_unescape) */
    bool lenient;             /* PARAM: sent unquoted or with spaces after '=' */
    size_t at;                /* END: the 1-based index after the last ']'; ERROR: the byte */
};
void syslog_sd_begin(struct syslog_sd_iter *it, const uint8_t *data, size_t len, size_t p);
enum syslog_sd_kind syslog_sd_next(struct syslog_sd_iter *it, struct syslog_sd_item *item);

/* Unescapes a PARAM value (\" \\ \] give the second byte; any other '\' stays) into out,
 * which holds at least v.len bytes; returns the length. */
size_t syslog_sd_unescape(const uint8_t *data, struct syslog_span v, uint8_t *out);

/* Strict UTF-8 (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF), as
 * Lua's utf8.len. Returns len when s[0, len) is valid, else the offset of the first byte
 * that does not start a valid sequence. */
size_t syslog_utf8_check(const uint8_t *s, size_t len);
/* The length of the valid UTF-8 sequence at s[0, len) (1..4), or 0 when s[0] does not start
 * one. */
size_t syslog_utf8_seq(const uint8_t *s, size_t len);

extern const char *const syslog_facility_names[24];
extern const char *const syslog_severity_names[8];

#endif
