/* A test client PD: Microkit entry points, its configuration, the fiber pool, and the
 * file-system call that blocks a fiber until its completion arrives. */
#include <microkit.h>
#include <sddf/serial/config.h>
#include <sddf/serial/queue.h>
#include <sddf/util/printf.h>
#include <stdarg.h>

#include "fiberpool/fiberpool.h"
#include "platform/microkit/config.h"
#include "sel4/clients/client.h"

/* Defined in sDDF's util/printf.c; its header names the macro but not the function. */
int sddf_vsnprintf_(char *buffer, size_t count, const char *format, va_list va);

__attribute__((section(".fs_client_config"))) mk_fs_client_config fs_config;
__attribute__((section(".serial_client_config"))) serial_client_config_t serial_config;
__attribute__((section(".test_client_config"))) tc_config test_config;

static serial_queue_handle_t serial_tx;
static bool can_print;

static fp_pool pool;
static fp_task tasks[TC_FIBERS];
static alignas(16) uint8_t stacks[TC_FIBERS][TC_STACK_BYTES];

static fs_queue_end commands, completions;
static fp_queue space_waiters;
static bool submitted;
static uint32_t in_flight, most_in_flight;
static uint64_t sequence;
static uint64_t passed, failed;

typedef struct waiter {
    fp_task *task;
    uint64_t id;
    fs_cmpl cmpl;
    bool done;
} waiter;
static waiter waiters[TC_FIBERS];

/* ---- output ------------------------------------------------------------------------------- */

static void print_line(const char *text)
{
    if (can_print)
        sddf_printf("%s| %s\n", test_config.name, text);
}

void tc_printf(const char *format, ...)
{
    char text[800];
    va_list ap;
    va_start(ap, format);
    sddf_vsnprintf(text, sizeof(text), format, ap);
    va_end(ap);
    print_line(text);
}

void tc_pass(const char *check)
{
    passed++;
    tc_printf("PASS %s", check);
}

static void fail_v(const char *check, const char *format, va_list ap)
{
    char why[200];
    sddf_vsnprintf(why, sizeof(why), format, ap);
    failed++;
    tc_printf("FAIL %s: %s", check, why);
}

void tc_fail(const char *check, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fail_v(check, format, ap);
    va_end(ap);
}

bool tc_expect(bool ok, const char *check, const char *format, ...)
{
    if (ok) {
        tc_pass(check);
    } else {
        va_list ap;
        va_start(ap, format);
        fail_v(check, format, ap);
        va_end(ap);
    }
    return ok;
}

uint64_t tc_passed(void) { return passed; }
uint64_t tc_failed(void) { return failed; }

/* ---- the share region --------------------------------------------------------------------- */

uint8_t *tc_share(void) { return fs_config.server.share.vaddr; }
uint64_t tc_share_bytes(void) { return fs_config.server.share.size; }
size_t tc_area_bytes(void) { return (size_t)(tc_share_bytes() / TC_FIBERS) & ~(size_t)4095; }

uint8_t *tc_area(void) { return tc_share() + (size_t)pool.current->index * tc_area_bytes(); }

fs_buffer tc_buffer(const void *p, size_t size)
{
    return (fs_buffer){.offset = (uint64_t)((const uint8_t *)p - tc_share()), .size = size};
}

/* Paths sit in the last 12 KiB of the caller's area, out of the way of its data (room for
 * the two paths of a rename). */
fs_buffer tc_path(const char *path)
{
    size_t n = tc_strlen(path);
    uint8_t *at = tc_area() + tc_area_bytes() - TC_PATH_AREA;
    af_memcpy(at, path, n);
    at[n] = 0;
    return tc_buffer(at, n);
}

/* ---- calls -------------------------------------------------------------------------------- */

tc_reply tc_call(uint64_t type, const fs_cmd_params *params)
{
    fp_task *self = pool.current;
    waiter *w = &waiters[self->index];
    while (fs_queue_space(&commands) == 0)
        fp_wait(&pool, &space_waiters);
    fs_msg msg;
    af_memset(&msg, 0, sizeof(msg));
    msg.cmd.id = (++sequence << 8) | self->index;
    msg.cmd.type = type;
    msg.cmd.params = *params;
    *w = (waiter){.task = self, .id = msg.cmd.id, .done = false};
    fs_queue_produce(&commands, &msg, 1);
    submitted = true;
    if (++in_flight > most_in_flight)
        most_in_flight = in_flight;
    while (!w->done)
        fp_block(&pool);
    in_flight--;
    w->task = NULL;
    return (tc_reply){.status = w->cmpl.status, .data = w->cmpl.data};
}

uint32_t tc_in_flight(void) { return in_flight; }
uint32_t tc_most_in_flight(void) { return most_in_flight; }

static void take_completions(void)
{
    fs_msg batch[16];
    uint32_t n;
    while ((n = fs_queue_consume(&completions, batch, AF_ARRAY_LEN(batch))) > 0) {
        for (uint32_t i = 0; i < n; i++) {
            uint64_t slot = batch[i].cmpl.id & 0xff;
            waiter *w = slot < TC_FIBERS ? &waiters[slot] : NULL;
            if (!w || !w->task || w->done || w->id != batch[i].cmpl.id) {
                tc_fail("completion_ids", "a completion with an id never sent or already answered: %lu",
                        (unsigned long)batch[i].cmpl.id);
                continue;
            }
            w->cmpl = batch[i].cmpl;
            w->done = true;
            fp_wake(w->task, NULL);
        }
        fp_wake_all(&space_waiters, NULL);
    }
}

/* Run every fiber that can run; tell the server once about everything they queued. */
static void pump(void)
{
    do {
        take_completions();
        fp_run(&pool);
    } while (fs_queue_available(&completions) > 0);
    if (submitted) {
        submitted = false;
        microkit_notify(fs_config.server.id);
    }
}

/* ---- fibers ------------------------------------------------------------------------------- */

typedef struct parallel_job {
    void (*fn)(uint32_t i, void *arg);
    void *arg;
    uint32_t next, n;
    uint32_t running;        /* workers not yet finished */
    fp_queue finished;       /* the caller waits here for them */
} parallel_job;

static void *parallel_worker(void *p)
{
    parallel_job *job = p;
    while (job->next < job->n) {
        uint32_t i = job->next++;
        job->fn(i, job->arg);
    }
    if (--job->running == 0)
        fp_wake_all(&job->finished, NULL);
    return NULL;
}

void tc_parallel(uint32_t n, uint32_t width, void (*fn)(uint32_t i, void *arg), void *arg)
{
    parallel_job job = {.fn = fn, .arg = arg, .next = 0, .n = n, .running = 0};
    fp_queue_init(&job.finished);
    while (job.running < width && job.running < n && fp_spawn(&pool, parallel_worker, &job))
        job.running++;
    if (job.running == 0) {
        job.running = 1;
        parallel_worker(&job);
        return;
    }
    while (job.running > 0)
        fp_wait(&pool, &job.finished);
}

/* ---- helpers ------------------------------------------------------------------------------ */

uint64_t tc_initialise_sent_ns, tc_initialise_answered_ns;

uint64_t tc_time_ns(void)
{
#if defined(__aarch64__)
    uint64_t ticks, hz;
    __asm__ volatile("isb; mrs %0, cntpct_el0" : "=r"(ticks));
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
#else
    uint64_t ticks, hz = 10000000u; /* QEMU virt's timebase */
    __asm__ volatile("rdtime %0" : "=r"(ticks));
#endif
    return ticks / hz * 1000000000ull + ticks % hz * 1000000000ull / hz;
}

uint64_t tc_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint8_t fill_byte(uint64_t seed, uint64_t at)
{
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + (at >> 3);
    z = (z ^ (z >> 29)) * 0xBF58476D1CE4E5B9ull;
    return (uint8_t)(z >> ((at & 7) * 8));
}

void tc_fill(uint8_t *dst, size_t len, uint64_t seed, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = fill_byte(seed, offset + i);
}

size_t tc_verify(const uint8_t *src, size_t len, uint64_t seed, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        if (src[i] != fill_byte(seed, offset + i))
            return i;
    return len;
}

size_t tc_strlen(const char *s) { return af_strnlen(s, 1u << 20); }

void tc_join(char *dst, size_t size, const char *a, const char *b, const char *c)
{
    size_t n = 0;
    const char *parts[3] = {a, b, c};
    for (int p = 0; p < 3; p++)
        for (const char *s = parts[p]; s && *s && n + 1 < size; s++)
            dst[n++] = *s;
    dst[n] = 0;
}

const char *tc_status_name(uint64_t status)
{
    static const char *const names[] = {
        "SUCCESS", "ERROR", "INVALID_BUFFER", "INVALID_PATH", "INVALID_FD", "ALLOCATION_ERROR",
        "OUTSTANDING_OPERATIONS", "INVALID_NAME", "TOO_MANY_OPEN_FILES", "SERVER_WAS_DENIED", "INVALID_WRITE",
        "INVALID_READ", "DIRECTORY_IS_FULL", "INVALID_COMMAND", "END_OF_DIRECTORY", "NO_FILE", "NOT_DIRECTORY",
        "ALREADY_EXISTS", "NOT_EMPTY", "NO_SPACE", "FILE_TOO_LARGE", "NAME_TOO_LONG", "IS_DIRECTORY",
        "READ_ONLY_FS", "IO_ERROR", "CORRUPT", "ACCESS_DENIED", "INVALID_ARGUMENT", "BUSY", "NOT_MOUNTED",
    };
    return status < AF_ARRAY_LEN(names) ? names[status] : "(unknown status)";
}

/* ---- entry points ------------------------------------------------------------------------- */

static void *client_main(void *unused)
{
    fs_cmd_params none, init;
    af_memset(&none, 0, sizeof(none));
    init = none;
    if (tc_extensions()) {
        init.initialise.magic = FS_INITIALISE_MAGIC;
        init.initialise.flags = FS_INITIALISE_EXTENSIONS;
    }
    tc_initialise_sent_ns = tc_time_ns();
    tc_reply r = tc_call(FS_CMD_INITIALISE, &init);
    tc_initialise_answered_ns = tc_time_ns();
    if (tc_expect(r.status == FS_STATUS_SUCCESS, "initialise", "%s dialect: status %s",
                  tc_extensions() ? "asyncfat" : "LionsOS", tc_status_name(r.status))) {
        uint32_t roles = test_config.roles;
        if (roles & TC_ROLE_LINUX_FILES)
            tc_role_linux_files();
        if (roles & TC_ROLE_PAIR)
            tc_role_pair();
        if (roles & TC_ROLE_WORKLOAD)
            tc_role_workload();
        if (roles & TC_ROLE_BAD_INPUTS)
            tc_role_bad_inputs();
        if (roles & TC_ROLE_CRASH_CHECK)
            tc_role_crash_check();
        if (roles & TC_ROLE_BENCH)
            tc_role_bench();
        if (roles & TC_ROLE_CRASH_WRITER)
            tc_role_crash_writer();
        /* the idle writer leaves the volume mounted: only write-back may save its file */
        if (roles & TC_ROLE_IDLE_WRITER) {
            tc_role_idle_writer();
        } else {
            r = tc_call(FS_CMD_DEINITIALISE, &none);
            tc_expect(r.status == FS_STATUS_SUCCESS, "deinitialise", "status %s", tc_status_name(r.status));
        }
    }
    tc_printf("most requests in flight at once: %u", (unsigned)most_in_flight);
    tc_printf("%lu passed, %lu failed", (unsigned long)passed, (unsigned long)failed);
    return NULL;
}

static bool magic_is(const void *field, const char *magic, size_t len) { return af_memcmp(field, magic, len) == 0; }

void init(void)
{
    if (!magic_is(serial_config.magic, "sDDF\x03", 5) || !magic_is(fs_config.magic, MK_FS_MAGIC, MK_FS_MAGIC_LEN) ||
        !magic_is(test_config.magic, TC_MAGIC, TC_MAGIC_LEN)) {
        microkit_dbg_puts("test client: a configuration section is missing\n");
        return;
    }
    serial_queue_init(&serial_tx, serial_config.tx.queue.vaddr, serial_config.tx.data.size,
                      serial_config.tx.data.vaddr);
    serial_putchar_init(serial_config.tx.id, &serial_tx);
    can_print = true;
    fs_queue_end_init(&commands, fs_config.server.command_queue.vaddr, true);
    fs_queue_end_init(&completions, fs_config.server.completion_queue.vaddr, false);
    fp_queue_init(&space_waiters);
    fp_config pc = {.tasks = tasks, .slot_count = TC_FIBERS, .stack_arena = stacks, .slot_stride = TC_STACK_BYTES};
    if (fp_init(&pool, &pc) != FP_OK || !fp_spawn(&pool, client_main, NULL)) {
        print_line("FAIL setup: the fiber pool would not start");
        return;
    }
    pump();
}

void notified(microkit_channel channel)
{
    if (can_print && channel == fs_config.server.id)
        pump();
}
