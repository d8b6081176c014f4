/* FiberFlow: stackful coroutines with a hand-written context switch.
 *
 * A fiber lives entirely inside caller-provided memory of any size and alignment: its
 * control block at the top, its stack growing down from just below it (16-byte aligned),
 * a canary word at the far (low) end. An overflow runs off the low end, away from the
 * control block, and is caught by the canary (or by a guard page the platform maps below).
 *
 * One thread: ff_current() is a plain global. The thread's original context becomes a
 * fiber through ff_init_thread(). ff_switch() passes one pointer in and, when some fiber
 * later switches back, returns the pointer that fiber passed. An entry function that
 * returns finishes its fiber: the result is passed to the fiber that created it, which is
 * resumed; a finished fiber never runs again.
 *
 * Build options (preprocessor): FF_SAVE_FPU_CONTROL=1 also saves the floating-point control
 * state (x86_64 MXCSR and x87 control word, aarch64 FPCR, riscv64 FCSR; nothing on
 * soft-float riscv64) per fiber, a new fiber starting from the reset defaults (round to
 * nearest, exceptions masked); off by default because the core never changes rounding
 * modes; fiberflow.c and switch_<arch>.S must be built with the same setting. AF_DEBUG=1
 * checks the canary of the fiber being left on every switch; the check at fiber exit is
 * always on.
 */
#ifndef ASYNCFAT_FIBERFLOW_H
#define ASYNCFAT_FIBERFLOW_H

#include "base/base.h"

typedef struct ff_fiber ff_fiber;
typedef void *(*ff_entry)(void *arg);

struct ff_fiber {
    void *saved_sp;        /* stack pointer while switched out (read by the assembly) */
    ff_entry entry;
    ff_fiber *return_to;   /* the creator: resumed with the result when entry returns */
    uintptr_t stack_low;   /* lowest usable stack address (the canary sits here) */
    uintptr_t stack_high;  /* initial stack pointer, 16-byte aligned */
    bool finished;
    void *result;
    void *user;            /* owner's pointer (FiberPool stores its task here) */
#if defined(AF_ASAN)
    void *asan_fake_stack; /* AddressSanitizer's per-fiber bookkeeping */
    const void *asan_stack_bottom; /* the stack as ASan knows it (the root's is learnt */
    size_t asan_stack_size;        /* on its first switch away) */
#endif
};

/* Smallest memory block ff_create accepts (control block, canary, initial frame, slack). */
#define FF_MIN_MEMORY 1024u
#define FF_CANARY ((uintptr_t)0x5AFEC0DEF1BE12EDull)

/* Make the calling thread's context the current fiber, using `root` for its control block.
 * Call once before any switch. */
void ff_init_thread(ff_fiber *root);

/* Prepare a fiber in [memory, memory + size). Returns NULL if the block is too small (or
 * NULL, or runs past the end of the address space).
 * The fiber starts on the first ff_switch to it, as entry(arg of that switch). */
ff_fiber *ff_create(void *memory, size_t size, ff_entry entry);

/* Switch to `to`, handing it `arg`. Returns what is passed back when this fiber resumes. */
void *ff_switch(ff_fiber *to, void *arg);

ff_fiber *ff_current(void);


static inline bool ff_finished(const ff_fiber *fiber) { return fiber->finished; }

/* True while the canary at the stack's far end is intact. */
bool ff_stack_intact(const ff_fiber *fiber);

/* Fill the unused stack with a pattern so ff_stack_high_water can measure use. Call
 * between ff_create and the first switch. */
void ff_paint_stack(ff_fiber *fiber);
/* Bytes of stack the fiber has touched (painted fibers only). */
size_t ff_stack_high_water(const ff_fiber *fiber);
static inline size_t ff_stack_size(const ff_fiber *fiber) { return fiber->stack_high - fiber->stack_low; }

/* Called when a canary check fails; the default traps. Platforms set one that reports.
 * It must not return. */
typedef void (*ff_overflow_handler)(ff_fiber *fiber);
void ff_set_overflow_handler(ff_overflow_handler handler);

#endif
