/* FiberFlow context switch, aarch64 AAPCS64.
 *
 * Saved on the stack of the fiber being left (everything else is caller-saved):
 *     x19-x28, x29 (frame pointer), x30 (the resume address), d8-d15 (the low halves of
 *     v8-v15, all the ABI preserves), and with FF_SAVE_FPU_CONTROL also FPCR;
 *     sp itself goes to current->saved_sp (offset 0 of ff_fiber).
 * Layout and the ff_create side of it: fiberflow/frame.h.
 *
 * void *ff_switch(ff_fiber *to, void *arg): x0 = to, x1 = arg; returns arg in the resumed
 * context. The resume is br x30, not ret, so the return-address predictor is not consumed
 * by a return that belongs to another context.
 */
#include "fiberflow/frame.h"

    .text
    .globl FF_SWITCH_SYMBOL
    .type FF_SWITCH_SYMBOL, %function
    .p2align 4
FF_SWITCH_SYMBOL:
    sub sp, sp, #FF_FRAME_SIZE
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
#if FF_SAVE_FPU_CONTROL
    mrs x9, fpcr
    str x9, [sp, #FF_FRAME_FPU]
#endif
    adrp x9, ff_current_fiber
    ldr x10, [x9, #:lo12:ff_current_fiber]
    mov x11, sp
    str x11, [x10]
    str x0, [x9, #:lo12:ff_current_fiber]
    ldr x11, [x0]
    mov sp, x11
#if FF_SAVE_FPU_CONTROL
    ldr x9, [sp, #FF_FRAME_FPU]
    msr fpcr, x9
#endif
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #FF_FRAME_SIZE
    mov x0, x1
    br x30
    .size FF_SWITCH_SYMBOL, . - FF_SWITCH_SYMBOL

/* A new fiber's first resume lands here with x0 = arg and sp = stack_high. The frame
 * pointer and link register are zeroed and x30 marked undefined so backtraces end here;
 * x19 holds the C start function (frame.h). */
    .globl ff_trampoline
    .hidden ff_trampoline
    .type ff_trampoline, %function
    .p2align 2
ff_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov x29, #0
    mov x30, #0
    blr x19
    brk #0
    .cfi_endproc
    .size ff_trampoline, . - ff_trampoline

/* The running fiber (ff_fiber *), read by fiberflow.c. */
    .bss
    .globl ff_current_fiber
    .hidden ff_current_fiber
    .type ff_current_fiber, %object
    .p2align 3
ff_current_fiber:
    .zero 8
    .size ff_current_fiber, 8

    .section .note.GNU-stack, "", %progbits
