/* FiberFlow context switch, riscv64 (lp64 soft-float and lp64d hard-float).
 *
 * Saved on the stack of the fiber being left (everything else is caller-saved):
 *     ra (the resume address), s0-s11, and when the ABI has double-precision registers
 *     (__riscv_flen >= 64) also fs0-fs11; with FF_SAVE_FPU_CONTROL also fcsr;
 *     sp itself goes to current->saved_sp (offset 0 of ff_fiber).
 * Layout and the ff_create side of it: fiberflow/frame.h.
 *
 * void *ff_switch(ff_fiber *to, void *arg): a0 = to, a1 = arg; returns arg in the resumed
 * context. The resume is jr through t1: jumps through ra or t0 are return-stack hints
 * (pop or push), which would mispredict on every switch. All addresses are handled as full
 * 64-bit values (ld/sd/addi on sp), so stacks may live anywhere.
 */
#include "fiberflow/frame.h"

    .text
    .globl FF_SWITCH_SYMBOL
    .type FF_SWITCH_SYMBOL, @function
    .p2align 2
FF_SWITCH_SYMBOL:
    addi sp, sp, -FF_FRAME_SIZE
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    sd s2, 24(sp)
    sd s3, 32(sp)
    sd s4, 40(sp)
    sd s5, 48(sp)
    sd s6, 56(sp)
    sd s7, 64(sp)
    sd s8, 72(sp)
    sd s9, 80(sp)
    sd s10, 88(sp)
    sd s11, 96(sp)
#if FF_FRAME_HAS_FS
    fsd fs0, 104(sp)
    fsd fs1, 112(sp)
    fsd fs2, 120(sp)
    fsd fs3, 128(sp)
    fsd fs4, 136(sp)
    fsd fs5, 144(sp)
    fsd fs6, 152(sp)
    fsd fs7, 160(sp)
    fsd fs8, 168(sp)
    fsd fs9, 176(sp)
    fsd fs10, 184(sp)
    fsd fs11, 192(sp)
#if FF_SAVE_FPU_CONTROL
    frcsr t1
    sd t1, FF_FRAME_FPU(sp)
#endif
#endif
    lla t0, ff_current_fiber
    ld t1, 0(t0)
    sd sp, 0(t1)
    sd a0, 0(t0)
    ld sp, 0(a0)
#if FF_FRAME_HAS_FS
#if FF_SAVE_FPU_CONTROL
    ld t1, FF_FRAME_FPU(sp)
    fscsr t1
#endif
    fld fs0, 104(sp)
    fld fs1, 112(sp)
    fld fs2, 120(sp)
    fld fs3, 128(sp)
    fld fs4, 136(sp)
    fld fs5, 144(sp)
    fld fs6, 152(sp)
    fld fs7, 160(sp)
    fld fs8, 168(sp)
    fld fs9, 176(sp)
    fld fs10, 184(sp)
    fld fs11, 192(sp)
#endif
    ld t1, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    ld s2, 24(sp)
    ld s3, 32(sp)
    ld s4, 40(sp)
    ld s5, 48(sp)
    ld s6, 56(sp)
    ld s7, 64(sp)
    ld s8, 72(sp)
    ld s9, 80(sp)
    ld s10, 88(sp)
    ld s11, 96(sp)
    addi sp, sp, FF_FRAME_SIZE
    mv a0, a1
    jr t1
    .size FF_SWITCH_SYMBOL, . - FF_SWITCH_SYMBOL

/* A new fiber's first resume lands here with a0 = arg and sp = stack_high. The frame
 * pointer is zeroed and ra marked undefined so backtraces end at the fiber's start; s1
 * holds the C start function (frame.h). */
    .globl ff_trampoline
    .hidden ff_trampoline
    .type ff_trampoline, @function
    .p2align 2
ff_trampoline:
    .cfi_startproc
    .cfi_undefined ra
    li s0, 0
    li ra, 0
    jalr s1
    unimp
    .cfi_endproc
    .size ff_trampoline, . - ff_trampoline

/* The running fiber (ff_fiber *), read by fiberflow.c. */
    .bss
    .globl ff_current_fiber
    .hidden ff_current_fiber
    .type ff_current_fiber, @object
    .p2align 3
ff_current_fiber:
    .zero 8
    .size ff_current_fiber, 8

    .section .note.GNU-stack, "", %progbits
