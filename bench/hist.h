/* bench/hist.h: a fixed-size log-linear latency histogram (HdrHistogram's layout: 32
 * linear sub-buckets per power of two, so any value is kept within about 3%). Recording
 * never allocates; the whole histogram is one flat struct. */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 5u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64u - HIST_SUB_BITS + 1u) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t max;
    uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t value);
/* The bucket index of value, and the highest value that bucket holds. */
unsigned hist_index(uint64_t value);
uint64_t hist_bucket_high(unsigned index);
/* The value at quantile q in [0, 1]: the highest value of the bucket holding the
 * ceil(q * count)-th smallest recording, never above the exact maximum. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
