/* FiberFlow: fiber creation, the start/exit path, canary and stack-use checks. The switch
 * itself is switch_<arch>.S; the frame it pops is described in frame.h. */
#include "fiberflow/fiberflow.h"
#include "fiberflow/frame.h"

/* Defined next to the switch that updates it; hidden, so reached PC-relative, without a GOT. */
extern ff_fiber *ff_current_fiber __attribute__((visibility("hidden")));

static ff_overflow_handler overflow_handler;

#define FF_PAINT ((uintptr_t)0xF1BEF1BEF1BEF1BEull)

/* Stack words may sit in redzones ASan poisoned for frames that are still live (or were
 * left by a fiber that never returned): the checks below read them on purpose. */
#define FF_NO_ASAN __attribute__((no_sanitize_address))

#if defined(AF_ASAN)
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old, size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);

/* The fiber being left, so the one arriving can record the left stack's bounds (the only
 * way to learn the root's). */
static ff_fiber *asan_switch_from;
#endif

#if FF_SWITCH_WRAPPED
void *ff_switch_asm(ff_fiber *to, void *arg);
#endif
__attribute__((visibility("hidden"))) void ff_trampoline(void);
static AF_NORETURN void ff_fiber_start(void *arg);

void ff_init_thread(ff_fiber *root)
{
    af_memset(root, 0, sizeof *root);
    ff_current_fiber = root;
}

ff_fiber *ff_current(void) { return ff_current_fiber; }

ff_fiber *ff_create(void *memory, size_t size, ff_entry entry)
{
    uintptr_t start = (uintptr_t)memory;
    if (memory == NULL || size < FF_MIN_MEMORY || size > UINTPTR_MAX - start)
        return NULL;
    uintptr_t block = af_align_down(start + size - sizeof(ff_fiber), alignof(ff_fiber));
    uintptr_t stack_high = af_align_down(block, 16);
    uintptr_t stack_low = af_align_up(start, sizeof(uintptr_t));
    if (stack_high < stack_low || stack_high - stack_low < FF_FRAME_SIZE + 256)
        return NULL;

#if defined(AF_ASAN)
    __asan_unpoison_memory_region(memory, size);
#endif
    ff_fiber *fiber = (ff_fiber *)block;
    af_memset(fiber, 0, sizeof *fiber);
    fiber->entry = entry;
    fiber->return_to = ff_current_fiber;
    fiber->stack_low = stack_low;
    fiber->stack_high = stack_high;
#if defined(AF_ASAN)
    fiber->asan_stack_bottom = (const void *)stack_low;
    fiber->asan_stack_size = stack_high - stack_low;
#endif
    *(uintptr_t *)stack_low = FF_CANARY;

    uintptr_t *frame = (uintptr_t *)(stack_high - FF_FRAME_SIZE);
    af_memset(frame, 0, FF_FRAME_SIZE);
    frame[FF_FRAME_RESUME / sizeof(uintptr_t)] = (uintptr_t)ff_trampoline;
    frame[FF_FRAME_START / sizeof(uintptr_t)] = (uintptr_t)ff_fiber_start;
#if FF_SAVE_FPU_CONTROL && defined(FF_FRAME_FPU)
    frame[FF_FRAME_FPU / sizeof(uintptr_t)] = (uintptr_t)FF_FPU_DEFAULT;
#endif
    fiber->saved_sp = frame;
    return fiber;
}

FF_NO_ASAN bool ff_stack_intact(const ff_fiber *fiber)
{
    return fiber->stack_low == 0 || *(const volatile uintptr_t *)fiber->stack_low == FF_CANARY;
}

void ff_set_overflow_handler(ff_overflow_handler handler) { overflow_handler = handler; }

static void check_canary(ff_fiber *fiber)
{
    if (AF_LIKELY(ff_stack_intact(fiber)))
        return;
    if (overflow_handler)
        overflow_handler(fiber);
    __builtin_trap();
}

void ff_paint_stack(ff_fiber *fiber)
{
    uintptr_t *word = (uintptr_t *)fiber->stack_low + 1;
    uintptr_t *end = fiber->saved_sp;
    while (word < end)
        *word++ = FF_PAINT;
}

FF_NO_ASAN size_t ff_stack_high_water(const ff_fiber *fiber)
{
    const volatile uintptr_t *word = (const uintptr_t *)fiber->stack_low + 1;
    const volatile uintptr_t *end = (const uintptr_t *)fiber->stack_high;
    while (word < end && *word == FF_PAINT)
        word++;
    return fiber->stack_high - (uintptr_t)word;
}

#if defined(AF_ASAN)
static void asan_leave(ff_fiber *from, ff_fiber *to, bool for_good)
{
    asan_switch_from = from;
    __sanitizer_start_switch_fiber(for_good ? NULL : &from->asan_fake_stack,
                                   to->asan_stack_bottom, to->asan_stack_size);
}

static void asan_arrive(ff_fiber *self)
{
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(self->asan_fake_stack, &bottom, &size);
    asan_switch_from->asan_stack_bottom = bottom;
    asan_switch_from->asan_stack_size = size;
}
#endif

#if FF_SWITCH_WRAPPED
void *ff_switch(ff_fiber *to, void *arg)
{
    ff_fiber *self = ff_current_fiber;
#if defined(AF_DEBUG)
    check_canary(self);
#endif
#if defined(AF_ASAN)
    asan_leave(self, to, false);
#endif
    void *result = ff_switch_asm(to, arg);
#if defined(AF_ASAN)
    asan_arrive(self);
#endif
    return result;
}
#endif

/* Entered from ff_trampoline on a new fiber's first resume; never returns. */
static void ff_fiber_start(void *arg)
{
    ff_fiber *self = ff_current_fiber;
#if defined(AF_ASAN)
    asan_arrive(self);
#endif
    self->result = self->entry(arg);
    self->finished = true;
    check_canary(self);
#if defined(AF_ASAN)
    asan_leave(self, self->return_to, true);
    ff_switch_asm(self->return_to, self->result);
#else
    ff_switch(self->return_to, self->result);
#endif
    __builtin_trap();
}
