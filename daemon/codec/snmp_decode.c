/* daemon/codec/snmp_decode.c: SNMPv1/v2c message decoding over the BER reader, RFC 3584 trap
 * OIDs, text/hex presentation helpers, Opaque-wrapped numbers, the inform acknowledgement,
 * and the record as JSON text (a bounded writer: scripts/snmptrap.lua's fast path). Every
 * function that reads the packet fails through one label. */
#include "snmp_decode.h"

#include <float.h>
#include <stdio.h>
#include <string.h>

#include "mib.h"

/* ---- well-known OIDs ---- */

static const uint8_t OID_SYSUPTIME_0[] = {0x2b, 6, 1, 2, 1, 1, 3, 0};
static const uint8_t OID_TRAPOID_0[] = {0x2b, 6, 1, 6, 3, 1, 1, 4, 1, 0};
static const uint8_t OID_TRAPADDRESS_0[] = {0x2b, 6, 1, 6, 3, 18, 1, 3, 0};
static const uint8_t OID_TRAPCOMMUNITY_0[] = {0x2b, 6, 1, 6, 3, 18, 1, 4, 0};
static const uint8_t OID_TRAPENTERPRISE_0[] = {0x2b, 6, 1, 6, 3, 1, 1, 4, 3, 0};

#define WELLKNOWN(arr, dotted) {arr, sizeof arr, dotted}
const struct snmp_wellknown SNMP_SYSUPTIME_0 = WELLKNOWN(OID_SYSUPTIME_0, "1.3.6.1.2.1.1.3.0");
const struct snmp_wellknown SNMP_TRAPOID_0 = WELLKNOWN(OID_TRAPOID_0, "1.3.6.1.6.3.1.1.4.1.0");
const struct snmp_wellknown SNMP_TRAPADDRESS_0 =
    WELLKNOWN(OID_TRAPADDRESS_0, "1.3.6.1.6.3.18.1.3.0");
const struct snmp_wellknown SNMP_TRAPCOMMUNITY_0 =
    WELLKNOWN(OID_TRAPCOMMUNITY_0, "1.3.6.1.6.3.18.1.4.0");
const struct snmp_wellknown SNMP_TRAPENTERPRISE_0 =
    WELLKNOWN(OID_TRAPENTERPRISE_0, "1.3.6.1.6.3.1.1.4.3.0");

int snmp_oid_is(const uint8_t *oid, size_t len, const struct snmp_wellknown *w)
{
    return len == w->len && memcmp(oid, w->ber, len) == 0;
}

/* ---- names ---- */

const char *snmp_pdu_name(uint8_t pdu)
{
    static const char *const names[] = {"get", "getnext", "response", "set", "trap",
                                        "getbulk", "inform", "trapv2", "report"};
    if (pdu < SNMP_PDU_GET || pdu > SNMP_PDU_REPORT)
        return NULL;
    return names[pdu - SNMP_PDU_GET];
}

const char *snmp_type_name(uint8_t type)
{
    switch (type) {
    case BER_INTEGER: return "INTEGER";
    case BER_OCTET_STRING: return "OCTET STRING";
    case BER_NULL: return "NULL";
    case BER_OID: return "OBJECT IDENTIFIER";
    case SNMP_IPADDRESS: return "IpAddress";
    case SNMP_COUNTER32: return "Counter32";
    case SNMP_GAUGE32: return "Gauge32";
    case SNMP_TIMETICKS: return "TimeTicks";
    case SNMP_OPAQUE: return "Opaque";
    case SNMP_COUNTER64: return "Counter64";
    case SNMP_NOSUCHOBJECT: return "noSuchObject";
    case SNMP_NOSUCHINSTANCE: return "noSuchInstance";
    case SNMP_ENDOFMIBVIEW: return "endOfMibView";
    default: return NULL;
    }
}

/* ---- the header ---- */

/* Reads an INTEGER field called `what` ("expected INTEGER <what>" on a wrong tag). */
static const char *read_int(struct ber_cur *c, int32_t *out, const char *mismatch,
                            struct ber_tlv *t)
{
    const char *why = ber_expect(c, BER_INTEGER, t, mismatch);
    return why ? why : ber_int32(t, out);
}

/* Checks the PDU type against the version (RFC 3584 §2.1: the v1 Trap-PDU only in v1,
 * GetBulk, Inform, SNMPv2-Trap and Report only in v2c). */
static const char *pdu_for_version(uint8_t pdu, int32_t version)
{
    if (!snmp_pdu_name(pdu))
        return "unknown PDU type";
    if (version == 1 && pdu == SNMP_PDU_TRAP)
        return "Trap-PDU in SNMPv2c";
    if (version == 0 && (pdu == SNMP_PDU_GETBULK || pdu >= SNMP_PDU_INFORM))
        return "SNMPv2 PDU in SNMPv1";
    return NULL;
}

/* The v1 Trap-PDU fields before the VarBindList. */
static const char *read_trap_header(struct ber_cur *pc, struct snmp_msg *m)
{
    struct ber_tlv t;
    const char *why;
    if ((why = ber_expect(pc, BER_OID, &t, "expected OID enterprise")))
        return why;
    if ((why = ber_oid_check(t.val, t.len)))
        return why;
    m->enterprise = t.val;
    m->enterprise_len = t.len;
    if ((why = ber_expect(pc, SNMP_IPADDRESS, &t, "expected IpAddress agent-addr")))
        return why;
    if (t.len != 4)
        return "IpAddress not 4 octets";
    m->agent_addr = t.val;
    if ((why = read_int(pc, &m->generic_trap, "expected INTEGER generic-trap", &t)))
        return why;
    if (m->generic_trap < 0 || m->generic_trap > 6)
        return "generic-trap out of range";
    if ((why = read_int(pc, &m->specific_trap, "expected INTEGER specific-trap", &t)))
        return why;
    if (m->generic_trap == 6 && m->specific_trap < 0)
        return "specific-trap negative";
    if ((why = ber_expect(pc, SNMP_TIMETICKS, &t, "expected TimeTicks time-stamp")))
        return why;
    return ber_uint32(&t, &m->time_stamp, "TimeTicks out of range");
}

/* request-id, error-status, error-index (or non-repeaters, max-repetitions). */
static const char *read_request_header(struct ber_cur *pc, struct snmp_msg *m)
{
    struct ber_tlv t;
    const char *why;
    if ((why = read_int(pc, &m->request_id, "expected INTEGER request-id", &m->request_tlv)))
        return why;
    if ((why = read_int(pc, &m->error_status, "expected INTEGER error-status", &t)))
        return why;
    return read_int(pc, &m->error_index, "expected INTEGER error-index", &t);
}

/* The PDU, the last value of cursor mc (a message's or a scoped PDU's), up to the
 * VarBindList; NULL or the reason. */
static const char *read_pdu(struct ber_cur *mc, struct snmp_msg *m)
{
    struct ber_cur pc;
    struct ber_tlv t;
    const char *why;
    if ((why = ber_read(mc, &t)))
        return why;
    m->pdu = t.tag;
    if ((why = pdu_for_version(m->pdu, m->version == 0 ? 0 : 1)))
        return why;
    if (ber_left(mc))
        return "trailing bytes in message";
    if ((why = ber_enter(mc, &t, &pc)))
        return why;
    why = m->pdu == SNMP_PDU_TRAP ? read_trap_header(&pc, m) : read_request_header(&pc, m);
    if (why)
        return why;
    if ((why = ber_expect(&pc, BER_SEQUENCE, &m->varbinds, "expected SEQUENCE varbind list")))
        return why;
    if (ber_left(&pc))
        return "trailing bytes in PDU";
    return ber_enter(&pc, &m->varbinds, &m->next);
}

enum snmp_status snmp_decode_header(struct snmp_msg *m, const uint8_t *buf, size_t len)
{
    struct ber_cur top, mc;
    struct ber_tlv t;
    const char *why;
    enum snmp_status fail = SNMP_MALFORMED;

    memset(m, 0, sizeof *m);
    ber_init(&top, buf, len);
    if ((why = ber_expect(&top, BER_SEQUENCE, &t, "expected SEQUENCE message")))
        goto fail;
    if (ber_left(&top)) {
        why = "trailing bytes after message";
        goto fail;
    }
    if ((why = ber_enter(&top, &t, &mc)))
        goto fail;
    if ((why = read_int(&mc, &m->version, "expected INTEGER version", &t)))
        goto fail;
    if (m->version == 2 || m->version == 3) {
        why = m->version == 3 ? "SNMPv3 is not supported" : "SNMPv2u is not supported";
        fail = SNMP_UNSUPPORTED;
        goto fail;
    }
    if (m->version != 0 && m->version != 1) {
        why = "unknown version";
        goto fail;
    }
    if ((why = ber_expect(&mc, BER_OCTET_STRING, &m->community,
                          "expected OCTET STRING community")))
        goto fail;
    if ((why = read_pdu(&mc, m)))
        goto fail;
    return SNMP_OK;

fail:
    m->why = why;
    return fail;
}

enum snmp_status snmp_decode_scoped(struct snmp_msg *m, const uint8_t *buf, size_t len,
                                    struct snmp_v3 *v3)
{
    struct ber_cur top, sc;
    struct ber_tlv t;
    const char *why;

    memset(m, 0, sizeof *m);
    m->version = 3;
    m->v3 = v3;
    ber_init(&top, buf, len);
    /* A DES-decrypted scoped PDU may be followed by padding: what follows is ignored. */
    if ((why = ber_expect(&top, BER_SEQUENCE, &t, "expected SEQUENCE scopedPDU")))
        goto fail;
    if ((why = ber_enter(&top, &t, &sc)))
        goto fail;
    if ((why = ber_expect(&sc, BER_OCTET_STRING, &v3->context_engine,
                          "expected OCTET STRING contextEngineID")))
        goto fail;
    if ((why = ber_expect(&sc, BER_OCTET_STRING, &v3->context_name,
                          "expected OCTET STRING contextName")))
        goto fail;
    if ((why = read_pdu(&sc, m)))
        goto fail;
    return SNMP_OK;

fail:
    m->why = why;
    return SNMP_MALFORMED;
}

/* ---- bindings ---- */

/* Checks a value's content for its type and fills vb's number fields. */
static const char *check_value(struct snmp_varbind *vb, const struct ber_tlv *t)
{
    switch (t->tag) {
    case BER_INTEGER:
        return ber_int32(t, &vb->i);
    case BER_OCTET_STRING:
    case SNMP_OPAQUE:
        return NULL;
    case BER_NULL:
        return t->len ? "NULL with content" : NULL;
    case BER_OID:
        return ber_oid_check(t->val, t->len);
    case SNMP_IPADDRESS:
        return t->len == 4 ? NULL : "IpAddress not 4 octets";
    case SNMP_COUNTER32:
    case SNMP_GAUGE32:
    case SNMP_TIMETICKS: {
        static const char *const range[] = {"Counter32 out of range", "Gauge32 out of range",
                                            "TimeTicks out of range"};
        uint32_t u;
        const char *why = ber_uint32(t, &u, range[t->tag - SNMP_COUNTER32]);
        vb->u = u;
        return why;
    }
    case SNMP_COUNTER64:
        return ber_uint64(t, &vb->u, "Counter64 out of range");
    case SNMP_NOSUCHOBJECT:
    case SNMP_NOSUCHINSTANCE:
    case SNMP_ENDOFMIBVIEW:
        return t->len ? "exception with content" : NULL;
    default:
        return "unknown value type";
    }
}

enum snmp_status snmp_next_varbind(struct snmp_msg *m, struct snmp_varbind *vb)
{
    struct ber_cur vc;
    struct ber_tlv t;
    const char *why;

    if (ber_left(&m->next) == 0)
        return SNMP_END;
    memset(vb, 0, sizeof *vb);
    if ((why = ber_expect(&m->next, BER_SEQUENCE, &t, "expected SEQUENCE varbind")))
        goto fail;
    if ((why = ber_enter(&m->next, &t, &vc)))
        goto fail;
    if ((why = ber_expect(&vc, BER_OID, &t, "expected OID varbind name")))
        goto fail;
    if ((why = ber_oid_check(t.val, t.len)))
        goto fail;
    vb->oid = t.val;
    vb->oid_len = t.len;
    if ((why = ber_read(&vc, &t)))
        goto fail;
    vb->type = t.tag;
    vb->val = t.val;
    vb->val_len = t.len;
    if ((why = check_value(vb, &t)))
        goto fail;
    if (ber_left(&vc)) {
        why = "trailing bytes in varbind";
        goto fail;
    }
    return SNMP_OK;

fail:
    m->next.p = m->next.end;      /* a failed list stays failed */
    m->why = why;
    return SNMP_MALFORMED;
}

enum snmp_status snmp_decode(struct snmp_msg *m, const uint8_t *buf, size_t len, size_t *count)
{
    enum snmp_status st = snmp_decode_header(m, buf, len);
    if (st != SNMP_OK)
        return st;
    struct ber_cur start = m->next;
    struct snmp_varbind vb;
    size_t n = 0;
    while ((st = snmp_next_varbind(m, &vb)) == SNMP_OK)
        n++;
    if (st != SNMP_END)
        return st;
    m->next = start;
    if (count)
        *count = n;
    return SNMP_OK;
}

/* ---- RFC 3584 ---- */

size_t snmp_v1_trap_oid(const struct snmp_msg *m, char *out)
{
    if (m->generic_trap != 6) {
        /* snmpTraps (1.3.6.1.6.3.1.1.5) . generic + 1 */
        static const char prefix[] = "1.3.6.1.6.3.1.1.5.";
        memcpy(out, prefix, sizeof prefix - 1);
        out[sizeof prefix - 1] = (char)('1' + m->generic_trap);
        out[sizeof prefix] = '\0';
        return sizeof prefix;
    }
    size_t n = ber_oid_format(m->enterprise, m->enterprise_len, out);
    memcpy(out + n, ".0.", 3);
    n += 3;
    n += snmp_u64_str((uint32_t)m->specific_trap, out + n);
    return n;
}

/* ---- presentation ---- */

/* The length (2 to 4) of the UTF-8 sequence at v[0 .. n) (n >= 1, v[0] >= 0x80), with its
 * code point in *cp; 0 when it is not valid UTF-8: a bad lead or continuation byte, cut
 * short, overlong, a surrogate or past U+10FFFF (as Lua 5.4's utf8.len has it). */
static size_t utf8_seq(const uint8_t *v, size_t n, uint32_t *cp)
{
    uint8_t b = v[0];
    size_t extra;
    uint32_t c, min;
    if (b >= 0xc2 && b <= 0xdf) {
        extra = 1, c = b & 0x1f, min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
        extra = 2, c = b & 0x0f, min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
        extra = 3, c = b & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n - 1 < extra)
        return 0;
    for (size_t k = 1; k <= extra; k++) {
        if ((v[k] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (v[k] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return extra + 1;
}

/* Valid UTF-8 without C0 controls but TAB, LF, CR, without DEL, and (unless allow_c1)
 * without C1 controls. */
static int utf8_text(const uint8_t *v, size_t n, int allow_c1)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = v[i];
        if (b < 0x80) {
            if ((b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7f)
                return 0;
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = utf8_seq(v + i, n - i, &cp);
        if (k == 0)
            return 0;
        if (cp < 0xa0 && !allow_c1)     /* C1 controls */
            return 0;
        i += k;
    }
    return 1;
}

int snmp_is_text(const uint8_t *v, size_t n)
{
    return utf8_text(v, n, 0);
}

int snmp_is_text_c1(const uint8_t *v, size_t n)
{
    return utf8_text(v, n, 1);
}

void snmp_hex(const uint8_t *v, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        if (i)
            *out++ = ' ';
        *out++ = digits[v[i] >> 4];
        *out++ = digits[v[i] & 15];
    }
}

size_t snmp_u64_str(uint64_t x, char *out)
{
    size_t n = ber_u64_format(x, out);
    out[n] = '\0';
    return n;
}

/* ---- Opaque-wrapped numbers ---- */

/* Big-endian unsigned of n <= 8 octets. */
static uint64_t be_uint(const uint8_t *v, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | v[i];
    return x;
}

void snmp_opaque_decode(const uint8_t *v, size_t n, struct snmp_opaque *o)
{
    memset(o, 0, sizeof *o);
    /* 9F <0x30 + type> <short length> <content>, exactly filling the Opaque. */
    if (n < 4 || v[0] != 0x9f || v[2] >= 0x80 || (size_t)v[2] != n - 3)
        return;
    const uint8_t *c = v + 3;
    size_t len = n - 3;
    struct ber_tlv t = {.tag = BER_INTEGER, .start = v, .val = c, .len = len};
    switch (v[1]) {
    case 0x78:              /* Float: IEEE 754 single, big-endian */
        if (len == 4) {
            uint32_t bits = (uint32_t)be_uint(c, 4);
            float f;
            memcpy(&f, &bits, sizeof f);
            o->d = f;
            o->kind = SNMP_OPQ_FLOAT;
        }
        break;
    case 0x79:              /* Double */
        if (len == 8) {
            uint64_t bits = be_uint(c, 8);
            memcpy(&o->d, &bits, sizeof o->d);
            o->kind = SNMP_OPQ_DOUBLE;
        }
        break;
    case 0x7a:              /* Integer64 */
        if (ber_int64(&t, &o->i, "") == NULL)
            o->kind = SNMP_OPQ_I64;
        break;
    case 0x7b:              /* Unsigned64 */
    case 0x76:              /* Counter64 */
        if (ber_uint64(&t, &o->u, "") == NULL)
            o->kind = v[1] == 0x7b ? SNMP_OPQ_U64 : SNMP_OPQ_COUNTER64;
        break;
    default:
        break;
    }
}

/* ---- the inform acknowledgement ---- */

/* Octets of t written back with a minimal length. */
static size_t tlv_size(const struct ber_tlv *t)
{
    return 1 + ber_len_size(t->len) + t->len;
}

/* Content octets of the Response-PDU. */
static size_t response_pdu_len(const struct snmp_msg *m)
{
    return tlv_size(&m->request_tlv) + 3 + 3 + tlv_size(&m->varbinds);
}

size_t snmp_response_pdu_size(const struct snmp_msg *m)
{
    size_t pdu = response_pdu_len(m);
    return 1 + ber_len_size(pdu) + pdu;
}

/* Content octets of the message. */
static size_t response_msg_len(const struct snmp_msg *m)
{
    return 3 + tlv_size(&m->community) + snmp_response_pdu_size(m);
}

size_t snmp_inform_response_size(const struct snmp_msg *m)
{
    size_t msg = response_msg_len(m);
    return 1 + ber_len_size(msg) + msg;
}

static uint8_t *put_tlv(uint8_t *p, const struct ber_tlv *t)
{
    *p++ = t->tag;
    p = ber_put_len(p, t->len);
    memcpy(p, t->val, t->len);
    return p + t->len;
}

size_t snmp_response_pdu_write(const struct snmp_msg *m, uint8_t *out)
{
    static const uint8_t zero[] = {BER_INTEGER, 1, 0};
    uint8_t *p = out;
    *p++ = SNMP_PDU_RESPONSE;
    p = ber_put_len(p, response_pdu_len(m));
    p = put_tlv(p, &m->request_tlv);
    memcpy(p, zero, 3);                 /* error-status noError(0) */
    p += 3;
    memcpy(p, zero, 3);                 /* error-index 0 */
    p += 3;
    p = put_tlv(p, &m->varbinds);
    return (size_t)(p - out);
}

size_t snmp_inform_response_write(const struct snmp_msg *m, uint8_t *out)
{
    uint8_t *p = out;
    *p++ = BER_SEQUENCE;
    p = ber_put_len(p, response_msg_len(m));
    *p++ = BER_INTEGER;
    *p++ = 1;
    *p++ = (uint8_t)m->version;
    p = put_tlv(p, &m->community);
    p += snmp_response_pdu_write(m, p);
    return (size_t)(p - out);
}

const char *snmp_opaque_name(enum snmp_opaque_kind kind)
{
    static const char *const names[] = {NULL, "Float", "Double", "Integer64", "Unsigned64",
                                        "Counter64"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : NULL;
}

/* ---- the JSON record ---- */

/* A bounded writer: what does not fit in out[0 .. cap) is counted in len, not written. */
struct jw {
    char *out;
    size_t cap;
    size_t len;        /* the length of the whole text so far (saturates at SIZE_MAX) */
    const struct mib_table *names;  /* MIB names to add (snmp_json_record_named), or NULL */
};

/* jw_put once the text no longer fits: writes what still does, counts the rest. */
static void jw_put_past(struct jw *w, const void *s, size_t n)
{
    if (w->len < w->cap) {
        size_t room = w->cap - w->len;
        memcpy(w->out + w->len, s, n < room ? n : room);
    }
    w->len = n > SIZE_MAX - w->len ? SIZE_MAX : w->len + n;
}

static inline void jw_put(struct jw *w, const void *s, size_t n)
{
    if (w->len <= w->cap && n <= w->cap - w->len) {
        memcpy(w->out + w->len, s, n);
        w->len += n;
    } else {
        jw_put_past(w, s, n);
    }
}

#define JW_LIT(w, lit) jw_put((w), lit, sizeof lit - 1)

/* Where n bytes can be written in place, or NULL when they do not fit (the caller then
 * writes through jw_put); jw_commit(w, k) takes k <= n of them. */
static inline char *jw_room(struct jw *w, size_t n)
{
    return w->len <= w->cap && n <= w->cap - w->len ? w->out + w->len : NULL;
}

static inline void jw_commit(struct jw *w, size_t k)
{
    w->len += k;
}

/* lua-cjson's string escapes: controls as \b \t \n \f \r or \u00XX, DEL as \u007f, and
 * '"', '\' and '/' after a backslash. 1 for the bytes that need one. */
static const uint8_t json_escaped[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,     /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,     /* 0x10 */
    ['"'] = 1, ['/'] = 1, ['\\'] = 1, [0x7f] = 1,
};

static size_t json_escape(uint8_t c, char e[6])
{
    static const char digits[] = "0123456789abcdef";
    static const char short_form[] = "btn\0fr";     /* 8 .. 13; \0: none (VT) */
    e[0] = '\\';
    if (c == '"' || c == '\\' || c == '/') {
        e[1] = (char)c;
        return 2;
    }
    if (c >= 8 && c <= 13 && short_form[c - 8]) {
        e[1] = short_form[c - 8];
        return 2;
    }
    memcpy(e + 1, "u00", 3);
    e[4] = digits[c >> 4];
    e[5] = digits[c & 15];
    return 6;
}

/* v[0 .. n) as a JSON string, escaped as lua-cjson does (the bytes must be UTF-8). */
static void jw_str(struct jw *w, const uint8_t *v, size_t n)
{
    size_t run = 0;
    JW_LIT(w, "\"");
    for (size_t i = 0; i < n; i++) {
        if (!json_escaped[v[i]])
            continue;
        char e[6];
        jw_put(w, v + run, i - run);
        jw_put(w, e, json_escape(v[i], e));
        run = i + 1;
    }
    jw_put(w, v + run, n - run);
    JW_LIT(w, "\"");
}

size_t snmp_json_string(const uint8_t *v, size_t n, char *out)
{
    char *o = out;
    *o++ = '"';
    for (size_t i = 0; i < n;) {
        uint8_t b = v[i];
        if (b < 0x80) {
            if (json_escaped[b])
                o += json_escape(b, o);
            else
                *o++ = (char)b;
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = utf8_seq(v + i, n - i, &cp);
        if (k) {
            memcpy(o, v + i, k);
            i += k;
        } else {                /* U+FFFD for this byte; the next one is read again */
            memcpy(o, "\xef\xbf\xbd", 3);
            k = 3;
            i++;
        }
        o += k;
    }
    *o++ = '"';
    return (size_t)(o - out);
}

/* "de ad be ef" (snmp_hex) as a JSON string. */
static void jw_hex(struct jw *w, const uint8_t *v, size_t n)
{
    JW_LIT(w, "\"");
    char *p = n && n < w->cap / 3 ? jw_room(w, 3 * n - 1) : NULL;
    if (p) {
        snmp_hex(v, n, p);
        jw_commit(w, 3 * n - 1);
    } else {
        char chunk[3 * 32];
        for (size_t i = 0; i < n; i += 32) {
            size_t k = n - i < 32 ? n - i : 32;
            if (i)
                JW_LIT(w, " ");
            snmp_hex(v + i, k, chunk);
            jw_put(w, chunk, 3 * k - 1);
        }
    }
    JW_LIT(w, "\"");
}

static void jw_u64(struct jw *w, uint64_t x)
{
    char buf[20];
    jw_put(w, buf, ber_u64_format(x, buf));
}

static void jw_i64(struct jw *w, int64_t x)
{
    if (x < 0)
        JW_LIT(w, "-");
    jw_u64(w, x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x);
}

/* A number the way lua-cjson writes it with encode_number_precision(14) and
 * encode_invalid_numbers("null"). */
static void jw_double(struct jw *w, double d)
{
    if (d != d || d > DBL_MAX || d < -DBL_MAX) {
        JW_LIT(w, "null");
        return;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%.14g", d);
    if (n <= 0 || (size_t)n >= sizeof buf)
        return;                         /* cannot happen: at most 21 characters */
    for (int i = 0; i < n; i++)
        if (buf[i] == ',')              /* a locale's decimal comma, as lua-cjson fixes it */
            buf[i] = '.';
    jw_put(w, buf, (size_t)n);
}

/* Checked OID content as "1.3.6..." in quotes. */
static void jw_oid(struct jw *w, const uint8_t *v, size_t n)
{
    char *p = jw_room(w, BER_OID_STR_MAX + 2);
    if (p) {
        p[0] = '"';
        size_t k = ber_oid_format(v, n, p + 1);     /* its NUL is overwritten */
        p[k + 1] = '"';
        jw_commit(w, k + 2);
        return;
    }
    char tmp[BER_OID_STR_MAX];
    size_t k = ber_oid_format(v, n, tmp);
    JW_LIT(w, "\"");
    jw_put(w, tmp, k);
    JW_LIT(w, "\"");
}

/* Four octets as "a.b.c.d" in quotes. */
static void jw_ipv4(struct jw *w, const uint8_t *a)
{
    char buf[18];
    size_t k = 0;
    buf[k++] = '"';
    for (int i = 0; i < 4; i++) {
        if (i)
            buf[k++] = '.';
        k += ber_u64_format(a[i], buf + k);
    }
    buf[k++] = '"';
    jw_put(w, buf, k);
}

/* Octets as the Lua path gives them: the text when it is text, else hex and hex_member
 * (",\"hex\":true"). */
static void jw_octets(struct jw *w, const uint8_t *v, size_t n, int text,
                      const char *hex_member, size_t hex_member_len)
{
    if (text) {
        jw_str(w, v, n);
        return;
    }
    jw_hex(w, v, n);
    jw_put(w, hex_member, hex_member_len);
}

#define HEX_MEMBER ",\"hex\":true"

static void jw_opaque(struct jw *w, const uint8_t *v, size_t n)
{
    struct snmp_opaque o;
    snmp_opaque_decode(v, n, &o);
    if (o.kind == SNMP_OPQ_NONE)
        return;
    JW_LIT(w, ",\"opaque_type\":\"");
    const char *name = snmp_opaque_name(o.kind);
    jw_put(w, name, strlen(name));
    JW_LIT(w, "\",\"opaque_value\":");
    switch (o.kind) {
    case SNMP_OPQ_FLOAT:
    case SNMP_OPQ_DOUBLE:
        jw_double(w, o.d);
        break;
    case SNMP_OPQ_I64:                  /* the handler gives 64-bit integers as strings */
        JW_LIT(w, "\"");
        jw_i64(w, o.i);
        JW_LIT(w, "\"");
        break;
    default:
        JW_LIT(w, "\"");
        jw_u64(w, o.u);
        JW_LIT(w, "\"");
        break;
    }
}

/* MIB names (w->names set): `member` ('"name":"', with its comma) and the name of
 * arcs[0 .. n), when the table has one; returns the lookup (for value_name). */
static struct mib_match jw_mib_name(struct jw *w, const char *member, size_t mlen,
                                    const uint32_t *arcs, size_t n)
{
    struct mib_match mm = mib_lookup(w->names, arcs, n);
    if (!mm.node)
        return mm;
    char tmp[MIB_NAME_MAX];
    size_t k = mib_name_write(w->names, &mm, arcs, n, tmp);
    jw_put(w, member, mlen);
    jw_put(w, tmp, k);
    JW_LIT(w, "\"");
    return mm;
}

/* The same for checked OID content, looked up in place and written straight into out. */
static struct mib_match jw_mib_name_ber(struct jw *w, const char *member, size_t mlen,
                                        const uint8_t *oid, size_t len)
{
    struct mib_match mm = mib_lookup_ber(w->names, oid, len);
    if (!mm.node)
        return mm;
    char *p = jw_room(w, mlen + MIB_NAME_MAX + 1);
    if (p) {
        memcpy(p, member, mlen);
        size_t k = mlen + mib_name_write_ber(w->names, &mm, oid, len, p + mlen);
        p[k] = '"';
        jw_commit(w, k + 1);
        return mm;
    }
    char tmp[MIB_NAME_MAX];
    size_t k = mib_name_write_ber(w->names, &mm, oid, len, tmp);
    jw_put(w, member, mlen);
    jw_put(w, tmp, k);
    JW_LIT(w, "\"");
    return mm;
}

#define TRAP_NAME_MEMBER ",\"trap_name\":\""
#define NAME_MEMBER ",\"name\":\""

/* {"oid":..,"type":..,"value":..,...} for one binding (of a type snmp_next_varbind
 * accepts). */
static void jw_varbind(struct jw *w, const struct snmp_varbind *vb)
{
    struct mib_match named = {NULL, 0, 0};
    JW_LIT(w, "{\"oid\":");
    jw_oid(w, vb->oid, vb->oid_len);
    if (w->names)
        named = jw_mib_name_ber(w, NAME_MEMBER, sizeof NAME_MEMBER - 1, vb->oid, vb->oid_len);
    switch (vb->type) {
    case BER_INTEGER:
        JW_LIT(w, ",\"type\":\"INTEGER\",\"value\":");
        jw_i64(w, vb->i);
        if (named.node) {
            size_t k;
            const char *label = mib_enum_label(w->names, &named, vb->i, &k);
            if (label) {
                JW_LIT(w, ",\"value_name\":\"");
                jw_put(w, label, k);
                JW_LIT(w, "\"");
            }
        }
        break;
    case SNMP_COUNTER32:
        JW_LIT(w, ",\"type\":\"Counter32\",\"value\":");
        jw_u64(w, vb->u);
        break;
    case SNMP_GAUGE32:
        JW_LIT(w, ",\"type\":\"Gauge32\",\"value\":");
        jw_u64(w, vb->u);
        break;
    case SNMP_TIMETICKS:
        JW_LIT(w, ",\"type\":\"TimeTicks\",\"value\":");
        jw_u64(w, vb->u);
        break;
    case SNMP_COUNTER64:
        JW_LIT(w, ",\"type\":\"Counter64\",\"value\":\"");
        jw_u64(w, vb->u);
        JW_LIT(w, "\"");
        break;
    case BER_OID:
        JW_LIT(w, ",\"type\":\"OBJECT IDENTIFIER\",\"value\":");
        jw_oid(w, vb->val, vb->val_len);
        break;
    case SNMP_IPADDRESS:
        JW_LIT(w, ",\"type\":\"IpAddress\",\"value\":");
        jw_ipv4(w, vb->val);
        break;
    case BER_OCTET_STRING:
        JW_LIT(w, ",\"type\":\"OCTET STRING\",\"value\":");
        jw_octets(w, vb->val, vb->val_len, snmp_is_text(vb->val, vb->val_len),
                  HEX_MEMBER, sizeof HEX_MEMBER - 1);
        break;
    case SNMP_OPAQUE:
        JW_LIT(w, ",\"type\":\"Opaque\",\"value\":");
        jw_octets(w, vb->val, vb->val_len, 0, HEX_MEMBER, sizeof HEX_MEMBER - 1);
        jw_opaque(w, vb->val, vb->val_len);
        break;
    default: {                          /* NULL and the exceptions: no value */
        const char *name = snmp_type_name(vb->type);
        JW_LIT(w, ",\"type\":\"");
        if (name)
            jw_put(w, name, strlen(name));
        JW_LIT(w, "\"");
        break;
    }
    }
    JW_LIT(w, "}");
}

/* The v1 Trap-PDU's fields, with its SNMPv2 uptime and trap_oid (RFC 3584 §3.1). */
static void jw_v1_fields(struct jw *w, const struct snmp_msg *m)
{
    char trap_oid[SNMP_TRAP_OID_STR_MAX];
    JW_LIT(w, ",\"uptime\":");
    jw_u64(w, m->time_stamp);
    JW_LIT(w, ",\"trap_oid\":\"");
    size_t trap_oid_len = snmp_v1_trap_oid(m, trap_oid);
    jw_put(w, trap_oid, trap_oid_len);
    JW_LIT(w, "\"");
    if (w->names) {
        uint32_t arcs[MIB_MAX_ARCS];
        size_t n = mib_dotted_arcs(trap_oid, trap_oid_len, arcs);
        jw_mib_name(w, TRAP_NAME_MEMBER, sizeof TRAP_NAME_MEMBER - 1, arcs, n);
    }
    JW_LIT(w, ",\"enterprise\":");
    jw_oid(w, m->enterprise, m->enterprise_len);
    JW_LIT(w, ",\"agent_addr\":");
    jw_ipv4(w, m->agent_addr);
    JW_LIT(w, ",\"generic_trap\":");
    jw_i64(w, m->generic_trap);
    JW_LIT(w, ",\"specific_trap\":");
    jw_i64(w, m->specific_trap);
}

/* The first bindings, read ahead of the list (for uptime and trap_oid) and then written
 * from here rather than read twice. */
struct read_ahead {
    struct snmp_varbind vb[2];
    enum snmp_status st[2];
    size_t n, next;     /* read ahead; handed out */
};

/* trapv2/inform: request_id, then uptime and trap_oid from the first two bindings when they
 * are sysUpTime.0 (TimeTicks) and snmpTrapOID.0 (OID) (RFC 3416 §4.2.6). */
static void jw_v2_fields(struct jw *w, struct snmp_msg *m, struct read_ahead *ra)
{
    JW_LIT(w, ",\"request_id\":");
    jw_i64(w, m->request_id);
    ra->st[0] = snmp_next_varbind(m, &ra->vb[0]);
    ra->n = 1;
    if (ra->st[0] != SNMP_OK)
        return;
    const struct snmp_varbind *vb = &ra->vb[0];
    if (vb->type == SNMP_TIMETICKS && snmp_oid_is(vb->oid, vb->oid_len, &SNMP_SYSUPTIME_0)) {
        JW_LIT(w, ",\"uptime\":");
        jw_u64(w, vb->u);
    }
    ra->st[1] = snmp_next_varbind(m, &ra->vb[1]);
    ra->n = 2;
    vb = &ra->vb[1];
    if (ra->st[1] == SNMP_OK && vb->type == BER_OID &&
        snmp_oid_is(vb->oid, vb->oid_len, &SNMP_TRAPOID_0)) {
        JW_LIT(w, ",\"trap_oid\":");
        jw_oid(w, vb->val, vb->val_len);
        if (w->names)
            jw_mib_name_ber(w, TRAP_NAME_MEMBER, sizeof TRAP_NAME_MEMBER - 1, vb->val,
                            vb->val_len);
    }
}

/* The next binding: one read ahead, or the next in the list. */
static enum snmp_status next_binding(struct snmp_msg *m, struct read_ahead *ra,
                                     const struct snmp_varbind **vb)
{
    if (ra->next < ra->n) {
        *vb = &ra->vb[ra->next];
        return ra->st[ra->next++];
    }
    *vb = &ra->vb[0];
    return snmp_next_varbind(m, &ra->vb[0]);
}

const char *snmp_level_name(int level)
{
    return level == SNMP_AUTHPRIV ? "authPriv" : level == SNMP_AUTHNOPRIV ? "authNoPriv"
                                                                        : "noAuthNoPriv";
}

void snmp_hex_plain(const uint8_t *v, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[v[i] >> 4];
        out[2 * i + 1] = digits[v[i] & 15];
    }
}

/* "engine_id":"80001f88..." : an engine ID (at most 32 octets: RFC 3411) in plain hex. */
static void jw_engine_id(struct jw *w, const char *member, size_t member_len,
                         const uint8_t *v, size_t n)
{
    char buf[2 * SNMP_ENGINE_ID_MAX + 2];
    if (n > SNMP_ENGINE_ID_MAX)
        n = SNMP_ENGINE_ID_MAX;
    jw_put(w, member, member_len);
    buf[0] = '"';
    snmp_hex_plain(v, n, buf + 1);
    buf[2 * n + 1] = '"';
    jw_put(w, buf, 2 * n + 2);
}

#define JW_ENGINE_ID(w, lit, v, n) jw_engine_id(w, lit, sizeof lit - 1, v, n)

/* The SNMPv3 members in place of the community: version, user, security_level, engine_id,
 * context_engine_id, context_name. */
static void jw_v3_fields(struct jw *w, const struct snmp_v3 *v3)
{
    JW_LIT(w, "\"version\":\"v3\",\"user\":");
    jw_octets(w, v3->user, v3->user_len, snmp_is_text_c1(v3->user, v3->user_len),
              ",\"user_hex\":true", sizeof ",\"user_hex\":true" - 1);
    JW_LIT(w, ",\"security_level\":\"");
    const char *level = snmp_level_name(v3->level);
    jw_put(w, level, strlen(level));
    JW_LIT(w, "\"");
    JW_ENGINE_ID(w, ",\"engine_id\":", v3->engine_id, v3->engine_id_len);
    JW_ENGINE_ID(w, ",\"context_engine_id\":", v3->context_engine.val, v3->context_engine.len);
    JW_LIT(w, ",\"context_name\":");
    jw_octets(w, v3->context_name.val, v3->context_name.len,
              snmp_is_text_c1(v3->context_name.val, v3->context_name.len),
              ",\"context_name_hex\":true", sizeof ",\"context_name_hex\":true" - 1);
}

enum snmp_status snmp_json_record(struct snmp_msg *m, char *out, size_t cap, size_t *len)
{
    return snmp_json_record_named(m, NULL, out, cap, len);
}

enum snmp_status snmp_json_record_named(struct snmp_msg *m, const struct mib_table *names,
                                        char *out, size_t cap, size_t *len)
{
    struct jw w = {out, cap, 0, names};
    struct read_ahead ra;
    const struct snmp_varbind *vb;
    enum snmp_status st;
    size_t n = 0;

    *len = 0;
    ra.n = ra.next = 0;
    if (m->v3) {
        jw_v3_fields(&w, m->v3);
    } else {
        if (m->version == 0)
            JW_LIT(&w, "\"version\":\"v1\",\"community\":");
        else
            JW_LIT(&w, "\"version\":\"v2c\",\"community\":");
        jw_octets(&w, m->community.val, m->community.len,
                  snmp_is_text_c1(m->community.val, m->community.len),
                  ",\"community_hex\":true", sizeof ",\"community_hex\":true" - 1);
    }
    JW_LIT(&w, ",\"pdu\":\"");
    const char *pdu = snmp_pdu_name(m->pdu);
    if (pdu)
        jw_put(&w, pdu, strlen(pdu));
    JW_LIT(&w, "\"");
    if (m->pdu == SNMP_PDU_TRAP)
        jw_v1_fields(&w, m);
    else
        jw_v2_fields(&w, m, &ra);
    JW_LIT(&w, ",\"bindings\":");
    while ((st = next_binding(m, &ra, &vb)) == SNMP_OK) {
        jw_put(&w, n ? "," : "[", 1);
        jw_varbind(&w, vb);
        n++;
    }
    if (st != SNMP_END)
        return st;
    if (n)
        JW_LIT(&w, "]");
    else
        JW_LIT(&w, "{}");       /* lua-cjson 2.1 writes an empty table as an object */
    *len = w.len;
    return SNMP_OK;
}
