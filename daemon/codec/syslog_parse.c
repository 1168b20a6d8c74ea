/* daemon/codec/syslog_parse.c: the C port of scripts/lib/syslog_parse.lua's parse (see
 * syslog_parse.h). The code follows the Lua function by function, with the same 1-based
 * positions (p, e, n ...), so the two can be read side by side: `at(x, i)` is the Lua
 * `byte(data, i)` (-1 past either end), and each Lua pattern is a loop over byte classes
 * written next to it. n is the datagram's length without up to four trailing LF/CR/NUL;
 * like the Lua code, some reads look past n (never past len). */
#include "syslog_parse.h"

#include <stdio.h>
#include <string.h>

const char *const syslog_facility_names[24] = {
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1",
    "local2", "local3", "local4", "local5", "local6", "local7",
};
const char *const syslog_severity_names[8] = {
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

static const char month_names[12][4] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};
static const uint8_t month_days[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
static const double pow10_table[10] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9 };

#define DAY 86400

/* The parse in progress. */
struct px {
    const uint8_t *d;
    size_t len;               /* the datagram's length */
    size_t n;                 /* without trailing LF/CR/NUL */
    struct syslog_rec *rec;
    int64_t now;
    bool has_tz;
    int32_t tz;
};

/* byte(data, i): the byte at 1-based i, or -1 outside the datagram. */
static inline int at(const struct px *x, size_t i)
{
    return (i >= 1 && i <= x->len) ? x->d[i - 1] : -1;
}

static inline bool is_digit(int c) { return c >= '0' && c <= '9'; }
static inline bool is_upper(int c) { return c >= 'A' && c <= 'Z'; }
static inline bool is_alpha(int c) { return is_upper(c) || (c >= 'a' && c <= 'z'); }
static inline bool is_word(int c) { return is_alpha(c) || is_digit(c) || c == '_'; } /* [%w_] */
static inline bool is_print(int c) { return c >= 0x21 && c <= 0x7e; }              /* [!-~] */
/* SD-NAME: [!#-<>-\^-~], printable but '"' '=' ']' */
static inline bool is_sd_name(int c) { return is_print(c) && c != '"' && c != '=' && c != ']'; }
/* TAG: [!-9;-Z\^-~], printable but ':' '[' ']' */
/* TAG bytes: printable ASCII and TAB (Snare's "MSWinEventLog\t1\t..."), as both peers read */
static inline bool is_tag(int c)
{
    return (is_print(c) || c == '\t') && c != ':' && c != '[' && c != ']';
}
/* PROCID in a TAG: [!-Z\^-~], printable but '[' ']' */
static inline bool is_pid(int c) { return is_print(c) && c != '[' && c != ']'; }

/* The last index of the run of bytes of class `cls` starting at i (i - 1 when empty). */
static size_t run_end(const struct px *x, size_t i, bool (*cls)(int))
{
    while (cls(at(x, i)))
        i++;
    return i - 1;
}

/* The first index from i (bounded by n) that does not hold a space. */
static size_t skip_spaces(const struct px *x, size_t i, size_t n)
{
    while (i <= n && at(x, i) == ' ')
        i++;
    return i;
}

static inline int two_digits(const struct px *x, size_t i)
{
    return (at(x, i) - '0') * 10 + (at(x, i + 1) - '0');
}

static struct syslog_span span(size_t from, size_t to) /* 1-based, inclusive; to < from: "" */
{
    struct syslog_span s = { from - 1, to >= from ? to - from + 1 : 0 };
    return s;
}

static void set_error(struct syslog_rec *rec, enum syslog_error e, size_t byte_at)
{
    if (rec->error == SYSLOG_OK) {
        rec->error = (uint8_t)e;
        rec->error_at = byte_at;
    }
}

/* ---------------------------------------------------------------------------------------
 * Calendar arithmetic (proleptic Gregorian), with Lua's floor division. */

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    if (m <= 2)
        y -= 1;
    int64_t era = floordiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static int64_t year_from_days(int64_t z)
{
    z += 719468;
    int64_t era = floordiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    return yoe + era * 400 + (m <= 2 ? 1 : 0);
}

static int days_in_month(int64_t y, int m)
{
    if (m != 2)
        return month_days[m - 1];
    return (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28;
}

static int64_t fill_year(int mon, int day, int64_t secs, int64_t wall_now)
{
    int64_t y = year_from_days(floordiv(wall_now, DAY));
    int64_t t = days_from_civil(y, mon, day) * DAY + secs;
    if (t > wall_now + 7 * DAY)
        return y - 1;
    if (t <= wall_now - 358 * DAY)
        return y + 1;
    return y;
}

/* ---------------------------------------------------------------------------------------
 * Timestamps */

/* A wall-clock time: integer seconds, or float seconds when it had a fraction. */
struct wall {
    bool is_float;
    int64_t i;
    double f;
};

/* "^%.%d+" at i: its last index into *fe and the value of its first 9 digits (those that
 * fit; the rest are read past and dropped) into *val; false when there is no digit. */
static bool fraction(const struct px *x, size_t i, size_t *fe, double *val)
{
    size_t e = run_end(x, i + 1, is_digit);
    size_t k = e - i; /* digits */
    if (k == 0)
        return false;
    if (k > 9)
        k = 9;
    uint32_t v = 0;
    for (size_t j = i + 1; j <= i + k; j++)
        v = v * 10 + (uint32_t)(at(x, j) - '0');
    *fe = e;
    *val = (double)v / pow10_table[k]; /* correctly rounded, as strtod (Lua's tonumber) */
    return true;
}

/* An RFC 3339 date-time read by parse_rfc3339: its last index, its wall-clock seconds, its
 * offset (has_off false when it has none), and the fraction digits past the ninth, which
 * its text drops: data[cut_from .. cut_to] (cut_to < cut_from when none). */
struct iso_time {
    size_t te, cut_from, cut_to;
    struct wall w;
    bool has_off;
    int32_t off;
};

/* parse_rfc3339: an RFC 3339 date-time at p, also with a space for 'T' and an offset
 * without its colon ("+0100"). false when there is none. */
static bool parse_rfc3339(const struct px *x, size_t p, struct iso_time *t)
{
    /* "^%d%d%d%d%-%d%d%-%d%d[Tt ]%d%d:%d%d:%d%d" */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    for (size_t k = 0; k < sizeof shape - 1; k++) {
        int c = at(x, p + k);
        bool ok = shape[k] == 'd' ? is_digit(c)
                  : shape[k] == 'T' ? (c == 'T' || c == 't' || c == ' ')
                                    : c == shape[k];
        if (!ok)
            return false;
    }
    size_t e = p + 18;
    int y = two_digits(x, p) * 100 + two_digits(x, p + 2);
    int mon = two_digits(x, p + 5), d = two_digits(x, p + 8);
    int h = two_digits(x, p + 11), mi = two_digits(x, p + 14), s = two_digits(x, p + 17);
    if (mon < 1 || mon > 12 || d < 1 || d > days_in_month(y, mon) || h > 23 || mi > 59 ||
        s > 60)
        return false;
    struct wall *w = &t->w;
    w->is_float = false;
    w->i = days_from_civil(y, mon, d) * DAY + h * 3600 + mi * 60 + s;
    t->cut_from = 1;
    t->cut_to = 0;
    if (at(x, e + 1) == '.') {
        size_t fe;
        double frac;
        if (!fraction(x, e + 1, &fe, &frac))
            return false;
        w->is_float = true;
        w->f = (double)w->i + frac;
        if (fe > e + 10) {
            t->cut_from = e + 11;
            t->cut_to = fe;
        }
        e = fe;
    }
    int c = at(x, e + 1);
    if (c == 'Z' || c == 'z') {
        t->te = e + 1;
        t->has_off = true;
        t->off = 0;
        return true;
    }
    /* "^[+-]%d%d:?%d%d" */
    size_t m = at(x, e + 4) == ':' ? e + 5 : e + 4; /* the minutes */
    if (!((c == '+' || c == '-') && is_digit(at(x, e + 2)) && is_digit(at(x, e + 3)) &&
          is_digit(at(x, m)) && is_digit(at(x, m + 1)))) {
        t->te = e;
        t->has_off = false;
        return true;
    }
    int oh = two_digits(x, e + 2), om = two_digits(x, m);
    if (oh > 23 || om > 59)
        return false;
    t->te = m + 1;
    t->has_off = true;
    t->off = (c == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    return true;
}

/* rec.time = w - off */
static void set_time(struct syslog_rec *rec, const struct wall *w, int64_t off)
{
    rec->has_time = true;
    rec->time_is_float = w->is_float;
    if (w->is_float)
        rec->time_f = w->f - (double)off;
    else
        rec->time_i = w->i - off;
}

/* Appends to rec->ts_text (bounded). */
static void ts_add(struct syslog_rec *rec, const void *s, size_t len)
{
    size_t room = sizeof rec->ts_text - 1 - rec->ts_len;
    if (len > room)
        len = room; /* cannot happen: the longest text is 42 bytes */
    memcpy(rec->ts_text + rec->ts_len, s, len);
    rec->ts_len = (uint8_t)(rec->ts_len + len);
    rec->ts_text[rec->ts_len] = '\0';
}

/* offset_string: "Z", "+hh:mm" / "-hh:mm", nothing when unknown. */
static void ts_add_offset(struct syslog_rec *rec, bool has_off, int32_t off)
{
    if (!has_off)
        return;
    if (off == 0) {
        ts_add(rec, "Z", 1);
        return;
    }
    char buf[8];
    char sign = '+';
    if (off < 0) {
        sign = '-';
        off = -off;
    }
    int hh = off / 3600, mm = off % 3600 / 60;
    buf[0] = sign;
    buf[1] = (char)('0' + hh / 10);
    buf[2] = (char)('0' + hh % 10);
    buf[3] = ':';
    buf[4] = (char)('0' + mm / 10);
    buf[5] = (char)('0' + mm % 10);
    ts_add(rec, buf, 6);
}

/* set_iso_timestamp: timestamp and time from the RFC 3339 date-time t read at p: its text as
 * sent but with 'T' for a space and at most 9 fraction digits, plus the listener's zone
 * when it has no offset (time then only when the zone is known). */
static void set_iso_timestamp(const struct px *x, size_t p, const struct iso_time *t)
{
    struct syslog_rec *rec = x->rec;
    rec->has_timestamp = true;
    rec->ts_len = 0;
    rec->ts_text[0] = '\0';
    if (t->cut_to >= t->cut_from) {
        ts_add(rec, x->d + p - 1, t->cut_from - p);
        ts_add(rec, x->d + t->cut_to, t->te - t->cut_to);
    } else {
        ts_add(rec, x->d + p - 1, t->te - p + 1);
    }
    if (rec->ts_text[10] == ' ')
        rec->ts_text[10] = 'T';
    if (t->has_off) {
        set_time(rec, &t->w, t->off);
    } else {
        ts_add_offset(rec, x->has_tz, x->tz);
        if (x->has_tz)
            set_time(rec, &t->w, x->tz);
    }
}

/* ---------------------------------------------------------------------------------------
 * Pieces shared by both formats */

/* finish_msg: msg = data[p..n] without a leading BOM, checked for UTF-8. */
static void finish_msg(struct px *x, size_t p, size_t n)
{
    struct syslog_rec *rec = x->rec;
    if (p + 2 <= n && at(x, p) == 0xEF && at(x, p + 1) == 0xBB && at(x, p + 2) == 0xBF) {
        rec->bom = true;
        p += 3;
    }
    if (p <= n) {
        size_t bad = syslog_utf8_check(x->d + p - 1, n - p + 1);
        if (bad < n - p + 1)
            set_error(rec, SYSLOG_ERR_UTF8_MSG, p + bad);
    }
    rec->msg = span(p, n);
}

/* ---------------------------------------------------------------------------------------
 * RFC 5424 */

static const uint8_t header_errors[4] = {
    SYSLOG_ERR_HOSTNAME, SYSLOG_ERR_APP_NAME, SYSLOG_ERR_PROCID, SYSLOG_ERR_MSGID,
};

static void set_header_field(struct syslog_rec *rec, int i, struct syslog_span s)
{
    switch (i) {
    case 0: rec->hostname = s; rec->has_hostname = true; break;
    case 1: rec->app_name = s; rec->has_app_name = true; break;
    case 2: rec->procid = s; rec->has_procid = true; break;
    default: rec->msgid = s; rec->has_msgid = true; break;
    }
}

/* header_error: keeps the fields before the bad one, names it, and makes the rest MSG. */
static void header_error(struct px *x, size_t p, size_t n)
{
    for (int i = 0; i < 4; i++) {
        size_t e = run_end(x, p, is_print); /* "^[!-~]+": none when e < p */
        bool some = e >= p;
        if (!some || e >= n || at(x, e + 1) != ' ') {
            if (some && e >= n)
                set_error(x->rec, SYSLOG_ERR_TRUNCATED, 0);
            else
                set_error(x->rec, (enum syslog_error)header_errors[i], some ? e + 1 : p);
            break;
        }
        if (e > p || at(x, p) != '-')
            set_header_field(x->rec, i, span(p, e));
        p = e + 2;
    }
    finish_msg(x, p, n);
}

/* parse_5424_sd: STRUCTURED-DATA at p, then [SP MSG]. */
static void parse_5424_sd(struct px *x, size_t p, size_t n)
{
    struct syslog_rec *rec = x->rec;
    if (p > n) {
        set_error(rec, SYSLOG_ERR_TRUNCATED, 0);
        return;
    }
    int c = at(x, p);
    size_t sd_start = p;
    if (c == '-') {
        p++;
    } else if (c == '[') {
        struct syslog_sd_iter it;
        struct syslog_sd_item item;
        enum syslog_sd_kind k;
        syslog_sd_begin(&it, x->d, x->len, p);
        bool lenient = false;
        while ((k = syslog_sd_next(&it, &item)) == SYSLOG_SD_ELEMENT || k == SYSLOG_SD_PARAM)
            lenient |= k == SYSLOG_SD_PARAM && item.lenient;
        if (k == SYSLOG_SD_ERROR) {
            set_error(rec, SYSLOG_ERR_SD, item.at);
            finish_msg(x, sd_start, n);
            return;
        }
        p = item.at;
        rec->has_sd = true;
        rec->sd_lenient = lenient;
        rec->sd = span(sd_start, p - 1);
    } else {
        set_error(rec, SYSLOG_ERR_SD, p);
        finish_msg(x, p, n);
        return;
    }
    if (p <= n && at(x, p) != ' ') {
        rec->has_sd = false;
        rec->sd_lenient = false;
        rec->sd = span(1, 0);
        set_error(rec, SYSLOG_ERR_SD, p);
        finish_msg(x, sd_start, n);
        return;
    }
    if (c == '[' && rec->error == SYSLOG_OK) { /* SD names are ASCII: this checks values */
        size_t bad = syslog_utf8_check(x->d + sd_start - 1, p - sd_start);
        if (bad < p - sd_start)
            set_error(rec, SYSLOG_ERR_UTF8_SD, sd_start + bad);
    }
    if (p < n)
        finish_msg(x, p + 1, n);
}

/* "^%d%d%d%d%-%d": the start of a date, read as a TIMESTAMP that must parse. */
static bool looks_like_date(const struct px *x, size_t p)
{
    return is_digit(at(x, p)) && is_digit(at(x, p + 1)) && is_digit(at(x, p + 2)) &&
           is_digit(at(x, p + 3)) && at(x, p + 4) == '-' && is_digit(at(x, p + 5));
}

/* The last index of the word at p: up to the next space or n. */
static size_t word_end(const struct px *x, size_t p, size_t n)
{
    while (p <= n && at(x, p) != ' ')
        p++;
    return p - 1;
}

/* parse_5424: what follows "<PRI>1 " at p. false (rec untouched) when the next word is
 * neither NILVALUE, nor an RFC 3339 timestamp, nor a date that does not read (an error). */
static bool parse_5424(struct px *x, size_t p, size_t n)
{
    struct syslog_rec *rec = x->rec;
    if (at(x, p) == '-' && at(x, p + 1) == ' ') {
        p += 2;
    } else {
        struct iso_time t;
        if (parse_rfc3339(x, p, &t) && at(x, t.te + 1) == ' ') {
            set_iso_timestamp(x, p, &t);
            p = t.te + 2;
        } else if (looks_like_date(x, p)) { /* a date that does not read: say so, go on */
            set_error(rec, SYSLOG_ERR_TIMESTAMP, p);
            p = word_end(x, p, n) + 2;
        } else {
            return false;
        }
    }
    rec->format = SYSLOG_RFC5424;
    /* "^([!-~]+) ([!-~]+) ([!-~]+) ([!-~]+) " */
    size_t from[4], to[4], q = p;
    for (int i = 0; i < 4; i++) {
        size_t e = run_end(x, q, is_print);
        if (e < q || at(x, e + 1) != ' ') {
            header_error(x, p, n);
            return true;
        }
        from[i] = q;
        to[i] = e;
        q = e + 2;
    }
    if (q - 1 > n) { /* he <= n */
        header_error(x, p, n);
        return true;
    }
    for (int i = 0; i < 4; i++) {
        if (!(to[i] == from[i] && at(x, from[i]) == '-'))
            set_header_field(rec, i, span(from[i], to[i]));
    }
    parse_5424_sd(x, q, n);
    return true;
}

/* ---------------------------------------------------------------------------------------
 * RFC 3164 and friends */

static int month_of(const struct px *x, size_t i)
{
    int a = at(x, i), b = at(x, i + 1), c = at(x, i + 2);
    for (int m = 0; m < 12; m++) {
        const char *s = month_names[m];
        if ((a == s[0] && b == s[1] && c == s[2]) ||                       /* "Oct" */
            (a == s[0] && b == s[1] - 32 && c == s[2] - 32) ||             /* "OCT" */
            (a == s[0] + 32 && b == s[1] && c == s[2]))                    /* "oct" */
            return m + 1;
    }
    return 0;
}

/* "(%a%a%a) +(%d%d?) " at i: the month's index, the day, and the index after the space. */
static bool month_day(const struct px *x, size_t i, size_t *ms, int *day, size_t *next)
{
    if (!is_alpha(at(x, i)) || !is_alpha(at(x, i + 1)) || !is_alpha(at(x, i + 2)) ||
        at(x, i + 3) != ' ')
        return false;
    size_t r = i + 4;
    while (at(x, r) == ' ')
        r++;
    if (!is_digit(at(x, r)))
        return false;
    if (is_digit(at(x, r + 1))) {
        if (at(x, r + 2) != ' ')
            return false;
        *day = two_digits(x, r);
        *next = r + 3;
    } else {
        if (at(x, r + 1) != ' ')
            return false;
        *day = at(x, r) - '0';
        *next = r + 2;
    }
    *ms = i;
    return true;
}

static bool hhmmss(const struct px *x, size_t i) /* "%d%d:%d%d:%d%d" */
{
    return is_digit(at(x, i)) && is_digit(at(x, i + 1)) && at(x, i + 2) == ':' &&
           is_digit(at(x, i + 3)) && is_digit(at(x, i + 4)) && at(x, i + 5) == ':' &&
           is_digit(at(x, i + 6)) && is_digit(at(x, i + 7));
}

static bool four_digits(const struct px *x, size_t i)
{
    return is_digit(at(x, i)) && is_digit(at(x, i + 1)) && is_digit(at(x, i + 2)) &&
           is_digit(at(x, i + 3));
}

/* The year as Lua writes it: tostring(y) from 1000 on, else format("%04d", y) (which pads
 * "-5" to "-005"). buf holds at least 24 bytes; returns the length. */
static size_t format_year(char *buf, int64_t y)
{
    char digits[24];
    size_t k = 0, len = 0;
    uint64_t v = y < 0 ? (uint64_t)0 - (uint64_t)y : (uint64_t)y;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (y < 0)
        buf[len++] = '-';
    size_t width = y < 0 ? 3 : 4; /* "%04d": the sign counts in the width */
    for (size_t i = k; i < width; i++)
        buf[len++] = '0';
    while (k)
        buf[len++] = digits[--k];
    return len;
}

/* parse_3164_time: a timestamp at p ("Mmm dd hh:mm:ss", "Mmm dd yyyy hh:mm:ss" with a Cisco
 * '*' or '.' in front and ".mmm" and " ZONE:" after, RFC 3339, or after a Cisco prefix
 * "yyyy Mmm dd hh:mm:ss"). Fills timestamp/time and *out, where the rest starts (after a
 * ':' or " ZONE:" Cisco puts after the time); false when there is none. A timestamp's shape
 * with values that do not read is an error (bad TIMESTAMP), and *out is after it. */
static bool parse_3164_time(struct px *x, size_t p, size_t n, bool after_cisco_prefix,
                            size_t *out)
{
    struct syslog_rec *rec = x->rec;
    bool has_tz = x->has_tz;
    int32_t tz = x->tz;
    int c = at(x, p);
    if (c < 0)
        return false;
    size_t e, ms, hpos, next;
    int day;
    bool has_year = false;
    int64_t y = 0;
    if (is_digit(c)) {
        if (at(x, p + 4) == '-') { /* ISO 8601 in 3164 position */
            struct iso_time it;
            if (parse_rfc3339(x, p, &it) && (it.te >= n || at(x, it.te + 1) == ' ')) {
                set_iso_timestamp(x, p, &it);
                *out = it.te + 2;
            } else if (looks_like_date(x, p)) {
                set_error(rec, SYSLOG_ERR_TIMESTAMP, p);
                *out = word_end(x, p, n) + 2;
            } else {
                return false;
            }
            return true;
        }
        if (!after_cisco_prefix)
            return false;
        /* "^(%d%d%d%d) (%a%a%a) +(%d%d?) ()%d%d:%d%d:%d%d" */
        if (!four_digits(x, p) || at(x, p + 4) != ' ' ||
            !month_day(x, p + 5, &ms, &day, &next) || !hhmmss(x, next))
            return false;
        has_year = true;
        y = (at(x, p) - '0') * 1000 + (at(x, p + 1) - '0') * 100 + two_digits(x, p + 2);
        hpos = next;
    } else {
        size_t s = (c == '*' || c == '.') ? p + 1 : p; /* "^[%*%.]?" */
        if (!month_day(x, s, &ms, &day, &next))
            return false;
        if (hhmmss(x, next)) { /* "(%a%a%a) +(%d%d?) ()%d%d:%d%d:%d%d" */
            hpos = next;
        } else if (four_digits(x, next) && at(x, next + 4) == ' ' && hhmmss(x, next + 5)) {
            has_year = true; /* "(%a%a%a) +(%d%d?) (%d%d%d%d) ()%d%d:%d%d:%d%d" */
            y = (at(x, next) - '0') * 1000 + (at(x, next + 1) - '0') * 100 +
                two_digits(x, next + 2);
            hpos = next + 5;
        } else {
            return false;
        }
    }
    e = hpos + 7;
    int mon = month_of(x, ms);
    if (mon == 0)
        return false;
    int h = two_digits(x, hpos), mi = two_digits(x, hpos + 3), s = two_digits(x, hpos + 6);
    if (day < 1 || day > (has_year ? days_in_month(y, mon) : month_days[mon - 1]) || h > 23 ||
        mi > 59 || s > 60) { /* a timestamp's shape with values that do not read */
        set_error(rec, SYSLOG_ERR_TIMESTAMP, p);
        *out = word_end(x, hpos, n) + 2;
        return true;
    }
    size_t frac_from = 0, frac_to = 0;
    double frac = 0;
    if (at(x, e + 1) == '.') {
        size_t fe;
        if (!fraction(x, e + 1, &fe, &frac))
            return false;
        frac_from = e + 1;
        frac_to = fe > e + 10 ? e + 10 : fe; /* the digits that fit: 9 */
        e = fe;
    }
    size_t q = e + 2;
    c = at(x, e + 1);
    if (c == ':') { /* "hh:mm:ss:" Cisco */
        if (e + 1 < n && at(x, e + 2) != ' ')
            return false;
        q = e + 3;
    } else if (c == ' ') {
        /* Cisco "hh:mm:ss UTC: %SYS-...": "^ (%u%u%u?%u?%u?): %%" */
        if (is_upper(at(x, e + 2))) {
            size_t ze = run_end(x, e + 2, is_upper);
            size_t k = ze - (e + 1);
            if (k >= 2 && k <= 5 && at(x, ze + 1) == ':' && at(x, ze + 2) == ' ' &&
                at(x, ze + 3) == '%') {
                q = ze + 3;
                        const uint8_t *z = x->d + e + 1; /* the zone: data[e + 2 .. ze] */
                has_tz = k == 3 && (memcmp(z, "UTC", 3) == 0 || memcmp(z, "GMT", 3) == 0);
                tz = 0;
            }
        }
    } else if (e < n) {
        return false;
    }
    int64_t secs = h * 3600 + mi * 60 + s;
    if (!has_year)
        y = fill_year(mon, day, secs, x->now + (has_tz ? tz : 0));
    /* "YYYY-MM-DDT" .. hh:mm:ss .. frac .. offset */
    char head[32];
    size_t len = format_year(head, y);
    head[len++] = '-';
    head[len++] = (char)('0' + mon / 10);
    head[len++] = (char)('0' + mon % 10);
    head[len++] = '-';
    head[len++] = (char)('0' + day / 10);
    head[len++] = (char)('0' + day % 10);
    head[len++] = 'T';
    rec->has_timestamp = true;
    rec->ts_len = 0;
    rec->ts_text[0] = '\0';
    ts_add(rec, head, len);
    ts_add(rec, x->d + hpos - 1, 8);
    if (frac_from)
        ts_add(rec, x->d + frac_from - 1, frac_to - frac_from + 1);
    ts_add_offset(rec, has_tz, tz);
    if (has_tz) {
        int64_t t = days_from_civil(y, mon, day) * DAY + secs - tz;
        rec->has_time = true;
        rec->time_is_float = frac_from != 0;
        if (frac_from)
            rec->time_f = (double)t + frac;
        else
            rec->time_i = t;
    }
    *out = q;
    return true;
}

/* parse_tag: the TAG at p as rsyslog and syslog-ng read it: "TAG[pid]:", "TAG[pid]", "TAG:"
 * or a bare "TAG" followed by a space or the end (TAG up to 255 bytes); after ':' or ']' the
 * text may follow without a space. Sets app_name and procid and returns the index of the
 * text after it (one space skipped), or p when there is no tag. */
static size_t parse_tag(struct px *x, size_t p, size_t n)
{
    size_t te = run_end(x, p, is_tag);
    /* no TAG before "[pid]" ("[app]: text"): procid only, as both peers read it */
    if ((te < p && at(x, p) != '[') || (te >= p && te - p >= 255))
        return p;
    size_t e = te + 1;
    bool has_pid = false;
    size_t pid_from = 0, pid_to = 0;
    int c = at(x, e);
    if (e > n || c == ' ') { /* a bare TAG: "tag This msg", "-- MARK --", a lone word */
        x->rec->has_app_name = true;
        x->rec->app_name = span(p, te);
        return e + 1;
    }
    if (c == '[') {
        size_t pe = run_end(x, e + 1, is_pid);
        if (at(x, pe + 1) != ']' || pe - e > 128)
            return p;
        if (pe > e) {
            has_pid = true;
            pid_from = e + 1;
            pid_to = pe;
        }
        e = pe + 2;
        if (at(x, e) == ':')
            e++;
    } else if (c == ':') {
        e++;
    } else {
        return p;
    }
    if (te >= p) {
        x->rec->has_app_name = true;
        x->rec->app_name = span(p, te);
    }
    if (has_pid) {
        x->rec->has_procid = true;
        x->rec->procid = span(pid_from, pid_to);
    }
    if (e <= n && at(x, e) == ' ')
        return e + 1;
    return e;
}

/* Cisco "^%%([%w_][%w_%-]-)%-(%d)%-([%w_]+):" at p (the '%'). */
static void parse_cisco(struct px *x, size_t p)
{
    if (!is_word(at(x, p + 1)))
        return;
    for (size_t q = p + 2;; q++) { /* the shortest FACILITY[-SUB] that lets the rest match */
        if (at(x, q) == '-' && is_digit(at(x, q + 1)) && at(x, q + 2) == '-') {
            size_t me = run_end(x, q + 3, is_word);
            if (me >= q + 3 && at(x, me + 1) == ':') {
                struct syslog_rec *rec = x->rec;
                rec->has_cisco = true;
                rec->cisco_facility = span(p + 1, q - 1);
                rec->cisco_severity = (uint8_t)(at(x, q + 1) - '0');
                rec->cisco_mnemonic = span(q + 3, me);
                return;
            }
        }
        int c = at(x, q);
        if (!is_word(c) && c != '-')
            return;
    }
}

/* Whether data[p..e] (1-based, inclusive) looks like an IPv6 address: hex digits, '.' and
 * at least two ':'. */
static bool is_ipv6ish(const struct px *x, size_t p, size_t e)
{
    int colons = 0;
    for (size_t i = p; i <= e; i++) {
        int c = at(x, i);
        if (c == ':')
            colons++;
        else if (!is_digit(c) && c != '.' && !((c | 0x20) >= 'a' && (c | 0x20) <= 'f'))
            return false;
    }
    return colons >= 2;
}

/* The last index of "^[!-9;-~]+" at p (p - 1 when empty): a word without ':'. */
static size_t colonless_word_end(const struct px *x, size_t p)
{
    size_t e = p;
    while (is_print(at(x, e)) && at(x, e) != ':')
        e++;
    return e - 1;
}

/* "^%d+: " at p, at most 15 digits: rec.seq, and the index after it (0 when absent). */
static size_t cisco_seq(struct px *x, size_t p)
{
    size_t de = run_end(x, p, is_digit);
    if (de < p || at(x, de + 1) != ':' || at(x, de + 2) != ' ' || de - p > 14)
        return 0;
    int64_t seq = 0;
    for (size_t i = p; i <= de; i++)
        seq = seq * 10 + (at(x, i) - '0');
    x->rec->has_seq = true;
    x->rec->seq = seq;
    return de + 3;
}

/* Cisco with the host first: "HOST: SEQ: TIMESTAMP: ..." or "HOST SEQ: ..." followed by a
 * timestamp or "%FAC-...". Sets hostname, seq and *t; false (rec untouched) otherwise. */
static bool host_before_seq(struct px *x, size_t p, size_t n, size_t *t)
{
    size_t he = colonless_word_end(x, p);
    if (he < p)
        return false;
    size_t s = he + 1;
    if (at(x, s) == ':')
        s++;
    if (at(x, s) != ' ' || !is_digit(at(x, s + 1)))
        return false;
    struct syslog_rec saved = *x->rec;
    size_t q = cisco_seq(x, s + 1);
    bool found = false;
    if (q && parse_3164_time(x, q, n, true, t)) {
        found = true;
    } else if (q && at(x, q) == '%') {
        *t = q;
        found = true;
    }
    if (!found) {
        *x->rec = saved;
        return false;
    }
    x->rec->has_hostname = true;
    x->rec->hostname = span(p, he);
    return true;
}

/* AIX relays "Message forwarded from HOST: TAG...": the original HOSTNAME (as rsyslog's
 * pmaixforwardedfrom). Returns where the TAG starts, or p. */
static size_t aix_forwarded_from(struct px *x, size_t p, size_t n)
{
    static const char prefix[] = "Message forwarded from ";
    size_t k = sizeof prefix - 1;
    if (at(x, p) != 'M' || p + k > n || memcmp(x->d + p - 1, prefix, k) != 0)
        return p;
    size_t he = colonless_word_end(x, p + k);
    if (he < p + k || at(x, he + 1) != ':')
        return p;
    x->rec->has_hostname = true;
    x->rec->hostname = span(p + k, he);
    return skip_spaces(x, he + 2, n);
}

/* parse_3164: from p (after PRI, if any) as RFC 3164 / BSD / Cisco. */
static void parse_3164(struct px *x, size_t p, size_t n, bool has_pri)
{
    struct syslog_rec *rec = x->rec;
    bool cisco_prefix = false;
    if (has_pri) /* stray spaces after the PRI: "<167> Mar  7 ...", "<15> openvpn[2499]: ..." */
        p = skip_spaces(x, p, n);
    int c = at(x, p);
    if (has_pri && c >= '0' && c <= ':') { /* a digit or ':' */
        size_t q = cisco_seq(x, p); /* "^%d+: " */
        if (q) {
            p = q;
            cisco_prefix = true;
        } else if (at(x, p) == ':' && at(x, p + 1) == ' ') { /* NX-OS ": " */
            p += 2;
            cisco_prefix = true;
        }
    }
    size_t t = 0;
    bool have_q = parse_3164_time(x, p, n, cisco_prefix, &t);
    if (!have_q && cisco_prefix) {
        /* "SEQ: HOST: TIMESTAMP: ..." or "SEQ: HOST: %FAC-..." (logging origin-id):
         * "^[!-9;-~]+: " */
        size_t he = p;
        while (is_print(at(x, he)) && at(x, he) != ':')
            he++;
        if (he > p && at(x, he) == ':' && at(x, he + 1) == ' ') {
            he += 1; /* the space */
            have_q = parse_3164_time(x, he + 1, n, true, &t);
            if (have_q || at(x, he + 1) == '%') {
                rec->has_hostname = true;
                rec->hostname = span(p, he - 2);
                if (!have_q)
                    t = he + 1;
                have_q = true;
            }
        }
    }
    if (!have_q && has_pri && !cisco_prefix && host_before_seq(x, p, n, &t)) {
        have_q = true;
    }
    if (have_q) {
        p = skip_spaces(x, t, n); /* stray spaces after the time */
        if (!rec->has_hostname) /* AIX "Message forwarded from HOST: " */
            p = aix_forwarded_from(x, p, n);
        if (!rec->has_hostname) { /* after "hh:mm:ss:" too, as rsyslog: "...: host tag: " */
            /* HOSTNAME, unless the word is really the TAG: "^[!-~]+ " */
            size_t he = run_end(x, p, is_print);
            if (he >= p && at(x, he + 1) == ' ') {
                int last = at(x, he);
                /* an IPv6 address ending in "::" is a HOSTNAME, not a TAG */
                if ((last != ':' && last != ']') || is_ipv6ish(x, p, he)) {
                    rec->has_hostname = true;
                    rec->hostname = span(p, he);
                    p = skip_spaces(x, he + 2, n); /* stray spaces after it */
                }
            }
        }
    } else if (!has_pri) {
        finish_msg(x, p, n); /* no PRI, no timestamp: format stays "unknown" */
        return;
    }
    rec->format = SYSLOG_RFC3164;
    c = at(x, p);
    if (c == ':' && at(x, p + 1) == ' ' && at(x, p + 2) == '%') { /* ASA "host : %" */
        p += 2;
        c = '%';
    }
    if (c == '%') /* "%ASA-6-302013:" is the TAG, as the peers read it */
        parse_cisco(x, p);
    if (c >= 0)
        p = parse_tag(x, p, n);
    finish_msg(x, p, n);
}

/* ---------------------------------------------------------------------------------------
 * Public functions */

static void set_pri(struct syslog_rec *rec, int pri)
{
    rec->pri = (int16_t)pri;
    rec->facility = (uint8_t)(pri >> 3);
    rec->severity = (uint8_t)(pri & 7);
}

void syslog_parse(struct syslog_rec *rec, const uint8_t *data, size_t len, int64_t now,
                  bool has_tz, int32_t tz_offset)
{
    memset(rec, 0, offsetof(struct syslog_rec, ts_text));
    rec->ts_text[0] = '\0';
    rec->data = data;
    rec->len = len;
    rec->format = SYSLOG_UNKNOWN;
    rec->pri = -1;
    rec->facility = 1;
    rec->severity = 5;
    if (len == 0) {
        rec->error = SYSLOG_ERR_EMPTY;
        return;
    }
    if (now > SYSLOG_NOW_MAX || now < -SYSLOG_NOW_MAX) /* outside the contract: no overflow */
        now = now > 0 ? SYSLOG_NOW_MAX : -SYSLOG_NOW_MAX;
    if (tz_offset <= -86400 || tz_offset >= 86400)
        has_tz = false;
    struct px x = { data, len, len, rec, now, has_tz, tz_offset };
    size_t n = len;
    for (int i = 0; i < 4; i++) { /* trailing LF, CR, NUL */
        int c = at(&x, n);
        if (c != '\n' && c != '\r' && c != 0)
            break;
        n--;
        if (n == 0)
            break;
    }
    x.n = n;
    size_t p = 1;
    bool has_pri = false;
    int c0 = at(&x, 1), c1 = at(&x, 2), c2 = at(&x, 3), c3 = at(&x, 4), c4 = at(&x, 5);
    int pri = -1; /* fast path: "<d>", "<dd>", "<ddd>" */
    if (c0 == '<' && is_digit(c1)) {
        if (c2 == '>') {
            pri = c1 - '0';
            p = 4;
        } else if (is_digit(c2)) {
            if (c3 == '>') {
                pri = (c1 - '0') * 10 + (c2 - '0');
                p = 5;
            } else if (c4 == '>' && is_digit(c3)) {
                pri = (c1 - '0') * 100 + (c2 - '0') * 10 + (c3 - '0');
                p = 6;
            }
        }
    }
    if (pri >= 0 && pri <= 191) {
        has_pri = true;
        set_pri(rec, pri);
    } else if (c0 == '<') {
        p = 1;
        size_t de = run_end(&x, 2, is_digit); /* "^<(%d*)>" */
        if (at(&x, de + 1) == '>') {
            size_t k = de - 1; /* digits */
            has_pri = true;
            p = de + 2;
            int code = -1;
            if (k >= 1 && k <= 3) {
                code = 0;
                for (size_t i = 2; i <= de; i++)
                    code = code * 10 + (at(&x, i) - '0');
            }
            if (code >= 0 && code <= 191)
                set_pri(rec, code);
            else if (k == 0 || k > 3)
                rec->error = SYSLOG_ERR_BAD_PRI;
            else
                rec->error = SYSLOG_ERR_PRI_RANGE;
        }
    }
    if (has_pri && at(&x, p) == '1' && at(&x, p + 1) == ' ' && parse_5424(&x, p + 2, n))
        return;
    parse_3164(&x, p, n, has_pri);
}

size_t syslog_error_text(const struct syslog_rec *rec, char *buf, size_t size)
{
    static const char *const what[] = {
        [SYSLOG_OK] = "",
        [SYSLOG_ERR_EMPTY] = "empty message",
        [SYSLOG_ERR_BAD_PRI] = "bad pri",
        [SYSLOG_ERR_PRI_RANGE] = "pri out of range",
        [SYSLOG_ERR_TRUNCATED] = "truncated header",
        [SYSLOG_ERR_HOSTNAME] = "bad HOSTNAME at byte ",
        [SYSLOG_ERR_APP_NAME] = "bad APP-NAME at byte ",
        [SYSLOG_ERR_PROCID] = "bad PROCID at byte ",
        [SYSLOG_ERR_MSGID] = "bad MSGID at byte ",
        [SYSLOG_ERR_SD] = "bad structured data at byte ",
        [SYSLOG_ERR_UTF8_MSG] = "invalid UTF-8 in MSG at byte ",
        [SYSLOG_ERR_UTF8_SD] = "invalid UTF-8 in structured data at byte ",
        [SYSLOG_ERR_TIMESTAMP] = "bad TIMESTAMP at byte ",
    };
    if (size == 0)
        return 0;
    const char *w = rec->error < sizeof what / sizeof what[0] ? what[rec->error] : "";
    int len = rec->error >= SYSLOG_ERR_HOSTNAME
                  ? snprintf(buf, size, "%s%zu", w, rec->error_at)
                  : snprintf(buf, size, "%s", w);
    if (len < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)len < size ? (size_t)len : size - 1;
}

/* ---------------------------------------------------------------------------------------
 * STRUCTURED-DATA (parse_sd of the Lua code, one item per call) */

enum { SD_AT_BRACKET, SD_IN_ELEMENT, SD_DONE };

void syslog_sd_begin(struct syslog_sd_iter *it, const uint8_t *data, size_t len, size_t p)
{
    it->data = data;
    it->len = len;
    it->p = p;
    it->state = SD_AT_BRACKET;
}

static inline int sd_at(const struct syslog_sd_iter *it, size_t i)
{
    return (i >= 1 && i <= it->len) ? it->data[i - 1] : -1;
}

static size_t sd_name_end(const struct syslog_sd_iter *it, size_t i)
{
    while (is_sd_name(sd_at(it, i)))
        i++;
    return i - 1;
}

static enum syslog_sd_kind sd_fail(struct syslog_sd_iter *it, struct syslog_sd_item *item,
                                   size_t at_byte)
{
    it->state = SD_DONE;
    it->p = 0;
    item->at = at_byte;
    return SYSLOG_SD_ERROR;
}

enum syslog_sd_kind syslog_sd_next(struct syslog_sd_iter *it, struct syslog_sd_item *item)
{
    size_t p = it->p;
    if (it->state == SD_DONE) {
        item->at = p;
        return p ? SYSLOG_SD_END : SYSLOG_SD_ERROR;
    }
    if (it->state == SD_IN_ELEMENT) {
        if (sd_at(it, p) == ' ') { /* a parameter: ' ' NAME '="' VALUE '"' */
            size_t ne = sd_name_end(it, p + 1);
            if (ne < p + 1)
                return sd_fail(it, item, p + 1);
            if (sd_at(it, ne + 1) != '=')
                return sd_fail(it, item, ne + 1);
            size_t v = ne + 2; /* the opening '"' */
            item->lenient = false;
            while (sd_at(it, v) == ' ') { /* lenient: spaces after '=' */
                v++;
                item->lenient = true;
            }
            item->name = span(p + 1, ne);
            if (sd_at(it, v) != '"') { /* lenient: an unquoted value, up to ' ' or ']' */
                size_t ve = v;
                while (ve <= it->len && it->data[ve - 1] != ' ' && it->data[ve - 1] != ']')
                    ve++;
                if (ve > it->len)
                    return sd_fail(it, item, v);
                item->value = span(v, ve - 1);
                item->escaped = false;
                item->lenient = true;
                it->p = ve;
                return SYSLOG_SD_PARAM;
            }
            /* The value, in one pass: up to the '"' that ends it, a '\' escaping the next
             * byte; an unescaped ']' is an error (RFC 5424 forbids it). Steps as the Lua
             * find(data, '["\\%]]', q) loop. */
            const uint8_t *d = it->data;
            bool escaped = false;
            size_t q = v + 1;
            for (;; q++) {
                if (q > it->len)
                    return sd_fail(it, item, v); /* unterminated value */
                uint8_t c = d[q - 1];
                if (c == '"')
                    break;
                if (c == ']')
                    return sd_fail(it, item, q);
                if (c == '\\') {
                    escaped = true;
                    q++;
                }
            }
            item->value = span(v + 1, q - 1);
            item->escaped = escaped;
            it->p = q + 1;
            return SYSLOG_SD_PARAM;
        }
        if (sd_at(it, p) != ']')
            return sd_fail(it, item, p);
        p++;
        if (sd_at(it, p) != '[') {
            it->state = SD_DONE;
            it->p = p;
            item->at = p;
            return SYSLOG_SD_END;
        }
        it->state = SD_AT_BRACKET;
    }
    /* SD_AT_BRACKET: p is a '[' */
    size_t e = sd_name_end(it, p + 1);
    if (e < p + 1)
        return sd_fail(it, item, p + 1);
    item->id = span(p + 1, e);
    it->p = e + 1;
    it->state = SD_IN_ELEMENT;
    return SYSLOG_SD_ELEMENT;
}

size_t syslog_sd_unescape(const uint8_t *data, struct syslog_span v, uint8_t *out)
{
    const uint8_t *s = data + v.off;
    size_t k = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (s[i] == '\\' && i + 1 < v.len &&
            (s[i + 1] == '"' || s[i + 1] == '\\' || s[i + 1] == ']'))
            i++;
        out[k++] = s[i];
    }
    return k;
}

/* ---------------------------------------------------------------------------------------
 * UTF-8 */

size_t syslog_utf8_seq(const uint8_t *s, size_t len)
{
    if (len == 0)
        return 0;
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2) /* continuation byte, or an overlong 2-byte lead */
        return 0;
    if (c < 0xE0)
        return (len >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (len < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0) /* overlong */
            return 0;
        if (c == 0xED && s[1] >= 0xA0) /* surrogates */
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (len < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
            (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xF4 && s[1] >= 0x90) /* past U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

size_t syslog_utf8_check(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (len - i >= 8) { /* eight ASCII bytes at a time */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & UINT64_C(0x8080808080808080))) {
                i += 8;
                continue;
            }
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = syslog_utf8_seq(s + i, len - i);
        if (k == 0)
            return i;
        i += k;
    }
    return len;
}
