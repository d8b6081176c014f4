/* The Microkit entry points and the platform services that come from the configuration:
 * regions and channels by name, notifications, logging, and the PD's diagnostics. */
#include <microkit.h>

#include "fiberflow/fiberflow.h"
#include "platform/component.h"
#include "platform/microkit/microkit_blk_order.h"
#include "platform/microkit/microkit_pd.h"
#include "protocol/blk_queue.h"
#include "protocol/fs_protocol.h"
#include "server/fs_component.h"

__attribute__((section(".blk_client_config"))) mk_blk_client_config blk_config;
__attribute__((section(".fs_server_config"))) mk_fs_server_config fs_config;
__attribute__((section(".asyncfat_config"))) mk_asyncfat_config asyncfat_config;

/* The engine's and the cache's metadata (server/fs_component.h): the FAT free map takes
 * what the rest leaves, so the arena's size bounds the largest volume (docs/SEL4.md). */
#ifndef ASYNCFAT_ARENA_BYTES
#define ASYNCFAT_ARENA_BYTES (768u * 1024u)
#endif
static alignas(64) uint8_t arena[ASYNCFAT_ARENA_BYTES];

extern char _text[], _bss_end[]; /* the PD's own image (microkit.ld) */

static const mk_fs_connection *clients[1 + MK_ASYNCFAT_MAX_EXTRA_CLIENTS];
static uint32_t client_count;
static bool configured;
static bool asyncfat_valid;
static uint64_t pending_notifications;

/* ---- diagnostics ------------------------------------------------------------------------ */

void mk_log(const char *message)
{
#if ASYNCFAT_DEBUG
    microkit_dbg_puts("asyncfat|");
    microkit_dbg_puts(message);
    microkit_dbg_puts("\n");
#else
    AF_UNUSED(message);
#endif
}

void component_log(const char *message) { mk_log(message); }

/* Decimal digits of v at buf (no NUL); returns the number written (at most 20). */
static size_t format_u64(char *buf, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = digits[n - 1 - i];
    return n;
}

/* A log line assembled from pieces, cut short rather than overrun. */
typedef struct line {
    char text[224];
    size_t len;
} line;

static void line_add(line *l, const char *s)
{
    while (*s && l->len < sizeof(l->text) - 1)
        l->text[l->len++] = *s++;
    l->text[l->len] = '\0';
}

static void line_add_u64(line *l, uint64_t v)
{
    char digits[21];
    digits[format_u64(digits, v)] = '\0';
    line_add(l, digits);
}

static void log_problem(const char *section, const char *what)
{
    line l = {.len = 0};
    line_add(&l, "ERROR: ");
    line_add(&l, section);
    line_add(&l, ": ");
    line_add(&l, what);
    mk_log(l.text);
}

/* ---- configuration checks --------------------------------------------------------------- */

static bool magic_is(const void *field, const char *magic, size_t len)
{
    return af_memcmp(field, magic, len) == 0;
}

static bool channel_valid(uint8_t id)
{
    return id <= MICROKIT_MAX_CHANNEL_ID && (microkit_notifications >> id) & 1u;
}

typedef struct span {
    uintptr_t start, end;
} span;

static span spans[4 + 3 * (1 + MK_ASYNCFAT_MAX_EXTRA_CLIENTS)];
static uint32_t span_count;

/* A region the configuration names: mapped somewhere (non-NULL), big enough, aligned,
 * clear of the PD's own image and of every region named before it. */
static bool region_valid(const char *section, const char *name, const mk_region_resource *r, uint64_t min_size,
                         uintptr_t align)
{
    uintptr_t start = (uintptr_t)r->vaddr;
    const char *why = NULL;
    if (!start)
        why = "not mapped (vaddr 0)";
    else if (r->size < min_size || r->size == 0)
        why = "too small";
    else if (start + r->size < start)
        why = "runs past the end of the address space";
    else if (start % align)
        why = "misaligned";
    else if (start < (uintptr_t)_bss_end && start + r->size > (uintptr_t)_text)
        why = "overlaps the PD's own image";
    for (uint32_t i = 0; !why && i < span_count; i++)
        if (start < spans[i].end && start + r->size > spans[i].start)
            why = "overlaps another region";
    if (why) {
        line l = {.len = 0};
        line_add(&l, name);
        line_add(&l, " region ");
        line_add(&l, why);
        log_problem(section, l.text);
        return false;
    }
    if (span_count < AF_ARRAY_LEN(spans))
        spans[span_count++] = (span){start, start + r->size};
    return true;
}

static bool blk_config_valid(void)
{
    const char *s = ".blk_client_config";
    if (!magic_is(blk_config.magic, MK_BLK_MAGIC, MK_BLK_MAGIC_LEN)) {
        log_problem(s, "no sDDF magic (was the section written into this ELF?)");
        return false;
    }
    uint16_t n = blk_config.virt.num_buffers;
    if (n == 0) {
        log_problem(s, "num_buffers is 0");
        return false;
    }
    if (!channel_valid(blk_config.virt.id)) {
        log_problem(s, "its channel is not one of this PD's");
        return false;
    }
    return region_valid(s, "storage_info", &blk_config.virt.storage_info, sizeof(blk_storage_info), 8) &&
           region_valid(s, "req_queue", &blk_config.virt.req_queue, blk_req_queue_bytes(n), 8) &&
           region_valid(s, "resp_queue", &blk_config.virt.resp_queue, blk_resp_queue_bytes(n), 8) &&
           region_valid(s, "data", &blk_config.data, BLK_TRANSFER_SIZE, BLK_TRANSFER_SIZE);
}

static bool connection_valid(const char *section, const mk_fs_connection *c)
{
    if (!channel_valid(c->id)) {
        log_problem(section, "a client's channel is not one of this PD's");
        return false;
    }
    return region_valid(section, "command_queue", &c->command_queue, sizeof(fs_queue), 64) &&
           region_valid(section, "completion_queue", &c->completion_queue, sizeof(fs_queue), 64) &&
           region_valid(section, "share", &c->share, 1, 1);
}

static bool fs_configs_valid(void)
{
    if (magic_is(fs_config.magic, MK_FS_MAGIC, MK_FS_MAGIC_LEN)) {
        if (!connection_valid(".fs_server_config", &fs_config.client))
            return false;
        clients[client_count++] = &fs_config.client;
    }
    if (magic_is(asyncfat_config.magic, MK_ASYNCFAT_MAGIC, MK_ASYNCFAT_MAGIC_LEN)) {
        if (asyncfat_config.client_count > MK_ASYNCFAT_MAX_EXTRA_CLIENTS) {
            log_problem(".asyncfat_config", "more clients than it has room for");
            return false;
        }
        for (uint32_t i = 0; i < asyncfat_config.client_count; i++) {
            if (!connection_valid(".asyncfat_config", &asyncfat_config.clients[i]))
                return false;
            clients[client_count++] = &asyncfat_config.clients[i];
        }
        asyncfat_valid = true;
    }
    if (client_count == 0) {
        log_problem(".fs_server_config", "no LionsOS magic, and no clients in .asyncfat_config");
        return false;
    }
    return true;
}

bool mk_asyncfat_config_valid(void) { return asyncfat_valid; }

/* ---- regions and channels by name ------------------------------------------------------- */

/* The index after `prefix` in `name` ("fs_share_3" -> 3), or -1. */
static int indexed(const char *name, const char *prefix)
{
    size_t n = 0;
    while (prefix[n]) {
        if (name[n] != prefix[n])
            return -1;
        n++;
    }
    if (name[n] < '0' || name[n] > '9')
        return -1;
    int value = 0;
    for (; name[n] >= '0' && name[n] <= '9'; n++) {
        value = value * 10 + (name[n] - '0');
        if (value > 1000)
            return -1;
    }
    return name[n] == '\0' ? value : -1;
}

static bool name_is(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static void *region_out(const mk_region_resource *r, size_t *size)
{
    if (size)
        *size = (size_t)r->size;
    return r->vaddr;
}

/* The block queues are the private ones of microkit_blk_order.h, sized by their capacity
 * (which comes from num_buffers, not from the real regions' sizes): the component derives
 * the capacity from these sizes. */
void *component_region(const char *name, size_t *size)
{
    if (!configured)
        return NULL;
    uint32_t n = mk_blk_order_capacity();
    if (name_is(name, "blk_storage_info"))
        return region_out(&blk_config.virt.storage_info, size);
    if (name_is(name, "blk_requests")) {
        mk_region_resource r = {mk_blk_order_requests(), blk_req_queue_bytes(n)};
        return region_out(&r, size);
    }
    if (name_is(name, "blk_responses")) {
        mk_region_resource r = {mk_blk_order_responses(), blk_resp_queue_bytes(n)};
        return region_out(&r, size);
    }
    if (name_is(name, "blk_data"))
        return region_out(&blk_config.data, size);
    if (name_is(name, FS_COMPONENT_REGION_ARENA)) {
        mk_region_resource r = {arena, sizeof(arena)};
        return region_out(&r, size);
    }
    int i;
    if ((i = indexed(name, FS_COMPONENT_REGION_COMMANDS "_")) >= 0 && (uint32_t)i < client_count)
        return region_out(&clients[i]->command_queue, size);
    if ((i = indexed(name, FS_COMPONENT_REGION_COMPLETIONS "_")) >= 0 && (uint32_t)i < client_count)
        return region_out(&clients[i]->completion_queue, size);
    if ((i = indexed(name, FS_COMPONENT_REGION_SHARE "_")) >= 0 && (uint32_t)i < client_count)
        return region_out(&clients[i]->share, size);
    return NULL;
}

unsigned component_channel(const char *name)
{
    if (!configured)
        return COMPONENT_NO_CHANNEL;
    if (name_is(name, FS_COMPONENT_CHANNEL_BLK))
        return blk_config.virt.id;
    int i = indexed(name, "fs_client_");
    if (i >= 0 && (uint32_t)i < client_count)
        return clients[i]->id;
    return COMPONENT_NO_CHANNEL;
}

/* ---- notifications ------------------------------------------------------------------------ */

/* Collected during an entry and sent as it ends, each channel once; the last one goes with
 * the PD's next receive (a deferred notify), which saves a kernel entry per pass. The
 * component's notice to the block driver first moves its requests to the real queue. */
void component_notify(unsigned channel)
{
    if (channel == blk_config.virt.id && !mk_blk_order_forward())
        return;
    if (channel <= MICROKIT_MAX_CHANNEL_ID && channel_valid((uint8_t)channel))
        pending_notifications |= 1ull << channel;
}

static void send_notifications(void)
{
    while (pending_notifications) {
        unsigned channel = af_ctz64(pending_notifications);
        pending_notifications &= pending_notifications - 1;
        if (pending_notifications == 0 && !microkit_have_signal)
            microkit_deferred_notify(channel);
        else
            microkit_notify(channel);
    }
}

/* ---- diagnostics at start and at unmount ------------------------------------------------- */

static void report_memory(void)
{
    const fs_component_memory *m = fs_component_memory_use();
    line l = {.len = 0};
    line_add(&l, "memory: ");
    line_add_u64(&l, m->fibers);
    line_add(&l, " fibers x ");
    line_add_u64(&l, FS_COMPONENT_STACK_SIZE);
    line_add(&l, " B stacks, cache ");
    line_add_u64(&l, m->cache_buffers);
    line_add(&l, " x 4 KiB, staging ");
    line_add_u64(&l, m->staging_slots);
    line_add(&l, " x ");
    line_add_u64(&l, m->staging_blocks);
    line_add(&l, " blocks, arena ");
    line_add_u64(&l, m->arena_fixed);
    line_add(&l, " of ");
    line_add_u64(&l, m->arena_size);
    line_add(&l, " B + free map for ");
    line_add_u64(&l, m->free_map_clusters);
    line_add(&l, " clusters, ");
    line_add_u64(&l, client_count);
    line_add(&l, " client(s)");
    mk_log(l.text);
}

/* Each fiber's most stack used so far (painted in debug builds), so stack sizes can be
 * chosen from measurements: eight fibers a line. */
static void report_stacks(void)
{
    const fp_pool *pool = fs_component_pool();
    if (!pool || !FS_COMPONENT_PAINT_STACKS)
        return;
    size_t most = 0;
    for (uint32_t first = 0; first < pool->slot_count; first += 8) {
        line l = {.len = 0};
        line_add(&l, "stack high water, fibers ");
        line_add_u64(&l, first);
        line_add(&l, "..: ");
        for (uint32_t i = first; i < first + 8 && i < pool->slot_count; i++) {
            size_t used = fp_slot_stack_high_water(pool, i);
            most = used > most ? used : most;
            line_add_u64(&l, used);
            line_add(&l, " ");
        }
        mk_log(l.text);
    }
    line l = {.len = 0};
    line_add(&l, "stack high water: ");
    line_add_u64(&l, most);
    line_add(&l, " of ");
    line_add_u64(&l, fp_slot_stack_size(pool, 0));
    line_add(&l, " bytes");
    mk_log(l.text);
}

/* Whether the volume was cleanly unmounted, and what recovery did if not: a test that cut
 * the power reads here that asyncfat's recovery, not a checker, made the volume clean. */
static void report_mount(void)
{
    const fat_mount_report *r = fs_component_mount_report();
    if (!r)
        return;
    line l = {.len = 0};
    if (!r->was_dirty) {
        line_add(&l, "mounted: clean");
    } else {
        line_add(&l, r->needs_check ? "mounted: was dirty, damage recovery leaves to a checker"
                                    : r->recovered ? "mounted: was dirty, recovered" : "mounted: was dirty");
        line_add(&l, " (renames finished ");
        line_add_u64(&l, r->renames_completed);
        line_add(&l, ", orphans removed ");
        line_add_u64(&l, r->orphans_removed);
        line_add(&l, ", chains cut ");
        line_add_u64(&l, r->chains_cut);
        line_add(&l, ", lost clusters freed ");
        line_add_u64(&l, r->lost_freed);
        line_add(&l, ", FAT blocks copied ");
        line_add_u64(&l, r->fat_blocks_copied);
        line_add(&l, ")");
    }
    mk_log(l.text);
}

static void stack_overflow(ff_fiber *fiber)
{
    line l = {.len = 0};
    line_add(&l, "FATAL: a fiber overran its stack of ");
    line_add_u64(&l, ff_stack_size(fiber));
    line_add(&l, " bytes (its canary is overwritten); stopping");
    mk_log(l.text);
    __builtin_trap();
}

/* ---- entry points ---------------------------------------------------------------------- */

void init(void)
{
    ff_set_overflow_handler(stack_overflow);
    configured = blk_config_valid() && fs_configs_valid();
    if (!configured) {
        mk_log("not serving: the configuration above is wrong or missing");
        return;
    }
    mk_clock_init();
    mk_timer_init();
    /* As LionsOS's FAT PD does: the virtualiser (a higher priority) marks the storage
     * ready once it has read the partition table. */
    while (!blk_storage_is_ready(blk_config.virt.storage_info.vaddr))
        ;
    mk_blk_order_init(blk_config.virt.req_queue.vaddr, blk_config.virt.resp_queue.vaddr, blk_config.virt.num_buffers);
    fs_component_init();
    report_memory();
    mk_timer_arm(fs_component_deadline());
    send_notifications();
}

void notified(microkit_channel channel)
{
    if (!configured)
        return;
    if (mk_timer_fired(channel))
        channel = COMPONENT_TIMER_CHANNEL;
    bool was_mounted = fs_component_mounted();
    /* Again while BARRIERs were answered here during the pass: nothing else would wake the
     * component to see those responses. */
    do {
        if (mk_blk_order_collect())
            pending_notifications |= 1ull << blk_config.virt.id;
        mk_blk_order_answered();
        fs_component_notified(channel);
    } while (mk_blk_order_answered());
    if (!was_mounted && fs_component_mounted())
        report_mount();
    if (was_mounted && !fs_component_mounted())
        report_stacks();
    mk_timer_arm(fs_component_deadline());
    send_notifications();
}
