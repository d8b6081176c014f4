/* Fiber stacks for FiberPool on Linux: one mmap'd arena, a guard page at the low end of
 * every slot (a guard region, or PROT_NONE before Linux 6.13), so a stack overflow faults
 * (SIGSEGV) instead of running into the neighbouring slot. The fields match fp_config:
 * slot i's usable memory is [arena + i * slot_stride + guard_size, arena + (i + 1) * slot_stride).
 */
#ifndef ASYNCFAT_PLATFORM_LINUX_STACK_ALLOC_H
#define ASYNCFAT_PLATFORM_LINUX_STACK_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

typedef struct lx_stack_arena {
    void *arena;            /* fp_config.stack_arena */
    size_t slot_stride;     /* fp_config.slot_stride: guard + usable stack, page multiple */
    size_t guard_size;      /* fp_config.guard_size: one page */
    unsigned slot_count;
    size_t total;           /* bytes mapped */
} lx_stack_arena;

/* Map slot_count slots of at least stack_size usable bytes each (rounded up to pages).
 * Returns false if the mapping or protection fails. */
bool lx_stack_arena_create(lx_stack_arena *stacks, unsigned slot_count, size_t stack_size);
void lx_stack_arena_destroy(lx_stack_arena *stacks);

#endif
