/* spec/c/test_lalloc_cap.c: the cap of the pooled lua_Alloc (lalloc_set_limit, the
 * handler_memory of daemon/lalloc.c), at the allocator and in a real lua_State: growth past
 * the cap is refused and reported once per refusal, shrinking and freeing never are, the
 * count of bytes held follows Lua's own (collectgarbage "count") and goes back down when
 * the state frees, and a state that ran out continues normally once it has freed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lalloc.h"
#include "check.h"

static void count_refusal(void *arg)
{
    (*(int *)arg)++;
}

static void test_allocator(void)
{
    int refusals = 0;
    struct lalloc *a = lalloc_new();
    void *small = NULL, *big = NULL;
    REQUIRE(a);
    lalloc_set_limit(a, 4096, count_refusal, &refusals);
    small = lalloc_fn(a, NULL, LUA_TSTRING, 100);
    REQUIRE(small);
    CHECK(lalloc_used(a) == 100);
    big = lalloc_fn(a, NULL, LUA_TSTRING, 8192); /* past the cap */
    CHECK(big == NULL);
    CHECK(refusals == 1 && lalloc_refused(a) == 1);
    big = lalloc_fn(a, NULL, LUA_TSTRING, 3996); /* exactly up to it */
    REQUIRE(big);
    CHECK(lalloc_used(a) == 4096);
    CHECK(lalloc_fn(a, small, 100, 101) == NULL); /* growing by one byte: refused */
    CHECK(refusals == 2);
    void *shrunk = lalloc_fn(a, big, 3996, 10); /* shrinking at the cap: never refused */
    REQUIRE(shrunk);
    big = shrunk;
    CHECK(lalloc_used(a) == 110);
    CHECK(lalloc_fn(a, big, 10, 0) == NULL);
    big = NULL;
    CHECK(lalloc_fn(a, small, 100, 0) == NULL);
    small = NULL;
    CHECK(lalloc_used(a) == 0);
    lalloc_set_limit(a, 0, NULL, NULL); /* 0: no cap */
    big = lalloc_fn(a, NULL, LUA_TSTRING, 1 << 20);
    CHECK(big != NULL);
cleanup:
    if (a) {
        if (big)
            lalloc_fn(a, big, 1 << 20, 0);
        if (small)
            lalloc_fn(a, small, 100, 0);
    }
    lalloc_free(a);
}

static void test_state(void)
{
    int refusals = 0;
    struct lalloc *a = lalloc_new();
    lua_State *L = a ? lua_newstate(lalloc_fn, a) : NULL;
    REQUIRE(L);
    luaL_openlibs(L);
    lua_gc(L, LUA_GCCOLLECT, 0);
    size_t base = lalloc_used(a);
    CHECK(base == (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0));
    lalloc_set_limit(a, base + (8u << 20), count_refusal, &refusals);
    /* 1 MiB strings kept in a table until the cap refuses one */
    int st = luaL_loadstring(L, "big = {} for i = 1, 64 do big[i] = string.rep('x', 1 << 20) end");
    REQUIRE(st == LUA_OK);
    st = lua_pcall(L, 0, 0, 0);
    CHECK(st == LUA_ERRMEM);
    CHECK(refusals > 0);
    CHECK(strcmp(lua_tostring(L, -1), "not enough memory") == 0);
    lua_pop(L, 1);
    CHECK(lalloc_used(a) <= base + (8u << 20));
    /* what it kept, freed: the state works again and holds what it held before */
    CHECK(luaL_dostring(L, "big = nil collectgarbage() return #string.rep('y', 1 << 20)") ==
          LUA_OK);
    CHECK(lua_tointeger(L, -1) == 1 << 20);
    lua_pop(L, 1);
    lua_gc(L, LUA_GCCOLLECT, 0);
    CHECK(lalloc_used(a) < base + (64u << 10));
cleanup:
    if (L)
        lua_close(L);
    if (a)
        CHECK(lalloc_used(a) == 0);
    lalloc_free(a);
}

int main(void)
{
    test_allocator();
    test_state();
    return check_report();
}
