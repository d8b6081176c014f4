/* Server instructions per request: the whole server (event loop, request fibers, FAT
 * engine, block client and cache) in this process on a RAM device, 4 KiB random reads with
 * 32 in flight. bench/server.sh runs it under callgrind with collection switched on only
 * inside fs_server_notified, so neither the simulated device nor the client is counted,
 * and divides by the number of requests it prints. */
#include "tests/support/server_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/callgrind.h>

#define FILES 8
#define FILE_BYTES (1u << 20)
#define IN_FLIGHT 32
#define REQUESTS 20000

static server_fixture fx;
static uint64_t fds[FILES];
static uint64_t rng = 88172645463325252ull;

static uint64_t rand64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static bool step(void)
{
    bool device = ram_device_process(&fx.blk.dev) != 0;
    CALLGRIND_TOGGLE_COLLECT;
    bool server = fs_server_notified(&fx.server);
    CALLGRIND_TOGGLE_COLLECT;
    return device || server;
}

static void submit_read(uint64_t slot)
{
    fs_cmd_params p = {.file_read = {
                           .fd = fds[rand64() % FILES],
                           .offset = (rand64() % (FILE_BYTES / 4096)) * 4096,
                           .buf = {(512u << 10) + slot * 4096, 4096},
                       }};
    if (!sf_submit(&fx, 0, FS_CMD_FILE_READ, &p, sizeof p))
        abort();
}

int main(void)
{
    char dir[] = "/tmp/asyncfat-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    sf_options o = {.workdir = dir, .mkfs_args = "-F 32", .image_bytes = 128ull << 20};
    if (sf_init(&fx, &o) != 0) {
        fprintf(stderr, "bench: setup failed\n");
        return 1;
    }
    fs_cmpl init = sf_call(&fx, 0, FS_CMD_INITIALISE, NULL, 0);
    if (init.status != FS_STATUS_SUCCESS) {
        fprintf(stderr, "bench: INITIALISE failed with status %llu\n", (unsigned long long)init.status);
        return 1;
    }
    static uint8_t data[FILE_BYTES];
    memset(data, 0x5a, sizeof data);
    for (int i = 0; i < FILES; i++) {
        char name[32];
        uint64_t done;
        snprintf(name, sizeof name, "/file%d", i);
        sf_share_reset(&fx, 0);
        if (sf_open(&fx, 0, name, FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fds[i]) != FS_STATUS_SUCCESS ||
            sf_write(&fx, 0, fds[i], 0, data, sizeof data, &done) != FS_STATUS_SUCCESS) {
            fprintf(stderr, "bench: writing %s failed\n", name);
            return 1;
        }
    }
    uint64_t submitted = 0, completed = 0;
    for (int i = 0; i < IN_FLIGHT; i++, submitted++)
        submit_read((uint64_t)i);
    while (completed < REQUESTS) {
        step();
        fs_cmpl c;
        while (sf_take(&fx, 0, &c)) {
            if (c.status != FS_STATUS_SUCCESS) {
                fprintf(stderr, "bench: read failed with status %llu\n", (unsigned long long)c.status);
                return 1;
            }
            completed++;
            if (submitted < REQUESTS) {
                submit_read(c.id % IN_FLIGHT);
                submitted++;
            }
        }
    }
    printf("requests %llu\n", (unsigned long long)completed);
    sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0);
    sf_fini(&fx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
