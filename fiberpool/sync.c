/* FiberPool blocking primitives: wait queues, semaphores, mutexes, reader-writer locks.
 * Every release hands ownership directly to the task it wakes, so a woken task never has
 * to re-check and nobody can barge in between the wake and the moment it runs. */
#include "fiberpool/fiberpool.h"

enum { WANTS_READ = 1, WANTS_WRITE = 2 };

void *fp_wait(fp_pool *pool, fp_queue *q)
{
    AF_ASSERT(pool->current != NULL);
    fp_queue_push(q, pool->current);
    return fp_block(pool);
}

fp_task *fp_wake_one(fp_queue *q, void *value)
{
    fp_task *task = fp_queue_pop(q);
    if (task)
        fp_wake(task, value);
    return task;
}

uint32_t fp_wake_all(fp_queue *q, void *value)
{
    uint32_t n = 0;
    while (fp_wake_one(q, value))
        n++;
    return n;
}

void fp_sem_init(fp_sem *sem, uint64_t count)
{
    sem->count = count;
    fp_queue_init(&sem->waiters);
}

void fp_sem_wait(fp_pool *pool, fp_sem *sem)
{
    if (sem->count > 0) {
        sem->count--;
        return;
    }
    fp_wait(pool, &sem->waiters);
}

void fp_sem_post(fp_sem *sem)
{
    if (!fp_wake_one(&sem->waiters, NULL))
        sem->count++;
}

void fp_mutex_init(fp_mutex *mutex)
{
    mutex->owner = NULL;
    fp_queue_init(&mutex->waiters);
}

void fp_mutex_lock(fp_pool *pool, fp_mutex *mutex)
{
    fp_task *self = pool->current;
    AF_ASSERT(self != NULL && mutex->owner != self);
    if (mutex->owner == NULL) {
        mutex->owner = self;
        return;
    }
    fp_wait(pool, &mutex->waiters);
    AF_ASSERT(mutex->owner == self);
}

void fp_mutex_unlock(fp_pool *pool, fp_mutex *mutex)
{
    AF_ASSERT(mutex->owner == pool->current);
    mutex->owner = fp_queue_pop(&mutex->waiters);
    if (mutex->owner)
        fp_wake(mutex->owner, NULL);
}

void fp_rwlock_init(fp_rwlock *lock)
{
    lock->readers = 0;
    lock->writer = NULL;
    fp_queue_init(&lock->waiters);
}

/* Admit waiters from the front, in order: a run of readers, or one writer. */
static void rwlock_grant(fp_rwlock *lock)
{
    fp_task *next;
    while ((next = lock->waiters.head) != NULL && lock->writer == NULL) {
        if (next->wait_tag == WANTS_WRITE) {
            if (lock->readers > 0)
                return;
            lock->writer = fp_queue_pop(&lock->waiters);
        } else {
            fp_queue_pop(&lock->waiters);
            lock->readers++;
        }
        fp_wake(next, NULL);
    }
}

void fp_rwlock_read_lock(fp_pool *pool, fp_rwlock *lock)
{
    fp_task *self = pool->current;
    AF_ASSERT(self != NULL && lock->writer != self);
    if (lock->writer == NULL && fp_queue_empty(&lock->waiters)) {
        lock->readers++;
        return;
    }
    self->wait_tag = WANTS_READ;
    fp_wait(pool, &lock->waiters);
}

void fp_rwlock_read_unlock(fp_pool *pool, fp_rwlock *lock)
{
    AF_ASSERT(lock->readers > 0 && lock->writer == NULL);
    if (--lock->readers == 0)
        rwlock_grant(lock);
}

void fp_rwlock_write_lock(fp_pool *pool, fp_rwlock *lock)
{
    fp_task *self = pool->current;
    AF_ASSERT(self != NULL && lock->writer != self);
    if (lock->writer == NULL && lock->readers == 0 && fp_queue_empty(&lock->waiters)) {
        lock->writer = self;
        return;
    }
    self->wait_tag = WANTS_WRITE;
    fp_wait(pool, &lock->waiters);
    AF_ASSERT(lock->writer == self);
}

void fp_rwlock_write_unlock(fp_pool *pool, fp_rwlock *lock)
{
    AF_ASSERT(lock->writer == pool->current);
    lock->writer = NULL;
    rwlock_grant(lock);
}
