/* asyncfat-blkd: the block driver as a component program, configured by its command line.
 * Start it from a launcher system description (lx_component_spec.argv). */
#include "platform/linux/blk_driver_component.h"
#include "platform/linux/runtime.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: asyncfat-blkd [options] IMAGE\n"
    "  --sector-size N      512, 1024, 2048 or 4096 (default: the device's)\n"
    "  --read-only          refuse writes\n"
    "  --queue-depth N      requests in flight (default 64)\n"
    "  --queue-capacity N   entries in the queues (default: what the regions hold)\n"
    "  --capacity BLOCKS    device size in 4096-byte blocks (default: the image)\n"
    "  --latency-us N       device model: per-request latency\n"
    "  --device-qd N        device model: requests served at once\n"
    "  --bandwidth-mbps N   device model: shared bandwidth cap, MB/s\n"
    "  --fail-request N     the Nth request fails with ERR_IO\n"
    "  --fail-blocks F:C    requests touching blocks F..F+C-1 fail with ERR_IO\n"
    "  --power-cut-after N  drop every write after the Nth\n"
    "  --lose-unflushed     at the cut, unflushed blocks may keep their old content\n"
    "  --seed N             for --lose-unflushed\n"
    "  --log PATH           record writes and flushes (blk_log.h)\n";

static bool parse_u64(const char *text, uint64_t *out)
{
    char *end;
    *out = strtoull(text, &end, 0);
    return *text && *end == '\0';
}

static bool parse_args(int argc, char **argv, blk_driver_config *c, uint32_t *queue_capacity)
{
    static const struct option options[] = {
        {"sector-size", 1, 0, 's'}, {"read-only", 0, 0, 'r'},       {"queue-depth", 1, 0, 'q'},
        {"queue-capacity", 1, 0, 'Q'}, {"capacity", 1, 0, 'c'},     {"latency-us", 1, 0, 'l'},
        {"device-qd", 1, 0, 'd'},   {"bandwidth-mbps", 1, 0, 'b'},  {"fail-request", 1, 0, 'f'},
        {"fail-blocks", 1, 0, 'F'}, {"power-cut-after", 1, 0, 'p'}, {"lose-unflushed", 0, 0, 'L'},
        {"seed", 1, 0, 'S'},        {"log", 1, 0, 'o'},             {0, 0, 0, 0},
    };
    memset(c, 0, sizeof *c);
    *queue_capacity = 0;
    int opt;
    uint64_t v = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        bool numeric = strchr("sqQcldbfpS", opt) != NULL;
        if (opt == '?' || (numeric && !parse_u64(optarg, &v)))
            return false;
        switch (opt) {
        case 's':
            if (v > 4096)
                return false;
            c->sector_size = (uint16_t)v; /* the driver checks it is a sector size */
            break;
        case 'r': c->read_only = true; break;
        case 'q': c->queue_depth = (uint32_t)af_min_u64(v, UINT32_MAX); break;
        case 'Q': *queue_capacity = (uint32_t)af_min_u64(v, UINT32_MAX); break;
        case 'c': c->capacity = v; break;
        case 'l': c->model.latency_ns = v * 1000; break;
        case 'd': c->model.device_queue_depth = (uint32_t)af_min_u64(v, UINT32_MAX); break;
        case 'b': c->model.bandwidth_bytes_per_s = v * 1000000; break;
        case 'f': c->faults.fail_request = v; break;
        case 'F': {
            char *colon = strchr(optarg, ':');
            if (!colon)
                return false;
            *colon = '\0';
            if (!parse_u64(optarg, &c->faults.fail_first_block) || !parse_u64(colon + 1, &c->faults.fail_block_count))
                return false;
            break;
        }
        case 'p': c->faults.power_cut_after_writes = v; break;
        case 'L': c->faults.lose_unflushed = true; break;
        case 'S': c->faults.seed = v; break;
        case 'o': c->faults.log_path = optarg; break;
        default: return false;
        }
    }
    if (optind != argc - 1)
        return false;
    c->path = argv[optind];
    return true;
}

void component_init(void)
{
    int argc;
    char **argv = lx_component_args(&argc);
    blk_driver_config config;
    uint32_t queue_capacity;
    if (!parse_args(argc, argv, &config, &queue_capacity)) {
        fputs(usage, stderr);
        lx_runtime_stop(2);
        return;
    }
    blk_driver_component_configure(&config, queue_capacity);
    blk_driver_component_init();
}

void component_notified(unsigned channel) { blk_driver_component_notified(channel); }
