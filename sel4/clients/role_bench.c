/* Role bench: requests per second through the whole seL4 system (client PD -> asyncfat ->
 * block virtualiser -> virtio driver -> QEMU) with 1 and with 32 requests in flight:
 * file creates (open with CREATE, then close; the same work at both depths: 640 new files
 * over 8 new directories, which the engine locks one insert at a time) and 4 KiB
 * reads at random places in 64 files of 256 KiB (16 MiB, eight times the PD's 2 MiB data
 * region). Three rounds, 1 and 32 in flight taking turns; the median of each is printed as
 * "bench <name> <value> <unit>" (sel4/bench_sel4.sh collects them). QEMU emulates the CPU
 * on a shared machine, so the ratio is the result that carries over, not the rates.
 * Also: the time from power-on to the first INITIALISE's answer (the volume mounted) and
 * that INITIALISE alone; writing those 16 MiB (256 KiB a file in 1 MiB calls, 32 files at
 * once), and reading them whole (256 KiB calls) with 1 and with 32 in flight, in MiB/s.
 */
#include "sel4/clients/files.h"

#define ROUNDS 3u
#define CREATES 640u       /* per round and mode, over CREATE_DIRS directories */
#define CREATE_DIRS 8u
#define READ_FILES 64u
#define READ_FILE_BYTES (256u * 1024u)
#define READS_QD1 600u
#define READS_QD32 3200u
#define WIDTH 32u

#if defined(__aarch64__)
#define ARCH "aarch64"
#else
#define ARCH "riscv64"
#endif

static uint64_t read_fds[READ_FILES];
static uint32_t read_round; /* a new series of places each timed run */
static uint32_t create_failures, read_failures;

static void create_one(uint32_t i, void *dir)
{
    char path[64], name[16];
    sddf_snprintf(name, sizeof(name), "/d%u/n%04u", (unsigned)(i % CREATE_DIRS), (unsigned)i);
    tc_join(path, sizeof(path), dir, name, NULL);
    uint64_t fd;
    if (tc_open(path, FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_EXCLUSIVE, &fd) !=
            FS_STATUS_SUCCESS ||
        tc_close(fd) != FS_STATUS_SUCCESS)
        create_failures++;
}

static uint64_t mib_per_second(uint64_t bytes, uint64_t ns) { return ns ? bytes * 1000000000ull / ns / 1048576u : 0; }

static void read_whole(uint32_t i, void *per_fiber)
{
    uint32_t files = *(uint32_t *)per_fiber;
    uint8_t *buf = tc_area();
    for (uint32_t f = i * files; f < (i + 1) * files; f++) {
        uint64_t done;
        if (tc_read(read_fds[f], 0, buf, READ_FILE_BYTES, &done) != FS_STATUS_SUCCESS || done != READ_FILE_BYTES ||
            tc_verify(buf, READ_FILE_BYTES, 5000u + f, 0) != READ_FILE_BYTES)
            read_failures++;
    }
}

static uint64_t timed_whole_reads(uint32_t width)
{
    uint32_t files = READ_FILES / width;
    uint64_t t0 = tc_time_ns();
    tc_parallel(width, width, read_whole, &files);
    return mib_per_second((uint64_t)READ_FILES * READ_FILE_BYTES, tc_time_ns() - t0);
}

static void make_read_file(uint32_t i, void *unused)
{
    char path[64], why[160];
    sddf_snprintf(path, sizeof(path), "/bench/r/f%02u", (unsigned)i);
    if (!tc_write_file(path, READ_FILE_BYTES, 5000u + i, 0, false, why, sizeof(why)))
        read_failures++;
}

static void read_some(uint32_t i, void *per_fiber)
{
    uint64_t state = 0x5eed0000u + read_round * 1000u + i;
    uint32_t count = *(uint32_t *)per_fiber;
    uint8_t *buf = tc_area();
    for (uint32_t k = 0; k < count; k++) {
        uint64_t r = tc_random(&state);
        uint32_t file = (uint32_t)(r % READ_FILES);
        uint64_t block = (r >> 16) % (READ_FILE_BYTES / 4096u);
        uint64_t done;
        if (tc_read(read_fds[file], block * 4096u, buf, 4096, &done) != FS_STATUS_SUCCESS || done != 4096 ||
            tc_verify(buf, 4096, 5000u + file, block * 4096u) != 4096)
            read_failures++;
    }
}

static uint64_t per_second(uint64_t count, uint64_t ns) { return ns ? count * 1000000000ull / ns : 0; }

static uint64_t median3(const uint64_t v[ROUNDS])
{
    uint64_t a = v[0], b = v[1], c = v[2];
    return a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
}

static void report(const char *what, const uint64_t qd1[ROUNDS], const uint64_t qd32[ROUNDS], const char *unit)
{
    uint64_t one = median3(qd1), many = median3(qd32);
    tc_printf("bench sel4_%s_%s_qd1 %lu %s", ARCH, what, (unsigned long)one, unit);
    tc_printf("bench sel4_%s_%s_qd32 %lu %s", ARCH, what, (unsigned long)many, unit);
    uint64_t ratio = one ? many * 100u / one : 0;
    tc_printf("bench sel4_%s_%s_qd32_over_qd1 %lu.%02lu x", ARCH, what, (unsigned long)(ratio / 100),
              (unsigned long)(ratio % 100));
}

static uint64_t timed_creates(uint32_t round, uint32_t n, uint32_t width)
{
    static char dir[32];
    sddf_snprintf(dir, sizeof(dir), "/bench/c%u_%u", (unsigned)width, (unsigned)round);
    tc_mkdir(dir);
    for (uint32_t d = 0; d < CREATE_DIRS; d++) {
        char sub[48], name[8];
        sddf_snprintf(name, sizeof(name), "/d%u", (unsigned)d);
        tc_join(sub, sizeof(sub), dir, name, NULL);
        tc_mkdir(sub);
    }
    uint64_t t0 = tc_time_ns();
    tc_parallel(n, width, create_one, dir);
    return per_second(n, tc_time_ns() - t0);
}

static uint64_t timed_reads(uint32_t total, uint32_t width)
{
    uint32_t each = total / width;
    read_round++;
    uint64_t t0 = tc_time_ns();
    tc_parallel(width, width, read_some, &each);
    return per_second((uint64_t)each * width, tc_time_ns() - t0);
}

void tc_role_bench(void)
{
    uint64_t qd1[ROUNDS], qd32[ROUNDS];
    tc_printf("bench sel4_%s_power_on_to_mounted %lu ms", ARCH, (unsigned long)(tc_initialise_answered_ns / 1000000u));
    tc_printf("bench sel4_%s_initialise_mount %lu ms", ARCH,
              (unsigned long)((tc_initialise_answered_ns - tc_initialise_sent_ns) / 1000000u));
    tc_mkdir("/bench");
    for (uint32_t r = 0; r < ROUNDS; r++) {
        qd1[r] = timed_creates(r, CREATES, 1);
        qd32[r] = timed_creates(r, CREATES, WIDTH);
    }
    report("create", qd1, qd32, "files/s");
    tc_expect(create_failures == 0, "bench_creates", "%u creates failed", (unsigned)create_failures);

    tc_mkdir("/bench/r");
    uint64_t t0 = tc_time_ns();
    tc_parallel(READ_FILES, WIDTH, make_read_file, NULL);
    tc_printf("bench sel4_%s_write_256k_files_qd32 %lu MiB/s", ARCH,
              (unsigned long)mib_per_second((uint64_t)READ_FILES * READ_FILE_BYTES, tc_time_ns() - t0));
    bool opened = true;
    for (uint32_t i = 0; i < READ_FILES; i++) {
        char path[64];
        sddf_snprintf(path, sizeof(path), "/bench/r/f%02u", (unsigned)i);
        opened = opened && tc_open(path, FS_OPEN_FLAGS_READ_ONLY, &read_fds[i]) == FS_STATUS_SUCCESS;
    }
    for (uint32_t r = 0; r < ROUNDS; r++) {
        qd1[r] = timed_reads(READS_QD1, 1);
        qd32[r] = timed_reads(READS_QD32, WIDTH);
    }
    report("read4k", qd1, qd32, "reads/s");
    for (uint32_t r = 0; r < ROUNDS; r++) {
        qd1[r] = timed_whole_reads(1);
        qd32[r] = timed_whole_reads(WIDTH);
    }
    report("read256k", qd1, qd32, "MiB/s");
    for (uint32_t i = 0; i < READ_FILES; i++)
        tc_close(read_fds[i]);
    tc_expect(opened && read_failures == 0, "bench_reads", "opened %d, %u reads failed", opened,
              (unsigned)read_failures);
}
