/* FiberFlow internals shared by switch_<arch>.S and fiberflow.c: the layout of the frame a
 * switched-out fiber leaves at its saved_sp, and the name of the assembly routine.
 *
 * ff_create builds a new fiber's first frame by hand: every register slot zero, the resume
 * slot pointing at ff_trampoline, the start slot (a callee-saved register) holding the C
 * function the trampoline calls, the FPU control slot (FF_SAVE_FPU_CONTROL) at the reset
 * defaults. (The assembly names no C symbol, and defines ff_current_fiber itself, so it
 * links into any program, used or not.) Popping a frame leaves the stack pointer FF_FRAME_SIZE above saved_sp, so a
 * new fiber's saved_sp is stack_high - FF_FRAME_SIZE and the trampoline runs with
 * sp == stack_high, 16-byte aligned. Offsets are in bytes from saved_sp.
 *
 * Debug and ASan builds wrap the assembly in a C ff_switch (canary check, sanitizer
 * annotations), so there the assembly is named ff_switch_asm; release builds call it
 * directly as ff_switch.
 */
#ifndef ASYNCFAT_FIBERFLOW_FRAME_H
#define ASYNCFAT_FIBERFLOW_FRAME_H

#ifndef FF_SAVE_FPU_CONTROL
#define FF_SAVE_FPU_CONTROL 0
#endif

#if defined(AF_DEBUG) || defined(AF_ASAN)
#define FF_SWITCH_WRAPPED 1
#define FF_SWITCH_SYMBOL ff_switch_asm
#else
#define FF_SWITCH_WRAPPED 0
#define FF_SWITCH_SYMBOL ff_switch
#endif

#if defined(__x86_64__)
/* [fpu control] r15 r14 r13 r12 rbx rbp resume */
#if FF_SAVE_FPU_CONTROL
#define FF_FRAME_SIZE 64
#define FF_FRAME_FPU 0
/* MXCSR 0x1f80 in the low half, x87 control word 0x037f above it. */
#define FF_FPU_DEFAULT 0x0000037f00001f80
#else
#define FF_FRAME_SIZE 56
#endif
#define FF_FRAME_RESUME (FF_FRAME_SIZE - 8)
#define FF_FRAME_START (FF_FRAME_SIZE - 24) /* rbx */

#elif defined(__aarch64__)
/* x19..x28 at 0..72, x29 80, x30 (resume) 88, d8..d15 96..152, [fpcr 160] */
#define FF_FRAME_RESUME 88
#define FF_FRAME_START 0 /* x19 */
#if FF_SAVE_FPU_CONTROL
#define FF_FRAME_SIZE 176
#define FF_FRAME_FPU 160
#define FF_FPU_DEFAULT 0
#else
#define FF_FRAME_SIZE 160
#endif

#elif defined(__riscv) && __riscv_xlen == 64
/* ra (resume) 0, s0..s11 8..96, [fs0..fs11 104..192 hard-float], [fcsr] */
#define FF_FRAME_RESUME 0
#define FF_FRAME_START 16 /* s1 */
#if defined(__riscv_flen) && __riscv_flen >= 64
#define FF_FRAME_HAS_FS 1
#if FF_SAVE_FPU_CONTROL
#define FF_FRAME_SIZE 208
#define FF_FRAME_FPU 200
#define FF_FPU_DEFAULT 0
#else
#define FF_FRAME_SIZE 208
#endif
#elif defined(__riscv_flen)
#error "FiberFlow supports riscv64 soft-float (lp64) and double-float (lp64d) only"
#else
#define FF_FRAME_HAS_FS 0
#define FF_FRAME_SIZE 112
#endif

#else
#error "FiberFlow: no context switch for this architecture"
#endif

#endif
