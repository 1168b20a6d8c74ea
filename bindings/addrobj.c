/* bindings/addrobj.c: address objects (msg.peer, msg.dst, err.peer): plain tables with a
 * shared metatable whose __tostring prints them the way users write them. */
#include "lbind.h"

#include <string.h>
#include <lauxlib.h>

#include "addr.h"

static const char addrobj_meta_key = 'a';

static int addrobj_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "family");
    const char *family = lua_tostring(L, -1);
    if (family && strcmp(family, "unix") == 0) {
        lua_getfield(L, 1, "path");
        return 1;
    }
    lua_getfield(L, 1, "ip");
    lua_getfield(L, 1, "port");
    const char *ip = luaL_optstring(L, -2, "?");
    lua_Integer port = lua_tointeger(L, -1);
    if (family && strcmp(family, "inet6") == 0)
        lua_pushfstring(L, "[%s]:%d", ip, (int)port);
    else
        lua_pushfstring(L, "%s:%d", ip, (int)port);
    return 1;
}

static int addrobj_eq(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    luaL_tolstring(L, 2, NULL);
    lua_pushboolean(L, lua_rawequal(L, -1, -2));
    return 1;
}

static void addrobj_meta(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &addrobj_meta_key) != LUA_TNIL)
        return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, addrobj_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, addrobj_eq);
    lua_setfield(L, -2, "__eq");
    lua_pushliteral(L, "luadgram.addr");
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &addrobj_meta_key);
}

void addrobj_push(lua_State *L, const struct sockaddr *sa, socklen_t len)
{
    char buf[ADDR_STRLEN];
    if (len == 0) {
        lua_pushnil(L);
        return;
    }
    luaL_checkstack(L, 4, "address object");
    lua_createtable(L, 0, 3);
    switch (sa->sa_family) {
    case AF_INET:
    case AF_INET6:
        lua_pushstring(L, sa->sa_family == AF_INET ? "inet" : "inet6");
        lua_setfield(L, -2, "family");
        lua_pushstring(L, addr_ip(sa, buf, sizeof buf));
        lua_setfield(L, -2, "ip");
        lua_pushinteger(L, addr_port(sa));
        lua_setfield(L, -2, "port");
        break;
    case AF_UNIX:
        lua_pushliteral(L, "unix");
        lua_setfield(L, -2, "family");
        addr_format(sa, len, 0, buf, sizeof buf);
        if (buf[0] == '\0') {
            lua_pop(L, 1);
            lua_pushnil(L);
            return;
        }
        lua_pushstring(L, buf);
        lua_setfield(L, -2, "path");
        break;
    default:
        lua_pushliteral(L, "unknown");
        lua_setfield(L, -2, "family");
    }
    addrobj_meta(L);
    lua_setmetatable(L, -2);
}
