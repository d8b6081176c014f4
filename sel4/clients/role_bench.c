/* Role bench: requests per second through the whole seL4 system (client PD -> asyncfat ->
 * block virtualiser -> virtio driver -> QEMU) with 1 and with 32 requests in flight:
 * file creates (open with CREATE, then close) and 4 KiB reads at random places in 64 files
 * of 256 KiB (16 MiB, eight times the PD's 2 MiB cache). Prints "bench <name> <value>
 * <unit>" lines (sel4/bench_sel4.sh collects them). QEMU emulates the CPU, so the ratio of
 * the two is the result that carries over, not the absolute rates.
 */
#include "sel4/clients/files.h"

#define CREATES_QD1 200u
#define CREATES_QD32 640u
#define READ_FILES 64u
#define READ_FILE_BYTES (256u * 1024u)
#define READS_QD1 1500u
#define READS_QD32 6000u
#define WIDTH 32u

#if defined(__aarch64__)
#define ARCH "aarch64"
#else
#define ARCH "riscv64"
#endif

static uint64_t read_fds[READ_FILES];
static uint32_t create_failures, read_failures;

static void create_one(uint32_t i, void *dir)
{
    char path[64], name[16];
    sddf_snprintf(name, sizeof(name), "/n%04u", (unsigned)i);
    tc_join(path, sizeof(path), dir, name, NULL);
    uint64_t fd;
    if (tc_open(path, FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_EXCLUSIVE, &fd) !=
            FS_STATUS_SUCCESS ||
        tc_close(fd) != FS_STATUS_SUCCESS)
        create_failures++;
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
    uint64_t state = 0x5eed0000u + i;
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

static void report(const char *what, uint64_t count, uint64_t ns, const char *unit)
{
    uint64_t per_second = ns ? count * 1000000000ull / ns : 0;
    tc_printf("bench sel4_%s_%s %lu %s", ARCH, what, (unsigned long)per_second, unit);
}

static uint64_t timed_creates(const char *dir, uint32_t n, uint32_t width)
{
    tc_mkdir(dir);
    uint64_t t0 = tc_time_ns();
    tc_parallel(n, width, create_one, (void *)dir);
    return tc_time_ns() - t0;
}

static uint64_t timed_reads(uint32_t total, uint32_t width)
{
    uint32_t each = total / width;
    uint64_t t0 = tc_time_ns();
    tc_parallel(width, width, read_some, &each);
    return tc_time_ns() - t0;
}

void tc_role_bench(void)
{
    tc_mkdir("/bench");
    uint64_t c1 = timed_creates("/bench/c1", CREATES_QD1, 1);
    uint64_t c32 = timed_creates("/bench/c32", CREATES_QD32, WIDTH);
    report("create_qd1", CREATES_QD1, c1, "files/s");
    report("create_qd32", CREATES_QD32, c32, "files/s");
    uint64_t ratio = c32 ? (uint64_t)CREATES_QD32 * c1 * 100u / ((uint64_t)CREATES_QD1 * c32) : 0;
    tc_printf("bench sel4_%s_create_qd32_over_qd1 %lu.%02lu x", ARCH, (unsigned long)(ratio / 100),
              (unsigned long)(ratio % 100));
    tc_expect(create_failures == 0, "bench_creates", "%u creates failed", (unsigned)create_failures);

    tc_mkdir("/bench/r");
    tc_parallel(READ_FILES, WIDTH, make_read_file, NULL);
    bool opened = true;
    for (uint32_t i = 0; i < READ_FILES; i++) {
        char path[64];
        sddf_snprintf(path, sizeof(path), "/bench/r/f%02u", (unsigned)i);
        opened = opened && tc_open(path, FS_OPEN_FLAGS_READ_ONLY, &read_fds[i]) == FS_STATUS_SUCCESS;
    }
    uint64_t r1 = timed_reads(READS_QD1, 1);
    uint64_t r32 = timed_reads(READS_QD32, WIDTH);
    report("read4k_qd1", READS_QD1, r1, "reads/s");
    report("read4k_qd32", READS_QD32, r32, "reads/s");
    ratio = r32 ? (uint64_t)READS_QD32 * r1 * 100u / ((uint64_t)READS_QD1 * r32) : 0;
    tc_printf("bench sel4_%s_read4k_qd32_over_qd1 %lu.%02lu x", ARCH, (unsigned long)(ratio / 100),
              (unsigned long)(ratio % 100));
    for (uint32_t i = 0; i < READ_FILES; i++)
        tc_close(read_fds[i]);
    tc_expect(opened && read_failures == 0, "bench_reads", "opened %d, %u reads failed", opened,
              (unsigned)read_failures);
}
