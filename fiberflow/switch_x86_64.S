/* FiberFlow context switch, x86_64 System V.
 *
 * Saved on the stack of the fiber being left (everything else is caller-saved):
 *     rbx, rbp, r12, r13, r14, r15, the resume address (pushed by the call), and with
 *     FF_SAVE_FPU_CONTROL also MXCSR and the x87 control word;
 *     rsp itself goes to current->saved_sp (offset 0 of ff_fiber).
 * Layout and the ff_create side of it: fiberflow/frame.h.
 *
 * void *ff_switch(ff_fiber *to, void *arg): rdi = to, rsi = arg; returns arg in the
 * resumed context. The resume is pop + jmp, not ret: ret would pop the return-stack
 * predictor for a call made in another context and mispredict on every switch.
 */
#include "fiberflow/frame.h"

    .text
    .globl FF_SWITCH_SYMBOL
    .type FF_SWITCH_SYMBOL, @function
    .p2align 4
FF_SWITCH_SYMBOL:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
#if FF_SAVE_FPU_CONTROL
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
#endif
    movq ff_current_fiber(%rip), %rax
    movq %rsp, (%rax)
    movq %rdi, ff_current_fiber(%rip)
    movq (%rdi), %rsp
#if FF_SAVE_FPU_CONTROL
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
#endif
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    movq %rsi, %rax
    popq %rcx
    jmpq *%rcx
    .size FF_SWITCH_SYMBOL, . - FF_SWITCH_SYMBOL

/* A new fiber's first resume lands here with rax = arg and rsp = stack_high. The frame
 * pointer is zeroed and rip marked undefined so backtraces end at the fiber's start; rbx
 * holds the C start function (frame.h). */
    .globl ff_trampoline
    .hidden ff_trampoline
    .type ff_trampoline, @function
    .p2align 4
ff_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    xorl %ebp, %ebp
    movq %rax, %rdi
    call *%rbx
    ud2
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

    .section .note.GNU-stack, "", @progbits
