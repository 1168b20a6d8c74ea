/* bindings/snmp_decode.c: SNMPv1/v2c message decoding over the BER reader, RFC 3584 trap
 * OIDs, text/hex presentation helpers, Opaque-wrapped numbers and the inform
 * acknowledgement. Every function that reads the packet fails through one label. */
#include "snmp_decode.h"

#include <string.h>

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

enum snmp_status snmp_decode_header(struct snmp_msg *m, const uint8_t *buf, size_t len)
{
    struct ber_cur top, mc, pc;
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
    if ((why = ber_read(&mc, &t)))
        goto fail;
    m->pdu = t.tag;
    if ((why = pdu_for_version(m->pdu, m->version)))
        goto fail;
    if (ber_left(&mc)) {
        why = "trailing bytes in message";
        goto fail;
    }
    if ((why = ber_enter(&mc, &t, &pc)))
        goto fail;
    why = m->pdu == SNMP_PDU_TRAP ? read_trap_header(&pc, m) : read_request_header(&pc, m);
    if (why)
        goto fail;
    if ((why = ber_expect(&pc, BER_SEQUENCE, &m->varbinds, "expected SEQUENCE varbind list")))
        goto fail;
    if (ber_left(&pc)) {
        why = "trailing bytes in PDU";
        goto fail;
    }
    if ((why = ber_enter(&pc, &m->varbinds, &m->next)))
        goto fail;
    return SNMP_OK;

fail:
    m->why = why;
    return fail;
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

int snmp_is_text(const uint8_t *v, size_t n)
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
        size_t extra;
        uint32_t cp, min;
        if (b >= 0xc2 && b <= 0xdf) {
            extra = 1, cp = b & 0x1f, min = 0x80;
        } else if (b >= 0xe0 && b <= 0xef) {
            extra = 2, cp = b & 0x0f, min = 0x800;
        } else if (b >= 0xf0 && b <= 0xf4) {
            extra = 3, cp = b & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < extra)
            return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((v[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (v[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        if (cp < 0xa0)                  /* C1 controls */
            return 0;
        i += extra + 1;
    }
    return 1;
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
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    for (size_t k = 0; k < n; k++)
        out[k] = tmp[n - 1 - k];
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

/* Octets of a minimal definite length for content of n octets. */
static size_t len_size(size_t n)
{
    size_t k = 1;
    if (n >= 0x80)
        for (size_t x = n; x; x >>= 8)
            k++;
    return k;
}

static uint8_t *put_len(uint8_t *p, size_t n)
{
    size_t k = len_size(n);
    if (k == 1) {
        *p++ = (uint8_t)n;
        return p;
    }
    *p++ = (uint8_t)(0x80 | (k - 1));
    for (size_t i = k - 1; i > 0; i--)
        *p++ = (uint8_t)(n >> (8 * (i - 1)));
    return p;
}

/* Octets of t written back with a minimal length. */
static size_t tlv_size(const struct ber_tlv *t)
{
    return 1 + len_size(t->len) + t->len;
}

/* Content octets of the Response-PDU. */
static size_t response_pdu_len(const struct snmp_msg *m)
{
    return tlv_size(&m->request_tlv) + 3 + 3 + tlv_size(&m->varbinds);
}

/* Content octets of the message. */
static size_t response_msg_len(const struct snmp_msg *m)
{
    size_t pdu = response_pdu_len(m);
    return 3 + tlv_size(&m->community) + 1 + len_size(pdu) + pdu;
}

size_t snmp_inform_response_size(const struct snmp_msg *m)
{
    size_t msg = response_msg_len(m);
    return 1 + len_size(msg) + msg;
}

static uint8_t *put_tlv(uint8_t *p, const struct ber_tlv *t)
{
    *p++ = t->tag;
    p = put_len(p, t->len);
    memcpy(p, t->val, t->len);
    return p + t->len;
}

size_t snmp_inform_response_write(const struct snmp_msg *m, uint8_t *out)
{
    static const uint8_t zero[] = {BER_INTEGER, 1, 0};
    uint8_t *p = out;
    *p++ = BER_SEQUENCE;
    p = put_len(p, response_msg_len(m));
    *p++ = BER_INTEGER;
    *p++ = 1;
    *p++ = (uint8_t)m->version;
    p = put_tlv(p, &m->community);
    *p++ = SNMP_PDU_RESPONSE;
    p = put_len(p, response_pdu_len(m));
    p = put_tlv(p, &m->request_tlv);
    memcpy(p, zero, 3);                 /* error-status noError(0) */
    p += 3;
    memcpy(p, zero, 3);                 /* error-index 0 */
    p += 3;
    p = put_tlv(p, &m->varbinds);
    return (size_t)(p - out);
}
