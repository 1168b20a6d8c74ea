/* daemon/lalloc.c: the pooled lua_Alloc of a worker's Lua state (lalloc.h).
 *
 * Small blocks (1..LALLOC_SMALL_MAX bytes) are rounded up to a class, a multiple of
 * LALLOC_CLASS_STEP bytes, and come from that class's free list, or else are carved from
 * the pool's region: LALLOC_POOL_BYTES of address space reserved once with mmap
 * (MAP_NORESERVE), used front to back, a page becoming resident when first carved. A freed
 * block goes back on its class's free list (a link stored in the block itself) and is
 * never returned to the system before lalloc_free, which unmaps the region. So the pool's
 * RSS is the high-water mark of the state's small blocks, and never more than
 * LALLOC_POOL_BYTES: once the region is all carved, small blocks that no free list can
 * serve come from malloc, like the big ones. No per-block header: Lua passes each block's
 * size on free and resize, and whether a block is the pool's is one range check of its
 * address. A resize within the class keeps the block; across classes or to/from the heap
 * it copies min(osize, nsize) bytes. A shrink never fails: when there is no smaller block
 * to move to, the old one is kept (it is big enough; if it is the pool's it later joins
 * the smaller class's list, a little memory lost, never a wrong size).
 *
 * Under AddressSanitizer lalloc_fn is plain realloc/free, so that ASan still sees every
 * Lua object as its own allocation.
 *
 * Both count the bytes the state holds (Lua's sizes, not the classes') and refuse growth
 * past the cap (handler_memory): one compare per allocation. */
#include "lalloc.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define LALLOC_PASSTHROUGH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LALLOC_PASSTHROUGH 1
#endif
#endif

/* A free block: the link to the next free block of its class. */
struct lalloc_block {
    struct lalloc_block *next;
};

struct lalloc {
    struct lalloc_block *free[LALLOC_NCLASSES]; /* per class, the blocks given back */
    char *base;                                 /* the region, LALLOC_POOL_BYTES */
    char *bump;                                 /* its first byte never handed out */
    char *end;                                  /* base + LALLOC_POOL_BYTES */
    size_t used;                                /* bytes Lua holds */
    size_t limit;                               /* cap on used, 0: none */
    unsigned long refused;                      /* allocations the cap refused */
    void (*on_limit)(void *arg);
    void *on_limit_arg;
};

void lalloc_set_limit(struct lalloc *a, size_t limit, void (*on_limit)(void *arg), void *arg)
{
    a->limit = limit;
    a->on_limit = on_limit;
    a->on_limit_arg = arg;
}

size_t lalloc_used(const struct lalloc *a)
{
    return a->used;
}

unsigned long lalloc_refused(const struct lalloc *a)
{
    return a->refused;
}

void lalloc_trim(struct lalloc *a)
{
    (void)a;
    malloc_trim(0);
}

/* Whether growing a block from old to nsize bytes would pass the cap; counts and reports
 * the refusal. */
static int lalloc_over(struct lalloc *a, size_t old, size_t nsize)
{
    if (!a->limit || nsize <= old || a->used + (nsize - old) <= a->limit)
        return 0;
    a->refused++;
    if (a->on_limit)
        a->on_limit(a->on_limit_arg);
    return 1;
}

#ifdef LALLOC_PASSTHROUGH

struct lalloc *lalloc_new(void)
{
    return calloc(1, sizeof(struct lalloc));
}

void lalloc_free(struct lalloc *a)
{
    free(a);
}

void *lalloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct lalloc *a = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        a->used -= old;
        return NULL;
    }
    if (lalloc_over(a, old, nsize))
        return NULL;
    void *p = realloc(ptr, nsize);
    if (!p)
        return nsize <= old ? ptr : NULL; /* a shrink never fails */
    a->used += nsize - old;
    return p;
}

#else

struct lalloc *lalloc_new(void)
{
    struct lalloc *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    void *region = mmap(NULL, LALLOC_POOL_BYTES, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) {
        free(a);
        return NULL;
    }
    a->base = a->bump = region;
    a->end = a->base + LALLOC_POOL_BYTES;
    return a;
}

void lalloc_free(struct lalloc *a)
{
    if (!a)
        return;
    munmap(a->base, LALLOC_POOL_BYTES);
    free(a);
}

/* The class of a small size n (1..LALLOC_SMALL_MAX) and the block size it stands for. */
static inline size_t class_of(size_t n)
{
    return (n - 1) / LALLOC_CLASS_STEP;
}

static inline size_t class_size(size_t c)
{
    return (c + 1) * LALLOC_CLASS_STEP;
}

/* Whether p is one of the pool's blocks (else it came from malloc). */
static inline int pool_owns(const struct lalloc *a, const void *p)
{
    return (uintptr_t)p - (uintptr_t)a->base < LALLOC_POOL_BYTES;
}

/* A pool block for n (1..LALLOC_SMALL_MAX) bytes: recycled, else newly carved; NULL when
 * the class's list is empty and the region all carved. */
static inline void *pool_take(struct lalloc *a, size_t n)
{
    size_t c = class_of(n);
    struct lalloc_block *b = a->free[c];
    if (b) {
        a->free[c] = b->next;
        return b;
    }
    size_t size = class_size(c);
    if ((size_t)(a->end - a->bump) < size)
        return NULL;
    void *p = a->bump;
    a->bump += size;
    return p;
}

/* Gives back pool block p, which Lua knew as n bytes. */
static inline void pool_give(struct lalloc *a, void *p, size_t n)
{
    struct lalloc_block *b = p;
    size_t c = class_of(n);
    b->next = a->free[c];
    a->free[c] = b;
}

/* A new block of n bytes: the pool's when small and it has one, else malloc's. */
static void *block_new(struct lalloc *a, size_t n)
{
    void *p = n <= LALLOC_SMALL_MAX ? pool_take(a, n) : NULL;
    return p ? p : malloc(n);
}

/* Resizes heap block ptr: into the pool when it becomes small and the pool has room,
 * else with realloc (whose failure to shrink, were it ever to fail, keeps ptr). */
static void *heap_resize(struct lalloc *a, void *ptr, size_t osize, size_t nsize)
{
    void *p = nsize <= LALLOC_SMALL_MAX ? pool_take(a, nsize) : NULL;
    if (p) {
        memcpy(p, ptr, osize < nsize ? osize : nsize);
        free(ptr);
        return p;
    }
    p = realloc(ptr, nsize);
    return p || nsize > osize ? p : ptr;
}

/* lalloc_fn for all but its two fast paths; not inlined so that they stay leaf code
 * (no registers to save). */
__attribute__((noinline)) static void *lalloc_slow(struct lalloc *a, void *ptr, size_t osize,
                                                   size_t nsize)
{
    if (!ptr) /* osize is a type tag */
        return nsize ? block_new(a, nsize) : NULL;
    if (!pool_owns(a, ptr)) {
        if (nsize == 0) {
            free(ptr);
            return NULL;
        }
        return heap_resize(a, ptr, osize, nsize);
    }
    /* A pool block: osize <= LALLOC_SMALL_MAX. */
    if (nsize == 0) {
        pool_give(a, ptr, osize);
        return NULL;
    }
    if (nsize <= LALLOC_SMALL_MAX && class_of(nsize) == class_of(osize))
        return ptr;
    void *p = block_new(a, nsize);
    if (!p)
        return nsize < osize ? ptr : NULL;
    memcpy(p, ptr, osize < nsize ? osize : nsize);
    pool_give(a, ptr, osize);
    return p;
}

void *lalloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct lalloc *a = ud;
    /* the hot paths: a small block from a free list, a pool block back to its list */
    if (!ptr && nsize - 1 < LALLOC_SMALL_MAX) { /* 1..LALLOC_SMALL_MAX (0 wraps) */
        struct lalloc_block **head = &a->free[class_of(nsize)];
        struct lalloc_block *b = *head;
        if (b) {
            if (lalloc_over(a, 0, nsize))
                return NULL;
            *head = b->next;
            a->used += nsize;
            return b;
        }
    } else if (nsize == 0 && ptr && pool_owns(a, ptr)) {
        pool_give(a, ptr, osize);
        a->used -= osize;
        return NULL;
    }
    size_t old = ptr ? osize : 0;
    if (lalloc_over(a, old, nsize))
        return NULL;
    void *p = lalloc_slow(a, ptr, osize, nsize);
    if (p || nsize == 0)
        a->used += nsize - old; /* unsigned: a shrink or a free wraps to the right value */
    return p;
}

#endif
