/* FiberPool: a fixed set of fiber slots, a FIFO ready queue, and blocking primitives.
 *
 * The pool owns N task slots and one stack per slot, all from caller-provided memory (no
 * malloc). The root context (the thread that calls fp_run, typically the event loop) is not
 * a task: it runs the pool until no task is ready, then gets control back.
 *
 * Scheduling is cooperative and FIFO: a task runs until it yields, blocks or finishes, and
 * control then passes straight to the next ready task (one switch), or back to the root
 * when none is ready. Every O(1): spawn (free list), wake, yield, block.
 *
 * Functions marked "blocks" may switch away; they must be called from a task, never from
 * the root. fp_wake, fp_sem_post, fp_mutex_unlock and fp_spawn never block and may be
 * called from the root or from a task. A task blocks on at most one thing at a time.
 */
#ifndef ASYNCFAT_FIBERPOOL_H
#define ASYNCFAT_FIBERPOOL_H

#include "base/base.h"
#include "fiberflow/fiberflow.h"

typedef struct fp_pool fp_pool;
typedef struct fp_task fp_task;
typedef void *(*fp_entry)(void *arg);

/* An intrusive FIFO of tasks: ready queue, wait queues. */
typedef struct fp_queue {
    fp_task *head;
    fp_task *tail;
} fp_queue;

typedef enum fp_task_state {
    FP_TASK_FREE,
    FP_TASK_READY,
    FP_TASK_RUNNING,
    FP_TASK_BLOCKED,
} fp_task_state;

struct fp_task {
    ff_fiber *fiber;
    fp_pool *pool;
    fp_task *next;          /* link in the ready queue, a wait queue, or the free list */
    fp_entry entry;
    void *arg;
    void *wake_value;       /* what fp_block returns */
    fp_task_state state;
    uint32_t index;         /* slot number */
    uint32_t generation;    /* bumped each time the slot is reused */
    uintptr_t wait_tag;     /* set by a blocking primitive: what the task waits for */
    void *user;             /* the spawner's per-task pointer */
    uint8_t *stack;         /* the slot's memory for its fiber */
    size_t stack_size;
    size_t stack_high_water; /* most stack any finished task of this slot used (painted pools) */
};

/* A run of equal stacks: stack k is [base + k * stride, base + k * stride + size), k < count.
 * Where the system leaves the memory between stacks unmapped (stride > size), each gap is a
 * guard: an overflow faults instead of running into the stack below. */
typedef struct fp_stack_area {
    void *base;
    size_t stride;
    size_t size;
    uint32_t count;
} fp_stack_area;

#define FP_MAX_STACK_AREAS 8u

typedef struct fp_config {
    fp_task *tasks;         /* slot_count task records */
    uint32_t slot_count;
    /* Slot i's memory is [stack_arena + i * slot_stride + guard_size, + slot_stride).
     * guard_size bytes at the low end of each slot are left untouched (Linux maps them
     * PROT_NONE); freestanding users pass 0. */
    void *stack_arena;
    size_t slot_stride;
    size_t guard_size;
    /* Or stacks from several areas (memory the system maps in separate places): when
     * stack_area_count > 0, slot i takes the i-th stack counting through the areas in
     * order, and stack_arena is ignored. At most FP_MAX_STACK_AREAS areas. */
    const fp_stack_area *stack_areas;
    uint32_t stack_area_count;
    bool paint_stacks;      /* measure stack high-water marks (costs a stack fill per spawn) */
} fp_config;

typedef struct fp_stats {
    uint64_t switches;
    uint64_t spawns;
    uint64_t blocks;
    uint64_t wakes;
    uint64_t yields;
    size_t stack_high_water; /* largest over finished tasks, in bytes (painted pools only) */
} fp_stats;

struct fp_pool {
    fp_task *tasks;
    uint32_t slot_count;
    uint32_t live;          /* tasks not FREE */
    fp_task *free_list;
    fp_queue ready;
    fp_task *current;       /* the running task, NULL in the root */
    ff_fiber root_fiber;
    ff_fiber *root;
    bool paint_stacks;
    fp_stats stats;
};

typedef enum fp_status {
    FP_OK = 0,
    FP_ERR_FULL,        /* no free slot */
    FP_ERR_CONFIG,      /* a config value that cannot work (too small a stack, no slots) */
} fp_status;

/* Set up the pool. Also makes the calling context the pool's root fiber. */
fp_status fp_init(fp_pool *pool, const fp_config *config);

/* Queue a new task running entry(arg). Returns NULL when every slot is in use. The slot
 * is free again when entry returns (its result is not kept). */
fp_task *fp_spawn(fp_pool *pool, fp_entry entry, void *arg);

/* From the root: run ready tasks until none is ready. Returns the number of switches
 * into tasks it made (0: nothing was ready). */
uint64_t fp_run(fp_pool *pool);

static inline uint32_t fp_live_tasks(const fp_pool *pool) { return pool->live; }
static inline uint32_t fp_free_slots(const fp_pool *pool) { return pool->slot_count - pool->live; }
static inline uint32_t fp_slot_count(const fp_pool *pool) { return pool->slot_count; }

/* Blocks: go to the back of the ready queue. */
void fp_yield(fp_pool *pool);

/* Blocks until someone calls fp_wake on this task; returns the value passed to fp_wake.
 * The caller must have recorded where it waits (a queue, an I/O tag) before calling. */
void *fp_block(fp_pool *pool);
/* Make a blocked task ready; `value` is what its fp_block returns. */
void fp_wake(fp_task *task, void *value);

/* Wait queues: FIFO. */
static inline void fp_queue_init(fp_queue *q) { q->head = q->tail = NULL; }
static inline bool fp_queue_empty(const fp_queue *q) { return q->head == NULL; }
static inline void fp_queue_push(fp_queue *q, fp_task *task)
{
    task->next = NULL;
    if (q->tail)
        q->tail->next = task;
    else
        q->head = task;
    q->tail = task;
}
static inline fp_task *fp_queue_pop(fp_queue *q)
{
    fp_task *task = q->head;
    if (task) {
        q->head = task->next;
        if (!q->head)
            q->tail = NULL;
        task->next = NULL;
    }
    return task;
}
/* Blocks: enqueue the current task on q and block; returns the wake value. */
void *fp_wait(fp_pool *pool, fp_queue *q);
/* Wake the oldest waiter (returns it, or NULL if none) / every waiter (returns the count). */
fp_task *fp_wake_one(fp_queue *q, void *value);
uint32_t fp_wake_all(fp_queue *q, void *value);

/* Counting semaphore. */
typedef struct fp_sem {
    uint64_t count;
    fp_queue waiters;
} fp_sem;
void fp_sem_init(fp_sem *sem, uint64_t count);
void fp_sem_wait(fp_pool *pool, fp_sem *sem); /* blocks */
void fp_sem_post(fp_sem *sem);

/* Mutex with FIFO hand-off: unlock passes ownership straight to the oldest waiter, so a
 * task that unlocks and relocks cannot starve the others. Not recursive. */
typedef struct fp_mutex {
    fp_task *owner;
    fp_queue waiters;
} fp_mutex;
void fp_mutex_init(fp_mutex *mutex);
void fp_mutex_lock(fp_pool *pool, fp_mutex *mutex); /* blocks */
void fp_mutex_unlock(fp_pool *pool, fp_mutex *mutex);

/* Reader-writer lock, FIFO: a writer waiting stops new readers from jumping ahead of it. */
typedef struct fp_rwlock {
    uint32_t readers;
    fp_task *writer;
    fp_queue waiters;       /* each waiter's wait_tag says whether it wants to write */
} fp_rwlock;
void fp_rwlock_init(fp_rwlock *lock);
void fp_rwlock_read_lock(fp_pool *pool, fp_rwlock *lock);  /* blocks */
void fp_rwlock_read_unlock(fp_pool *pool, fp_rwlock *lock);
void fp_rwlock_write_lock(fp_pool *pool, fp_rwlock *lock); /* blocks */
void fp_rwlock_write_unlock(fp_pool *pool, fp_rwlock *lock);

/* The most stack any task run in `slot` has used so far, the running one included (painted
 * pools only), and the slot's stack size. */
size_t fp_slot_stack_high_water(const fp_pool *pool, uint32_t slot);
static inline size_t fp_slot_stack_size(const fp_pool *pool, uint32_t slot) { return pool->tasks[slot].stack_size; }
/* The pool's counters. */
static inline const fp_stats *fp_get_stats(const fp_pool *pool) { return &pool->stats; }

#endif
