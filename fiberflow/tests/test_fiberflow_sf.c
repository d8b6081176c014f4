/* FiberFlow on riscv64 soft-float (lp64), where there is no cross libc: a freestanding
 * program with its own _start and raw Linux system calls, run under qemu-riscv64. It covers
 * create / switch / return, ping-pong, callee-saved registers, the canary, and stacks above
 * 4 GiB, and prints PASS/FAIL lines like tests/harness.c. */
#include "fiberflow/fiberflow.h"

#define SYS_WRITE 64
#define SYS_EXIT 93
#define SYS_MUNMAP 215
#define SYS_MMAP 222
#define PROT_RW 3
#define MAP_PRIVATE_ANONYMOUS 0x22
#define MAP_FIXED_NOREPLACE 0x100000

uint64_t test_switch_checking_regs(ff_fiber *to, void *arg, uint64_t seed);
AF_NORETURN void sf_main(void);

/* The kernel starts us with sp at argc; align it and never return. */
__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        ".option push\n"
        ".option norelax\n"
        "    lla gp, __global_pointer$\n"
        ".option pop\n"
        "    andi sp, sp, -16\n"
        "    call sf_main\n"
        "    unimp\n");

static long syscall6(long number, long a0, long a1, long a2, long a3, long a4, long a5)
{
    register long r_a0 __asm__("a0") = a0;
    register long r_a1 __asm__("a1") = a1;
    register long r_a2 __asm__("a2") = a2;
    register long r_a3 __asm__("a3") = a3;
    register long r_a4 __asm__("a4") = a4;
    register long r_a5 __asm__("a5") = a5;
    register long r_a7 __asm__("a7") = number;
    __asm__ volatile("ecall"
                     : "+r"(r_a0)
                     : "r"(r_a1), "r"(r_a2), "r"(r_a3), "r"(r_a4), "r"(r_a5), "r"(r_a7)
                     : "memory");
    return r_a0;
}

static void put(const char *text)
{
    syscall6(SYS_WRITE, 1, (long)text, (long)af_strnlen(text, 200), 0, 0, 0);
}

static AF_NORETURN void exit_with(int status)
{
    syscall6(SYS_EXIT, status, 0, 0, 0, 0, 0);
    __builtin_unreachable();
}

static void *map_at(uintptr_t address, size_t size)
{
    long got = syscall6(SYS_MMAP, (long)address, (long)size, PROT_RW,
                        MAP_PRIVATE_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if ((uintptr_t)got != address) {
        if (got > 0)
            syscall6(SYS_MUNMAP, got, (long)size, 0, 0, 0, 0);
        return NULL;
    }
    return (void *)got;
}

static ff_fiber root;
static uint8_t memory[4][65536] __attribute__((aligned(16)));
static bool failed_any;

static void report(const char *name, bool passed)
{
    put(passed ? "PASS " : "FAIL ");
    put(name);
    put("\n");
    failed_any |= !passed;
}

static void *times_three(void *arg) { return (void *)((uintptr_t)arg * 3); }

static void *echo_plus_one(void *arg)
{
    while (arg != NULL)
        arg = ff_switch(&root, (void *)((uintptr_t)arg + 1));
    return NULL;
}

static bool create_switch_return(uint8_t *block, size_t size)
{
    ff_fiber *echo = ff_create(block, size / 2, echo_plus_one);
    ff_fiber *once = ff_create(block + size / 2, size / 2, times_three);
    if (echo == NULL || once == NULL)
        return false;
    for (uintptr_t i = 1; i < 1000; i++)
        if ((uintptr_t)ff_switch(echo, (void *)i) != i + 1 || ff_current() != &root)
            return false;
    return ff_switch(echo, NULL) == NULL && ff_finished(echo) &&
           (uintptr_t)ff_switch(once, (void *)14) == 42 && ff_finished(once) && once->result == (void *)42;
}

struct ping_pong {
    ff_fiber *ping, *pong;
    unsigned ping_count, pong_count;
};

static void *ping_entry(void *arg)
{
    struct ping_pong *p = arg;
    for (unsigned i = 0; i < 10000; i++) {
        p->ping_count++;
        ff_switch(p->pong, p);
    }
    return (void *)(uintptr_t)p->ping_count;
}

static void *pong_entry(void *arg)
{
    struct ping_pong *p = arg;
    while (p != NULL) {
        p->pong_count++;
        p = ff_switch(p->ping, p);
    }
    return NULL;
}

static bool ping_pong(uint8_t *block, size_t size)
{
    struct ping_pong p = { 0 };
    p.ping = ff_create(block, size / 2, ping_entry);
    p.pong = ff_create(block + size / 2, size / 2, pong_entry);
    return (uintptr_t)ff_switch(p.ping, &p) == 10000 && p.pong_count == 10000;
}

static void *regs_entry(void *arg)
{
    uint64_t *bad = arg;
    for (unsigned i = 0; i < 500; i++)
        *bad |= test_switch_checking_regs(&root, bad, 0x5000000000000000ull + i * 0x100);
    return NULL;
}

static bool registers_survive(uint8_t *block, size_t size)
{
    uint64_t fiber_bad = 0, root_bad = 0;
    ff_fiber *f = ff_create(block, size, regs_entry);
    for (unsigned i = 0; i <= 500; i++)
        root_bad |= test_switch_checking_regs(f, &fiber_bad, 0xA000000000000000ull + i * 0x100);
    return ff_finished(f) && root_bad == 0 && fiber_bad == 0;
}

/* The handler must not return: it goes back to the root instead. */
static void overflow_to_root(ff_fiber *fiber)
{
    ff_switch(&root, (void *)(uintptr_t)0x0F10);
    AF_UNUSED(fiber);
}

static void *clobber_canary(void *arg)
{
    *(volatile uintptr_t *)ff_current()->stack_low = 0;
    return arg;
}

static bool canary_detected(uint8_t *block, size_t size)
{
    ff_set_overflow_handler(overflow_to_root);
    ff_fiber *f = ff_create(block, size, clobber_canary);
    bool caught = (uintptr_t)ff_switch(f, (void *)1) == 0x0F10 && !ff_stack_intact(f);
    ff_set_overflow_handler(NULL);
    return caught;
}

static bool all_at(uint8_t *block, size_t size)
{
    return create_switch_return(block, size) && ping_pong(block, size) && registers_survive(block, size);
}

static bool stacks_above_4gib(void)
{
    static const uintptr_t hints[] = { 0x500000000ull, 0x7e0000000000ull, 0x3e0000000000ull };
    int ran = 0;
    for (size_t i = 0; i < AF_ARRAY_LEN(hints); i++) {
        uint8_t *block = map_at(hints[i], 1 << 20);
        if (block == NULL)
            continue;
        if (!all_at(block, 1 << 20))
            return false;
        syscall6(SYS_MUNMAP, (long)block, 1 << 20, 0, 0, 0, 0);
        ran++;
    }
    return ran >= 2;
}

void sf_main(void)
{
    ff_init_thread(&root);
    report("create_switch_return", create_switch_return(memory[0], sizeof memory[0]));
    report("ping_pong_between_fibers", ping_pong(memory[1], sizeof memory[1]));
    report("callee_saved_registers_survive_switches", registers_survive(memory[2], sizeof memory[2]));
    report("canary_overflow_calls_the_handler", canary_detected(memory[3], sizeof memory[3]));
    report("stacks_above_4gib", stacks_above_4gib());
    exit_with(failed_any ? 1 : 0);
}
