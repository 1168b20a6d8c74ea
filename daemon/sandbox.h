/* daemon/sandbox.h: what a handler's Lua state may call. An allow-list in the style of
 * Redis's script_lua.c: every library function a handler keeps is listed with the reason it
 * is there; every other one is replaced by a function that raises
 * "os.execute is not allowed in handlers (unsafe = true on the listener allows it)". */
#ifndef LUADGRAM_SANDBOX_H
#define LUADGRAM_SANDBOX_H

#include <lua.h>

/* Applies the sandbox to L, after luaL_openlibs and after package.path is set. With unsafe
 * (the listener's unsafe = true) every function stays, but os.exit asks for the daemon's
 * clean stop instead of ending the process (sandbox_os_exit). */
void sandbox_apply(lua_State *L, int unsafe);

#endif
