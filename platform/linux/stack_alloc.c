/* Guarded fiber stacks (see stack_alloc.h). */
#include "platform/linux/stack_alloc.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* linux/mman.h, 6.13; older C libraries lack the name */
#endif

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
    for (unsigned i = 0; i < slot_count; i++) {
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
