/* bindings/publish_none.c: luadgram.nats and luadgram.redis in a build without the outputs
 * (LUADGRAM_OUTPUTS off, cmake/features.cmake: the Windows build, which cross-builds neither
 * libnats nor hiredis). Both raise, so a handler or a collector sink that asks for one fails
 * at init, naming its listen, instead of losing records. */
#include "lbind.h"

#include <lauxlib.h>

static int pub_none_nats(lua_State *L)
{
    return luaL_error(L, "luadgram.nats: NATS JetStream outputs need a build with libnats "
                         "(not the Windows build)");
}

static int pub_none_redis(lua_State *L)
{
    return luaL_error(L, "luadgram.redis: Redis Streams outputs need a build with hiredis "
                         "(not the Windows build)");
}

void publish_register(lua_State *L)
{
    lua_pushcfunction(L, pub_none_nats);
    lua_setfield(L, -2, "nats");
    lua_pushcfunction(L, pub_none_redis);
    lua_setfield(L, -2, "redis");
}
