/* daemon/codec/ber.c: the bounded BER reader declared in ber.h (framing, integers, OIDs). */
#include "ber.h"

#include <string.h>

void ber_init(struct ber_cur *c, const void *buf, size_t len)
{
    c->p = buf;
    c->end = c->p + len;
    c->depth = 0;
}

const char *ber_read(struct ber_cur *c, struct ber_tlv *t)
{
    const uint8_t *p = c->p;
    size_t left = ber_left(c);

    if (left == 0)
        return "unexpected end";
    if ((p[0] & 0x1f) == 0x1f)
        return "multi-byte tag";
    if (left < 2)
        return "truncated length";
    t->start = p;
    t->tag = p[0];
    uint8_t first = p[1];
    p += 2;
    left -= 2;

    size_t len;
    if (first < 0x80) {
        len = first;
    } else {
        size_t n = first & 0x7f;
        if (n == 0)
            return "indefinite length";
        if (n > 4)                  /* also 0xFF, reserved by X.690 8.1.3.5 */
            return "length too large";
        if (left < n)
            return "truncated length";
        len = 0;
        for (size_t i = 0; i < n; i++)
            len = len << 8 | p[i];
        p += n;
        left -= n;
    }
    if (len > left)
        return "length past end";
    t->val = p;
    t->len = len;
    c->p = p + len;
    return NULL;
}

const char *ber_expect(struct ber_cur *c, uint8_t tag, struct ber_tlv *t, const char *mismatch)
{
    const char *why = ber_read(c, t);
    if (why)
        return why;
    return t->tag == tag ? NULL : mismatch;
}

const char *ber_enter(const struct ber_cur *c, const struct ber_tlv *t, struct ber_cur *inner)
{
    if (c->depth >= BER_MAX_DEPTH)
        return "nesting too deep";
    inner->p = t->val;
    inner->end = t->val + t->len;
    inner->depth = c->depth + 1;
    return NULL;
}

/* The checks every integer content shares: present and in minimal form. */
static const char *int_form(const struct ber_tlv *t)
{
    if (t->len == 0)
        return "empty integer";
    if (t->len > 1) {
        uint8_t a = t->val[0], b = t->val[1] & 0x80;
        if ((a == 0x00 && !b) || (a == 0xff && b))
            return "non-minimal integer";
    }
    return NULL;
}

/* Signed content of at most `bytes` octets, sign-extended. */
static const char *int_bytes(const struct ber_tlv *t, size_t bytes, int64_t *out,
                             const char *range_err)
{
    const char *why = int_form(t);
    if (why)
        return why;
    if (t->len > bytes)
        return range_err;
    /* Sign-extend from the first octet, then shift the rest in as unsigned. */
    uint64_t v = (t->val[0] & 0x80) ? UINT64_MAX : 0;
    for (size_t i = 0; i < t->len; i++)
        v = v << 8 | t->val[i];
    *out = (v > INT64_MAX) ? -(int64_t)(UINT64_MAX - v) - 1 : (int64_t)v;
    return NULL;
}

const char *ber_int32(const struct ber_tlv *t, int32_t *out)
{
    int64_t v = 0;
    const char *why = int_bytes(t, 4, &v, "INTEGER out of range");
    if (!why)
        *out = (int32_t)v;
    return why;
}

const char *ber_int64(const struct ber_tlv *t, int64_t *out, const char *range_err)
{
    return int_bytes(t, 8, out, range_err);
}

/* Unsigned content of at most `bytes` octets after an optional leading zero. */
static const char *uint_bytes(const struct ber_tlv *t, size_t bytes, uint64_t *out,
                              const char *range_err)
{
    const char *why = int_form(t);
    if (why)
        return why;
    if (t->val[0] & 0x80)
        return range_err;               /* negative */
    const uint8_t *v = t->val;
    size_t n = t->len;
    if (v[0] == 0 && n > 1) {           /* minimal, so the next octet has its top bit set */
        v++;
        n--;
    }
    if (n > bytes)
        return range_err;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | v[i];
    *out = x;
    return NULL;
}

const char *ber_uint32(const struct ber_tlv *t, uint32_t *out, const char *range_err)
{
    uint64_t x = 0;
    const char *why = uint_bytes(t, 4, &x, range_err);
    if (!why)
        *out = (uint32_t)x;
    return why;
}

const char *ber_uint64(const struct ber_tlv *t, uint64_t *out, const char *range_err)
{
    return uint_bytes(t, 8, out, range_err);
}

/* Reads the sub-identifier starting at v[*i] (checked: minimal, <= 32 bits, complete). */
static const char *oid_subid(const uint8_t *v, size_t len, size_t *i, uint32_t *out)
{
    size_t k = *i;
    if (v[k] == 0x80)
        return "non-minimal OID arc";
    uint32_t x = 0;
    for (;;) {
        if (k >= len)
            return "truncated OID arc";
        if (x >> 25)
            return "OID arc too large";
        x = x << 7 | (v[k] & 0x7f);
        if (!(v[k++] & 0x80))
            break;
    }
    *i = k;
    *out = x;
    return NULL;
}

const char *ber_oid_check(const uint8_t *v, size_t len)
{
    if (len == 0)
        return "empty OID";
    size_t i = 0;
    unsigned arcs = 1;      /* the first sub-identifier holds two arcs */
    while (i < len) {
        if (v[i] < 0x80) {
            i++;            /* a one-octet arc (most of them): minimal and complete */
        } else {
            uint32_t x;
            const char *why = oid_subid(v, len, &i, &x);
            if (why)
                return why;
        }
        if (++arcs > BER_MAX_OID_ARCS)
            return "too many OID arcs";
    }
    return NULL;
}

/* "00" .. "99": two digits at a time. */
static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

size_t ber_u64_format(uint64_t x, char *out)
{
    if (x < 10) {
        out[0] = (char)('0' + x);
        return 1;
    }
    if (x < 100) {
        memcpy(out, digit_pairs + 2 * x, 2);
        return 2;
    }
    char tmp[20];
    size_t n = sizeof tmp;
    while (x >= 100) {
        n -= 2;
        memcpy(tmp + n, digit_pairs + 2 * (x % 100), 2);
        x /= 100;
    }
    if (x >= 10) {
        n -= 2;
        memcpy(tmp + n, digit_pairs + 2 * x, 2);
    } else {
        tmp[--n] = (char)('0' + x);
    }
    memcpy(out, tmp + n, sizeof tmp - n);
    return sizeof tmp - n;
}

/* ber_u64_format for an OID arc, with the one- and two-digit arcs (most) inline. */
static inline size_t put_arc(uint32_t x, char *out)
{
    if (x < 10) {
        out[0] = (char)('0' + x);
        return 1;
    }
    if (x < 100) {
        memcpy(out, digit_pairs + 2 * x, 2);
        return 2;
    }
    return ber_u64_format(x, out);
}

size_t ber_oid_format(const uint8_t *v, size_t len, char *out)
{
    size_t i = 0, o = 0;
    uint32_t x;
    if (len >= 3 && v[0] == 0x2b && v[1] == 6 && v[2] == 1) {
        memcpy(out, "1.3.6.1", 7);      /* internet: nearly every OID SNMP carries */
        i = 3;
        o = 7;
    } else if (len == 0 || oid_subid(v, len, &i, &x)) {
        out[0] = '\0';
        return 0;
    } else {
        uint32_t top = x < 40 ? 0 : x < 80 ? 1 : 2;
        o += ber_u64_format(top, out + o);
        out[o++] = '.';
        o += ber_u64_format(x - top * 40, out + o);
    }
    while (i < len) {
        if (v[i] < 0x80)
            x = v[i++];     /* a one-octet arc */
        else if (oid_subid(v, len, &i, &x))
            break;
        out[o++] = '.';
        o += put_arc(x, out + o);
    }
    out[o] = '\0';
    return o;
}

size_t ber_len_size(size_t n)
{
    size_t k = 1;
    if (n >= 0x80)
        for (size_t x = n; x; x >>= 8)
            k++;
    return k;
}

uint8_t *ber_put_len(uint8_t *p, size_t n)
{
    size_t k = ber_len_size(n);
    if (k == 1) {
        *p++ = (uint8_t)n;
        return p;
    }
    *p++ = (uint8_t)(0x80 | (k - 1));
    for (size_t i = k - 1; i > 0; i--)
        *p++ = (uint8_t)(n >> (8 * (i - 1)));
    return p;
}
