/* daemon/codec/snmp_decode.h: SNMPv1 / SNMPv2c messages (RFC 1157, RFC 3416) read from hostile
 * bytes into C records that point into the packet (no allocation), the RFC 3584 §3.1
 * translation pieces for v1 traps, the Response-PDU that acknowledges an InformRequest, and
 * the collector's record written as JSON text in one pass (no Lua table).
 * Built on the bounded reader of ber.h; the Lua face is module_ber.c. */
#ifndef LUADGRAM_SNMP_DECODE_H
#define LUADGRAM_SNMP_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "ber.h"

enum snmp_status {
    SNMP_OK = 0,
    SNMP_END,           /* snmp_next_varbind: no bindings left */
    SNMP_MALFORMED,     /* not a well-formed v1/v2c message; m->why says why */
    SNMP_UNSUPPORTED,   /* a well-framed message of a version we do not decode (2, 3) */
};

/* PDU identifier octets ([CONTEXT n] IMPLICIT SEQUENCE). */
enum snmp_pdu {
    SNMP_PDU_GET = 0xa0,
    SNMP_PDU_GETNEXT = 0xa1,
    SNMP_PDU_RESPONSE = 0xa2,
    SNMP_PDU_SET = 0xa3,
    SNMP_PDU_TRAP = 0xa4,       /* SNMPv1 Trap-PDU */
    SNMP_PDU_GETBULK = 0xa5,
    SNMP_PDU_INFORM = 0xa6,
    SNMP_PDU_TRAPV2 = 0xa7,
    SNMP_PDU_REPORT = 0xa8,
};

/* Value identifier octets beyond the universal ones in ber.h. */
#define SNMP_IPADDRESS 0x40
#define SNMP_COUNTER32 0x41
#define SNMP_GAUGE32 0x42
#define SNMP_TIMETICKS 0x43
#define SNMP_OPAQUE 0x44
#define SNMP_COUNTER64 0x46
#define SNMP_NOSUCHOBJECT 0x80
#define SNMP_NOSUCHINSTANCE 0x81
#define SNMP_ENDOFMIBVIEW 0x82

/* An RFC 3584 snmpTrapOID: an enterprise OID plus ".0." and a 32-bit specific-trap. */
#define SNMP_TRAP_OID_STR_MAX (BER_OID_STR_MAX + 13)

/* One variable binding; pointers are into the packet. */
struct snmp_varbind {
    const uint8_t *oid;      /* the name's OID content, checked */
    size_t oid_len;
    uint8_t type;            /* value identifier octet (BER_INTEGER, SNMP_COUNTER32...) */
    const uint8_t *val;      /* value content */
    size_t val_len;
    int32_t i;               /* BER_INTEGER */
    uint64_t u;              /* Counter32, Gauge32, TimeTicks, Counter64 */
};

/* Security levels as the msgFlags bits of an SNMPv3 message (RFC 3412 §6.4). */
#define SNMP_NOAUTHNOPRIV 0
#define SNMP_AUTHNOPRIV 1
#define SNMP_AUTHPRIV 3
#define SNMP_ENGINE_ID_MAX 32      /* RFC 3411 SnmpEngineID: 5 to 32 octets */

/* What an SNMPv3 message adds (snmp_usm.c fills the first part after its checks, and
 * snmp_decode_scoped the context); pointers are into the packet or the decrypted copy. */
struct snmp_v3 {
    const uint8_t *user;           /* msgUserName */
    size_t user_len;
    int level;                     /* SNMP_NOAUTHNOPRIV, SNMP_AUTHNOPRIV, SNMP_AUTHPRIV */
    const uint8_t *engine_id;      /* msgAuthoritativeEngineID */
    size_t engine_id_len;
    struct ber_tlv context_engine, context_name;
};

/* A decoded message header; pointers are into the packet. */
struct snmp_msg {
    int32_t version;               /* 0 = v1, 1 = v2c, 3 = v3 (set as read, also when
                                    * unsupported) */
    struct ber_tlv community;      /* v1, v2c */
    struct snmp_v3 *v3;            /* v3: the security and context fields; else NULL */
    uint8_t pdu;                   /* enum snmp_pdu */
    /* Every PDU but the v1 Trap-PDU. For GetBulk error_status and error_index hold
     * non-repeaters and max-repetitions. */
    struct ber_tlv request_tlv;    /* request-id as received, for the response */
    int32_t request_id, error_status, error_index;
    /* The v1 Trap-PDU. */
    const uint8_t *enterprise;     /* OID content, checked */
    size_t enterprise_len;
    const uint8_t *agent_addr;     /* 4 octets */
    int32_t generic_trap, specific_trap;
    uint32_t time_stamp;
    /* The VarBindList TLV and the cursor snmp_next_varbind walks over it. */
    struct ber_tlv varbinds;
    struct ber_cur next;
    const char *why;               /* the reason after SNMP_MALFORMED or SNMP_UNSUPPORTED */
};

/* Reads everything up to the VarBindList of buf[0 .. len) into *m. Returns SNMP_OK,
 * SNMP_MALFORMED or SNMP_UNSUPPORTED (version 2: "SNMPv2u is not supported", version 3:
 * "SNMPv3 is not supported"), with m->why set on failure. */
enum snmp_status snmp_decode_header(struct snmp_msg *m, const uint8_t *buf, size_t len);

/* Reads the ScopedPDU (RFC 3412 §6.8: contextEngineID, contextName, PDU) of an SNMPv3
 * message from buf[0 .. len) into *m (version 3, m->v3 = v3, v3's context fields set), up
 * to the VarBindList; bytes after the ScopedPDU (DES padding) are ignored. Returns SNMP_OK
 * or SNMP_MALFORMED with m->why. */
enum snmp_status snmp_decode_scoped(struct snmp_msg *m, const uint8_t *buf, size_t len,
                                    struct snmp_v3 *v3);

/* "noAuthNoPriv", "authNoPriv", "authPriv". */
const char *snmp_level_name(int level);
/* Writes v[0 .. n) as plain lower-case hex, "80001f88" (2n characters, no NUL). */
void snmp_hex_plain(const uint8_t *v, size_t n, char *out);

/* Reads the next binding into *vb: SNMP_OK, SNMP_END when none are left, or SNMP_MALFORMED
 * with m->why. */
enum snmp_status snmp_next_varbind(struct snmp_msg *m, struct snmp_varbind *vb);

/* snmp_decode_header and every binding checked; *count (if not NULL) gets their number.
 * Leaves m->next at the start of the list again, ready for snmp_next_varbind. */
enum snmp_status snmp_decode(struct snmp_msg *m, const uint8_t *buf, size_t len, size_t *count);

/* "get", "getnext", "response", "set", "trap", "getbulk", "inform", "trapv2", "report". */
const char *snmp_pdu_name(uint8_t pdu);
/* "INTEGER", "OCTET STRING", ... "endOfMibView" for the types snmp_next_varbind accepts. */
const char *snmp_type_name(uint8_t type);

/* The v1 trap's snmpTrapOID per RFC 3584 §3.1 (1)-(2): snmpTraps.(generic+1), or
 * enterprise.0.specific for enterpriseSpecific(6). out holds SNMP_TRAP_OID_STR_MAX bytes;
 * returns the length. */
size_t snmp_v1_trap_oid(const struct snmp_msg *m, char *out);

/* Well-known bindings, as OID content (to compare with snmp_varbind.oid) and dotted. */
struct snmp_wellknown {
    const uint8_t *ber;
    size_t len;
    const char *dotted;
};
extern const struct snmp_wellknown SNMP_SYSUPTIME_0, SNMP_TRAPOID_0, SNMP_TRAPADDRESS_0,
    SNMP_TRAPCOMMUNITY_0, SNMP_TRAPENTERPRISE_0;
int snmp_oid_is(const uint8_t *oid, size_t len, const struct snmp_wellknown *w);

/* 1 when v[0 .. n) is text: valid UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF) without control characters other than TAB, LF and CR. */
int snmp_is_text(const uint8_t *v, size_t n);
/* snmp_is_text, but C1 controls (U+0080 .. U+009F) count as text: the test a record's
 * community has always had (Lua's utf8.len and no C0 control but TAB, LF, CR, nor DEL). */
int snmp_is_text_c1(const uint8_t *v, size_t n);
/* Writes "de ad be ef" (3n - 1 characters, no NUL) for n > 0. */
void snmp_hex(const uint8_t *v, size_t n, char *out);
/* Writes x in decimal with a NUL into out[21]; returns the length. */
size_t snmp_u64_str(uint64_t x, char *out);

/* The net-snmp Opaque-wrapped types (draft-perkins-opaque): Float, Double, Integer64,
 * Unsigned64, Counter64 inside an Opaque value. */
enum snmp_opaque_kind { SNMP_OPQ_NONE, SNMP_OPQ_FLOAT, SNMP_OPQ_DOUBLE, SNMP_OPQ_I64,
                        SNMP_OPQ_U64, SNMP_OPQ_COUNTER64 };
struct snmp_opaque {
    enum snmp_opaque_kind kind;
    double d;        /* FLOAT, DOUBLE */
    int64_t i;       /* I64 */
    uint64_t u;      /* U64, COUNTER64 */
};
/* Recognises an Opaque value's content; kind is SNMP_OPQ_NONE for anything else. */
void snmp_opaque_decode(const uint8_t *v, size_t n, struct snmp_opaque *o);
/* "Float", "Double", "Integer64", "Unsigned64", "Counter64"; NULL for SNMP_OPQ_NONE. */
const char *snmp_opaque_name(enum snmp_opaque_kind kind);

/* The SNMPv2c Response-PDU that acknowledges the InformRequest m (decoded by snmp_decode):
 * same version, community, request-id and VarBindList content, error-status and error-index
 * 0, every length written minimally. Never longer than the inform. */
size_t snmp_inform_response_size(const struct snmp_msg *m);
/* Writes it to out (snmp_inform_response_size(m) bytes); returns the length written. */
size_t snmp_inform_response_write(const struct snmp_msg *m, uint8_t *out);
/* The Response-PDU alone (for an SNMPv3 scoped PDU): its size and writer, as above. */
size_t snmp_response_pdu_size(const struct snmp_msg *m);
size_t snmp_response_pdu_write(const struct snmp_msg *m, uint8_t *out);

/* ---- the JSON record ----
 * snmp_json_record writes the decoded part of scripts/snmptrap.lua's JSON Lines record for
 * the notification m (a "trap", "trapv2" or "inform" read by snmp_decode_header or
 * snmp_decode_scoped, its bindings not yet read): the object's members without the braces,
 * in this order,
 *   "version":"v2c","community":"public"[,"community_hex":true],
 *     (v3 instead) "version":"v3","user":"ops"[,"user_hex":true],
 *     "security_level":"authPriv","engine_id":"80001f88..","context_engine_id":"..",
 *     "context_name":""[,"context_name_hex":true],
 *   "pdu":"trapv2",
 *   "request_id":N (trapv2, inform),"uptime":N,"trap_oid":"1.3...",
 *   "enterprise":"..","agent_addr":"a.b.c.d","generic_trap":N,"specific_trap":N (v1),
 *   "bindings":[{"oid":"..","type":"..","value":..[,"hex":true]
 *                [,"opaque_type":"..","opaque_value":..]},...]   ({} when there are none)
 * with the keys, types and values the Lua path (ber.decode_snmp, then the handler's record,
 * encoded by lua-cjson 2.1 with 14 significant digits) gives, byte for byte the way lua-cjson
 * writes a string ("/" as "\/", controls as \n or \u001f, DEL as \u007f) and a number.
 * Every string written is valid UTF-8: OCTET STRING text is copied only when snmp_is_text
 * (the community: snmp_is_text_c1), else given in hex.
 *
 * It reads the bindings with snmp_next_varbind as it writes, so a malformed binding fails
 * the whole record: SNMP_MALFORMED with m->why. Writes at most cap bytes to out (no NUL);
 * *len gets the length of the whole text, which may exceed cap: out then holds only its
 * first cap bytes, and the caller, after restoring m->next to where it was, calls again
 * with a buffer of *len bytes. */
enum snmp_status snmp_json_record(struct snmp_msg *m, char *out, size_t cap, size_t *len);
/* snmp_json_record with MIB names from `names` (daemon/codec/mib.h; NULL: exactly
 * snmp_json_record): "trap_name" after "trap_oid", each binding's "name" after its "oid",
 * and "value_name" after an INTEGER's "value" that the object's enumeration labels, each
 * only when the table names it. */
struct mib_table;
enum snmp_status snmp_json_record_named(struct snmp_msg *m, const struct mib_table *names,
                                        char *out, size_t cap, size_t *len);

/* The JSON string lua-cjson writes (escaped as above, in quotes) for output_jsonl.utf8_fix
 * of v[0 .. n): every byte that is not part of valid UTF-8 (as Lua's utf8.len reads it)
 * replaced by U+FFFD. For text from outside the packet (a unix peer's path). Writes at most
 * SNMP_JSON_STRING_MAX(n) bytes (no NUL) to out; returns the length written. */
#define SNMP_JSON_STRING_MAX(n) (6 * (n) + 2)
size_t snmp_json_string(const uint8_t *v, size_t n, char *out);

#endif
