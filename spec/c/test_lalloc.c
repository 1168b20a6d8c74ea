/* spec/c/test_lalloc.c: the pooled lua_Alloc (daemon/lalloc.c): the lua_Alloc contract
 * case by case, contents kept across every resize (byte by byte through each class
 * boundary and to and from big blocks), blocks never shared (patterns checked after many
 * interleaved allocations and frees, within the pool, past its end and on the heap), and a
 * real lua_State on the pool running a script that makes and drops many strings and
 * tables. In the ASan build (where lalloc_fn is plain realloc/free) LeakSanitizer checks
 * that nothing leaks; in the others, malloc's in-use count shows small blocks come from
 * the pool. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lalloc.h"
#include "check.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* The byte at offset i of a block filled for owner `tag`. */
static uint8_t pattern(uint32_t tag, size_t i)
{
    return (uint8_t)(tag * 131u + i * 7u + (i >> 8));
}

static void fill(void *p, size_t n, uint32_t tag)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = pattern(tag, i);
}

/* Whether the first n bytes of p are tag's pattern. */
static int intact(const void *p, size_t n, uint32_t tag)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern(tag, i))
            return 0;
    return 1;
}

static int aligned(const void *p)
{
    return (uintptr_t)p % _Alignof(max_align_t) == 0;
}

/* Deterministic pseudo-random numbers (xorshift32) for the interleaving tests. */
static uint32_t next_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Resizes p (osize bytes of tag's pattern) to nsize and checks the kept bytes, then fills
 * the whole block again. NULL (and a failed CHECK) if the resize failed. */
static void *resize_checked(struct lalloc *a, void *p, size_t osize, size_t nsize,
                            uint32_t tag)
{
    void *q = lalloc_fn(a, p, osize, nsize);
    CHECK(q != NULL);
    if (!q)
        return NULL;
    CHECK(aligned(q));
    CHECK(intact(q, osize < nsize ? osize : nsize, tag));
    fill(q, nsize, tag);
    return q;
}

/* The cases of the contract, one by one. */
static void test_contract(void)
{
    struct lalloc *a = lalloc_new();
    void *p = NULL;
    REQUIRE(a != NULL);

    /* ptr NULL: osize is a type tag, whatever its value; nsize 0 then does nothing. */
    CHECK(lalloc_fn(a, NULL, LUA_TTABLE, 0) == NULL);
    CHECK(lalloc_fn(a, NULL, 0, 0) == NULL);
    p = lalloc_fn(a, NULL, LUA_TSTRING, 24);
    REQUIRE(p != NULL);
    CHECK(aligned(p));
    fill(p, 24, 1);
    p = resize_checked(a, p, 24, 30, 1);      /* grow within the class */
    REQUIRE(p != NULL);
    p = resize_checked(a, p, 30, 100, 1);     /* grow across classes */
    REQUIRE(p != NULL);
    p = resize_checked(a, p, 100, LALLOC_SMALL_MAX, 1);
    REQUIRE(p != NULL);
    p = resize_checked(a, p, LALLOC_SMALL_MAX, 5000, 1); /* to a big block */
    REQUIRE(p != NULL);
    p = resize_checked(a, p, 5000, 300000, 1);           /* big to bigger */
    REQUIRE(p != NULL);
    p = resize_checked(a, p, 300000, 40, 1);  /* big to small keeps the contents */
    REQUIRE(p != NULL);
    p = resize_checked(a, p, 40, 8, 1);       /* shrink across classes */
    REQUIRE(p != NULL);
    p = resize_checked(a, p, 8, 1, 1);
    REQUIRE(p != NULL);
    CHECK(lalloc_fn(a, p, 1, 0) == NULL);     /* nsize 0 frees, returns NULL */
    p = NULL;

    /* A big block freed directly, and a block allocated with a tag bigger than itself. */
    p = lalloc_fn(a, NULL, LUA_TUSERDATA, 100000);
    REQUIRE(p != NULL);
    fill(p, 100000, 2);
    CHECK(intact(p, 100000, 2));
    CHECK(lalloc_fn(a, p, 100000, 0) == NULL);
    p = lalloc_fn(a, NULL, 1000, 3); /* not a size: never read as one */
    REQUIRE(p != NULL);
    fill(p, 3, 3);
    CHECK(lalloc_fn(a, p, 3, 0) == NULL);
    p = NULL;

#ifndef TEST_ASAN /* ASan aborts on an impossible allocation instead of failing it */
    /* A failed growth returns NULL and leaves the old block as it was. */
    p = lalloc_fn(a, NULL, LUA_TSTRING, 64);
    REQUIRE(p != NULL);
    fill(p, 64, 4);
    CHECK(lalloc_fn(a, p, 64, SIZE_MAX / 2) == NULL);
    CHECK(intact(p, 64, 4));
    CHECK(lalloc_fn(a, p, 64, 0) == NULL);
    p = NULL;
#endif

cleanup:
    lalloc_free(a);
}

/* One block grown a byte at a time through every class and past the small limit, then
 * shrunk back to one byte: every resize keeps min(osize, nsize) bytes. */
static void test_byte_by_byte(void)
{
    struct lalloc *a = lalloc_new();
    void *p = NULL;
    size_t size = 1, top = LALLOC_SMALL_MAX + 3 * LALLOC_CLASS_STEP;
    REQUIRE(a != NULL);
    p = lalloc_fn(a, NULL, LUA_TSTRING, 1);
    REQUIRE(p != NULL);
    fill(p, 1, 5);
    for (; size < top; size++) {
        p = resize_checked(a, p, size, size + 1, 5);
        REQUIRE(p != NULL);
    }
    for (; size > 1; size--) {
        p = resize_checked(a, p, size, size - 1, 5);
        REQUIRE(p != NULL);
    }
    CHECK(intact(p, 1, 5));
cleanup:
    if (p)
        lalloc_fn(a, p, size, 0);
    lalloc_free(a);
}

/* Many live blocks of mixed sizes (small and big), allocated, resized and freed in a
 * pseudo-random order: each keeps its own pattern, so no block is ever handed out twice. */
enum { SLOTS = 512, STEPS = 200000 };

static void test_not_shared(void)
{
    struct lalloc *a = lalloc_new();
    static void *ptr[SLOTS];
    static size_t len[SLOTS];
    static uint32_t tag[SLOTS];
    uint32_t seed = 0x9e3779b9u, next_tag = 100;
    int bad = 0;
    memset(ptr, 0, sizeof ptr);
    REQUIRE(a != NULL);
    for (int step = 0; step < STEPS && !bad; step++) {
        uint32_t r = next_rand(&seed);
        size_t s = r % SLOTS;
        /* mostly small sizes, some big */
        size_t n = (r >> 9) % 8 == 0 ? 1 + (r >> 12) % 3000 : 1 + (r >> 12) % LALLOC_SMALL_MAX;
        if (!ptr[s]) {
            ptr[s] = lalloc_fn(a, NULL, LUA_TSTRING, n);
            if (!ptr[s]) {
                bad = 1;
                break;
            }
            len[s] = n;
            tag[s] = next_tag++;
            fill(ptr[s], n, tag[s]);
            continue;
        }
        if (!intact(ptr[s], len[s], tag[s])) {
            bad = 2;
            break;
        }
        if ((r >> 30) == 0) {
            lalloc_fn(a, ptr[s], len[s], 0);
            ptr[s] = NULL;
        } else {
            void *q = lalloc_fn(a, ptr[s], len[s], n);
            if (!q) {
                bad = 3;
                break;
            }
            ptr[s] = q;
            if (!intact(q, len[s] < n ? len[s] : n, tag[s])) {
                len[s] = len[s] < n ? len[s] : n;
                bad = 4;
                break;
            }
            len[s] = n;
            tag[s] = next_tag++;
            fill(q, n, tag[s]);
        }
    }
    CHECK(bad == 0);
    for (size_t s = 0; s < SLOTS; s++)
        if (ptr[s] && !intact(ptr[s], len[s], tag[s]))
            bad = 5;
    CHECK(bad == 0);
cleanup:
    for (size_t s = 0; s < SLOTS; s++)
        if (ptr[s])
            lalloc_fn(a, ptr[s], len[s], 0);
    lalloc_free(a);
}

/* More small blocks than the pool holds: those past its end come from the heap, and the
 * two kinds are told apart on free and resize (heap blocks resized into the pool once it
 * has room again). */
static void test_past_the_pool(void)
{
    struct lalloc *a = lalloc_new();
    enum { SIZE = 64 };
    size_t count = LALLOC_POOL_BYTES / SIZE + 2000;
    void **ptr = calloc(count, sizeof *ptr);
    size_t *len = calloc(count, sizeof *len);
    int bad = 0;
    REQUIRE(a != NULL && ptr != NULL && len != NULL);
    for (size_t i = 0; i < count; i++) {
        ptr[i] = lalloc_fn(a, NULL, LUA_TTABLE, SIZE);
        REQUIRE(ptr[i] != NULL);
        len[i] = SIZE;
        fill(ptr[i], SIZE, (uint32_t)i);
    }
    for (size_t i = 0; i < count; i++)
        if (!intact(ptr[i], len[i], (uint32_t)i))
            bad = 1;
    CHECK(bad == 0);
    /* free every other block (from the pool and from the heap), then resize the rest to
     * another class, which moves them */
    for (size_t i = 0; i < count; i += 2) {
        lalloc_fn(a, ptr[i], len[i], 0);
        ptr[i] = NULL;
    }
    for (size_t i = 1; i < count; i += 2) {
        void *q = lalloc_fn(a, ptr[i], len[i], SIZE - 20);
        if (!q) {
            bad = 2;
            break;
        }
        ptr[i] = q;
        len[i] = SIZE - 20;
        if (!intact(q, SIZE - 20, (uint32_t)i)) {
            bad = 3;
            break;
        }
    }
    CHECK(bad == 0);
    /* fill the freed slots again, the same size and then a small one */
    for (size_t i = 0; i < count; i += 2) {
        ptr[i] = lalloc_fn(a, NULL, LUA_TSTRING, i % 4 ? SIZE : 16);
        REQUIRE(ptr[i] != NULL);
        len[i] = i % 4 ? SIZE : 16;
        fill(ptr[i], len[i], (uint32_t)i);
    }
    for (size_t i = 0; i < count; i++)
        if (!intact(ptr[i], len[i], (uint32_t)i))
            bad = 4;
    CHECK(bad == 0);
cleanup:
    for (size_t i = 0; ptr && i < count; i++)
        if (ptr[i])
            lalloc_fn(a, ptr[i], len[i], 0);
    free(ptr);
    free(len);
    lalloc_free(a);
}

#ifndef TEST_ASAN
/* Bytes malloc counts as in use (blocks in its per-thread cache included: so only a
 * growth means malloc was called). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

/* Small blocks come from the pool, not from malloc (what takes malloc off the hot path). */
static void test_small_off_heap(void)
{
#ifdef TEST_ASAN
    printf("test_small_off_heap: not run in the ASan build (lalloc_fn is plain realloc "
           "there); the release build runs it\n");
#else
    struct lalloc *a = lalloc_new();
    enum { N = 1000 };
    static void *ptr[N];
    REQUIRE(a != NULL);
    size_t before = heap_in_use();
    for (size_t i = 0; i < N; i++) {
        ptr[i] = lalloc_fn(a, NULL, LUA_TSTRING, 90);
        REQUIRE(ptr[i] != NULL);
    }
    CHECK(heap_in_use() == before);
    for (size_t i = 0; i < N; i++) {
        lalloc_fn(a, ptr[i], 90, 0);
        ptr[i] = NULL;
    }
cleanup:
    for (size_t i = 0; i < N; i++)
        if (ptr[i])
            lalloc_fn(a, ptr[i], 90, 0);
    lalloc_free(a);
#endif
}

/* A script that makes and drops strings of every size and tables of every shape, checks
 * them, and returns how many entries it checked. */
static const char script[] =
    "local n, rounds = N, ROUNDS\n"
    "local checked, keep = 0, {}\n"
    "for round = 1, rounds do\n"
    "  local t = {}\n"
    "  for i = 1, n do\n"
    "    local s = string.rep('x', (i * 7 + round) % 700) .. i\n"
    "    t[i] = s\n"
    "    t['k' .. i] = {i, s, round, sub = {s:sub(1, i % 50)}}\n"
    "  end\n"
    "  local co = coroutine.wrap(function()\n"
    "    for i = 1, n do coroutine.yield(t[i] .. '#' .. round) end\n"
    "  end)\n"
    "  for i = 1, n do\n"
    "    local s, e = t[i], t['k' .. i]\n"
    "    assert(#s == (i * 7 + round) % 700 + #tostring(i))\n"
    "    assert(s:sub(-#tostring(i)) == tostring(i))\n"
    "    assert(e[1] == i and e[2] == s and e[3] == round)\n"
    "    assert(e.sub[1] == s:sub(1, i % 50))\n"
    "    assert(co() == s .. '#' .. round)\n"
    "    checked = checked + 1\n"
    "  end\n"
    "  local big = table.concat(t, ',', 1, n)\n"
    "  assert(#big > n)\n"
    "  keep[round % 3 + 1] = t\n"
    "  if round % 4 == 0 then collectgarbage() end\n"
    "end\n"
    "keep = nil\n"
    "collectgarbage()\n"
    "return checked\n";

static void test_lua_state(void)
{
    enum { N = 3000, ROUNDS = 12 };
    struct lalloc *a = lalloc_new();
    lua_State *L = NULL;
    REQUIRE(a != NULL);
    L = lua_newstate(lalloc_fn, a);
    REQUIRE(L != NULL);
    luaL_openlibs(L);
    lua_pushinteger(L, N);
    lua_setglobal(L, "N");
    lua_pushinteger(L, ROUNDS);
    lua_setglobal(L, "ROUNDS");
    int rc = luaL_dostring(L, script);
    if (rc != LUA_OK)
        fprintf(stderr, "script: %s\n", lua_tostring(L, -1));
    REQUIRE(rc == LUA_OK);
    CHECK(lua_tointeger(L, -1) == (lua_Integer)N * ROUNDS);
    lua_settop(L, 0);
    /* everything dropped and collected: the state is back to a small heap */
    lua_gc(L, LUA_GCCOLLECT);
    CHECK(lua_gc(L, LUA_GCCOUNT) < 1024); /* KiB */
cleanup:
    if (L)
        lua_close(L);
    lalloc_free(a);
}

int main(void)
{
    test_contract();
    test_byte_by_byte();
    test_not_shared();
    test_past_the_pool();
    test_small_off_heap();
    test_lua_state();
#ifdef TEST_ASAN
    CHECK(__lsan_do_recoverable_leak_check() == 0);
#endif
    return check_report();
}
