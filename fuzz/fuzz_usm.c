/* fuzz/fuzz_usm.c: arbitrary bytes as an SNMPv3 message into the User-based Security Model
 * (snmp_usm.c) and the ScopedPDU decoder, with users whose keys the harness knows: every
 * auth protocol alone and with every priv protocol, passwords "fuzz-auth-pass" and
 * "fuzz-priv-pass", no engine_id (so traps from any engine are localized into a small
 * cache, with evictions). A message that fails only its digest is signed again with the
 * keys the receiver found (usm_sign) and read again, so that changed messages (the seeds in
 * fuzz/corpus/fuzz_usm/ are real snmptrap/snmpinform -v 3 messages) reach decryption and the
 * decoder. An accepted message is decoded to the end and written as the JSON record; an
 * inform's Response must come back through usm_receive as a Response-PDU with the same
 * request-id; a Report due is written. Aborts when a promise breaks.
 * Owns the harness context (the usm) for the process's life, and one copy of the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snmp_decode.h"
#include "snmp_usm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_AUTH_PASS "fuzz-auth-pass"
#define FUZZ_PRIV_PASS "fuzz-priv-pass"
/* The receiver's engine: informs made for it carry it (snmpinform -e). */
static const uint8_t FUZZ_ENGINE[] = {0x80, 0x00, 0x1f, 0x88, 0x80, 0x11, 0x11, 0x11, 0x11,
                                      0x11, 0x11, 0x11, 0x11};

/* The harness's state for the process: the usm with its users, made at the first input. */
static struct fuzz_usm_ctx {
    struct usm *u;
} fuzz_ctx;

static void add(struct usm *u, const char *name, enum usm_auth a, enum usm_priv p)
{
    struct usm_user_config c;
    char err[200];
    memset(&c, 0, sizeof c);
    c.name = name;
    c.name_len = strlen(name);
    c.auth = a;
    c.priv = p;
    c.min_level = SNMP_NOAUTHNOPRIV;
    if (a != USM_AUTH_NONE) {
        c.auth_pass = (const uint8_t *)FUZZ_AUTH_PASS;
        c.auth_pass_len = sizeof FUZZ_AUTH_PASS - 1;
    }
    if (p != USM_PRIV_NONE) {
        c.priv_pass = (const uint8_t *)FUZZ_PRIV_PASS;
        c.priv_pass_len = sizeof FUZZ_PRIV_PASS - 1;
    }
    if (usm_add_user(u, &c, err, sizeof err))
        abort();
}

/* User names: "noauth", "SHA-256", "SHA-256_AES-192", ... */
static struct usm *setup(void)
{
    struct usm_engine own;
    char err[200];
    memcpy(own.id, FUZZ_ENGINE, sizeof FUZZ_ENGINE);
    own.id_len = sizeof FUZZ_ENGINE;
    own.boots = 0;
    own.started = (int64_t)time(NULL);
    struct usm *u = usm_new(&own, 8, err, sizeof err);
    if (!u)
        abort();
    add(u, "noauth", USM_AUTH_NONE, USM_PRIV_NONE);
    for (int a = 1; a < USM_AUTH_COUNT; a++) {
        for (int p = 0; p < USM_PRIV_COUNT; p++) {
            char name[40];                     /* copied by usm_add_user */
            strcpy(name, usm_auth_name((enum usm_auth)a));
            if (p) {
                strcat(name, "_");
                strcat(name, usm_priv_name((enum usm_priv)p));
            }
            add(u, name, (enum usm_auth)a, (enum usm_priv)p);
        }
    }
    return u;
}

/* Decodes an accepted message to the end and writes its record; returns the PDU status. */
static enum snmp_status decode_all(const struct usm_in *in, struct snmp_msg *m,
                                   struct snmp_v3 *v3)
{
    *v3 = in->v3;
    enum snmp_status st = snmp_decode_scoped(m, in->scoped, in->scoped_len, v3);
    if (st != SNMP_OK)
        return st;
    struct ber_cur start = m->next;
    struct snmp_varbind vb;
    while ((st = snmp_next_varbind(m, &vb)) == SNMP_OK)
        ;
    if (st != SNMP_END)
        return st;
    m->next = start;
    size_t need;
    char small[64];
    if (snmp_json_record(m, small, sizeof small, &need) != SNMP_OK)
        abort();                       /* every binding was accepted above */
    char *json = malloc(need ? need : 1);
    size_t again;
    m->next = start;
    if (json && (snmp_json_record(m, json, need, &again) != SNMP_OK || again != need))
        abort();
    free(json);
    m->next = start;
    return SNMP_OK;
}

/* An inform's Response, read back by USM (not reportable: the sender's engine is ours). */
static void answer(struct usm *u, struct usm_in *in, struct snmp_msg *m)
{
    const uint8_t *out;
    int32_t request_id = m->request_id;
    size_t n = usm_response_write(u, in, m, &out);
    if (!n)
        return;
    uint8_t *copy = malloc(n);
    if (!copy)
        return;
    memcpy(copy, out, n);
    struct usm_in back;
    struct snmp_msg r;
    struct snmp_v3 v3;
    if (usm_receive(u, copy, n, &back) != USM_ACCEPTED ||
        decode_all(&back, &r, &v3) != SNMP_OK || r.pdu != SNMP_PDU_RESPONSE ||
        r.request_id != request_id)
        abort();
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_ctx.u)
        fuzz_ctx.u = setup();
    struct usm *u = fuzz_ctx.u;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct usm_in in;
    enum usm_outcome o = usm_receive(u, buf, size, &in);
    if (o == USM_REJECTED && in.stat == USM_STAT_WRONG_DIGESTS && usm_sign(&in, buf, size))
        o = usm_receive(u, buf, size, &in);
    if (o == USM_ACCEPTED) {
        struct snmp_msg m;
        struct snmp_v3 v3;
        if (decode_all(&in, &m, &v3) == SNMP_OK && m.pdu == SNMP_PDU_INFORM &&
            in.authoritative)
            answer(u, &in, &m);
    } else if (o == USM_REJECTED && in.report) {
        const uint8_t *out;
        size_t n = usm_report_write(u, &in, &out);
        if (n > 65536)
            abort();
    }
    free(buf);
    return 0;
}
