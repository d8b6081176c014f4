/* Guarded fiber stacks (see stack_alloc.h). */
#include "platform/linux/stack_alloc.h"

#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* linux/mman.h, 6.13; older C libraries lack the name */
#endif
#ifndef PIDFD_SELF_THREAD_GROUP
#define PIDFD_SELF_THREAD_GROUP -10001 /* linux/pidfd.h, 6.15: this process, no pidfd to open */
#endif

/* Every slot's guard in one system call per batch (process_madvise on this process takes
 * any advice since Linux 6.13): a pool of 64 stacks took 64 calls at every command's
 * start. False where the kernel refuses it; the caller then guards slot by slot. */
static bool guard_all(char *arena, size_t stride, size_t page, unsigned slot_count)
{
    enum { BATCH = 64 };
    struct iovec iov[BATCH];
    for (unsigned first = 0; first < slot_count; first += BATCH) {
        unsigned n = slot_count - first < BATCH ? slot_count - first : BATCH;
        for (unsigned i = 0; i < n; i++)
            iov[i] = (struct iovec){arena + (size_t)(first + i) * stride, page};
        if (syscall(SYS_process_madvise, PIDFD_SELF_THREAD_GROUP, iov, (size_t)n, MADV_GUARD_INSTALL, 0u) !=
            (long)((size_t)n * page))
            return false;
    }
    return true;
}

bool lx_stack_arena_create(lx_stack_arena *stacks, unsigned slot_count, size_t stack_size)
{
    memset(stacks, 0, sizeof *stacks);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (slot_count == 0 || stack_size == 0 || stack_size > ((size_t)1 << 40))
        return false;
    size_t stride = page + (stack_size + page - 1) / page * page;
    if (stride > ((size_t)1 << 46) / slot_count)
        return false;
    size_t total = stride * slot_count;
    /* MAP_NORESERVE: untouched stack pages cost nothing */
    void *arena = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED)
        return false;
    bool guarded = guard_all(arena, stride, page, slot_count);
    for (unsigned i = 0; !guarded && i < slot_count; i++) {
        char *guard = (char *)arena + (size_t)i * stride;
        /* A guard region (Linux 6.13+) faults like PROT_NONE but leaves the mapping whole;
         * mprotect splits it into two VMAs per slot, which costs at start-up and exit. */
        if (madvise(guard, page, MADV_GUARD_INSTALL) != 0 && mprotect(guard, page, PROT_NONE) != 0) {
            munmap(arena, total);
            return false;
        }
    }
    stacks->arena = arena;
    stacks->slot_stride = stride;
    stacks->guard_size = page;
    stacks->slot_count = slot_count;
    stacks->total = total;
    return true;
}

void lx_stack_arena_destroy(lx_stack_arena *stacks)
{
    if (stacks->arena)
        munmap(stacks->arena, stacks->total);
    memset(stacks, 0, sizeof *stacks);
}
