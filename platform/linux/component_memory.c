/* Linux implementations of the component services that need the OS: wall-clock time and
 * fiber stacks with guard pages. */
#include "platform/component.h"
#include "platform/linux/stack_alloc.h"

#include <time.h>

int64_t component_wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

void *component_fiber_stacks(uint32_t slots, size_t stack_size, size_t *stride, size_t *guard)
{
    static lx_stack_arena stacks;
    if (stacks.arena)
        lx_stack_arena_destroy(&stacks);
    if (!lx_stack_arena_create(&stacks, slots, stack_size))
        return NULL;
    *stride = stacks.slot_stride;
    *guard = stacks.guard_size;
    return stacks.arena;
}
