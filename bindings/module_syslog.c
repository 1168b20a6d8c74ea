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
 *   json_line = syslog.json_writer{ listener =, raw =, hostname = }
 *     listener  the listener's name ("listener" in every line; nil: left out)
 *     raw       when a line carries raw_b64 (the datagram, base64): "errors" (default: with
 *               a parse error), "always", "never"
 *     hostname  true: json_line also returns the record's HOSTNAME (for host filters)
 *     Returns a function owning one buffer for its lines (64 KiB; longer lines go through a
 *     luaL_Buffer). Raises on a bad option.
 *
 *   line, code, failed [, hostname] = json_line(data, now [, tz_offset [, peer [, dst
 *                                               [, creds]]]])
 *     Parses data as parse(data, now, { tz_offset = tz_offset }) does and returns its JSON
 *     object, the line scripts/syslog.lua writes (see there; no newline): "received" is now,
 *     "peer" and "dst" the strings given, "creds" the integers creds.pid, .uid, .gid.
 *     code is facility * 8 + severity (13 without a valid PRI), failed whether the record
 *     has a parse_error, hostname its HOSTNAME or nil. Strings are made valid UTF-8.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "lbind.h"
#include "syslog_json.h"
#include "syslog_parse.h"

#define SLC_WRITER_META "luadgram.syslog.writer"
#define SLC_LINE_BUF 65536

/* The reception time as the Lua parser takes it: `now` when it is a number within 1e12 s of
 * the epoch, else the current time; whole seconds (floor). */
static int64_t slc_now(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        if (lua_isinteger(L, idx)) {
            lua_Integer i = lua_tointeger(L, idx);
            if (i <= 1000000000000 && i >= -1000000000000)
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
 * syslog.json_writer */

enum { SLC_RAW_ERRORS, SLC_RAW_ALWAYS, SLC_RAW_NEVER };

struct slc_writer {
    int raw;                  /* SLC_RAW_* */
    bool want_host;
    bool has_listener;
    size_t listener_len;
    char *listener;           /* inside this block, after line */
    char line[SLC_LINE_BUF];
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

/* json_line(data, now [, tz_offset [, peer [, dst [, creds]]]]) -> line, code, failed
 * [, hostname] */
static int slc_json_line(lua_State *L)
{
    struct slc_writer *w = lua_touserdata(L, lua_upvalueindex(1));
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    lua_Number received = luaL_checknumber(L, 2);
    int32_t tz = 0;
    bool has_tz = slc_tz(L, 3, &tz);
    struct syslog_json_extra x;
    memset(&x, 0, sizeof x);
    x.received = (double)received;
    if (w->has_listener) {
        x.listener = w->listener;
        x.listener_len = w->listener_len;
    }
    x.peer = luaL_optlstring(L, 4, NULL, &x.peer_len);
    x.dst = luaL_optlstring(L, 5, NULL, &x.dst_len);
    if (!lua_isnoneornil(L, 6)) {
        luaL_checktype(L, 6, LUA_TTABLE);
        slc_creds(L, 6, &x);
    }
    struct syslog_rec rec;
    syslog_parse(&rec, (const uint8_t *)data, len, slc_now(L, 2), has_tz, tz);
    bool failed = rec.error != SYSLOG_OK;
    x.raw_b64 = w->raw == SLC_RAW_ALWAYS || (failed && w->raw == SLC_RAW_ERRORS);

    size_t bound = syslog_json_bound(&rec, &x);
    size_t n;
    if (bound <= sizeof w->line) {
        n = syslog_json_line(&rec, &x, w->line, sizeof w->line);
        if (n == 0)
            return luaL_error(L, "json_line: line longer than its bound");
        lua_pushlstring(L, w->line, n);
    } else {
        if (bound == SIZE_MAX)
            return luaL_error(L, "json_line: datagram too long");
        luaL_Buffer b;
        char *out = luaL_buffinitsize(L, &b, bound);
        n = syslog_json_line(&rec, &x, out, bound);
        if (n == 0)
            return luaL_error(L, "json_line: line longer than its bound");
        luaL_pushresultsize(&b, n);
    }
    lua_pushinteger(L, rec.facility * 8 + rec.severity);
    lua_pushboolean(L, failed);
    if (!w->want_host)
        return 3;
    if (rec.has_hostname)
        lua_pushlstring(L, data + rec.hostname.off, rec.hostname.len);
    else
        lua_pushnil(L);
    return 4;
}

/* syslog.json_writer{ listener =, raw =, hostname = } -> json_line */
static int slc_json_writer(lua_State *L)
{
    static const char *const raw_modes[] = { "errors", "always", "never", NULL };
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "raw");
    int raw = luaL_checkoption(L, -1, "errors", raw_modes);
    lua_getfield(L, 1, "hostname");
    bool want_host = lua_toboolean(L, -1);
    lua_getfield(L, 1, "listener");
    size_t listener_len = 0;
    const char *listener = NULL;
    if (!lua_isnil(L, -1)) {
        listener = lua_tolstring(L, -1, &listener_len);
        if (!listener)
            return luaL_error(L, "json_writer: listener must be a string");
    }
    struct slc_writer *w = lua_newuserdatauv(L, sizeof *w + listener_len + 1, 0);
    w->raw = raw;
    w->want_host = want_host;
    w->has_listener = listener != NULL;
    w->listener_len = listener_len;
    w->listener = (char *)(w + 1);
    if (listener)
        memcpy(w->listener, listener, listener_len);
    w->listener[listener_len] = '\0';
    luaL_setmetatable(L, SLC_WRITER_META);
    lua_pushcclosure(L, slc_json_line, 1);
    return 1;
}

int luaopen_luadgram_syslog(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"parse", slc_parse},
        {"json_writer", slc_json_writer},
        {NULL, NULL},
    };
    luaL_newmetatable(L, SLC_WRITER_META);
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
