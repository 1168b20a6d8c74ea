/* spec/c/test_outq.c: the worker-to-output queue (daemon/output/outq.c): records come out
 * whole and in order, across the ring's end (skip frames) for every size pattern; a full
 * ring and an oversized record refuse the push and leave the ring intact; the wake-up
 * protocol (push says when the consumer sleeps) loses no wake-up between two threads; and
 * every run is bounded in count and time (run under ASan too: a read past a frame fails). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outq.h"
#include "check.h"

/* Fills buf with bytes derived from n, so that a record's data says which record it is. */
static void pattern(uint8_t *buf, size_t len, uint64_t n)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(n * 131 + i * 7);
}

static int same_pattern(const uint8_t *buf, size_t len, uint64_t n)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != (uint8_t)(n * 131 + i * 7))
            return 0;
    return 1;
}

static void test_basic(void)
{
    struct outq *q = outq_new(1);  /* rounded up to the minimum */
    struct outq_rec r;
    REQUIRE(q);
    CHECK(outq_max_record(q) == OUTQ_MIN_BYTES / 4 - 16);
    CHECK(outq_peek(q, &r) == 0);
    CHECK(outq_push(q, "logs.a", 6, "hello", 5) == 1);  /* the consumer starts asleep */
    CHECK(outq_push(q, "", 0, "", 0) == 0);              /* awake now: no second wake */
    CHECK(outq_push(q, "s", 1, "x", 1) == 0);
    REQUIRE(outq_peek(q, &r) == 1);
    CHECK(r.subject_len == 6 && memcmp(r.subject, "logs.a", 6) == 0);
    CHECK(r.len == 5 && memcmp(r.data, "hello", 5) == 0);
    CHECK(outq_peek(q, &r) == 1 && r.len == 5);  /* peek again: the same record */
    outq_pop(q);
    REQUIRE(outq_peek(q, &r) == 1);
    CHECK(r.subject_len == 0 && r.len == 0);
    outq_pop(q);
    CHECK(outq_sleep(q) == 0);  /* one record left: not asleep */
    REQUIRE(outq_peek(q, &r) == 1);
    CHECK(r.subject_len == 1 && r.len == 1 && r.data[0] == 'x');
    outq_pop(q);
    CHECK(outq_peek(q, &r) == 0);
    CHECK(outq_sleep(q) == 1);
    CHECK(outq_push(q, "s", 1, "y", 1) == 1);  /* asleep: this push wakes it */
    CHECK(outq_push(q, "s", 1, "z", 1) == 0);
cleanup:
    outq_free(q);
}

/* A record of max_record + 1 bytes is refused; max_record fits. */
static void test_oversize(void)
{
    struct outq *q = outq_new(OUTQ_MIN_BYTES);
    size_t max = q ? outq_max_record(q) : 0;
    uint8_t *big = malloc(max + 1);
    struct outq_rec r;
    REQUIRE(q && big);
    pattern(big, max + 1, 3);
    CHECK(outq_push(q, "s", 1, big, max) == -1);       /* subject + data > max */
    CHECK(outq_push(q, NULL, 0, big, max + 1) == -1);
    CHECK(outq_push(q, NULL, 0, big, max) == 1);
    REQUIRE(outq_peek(q, &r) == 1);
    CHECK(r.len == max && same_pattern(r.data, r.len, 3));
    outq_pop(q);
    CHECK(outq_peek(q, &r) == 0);
cleanup:
    free(big);
    outq_free(q);
}

/* Pushes until full, checks that the full ring refuses and keeps what it has, then reads
 * half and pushes again: for record sizes that put frames across the ring's end at every
 * alignment. Single-threaded: the order and the bytes of every record are checked. */
static void test_full_and_wrap(void)
{
    struct outq *q = outq_new(OUTQ_MIN_BYTES);
    uint8_t *buf = malloc(OUTQ_MIN_BYTES);
    REQUIRE(q && buf);
    uint64_t in = 0, out = 0;
    for (int round = 0; round < 200; round++) {
        int refused = 0;
        for (int i = 0; i < 100000 && !refused; i++) {
            size_t len = (size_t)((in * 37 + (uint64_t)round * 11) % 3001);
            char subject[32];
            int sl = snprintf(subject, sizeof subject, "s.%llu", (unsigned long long)in);
            pattern(buf, len, in);
            int rc = outq_push(q, subject, (size_t)sl, buf, len);
            if (rc < 0)
                refused = 1;
            else
                in++;
        }
        CHECK(refused);
        /* read about half of what is in, checking each */
        uint64_t stop = out + (in - out + 1) / 2;
        struct outq_rec r;
        while (out < stop) {
            if (outq_peek(q, &r) != 1) {
                CHECK(!"record missing");
                goto cleanup;
            }
            char subject[32];
            int sl = snprintf(subject, sizeof subject, "s.%llu", (unsigned long long)out);
            if (r.subject_len != (size_t)sl || memcmp(r.subject, subject, (size_t)sl) != 0 ||
                !same_pattern(r.data, r.len, out)) {
                CHECK(!"record changed or out of order");
                goto cleanup;
            }
            outq_pop(q);
            out++;
        }
    }
    CHECK(in > 200 * 10);  /* the ring went round many times */
cleanup:
    free(buf);
    outq_free(q);
}

/* Two threads: the producer pushes N records (yielding while the ring is full),
 * posting the semaphore when push says the consumer sleeps; the consumer reads and checks
 * them in order and, when empty, sleeps on the semaphore after outq_sleep said so. A lost
 * wake-up would leave the consumer waiting: it gives up after 10 s and the test fails. */
#define THREAD_RECORDS 300000

struct pair {
    struct outq *q;
    sem_t wake;
    uint64_t got, bad;
    int timed_out;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *producer(void *arg)
{
    struct pair *p = arg;
    uint8_t buf[600];
    for (uint64_t n = 0; n < THREAD_RECORDS; n++) {
        size_t len = (size_t)(n % 600);
        pattern(buf, len, n);
        int rc;
        /* a full ring: wait for the consumer to make room, yielding, 10 s at most */
        double deadline = 0;
        while ((rc = outq_push(p->q, "t", 1, buf, len)) < 0) {
            if (deadline == 0)
                deadline = now_s() + 10;
            else if (now_s() > deadline)
                return NULL;
            sched_yield();
        }
        if (rc == 1)
            sem_post(&p->wake);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pair *p = arg;
    struct outq_rec r;
    while (p->got < THREAD_RECORDS) {
        if (outq_peek(p->q, &r)) {
            if (r.len != p->got % 600 || !same_pattern(r.data, r.len, p->got))
                p->bad++;
            outq_pop(p->q);
            p->got++;
            continue;
        }
        if (!outq_sleep(p->q))
            continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        int rc;
        while ((rc = sem_timedwait(&p->wake, &until)) != 0 && errno == EINTR)
            ;
        if (rc != 0) {
            p->timed_out = 1;
            return NULL;
        }
    }
    return NULL;
}

static void test_threads(void)
{
    struct pair p = {0};
    p.q = outq_new(OUTQ_MIN_BYTES);
    REQUIRE(p.q);
    sem_init(&p.wake, 0, 0);
    pthread_t pt, ct;
    REQUIRE(pthread_create(&ct, NULL, consumer, &p) == 0);
    if (pthread_create(&pt, NULL, producer, &p) != 0) {
        CHECK(!"pthread_create");
        sem_post(&p.wake);
        pthread_join(ct, NULL);
        goto cleanup;
    }
    pthread_join(pt, NULL);
    pthread_join(ct, NULL);
    CHECK(!p.timed_out);
    CHECK(p.got == THREAD_RECORDS);
    CHECK(p.bad == 0);
    sem_destroy(&p.wake);
cleanup:
    outq_free(p.q);
}

int main(void)
{
    test_basic();
    test_oversize();
    test_full_and_wrap();
    test_threads();
    return check_report();
}
