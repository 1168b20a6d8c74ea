/* bindings/module_syslog.c: the `luadgram.syslog` Lua module: the C syslog parser
 * (syslog_parse.c) as Lua records, and the syslog handler's fast path, which parses a
 * datagram and writes its JSON line (syslog_json.c) with no Lua table in between.
 *
 *   local syslog = require "luadgram.syslog"
 *
 *   rec = syslog.parse(data [, now [, opts]])
 *     Exactly syslog_parse.lua's parse (scripts/lib/syslog_parse.lua documents the record):
 *     the same fields, values and number types for the same arguments.
 *
 *   json_line = syslog.json_writer{ listener =, raw =, hostname =, record = }
 *     listener  the listener's name ("listener" in every line; nil: left out)
 *     raw       when a line carries raw_b64 (the datagram, base64): "errors" (default: with
 *               a parse error), "always", "never"
 *     hostname  true: json_line also returns the record's HOSTNAME (for host filters)
 *     record    true: json_line also returns, last, the record parse would give (the same
 *               parse: a collector that writes and forwards parses once)
 *     Returns a function owning one buffer for its lines (64 KiB; longer lines go through a
 *     luaL_Buffer). Raises on a bad option.
 *
 *   line, code, failed [, hostname] [, rec] = json_line(data, now [, tz_offset [, peer
 *                                                       [, dst [, creds]]]])
 *   line, code, failed [, hostname] [, rec] = json_line(msg, now [, tz_offset])
 *     Parses data as parse(data, now, { tz_offset = tz_offset }) does and returns its JSON
 *     object, the line scripts/syslog.lua writes (see there; no newline): "received" is now,
 *     "peer" and "dst" the strings given, "creds" the integers creds.pid, .uid, .gid. Given
 *     the handler's message object instead, it reads all four from the datagram in place
 *     (no Lua string, no address table): peer is tostring(msg.peer) for IP senders and
 *     msg.peer.path for unix ones, dst tostring(msg.dst) for IP senders, creds msg.creds
 *     for the others.
 *     code is facility * 8 + severity (13 without a valid PRI), failed whether the record
 *     has a parse_error, hostname its HOSTNAME or nil. Strings are made valid UTF-8.
 *
 *   add, drop_last, take = syslog.json_batch{ listener =, raw =, hostname = }
 *     The same lines gathered in one buffer (128 KiB, no Lua string per line), for writers
 *     that take lines in bulk:
 *     code, failed, full [, hostname] = add(data | msg, now [, ...])  (as json_line)
 *       appends json_line's line and "\n"; full once 64 KiB or more are waiting (or a line
 *       longer than the buffer waits beside it: then take() before the next add, which
 *       raises otherwise)
 *     drop_last()          takes back the line of the last add (a message filtered out)
 *     lines, count = take()  the lines since the last take ("" and 0 when none); empties it
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "lbind.h"
#include "syslog_json.h"
#include "syslog_parse.h"

enum {
    SLC_LINE_BUF = 65536,     /* json_writer: lines up to this go through its own buffer */
    SLC_BATCH_FULL = 65536,   /* json_batch: "full" from this many bytes of lines on */
    SLC_BATCH_CAP = 131072,   /* json_batch: its buffer (a longer line waits beside it) */
};

/* The reception time as the Lua parser takes it: `now` when it is a number within 1e12 s of
 * the epoch, else the current time; whole seconds (floor). */
static int64_t slc_now(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        if (lua_isinteger(L, idx)) {
            lua_Integer i = lua_tointeger(L, idx);
            if (i <= SYSLOG_NOW_MAX && i >= -SYSLOG_NOW_MAX)
                return (int64_t)i;
        } else {
            lua_Number d = lua_tonumber(L, idx);
            if (d == d && d <= 1e12 && d >= -1e12)
                return (int64_t)floor(d);
        }
    }
    return (int64_t)time(NULL);
}

/* tz_from of the Lua parser for the value at idx: a whole number of seconds strictly within
 * a day, else no zone. */
static bool slc_tz(lua_State *L, int idx, int32_t *tz)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return false;
    int isint;
    lua_Integer off = lua_tointegerx(L, idx, &isint);
    if (!isint || off <= -86400 || off >= 86400)
        return false;
    *tz = (int32_t)off;
    return true;
}

/* ---------------------------------------------------------------------------------------
 * syslog.parse */

static void slc_set_span(lua_State *L, const struct syslog_rec *rec, struct syslog_span s,
                         const char *key)
{
    lua_pushlstring(L, (const char *)rec->data + s.off, s.len);
    lua_setfield(L, -2, key);
}

/* Pushes an SD-PARAM value, unescaped. */
static void slc_push_value(lua_State *L, const struct syslog_rec *rec,
                           const struct syslog_sd_item *item)
{
    if (!item->escaped) {
        lua_pushlstring(L, (const char *)rec->data + item->value.off, item->value.len);
        return;
    }
    luaL_Buffer b;
    uint8_t *out = (uint8_t *)luaL_buffinitsize(L, &b, item->value.len);
    luaL_pushresultsize(&b, syslog_sd_unescape(rec->data, item->value, out));
}

/* Sets rec_table.sd: { { id =, params = { { name =, value = }, ... } }, ... }. */
static void slc_set_sd(lua_State *L, const struct syslog_rec *rec)
{
    struct syslog_sd_iter it;
    struct syslog_sd_item item;
    enum syslog_sd_kind k;
    lua_Integer nelem = 0, nparam = 0;
    luaL_checkstack(L, 6, "syslog record");
    lua_newtable(L);                                              /* rec sd */
    int sd = lua_gettop(L);
    syslog_sd_begin(&it, rec->data, rec->len, rec->sd.off + 1);
    while ((k = syslog_sd_next(&it, &item)) == SYSLOG_SD_ELEMENT || k == SYSLOG_SD_PARAM) {
        if (k == SYSLOG_SD_ELEMENT) {
            lua_settop(L, sd);                                    /* rec sd */
            lua_createtable(L, 0, 2);                             /* rec sd elem */
            lua_pushlstring(L, (const char *)rec->data + item.id.off, item.id.len);
            lua_setfield(L, -2, "id");
            lua_newtable(L);                                      /* rec sd elem params */
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, "params");
            lua_rotate(L, -2, 1);                                 /* rec sd params elem */
            lua_rawseti(L, sd, ++nelem);                          /* rec sd params */
            nparam = 0;
        } else {
            lua_createtable(L, 0, 2);                             /* rec sd params param */
            lua_pushlstring(L, (const char *)rec->data + item.name.off, item.name.len);
            lua_setfield(L, -2, "name");
            slc_push_value(L, rec, &item);
            lua_setfield(L, -2, "value");
            lua_rawseti(L, -2, ++nparam);                         /* rec sd params */
        }
    }
    lua_settop(L, sd);                                            /* rec sd */
    lua_setfield(L, -2, "sd");                                    /* rec */
}

static void slc_push_record(lua_State *L, const struct syslog_rec *rec, int data_idx)
{
    static const char *const formats[] = { "unknown", "rfc5424", "rfc3164" };
    lua_createtable(L, 0, 20);                                    /* rec */
    lua_pushvalue(L, data_idx);
    lua_setfield(L, -2, "raw");
    lua_pushstring(L, formats[rec->format <= SYSLOG_RFC3164 ? rec->format : 0]);
    lua_setfield(L, -2, "format");
    if (rec->pri >= 0) {
        lua_pushinteger(L, rec->pri);
        lua_setfield(L, -2, "pri");
    }
    lua_pushinteger(L, rec->facility);
    lua_setfield(L, -2, "facility");
    lua_pushinteger(L, rec->severity);
    lua_setfield(L, -2, "severity");
    lua_pushstring(L, syslog_facility_names[rec->facility % 24]);
    lua_setfield(L, -2, "facility_name");
    lua_pushstring(L, syslog_severity_names[rec->severity % 8]);
    lua_setfield(L, -2, "severity_name");
    if (rec->format == SYSLOG_RFC5424) {
        lua_pushinteger(L, 1);
        lua_setfield(L, -2, "version");
    }
    if (rec->has_timestamp) {
        lua_pushlstring(L, rec->ts_text, rec->ts_len);
        lua_setfield(L, -2, "timestamp");
    }
    if (rec->has_time) {
        if (rec->time_is_float)
            lua_pushnumber(L, rec->time_f);
        else
            lua_pushinteger(L, rec->time_i);
        lua_setfield(L, -2, "time");
    }
    if (rec->has_hostname)
        slc_set_span(L, rec, rec->hostname, "hostname");
    if (rec->has_app_name)
        slc_set_span(L, rec, rec->app_name, "app_name");
    if (rec->has_procid)
        slc_set_span(L, rec, rec->procid, "procid");
    if (rec->has_msgid)
        slc_set_span(L, rec, rec->msgid, "msgid");
    if (rec->has_sd)
        slc_set_sd(L, rec);
    if (rec->sd_lenient) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "sd_lenient");
    }
    slc_set_span(L, rec, rec->msg, "msg");
    if (rec->bom) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "bom");
    }
    if (rec->has_seq) {
        lua_pushinteger(L, rec->seq);
        lua_setfield(L, -2, "seq");
    }
    if (rec->has_cisco) {
        lua_createtable(L, 0, 3);                                 /* rec cisco */
        slc_set_span(L, rec, rec->cisco_facility, "facility");
        lua_pushinteger(L, rec->cisco_severity);
        lua_setfield(L, -2, "severity");
        slc_set_span(L, rec, rec->cisco_mnemonic, "mnemonic");
        lua_setfield(L, -2, "cisco");                             /* rec */
    }
    if (rec->error != SYSLOG_OK) {
        char text[96];
        size_t n = syslog_error_text(rec, text, sizeof text);
        lua_pushlstring(L, text, n);
        lua_setfield(L, -2, "parse_error");
    }
}

/* syslog.parse(data [, now [, opts]]) -> rec */
static int slc_parse(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_settop(L, 1);
        lua_createtable(L, 0, 8);
        lua_pushvalue(L, 1);
        lua_setfield(L, -2, "raw");
        lua_pushliteral(L, "unknown");
        lua_setfield(L, -2, "format");
        lua_pushinteger(L, 1);
        lua_setfield(L, -2, "facility");
        lua_pushinteger(L, 5);
        lua_setfield(L, -2, "severity");
        lua_pushliteral(L, "user");
        lua_setfield(L, -2, "facility_name");
        lua_pushliteral(L, "notice");
        lua_setfield(L, -2, "severity_name");
        lua_pushliteral(L, "");
        lua_setfield(L, -2, "msg");
        lua_pushliteral(L, "data is not a string");
        lua_setfield(L, -2, "parse_error");
        return 1;
    }
    size_t len;
    const char *data = lua_tolstring(L, 1, &len);
    int32_t tz = 0;
    bool has_tz = false;
    if (lua_type(L, 3) == LUA_TTABLE) {
        lua_getfield(L, 3, "tz_offset");
        has_tz = slc_tz(L, -1, &tz);
        lua_pop(L, 1);
    }
    struct syslog_rec rec;
    syslog_parse(&rec, (const uint8_t *)data, len, slc_now(L, 2), has_tz, tz);
    slc_push_record(L, &rec, 1);
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * syslog.json_writer and syslog.json_batch */

enum { SLC_RAW_ERRORS, SLC_RAW_ALWAYS, SLC_RAW_NEVER };
enum { SLC_LAST_NONE, SLC_LAST_PEND, SLC_LAST_OVERFLOW };

/* One writer (upvalue 1 of its functions), allocated once: options, then its buffer. A
 * batch's user value 1 holds the line that did not fit in pend (the overflow), if any. */
struct slc_writer {
    int raw;                  /* SLC_RAW_* */
    bool want_host;
    bool want_record;         /* json_line: the record table too (option record) */
    bool has_listener;
    uint8_t last;             /* batch: where the last add put its line (SLC_LAST_*) */
    size_t listener_len;
    const char *listener;     /* in this block, after buf */
    size_t pend_len;          /* batch: bytes of whole lines in buf */
    size_t pend_lines;
    size_t last_len;          /* batch: pend_len before the last add */
    size_t cap;               /* bytes in buf */
    char buf[];               /* json_line: the line; batch: the lines, each with "\n" */
};

/* The arguments of one call, parsed. */
struct slc_call {
    const char *data;
    size_t len;
    char peer[ADDR_STRLEN];   /* the texts of a message object's addresses */
    char dst[ADDR_STRLEN];
    struct syslog_rec rec;
    struct syslog_json_extra x;
    size_t bound;             /* syslog_json_bound: SIZE_MAX when too long to write */
};

/* Reads creds.pid/.uid/.gid (numbers) of the table at idx. */
static void slc_creds(lua_State *L, int idx, struct syslog_json_extra *x)
{
    static const char *const keys[3] = { "pid", "uid", "gid" };
    bool *has[3] = { &x->has_pid, &x->has_uid, &x->has_gid };
    double *val[3] = { &x->pid, &x->uid, &x->gid };
    x->has_creds = true;
    for (int i = 0; i < 3; i++) {
        if (lua_getfield(L, idx, keys[i]) == LUA_TNUMBER) {
            *has[i] = true;
            *val[i] = (double)lua_tonumber(L, -1);
        }
        lua_pop(L, 1);
    }
}

/* Takes data, peer, dst and creds from a message's datagram, as the Lua handler did from
 * msg.data, msg.peer, msg.dst and msg.creds. */
static void slc_from_dgram(const struct dgram *d, struct slc_call *c)
{
    struct syslog_json_extra *x = &c->x;
    int family = d->peer.ss_family;
    bool ip = d->peerlen > 0 && (family == AF_INET || family == AF_INET6);
    c->data = (const char *)d->data;
    c->len = d->len;
    if (d->peerlen > 0 && (ip || family == AF_UNIX)) {
        x->peer_len = addr_text((const struct sockaddr *)&d->peer, d->peerlen, c->peer);
        if (x->peer_len > 0)
            x->peer = c->peer;
    }
    if (ip) {
        int df = d->dst.ss_family;
        if ((d->has & DG_HAS_DST) && (df == AF_INET || df == AF_INET6)) {
            x->dst_len = addr_text((const struct sockaddr *)&d->dst, sizeof d->dst, c->dst);
            x->dst = c->dst;
        }
    } else if (d->has & DG_HAS_CREDS) {
        x->has_creds = x->has_pid = x->has_uid = x->has_gid = true;
        x->pid = (double)d->pid;
        x->uid = d->uid;
        x->gid = d->gid;
    }
}

/* Reads (data, now [, tz_offset [, peer [, dst [, creds]]]]) or (msg, now [, tz_offset]) and
 * parses the datagram. */
static void slc_prepare(lua_State *L, const struct slc_writer *w, struct slc_call *c)
{
    const struct dgram *d = NULL;
    if (msg_is(L, 1))
        d = msg_dgram(L, 1);
    else
        c->data = luaL_checklstring(L, 1, &c->len);
    lua_Number received = luaL_checknumber(L, 2);
    int32_t tz = 0;
    bool has_tz = slc_tz(L, 3, &tz);
    struct syslog_json_extra *x = &c->x;
    memset(x, 0, sizeof *x);
    x->received = (double)received;
    if (w->has_listener) {
        x->listener = w->listener;
        x->listener_len = w->listener_len;
    }
    if (d) {
        slc_from_dgram(d, c);
    } else {
        x->peer = luaL_optlstring(L, 4, NULL, &x->peer_len);
        x->dst = luaL_optlstring(L, 5, NULL, &x->dst_len);
        if (!lua_isnoneornil(L, 6)) {
            luaL_checktype(L, 6, LUA_TTABLE);
            slc_creds(L, 6, x);
        }
    }
    syslog_parse(&c->rec, (const uint8_t *)c->data, c->len, slc_now(L, 2), has_tz, tz);
    bool failed = c->rec.error != SYSLOG_OK;
    x->raw_b64 = w->raw == SLC_RAW_ALWAYS || (failed && w->raw == SLC_RAW_ERRORS);
    c->bound = syslog_json_bound(&c->rec, x);
}

/* Pushes the line of c through a luaL_Buffer of its bound (lines too long for a buffer). */
static void slc_push_long_line(lua_State *L, struct slc_call *c)
{
    if (c->bound == SIZE_MAX)
        luaL_error(L, "syslog line: a datagram of %zu bytes is too long", c->len);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, c->bound);
    size_t n = syslog_json_line(&c->rec, &c->x, out, c->bound);
    if (n == 0)
        luaL_error(L, "syslog line: longer than its bound");
    luaL_pushresultsize(&b, n);
}

/* Pushes code, failed [, hostname]; returns how many. */
static int slc_push_fields(lua_State *L, const struct slc_writer *w, const struct slc_call *c)
{
    const struct syslog_rec *rec = &c->rec;
    lua_pushinteger(L, rec->facility * 8 + rec->severity);
    lua_pushboolean(L, rec->error != SYSLOG_OK);
    if (!w->want_host)
        return 2;
    if (rec->has_hostname)
        lua_pushlstring(L, c->data + rec->hostname.off, rec->hostname.len);
    else
        lua_pushnil(L);
    return 3;
}

/* json_line(data, now [, tz_offset [, peer [, dst [, creds]]]]) -> line, code, failed
 * [, hostname] */
static int slc_json_line(lua_State *L)
{
    struct slc_writer *w = lua_touserdata(L, lua_upvalueindex(1));
    struct slc_call c;
    slc_prepare(L, w, &c);
    if (c.bound <= w->cap) {
        size_t n = syslog_json_line(&c.rec, &c.x, w->buf, w->cap);
        if (n == 0)
            return luaL_error(L, "syslog line: longer than its bound");
        lua_pushlstring(L, w->buf, n);
    } else {
        slc_push_long_line(L, &c);
    }
    int nres = 1 + slc_push_fields(L, w, &c);
    if (w->want_record) {
        lua_pushlstring(L, c.data, c.len);                    /* ... data */
        slc_push_record(L, &c.rec, lua_gettop(L));            /* ... data rec */
        lua_remove(L, -2);
        nres++;
    }
    return nres;
}

/* add(data, now [, tz_offset [, peer [, dst [, creds]]]]) -> code, failed, full [, hostname]
 * Appends the line to the batch; full once the batch holds SLC_BATCH_FULL bytes or more. */
static int slc_batch_add(lua_State *L)
{
    struct slc_writer *w = lua_touserdata(L, lua_upvalueindex(1));
    struct slc_call c;
    if (w->last == SLC_LAST_OVERFLOW)
        return luaL_error(L, "json_batch: take() the full batch before the next add()");
    slc_prepare(L, w, &c);
    size_t room = w->cap - w->pend_len;
    size_t n = 0;
    if (c.bound < room) {
        n = syslog_json_line(&c.rec, &c.x, w->buf + w->pend_len, room - 1);
        if (n == 0)
            return luaL_error(L, "syslog line: longer than its bound");
    } else {
        slc_push_long_line(L, &c);                                /* ... line */
        const char *line = lua_tolstring(L, -1, &n);
        if (n < room) {
            memcpy(w->buf + w->pend_len, line, n);
            lua_pop(L, 1);
        } else { /* kept beside the batch until take() */
            lua_pushliteral(L, "\n");
            lua_concat(L, 2);
            lua_setiuservalue(L, lua_upvalueindex(1), 1);
            w->last = SLC_LAST_OVERFLOW;
            n = 0;
        }
    }
    w->last_len = w->pend_len;
    w->pend_lines++;
    if (w->last != SLC_LAST_OVERFLOW) {
        w->buf[w->pend_len + n] = '\n';
        w->pend_len += n + 1;
        w->last = SLC_LAST_PEND;
    }
    int nres = slc_push_fields(L, w, &c);
    lua_pushboolean(L, w->last == SLC_LAST_OVERFLOW || w->pend_len >= SLC_BATCH_FULL);
    if (nres == 3)
        lua_rotate(L, -2, 1); /* code failed full hostname */
    return nres + 1;
}

/* drop_last(): takes back the line of the last add (a message the caller filters out). */
static int slc_batch_drop_last(lua_State *L)
{
    struct slc_writer *w = lua_touserdata(L, lua_upvalueindex(1));
    if (w->last == SLC_LAST_OVERFLOW) {
        lua_pushnil(L);
        lua_setiuservalue(L, lua_upvalueindex(1), 1);
    }
    if (w->last != SLC_LAST_NONE) {
        w->pend_len = w->last_len;
        w->pend_lines--;
    }
    w->last = SLC_LAST_NONE;
    return 0;
}

/* take() -> lines, count: the lines added since the last take (each ends in "\n"), and how
 * many; the batch is empty after. */
static int slc_batch_take(lua_State *L)
{
    struct slc_writer *w = lua_touserdata(L, lua_upvalueindex(1));
    if (w->last == SLC_LAST_OVERFLOW) {
        lua_pushlstring(L, w->buf, w->pend_len);
        lua_getiuservalue(L, lua_upvalueindex(1), 1);
        lua_concat(L, 2);
        lua_pushnil(L);
        lua_setiuservalue(L, lua_upvalueindex(1), 1);
    } else {
        lua_pushlstring(L, w->buf, w->pend_len);
    }
    lua_pushinteger(L, (lua_Integer)w->pend_lines);
    w->pend_len = w->pend_lines = w->last_len = 0;
    w->last = SLC_LAST_NONE;
    return 2;
}

/* Makes a writer from the options table at 1 with a buffer of cap bytes; pushes it. */
static struct slc_writer *slc_new_writer(lua_State *L, const char *fn, size_t cap)
{
    static const char *const raw_modes[] = { "errors", "always", "never", NULL };
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "raw");
    int raw = luaL_checkoption(L, -1, "errors", raw_modes);
    lua_getfield(L, 1, "hostname");
    bool want_host = lua_toboolean(L, -1);
    lua_getfield(L, 1, "record");
    bool want_record = lua_toboolean(L, -1);
    size_t listener_len = 0;
    const char *listener = NULL;
    if (lua_getfield(L, 1, "listener") != LUA_TNIL) {
        listener = lua_tolstring(L, -1, &listener_len);
        if (!listener)
            luaL_error(L, "%s: listener must be a string", fn);
    }
    struct slc_writer *w = lua_newuserdatauv(L, sizeof *w + cap + listener_len + 1, 1);
    w->raw = raw;
    w->want_host = want_host;
    w->want_record = want_record;
    w->has_listener = listener != NULL;
    w->last = SLC_LAST_NONE;
    w->pend_len = w->pend_lines = w->last_len = 0;
    w->cap = cap;
    char *name = w->buf + cap;
    if (listener)
        memcpy(name, listener, listener_len);
    name[listener_len] = '\0';
    w->listener = name;
    w->listener_len = listener_len;
    return w;
}

/* syslog.json_writer{ listener =, raw =, hostname = } -> json_line */
static int slc_json_writer(lua_State *L)
{
    slc_new_writer(L, "json_writer", SLC_LINE_BUF);
    lua_pushcclosure(L, slc_json_line, 1);
    return 1;
}

/* syslog.json_batch{ listener =, raw =, hostname = } -> add, drop_last, take */
static int slc_json_batch(lua_State *L)
{
    slc_new_writer(L, "json_batch", SLC_BATCH_CAP);               /* w */
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, slc_batch_add, 1);                        /* w add */
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, slc_batch_drop_last, 1);                  /* w add drop */
    lua_rotate(L, -3, -1);                                        /* add drop w */
    lua_pushcclosure(L, slc_batch_take, 1);                       /* add drop take */
    return 3;
}

int luaopen_luadgram_syslog(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"parse", slc_parse},
        {"json_writer", slc_json_writer},
        {"json_batch", slc_json_batch},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    return 1;
}
