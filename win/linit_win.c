/* win/linit_win.c: Lua's luaL_openlibs for the Windows binary, in place of Lua's linit.c:
 * the same standard libraries, and lua-cjson (a C module the shipped scripts require; on
 * Linux Debian's lua-cjson package provides it) compiled in and registered in
 * package.preload, since a static luadgramd.exe loads no Lua DLLs. Owns nothing. */
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

int luaopen_cjson(lua_State *L);

static const luaL_Reg linit_win_libs[] = {
    {LUA_GNAME, luaopen_base},          {LUA_LOADLIBNAME, luaopen_package},
    {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
    {LUA_IOLIBNAME, luaopen_io},        {LUA_OSLIBNAME, luaopen_os},
    {LUA_STRLIBNAME, luaopen_string},   {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8},    {LUA_DBLIBNAME, luaopen_debug},
    {NULL, NULL},
};

LUALIB_API void luaL_openlibs(lua_State *L)
{
    for (const luaL_Reg *lib = linit_win_libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pop(L, 1);
}
