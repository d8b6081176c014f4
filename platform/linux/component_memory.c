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

uint32_t component_fiber_stacks(uint32_t slots, size_t stack_size, fp_stack_area *areas, uint32_t max_areas,
                                uint32_t *area_count)
{
    static lx_stack_arena stacks;
    if (stacks.arena)
        lx_stack_arena_destroy(&stacks);
    if (max_areas == 0 || !lx_stack_arena_create(&stacks, slots, stack_size))
        return 0;
    areas[0] = (fp_stack_area){
        .base = (uint8_t *)stacks.arena + stacks.guard_size,
        .stride = stacks.slot_stride,
        .size = stacks.slot_stride - stacks.guard_size,
        .count = slots,
    };
    *area_count = 1;
    return slots;
}
