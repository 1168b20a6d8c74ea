/* fuzz/fuzz_ber.c: arbitrary bytes as an SNMP datagram, straight into the C decoder
 * (snmp_decode.c over ber.c), every binding presented as the Lua module would (OID text,
 * text/hex, Opaque numbers), an inform answered and the answer decoded again, the record
 * written as JSON text (snmp_json_record: accepted exactly when the decoder accepts, the
 * same length on every pass, a cut pass a prefix of the whole, and valid JSON in valid
 * UTF-8, checked by a small validator of its own); the same bytes as a unix peer's path
 * through snmp_json_string; and walked as a generic BER tree. The record is also written
 * with MIB names (snmp_json_record_named, the table loaded once from the test modules in
 * spec/fixtures/mibs), with the same checks, and every OID of the packet is looked up in
 * that table. Aborts when a promise the callers rely on breaks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ber.h"
#include "mib.h"
#include "snmp_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The MIB name table of the test modules, loaded at the first input and kept (the
 * harness's only state). */
/* libsmi leaks a few strings of its own at the load (smiVasprintf); daemon/codec/mib.c
 * suppresses them by module, which needs the allocation's stack to reach libsmi.so through
 * libc's vasprintf: ASan's fast unwinder stops inside libc, so this target unwinds with the
 * slow, exact one (the environment's ASAN_OPTIONS still apply on top). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "fast_unwind_on_malloc=0";
}

static const struct mib_table *fuzz_mib_names;

static const struct mib_table *mib_names(void)
{
    if (fuzz_mib_names)
        return fuzz_mib_names;
    const char *src = getenv("LUADGRAM_SRC");
    char dir[4096], err[MIB_ERR_MAX];
    snprintf(dir, sizeof dir, "%s/spec/fixtures/mibs", src ? src : LUADGRAM_SOURCE_DIR);
    const char *dirs[] = {dir}, *modules[] = {"LUADGRAM-TEST-MIB"};
    fuzz_mib_names = mib_table_load(dirs, 1, modules, 1, err);
    if (!fuzz_mib_names) {
        fprintf(stderr, "fuzz_ber: cannot load the test MIB modules from %s: %s\n", dir, err);
        abort();
    }
    return fuzz_mib_names;
}

/* An OID's name in the table: within MIB_NAME_MAX, "MODULE::descriptor" then ".arc"s, the
 * same from the array of arcs and from the content in place. */
static void check_mib_name(const uint8_t *oid, size_t len)
{
    const struct mib_table *t = mib_names();
    uint32_t arcs[BER_MAX_OID_ARCS];
    size_t n = mib_ber_arcs(oid, len, arcs);
    if (n == 0 || n > BER_MAX_OID_ARCS)
        abort();
    struct mib_match mm = mib_lookup(t, arcs, n);
    char name[MIB_NAME_MAX + 1];
    size_t k = mib_name_write(t, &mm, arcs, n, name);
    if ((k == 0) != (mm.node == NULL) || k > MIB_NAME_MAX || mm.matched > n)
        abort();
    name[k] = 0;
    if (k && (!strstr(name, "::") || strlen(name) != k))
        abort();
    /* the in-place lookup of the JSON record (mib_lookup_ber) names it alike */
    struct mib_match fast = mib_lookup_ber(t, oid, len);
    char again[MIB_NAME_MAX];
    if (fast.node != mm.node || fast.matched != mm.matched ||
        mib_name_write_ber(t, &fast, oid, len, again) != k || memcmp(again, name, k) != 0)
        abort();
    size_t label_len;
    const char *label = mib_enum_label(t, &mm, (int32_t)len, &label_len);
    if (label && (label_len == 0 || memchr(label, '"', label_len)))
        abort();
}

/* Presents one binding the way module_ber.c does, checking the lengths it relies on. */
static void present(const struct snmp_varbind *vb)
{
    char oid[BER_OID_STR_MAX];
    size_t n = ber_oid_format(vb->oid, vb->oid_len, oid);
    if (n == 0 || n >= sizeof oid || strlen(oid) != n)
        abort();
    check_mib_name(vb->oid, vb->oid_len);
    uint32_t arcs[MIB_MAX_ARCS];        /* the dotted form reads back to the same arcs */
    if (mib_dotted_arcs(oid, n, arcs) == 0)
        abort();
    if (!snmp_type_name(vb->type))
        abort();
    if (vb->type == BER_OID) {
        n = ber_oid_format(vb->val, vb->val_len, oid);
        if (n == 0 || strlen(oid) != n)
            abort();
        check_mib_name(vb->val, vb->val_len);
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

/* ---- a strict JSON validator (RFC 8259), independent of the writer ---- */

struct jv {
    const uint8_t *p, *end;
    int depth;
};

#define JV_MAX_DEPTH 16

static int jv_value(struct jv *v);

static void jv_ws(struct jv *v)
{
    while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r'))
        v->p++;
}

static int jv_lit(struct jv *v, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(v->end - v->p) < n || memcmp(v->p, lit, n) != 0)
        return 0;
    v->p += n;
    return 1;
}

/* One UTF-8 sequence of a code point at or above U+0080: its length, or 0 when it is not
 * well-formed (overlong, surrogate, past U+10FFFF, cut). */
static size_t jv_utf8(const uint8_t *p, size_t left)
{
    uint8_t b = p[0];
    size_t n;
    uint32_t cp, min;
    if (b >= 0xc2 && b <= 0xdf)
        n = 2, cp = b & 0x1f, min = 0x80;
    else if (b >= 0xe0 && b <= 0xef)
        n = 3, cp = b & 0x0f, min = 0x800;
    else if (b >= 0xf0 && b <= 0xf4)
        n = 4, cp = b & 0x07, min = 0x10000;
    else
        return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static int jv_hex4(const uint8_t *p)
{
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

static int jv_string(struct jv *v)
{
    if (v->p >= v->end || *v->p != '"')
        return 0;
    v->p++;
    while (v->p < v->end) {
        uint8_t c = *v->p;
        if (c == '"') {
            v->p++;
            return 1;
        }
        if (c < 0x20)                   /* a raw control character */
            return 0;
        if (c == '\\') {
            if (v->end - v->p < 2)
                return 0;
            uint8_t e = v->p[1];
            if (e == 'u') {
                if (v->end - v->p < 6 || !jv_hex4(v->p + 2))
                    return 0;
                v->p += 6;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                v->p += 2;
            } else {
                return 0;
            }
        } else if (c < 0x80) {
            v->p++;
        } else {
            size_t n = jv_utf8(v->p, (size_t)(v->end - v->p));
            if (!n)
                return 0;
            v->p += n;
        }
    }
    return 0;
}

static int jv_digits(struct jv *v)
{
    const uint8_t *start = v->p;
    while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
        v->p++;
    return v->p > start;
}

static int jv_number(struct jv *v)
{
    if (v->p < v->end && *v->p == '-')
        v->p++;
    if (v->p < v->end && *v->p == '0')
        v->p++;
    else if (v->p >= v->end || *v->p < '1' || *v->p > '9' || !jv_digits(v))
        return 0;
    if (v->p < v->end && *v->p == '.') {
        v->p++;
        if (!jv_digits(v))
            return 0;
    }
    if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
        v->p++;
        if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
            v->p++;
        if (!jv_digits(v))
            return 0;
    }
    return 1;
}

/* An object ('{' ... '}') or an array ('[' ... ']'). */
static int jv_container(struct jv *v, uint8_t close)
{
    if (++v->depth > JV_MAX_DEPTH)
        return 0;
    v->p++;
    jv_ws(v);
    if (v->p < v->end && *v->p == close) {
        v->p++;
        v->depth--;
        return 1;
    }
    for (;;) {
        if (close == '}') {
            if (!jv_string(v))
                return 0;
            jv_ws(v);
            if (v->p >= v->end || *v->p != ':')
                return 0;
            v->p++;
            jv_ws(v);
        }
        if (!jv_value(v))
            return 0;
        jv_ws(v);
        if (v->p >= v->end)
            return 0;
        if (*v->p == close) {
            v->p++;
            v->depth--;
            return 1;
        }
        if (*v->p != ',')
            return 0;
        v->p++;
        jv_ws(v);
    }
}

static int jv_value(struct jv *v)
{
    if (v->p >= v->end)
        return 0;
    switch (*v->p) {
    case '{':
        return jv_container(v, '}');
    case '[':
        return jv_container(v, ']');
    case '"':
        return jv_string(v);
    case 't':
        return jv_lit(v, "true");
    case 'f':
        return jv_lit(v, "false");
    case 'n':
        return jv_lit(v, "null");
    default:
        return jv_number(v);
    }
}

/* 1 when text[0 .. n) is one JSON object and nothing else. */
static int json_object_valid(const uint8_t *text, size_t n)
{
    struct jv v = {text, text + n, 0};
    if (n == 0 || text[0] != '{' || !jv_value(&v))
        return 0;
    jv_ws(&v);
    return v.p == v.end;
}

/* ---- the JSON record ---- */

/* snmp_json_record on the message the decoder gave `whole` for (with the MIB names of
 * `names`, or none): the same verdict; the same length when measured (cap 0), written in
 * full, and written cut in half (then a prefix of the whole); and "{" members "}" a valid
 * JSON object. */
static void check_json(const uint8_t *data, size_t size, enum snmp_status whole,
                       const struct mib_table *names)
{
    struct snmp_msg m;
    char none[1];
    size_t need, again;
    if (snmp_decode_header(&m, data, size) != SNMP_OK)
        return;
    struct ber_cur start = m.next;
    enum snmp_status st = snmp_json_record_named(&m, names, none, 0, &need);
    if ((st == SNMP_OK) != (whole == SNMP_OK))
        abort();
    if (st != SNMP_OK) {
        if (st != SNMP_MALFORMED || !m.why)
            abort();
        return;
    }
    if (need < 2 || need > (names ? 256 : 64) * size + 4096)
        abort();
    uint8_t *text = malloc(need + 2);
    uint8_t *half = malloc(need / 2 + 1);
    if (!text || !half)
        goto done;
    m.next = start;
    if (snmp_json_record_named(&m, names, (char *)text + 1, need, &again) != SNMP_OK ||
        again != need)
        abort();
    text[0] = '{';
    text[need + 1] = '}';
    if (!json_object_valid(text, need + 2))
        abort();
    m.next = start;
    if (snmp_json_record_named(&m, names, (char *)half, need / 2, &again) != SNMP_OK ||
        again != need ||
        memcmp(half, text + 1, need / 2) != 0)
        abort();
done:
    free(text);
    free(half);
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

/* snmp_json_string (a unix peer's path in a record): within its bound, one valid JSON
 * string of valid UTF-8, whatever the bytes. */
static void check_json_string(const uint8_t *data, size_t size)
{
    size_t n = size < 256 ? size : 256;
    char out[SNMP_JSON_STRING_MAX(256)];
    size_t len = snmp_json_string(data, n, out);
    if (len < 2 || len > SNMP_JSON_STRING_MAX(n))
        abort();
    struct jv v = {(const uint8_t *)out, (const uint8_t *)out + len, 0};
    if (!jv_string(&v) || v.p != v.end)
        abort();
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
    check_json(data, size, st, NULL);
    check_json(data, size, st, mib_names());
    check_json_string(data, size);

    struct ber_cur c;
    struct ber_tlv t;
    ber_init(&c, data, size);
    if (!ber_read(&c, &t))
        walk(&c, &t);
    return 0;
}
