/* FiberPool: scheduling order, blocking primitives, slot reuse, and random interleavings
 * checked against invariants. Runs on x86_64 under the sanitizers and on aarch64 and
 * riscv64 under qemu-user. */
#include "fiberpool/fiberpool.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 64
#define STACK 32768

static fp_task tasks[SLOTS];
static alignas(64) uint8_t arena[SLOTS * STACK];
static fp_pool pool;

static void pool_setup(uint32_t slots, bool paint)
{
    fp_config config = {
        .tasks = tasks,
        .slot_count = slots,
        .stack_arena = arena,
        .slot_stride = STACK,
        .guard_size = 0,
        .paint_stacks = paint,
    };
    AF_ASSERT(fp_init(&pool, &config) == FP_OK);
}

/* ---- order ---------------------------------------------------------------------------- */

static int trace[4096];
static int trace_len;

static void *record_and_yield(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int round = 0; round < 3; round++) {
        trace[trace_len++] = id * 10 + round;
        fp_yield(&pool);
    }
    return NULL;
}

TEST(spawn_runs_in_fifo_order_and_yield_round_robins)
{
    pool_setup(SLOTS, false);
    trace_len = 0;
    for (int i = 1; i <= 3; i++)
        CHECK(fp_spawn(&pool, record_and_yield, (void *)(intptr_t)i));
    fp_run(&pool);
    int expected[] = {10, 20, 30, 11, 21, 31, 12, 22, 32};
    CHECK_EQ(trace_len, 9);
    for (int i = 0; i < 9; i++)
        CHECK_EQ(trace[i], expected[i]);
    CHECK_EQ(fp_live_tasks(&pool), 0);
}

static void *block_forever(void *arg)
{
    fp_block(&pool);
    return NULL;
}

TEST(full_pool_refuses_spawn_and_reuses_slots_with_new_generation)
{
    pool_setup(4, false);
    fp_task *t[4];
    for (int i = 0; i < 4; i++)
        CHECK((t[i] = fp_spawn(&pool, block_forever, NULL)) != NULL);
    CHECK(fp_spawn(&pool, block_forever, NULL) == NULL);
    fp_run(&pool);
    CHECK_EQ(fp_free_slots(&pool), 0);
    uint32_t gen = t[2]->generation;
    fp_wake(t[2], NULL);
    fp_run(&pool);
    CHECK_EQ(fp_free_slots(&pool), 1);
    fp_task *again = fp_spawn(&pool, block_forever, NULL);
    CHECK(again == t[2]);
    CHECK_EQ(again->generation, gen + 1);
}

static int spawned_done;

static void *count_done(void *arg)
{
    spawned_done++;
    return NULL;
}

TEST(thousands_of_tasks_through_a_small_pool)
{
    pool_setup(SLOTS, false);
    spawned_done = 0;
    for (int wave = 0; wave < 200; wave++) {
        while (fp_spawn(&pool, count_done, NULL))
            ;
        fp_run(&pool);
    }
    CHECK_EQ(spawned_done, 200 * SLOTS);
    CHECK_EQ(fp_get_stats(&pool)->spawns, 200 * SLOTS);
}

/* ---- block / wake --------------------------------------------------------------------- */

static fp_task *sleeper;
static intptr_t sleeper_sum;

static void *sleeper_sums_wakes(void *arg)
{
    for (int i = 0; i < 5; i++)
        sleeper_sum += (intptr_t)fp_block(&pool);
    return NULL;
}

TEST(block_returns_the_value_given_to_wake)
{
    pool_setup(SLOTS, false);
    sleeper_sum = 0;
    sleeper = fp_spawn(&pool, sleeper_sums_wakes, NULL);
    fp_run(&pool);
    for (int i = 1; i <= 5; i++) {
        CHECK_EQ(sleeper->state, FP_TASK_BLOCKED);
        fp_wake(sleeper, (void *)(intptr_t)i); /* from the root, as an I/O completion would */
        fp_run(&pool);
    }
    CHECK_EQ(sleeper_sum, 15);
    CHECK_EQ(fp_live_tasks(&pool), 0);
}

/* ---- semaphores ----------------------------------------------------------------------- */

static fp_sem items, spaces;
static int ring[4];
static int ring_head, ring_tail, consumed_sum;

static void *producer(void *arg)
{
    for (int i = 1; i <= 1000; i++) {
        fp_sem_wait(&pool, &spaces);
        ring[ring_tail++ % 4] = i;
        fp_sem_post(&items);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    for (int i = 0; i < 500; i++) {
        fp_sem_wait(&pool, &items);
        consumed_sum += ring[ring_head++ % 4];
        fp_sem_post(&spaces);
    }
    return NULL;
}

TEST(semaphores_bound_a_ring_between_producer_and_consumers)
{
    pool_setup(SLOTS, false);
    fp_sem_init(&items, 0);
    fp_sem_init(&spaces, 4);
    ring_head = ring_tail = consumed_sum = 0;
    fp_spawn(&pool, consumer, NULL);
    fp_spawn(&pool, consumer, NULL);
    fp_spawn(&pool, producer, NULL);
    fp_run(&pool);
    CHECK_EQ(consumed_sum, 1000 * 1001 / 2);
    CHECK_EQ(fp_live_tasks(&pool), 0);
    CHECK_EQ(spaces.count, 4);
    CHECK_EQ(items.count, 0);
}

/* ---- mutex: FIFO hand-off ------------------------------------------------------------- */

static fp_mutex mutex;
static int lock_order[64];
static int lock_order_len;

static void *lock_twice(void *arg)
{
    for (int i = 0; i < 2; i++) {
        fp_mutex_lock(&pool, &mutex);
        lock_order[lock_order_len++] = (int)(intptr_t)arg;
        fp_yield(&pool);
        fp_mutex_unlock(&pool, &mutex);
    }
    return NULL;
}

TEST(mutex_hands_off_in_fifo_order_so_nobody_starves)
{
    pool_setup(SLOTS, false);
    fp_mutex_init(&mutex);
    lock_order_len = 0;
    for (int i = 0; i < 3; i++)
        fp_spawn(&pool, lock_twice, (void *)(intptr_t)i);
    fp_run(&pool);
    /* Task 0 unlocks and immediately relocks: FIFO hand-off puts it behind 1 and 2. */
    int expected[] = {0, 1, 2, 0, 1, 2};
    CHECK_EQ(lock_order_len, 6);
    for (int i = 0; i < 6; i++)
        CHECK_EQ(lock_order[i], expected[i]);
    CHECK(mutex.owner == NULL);
}

/* ---- rwlock --------------------------------------------------------------------------- */

static fp_rwlock rwlock;
static int readers_inside, writers_inside, max_readers_inside;
static char rw_trace[64];
static int rw_trace_len;

static void *reader(void *arg)
{
    fp_rwlock_read_lock(&pool, &rwlock);
    rw_trace[rw_trace_len++] = 'r';
    readers_inside++;
    if (readers_inside > max_readers_inside)
        max_readers_inside = readers_inside;
    AF_ASSERT(writers_inside == 0);
    fp_yield(&pool);
    readers_inside--;
    fp_rwlock_read_unlock(&pool, &rwlock);
    return NULL;
}

static void *writer(void *arg)
{
    fp_rwlock_write_lock(&pool, &rwlock);
    rw_trace[rw_trace_len++] = 'W';
    writers_inside++;
    AF_ASSERT(readers_inside == 0 && writers_inside == 1);
    fp_yield(&pool);
    writers_inside--;
    fp_rwlock_write_unlock(&pool, &rwlock);
    return NULL;
}

TEST(rwlock_shares_readers_and_a_waiting_writer_blocks_new_readers)
{
    pool_setup(SLOTS, false);
    fp_rwlock_init(&rwlock);
    rw_trace_len = readers_inside = writers_inside = max_readers_inside = 0;
    fp_spawn(&pool, reader, NULL);
    fp_spawn(&pool, reader, NULL);
    fp_spawn(&pool, writer, NULL);
    fp_spawn(&pool, reader, NULL);
    fp_spawn(&pool, writer, NULL);
    fp_run(&pool);
    rw_trace[rw_trace_len] = 0;
    CHECK_MSG(strcmp(rw_trace, "rrWrW") == 0, "order %s", rw_trace);
    CHECK_EQ(max_readers_inside, 2);
    CHECK_EQ(fp_live_tasks(&pool), 0);
}

/* ---- random interleavings ------------------------------------------------------------- */

/* Tasks take the mutex, a semaphore and the rwlock in random patterns, yielding at random
 * points inside and outside critical sections; the invariants are checked at every step. */
static uint64_t rng;
static int in_mutex, sem_holders, rw_readers, rw_writers, finished_tasks;
static fp_sem sem3;
static bool invariant_broken;

static void check_invariants(void)
{
    if (in_mutex > 1 || sem_holders > 3 || rw_writers > 1 || (rw_writers && rw_readers))
        invariant_broken = true;
}

static void maybe_yield(void)
{
    int n = (int)test_rand_below(&rng, 3);
    while (n-- > 0)
        fp_yield(&pool);
}

static void *random_worker(void *arg)
{
    for (int step = 0; step < 200; step++) {
        switch (test_rand_below(&rng, 4)) {
        case 0:
            fp_mutex_lock(&pool, &mutex);
            in_mutex++;
            check_invariants();
            maybe_yield();
            in_mutex--;
            fp_mutex_unlock(&pool, &mutex);
            break;
        case 1:
            fp_sem_wait(&pool, &sem3);
            sem_holders++;
            check_invariants();
            maybe_yield();
            sem_holders--;
            fp_sem_post(&sem3);
            break;
        case 2:
            fp_rwlock_read_lock(&pool, &rwlock);
            rw_readers++;
            check_invariants();
            maybe_yield();
            rw_readers--;
            fp_rwlock_read_unlock(&pool, &rwlock);
            break;
        default:
            fp_rwlock_write_lock(&pool, &rwlock);
            rw_writers++;
            check_invariants();
            maybe_yield();
            rw_writers--;
            fp_rwlock_write_unlock(&pool, &rwlock);
            break;
        }
        maybe_yield();
    }
    finished_tasks++;
    return NULL;
}

TEST(random_interleavings_keep_every_lock_invariant)
{
    for (int round = 0; round < 20; round++) {
        pool_setup(SLOTS, false);
        rng = test_seed() + (uint64_t)round;
        fp_mutex_init(&mutex);
        fp_sem_init(&sem3, 3);
        fp_rwlock_init(&rwlock);
        in_mutex = sem_holders = rw_readers = rw_writers = finished_tasks = 0;
        invariant_broken = false;
        int n = 2 + (int)test_rand_below(&rng, SLOTS - 2);
        for (int i = 0; i < n; i++)
            fp_spawn(&pool, random_worker, NULL);
        fp_run(&pool);
        CHECK(!invariant_broken);
        CHECK_EQ(finished_tasks, n);
        CHECK_EQ(fp_live_tasks(&pool), 0);
    }
}

/* ---- stacks --------------------------------------------------------------------------- */

static int deep(int depth)
{
    volatile char pad[256];
    pad[0] = (char)depth;
    if (depth == 0)
        return pad[0];
    return deep(depth - 1) + pad[0];
}

static void *use_stack(void *arg)
{
    return (void *)(intptr_t)deep((int)(intptr_t)arg);
}

TEST(high_water_mark_grows_with_stack_use)
{
    pool_setup(SLOTS, true);
    CHECK(fp_spawn(&pool, use_stack, (void *)2));
    fp_run(&pool);
    size_t light_use = fp_get_stats(&pool)->stack_high_water;
    CHECK(fp_spawn(&pool, use_stack, (void *)60));
    fp_run(&pool);
    size_t heavy_use = fp_get_stats(&pool)->stack_high_water;
    CHECK_MSG(light_use > 0 && heavy_use > light_use + 50 * 256, "light %zu heavy %zu", light_use, heavy_use);
    CHECK(heavy_use < STACK);
}

/* ---- stacks from several areas --------------------------------------------------------- */

typedef struct stack_probe {
    uint32_t slot;
    uintptr_t frame;
} stack_probe;

static void *where_is_my_stack(void *arg)
{
    stack_probe *probe = arg;
    probe->slot = pool.current->index;
    probe->frame = (uintptr_t)__builtin_frame_address(0);
    return NULL;
}

TEST(slots_take_stacks_from_areas_in_order)
{
    /* Three areas with gaps (as a system maps guarded stacks), spread over the arena. */
    enum { SIZE = 8192, GAP = 4096 };
    fp_stack_area areas[3] = {
        {.base = arena, .stride = SIZE + GAP, .size = SIZE, .count = 2},
        {.base = arena + 65536, .stride = SIZE, .size = SIZE, .count = 3},
        {.base = arena + 262144, .stride = 3 * SIZE, .size = SIZE, .count = 4},
    };
    fp_config config = {.tasks = tasks, .slot_count = 8, .stack_areas = areas, .stack_area_count = 3};
    CHECK_EQ(fp_init(&pool, &config), FP_OK);
    stack_probe probes[9];
    for (int i = 0; i < 8; i++)
        CHECK(fp_spawn(&pool, where_is_my_stack, &probes[i]) != NULL);
    CHECK(fp_spawn(&pool, where_is_my_stack, &probes[8]) == NULL);
    fp_run(&pool);
    for (int i = 0; i < 8; i++) {
        uint32_t slot = probes[i].slot;
        int a = slot < 2 ? 0 : slot < 5 ? 1 : 2;
        uint32_t k = slot - (a == 0 ? 0 : a == 1 ? 2 : 5);
        uintptr_t low = (uintptr_t)areas[a].base + k * areas[a].stride;
        uintptr_t sp = probes[i].frame;
        CHECK_MSG(sp > low && sp < low + SIZE, "slot %u: stack at %#lx, not in [%#lx, %#lx)", slot,
                  (unsigned long)sp, (unsigned long)low, (unsigned long)(low + SIZE));
        CHECK_EQ(fp_slot_stack_size(&pool, slot), SIZE);
    }
}

TEST(stack_areas_that_cannot_work_are_refused)
{
    fp_stack_area two[2] = {
        {.base = arena, .stride = 4096, .size = 4096, .count = 2},
        {.base = arena + 65536, .stride = 4096, .size = 4096, .count = 1},
    };
    fp_config config = {.tasks = tasks, .slot_count = 4, .stack_areas = two, .stack_area_count = 2};
    CHECK_EQ(fp_init(&pool, &config), FP_ERR_CONFIG); /* 3 stacks for 4 slots */
    config.slot_count = 3;
    CHECK_EQ(fp_init(&pool, &config), FP_OK);
    config.stack_area_count = FP_MAX_STACK_AREAS + 1;
    CHECK_EQ(fp_init(&pool, &config), FP_ERR_CONFIG);
    config.stack_area_count = 2;
    two[0].stride = 2048; /* stacks overlapping */
    CHECK_EQ(fp_init(&pool, &config), FP_ERR_CONFIG);
    two[0].stride = 4096;
    two[1].size = FF_MIN_MEMORY - 16;
    CHECK_EQ(fp_init(&pool, &config), FP_ERR_CONFIG);
}

TEST(slot_high_water_keeps_the_deepest_run)
{
    pool_setup(1, true);
    CHECK(fp_spawn(&pool, use_stack, (void *)40) != NULL);
    fp_run(&pool);
    size_t deep_use = fp_slot_stack_high_water(&pool, 0);
    CHECK(fp_spawn(&pool, use_stack, (void *)1) != NULL);
    fp_run(&pool);
    CHECK_MSG(deep_use > 40 * 256, "deep run used %zu", deep_use);
    CHECK_EQ(fp_slot_stack_high_water(&pool, 0), deep_use);
    CHECK_EQ(fp_slot_stack_size(&pool, 0), STACK);
}
