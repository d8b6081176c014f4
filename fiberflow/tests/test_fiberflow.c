/* FiberFlow tests: switching, argument passing, fiber exit, register preservation, stack
 * layout, overflow detection (canary and guard page), stacks anywhere in the address space.
 * Runs natively under ASan and, statically linked, under qemu-aarch64 / qemu-riscv64. */
#include "fiberflow/fiberflow.h"
#include "tests/harness.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

uint64_t test_switch_checking_regs(ff_fiber *to, void *arg, uint64_t seed);

static ff_fiber root;

static ff_fiber *new_fiber(size_t size, ff_entry entry)
{
    void *memory = malloc(size);
    if (!memory)
        abort();
    return ff_create(memory, size, entry);
}

/* malloc's blocks are aligned, so a fiber's stack starts right at its block. */
static void free_fiber(ff_fiber *fiber) { free((void *)fiber->stack_low); }

/* Recursion whose stack cost per level is measured at run time, as it differs per
 * architecture and build flavour. */
__attribute__((noinline)) static uintptr_t recurse(uintptr_t depth)
{
    volatile uint8_t pad[192];
    pad[0] = (uint8_t)depth;
    pad[191] = 1;
    if (depth == 0)
        return 1;
    return recurse(depth - 1) + pad[0] + pad[191];
}

static uintptr_t recursion_result(uintptr_t depth)
{
    uintptr_t sum = 1;
    for (uintptr_t d = 1; d <= depth; d++)
        sum += (d & 0xff) + 1;
    return sum;
}

static void *recurse_entry(void *arg) { return (void *)recurse((uintptr_t)arg); }

static size_t recursion_frame_size(void)
{
    size_t used[2];
    for (int i = 0; i < 2; i++) {
        ff_fiber *f = new_fiber(131072, recurse_entry);
        ff_paint_stack(f);
        ff_switch(f, (void *)(uintptr_t)(100 + 100 * i));
        used[i] = ff_stack_high_water(f);
        free_fiber(f);
    }
    return (used[1] - used[0]) / 100;
}

/* ---- arguments, results, return targets ------------------------------------------------ */

static void *echo_plus_one(void *arg)
{
    while (arg != NULL)
        arg = ff_switch(&root, (void *)((uintptr_t)arg + 1));
    return NULL;
}

TEST(arguments_pass_both_ways)
{
    ff_init_thread(&root);
    ff_fiber *f = new_fiber(16384, echo_plus_one);
    CHECK(f != NULL);
    CHECK(ff_current() == &root);
    for (uintptr_t i = 1; i <= 1000; i++) {
        CHECK_EQ((uintptr_t)ff_switch(f, (void *)(i * 7)), i * 7 + 1);
        CHECK(ff_current() == &root);
    }
    CHECK(!ff_finished(f));
    CHECK(ff_switch(f, NULL) == NULL);
    CHECK(ff_finished(f));
    free_fiber(f);
}

static ff_fiber *last_running;

static void *return_arg_times_three(void *arg)
{
    last_running = ff_current();
    return (void *)((uintptr_t)arg * 3);
}

TEST(entry_return_resumes_creator_with_result)
{
    ff_init_thread(&root);
    ff_fiber *f = new_fiber(16384, return_arg_times_three);
    CHECK(f->return_to == &root);
    CHECK_EQ((uintptr_t)ff_switch(f, (void *)14), 42);
    CHECK(last_running == f);
    CHECK(ff_finished(f));
    CHECK_EQ((uintptr_t)f->result, 42);
    CHECK(ff_current() == &root);
    CHECK(ff_stack_intact(f));
    free_fiber(f);
}


/* ---- ping-pong and many fibers ---------------------------------------------------------- */

struct ping_pong {
    ff_fiber *ping, *pong;
    unsigned rounds;
    unsigned ping_count, pong_count;
    bool out_of_turn;
};

static void *ping_entry(void *arg)
{
    struct ping_pong *p = arg;
    for (unsigned i = 0; i < p->rounds; i++) {
        p->out_of_turn |= p->ping_count != p->pong_count;
        p->ping_count++;
        ff_switch(p->pong, p);
    }
    /* pong stays suspended: fibers need not finish. */
    return (void *)(uintptr_t)p->ping_count;
}

static void *pong_entry(void *arg)
{
    struct ping_pong *p = arg;
    for (;;) {
        p->out_of_turn |= p->ping_count != p->pong_count + 1;
        p->pong_count++;
        if (ff_switch(p->ping, NULL) == NULL)
            return NULL;
    }
}

TEST(ping_pong_between_fibers)
{
    ff_init_thread(&root);
    struct ping_pong p = { .rounds = 100000 };
    p.ping = new_fiber(16384, ping_entry);
    p.pong = new_fiber(16384, pong_entry);
    CHECK_EQ((uintptr_t)ff_switch(p.ping, &p), 100000);
    CHECK_EQ(p.pong_count, 100000);
    CHECK(!p.out_of_turn);
    free_fiber(p.ping);
    free_fiber(p.pong);
}

static void *yield_once_then_sum(void *arg)
{
    uintptr_t second = (uintptr_t)ff_switch(&root, (void *)((uintptr_t)arg ^ 0x55));
    return (void *)((uintptr_t)arg + second);
}

TEST(thousands_of_fibers)
{
    enum { COUNT = 3000, SIZE = 8192 };
    ff_init_thread(&root);
    uint8_t *arena = malloc((size_t)COUNT * SIZE);
    ff_fiber **fibers = malloc(COUNT * sizeof *fibers);
    CHECK(arena && fibers);
    for (int round = 0; round < 2; round++) {
        for (uintptr_t i = 0; i < COUNT; i++) {
            fibers[i] = ff_create(arena + i * SIZE, SIZE, yield_once_then_sum);
            CHECK(fibers[i] != NULL);
        }
        for (uintptr_t i = 0; i < COUNT; i++)
            CHECK_EQ((uintptr_t)ff_switch(fibers[i], (void *)i), i ^ 0x55);
        for (uintptr_t i = COUNT; i-- > 0;) {
            CHECK_EQ((uintptr_t)ff_switch(fibers[i], (void *)(uintptr_t)round), i + round);
            CHECK(ff_finished(fibers[i]));
            CHECK(ff_stack_intact(fibers[i]));
        }
    }
    free(fibers);
    free(arena);
}

/* ---- nesting ----------------------------------------------------------------------------- */

struct nest {
    uint8_t memory[3][16384];
    ff_fiber *creator_seen[3];
};

static struct nest *nest_state;

static void *nested_entry(void *arg)
{
    uintptr_t level = (uintptr_t)arg;
    nest_state->creator_seen[level] = ff_current();
    if (level == 2)
        return (void *)(uintptr_t)1000;
    ff_fiber *child = ff_create(nest_state->memory[level + 1], sizeof nest_state->memory[0], nested_entry);
    if (child->return_to != ff_current())
        return NULL;
    uintptr_t below = (uintptr_t)ff_switch(child, (void *)(level + 1));
    if (!ff_finished(child))
        return NULL;
    return (void *)(below + level + 1);
}

TEST(nested_fibers_create_and_finish_fibers)
{
    ff_init_thread(&root);
    nest_state = malloc(sizeof *nest_state);
    ff_fiber *top = ff_create(nest_state->memory[0], sizeof nest_state->memory[0], nested_entry);
    CHECK_EQ((uintptr_t)ff_switch(top, (void *)0), 1003);
    CHECK(ff_finished(top));
    for (int i = 0; i < 3; i++)
        CHECK((uint8_t *)nest_state->creator_seen[i] > nest_state->memory[i] &&
              (uint8_t *)nest_state->creator_seen[i] < nest_state->memory[i] + sizeof nest_state->memory[0]);
    CHECK(ff_current() == &root);
    free(nest_state);
}

/* ---- registers ---------------------------------------------------------------------------- */

struct regs_run {
    unsigned rounds;
    uint64_t fiber_bad;
};

static void *regs_entry(void *arg)
{
    struct regs_run *r = arg;
    for (unsigned i = 0; i < r->rounds; i++)
        r->fiber_bad |= test_switch_checking_regs(&root, r, 0x5000000000000000ull + i * 0x100);
    return NULL;
}

/* Both sides hold distinct patterns in every callee-saved register across each switch. */
static bool registers_survive_switches(void *memory, size_t size)
{
    struct regs_run r = { .rounds = 2000 };
    ff_fiber *f = ff_create(memory, size, regs_entry);
    uint64_t root_bad = 0;
    for (unsigned i = 0; i <= r.rounds; i++)
        root_bad |= test_switch_checking_regs(f, &r, 0xA000000000000000ull + i * 0x100);
    return EXPECT(ff_finished(f)) && EXPECT(root_bad == 0) && EXPECT(r.fiber_bad == 0);
}

TEST(callee_saved_registers_survive_switches)
{
    ff_init_thread(&root);
    void *memory = malloc(32768);
    CHECK(registers_survive_switches(memory, 32768));
    free(memory);
}

struct pressure {
    ff_fiber *partner;
    unsigned iterations;
    uint64_t result;
};

/* Many integer and floating-point values live across every switch: whatever the compiler
 * keeps in callee-saved registers must come back intact. */
static uint64_t pressure_compute(ff_fiber *partner, unsigned iterations, uint64_t seed)
{
    uint64_t a = seed, b = seed * 3, c = seed ^ 0x1234, d = seed + 77, e = seed << 3, f = ~seed;
    uint64_t g = seed * 11, h = seed >> 2, i = seed | 5, j = seed + 0x9e37, k = seed * 29, l = 1;
    double x = (double)(seed & 0xffff), y = 1.5, z = 0.25, w = 3.0, u = 7.0, v = 0.5;
    double s = 2.0, t = 9.0;
    for (unsigned n = 0; n < iterations; n++) {
        a += b ^ n; b = (b << 1) | (c >> 63); c ^= d * 7; d += e >> 3; e -= f; f = f * 5 + g;
        g ^= h + n; h += i; i = i * 3 + j; j ^= k >> 5; k += l; l = l * 7 + a;
        x = x * 0.5 + y; y = y * 0.75 + z; z = z + w * 0.125; w = w * 0.5 + u * 0.25;
        u = u * 0.875 + v; v = v * 0.5 + s; s = s * 0.25 + t * 0.5; t = t * 0.5 + x * 0.125;
        if (partner)
            ff_switch(partner, NULL);
    }
    double fp = x + y * 3 + z * 5 + w * 7 + u * 11 + v * 13 + s * 17 + t * 19;
    uint64_t fp_bits;
    memcpy(&fp_bits, &fp, sizeof fp_bits);
    return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ i ^ j ^ k ^ l ^ fp_bits;
}

static void *pressure_entry(void *arg)
{
    struct pressure *p = ff_current()->user;
    p->result = pressure_compute(p->partner, p->iterations, (uint64_t)(uintptr_t)p);
    return NULL;
}

TEST(register_pressure_across_switches)
{
    ff_init_thread(&root);
    struct pressure one = { .iterations = 5000 }, two = { .iterations = 5000 };
    ff_fiber *f1 = new_fiber(32768, pressure_entry);
    ff_fiber *f2 = new_fiber(32768, pressure_entry);
    one.partner = f2;
    two.partner = f1;
    f1->user = &one;
    f2->user = &two;
    /* f1 starts f2 with its first switch; f1 finishes first, then f2 has one switch left. */
    ff_switch(f1, NULL);
    CHECK(ff_finished(f1) && !ff_finished(f2));
    ff_switch(f2, NULL);
    CHECK(ff_finished(f2));
    CHECK_EQ(one.result, pressure_compute(NULL, 5000, (uint64_t)(uintptr_t)&one));
    CHECK_EQ(two.result, pressure_compute(NULL, 5000, (uint64_t)(uintptr_t)&two));
    free_fiber(f1);
    free_fiber(f2);
}

/* ---- stack layout -------------------------------------------------------------------------- */

TEST(create_rejects_unusable_memory)
{
    static uint8_t block[4096];
    CHECK(ff_create(NULL, 4096, echo_plus_one) == NULL);
    CHECK(ff_create(block, FF_MIN_MEMORY - 1, echo_plus_one) == NULL);
    CHECK(ff_create(block, 0, echo_plus_one) == NULL);
    CHECK(ff_create((void *)(UINTPTR_MAX - 100), 4096, echo_plus_one) == NULL);
    CHECK(ff_create(block, FF_MIN_MEMORY, echo_plus_one) != NULL);
}

static void *touch_and_return(void *arg)
{
    volatile uint8_t scratch[128];
    for (size_t i = 0; i < sizeof scratch; i++)
        scratch[i] = (uint8_t)i;
    return (void *)((uintptr_t)arg + scratch[100]);
}

TEST(memory_of_any_size_and_alignment)
{
    ff_init_thread(&root);
    enum { GUARD = 64 };
    uint64_t rng = test_seed();
    uint8_t *buffer = malloc(70000 + 2 * GUARD);
    CHECK(buffer != NULL);
    for (int trial = 0; trial < 300; trial++) {
        size_t offset = (size_t)test_rand_below(&rng, 32);
        size_t size = FF_MIN_MEMORY + (size_t)test_rand_below(&rng, 65536);
        uint8_t *memory = buffer + GUARD + offset;
        memset(buffer, 0xA5, 70000 + 2 * GUARD);
        ff_fiber *f = ff_create(memory, size, touch_and_return);
        CHECK(f != NULL);
        uintptr_t lo = (uintptr_t)memory, hi = lo + size;
        CHECK((uintptr_t)f >= lo && (uintptr_t)(f + 1) <= hi);
        CHECK((uintptr_t)f % alignof(ff_fiber) == 0);
        CHECK(f->stack_high % 16 == 0 && f->stack_high <= (uintptr_t)f);
        CHECK(f->stack_high + 16 > (uintptr_t)f - (uintptr_t)alignof(ff_fiber));
        CHECK(f->stack_low >= lo && f->stack_low < lo + sizeof(uintptr_t));
        CHECK(f->stack_low % sizeof(uintptr_t) == 0);
        CHECK(*(uintptr_t *)f->stack_low == FF_CANARY);
        CHECK(ff_stack_size(f) == f->stack_high - f->stack_low);
        CHECK_EQ((uintptr_t)ff_switch(f, (void *)(uintptr_t)trial), (uintptr_t)trial + 100);
        CHECK(ff_finished(f) && ff_stack_intact(f));
        for (size_t i = 0; i < GUARD + offset; i++)
            CHECK_MSG(buffer[i] == 0xA5, "byte below the block changed (trial %d)", trial);
        for (size_t i = 0; i < GUARD; i++)
            CHECK_MSG(memory[size + i] == 0xA5, "byte above the block changed (trial %d)", trial);
    }
    free(buffer);
}

static void *use_some_stack(void *arg)
{
    volatile uint8_t big[8192];
    for (size_t i = 0; i < sizeof big; i += 64)
        big[i] = 1;
    return (void *)(uintptr_t)big[(uintptr_t)arg];
}

TEST(paint_and_high_water_are_plausible)
{
    ff_init_thread(&root);
    enum { SIZE = 65536 };
    ff_fiber *small = new_fiber(SIZE, return_arg_times_three);
    ff_paint_stack(small);
    CHECK(ff_stack_high_water(small) < 256);
    ff_switch(small, (void *)1);
    size_t small_use = ff_stack_high_water(small);
    CHECK_MSG(small_use >= 16 && small_use < 4096, "small use %zu", small_use);

    ff_fiber *big = new_fiber(SIZE, use_some_stack);
    ff_paint_stack(big);
    CHECK_EQ((uintptr_t)ff_switch(big, (void *)0), 1);
    size_t big_use = ff_stack_high_water(big);
    CHECK_MSG(big_use >= 8192 && big_use < 8192 + 8192, "big use %zu", big_use);
    CHECK(big_use <= ff_stack_size(big));
    CHECK(ff_stack_intact(big));
    free_fiber(small);
    free_fiber(big);
}

TEST(deep_recursion_close_to_the_stack_size)
{
    ff_init_thread(&root);
    enum { SIZE = 262144 };
    size_t frame = recursion_frame_size();
    CHECK(frame > 0);
    ff_fiber *f = new_fiber(SIZE, recurse_entry);
    ff_paint_stack(f);
    uintptr_t depth = (ff_stack_size(f) * 9 / 10) / frame;
    CHECK_EQ((uintptr_t)ff_switch(f, (void *)depth), recursion_result(depth));
    CHECK(ff_finished(f));
    CHECK(ff_stack_intact(f));
    size_t used = ff_stack_high_water(f);
    CHECK_MSG(used > ff_stack_size(f) * 8 / 10 && used < ff_stack_size(f), "used %zu of %zu", used,
              ff_stack_size(f));
    free_fiber(f);
}

/* ---- overflow detection --------------------------------------------------------------------- */

static void report_overflow(ff_fiber *fiber)
{
    _exit(fiber == NULL || ff_stack_intact(fiber) ? 3 : 42);
}

static void *clobber_canary_then_switch(void *arg)
{
    *(volatile uintptr_t *)ff_current()->stack_low = 0;
    ff_switch(&root, NULL);
    return NULL;
}

/* Runs fn in a child process; returns its wait status. */
static int in_child(void (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return status;
}

/* A frame larger than the whole stack, written from top to bottom: it runs over the canary
 * whatever the frame layout (a recursion can skip the canary word in its frames' holes). */
static void *fill_large_frame(void *arg)
{
    volatile uint8_t large[98304];
    for (size_t i = sizeof large; i-- > 0;)
        large[i] = (uint8_t)i;
    return (void *)(uintptr_t)large[(uintptr_t)arg];
}

static void overflow_by_large_frame(void)
{
    enum { SIZE = 65536 };
    ff_init_thread(&root);
    ff_set_overflow_handler(report_overflow);
    /* The fiber sits at the top of a larger buffer, so running off its stack lands in
     * memory we own: only the canary can tell. */
    uint8_t *buffer = malloc(4 * SIZE);
    ff_fiber *f = ff_create(buffer + 3 * SIZE, SIZE, fill_large_frame);
    ff_switch(f, (void *)1);
}

static void overflow_then_switch(void)
{
    ff_init_thread(&root);
    ff_set_overflow_handler(report_overflow);
    ff_fiber *f = new_fiber(16384, clobber_canary_then_switch);
    ff_switch(f, NULL);
    ff_switch(f, NULL);
}

static void overflow_with_default_handler(void)
{
    ff_init_thread(&root);
    ff_fiber *f = new_fiber(16384, clobber_canary_then_switch);
    ff_switch(f, NULL);
    ff_switch(f, NULL);
}

TEST(canary_overflow_calls_the_handler)
{
    int status = in_child(overflow_by_large_frame);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 42, "large frame: status %#x", status);
    /* Debug builds catch it at the next switch away, release builds at fiber exit. */
    status = in_child(overflow_then_switch);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 42, "switch: status %#x", status);
    status = in_child(overflow_with_default_handler);
    CHECK_MSG(WIFSIGNALED(status), "default handler traps: status %#x", status);
}

static void exit_on_segv(int sig)
{
    _exit(sig == SIGSEGV ? 43 : 4);
}

static void overflow_into_guard_page(void)
{
    enum { PAGE = 4096, SIZE = 16 * PAGE };
    static uint8_t alt_stack[65536];
    stack_t ss = { .ss_sp = alt_stack, .ss_size = sizeof alt_stack };
    struct sigaction sa = { .sa_handler = exit_on_segv, .sa_flags = SA_ONSTACK };
    if (sigaltstack(&ss, NULL) != 0 || sigaction(SIGSEGV, &sa, NULL) != 0)
        _exit(5);
    uint8_t *map = mmap(NULL, SIZE + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || mprotect(map, PAGE, PROT_NONE) != 0)
        _exit(6);
    ff_init_thread(&root);
    ff_fiber *f = ff_create(map + PAGE, SIZE, recurse_entry);
    ff_switch(f, (void *)(uintptr_t)UINT32_MAX);
    _exit(7);
}

TEST(guard_page_overflow_dies_with_sigsegv)
{
    int status = in_child(overflow_into_guard_page);
    CHECK_MSG((WIFEXITED(status) && WEXITSTATUS(status) == 43) ||
                  (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV),
              "status %#x", status);
}

/* ---- stacks anywhere ------------------------------------------------------------------------- */

struct high_run {
    ff_fiber *ping, *pong;
    unsigned count;
};

static void *high_ping(void *arg)
{
    struct high_run *h = arg;
    for (unsigned i = 0; i < 1000; i++)
        h->count += (unsigned)(uintptr_t)ff_switch(h->pong, h);
    return (void *)(uintptr_t)h->count;
}

static void *high_pong(void *arg)
{
    struct high_run *h = arg;
    while (h != NULL)
        h = ff_switch(h->ping, (void *)(uintptr_t)2);
    return NULL;
}

static bool run_fibers_at(uint8_t *map, size_t size)
{
    ff_init_thread(&root);
    size_t part = size / 4;
    struct high_run h = { 0 };
    h.ping = ff_create(map, part, high_ping);
    h.pong = ff_create(map + part, part, high_pong);
    if (!EXPECT((uintptr_t)h.ping > 0xFFFFFFFFu && h.ping->stack_low > 0xFFFFFFFFu))
        return false;
    if (!EXPECT((uintptr_t)ff_switch(h.ping, &h) == 2000) || !EXPECT(ff_finished(h.ping)))
        return false;
    ff_fiber *deep = ff_create(map + 2 * part, part, recurse_entry);
    uintptr_t depth = (part / 2) / recursion_frame_size();
    if (!EXPECT((uintptr_t)ff_switch(deep, (void *)depth) == recursion_result(depth)) ||
        !EXPECT(ff_stack_intact(deep)))
        return false;
    return registers_survive_switches(map + 3 * part, part);
}

TEST(stacks_above_4gib)
{
    /* Low above 4 GiB, and high in the 47-bit user range; under ASan on x86_64 the low
     * one is inside the shadow gap and is skipped, so a few more are tried. */
    static const uintptr_t hints[] = { 0x500000000ull, 0x7e0000000000ull, 0x3e0000000000ull,
                                       0x200000000000ull, 0x10000000000ull };
    enum { SIZE = 1 << 20 };
    int ran = 0;
    for (size_t i = 0; i < AF_ARRAY_LEN(hints); i++) {
        void *want = (void *)hints[i];
        void *map = mmap(want, SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (map == MAP_FAILED)
            continue;
        if (map != want) {
            munmap(map, SIZE);
            continue;
        }
        bool ok = run_fibers_at(map, SIZE);
        munmap(map, SIZE);
        CHECK_MSG(ok, "fibers at %p", want);
        ran++;
    }
    CHECK_MSG(ran >= 1, "no stack could be mapped above 4 GiB");
}
