/* bindings/module_mib.c: the `luadgram.mib` Lua module: loads MIB modules (libsmi, at init
 * only: daemon/codec/mib.c) into a name table owned by a userdata (freed by its __gc), and
 * looks names up for Lua. The snmptrap handler hands the object to luadgram.ber.
 *
 *   local mib = require "luadgram.mib"
 *   mib.load { dirs = { "/usr/share/snmp/mibs", ... }, modules = { "IF-MIB", ... } }
 *     -> table | nil, err      err: 'module "X": <libsmi's first error>'
 *   table:name("1.3.6.1.2.1.2.2.1.1.2") -> "IF-MIB::ifIndex.2" | nil
 *   table:value_name("1.3.6...", 1) -> "up" | nil   (an enumerated INTEGER object's label)
 *   #table -> the number of named nodes
 *   mib.unavailable -> nil, or why this build has no MIB names (mib_unavailable: the
 *     Windows build); then load always fails with that reason
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "lbind.h"
#include "lmib.h"

#define MIB_META "luadgram.mib"

struct lmib {
    struct mib_table *t;
};

const struct mib_table *lmib_opt(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    struct lmib *m = luaL_checkudata(L, idx, MIB_META);
    if (!m->t)
        luaL_argerror(L, idx, "MIB table freed");
    return m->t;
}

/* The strings of list t[field] (at most `max`), checked; returns their number. */
static size_t string_list(lua_State *L, int t, const char *field, const char **out, size_t max)
{
    lua_getfield(L, t, field);
    if (lua_type(L, -1) != LUA_TTABLE)
        luaL_error(L, "%s must be a list of strings", field);
    size_t n = (size_t)lua_rawlen(L, -1);
    if (n > max)
        luaL_error(L, "%s: more than %d entries", field, (int)max);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s[%d] must be a string", field, (int)i);
        out[i - 1] = lua_tostring(L, -1);
        if (strchr(out[i - 1], ':') && field[0] == 'd')
            luaL_error(L, "%s[%d] must not contain ':'", field, (int)i);
        lua_pop(L, 1);          /* the list keeps the string */
    }
    lua_pop(L, 1);              /* the table t keeps the list */
    return n;
}

#define LIST_MAX 256

/* mib.load { dirs = {...}, modules = {...} } -> table | nil, err */
static int mib_load(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *dirs[LIST_MAX], *modules[LIST_MAX];
    size_t ndirs = string_list(L, 1, "dirs", dirs, LIST_MAX);
    size_t nmodules = string_list(L, 1, "modules", modules, LIST_MAX);
    struct lmib *m = lua_newuserdatauv(L, sizeof *m, 0);
    m->t = NULL;
    luaL_setmetatable(L, MIB_META);
    char err[MIB_ERR_MAX];
    m->t = mib_table_load(dirs, ndirs, modules, nmodules, err);
    if (!m->t) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

/* The lookup of the dotted OID at idx. */
static struct mib_match lookup(lua_State *L, const struct mib_table *t, int idx,
                               uint32_t *arcs, size_t *n)
{
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    *n = mib_dotted_arcs(s, len, arcs);
    if (*n == 0)
        luaL_argerror(L, idx, "not a dotted OID");
    return mib_lookup(t, arcs, *n);
}

static int mib_name(lua_State *L)
{
    const struct mib_table *t = lmib_opt(L, 1);
    luaL_argcheck(L, t != NULL, 1, "MIB table expected");
    uint32_t arcs[MIB_MAX_ARCS];
    size_t n;
    struct mib_match mm = lookup(L, t, 2, arcs, &n);
    char out[MIB_NAME_MAX];
    size_t k = mib_name_write(t, &mm, arcs, n, out);
    if (k == 0)
        lua_pushnil(L);
    else
        lua_pushlstring(L, out, k);
    return 1;
}

static int mib_value_name(lua_State *L)
{
    const struct mib_table *t = lmib_opt(L, 1);
    luaL_argcheck(L, t != NULL, 1, "MIB table expected");
    uint32_t arcs[MIB_MAX_ARCS];
    size_t n, k;
    struct mib_match mm = lookup(L, t, 2, arcs, &n);
    const char *label = mib_enum_label(t, &mm, luaL_checkinteger(L, 3), &k);
    if (label)
        lua_pushlstring(L, label, k);
    else
        lua_pushnil(L);
    return 1;
}

static int mib_len(lua_State *L)
{
    const struct mib_table *t = lmib_opt(L, 1);
    lua_pushinteger(L, t ? (lua_Integer)mib_table_size(t) : 0);
    return 1;
}

static int mib_gc(lua_State *L)
{
    struct lmib *m = luaL_checkudata(L, 1, MIB_META);
    mib_table_free(m->t);
    m->t = NULL;
    return 0;
}

int luaopen_luadgram_mib(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"name", mib_name}, {"value_name", mib_value_name}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", mib_gc}, {"__len", mib_len}, {NULL, NULL}};
    if (luaL_newmetatable(L, MIB_META)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    static const luaL_Reg funcs[] = {{"load", mib_load}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    const char *why = mib_unavailable();
    if (why) {
        lua_pushstring(L, why);
        lua_setfield(L, -2, "unavailable");
    }
    return 1;
}
