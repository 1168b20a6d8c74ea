/* bench/test_hist.c: the latency histogram keeps every value within its documented
 * precision, its buckets are ordered and cover all of uint64_t, and quantiles land where
 * the recorded distribution puts them. */
#include "hist.h"

#include <stdio.h>
#include <stdlib.h>

static long checks, failures;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        checks++;                                                                         \
        if (!(cond)) {                                                                    \
            failures++;                                                                   \
            printf("not ok - %s:%d: ", __FILE__, __LINE__);                              \
            printf(__VA_ARGS__);                                                          \
            printf("\n");                                                                 \
        }                                                                                 \
    } while (0)

/* Every value maps to a bucket whose upper edge is at or above it and within 1/32 of it. */
static void test_bucket_bounds(void)
{
    uint64_t v = 0;
    unsigned prev = 0;

    for (unsigned step = 0; step < 200000; step++) {
        unsigned idx = hist_index(v);
        uint64_t high = hist_bucket_high(idx);
        CHECK(idx < HIST_BUCKETS, "index %u of %llu out of range", idx, (unsigned long long)v);
        CHECK(idx >= prev, "index not monotonic at %llu", (unsigned long long)v);
        CHECK(high >= v, "high %llu below %llu", (unsigned long long)high,
              (unsigned long long)v);
        CHECK(high - v <= v / 32, "bucket of %llu too wide (high %llu)",
              (unsigned long long)v, (unsigned long long)high);
        prev = idx;
        if (v > UINT64_MAX - 1 - v / 4096)
            break;
        v += 1 + v / 4096; /* dense at first, then geometric up to near UINT64_MAX */
    }
    CHECK(hist_index(UINT64_MAX) == HIST_BUCKETS - 1, "UINT64_MAX not in the last bucket");
    CHECK(hist_bucket_high(HIST_BUCKETS - 1) == UINT64_MAX, "last bucket does not end at max");
}

static void test_quantiles(void)
{
    struct hist *h = malloc(sizeof *h);
    const double qs[] = { 0.5, 0.9, 0.99, 0.999 };

    CHECK(h != NULL, "out of memory");
    if (!h)
        return;
    hist_init(h);
    CHECK(hist_quantile(h, 0.5) == 0, "empty histogram has a median");
    for (uint64_t v = 1; v <= 100000; v++)
        hist_record(h, v * 1000); /* 1 us .. 100 ms in ns */
    CHECK(h->count == 100000, "count %llu", (unsigned long long)h->count);
    CHECK(h->max == 100000000, "max %llu", (unsigned long long)h->max);
    for (unsigned i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        double want = qs[i] * 100000.0 * 1000.0, got = (double)hist_quantile(h, qs[i]);
        CHECK(got >= want && got <= want * (1.0 + 1.0 / 32), "q%.3f = %.0f, want %.0f",
              qs[i], got, want);
    }
    CHECK(hist_quantile(h, 1.0) == h->max, "q1 is not the max");
    free(h);
}

int main(void)
{
    test_bucket_bounds();
    test_quantiles();
    printf("%ld passed, %ld failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
