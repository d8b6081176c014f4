/* Fiber stacks from the memory the system maps for them.
 *
 * In a LionsOS system: the FAT PD's four worker stacks, whose addresses the system writes
 * into the setvar symbols below, each MK_WORKER_STACK_BYTES, cut into as many fiber stacks
 * as fit. LionsOS's generator maps them at 0xA0000000, 0xB0000000, 0xC0000000 and
 * 0xD0000000, so the four areas have unmapped gaps between them; the fibers inside one area
 * are separated by FiberFlow's canaries only (checked at every switch in debug builds).
 *
 * Where .asyncfat_config names stack areas, those are used instead: sel4/gen_system.py
 * maps every fiber's stack as its own region with an unmapped gap below it, so an overflow
 * faults at once (the Microkit monitor reports the fault and its address).
 */
#include "platform/component.h"
#include "platform/microkit/microkit_pd.h"

/* setvar_vaddr symbols (LionsOS's names); 0 where the system maps no such stack. */
uintptr_t worker_thread_stack_one;
uintptr_t worker_thread_stack_two;
uintptr_t worker_thread_stack_three;
uintptr_t worker_thread_stack_four;

static uint32_t add_area(fp_stack_area *areas, uint32_t *area_count, uint32_t max_areas, void *base, size_t stride,
                         size_t size, uint64_t count, uint32_t wanted)
{
    if (!base || count == 0 || *area_count == max_areas || wanted == 0)
        return 0;
    uint32_t n = (uint32_t)(count < wanted ? count : wanted);
    areas[(*area_count)++] = (fp_stack_area){.base = base, .stride = stride, .size = size, .count = n};
    return n;
}

uint32_t component_fiber_stacks(uint32_t slots, size_t stack_size, fp_stack_area *areas, uint32_t max_areas,
                                uint32_t *area_count)
{
    uint32_t given = 0;
    *area_count = 0;
    if (mk_asyncfat_config_valid() && asyncfat_config.stack_area_count > 0) {
        uint32_t n = asyncfat_config.stack_area_count;
        for (uint32_t i = 0; i < n && i < MK_ASYNCFAT_MAX_STACK_AREAS; i++) {
            const mk_stack_area *a = &asyncfat_config.stacks[i];
            if (a->size < stack_size || (a->count > 1 && a->stride < a->size)) {
                mk_log("ERROR: .asyncfat_config: a stack area is smaller than a fiber stack, or overlaps itself");
                continue;
            }
            given += add_area(areas, area_count, max_areas, a->vaddr, a->stride, a->size, a->count, slots - given);
        }
        return given;
    }
    uintptr_t worker_stacks[4] = {worker_thread_stack_one, worker_thread_stack_two, worker_thread_stack_three,
                                  worker_thread_stack_four};
    size_t per_area = MK_WORKER_STACK_BYTES / stack_size;
    for (uint32_t i = 0; i < 4; i++)
        given += add_area(areas, area_count, max_areas, (void *)worker_stacks[i], stack_size, stack_size, per_area,
                          slots - given);
    if (given == 0)
        mk_log("ERROR: no fiber stacks: worker_thread_stack_one.._four are not set (setvar_vaddr)");
    return given;
}
