/* Benchmark group `fiber`: the cost of a context switch, FiberFlow against swapcontext,
 * in one run. Each figure is the median of several runs of a ping-pong loop (root and one
 * fiber switching to each other), in ns per switch.
 *
 *   fiber                          print the timings and the speedup
 *   fiber callgrind fiber N        run N FiberFlow switches only (bench/fiber.sh counts
 *   fiber callgrind swapcontext N  their instructions under callgrind)
 */
#include "fiberflow/fiberflow.h"
#include "fiberpool/fiberpool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

enum { RUNS = 7, STACK_SIZE = 65536 };

static ff_fiber root;
static ff_fiber *pong;
static ucontext_t main_context, pong_context;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return values[count / 2];
}

static void *pong_entry(void *arg)
{
    while (arg != NULL)
        arg = ff_switch(&root, arg);
    return NULL;
}

static void setup_fiber(void)
{
    ff_init_thread(&root);
    pong = ff_create(malloc(STACK_SIZE), STACK_SIZE, pong_entry);
    if (!pong)
        abort();
}

/* `switches` switches: half into the fiber, half back. */
static void fiber_ping_pong(long switches)
{
    for (long i = 0; i < switches / 2; i++)
        ff_switch(pong, &root);
}

static void pong_context_entry(void)
{
    for (;;)
        swapcontext(&pong_context, &main_context);
}

static void setup_swapcontext(void)
{
    getcontext(&pong_context);
    pong_context.uc_stack.ss_sp = malloc(STACK_SIZE);
    pong_context.uc_stack.ss_size = STACK_SIZE;
    pong_context.uc_link = NULL;
    makecontext(&pong_context, pong_context_entry, 0);
}

static void swapcontext_ping_pong(long switches)
{
    for (long i = 0; i < switches / 2; i++)
        swapcontext(&main_context, &pong_context);
}

/* ---- FiberPool: a round trip is two tasks handing control to each other once each. ---- */

enum { POOL_SLOTS = 4 };
static fp_pool pool;
static fp_task pool_tasks[POOL_SLOTS];
static fp_task *task_a, *task_b;
static fp_sem sem_a, sem_b;
static long rounds_left;

static void pool_setup(void)
{
    static uint8_t *arena;
    if (!arena)
        arena = aligned_alloc(4096, POOL_SLOTS * STACK_SIZE);
    fp_config config = {
        .tasks = pool_tasks, .slot_count = POOL_SLOTS, .stack_arena = arena, .slot_stride = STACK_SIZE,
    };
    if (!arena || fp_init(&pool, &config) != FP_OK)
        abort();
}

static void *block_wake_a(void *arg)
{
    while (rounds_left-- > 0) {
        fp_wake(task_b, NULL);
        fp_block(&pool);
    }
    fp_wake(task_b, (void *)1);
    return NULL;
}

static void *block_wake_b(void *arg)
{
    while (fp_block(&pool) == NULL)
        fp_wake(task_a, NULL);
    return NULL;
}

static void *yield_loop(void *arg)
{
    while (rounds_left-- > 0)
        fp_yield(&pool);
    return NULL;
}

static void *sem_a_loop(void *arg)
{
    for (long i = (long)(intptr_t)arg; i > 0; i--) {
        fp_sem_post(&sem_b);
        fp_sem_wait(&pool, &sem_a);
    }
    return NULL;
}

static void *sem_b_loop(void *arg)
{
    for (long i = (long)(intptr_t)arg; i > 0; i--) {
        fp_sem_wait(&pool, &sem_b);
        fp_sem_post(&sem_a);
    }
    return NULL;
}

/* Each loop below does `switches` task switches: switches / 2 round trips. */
static void pool_block_wake(long switches)
{
    pool_setup();
    rounds_left = switches / 2;
    task_b = fp_spawn(&pool, block_wake_b, NULL);
    task_a = fp_spawn(&pool, block_wake_a, NULL);
    fp_run(&pool);
}

static void pool_yield(long switches)
{
    pool_setup();
    rounds_left = switches; /* shared by both tasks: each yield is one switch */
    fp_spawn(&pool, yield_loop, NULL);
    fp_spawn(&pool, yield_loop, NULL);
    fp_run(&pool);
}

static void pool_semaphore(long switches)
{
    pool_setup();
    fp_sem_init(&sem_a, 0);
    fp_sem_init(&sem_b, 0);
    fp_spawn(&pool, sem_b_loop, (void *)(intptr_t)(switches / 2));
    fp_spawn(&pool, sem_a_loop, (void *)(intptr_t)(switches / 2));
    fp_run(&pool);
}

static double ns_per_switch(void (*loop)(long), long switches)
{
    double samples[RUNS];
    loop(switches / 10); /* warm up caches and predictors */
    for (int r = 0; r < RUNS; r++) {
        double start = now_ns();
        loop(switches);
        samples[r] = (now_ns() - start) / (double)switches;
    }
    return median(samples, RUNS);
}

int main(int argc, char **argv)
{
    setup_fiber();
    setup_swapcontext();
    if (argc == 4 && strcmp(argv[1], "callgrind") == 0) {
        long switches = atol(argv[3]);
        if (strcmp(argv[2], "fiber") == 0)
            fiber_ping_pong(switches);
        else if (strcmp(argv[2], "swapcontext") == 0)
            swapcontext_ping_pong(switches);
        else
            return 2;
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: %s [callgrind fiber|swapcontext <switches>]\n", argv[0]);
        return 2;
    }

    double fiber_ns = ns_per_switch(fiber_ping_pong, 20000000);
    double swapcontext_ns = ns_per_switch(swapcontext_ping_pong, 1000000);
    printf("bench fiber_switch_ns %.2f ns\n", fiber_ns);
    printf("bench swapcontext_switch_ns %.2f ns\n", swapcontext_ns);
    printf("bench fiber_vs_swapcontext_speedup %.1f x\n", swapcontext_ns / fiber_ns);

    /* A round trip is two switches for every figure below; bare = two ff_switch calls. */
    double block_wake_ns = 2 * ns_per_switch(pool_block_wake, 10000000);
    double yield_ns = 2 * ns_per_switch(pool_yield, 10000000);
    double sem_ns = 2 * ns_per_switch(pool_semaphore, 10000000);
    printf("bench pool_block_wake_roundtrip_ns %.2f ns\n", block_wake_ns);
    printf("bench pool_yield_roundtrip_ns %.2f ns\n", yield_ns);
    printf("bench pool_sem_roundtrip_ns %.2f ns\n", sem_ns);
    printf("bench pool_block_wake_over_bare_roundtrip %.2f ratio\n", block_wake_ns / (2 * fiber_ns));
    return 0;
}
