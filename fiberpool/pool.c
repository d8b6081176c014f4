/* FiberPool scheduling: slots, the ready queue, spawn, run, yield, block, wake, join. */
#include "fiberpool/fiberpool.h"

static fp_task *slot_pop_free(fp_pool *pool)
{
    fp_task *task = pool->free_list;
    if (task)
        pool->free_list = task->next;
    return task;
}

static void slot_release(fp_pool *pool, fp_task *task)
{
    task->state = FP_TASK_FREE;
    task->generation++;
    task->next = pool->free_list;
    pool->free_list = task;
    pool->live--;
}

/* The stack areas a config describes: its own list, or its single arena as one area. */
static uint32_t config_areas(const fp_config *config, fp_stack_area *areas)
{
    if (config->stack_area_count > 0) {
        if (!config->stack_areas || config->stack_area_count > FP_MAX_STACK_AREAS)
            return 0;
        for (uint32_t i = 0; i < config->stack_area_count; i++)
            areas[i] = config->stack_areas[i];
        return config->stack_area_count;
    }
    if (!config->stack_arena || config->slot_stride <= config->guard_size)
        return 0;
    areas[0] = (fp_stack_area){
        .base = (uint8_t *)config->stack_arena + config->guard_size,
        .stride = config->slot_stride,
        .size = config->slot_stride - config->guard_size,
        .count = config->slot_count,
    };
    return 1;
}

fp_status fp_init(fp_pool *pool, const fp_config *config)
{
    fp_stack_area areas[FP_MAX_STACK_AREAS];
    uint32_t area_count = config_areas(config, areas);
    if (!config->tasks || config->slot_count == 0 || area_count == 0)
        return FP_ERR_CONFIG;
    uint64_t stacks = 0;
    for (uint32_t a = 0; a < area_count; a++) {
        if (!areas[a].base || areas[a].size < FF_MIN_MEMORY || (areas[a].count > 1 && areas[a].stride < areas[a].size))
            return FP_ERR_CONFIG;
        stacks += areas[a].count;
    }
    if (stacks < config->slot_count)
        return FP_ERR_CONFIG;

    af_memset(pool, 0, sizeof(*pool));
    pool->tasks = config->tasks;
    pool->slot_count = config->slot_count;
    pool->paint_stacks = config->paint_stacks;
    fp_queue_init(&pool->ready);

    uint32_t area = 0, within = 0;
    for (uint32_t i = 0; i < config->slot_count; i++) {
        while (within == areas[area].count) {
            area++;
            within = 0;
        }
        fp_task *task = &pool->tasks[i];
        af_memset(task, 0, sizeof(*task));
        task->stack = (uint8_t *)areas[area].base + (size_t)within * areas[area].stride;
        task->stack_size = areas[area].size;
        within++;
    }
    for (uint32_t i = config->slot_count; i-- > 0;) {
        fp_task *task = &pool->tasks[i];
        task->pool = pool;
        task->index = i;
        task->state = FP_TASK_FREE;
        task->next = pool->free_list;
        pool->free_list = task;
    }
    ff_init_thread(&pool->root_fiber);
    pool->root = &pool->root_fiber;
    return FP_OK;
}

/* Hand the CPU to the next ready task, or to the root when none is. The caller has
 * already recorded its own state (ready, blocked, or gone). The wake value travels as the
 * switch's argument, so callers end in a tail call: the resumed context then jumps straight
 * back into its caller's code, and no `ret` runs against the other context's return-stack
 * predictions (each such ret would mispredict). */
static inline void *switch_to_next(fp_pool *pool)
{
    fp_task *next = fp_queue_pop(&pool->ready);
    pool->stats.switches++;
    if (next) {
        next->state = FP_TASK_RUNNING;
        pool->current = next;
        return ff_switch(next->fiber, next->wake_value);
    }
    pool->current = NULL;
    return ff_switch(pool->root, NULL);
}

static void record_stack_use(fp_pool *pool, fp_task *task)
{
    if (pool->paint_stacks) {
        size_t used = ff_stack_high_water(task->fiber);
        if (used > task->stack_high_water)
            task->stack_high_water = used;
        if (used > pool->stats.stack_high_water)
            pool->stats.stack_high_water = used;
    }
}

/* Every task starts here. It never returns: a finished task switches straight on. */
static void *task_main(void *unused)
{
    fp_task *task = ff_current()->user;
    fp_pool *pool = task->pool;
    task->entry(task->arg);

    AF_ASSERT(ff_stack_intact(task->fiber));
    record_stack_use(pool, task);
    slot_release(pool, task);
    switch_to_next(pool);
    __builtin_trap();
}

fp_task *fp_spawn(fp_pool *pool, fp_entry entry, void *arg)
{
    fp_task *task = slot_pop_free(pool);
    if (!task)
        return NULL;
    task->fiber = ff_create(task->stack, task->stack_size, task_main);
    AF_ASSERT(task->fiber != NULL);
    task->fiber->user = task;
    if (pool->paint_stacks)
        ff_paint_stack(task->fiber);
    task->entry = entry;
    task->arg = arg;
    task->wake_value = NULL;
    task->wait_tag = 0;
    task->user = NULL;
    task->state = FP_TASK_READY;
    pool->live++;
    pool->stats.spawns++;
    fp_queue_push(&pool->ready, task);
    return task;
}

uint64_t fp_run(fp_pool *pool)
{
    AF_ASSERT(pool->current == NULL);
    uint64_t before = pool->stats.switches;
    fp_task *next;
    while ((next = fp_queue_pop(&pool->ready)) != NULL) {
        next->state = FP_TASK_RUNNING;
        pool->current = next;
        pool->stats.switches++;
        ff_switch(next->fiber, next->wake_value);
    }
    return pool->stats.switches - before;
}

void fp_yield(fp_pool *pool)
{
    fp_task *self = pool->current;
    AF_ASSERT(self != NULL);
    pool->stats.yields++;
    if (fp_queue_empty(&pool->ready))
        return;
    self->state = FP_TASK_READY;
    self->wake_value = NULL;
    fp_queue_push(&pool->ready, self);
    switch_to_next(pool);
}

void *fp_block(fp_pool *pool)
{
    fp_task *self = pool->current;
    AF_ASSERT(self != NULL);
    self->state = FP_TASK_BLOCKED;
    pool->stats.blocks++;
    return switch_to_next(pool);
}

void fp_wake(fp_task *task, void *value)
{
    AF_ASSERT(task->state == FP_TASK_BLOCKED);
    task->state = FP_TASK_READY;
    task->wake_value = value;
    task->pool->stats.wakes++;
    fp_queue_push(&task->pool->ready, task);
}

size_t fp_slot_stack_high_water(const fp_pool *pool, uint32_t slot)
{
    const fp_task *task = &pool->tasks[slot];
    size_t most = task->stack_high_water;
    if (pool->paint_stacks && task->state != FP_TASK_FREE) {
        size_t now = ff_stack_high_water(task->fiber);
        if (now > most)
            most = now;
    }
    return most;
}
