/* daemon/peerlimit.c: the per-peer token bucket table. It owns one block of entries and
 * one array of hash chain heads, both allocated by peerlimit_new and freed by
 * peerlimit_free. Entries are found through hash chains (the hash keyed with a random seed,
 * so that a sender cannot pick addresses that share a chain) and kept on a doubly linked
 * least-recently-used list; a new peer in a full table takes the least recently seen
 * entry. */
#include "peerlimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PL_NONE UINT32_MAX

struct pl_entry {
    uint8_t key[16];   /* address cut to the prefix */
    uint64_t dropped;
    uint64_t passed;
    double tokens;
    int64_t last_ns;
    uint32_t lru_prev, lru_next; /* toward the most / least recently seen */
    uint32_t chain_next;
    uint8_t family;    /* 4 or 6 */
};

struct peerlimit {
    struct peerlimit_cfg cfg;
    uint64_t seed;
    struct pl_entry *entries; /* cfg.peers of them; [0, used) are tracked */
    uint32_t used;
    uint32_t *heads;          /* nbuckets chain heads */
    uint32_t mask;            /* nbuckets - 1 */
    uint32_t lru_head, lru_tail; /* most and least recently seen */
};

/* ---- networks ---- */

static void pl_mask(uint8_t *addr, int bytes, int len)
{
    for (int i = 0; i < bytes; i++) {
        int keep = len - i * 8;
        if (keep >= 8)
            continue;
        addr[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
}

int peerlimit_parse_net(const char *s, struct peerlimit_net *out, char *err, size_t errlen)
{
    char text[64];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof text) {
        snprintf(err, errlen, "'%.60s': expected an address or address/prefix", s);
        return -1;
    }
    memcpy(text, s, n + 1);
    char *slash = strchr(text, '/');
    if (slash)
        *slash = '\0';
    memset(out, 0, sizeof *out);
    int max;
    if (inet_pton(AF_INET, text, out->addr) == 1) {
        out->family = 4;
        max = 32;
    } else if (inet_pton(AF_INET6, text, out->addr) == 1) {
        out->family = 6;
        max = 128;
    } else {
        snprintf(err, errlen, "'%s': not an IPv4 or IPv6 address", s);
        return -1;
    }
    int len = max;
    if (slash) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || v < 0 || v > max) {
            snprintf(err, errlen, "'%s': prefix length must be 0 to %d", s, max);
            return -1;
        }
        len = (int)v;
    }
    uint8_t masked[16];
    memcpy(masked, out->addr, sizeof masked);
    pl_mask(masked, max / 8, len);
    if (memcmp(masked, out->addr, (size_t)max / 8) != 0) {
        snprintf(err, errlen, "'%s': bits set after the /%d prefix", s, len);
        return -1;
    }
    out->len = (uint8_t)len;
    return 0;
}

void peerlimit_format_net(const struct peerlimit_net *n, char *buf, size_t buflen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int max = n->family == 4 ? 32 : 128;
    inet_ntop(n->family == 4 ? AF_INET : AF_INET6, n->addr, ip, sizeof ip);
    if (n->len == max)
        snprintf(buf, buflen, "%s", ip);
    else
        snprintf(buf, buflen, "%s/%d", ip, n->len);
}

static int pl_in_net(const struct peerlimit_net *net, int family, const uint8_t *addr)
{
    if (net->family != family)
        return 0;
    int full = net->len / 8, rest = net->len % 8;
    if (memcmp(net->addr, addr, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (net->addr[full] & m) == (addr[full] & m);
}

/* ---- the table ---- */

size_t peerlimit_memory(uint32_t peers)
{
    size_t nbuckets = 1;
    while (nbuckets < peers)
        nbuckets <<= 1;
    return sizeof(struct peerlimit) + (size_t)peers * sizeof(struct pl_entry) +
           nbuckets * sizeof(uint32_t);
}

struct peerlimit *peerlimit_new(const struct peerlimit_cfg *cfg, uint64_t seed)
{
    if (cfg->peers == 0 || cfg->peers >= PL_NONE)
        return NULL;
    struct peerlimit *pl = calloc(1, sizeof *pl);
    if (!pl)
        return NULL;
    pl->cfg = *cfg;
    pl->seed = seed;
    size_t nbuckets = 1;
    while (nbuckets < cfg->peers)
        nbuckets <<= 1;
    pl->mask = (uint32_t)(nbuckets - 1);
    pl->entries = malloc((size_t)cfg->peers * sizeof *pl->entries);
    pl->heads = malloc(nbuckets * sizeof *pl->heads);
    if (!pl->entries || !pl->heads) {
        peerlimit_free(pl);
        return NULL;
    }
    memset(pl->heads, 0xff, nbuckets * sizeof *pl->heads);
    pl->lru_head = pl->lru_tail = PL_NONE;
    return pl;
}

void peerlimit_free(struct peerlimit *pl)
{
    if (!pl)
        return;
    free(pl->entries);
    free(pl->heads);
    free(pl);
}

uint32_t peerlimit_tracked(const struct peerlimit *pl)
{
    return pl->used;
}

static uint64_t pl_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint32_t pl_hash(const struct peerlimit *pl, int family, const uint8_t *key)
{
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    uint64_t h = pl_mix(a ^ pl->seed);
    h = pl_mix(h ^ b ^ ((uint64_t)family << 56) ^ (pl->seed >> 7));
    return (uint32_t)h & pl->mask;
}

static void pl_lru_unlink(struct peerlimit *pl, uint32_t i)
{
    struct pl_entry *e = &pl->entries[i];
    if (e->lru_prev != PL_NONE)
        pl->entries[e->lru_prev].lru_next = e->lru_next;
    else
        pl->lru_head = e->lru_next;
    if (e->lru_next != PL_NONE)
        pl->entries[e->lru_next].lru_prev = e->lru_prev;
    else
        pl->lru_tail = e->lru_prev;
}

static void pl_lru_push_front(struct peerlimit *pl, uint32_t i)
{
    struct pl_entry *e = &pl->entries[i];
    e->lru_prev = PL_NONE;
    e->lru_next = pl->lru_head;
    if (pl->lru_head != PL_NONE)
        pl->entries[pl->lru_head].lru_prev = i;
    pl->lru_head = i;
    if (pl->lru_tail == PL_NONE)
        pl->lru_tail = i;
}

/* Takes entry i off its hash chain. */
static void pl_chain_unlink(struct peerlimit *pl, uint32_t i)
{
    struct pl_entry *e = &pl->entries[i];
    uint32_t *link = &pl->heads[pl_hash(pl, e->family, e->key)];
    while (*link != PL_NONE && *link != i)
        link = &pl->entries[*link].chain_next;
    if (*link == i)
        *link = e->chain_next;
}

/* The entry for (family, key), a new one (evicting the least recently seen when the table
 * is full) with a full bucket when it was not tracked. Moved to the front of the LRU. */
static struct pl_entry *pl_lookup(struct peerlimit *pl, int family, const uint8_t *key,
                                  int64_t now_ns)
{
    uint32_t b = pl_hash(pl, family, key);
    for (uint32_t i = pl->heads[b]; i != PL_NONE; i = pl->entries[i].chain_next) {
        struct pl_entry *e = &pl->entries[i];
        if (e->family == family && memcmp(e->key, key, sizeof e->key) == 0) {
            if (pl->lru_head != i) {
                pl_lru_unlink(pl, i);
                pl_lru_push_front(pl, i);
            }
            return e;
        }
    }
    uint32_t i;
    if (pl->used < pl->cfg.peers) {
        i = pl->used++;
    } else {
        i = pl->lru_tail;
        pl_lru_unlink(pl, i);
        pl_chain_unlink(pl, i);
    }
    struct pl_entry *e = &pl->entries[i];
    memcpy(e->key, key, sizeof e->key);
    e->family = (uint8_t)family;
    e->dropped = e->passed = 0;
    e->tokens = pl->cfg.burst;
    e->last_ns = now_ns;
    e->chain_next = pl->heads[b];
    pl->heads[b] = i;
    pl_lru_push_front(pl, i);
    return e;
}

int peerlimit_allow(struct peerlimit *pl, const struct sockaddr *peer, int64_t now_ns)
{
    uint8_t key[16] = {0};
    int family, len;
    if (peer->sa_family == AF_INET) {
        memcpy(key, &((const struct sockaddr_in *)peer)->sin_addr, 4);
        family = 4;
        len = pl->cfg.prefix4;
    } else if (peer->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
        family = 6;
        len = pl->cfg.prefix6;
    } else {
        return 1;
    }
    for (size_t i = 0; i < pl->cfg.nexempt; i++)
        if (pl_in_net(&pl->cfg.exempt[i], family, key))
            return 1;
    pl_mask(key, family == 4 ? 4 : 16, len);
    struct pl_entry *e = pl_lookup(pl, family, key, now_ns);
    if (now_ns > e->last_ns) {
        e->tokens += (double)(now_ns - e->last_ns) * 1e-9 * pl->cfg.rate;
        if (e->tokens > pl->cfg.burst)
            e->tokens = pl->cfg.burst;
        e->last_ns = now_ns;
    }
    if (e->tokens >= 1.0) {
        e->tokens -= 1.0;
        e->passed++;
        return 1;
    }
    e->dropped++;
    return 0;
}

size_t peerlimit_top(const struct peerlimit *pl, struct peerlimit_peer *out, size_t n)
{
    if (n > PEERLIMIT_TOP_MAX)
        n = PEERLIMIT_TOP_MAX;
    size_t have = 0;
    for (uint32_t i = 0; i < pl->used; i++) {
        const struct pl_entry *e = &pl->entries[i];
        if (e->dropped == 0 || (have == n && (n == 0 || e->dropped <= out[n - 1].dropped)))
            continue;
        /* insertion into out, kept sorted by dropped, most first */
        size_t at = have < n ? have++ : n - 1;
        while (at > 0 && out[at - 1].dropped < e->dropped) {
            out[at] = out[at - 1];
            at--;
        }
        struct peerlimit_peer *p = &out[at];
        memset(p, 0, sizeof *p);
        p->net.family = e->family;
        p->net.len = (uint8_t)(e->family == 4 ? pl->cfg.prefix4 : pl->cfg.prefix6);
        memcpy(p->net.addr, e->key, sizeof p->net.addr);
        p->dropped = e->dropped;
        p->passed = e->passed;
        p->tokens = e->tokens;
    }
    return have;
}
