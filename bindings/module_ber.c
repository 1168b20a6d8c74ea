/* bindings/module_ber.c: the `luadgram.ber` Lua module: SNMP trap/inform decoding straight
 * into Lua tables, or into the collector's JSON record without any table (trap_json), the
 * inform acknowledgement, and a generic BER tree for debugging. The decoding and the JSON
 * writer live in snmp_decode.c and ber.c; this file only builds Lua values.
 *
 *   local ber = require "luadgram.ber"
 *
 *   ber.decode_snmp(bytes [, names]) -> msg | nil, reason, kind
 *     names: a luadgram.mib table (module_mib.c); with it msg.trap_name, each binding's
 *     name and value_name, as trap_json_named writes them (snmp_json_record_named).
 *     kind is "malformed" (reason from a fixed set, usable as a metric label) or
 *     "unsupported" (a well-framed SNMPv3 or SNMPv2u message: "SNMPv3 is not supported").
 *     msg = {
 *       version = 0 | 1, version_name = "v1" | "v2c", community = <bytes>,
 *       pdu = "get" | "getnext" | "response" | "set" | "trap" | "getbulk" | "inform"
 *           | "trapv2" | "report",        -- every PDU's header is decoded
 *       request_id, error_status, error_index,   -- all PDUs but "trap"
 *       non_repeaters, max_repetitions,          -- "getbulk" instead of error_status/index
 *       enterprise = "1.3.6...", agent_addr = "a.b.c.d",
 *       generic_trap, specific_trap,             -- "trap" (SNMPv1) only
 *       uptime = <timeticks>, trap_oid = "1.3.6...",
 *         -- v1: time-stamp and the RFC 3584 §3.1 snmpTrapOID (snmpTraps.(generic+1) or
 *         -- enterprise.0.specific); trapv2/inform: the values of the first two bindings
 *         -- when they are sysUpTime.0 (TimeTicks) and snmpTrapOID.0 (OID), else nil.
 *       varbinds = { { oid = "1.3.6...", type = T, value = V, ... }, ... },
 *       v2_varbinds = ...,
 *         -- trapv2/inform: the same table as varbinds. v1 trap: the SNMPv2 form of RFC 3584
 *         -- §3.1: sysUpTime.0, snmpTrapOID.0, the varbinds (the same tables), then
 *         -- snmpTrapAddress.0, snmpTrapCommunity.0, snmpTrapEnterprise.0 each unless the
 *         -- trap already carries it. So one handler can read v2_varbinds for both.
 *     }
 *     Binding types and values:
 *       "INTEGER", "Counter32", "Gauge32", "TimeTicks"  value = integer
 *       "Counter64"                    value = decimal string, always (up to 2^64 - 1)
 *       "OCTET STRING", "Opaque"       raw = the bytes; value = the bytes when they are text
 *                                      (UTF-8 without control characters but TAB, LF, CR),
 *                                      else "de ad be ef" with hex = true (Opaque: always hex)
 *       "OBJECT IDENTIFIER"            value = "1.3.6.1..."
 *       "IpAddress"                    value = "a.b.c.d"
 *       "NULL", "noSuchObject", "noSuchInstance", "endOfMibView"   value = nil
 *     An Opaque holding a net-snmp wrapped number also has opaque_type = "Float" | "Double"
 *     | "Integer64" | "Unsigned64" | "Counter64" and opaque_value (a number, or a decimal
 *     string for the unsigned 64-bit ones).
 *
 *   ber.trap_json(bytes [, head...]) -> version, community, pdu, request_id, members
 *     (bytes may also be the message object of a handler: its payload is read in place)
 *                                    | nil, reason, kind
 *     The fast path of scripts/snmptrap.lua: one pass over the packet, no Lua table. The
 *     scalars the handler's policy needs: version "v1" | "v2c", community (the bytes), pdu
 *     (as decode_snmp), request_id (nil for "trap"); and, for a notification ("trap",
 *     "trapv2", "inform"), members = the JSON text of the record's decoded part, the
 *     members of an object without its braces (snmp_decode.h, snmp_json_record):
 *       "version":..,"community":..,"pdu":..,"request_id":..,"uptime":..,"trap_oid":..,
 *       (v1) "enterprise":..,"agent_addr":..,"generic_trap":..,"specific_trap":..,
 *       "bindings":[{"oid":..,"type":..,"value":..},...]
 *     with the keys, types and values of the handler's record built from decode_snmp
 *     (raw dropped, 64-bit integers as strings), written as lua-cjson writes them; valid
 *     UTF-8. With head strings, members is head1 .. head2 .. .. the members .. "}":
 *     given the pieces of the line's start ('{"time":', ..., ','), the whole line in one
 *     string, with no string made for the start (the head is copied as it is: the caller
 *     makes it JSON). For any other PDU members is nil. Every binding is checked, as
 *     decode_snmp does: a malformed one gives nil, reason, "malformed"; the reasons and
 *     kinds are decode_snmp's. The text is written in a buffer the module keeps (grown
 *     for a larger record, up to 256 KiB): one Lua string per call, nothing else.
 *
 *   ber.trap_json_named(names) -> a trap_json function that also writes the MIB names of
 *     the luadgram.mib table names (trap_name, each binding's name and value_name), with a
 *     buffer of its own; the table is kept alive by the function.
 *
 *   ber.PEER_DST
 *     A marker (light userdata) that trap_json takes among its head pieces when its first
 *     argument is the message object: it stands for the record's address members
 *       "peer":"<tostring(msg.peer)>"   and, when msg.dst is present,
 *       ,"dst":"<tostring(msg.dst)>"
 *     written from the datagram in place (no address object, no Lua string):
 *     "a.b.c.d:port", "[ip6]:port" (an IPv4 sender on a dual-stack [::] socket as IPv4), a
 *     unix sender's path ("nil" when it has none), each as lua-cjson writes
 *     output_jsonl.utf8_fix of it.
 *     scripts/snmptrap.lua's head: '{"time":"...', ..., 'Z","listener":"x",', PEER_DST, ","
 *
 *   ber.inform_response(bytes) -> response bytes | nil, reason, kind
 *     The SNMPv2c Response-PDU acknowledging an InformRequest (RFC 3416 §4.2.7): same
 *     version, community, request-id and variable-bindings, error-status and error-index 0.
 *     Takes the received datagram (msg.data); kind as above, or "unexpected" with
 *     "not an InformRequest" for any other well-formed PDU.
 *
 *   ber.usm(engine_id_hex, boots, started [, cache_size]) -> usm      (SNMPv3, snmp_usm.h)
 *     Our engine (ID, engineBoots, the CLOCK_REALTIME second engineTime counts from) and a
 *     cache of cache_size (1024) localized keys. usm:add_user{ name =, auth =, auth_pass = |
 *     auth_key = (hex), priv =, priv_pass = | priv_key =, engine_id = (hex), level = } ->
 *     true | nil, reason (keys derived now). usm:decode_snmp, usm:trap_json and
 *     usm:inform_response are ber's, also taking SNMPv3 messages through USM: the message
 *     gets version 3, version_name "v3", user (in place of community), security_level,
 *     engine_id, context_engine_id (plain hex), context_name; a message USM drops gives
 *     nil, <usmStats counter name>, "usm", <the Report to send back, or nil>. usm:stats()
 *     -> { usmStats... = n, evictions = n }; usm:close() (also __gc) frees it.
 *   ber.engine_state(path [, engine_id_hex]) -> engine_id_hex, boots, started | nil, err
 *     The engine's state file (daemon/engine_state.h), loaded at init.
 *   ber.usm_unavailable -> nil, or why this build has no SNMPv3 USM (usm_unavailable: the
 *     Windows build); then ber.usm and ber.engine_state always fail with that reason
 *
 *   ber.decode(bytes) -> node | nil, reason
 *     One BER value as a tree: node = { tag = <identifier octet>, class = "universal" |
 *     "application" | "context" | "private", constructed = bool, value = <content bytes>
 *     (primitive) or node[1..n] (constructed) }. Nesting is bounded (32); trailing bytes
 *     are an error.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <string.h>

#include "addr.h"
#include "ber.h"
#include "lbind.h"
#include "lmib.h"
#include "snmp_decode.h"
#include "engine_state.h"
#include "snmp_usm.h"


/* ---- bindings ---- */

/* Sets t.value / t.raw / t.hex for bytes v[0 .. n) on the table at the top. */
static void set_octets(lua_State *L, const uint8_t *v, size_t n, int as_text)
{
    lua_pushlstring(L, (const char *)v, n);
    if (as_text) {
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "value");
    } else {
        luaL_Buffer b;
        char *p = luaL_buffinitsize(L, &b, n ? 3 * n - 1 : 0);
        snmp_hex(v, n, p);
        luaL_pushresultsize(&b, n ? 3 * n - 1 : 0);
        lua_setfield(L, -3, "value");
        lua_pushboolean(L, 1);
        lua_setfield(L, -3, "hex");
    }
    lua_setfield(L, -2, "raw");
}

static void push_oid(lua_State *L, const uint8_t *v, size_t n)
{
    char buf[BER_OID_STR_MAX];
    size_t len = ber_oid_format(v, n, buf);
    lua_pushlstring(L, buf, len);
}

static void push_u64(lua_State *L, uint64_t x)
{
    char buf[21];
    size_t len = snmp_u64_str(x, buf);
    lua_pushlstring(L, buf, len);
}

static void push_ipv4(lua_State *L, const uint8_t *a)
{
    lua_pushfstring(L, "%d.%d.%d.%d", a[0], a[1], a[2], a[3]);
}

/* Sets opaque_type / opaque_value for a net-snmp wrapped number. */
static void set_opaque(lua_State *L, const uint8_t *v, size_t n)
{
    struct snmp_opaque o;
    snmp_opaque_decode(v, n, &o);
    if (o.kind == SNMP_OPQ_NONE)
        return;
    lua_pushstring(L, snmp_opaque_name(o.kind));
    lua_setfield(L, -2, "opaque_type");
    if (o.kind == SNMP_OPQ_FLOAT || o.kind == SNMP_OPQ_DOUBLE)
        lua_pushnumber(L, (lua_Number)o.d);
    else if (o.kind == SNMP_OPQ_I64)
        lua_pushinteger(L, (lua_Integer)o.i);
    else
        push_u64(L, o.u);
    lua_setfield(L, -2, "opaque_value");
}

/* Pushes { oid =, type =, value =, ... } for one decoded binding. */
static void push_varbind(lua_State *L, const struct snmp_varbind *vb)
{
    lua_createtable(L, 0, 4);
    push_oid(L, vb->oid, vb->oid_len);
    lua_setfield(L, -2, "oid");
    lua_pushstring(L, snmp_type_name(vb->type));
    lua_setfield(L, -2, "type");
    switch (vb->type) {
    case BER_INTEGER:
        lua_pushinteger(L, vb->i);
        break;
    case SNMP_COUNTER32:
    case SNMP_GAUGE32:
    case SNMP_TIMETICKS:
        lua_pushinteger(L, (lua_Integer)vb->u);
        break;
    case SNMP_COUNTER64:
        push_u64(L, vb->u);
        break;
    case BER_OID:
        push_oid(L, vb->val, vb->val_len);
        break;
    case SNMP_IPADDRESS:
        push_ipv4(L, vb->val);
        break;
    case BER_OCTET_STRING:
        set_octets(L, vb->val, vb->val_len, snmp_is_text(vb->val, vb->val_len));
        return;
    case SNMP_OPAQUE:
        set_octets(L, vb->val, vb->val_len, 0);
        set_opaque(L, vb->val, vb->val_len);
        return;
    default:                 /* NULL and the exceptions: no value */
        return;
    }
    lua_setfield(L, -2, "value");
}

/* Pushes a binding made up for the SNMPv2 form of a v1 trap; the value is on the top. */
static void push_made_varbind(lua_State *L, const char *oid, uint8_t type)
{
    lua_createtable(L, 0, 3);
    lua_rotate(L, -2, 1);           /* value, table -> table, value */
    lua_setfield(L, -2, "value");
    lua_pushstring(L, oid);
    lua_setfield(L, -2, "oid");
    lua_pushstring(L, snmp_type_name(type));
    lua_setfield(L, -2, "type");
}

/* ---- ber.decode_snmp ---- */

/* With MIB names: sets t[key] to the name of arcs[0 .. n) on the table at the top when the
 * table has one; returns the lookup. */
static struct mib_match set_mib_name(lua_State *L, const struct mib_table *names,
                                     const char *key, const uint32_t *arcs, size_t n)
{
    struct mib_match mm = mib_lookup(names, arcs, n);
    char out[MIB_NAME_MAX];
    size_t k = mib_name_write(names, &mm, arcs, n, out);
    if (k) {
        lua_pushlstring(L, out, k);
        lua_setfield(L, -2, key);
    }
    return mm;
}

static struct mib_match set_mib_name_ber(lua_State *L, const struct mib_table *names,
                                         const char *key, const uint8_t *oid, size_t len)
{
    uint32_t arcs[BER_MAX_OID_ARCS];
    return set_mib_name(L, names, key, arcs, mib_ber_arcs(oid, len, arcs));
}

/* binding.name and binding.value_name on the binding at the top. */
static void set_binding_names(lua_State *L, const struct mib_table *names,
                              const struct snmp_varbind *vb)
{
    struct mib_match mm = set_mib_name_ber(L, names, "name", vb->oid, vb->oid_len);
    size_t k;
    const char *label = vb->type == BER_INTEGER ? mib_enum_label(names, &mm, vb->i, &k) : NULL;
    if (label) {
        lua_pushlstring(L, label, k);
        lua_setfield(L, -2, "value_name");
    }
}

/* msg.trap_name from msg.trap_oid, on the msg table at idx. */
static void set_trap_name(lua_State *L, const struct mib_table *names, int idx)
{
    size_t len;
    uint32_t arcs[MIB_MAX_ARCS];
    lua_getfield(L, idx, "trap_oid");
    const char *oid = lua_tolstring(L, -1, &len);
    size_t n = oid ? mib_dotted_arcs(oid, len, arcs) : 0;
    lua_pop(L, 1);
    if (n == 0)
        return;
    lua_pushvalue(L, idx);
    set_mib_name(L, names, "trap_name", arcs, n);
    lua_pop(L, 1);
}

static const char *version_name(const struct snmp_msg *m)
{
    return m->version == 0 ? "v1" : m->version == 1 ? "v2c" : "v3";
}

static void push_engine_id(lua_State *L, const uint8_t *v, size_t n)
{
    char buf[2 * SNMP_ENGINE_ID_MAX];
    if (n > SNMP_ENGINE_ID_MAX)
        n = SNMP_ENGINE_ID_MAX;
    snmp_hex_plain(v, n, buf);
    lua_pushlstring(L, buf, 2 * n);
}

/* Sets security_level, engine_id, context_engine_id, context_name on the table at -2 and
 * pushes the user name (the caller sets it as "user"). */
static void set_v3_fields(lua_State *L, const struct snmp_v3 *v3)
{
    lua_pushstring(L, snmp_level_name(v3->level));
    lua_setfield(L, -2, "security_level");
    push_engine_id(L, v3->engine_id, v3->engine_id_len);
    lua_setfield(L, -2, "engine_id");
    push_engine_id(L, v3->context_engine.val, v3->context_engine.len);
    lua_setfield(L, -2, "context_engine_id");
    lua_pushlstring(L, (const char *)v3->context_name.val, v3->context_name.len);
    lua_setfield(L, -2, "context_name");
    lua_pushlstring(L, (const char *)v3->user, v3->user_len);
}

/* Sets the header fields of m on the table at the top. */
static void set_header(lua_State *L, const struct snmp_msg *m)
{
    lua_pushinteger(L, m->version);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, version_name(m));
    lua_setfield(L, -2, "version_name");
    if (m->v3)
        set_v3_fields(L, m->v3);
    else
        lua_pushlstring(L, (const char *)m->community.val, m->community.len);
    lua_setfield(L, -2, m->v3 ? "user" : "community");
    lua_pushstring(L, snmp_pdu_name(m->pdu));
    lua_setfield(L, -2, "pdu");
    if (m->pdu == SNMP_PDU_TRAP) {
        push_oid(L, m->enterprise, m->enterprise_len);
        lua_setfield(L, -2, "enterprise");
        push_ipv4(L, m->agent_addr);
        lua_setfield(L, -2, "agent_addr");
        lua_pushinteger(L, m->generic_trap);
        lua_setfield(L, -2, "generic_trap");
        lua_pushinteger(L, m->specific_trap);
        lua_setfield(L, -2, "specific_trap");
        lua_pushinteger(L, m->time_stamp);
        lua_setfield(L, -2, "uptime");
        char buf[SNMP_TRAP_OID_STR_MAX];
        size_t n = snmp_v1_trap_oid(m, buf);
        lua_pushlstring(L, buf, n);
        lua_setfield(L, -2, "trap_oid");
        return;
    }
    lua_pushinteger(L, m->request_id);
    lua_setfield(L, -2, "request_id");
    lua_pushinteger(L, m->error_status);
    lua_setfield(L, -2, m->pdu == SNMP_PDU_GETBULK ? "non_repeaters" : "error_status");
    lua_pushinteger(L, m->error_index);
    lua_setfield(L, -2, m->pdu == SNMP_PDU_GETBULK ? "max_repetitions" : "error_index");
}

/* Which RFC 3584 bindings a v1 trap already carries. */
struct v1_present {
    int address, community, enterprise;
};

/* trapv2/inform: uptime and trap_oid from the first two bindings (RFC 3416 §4.2.6). */
static void note_v2_binding(lua_State *L, const struct snmp_varbind *vb, size_t index)
{
    if (index == 1 && vb->type == SNMP_TIMETICKS &&
        snmp_oid_is(vb->oid, vb->oid_len, &SNMP_SYSUPTIME_0)) {
        lua_pushinteger(L, (lua_Integer)vb->u);
        lua_setfield(L, -4, "uptime");      /* msg, varbinds, binding */
    } else if (index == 2 && vb->type == BER_OID &&
               snmp_oid_is(vb->oid, vb->oid_len, &SNMP_TRAPOID_0)) {
        push_oid(L, vb->val, vb->val_len);
        lua_setfield(L, -4, "trap_oid");
    }
}

static void note_v1_binding(const struct snmp_varbind *vb, struct v1_present *has)
{
    has->address |= snmp_oid_is(vb->oid, vb->oid_len, &SNMP_TRAPADDRESS_0);
    has->community |= snmp_oid_is(vb->oid, vb->oid_len, &SNMP_TRAPCOMMUNITY_0);
    has->enterprise |= snmp_oid_is(vb->oid, vb->oid_len, &SNMP_TRAPENTERPRISE_0);
}

/* Builds msg.v2_varbinds for a v1 trap; msg at -2, its varbinds (n of them) at -1. */
static void set_v1_v2_varbinds(lua_State *L, const struct snmp_msg *m, size_t n,
                               const struct v1_present *has)
{
    lua_createtable(L, (int)n + 5, 0);
    lua_Integer k = 0;
    lua_getfield(L, -3, "uptime");
    push_made_varbind(L, SNMP_SYSUPTIME_0.dotted, SNMP_TIMETICKS);
    lua_rawseti(L, -2, ++k);
    lua_getfield(L, -3, "trap_oid");
    push_made_varbind(L, SNMP_TRAPOID_0.dotted, BER_OID);
    lua_rawseti(L, -2, ++k);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, (lua_Integer)i);
        lua_rawseti(L, -2, ++k);
    }
    if (!has->address) {
        push_ipv4(L, m->agent_addr);
        push_made_varbind(L, SNMP_TRAPADDRESS_0.dotted, SNMP_IPADDRESS);
        lua_rawseti(L, -2, ++k);
    }
    if (!has->community) {
        lua_pushnil(L);
        push_made_varbind(L, SNMP_TRAPCOMMUNITY_0.dotted, BER_OCTET_STRING);
        set_octets(L, m->community.val, m->community.len,
                   snmp_is_text(m->community.val, m->community.len));
        lua_rawseti(L, -2, ++k);
    }
    if (!has->enterprise) {
        push_oid(L, m->enterprise, m->enterprise_len);
        push_made_varbind(L, SNMP_TRAPENTERPRISE_0.dotted, BER_OID);
        lua_rawseti(L, -2, ++k);
    }
    lua_setfield(L, -3, "v2_varbinds");
}

static const char *kind_name(enum snmp_status st)
{
    return st == SNMP_UNSUPPORTED ? "unsupported" : "malformed";
}

static int fail2(lua_State *L, const char *why)
{
    luaL_pushfail(L);
    lua_pushstring(L, why);
    return 2;
}

static int fail3(lua_State *L, const char *why, const char *kind)
{
    fail2(L, why);
    lua_pushstring(L, kind);
    return 3;
}

/* A message decoded by decode_any: v1/v2c, or v3 through a USM. */
struct decoded {
    struct snmp_msg m;
    struct snmp_v3 v3;
    struct usm_in in;
    int rejected;          /* USM dropped it: in.stat, in.why, in.report */
};

/* Decodes buf[0 .. len) up to the bindings into d->m: snmp_decode_header, and with a usm
 * an SNMPv3 message through usm_receive and snmp_decode_scoped. SNMP_OK, or a status with
 * d->m.why (d->rejected set when USM dropped it). */
static enum snmp_status decode_any(struct usm *u, const uint8_t *buf, size_t len,
                                   struct decoded *d)
{
    d->rejected = 0;
    enum snmp_status st = snmp_decode_header(&d->m, buf, len);
    if (st != SNMP_UNSUPPORTED || d->m.version != 3 || !u)
        return st;
    switch (usm_receive(u, buf, len, &d->in)) {
    case USM_ACCEPTED:
        d->v3 = d->in.v3;
        st = snmp_decode_scoped(&d->m, d->in.scoped, d->in.scoped_len, &d->v3);
        if (st == SNMP_OK || d->in.v3.level != SNMP_AUTHPRIV)
            return st;
        /* what a wrong privacy key decrypts to: garbage, not a ScopedPDU */
        usm_reject(u, &d->in, USM_STAT_DECRYPTION_ERRORS);
        d->rejected = 1;
        st = SNMP_MALFORMED;
        break;
    case USM_UNSUPPORTED:
        st = SNMP_UNSUPPORTED;
        break;
    case USM_REJECTED:
        d->rejected = 1;
        st = SNMP_MALFORMED;
        break;
    default:
        st = SNMP_MALFORMED;
        break;
    }
    d->m.why = d->in.why;
    return st;
}

/* The failure of decode_any: nil, reason, kind; after a USM drop nil, the usmStats name,
 * "usm", and the Report to send back (nil when none is due). */
static int decode_fail(lua_State *L, struct usm *u, struct decoded *d, enum snmp_status st)
{
    if (!d->rejected)
        return fail3(L, d->m.why, kind_name(st));
    fail3(L, d->m.why, "usm");
    const uint8_t *report;
    size_t n = usm_report_write(u, &d->in, &report);
    if (n)
        lua_pushlstring(L, (const char *)report, n);
    else
        lua_pushnil(L);
    return 4;
}

/* ber.decode_snmp(bytes [, names]), usm:decode_snmp(bytes) -> msg | nil, reason, kind
 * [, report]; with names (a luadgram.mib table; the usm's own, see usm:set_names), the
 * bindings get name and value_name and the message trap_name */
static int decode_snmp_with(lua_State *L, struct usm *u, int arg,
                            const struct mib_table *names)
{
    size_t len;
    const uint8_t *buf = (const uint8_t *)luaL_checklstring(L, arg, &len);
    struct decoded d;
    struct snmp_varbind vb;
    struct v1_present has = {0, 0, 0};
    enum snmp_status st = decode_any(u, buf, len, &d);
    if (st != SNMP_OK)
        return decode_fail(L, u, &d, st);
    struct snmp_msg m = d.m;           /* m.v3, if any, is &d.v3 */

    lua_createtable(L, 0, 12);
    set_header(L, &m);
    lua_newtable(L);                                    /* msg, varbinds */
    size_t n = 0;
    int v2_notification = m.pdu == SNMP_PDU_TRAPV2 || m.pdu == SNMP_PDU_INFORM;
    while ((st = snmp_next_varbind(&m, &vb)) == SNMP_OK) {
        push_varbind(L, &vb);                           /* msg, varbinds, binding */
        if (names)
            set_binding_names(L, names, &vb);
        n++;
        if (v2_notification)
            note_v2_binding(L, &vb, n);
        else if (m.pdu == SNMP_PDU_TRAP)
            note_v1_binding(&vb, &has);
        lua_rawseti(L, -2, (lua_Integer)n);
    }
    if (st != SNMP_END)
        return fail3(L, m.why, kind_name(st));
    if (m.pdu == SNMP_PDU_TRAP) {
        set_v1_v2_varbinds(L, &m, n, &has);
    } else if (v2_notification) {
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "v2_varbinds");
    }
    lua_setfield(L, -2, "varbinds");
    if (names)
        set_trap_name(L, names, lua_gettop(L));
    return 1;
}

static int ber_decode_snmp(lua_State *L)
{
    return decode_snmp_with(L, NULL, 1, lmib_opt(L, 2));
}

/* ---- ber.trap_json ---- */

/* The buffer trap_json writes into, kept as its upvalue and reused (no allocation per
 * call); replaced by a larger one (up to JSON_KEEP_MAX) when a record needs it. */
struct json_buf {
    size_t cap;
    char data[];
};

#define JSON_BUF_INITIAL 4096
#define JSON_KEEP_MAX (256 * 1024)

static struct json_buf *json_buf_new(lua_State *L, size_t cap)
{
    struct json_buf *jb = lua_newuserdatauv(L, sizeof *jb + cap, 0);
    jb->cap = cap;
    return jb;
}

static int is_notification(uint8_t pdu)
{
    return pdu == SNMP_PDU_TRAP || pdu == SNMP_PDU_TRAPV2 || pdu == SNMP_PDU_INFORM;
}

/* Pushes version, community (v3: the user name), pdu, request_id (nil for the v1
 * Trap-PDU). */
static void push_scalars(lua_State *L, const struct snmp_msg *m)
{
    lua_pushstring(L, version_name(m));
    if (m->v3)
        lua_pushlstring(L, (const char *)m->v3->user, m->v3->user_len);
    else
        lua_pushlstring(L, (const char *)m->community.val, m->community.len);
    lua_pushstring(L, snmp_pdu_name(m->pdu));
    if (m->pdu == SNMP_PDU_TRAP)
        lua_pushnil(L);
    else
        lua_pushinteger(L, m->request_id);
}

/* The second pass of snmp_json_record over m (m->next back at the bindings), into a
 * buffer of the `need` bytes the first one measured. */
static void json_again(lua_State *L, struct snmp_msg *m, char *out, size_t need)
{
    size_t len;
    const struct mib_table *names = lmib_opt(L, lua_upvalueindex(2));
    if (snmp_json_record_named(m, names, out, need, &len) != SNMP_OK || len != need)
        luaL_error(L, "trap_json: the record changed between two passes");
}

/* ---- the message's addresses: ber.PEER_DST ---- */

/* ber.PEER_DST is a light userdata holding this constant's address. */
static const char peer_dst_marker = 'P';
#define PEER_DST ((void *)&peer_dst_marker)

/* The longest JSON string of one address, and of the members PEER_DST stands for. */
#define ADDR_JSON_MAX SNMP_JSON_STRING_MAX(ADDR_STRLEN)
#define PEER_DST_MAX (sizeof "\"peer\":,\"dst\":" + 2 * ADDR_JSON_MAX)

/* Writes the JSON string of tostring(a), a the address object msg.peer or msg.dst is for sa
 * (addrobj_push): "a.b.c.d:port", "[ip6]:port", a unix path as output_jsonl.utf8_fix makes
 * it, "nil" for none (tostring(nil)), "?:0" for another family. out holds ADDR_JSON_MAX
 * bytes; returns the length. */
static size_t addr_json(const struct sockaddr *sa, socklen_t len, char *out)
{
    if (len == 0) {                                 /* no address object: tostring(nil) */
        memcpy(out, "\"nil\"", 5);
        return 5;
    }
    int family = sa->sa_family;
    if (family == AF_INET || family == AF_INET6) {  /* digits, hex, ".:[]": no escapes */
        size_t n = addr_text(sa, len, out + 1);
        out[0] = '"';
        out[n + 1] = '"';
        return n + 2;
    }
    char text[ADDR_STRLEN];
    size_t n = family == AF_UNIX ? addr_text(sa, len, text) : 0;
    if (n == 0) {       /* an unbound unix sender: none; another family: "?:0" */
        memcpy(out, family == AF_UNIX ? "\"nil\"" : "\"?:0\"", 5);
        return 5;
    }
    return snmp_json_string((const uint8_t *)text, n, out);
}

/* Writes the members ber.PEER_DST stands for, from the datagram d; out holds PEER_DST_MAX
 * bytes; returns the length. */
static size_t peer_dst_json(const struct dgram *d, char *out)
{
    static const char peer[] = "\"peer\":", dst[] = ",\"dst\":";
    size_t n = sizeof peer - 1;
    memcpy(out, peer, n);
    n += addr_json((const struct sockaddr *)&d->peer, d->peerlen, out + n);
    if (d->has & DG_HAS_DST) {                      /* msg.dst is present */
        memcpy(out + n, dst, sizeof dst - 1);
        n += sizeof dst - 1;
        n += addr_json((const struct sockaddr *)&d->dst, sizeof d->dst, out + n);
    }
    return n;
}

/* The text trap_json returns: the head (the strings given after the packet, one after
 * the other, ber.PEER_DST standing for addrs), the members, and "}" after a head. */
struct json_text {
    int first, last;           /* the head's stack indexes; last < first: no head */
    size_t hlen, need, total;  /* the head's length, the members', the whole text's */
    const struct dgram *d;     /* the message's datagram; NULL when given bytes */
    size_t alen;               /* bytes in addrs, written at the first ber.PEER_DST */
    int have_addrs;
    char addrs[PEER_DST_MAX];
};

static int is_peer_dst(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == PEER_DST;
}

/* Checks the head pieces and adds up their length. */
static void json_head_measure(lua_State *L, struct json_text *t)
{
    t->hlen = 0;
    for (int i = t->first; i <= t->last; i++) {
        size_t n;
        if (is_peer_dst(L, i)) {
            if (!t->d)
                luaL_argerror(L, i, "ber.PEER_DST needs the message object as argument 1");
            if (!t->have_addrs) {
                t->alen = peer_dst_json(t->d, t->addrs);
                t->have_addrs = 1;
            }
            n = t->alen;
        } else {
            luaL_checklstring(L, i, &n);
        }
        if (n > SIZE_MAX / 2 - t->hlen)
            luaL_argerror(L, i, "head too long");
        t->hlen += n;
    }
}

/* Writes the head before the members and the "}" after them. */
static void json_frame(lua_State *L, char *out, const struct json_text *t)
{
    if (t->last < t->first)
        return;
    for (int i = t->first; i <= t->last; i++) {
        size_t n;
        const char *s;
        if (is_peer_dst(L, i)) {
            s = t->addrs;
            n = t->alen;
        } else {
            s = lua_tolstring(L, i, &n);
        }
        memcpy(out, s, n);
        out += n;
    }
    out[t->need] = '}';
}

/* Pushes the scalars and the text of a record larger than JSON_KEEP_MAX (written again
 * into a one-off buffer, not kept). */
static int push_large(lua_State *L, struct snmp_msg *m, const struct json_text *t)
{
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, t->total);
    json_again(L, m, out + t->hlen, t->need);
    json_frame(L, out, t);
    luaL_pushresultsize(&b, t->total);
    push_scalars(L, m);
    lua_rotate(L, -5, -1);                  /* the text after the scalars */
    return 5;
}

/* ber.trap_json(bytes | msg [, head...]), usm:trap_json(...) -> version, community, pdu,
 * request_id, members | nil, reason, kind [, report]
 * (a head piece is a string, or ber.PEER_DST after a message); arg: the bytes' index */
static int trap_json_with(lua_State *L, struct usm *u, int arg, const struct mib_table *names)
{
    size_t len;
    const uint8_t *buf;
    struct json_text t;
    t.first = arg + 1;
    t.last = lua_gettop(L);
    t.have_addrs = 0;
    t.d = NULL;
    if (msg_is(L, arg)) { /* the message itself: no Lua string of it */
        t.d = msg_dgram(L, arg);
        buf = t.d->data;
        len = t.d->len;
    } else {
        buf = (const uint8_t *)luaL_checklstring(L, arg, &len);
    }
    t.need = t.total = 0;
    json_head_measure(L, &t);
    size_t frame = t.hlen + (t.last >= t.first ? 1 : 0);
    struct json_buf *jb = lua_touserdata(L, lua_upvalueindex(1));
    struct decoded d;
    struct snmp_varbind vb;
    enum snmp_status st = decode_any(u, buf, len, &d);
    if (st != SNMP_OK)
        return decode_fail(L, u, &d, st);
    struct snmp_msg m = d.m;           /* m.v3, if any, is &d.v3 */
    if (!is_notification(m.pdu)) {      /* checked as decode_snmp would, not written */
        while ((st = snmp_next_varbind(&m, &vb)) == SNMP_OK)
            ;
        if (st != SNMP_END)
            return fail3(L, m.why, kind_name(st));
        push_scalars(L, &m);
        lua_pushnil(L);
        return 5;
    }
    struct ber_cur start = m.next;
    size_t room = jb->cap > frame ? jb->cap - frame : 0;
    st = snmp_json_record_named(&m, names,
                                jb->data + (room ? t.hlen : 0), room, &t.need);
    if (st != SNMP_OK)
        return fail3(L, m.why, kind_name(st));
    if (t.need > SIZE_MAX / 2 - frame)
        return luaL_error(L, "trap_json: record too large");
    t.total = t.need + frame;
    if (t.need > room) {
        /* Write it again into a buffer that fits; kept for the next records when not
         * too large. The bindings were all accepted, so the text is the same. */
        m.next = start;
        if (t.total > JSON_KEEP_MAX)
            return push_large(L, &m, &t);
        jb = json_buf_new(L, t.total);
        lua_replace(L, lua_upvalueindex(1));
        json_again(L, &m, jb->data + t.hlen, t.need);
    }
    json_frame(L, jb->data, &t);
    push_scalars(L, &m);
    lua_pushlstring(L, jb->data, t.total);
    return 5;
}

static int ber_trap_json(lua_State *L)
{
    return trap_json_with(L, NULL, 1, lmib_opt(L, lua_upvalueindex(2)));
}

/* ber.trap_json_named(names) -> trap_json with MIB names: its buffer (upvalue 1) and the
 * luadgram.mib table (upvalue 2, NULL in ber.trap_json). */
static int ber_trap_json_named(lua_State *L)
{
    luaL_argcheck(L, lmib_opt(L, 1) != NULL, 1, "luadgram.mib table expected");
    json_buf_new(L, JSON_BUF_INITIAL);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, ber_trap_json, 2);
    return 1;
}

/* ---- ber.inform_response ---- */

/* Reads every binding of m (up to the end of the list); SNMP_OK or the failure. */
static enum snmp_status check_bindings(struct snmp_msg *m)
{
    struct ber_cur start = m->next;
    struct snmp_varbind vb;
    enum snmp_status st;
    while ((st = snmp_next_varbind(m, &vb)) == SNMP_OK)
        ;
    m->next = start;
    return st == SNMP_END ? SNMP_OK : st;
}

/* ber.inform_response(bytes), usm:inform_response(bytes) -> response bytes
 *                                                   | nil, reason, kind [, report] */
static int inform_response_with(lua_State *L, struct usm *u, int arg)
{
    size_t len;
    const uint8_t *buf = (const uint8_t *)luaL_checklstring(L, arg, &len);
    struct decoded d;
    enum snmp_status st = decode_any(u, buf, len, &d);
    if (st != SNMP_OK)
        return decode_fail(L, u, &d, st);
    struct snmp_msg m = d.m;           /* m.v3, if any, is &d.v3 */
    if ((st = check_bindings(&m)) != SNMP_OK)
        return fail3(L, m.why, kind_name(st));
    if (m.pdu != SNMP_PDU_INFORM)
        return fail3(L, "not an InformRequest", "unexpected");
    if (m.v3) {
        const uint8_t *out;
        size_t n = usm_response_write(u, &d.in, &m, &out);
        if (!n)
            return fail3(L, "cannot encrypt or sign the response", "unexpected");
        lua_pushlstring(L, (const char *)out, n);
        return 1;
    }
    luaL_Buffer b;
    size_t size = snmp_inform_response_size(&m);
    char *out = luaL_buffinitsize(L, &b, size);
    luaL_pushresultsize(&b, snmp_inform_response_write(&m, (uint8_t *)out));
    return 1;
}

static int ber_inform_response(lua_State *L)
{
    return inform_response_with(L, NULL, 1);
}

/* ---- ber.decode ---- */

/* Pushes the node for t, read from cursor c (for its depth); returns NULL or a reason with
 * the partial node left on the stack (the caller discards it). */
static const char *push_tree(lua_State *L, const struct ber_cur *c, const struct ber_tlv *t)
{
    static const char *const classes[] = {"universal", "application", "context", "private"};
    luaL_checkstack(L, 4, "BER nesting");
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, t->tag);
    lua_setfield(L, -2, "tag");
    lua_pushstring(L, classes[t->tag >> 6]);
    lua_setfield(L, -2, "class");
    int constructed = (t->tag & BER_CONSTRUCTED) != 0;
    lua_pushboolean(L, constructed);
    lua_setfield(L, -2, "constructed");
    if (!constructed) {
        lua_pushlstring(L, (const char *)t->val, t->len);
        lua_setfield(L, -2, "value");
        return NULL;
    }
    struct ber_cur inner;
    const char *why = ber_enter(c, t, &inner);
    for (lua_Integer i = 1; !why && ber_left(&inner); i++) {
        struct ber_tlv child;
        if ((why = ber_read(&inner, &child)) || (why = push_tree(L, &inner, &child)))
            break;
        lua_rawseti(L, -2, i);
    }
    return why;
}

/* ber.decode(bytes) -> node | nil, reason */
static int ber_decode(lua_State *L)
{
    size_t len;
    const char *buf = luaL_checklstring(L, 1, &len);
    struct ber_cur c;
    struct ber_tlv t;
    ber_init(&c, buf, len);
    const char *why = ber_read(&c, &t);
    if (!why && ber_left(&c))
        why = "trailing bytes";
    if (!why)
        why = push_tree(L, &c, &t);
    if (why) {
        luaL_pushfail(L);
        lua_pushstring(L, why);
        return 2;
    }
    return 1;
}

/* ---- SNMPv3: ber.usm, ber.engine_state ---- */

#define USM_META "luadgram.usm"

/* The userdata of a usm object: it owns the struct usm (freed by __gc or :close). */
struct usm_box {
    struct usm *u;
};

static struct usm *check_usm(lua_State *L)
{
    struct usm_box *b = luaL_checkudata(L, 1, USM_META);
    if (!b->u)
        luaL_argerror(L, 1, "the usm is closed");
    return b->u;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Hex text (pairs of digits, optional "0x", spaces and colons allowed between bytes) into
 * out[cap]; returns the length, or -1 when it is not hex or too long. */
static long unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    while (*s) {
        if (*s == ' ' || *s == ':') {
            s++;
            continue;
        }
        int hi = hexval(s[0]), lo = s[1] ? hexval(s[1]) : -1;
        if (hi < 0 || lo < 0 || n == cap)
            return -1;
        out[n++] = (uint8_t)(hi << 4 | lo);
        s += 2;
    }
    return (long)n;
}

/* ber.usm(engine_id_hex, boots, started [, cache_size]) -> usm
 * A USM for the snmptrap handler: our engine (engine ID, engineBoots, the CLOCK_REALTIME
 * second engineTime counts from), a cache of cache_size (default 1024) localized keys. */
static int ber_usm(lua_State *L)
{
    struct usm_engine own;
    long n = unhex(luaL_checkstring(L, 1), own.id, sizeof own.id);
    luaL_argcheck(L, n >= 5, 1, "an engine ID of 5 to 32 octets in hex");
    own.id_len = (size_t)n;
    lua_Integer boots = luaL_checkinteger(L, 2);
    luaL_argcheck(L, boots >= 0 && boots <= INT32_MAX, 2, "engineBoots out of range");
    own.boots = (uint32_t)boots;
    own.started = (int64_t)luaL_checkinteger(L, 3);
    lua_Integer cache = luaL_optinteger(L, 4, 1024);
    luaL_argcheck(L, cache >= 1 && cache <= 1 << 20, 4, "cache size from 1 to 1048576");
    struct usm_box *b = lua_newuserdatauv(L, sizeof *b, 1); /* 1: its MIB names */
    b->u = NULL;
    luaL_setmetatable(L, USM_META);
    char err[160];
    if (!(b->u = usm_new(&own, (size_t)cache, err, sizeof err)))
        return luaL_error(L, "%s", err);
    return 1;
}

/* Reads t[key] as an optional string (NULL when absent); raises on another type. */
static const char *opt_field(lua_State *L, int t, const char *key, size_t *len)
{
    lua_getfield(L, t, key);
    const char *s = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s must be a string", key);
        s = lua_tolstring(L, -1, len);
    }
    lua_pop(L, 1);              /* the string stays alive in the table */
    return s;
}

/* usm:add_user{ name =, auth =, auth_pass = | auth_key = (hex), priv =, priv_pass = |
 * priv_key = (hex), engine_id = (hex), level = } -> true | nil, reason */
static int usm_add_user_l(lua_State *L)
{
    struct usm *u = check_usm(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct usm_user_config c;
    memset(&c, 0, sizeof c);
    uint8_t auth_key[USM_KEY_MAX], priv_key[USM_KEY_MAX], engine[SNMP_ENGINE_ID_MAX];
    size_t len = 0;
    const char *s;
    char err[200];
    c.name = opt_field(L, 2, "name", &c.name_len);
    if (!c.name)
        return fail2(L, "name is required");
    if ((s = opt_field(L, 2, "auth", &len))) {
        int a = usm_auth_by_name(s);
        if (a < 0)
            return fail2(L, "auth must be MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512");
        c.auth = (enum usm_auth)a;
    }
    if ((s = opt_field(L, 2, "priv", &len))) {
        int p = usm_priv_by_name(s);
        if (p < 0)
            return fail2(L, "priv must be DES, AES (AES-128), AES-192 or AES-256");
        c.priv = (enum usm_priv)p;
    }
    c.auth_pass = (const uint8_t *)opt_field(L, 2, "auth_pass", &c.auth_pass_len);
    c.priv_pass = (const uint8_t *)opt_field(L, 2, "priv_pass", &c.priv_pass_len);
    const struct { const char *key; uint8_t *buf; size_t cap; const uint8_t **out;
                   size_t *out_len; } hex[] = {
        {"auth_key", auth_key, sizeof auth_key, &c.auth_key, &c.auth_key_len},
        {"priv_key", priv_key, sizeof priv_key, &c.priv_key, &c.priv_key_len},
        {"engine_id", engine, sizeof engine, &c.engine_id, &c.engine_id_len},
    };
    for (size_t i = 0; i < sizeof hex / sizeof hex[0]; i++) {
        if (!(s = opt_field(L, 2, hex[i].key, &len)))
            continue;
        long n = unhex(s, hex[i].buf, hex[i].cap);
        if (n < 0) {
            lua_pushfstring(L, "%s must be hex (at most %d octets)", hex[i].key,
                            (int)hex[i].cap);
            return fail2(L, lua_tostring(L, -1));
        }
        *hex[i].out = hex[i].buf;
        *hex[i].out_len = (size_t)n;
    }
    if ((c.auth_pass && c.auth_key) || (c.priv_pass && c.priv_key))
        return fail2(L, "give a password or a key, not both");
    if (c.auth && !c.auth_pass && !c.auth_key)
        return fail2(L, "auth needs auth_pass or auth_key");
    if (c.priv && !c.priv_pass && !c.priv_key)
        return fail2(L, "priv needs priv_pass or priv_key");
    if (!c.auth && (c.auth_pass || c.auth_key))
        return fail2(L, "auth_pass or auth_key without auth");
    if (!c.priv && (c.priv_pass || c.priv_key))
        return fail2(L, "priv_pass or priv_key without priv");
    c.min_level = -1;
    if ((s = opt_field(L, 2, "level", &len))) {
        c.min_level = strcmp(s, "noAuthNoPriv") == 0 ? SNMP_NOAUTHNOPRIV
                      : strcmp(s, "authNoPriv") == 0 ? SNMP_AUTHNOPRIV
                      : strcmp(s, "authPriv") == 0   ? SNMP_AUTHPRIV : -2;
        if (c.min_level == -2)
            return fail2(L, "level must be noAuthNoPriv, authNoPriv or authPriv");
    }
    if (usm_add_user(u, &c, err, sizeof err))
        return fail2(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* The usm's MIB names (usm:set_names), or NULL; the table stays referenced by the usm. */
static const struct mib_table *usm_names(lua_State *L)
{
    lua_getiuservalue(L, 1, 1);
    const struct mib_table *names = lmib_opt(L, -1);
    lua_pop(L, 1);
    return names;
}

/* usm:set_names(names): the luadgram.mib table decode_snmp and trap_json name OIDs with */
static int usm_set_names_l(lua_State *L)
{
    check_usm(L);
    luaL_argcheck(L, lmib_opt(L, 2) != NULL, 2, "luadgram.mib table expected");
    lua_settop(L, 2);
    lua_setiuservalue(L, 1, 1);
    return 0;
}

static int usm_decode_snmp_l(lua_State *L)
{
    struct usm *u = check_usm(L);
    return decode_snmp_with(L, u, 2, usm_names(L));
}
static int usm_inform_response_l(lua_State *L) { return inform_response_with(L, check_usm(L), 2); }

static int usm_trap_json_l(lua_State *L)
{
    struct usm *u = check_usm(L);
    return trap_json_with(L, u, 2, usm_names(L));
}

/* usm:stats() -> { usmStatsWrongDigests = n, ..., evictions = n } (this state's counts) */
static int usm_stats_l(lua_State *L)
{
    struct usm *u = check_usm(L);
    lua_createtable(L, 0, USM_STAT_COUNT + 1);
    for (int i = 0; i < USM_STAT_COUNT; i++) {
        lua_pushinteger(L, usm_stat_count(u, (enum usm_stat)i));
        lua_setfield(L, -2, usm_stat_name((enum usm_stat)i));
    }
    lua_pushinteger(L, (lua_Integer)usm_evictions(u));
    lua_setfield(L, -2, "evictions");
    return 1;
}

static int usm_close_l(lua_State *L)
{
    struct usm_box *b = luaL_checkudata(L, 1, USM_META);
    usm_free(b->u);
    b->u = NULL;
    return 0;
}

/* ber.engine_state(path [, engine_id_hex]) -> engine_id_hex, boots, started | nil, err
 * The engine's state file (engine_state.c): read, engineBoots raised once per process,
 * written atomically. */
static int ber_engine_state(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *want = luaL_optstring(L, 2, NULL);
    struct engine_state st;
    char err[300];
    if (want) {
        long n = unhex(want, st.id, sizeof st.id);
        if (n < 5)
            return fail2(L, "engine_id must be 5 to 32 octets in hex");
        st.id_len = (size_t)n;
    }
    if (engine_state_load(path, want != NULL, &st, err, sizeof err) != 0)
        return fail2(L, err);
    push_engine_id(L, st.id, st.id_len);
    lua_pushinteger(L, st.boots);
    lua_pushinteger(L, (lua_Integer)st.started);
    return 3;
}

static const luaL_Reg usm_methods[] = {
    {"add_user", usm_add_user_l},
    {"set_names", usm_set_names_l},
    {"decode_snmp", usm_decode_snmp_l},
    {"inform_response", usm_inform_response_l},
    {"trap_json", NULL},                    /* with a buffer of its own as upvalue */
    {"stats", usm_stats_l},
    {"close", usm_close_l},
    {NULL, NULL},
};

static const luaL_Reg ber_funcs[] = {
    {"decode_snmp", ber_decode_snmp},
    {"inform_response", ber_inform_response},
    {"decode", ber_decode},
    {"trap_json", NULL},                    /* set below, with its buffer as upvalue */
    {"trap_json_named", ber_trap_json_named},
    {"usm", ber_usm},
    {"engine_state", ber_engine_state},
    {NULL, NULL},
};

int luaopen_luadgram_ber(lua_State *L)
{
    luaL_newlib(L, ber_funcs);
    json_buf_new(L, JSON_BUF_INITIAL);
    lua_pushcclosure(L, ber_trap_json, 1);
    lua_setfield(L, -2, "trap_json");
    lua_pushlightuserdata(L, PEER_DST);
    lua_setfield(L, -2, "PEER_DST");
    const char *why = usm_unavailable();
    if (why) {
        lua_pushstring(L, why);
        lua_setfield(L, -2, "usm_unavailable");
    }
    if (luaL_newmetatable(L, USM_META)) {
        luaL_newlib(L, usm_methods);
        json_buf_new(L, JSON_BUF_INITIAL);
        lua_pushcclosure(L, usm_trap_json_l, 1);
        lua_setfield(L, -2, "trap_json");
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, usm_close_l);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    return 1;
}
