/* daemon/lalloc.h: a pooled lua_Alloc for one worker's Lua state, so that the strings and
 * tables a handler makes and drops for every datagram do not go through glibc malloc/free.
 * One pool per lua_State, used only by the thread that runs that state: no locking.
 *
 *     struct lalloc *pool = lalloc_new();
 *     lua_State *L = pool ? lua_newstate(lalloc_fn, pool) : NULL;
 *     ...
 *     lua_close(L);
 *     lalloc_free(pool);
 *
 * Built with AddressSanitizer, lalloc_fn is plain realloc/free (a pool would hide
 * use-after-free and overflows between blocks); the API stays the same. */
#ifndef LUADGRAM_LALLOC_H
#define LUADGRAM_LALLOC_H

#include <stddef.h>

/* Blocks of up to LALLOC_SMALL_MAX bytes come from the pool, in classes of
 * LALLOC_CLASS_STEP bytes; bigger ones from malloc. */
#define LALLOC_CLASS_STEP 16
#define LALLOC_SMALL_MAX 512
#define LALLOC_NCLASSES (LALLOC_SMALL_MAX / LALLOC_CLASS_STEP)

/* Address space one pool reserves for its small blocks. Pages become resident only when
 * first carved, so this is the bound on the pool's RSS, not what it costs; once it is all
 * carved, small blocks that no free list can serve come from malloc. */
#define LALLOC_POOL_BYTES ((size_t)4 << 20)

struct lalloc;

/* A new, empty pool; NULL when out of memory (or address space). */
struct lalloc *lalloc_new(void);

/* Caps the bytes the state may hold (handler_memory; 0: no cap). Past it an allocation
 * that grows fails (Lua then collects and, failing again, raises "not enough memory");
 * shrinking and freeing never fail. Each refusal calls on_limit(arg) (may be NULL) before
 * returning NULL: it runs inside the allocator and must not call Lua functions that
 * allocate. */
void lalloc_set_limit(struct lalloc *a, size_t limit, void (*on_limit)(void *arg), void *arg);

/* Bytes the state holds now (the sizes Lua asked for, as collectgarbage("count") counts). */
size_t lalloc_used(const struct lalloc *a);

/* Allocations refused by the cap so far. */
unsigned long lalloc_refused(const struct lalloc *a);

/* Gives back to the system what the state freed: free heap memory of every malloc arena
 * (malloc_trim). Called after a full collection that followed a stopped call, not per
 * datagram (it walks the arenas). The pool's region is bounded (LALLOC_POOL_BYTES) and
 * kept. */
void lalloc_trim(struct lalloc *a);

/* Frees the pool and all its memory; after lua_close of the state that used it (blocks
 * still handed out become invalid). NULL is allowed. */
void lalloc_free(struct lalloc *a);

/* The lua_Alloc for lua_newstate(lalloc_fn, pool) (Lua 5.4 manual §4.6): nsize 0 frees ptr
 * and returns NULL; ptr NULL allocates (osize is then a type tag); otherwise resizes,
 * keeping min(osize, nsize) bytes. On failure returns NULL and leaves ptr untouched;
 * never fails when nsize <= osize. ud is the struct lalloc. */
void *lalloc_fn(void *ud, void *ptr, size_t osize, size_t nsize);

#endif
