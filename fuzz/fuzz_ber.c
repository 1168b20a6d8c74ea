/* fuzz/fuzz_ber.c: arbitrary bytes as an SNMP datagram, straight into the C decoder
 * (snmp_decode.c over ber.c), every binding presented as the Lua module would (OID text,
 * text/hex, Opaque numbers), an inform answered and the answer decoded again; and the same
 * bytes walked as a generic BER tree. Aborts when a promise the callers rely on breaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ber.h"
#include "snmp_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Presents one binding the way module_ber.c does, checking the lengths it relies on. */
static void present(const struct snmp_varbind *vb)
{
    char oid[BER_OID_STR_MAX];
    size_t n = ber_oid_format(vb->oid, vb->oid_len, oid);
    if (n == 0 || n >= sizeof oid || strlen(oid) != n)
        abort();
    if (!snmp_type_name(vb->type))
        abort();
    if (vb->type == BER_OID) {
        n = ber_oid_format(vb->val, vb->val_len, oid);
        if (n == 0 || strlen(oid) != n)
            abort();
    } else if (vb->type == BER_OCTET_STRING || vb->type == SNMP_OPAQUE) {
        if (!snmp_is_text(vb->val, vb->val_len) && vb->val_len > 0) {
            char *hex = malloc(3 * vb->val_len);
            if (!hex)
                return;
            snmp_hex(vb->val, vb->val_len, hex);
            free(hex);
        }
        struct snmp_opaque o;
        snmp_opaque_decode(vb->val, vb->val_len, &o);
    } else if (vb->type == SNMP_COUNTER32 || vb->type == SNMP_GAUGE32 ||
               vb->type == SNMP_TIMETICKS) {
        if (vb->u > UINT32_MAX)
            abort();
    }
}

/* The response to an inform must decode as a response with the same id and bindings. */
static void answer_inform(const struct snmp_msg *m, size_t count, size_t size)
{
    size_t rsize = snmp_inform_response_size(m);
    if (rsize > size)
        abort();
    uint8_t *out = malloc(rsize);
    if (!out)
        return;
    if (snmp_inform_response_write(m, out) != rsize)
        abort();
    struct snmp_msg r;
    size_t rcount;
    if (snmp_decode(&r, out, rsize, &rcount) != SNMP_OK)
        abort();
    if (r.pdu != SNMP_PDU_RESPONSE || r.request_id != m->request_id || rcount != count ||
        r.error_status != 0 || r.error_index != 0 || r.version != m->version ||
        r.varbinds.len != m->varbinds.len ||
        memcmp(r.varbinds.val, m->varbinds.val, r.varbinds.len) != 0)
        abort();
    free(out);
}

/* Walks a BER tree depth-first; the depth bound keeps the recursion short. */
static void walk(const struct ber_cur *c, const struct ber_tlv *t)
{
    if (!(t->tag & BER_CONSTRUCTED))
        return;
    struct ber_cur inner;
    if (ber_enter(c, t, &inner))
        return;
    if (inner.depth > BER_MAX_DEPTH)
        abort();
    struct ber_tlv child;
    while (ber_left(&inner) && !ber_read(&inner, &child))
        walk(&inner, &child);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct snmp_msg m;
    size_t count = 0;
    enum snmp_status st = snmp_decode(&m, data, size, &count);
    if (st == SNMP_OK) {
        struct snmp_varbind vb;
        size_t seen = 0;
        while (snmp_next_varbind(&m, &vb) == SNMP_OK) {
            present(&vb);
            seen++;
        }
        if (seen != count)
            abort();
        if (!snmp_pdu_name(m.pdu))
            abort();
        if (m.pdu == SNMP_PDU_TRAP) {
            char trap_oid[SNMP_TRAP_OID_STR_MAX];
            size_t n = snmp_v1_trap_oid(&m, trap_oid);
            if (n == 0 || strlen(trap_oid) != n)
                abort();
        }
        if (m.pdu == SNMP_PDU_INFORM)
            answer_inform(&m, count, size);
    } else if (!m.why || (st != SNMP_MALFORMED && st != SNMP_UNSUPPORTED)) {
        abort();
    }

    struct ber_cur c;
    struct ber_tlv t;
    ber_init(&c, data, size);
    if (!ber_read(&c, &t))
        walk(&c, &t);
    return 0;
}
