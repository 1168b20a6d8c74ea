/* bench/hist.c: the log-linear histogram of hist.h. Values below 2 * HIST_SUB are exact;
 * above, a value v with highest set bit m falls in octave (m - HIST_SUB_BITS + 1) at
 * sub-bucket (v >> (m - HIST_SUB_BITS)) - HIST_SUB. */
#include "hist.h"

#include <math.h>
#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof *h);
}

unsigned hist_index(uint64_t value)
{
    unsigned msb, shift;

    if (value < 2 * HIST_SUB)
        return (unsigned)value;
    msb = 63u - (unsigned)__builtin_clzll(value);
    shift = msb - HIST_SUB_BITS;
    return (shift + 1u) * HIST_SUB + (unsigned)((value >> shift) - HIST_SUB);
}

uint64_t hist_bucket_high(unsigned index)
{
    unsigned shift;
    uint64_t top;

    if (index < 2 * HIST_SUB)
        return index;
    if (index >= HIST_BUCKETS)
        return UINT64_MAX;
    shift = index / HIST_SUB - 1u;
    top = (uint64_t)(index % HIST_SUB) + HIST_SUB;
    /* The last bucket of the last octave ends at UINT64_MAX. */
    if (shift + HIST_SUB_BITS + 1u >= 64u && top == 2 * HIST_SUB - 1u)
        return UINT64_MAX;
    return ((top + 1u) << shift) - 1u;
}

void hist_record(struct hist *h, uint64_t value)
{
    h->buckets[hist_index(value)]++;
    h->count++;
    if (value > h->max)
        h->max = value;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->count == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t high = hist_bucket_high(i);
            return high < h->max ? high : h->max;
        }
    }
    return h->max;
}
