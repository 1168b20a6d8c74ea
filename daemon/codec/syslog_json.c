/* daemon/codec/syslog_json.c: the JSON line of one syslog record (see syslog_json.h): a bounded
 * writer (every append checks the room left), a JSON string writer that validates UTF-8 as
 * it escapes, lua-cjson's number format, base64, and the record's keys in one order. */
#include "syslog_json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The output: out[0, len) written; `full` once an append did not fit (the line is void). */
struct jb {
    char *out;
    size_t len, size;
    bool full;
};

static bool jb_room(struct jb *b, size_t n)
{
    if (b->full || n > b->size - b->len) {
        b->full = true;
        return false;
    }
    return true;
}

static void jb_raw(struct jb *b, const void *s, size_t n)
{
    if (!jb_room(b, n))
        return;
    memcpy(b->out + b->len, s, n);
    b->len += n;
}

#define JB_LIT(b, lit) jb_raw((b), (lit), sizeof(lit) - 1)

/* How each byte is written inside a JSON string: 0 as it is, 1 escaped, 2 the start of a
 * UTF-8 sequence (checked). lua-cjson escapes '/' too; JSON does not need it. */
static const uint8_t json_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 1, /* 0x7F */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2,
};

/* Whether any of the 8 bytes in w is not written as it is (json_class != 0): a control
 * byte, '"', '\\', DEL or a byte >= 0x80. Borrows between bytes can only flag a word that
 * holds such a byte anyway. */
static inline bool json_special8(uint64_t w)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\'), del = w ^ (ones * 0x7F);
    uint64_t t = (w - ones * 0x20) | (q - ones) | (bs - ones) | (del - ones);
    return ((t & ~w) | w) & high;
}

/* A JSON string of s[0, n): at most 6 bytes per input byte, plus the quotes. With
 * sd_unescape, "\"" "\\" "\]" stand for the second byte (an SD-PARAM value as sent). */
static void jb_str(struct jb *b, const uint8_t *s, size_t n, bool sd_unescape)
{
    if (n > (SIZE_MAX - 2) / 6 || !jb_room(b, 6 * n + 2))
        return;
    char *o = b->out + b->len;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) { /* eight bytes that need nothing, copied at once */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!json_special8(w)) {
                memcpy(o, &w, 8);
                o += 8;
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        switch (json_class[c]) {
        case 0:
            *o++ = (char)c;
            i++;
            continue;
        case 2: {
            size_t k = syslog_utf8_seq(s + i, n - i);
            if (k == 0) {
                memcpy(o, "\xEF\xBF\xBD", 3); /* U+FFFD */
                o += 3;
                i++;
            } else {
                memcpy(o, s + i, k);
                o += k;
                i += k;
            }
            continue;
        }
        default:
            break;
        }
        if (c == '\\' && sd_unescape && i + 1 < n &&
            (s[i + 1] == '"' || s[i + 1] == '\\' || s[i + 1] == ']')) {
            c = s[++i];
            if (c == ']') {
                *o++ = ']';
                i++;
                continue;
            }
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = "0123456789abcdef"[c >> 4];
            *o++ = "0123456789abcdef"[c & 15];
        }
        i++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->out);
}

/* A key with its separators (',"key":'): a literal. */
#define JB_KEY(b, lit) JB_LIT(b, lit)

static void jb_span(struct jb *b, const struct syslog_rec *rec, struct syslog_span s)
{
    jb_str(b, rec->data + s.off, s.len, false);
}

static void jb_number(struct jb *b, double v)
{
    if (!jb_room(b, 32))
        return;
    b->len += syslog_json_number(b->out + b->len, v);
}

static size_t put_uint(char *buf, uint64_t v, size_t min_digits);

/* An integer as lua-cjson writes it (through a double: "%.14g"). */
static void jb_int(struct jb *b, int64_t v)
{
    if (v <= -100000000000000 || v >= 100000000000000) {
        jb_number(b, (double)v);
        return;
    }
    if (!jb_room(b, 24))
        return;
    if (v < 0)
        b->out[b->len++] = '-';
    b->len += put_uint(b->out + b->len, v < 0 ? (uint64_t)-v : (uint64_t)v, 1);
}

/* ---------------------------------------------------------------------------------------
 * Numbers: "%.14g" */

static const double p10[15] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                1e11, 1e12, 1e13, 1e14 };

/* The decimal digits of v, at least min_digits of them (zeros in front); returns how many. */
static size_t put_uint(char *buf, uint64_t v, size_t min_digits)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char tmp[24];
    size_t k = sizeof tmp;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        tmp[--k] = pairs[2 * r + 1];
        tmp[--k] = pairs[2 * r];
    }
    if (v >= 10) {
        tmp[--k] = pairs[2 * v + 1];
        tmp[--k] = pairs[2 * v];
    } else {
        tmp[--k] = (char)('0' + v);
    }
    while (sizeof tmp - k < min_digits && k > 0)
        tmp[--k] = '0';
    size_t n = sizeof tmp - k;
    memcpy(buf, tmp + k, n);
    return n;
}

size_t syslog_json_number(char *buf, double v)
{
    if (!isfinite(v)) {
        memcpy(buf, "null", 4);
        return 4;
    }
    double a = fabs(v);
    size_t len = 0;
    if (a < 1e14 && a >= 1) {
        double ip = floor(a);
        uint64_t ipi = (uint64_t)ip;
        if (ip == a) { /* an integer: its digits */
            if (signbit(v))
                buf[len++] = '-';
            return len + put_uint(buf + len, ipi, 1);
        }
        int k = 1;
        while (k < 14 && ip >= p10[k])
            k++;
        int d = 14 - k; /* decimals of 14 significant digits */
        if (d > 0) {
            double scaled = (a - ip) * p10[d]; /* a - ip is exact */
            double fl = floor(scaled), r = scaled - fl;
            /* Decide the rounding here only when the product's error cannot change it;
             * else (a tie, or too close to call) ask printf. */
            if (fabs(r - 0.5) > scaled * 0x1p-50 + 0x1p-60) {
                uint64_t fr = (uint64_t)fl + (r > 0.5);
                uint64_t one = (uint64_t)p10[d];
                if (fr >= one) {
                    ipi++;
                    fr -= one;
                }
                if (signbit(v))
                    buf[len++] = '-';
                len += put_uint(buf + len, ipi, 1);
                if (fr) {
                    int dd = d;
                    while (fr % 10 == 0) { /* %g drops trailing zeros */
                        fr /= 10;
                        dd--;
                    }
                    buf[len++] = '.';
                    len += put_uint(buf + len, fr, (size_t)dd);
                }
                return len;
            }
        }
    } else if (v == 0) {
        if (signbit(v))
            buf[len++] = '-';
        buf[len++] = '0';
        return len;
    }
    int n = snprintf(buf, 32, "%.14g", v);
    return n > 0 && n < 32 ? (size_t)n : 0;
}

/* ---------------------------------------------------------------------------------------
 * base64 (RFC 4648, with padding) */

static void jb_base64(struct jb *b, const uint8_t *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t need = (n + 2) / 3 * 4 + 2;
    if (!jb_room(b, need))
        return;
    char *o = b->out + b->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o++ = '"';
    b->len = (size_t)(o - b->out);
}

/* ---------------------------------------------------------------------------------------
 * The line */

/* Ends an SD element's object: its "params" array too when it had parameters. */
static void jb_end_element(struct jb *b, bool had_params)
{
    if (had_params)
        JB_LIT(b, "]}");
    else
        JB_LIT(b, "}");
}

/* ,"sd":[{"id":ID,"params":[{"name":N,"value":V},...]},...] ("params" only when there are
 * some, as the Lua handler wrote it). */
static void jb_sd(struct jb *b, const struct syslog_rec *rec)
{
    struct syslog_sd_iter it;
    struct syslog_sd_item item;
    enum syslog_sd_kind k;
    bool in_element = false, had_params = false;
    syslog_sd_begin(&it, rec->data, rec->len, rec->sd.off + 1);
    JB_KEY(b, ",\"sd\":[");
    while ((k = syslog_sd_next(&it, &item)) == SYSLOG_SD_ELEMENT || k == SYSLOG_SD_PARAM) {
        if (k == SYSLOG_SD_ELEMENT) {
            if (in_element) {
                jb_end_element(b, had_params);
                JB_LIT(b, ",");
            }
            in_element = true;
            had_params = false;
            JB_LIT(b, "{\"id\":");
            jb_span(b, rec, item.id);
            continue;
        }
        if (had_params)
            JB_LIT(b, ",{\"name\":");
        else
            JB_LIT(b, ",\"params\":[{\"name\":");
        had_params = true;
        jb_span(b, rec, item.name);
        JB_LIT(b, ",\"value\":");
        jb_str(b, rec->data + item.value.off, item.value.len, item.escaped);
        JB_LIT(b, "}");
    }
    if (in_element)
        jb_end_element(b, had_params);
    JB_LIT(b, "]");
}

size_t syslog_json_bound(const struct syslog_rec *rec, const struct syslog_json_extra *extra)
{
    /* Every byte of the datagram is in at most one field (msg, sd, a header field, cisco),
     * where it takes at most 10 bytes (an escaped byte: 6; an SD element "[x]" of 3 bytes:
     * {"id":"x"}, and ,"params":[ for its first parameter), plus base64. */
    size_t n = rec->len;
    if (n > SIZE_MAX / 16)
        return SIZE_MAX;
    size_t bound = 10 * n + (n + 2) / 3 * 4 + 1024;
    size_t strings[3] = { extra->listener ? extra->listener_len : 0,
                          extra->peer ? extra->peer_len : 0, extra->dst ? extra->dst_len : 0 };
    for (int i = 0; i < 3; i++) {
        if (strings[i] > (SIZE_MAX - bound) / 8)
            return SIZE_MAX;
        bound += 6 * strings[i] + 16;
    }
    return bound;
}

size_t syslog_json_line(const struct syslog_rec *rec, const struct syslog_json_extra *extra,
                        char *out, size_t size)
{
    static const char *const formats[] = { "\"unknown\"", "\"rfc5424\"", "\"rfc3164\"" };
    struct jb jb = { out, 0, size, false }, *b = &jb;
    JB_LIT(b, "{");
    if (extra->listener) {
        JB_LIT(b, "\"listener\":");
        jb_str(b, (const uint8_t *)extra->listener, extra->listener_len, false);
        JB_KEY(b, ",\"received\":");
    } else {
        JB_KEY(b, "\"received\":");
    }
    jb_number(b, extra->received);
    if (extra->peer) {
        JB_KEY(b, ",\"peer\":");
        jb_str(b, (const uint8_t *)extra->peer, extra->peer_len, false);
    }
    if (extra->dst) {
        JB_KEY(b, ",\"dst\":");
        jb_str(b, (const uint8_t *)extra->dst, extra->dst_len, false);
    }
    if (extra->has_creds) {
        const char *sep = "{";
        JB_KEY(b, ",\"creds\":");
        if (extra->has_pid) {
            jb_raw(b, sep, 1);
            JB_LIT(b, "\"pid\":");
            jb_number(b, extra->pid);
            sep = ",";
        }
        if (extra->has_uid) {
            jb_raw(b, sep, 1);
            JB_LIT(b, "\"uid\":");
            jb_number(b, extra->uid);
            sep = ",";
        }
        if (extra->has_gid) {
            jb_raw(b, sep, 1);
            JB_LIT(b, "\"gid\":");
            jb_number(b, extra->gid);
            sep = ",";
        }
        if (sep[0] == '{')
            JB_LIT(b, "{}");
        else
            JB_LIT(b, "}");
    }
    JB_KEY(b, ",\"format\":");
    const char *f = formats[rec->format <= SYSLOG_RFC3164 ? rec->format : 0];
    jb_raw(b, f, strlen(f));
    if (rec->pri >= 0) {
        JB_KEY(b, ",\"pri\":");
        jb_int(b, rec->pri);
    }
    JB_KEY(b, ",\"facility\":\"");
    const char *name = syslog_facility_names[rec->facility % 24];
    jb_raw(b, name, strlen(name));
    JB_KEY(b, "\",\"severity\":\"");
    name = syslog_severity_names[rec->severity % 8];
    jb_raw(b, name, strlen(name));
    JB_LIT(b, "\"");
    if (rec->has_timestamp) {
        JB_KEY(b, ",\"timestamp\":");
        jb_str(b, (const uint8_t *)rec->ts_text, rec->ts_len, false);
    }
    if (rec->has_time) {
        JB_KEY(b, ",\"time\":");
        jb_number(b, rec->time_is_float ? rec->time_f : (double)rec->time_i);
    }
    if (rec->has_hostname) {
        JB_KEY(b, ",\"hostname\":");
        jb_span(b, rec, rec->hostname);
    }
    if (rec->has_app_name) {
        JB_KEY(b, ",\"app_name\":");
        jb_span(b, rec, rec->app_name);
    }
    if (rec->has_procid) {
        JB_KEY(b, ",\"procid\":");
        jb_span(b, rec, rec->procid);
    }
    if (rec->has_msgid) {
        JB_KEY(b, ",\"msgid\":");
        jb_span(b, rec, rec->msgid);
    }
    if (rec->has_sd)
        jb_sd(b, rec);
    if (rec->sd_lenient)
        JB_KEY(b, ",\"sd_lenient\":true");
    JB_KEY(b, ",\"msg\":");
    jb_span(b, rec, rec->msg);
    if (rec->bom)
        JB_KEY(b, ",\"bom\":true");
    if (rec->has_seq) {
        JB_KEY(b, ",\"seq\":");
        jb_int(b, rec->seq);
    }
    if (rec->has_cisco) {
        JB_KEY(b, ",\"cisco\":{\"facility\":");
        jb_span(b, rec, rec->cisco_facility);
        JB_LIT(b, ",\"severity\":");
        jb_int(b, rec->cisco_severity);
        JB_LIT(b, ",\"mnemonic\":");
        jb_span(b, rec, rec->cisco_mnemonic);
        JB_LIT(b, "}");
    }
    if (rec->error != SYSLOG_OK) {
        char text[96];
        size_t n = syslog_error_text(rec, text, sizeof text);
        JB_KEY(b, ",\"parse_error\":");
        jb_str(b, (const uint8_t *)text, n, false);
    }
    if (extra->raw_b64) {
        JB_KEY(b, ",\"raw_b64\":");
        jb_base64(b, rec->data, rec->len);
    }
    JB_LIT(b, "}");
    return b->full ? 0 : b->len;
}
