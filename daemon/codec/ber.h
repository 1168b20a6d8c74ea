/* daemon/codec/ber.h: a bounded reader for the BER subset SNMP uses (RFC 3417 §8): one-octet
 * identifiers, definite lengths, primitive INTEGER / OCTET STRING / OBJECT IDENTIFIER.
 * Pure C, no Lua, no allocation. Every reader takes a cursor over bytes that are hostile:
 * each length is checked against what remains, nesting is bounded, integers and OIDs are
 * range- and minimality-checked. Failures return a constant reason string (NULL means
 * success) so callers have one error path and the reasons form a small fixed set. */
#ifndef LUADGRAM_BER_H
#define LUADGRAM_BER_H

#include <stddef.h>
#include <stdint.h>

#define BER_MAX_DEPTH 32          /* constructed values one cursor may be nested in */
#define BER_MAX_OID_ARCS 128      /* RFC 2578 §7.1.3 */
/* "4294967295." per arc, times 128, plus the NUL: the longest dotted OID string. */
#define BER_OID_STR_MAX (BER_MAX_OID_ARCS * 11 + 1)

/* Identifier octets (class | constructed | number) of the universal types SNMP uses. */
#define BER_INTEGER 0x02
#define BER_OCTET_STRING 0x04
#define BER_NULL 0x05
#define BER_OID 0x06
#define BER_SEQUENCE 0x30
#define BER_CONSTRUCTED 0x20

/* Reasons the readers return (constant strings, the whole set):
 *   framing  "unexpected end", "multi-byte tag", "truncated length", "indefinite length",
 *            "length too large", "length past end", "nesting too deep"
 *   integers "empty integer", "non-minimal integer", "INTEGER out of range" and the
 *            caller's range reason for unsigned types
 *   OIDs     "empty OID", "truncated OID arc", "non-minimal OID arc", "OID arc too large",
 *            "too many OID arcs" */

/* A window on the bytes still to read. p == end when all is read. */
struct ber_cur {
    const uint8_t *p;      /* next unread byte */
    const uint8_t *end;    /* one past the last byte this cursor may read */
    int depth;             /* constructed values entered to get here */
};

/* One decoded tag-length-value: the content is val[0 .. len). */
struct ber_tlv {
    uint8_t tag;             /* the identifier octet */
    const uint8_t *start;    /* the identifier octet's address (start .. val+len is the TLV) */
    const uint8_t *val;
    size_t len;
};

/* Starts a cursor over buf[0 .. len) at depth 0. */
void ber_init(struct ber_cur *c, const void *buf, size_t len);

/* Bytes the cursor has not read yet. */
static inline size_t ber_left(const struct ber_cur *c)
{
    return (size_t)(c->end - c->p);
}

/* Reads one identifier + length and steps over the content. Rejects multi-byte tags,
 * indefinite lengths (0x80), more than 4 length octets and a content past the end. Length
 * octets beyond the minimum are accepted, as RFC 3417 §8 allows. */
const char *ber_read(struct ber_cur *c, struct ber_tlv *t);

/* ber_read, then requires t->tag == tag (else returns `mismatch`). */
const char *ber_expect(struct ber_cur *c, uint8_t tag, struct ber_tlv *t, const char *mismatch);

/* Makes *inner a cursor over the content of t, one level deeper than c. Fails with
 * BER_ERR_DEPTH past BER_MAX_DEPTH. */
const char *ber_enter(const struct ber_cur *c, const struct ber_tlv *t, struct ber_cur *inner);

/* Integer content decoders. Each checks the minimal two's-complement form (X.690 8.3.2) and
 * the range: INTEGER is 32-bit signed; the unsigned ones fail with range_err when the value
 * is negative or wider than 32 / 64 bits (0xFFFFFFFF takes 5 octets: 00 FF FF FF FF). */
const char *ber_int32(const struct ber_tlv *t, int32_t *out);                 /* INTEGER */
const char *ber_int64(const struct ber_tlv *t, int64_t *out, const char *range_err);
const char *ber_uint32(const struct ber_tlv *t, uint32_t *out, const char *range_err);
const char *ber_uint64(const struct ber_tlv *t, uint64_t *out, const char *range_err);

/* Checks OID content: non-empty, every arc minimal (no leading 0x80 octet), at most 32
 * bits, at most BER_MAX_OID_ARCS arcs in all (the first octet group counts as two). */
const char *ber_oid_check(const uint8_t *v, size_t len);
/* Formats checked OID content as "1.3.6.1..." into out (at least BER_OID_STR_MAX bytes);
 * returns the string's length. */
size_t ber_oid_format(const uint8_t *v, size_t len, char *out);
/* Writes x in decimal (1 to 20 digits, no NUL) at out; returns the digit count. */
size_t ber_u64_format(uint64_t x, char *out);

/* ---- writing ---- */
/* Octets of a minimal definite length for content of n octets. */
size_t ber_len_size(size_t n);
/* Writes that length at p; returns the end. */
uint8_t *ber_put_len(uint8_t *p, size_t n);

#endif
