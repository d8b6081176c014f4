/* Test helper: uint64_t test_switch_checking_regs(ff_fiber *to, void *arg, uint64_t seed)
 * fills every callee-saved register (integer, and the FP/vector ones the ABI preserves)
 * with seed + k (k = 1, 2, ... per register), calls ff_switch(to, arg), and returns a mask
 * with bit k-1 set for each register that came back changed; 0 means all survived.
 * x86_64 System V has no callee-saved vector registers, so only integers there.
 * Immediates in the aarch64 macros go without "#", which the preprocessor would stringize. */

#if defined(__x86_64__)
#define CHECK_REG(reg, k) leaq k(%rdx), %rcx; cmpq %rcx, reg; je 1f; orl $(1 << (k - 1)), %eax; 1:

    .text
    .globl test_switch_checking_regs
    .type test_switch_checking_regs, @function
test_switch_checking_regs:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    movq %rdx, (%rsp)
    leaq 1(%rdx), %rbx
    leaq 2(%rdx), %rbp
    leaq 3(%rdx), %r12
    leaq 4(%rdx), %r13
    leaq 5(%rdx), %r14
    leaq 6(%rdx), %r15
    call ff_switch@PLT
    movq (%rsp), %rdx
    xorl %eax, %eax
    CHECK_REG(%rbx, 1)
    CHECK_REG(%rbp, 2)
    CHECK_REG(%r12, 3)
    CHECK_REG(%r13, 4)
    CHECK_REG(%r14, 5)
    CHECK_REG(%r15, 6)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size test_switch_checking_regs, . - test_switch_checking_regs
    .section .note.GNU-stack, "", @progbits

#elif defined(__aarch64__)
#define SET_D(reg, k) add x9, x2, k; fmov reg, x9
#define CHECK_X(reg, k) add x9, x2, k; cmp reg, x9; cset x10, ne; orr x0, x0, x10, lsl (k - 1)
#define CHECK_D(reg, k) add x9, x2, k; fmov x11, reg; cmp x11, x9; cset x10, ne; orr x0, x0, x10, lsl (k - 1)

    .text
    .globl test_switch_checking_regs
    .type test_switch_checking_regs, %function
test_switch_checking_regs:
    stp x29, x30, [sp, #-176]!
    stp x19, x20, [sp, #16]
    stp x21, x22, [sp, #32]
    stp x23, x24, [sp, #48]
    stp x25, x26, [sp, #64]
    stp x27, x28, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    str x2, [sp, #160]
    add x19, x2, #1
    add x20, x2, #2
    add x21, x2, #3
    add x22, x2, #4
    add x23, x2, #5
    add x24, x2, #6
    add x25, x2, #7
    add x26, x2, #8
    add x27, x2, #9
    add x28, x2, #10
    add x29, x2, #11
    SET_D(d8, 12)
    SET_D(d9, 13)
    SET_D(d10, 14)
    SET_D(d11, 15)
    SET_D(d12, 16)
    SET_D(d13, 17)
    SET_D(d14, 18)
    SET_D(d15, 19)
    bl ff_switch
    ldr x2, [sp, #160]
    mov x0, #0
    CHECK_X(x19, 1)
    CHECK_X(x20, 2)
    CHECK_X(x21, 3)
    CHECK_X(x22, 4)
    CHECK_X(x23, 5)
    CHECK_X(x24, 6)
    CHECK_X(x25, 7)
    CHECK_X(x26, 8)
    CHECK_X(x27, 9)
    CHECK_X(x28, 10)
    CHECK_X(x29, 11)
    CHECK_D(d8, 12)
    CHECK_D(d9, 13)
    CHECK_D(d10, 14)
    CHECK_D(d11, 15)
    CHECK_D(d12, 16)
    CHECK_D(d13, 17)
    CHECK_D(d14, 18)
    CHECK_D(d15, 19)
    ldp x19, x20, [sp, #16]
    ldp x21, x22, [sp, #32]
    ldp x23, x24, [sp, #48]
    ldp x25, x26, [sp, #64]
    ldp x27, x28, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    ldp x29, x30, [sp], #176
    ret
    .size test_switch_checking_regs, . - test_switch_checking_regs
    .section .note.GNU-stack, "", %progbits

#elif defined(__riscv)
#define CHECK_S(reg, k) addi t0, a2, k; beq reg, t0, 1f; li t1, 1; slli t1, t1, k - 1; or a0, a0, t1; 1:
#define SET_FS(reg, k) addi t0, a2, k; fmv.d.x reg, t0
#define CHECK_FS(reg, k) addi t0, a2, k; fmv.x.d t2, reg; beq t2, t0, 1f; li t1, 1; slli t1, t1, k - 1; or a0, a0, t1; 1:

    .text
    .globl test_switch_checking_regs
    .type test_switch_checking_regs, @function
test_switch_checking_regs:
    addi sp, sp, -208
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
    sd a2, 104(sp)
#if defined(__riscv_flen)
    fsd fs0, 112(sp)
    fsd fs1, 120(sp)
    fsd fs2, 128(sp)
    fsd fs3, 136(sp)
    fsd fs4, 144(sp)
    fsd fs5, 152(sp)
    fsd fs6, 160(sp)
    fsd fs7, 168(sp)
    fsd fs8, 176(sp)
    fsd fs9, 184(sp)
    fsd fs10, 192(sp)
    fsd fs11, 200(sp)
    SET_FS(fs0, 13)
    SET_FS(fs1, 14)
    SET_FS(fs2, 15)
    SET_FS(fs3, 16)
    SET_FS(fs4, 17)
    SET_FS(fs5, 18)
    SET_FS(fs6, 19)
    SET_FS(fs7, 20)
    SET_FS(fs8, 21)
    SET_FS(fs9, 22)
    SET_FS(fs10, 23)
    SET_FS(fs11, 24)
#endif
    addi s0, a2, 1
    addi s1, a2, 2
    addi s2, a2, 3
    addi s3, a2, 4
    addi s4, a2, 5
    addi s5, a2, 6
    addi s6, a2, 7
    addi s7, a2, 8
    addi s8, a2, 9
    addi s9, a2, 10
    addi s10, a2, 11
    addi s11, a2, 12
    call ff_switch
    ld a2, 104(sp)
    li a0, 0
    CHECK_S(s0, 1)
    CHECK_S(s1, 2)
    CHECK_S(s2, 3)
    CHECK_S(s3, 4)
    CHECK_S(s4, 5)
    CHECK_S(s5, 6)
    CHECK_S(s6, 7)
    CHECK_S(s7, 8)
    CHECK_S(s8, 9)
    CHECK_S(s9, 10)
    CHECK_S(s10, 11)
    CHECK_S(s11, 12)
#if defined(__riscv_flen)
    CHECK_FS(fs0, 13)
    CHECK_FS(fs1, 14)
    CHECK_FS(fs2, 15)
    CHECK_FS(fs3, 16)
    CHECK_FS(fs4, 17)
    CHECK_FS(fs5, 18)
    CHECK_FS(fs6, 19)
    CHECK_FS(fs7, 20)
    CHECK_FS(fs8, 21)
    CHECK_FS(fs9, 22)
    CHECK_FS(fs10, 23)
    CHECK_FS(fs11, 24)
    fld fs0, 112(sp)
    fld fs1, 120(sp)
    fld fs2, 128(sp)
    fld fs3, 136(sp)
    fld fs4, 144(sp)
    fld fs5, 152(sp)
    fld fs6, 160(sp)
    fld fs7, 168(sp)
    fld fs8, 176(sp)
    fld fs9, 184(sp)
    fld fs10, 192(sp)
    fld fs11, 200(sp)
#endif
    ld ra, 0(sp)
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
    addi sp, sp, 208
    ret
    .size test_switch_checking_regs, . - test_switch_checking_regs
    .section .note.GNU-stack, "", %progbits
#endif
