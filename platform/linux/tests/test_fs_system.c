/* fs_system in each layout (driver and server on a thread of this process, in a process
 * of their own, each in its own, or run by the client's own thread while it waits): the real driver and server on an image made by mkfs.fat, driven over the protocol
 * by a small client in this process: files written and read back with several requests in
 * flight, stat, remove, a clean unmount that fsck.fat accepts; a server process killed
 * under the client is reported, by the process's name; a second system asked to be
 * hosted while one is runs in a process of its own; a client that is a component of the
 * system runs on the server's thread; and small_pages maps the regions without huge-page
 * advice. */
#include "platform/linux/blk_driver_component.h"
#include "platform/linux/fs_system.h"
#include "server/fs_component.h"
#include "tools/fs_client.h"
#include "tests/harness.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEPTH 8u
#define CHUNK (16u * 1024u)
#define CHUNKS 96u
#define DATA_BASE (64u * 1024u)

typedef struct client {
    fs_system *system;
    fs_system_client *ep;
    fs_queue_end commands, completions;
} client;

static const fs_system_layout layouts[] = {FS_SYSTEM_SHARED, FS_SYSTEM_PROCESSES, FS_SYSTEM_HOSTED, FS_SYSTEM_INLINE};
static const char *const layout_names[] = {"shared", "processes", "hosted", "inline"};

static void client_init(client *c, fs_system *s)
{
    fs_system_client *ep = &s->clients[0];
    c->system = s;
    c->ep = ep;
    fs_queue_end_init(&c->commands, ep->commands, true);
    fs_queue_end_init(&c->completions, ep->completions, false);
}

static void submit(client *c, uint64_t id, uint64_t type, const fs_cmd_params *p)
{
    fs_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.cmd.id = id;
    msg.cmd.type = type;
    if (p)
        msg.cmd.params = *p;
    fs_queue_produce(&c->commands, &msg, 1);
}

static void notify(client *c)
{
    if (c->system->layout == FS_SYSTEM_INLINE) {
        fs_system_inline_notify(c->system);
        return;
    }
    uint64_t one = 1;
    if (write(c->ep->notify_fd, &one, sizeof one) != sizeof one)
        abort();
}

/* Wait (at most 20 s) for one completion. False on a timeout. */
static bool next_completion(client *c, fs_cmpl *out)
{
    for (;;) {
        fs_msg msg;
        if (fs_queue_consume(&c->completions, &msg, 1) == 1) {
            *out = msg.cmpl;
            return true;
        }
        if (c->system->layout == FS_SYSTEM_INLINE) {
            /* the driver and the server run here, now */
            char why[160];
            fs_system_inline_wait(c->system, 20000);
            if (fs_queue_available(&c->completions) == 0 && fs_system_failed(c->system, why, sizeof why))
                return false;
            continue;
        }
        struct pollfd p = {.fd = c->ep->wait_fd, .events = POLLIN};
        if (poll(&p, 1, 20000) != 1)
            return false;
        uint64_t count;
        if (read(c->ep->wait_fd, &count, sizeof count) < 0)
            return false;
    }
}

static fs_cmpl call(client *c, uint64_t type, const fs_cmd_params *p)
{
    fs_cmpl r = {.status = ~0ull};
    submit(c, 1000, type, p);
    notify(c);
    if (!next_completion(c, &r) || r.id != 1000)
        r.status = ~0ull;
    return r;
}

static fs_buffer put_path(client *c, const char *path)
{
    memcpy(c->ep->share, path, strlen(path));
    return (fs_buffer){0, strlen(path)};
}

static uint8_t pattern(uint32_t chunk, uint32_t i) { return (uint8_t)(chunk * 31 + i / 7); }

/* CHUNKS chunks at DEPTH in flight, each in its own buffer; reads are checked. */
static bool transfer(client *c, uint64_t fd, bool write_data)
{
    uint32_t next = 0, done = 0;
    while (done < CHUNKS) {
        for (; next < CHUNKS && next - done < DEPTH; next++) {
            uint64_t slot = next % DEPTH;
            uint8_t *buf = c->ep->share + DATA_BASE + slot * CHUNK;
            fs_buffer b = {DATA_BASE + slot * CHUNK, CHUNK};
            fs_cmd_params p;
            if (write_data) {
                for (uint32_t i = 0; i < CHUNK; i++)
                    buf[i] = pattern(next, i);
                p = (fs_cmd_params){.file_write = {fd, (uint64_t)next * CHUNK, b}};
            } else {
                memset(buf, 0, CHUNK);
                p = (fs_cmd_params){.file_read = {fd, (uint64_t)next * CHUNK, b}};
            }
            submit(c, next, write_data ? FS_CMD_FILE_WRITE : FS_CMD_FILE_READ, &p);
        }
        notify(c);
        fs_cmpl r;
        if (!EXPECT(next_completion(c, &r)) || !EXPECT(r.status == FS_STATUS_SUCCESS && r.data == CHUNK))
            return false;
        if (!write_data) {
            const uint8_t *buf = c->ep->share + DATA_BASE + (r.id % DEPTH) * CHUNK;
            for (uint32_t i = 0; i < CHUNK; i++)
                if (buf[i] != pattern((uint32_t)r.id, i))
                    return EXPECT(!"read back what was written");
        }
        done++;
    }
    return true;
}

static bool make_image(const char *path)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -f '%s' && mkfs.fat -F 32 -C '%s' %u >/dev/null 2>&1", path, path, 64u * 1024u);
    return system(cmd) == 0;
}

static bool fsck_clean(const char *path)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "fsck.fat -n '%s' >/dev/null 2>&1", path);
    return system(cmd) == 0;
}

static bool have_tools(void)
{
    return system("command -v mkfs.fat >/dev/null && command -v fsck.fat >/dev/null") == 0;
}

TEST(every_layout_serves_files_and_unmounts_clean)
{
    if (!have_tools()) {
        printf("SKIP every_layout_serves_files_and_unmounts_clean: dosfstools not installed\n");
        return;
    }
    char image[600];
    snprintf(image, sizeof image, "%s/layouts.img", test_tmpdir());
    for (unsigned l = 0; l < AF_ARRAY_LEN(layouts); l++) {
        CHECK(make_image(image));
        fs_system s;
        fs_system_options o = {.image_path = image, .layout = layouts[l], .data_bytes = 24u << 20};
        CHECK_MSG(fs_system_start(&s, &o) == 0, "layout %s", layout_names[l]);
        client c;
        client_init(&c, &s);
        fs_cmd_params p;
        bool ok = call(&c, FS_CMD_INITIALISE, NULL).status == FS_STATUS_SUCCESS;
        p = (fs_cmd_params){.dir_create = {put_path(&c, "/dir")}};
        ok = ok && call(&c, FS_CMD_DIR_CREATE, &p).status == FS_STATUS_SUCCESS;
        p = (fs_cmd_params){.file_open = {put_path(&c, "/dir/data.bin"), FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE}};
        fs_cmpl opened = call(&c, FS_CMD_FILE_OPEN, &p);
        ok = ok && opened.status == FS_STATUS_SUCCESS && transfer(&c, opened.data, true);
        p = (fs_cmd_params){.file_close = {opened.data}};
        ok = ok && call(&c, FS_CMD_FILE_CLOSE, &p).status == FS_STATUS_SUCCESS;
        p = (fs_cmd_params){.file_open = {put_path(&c, "/dir/data.bin"), FS_OPEN_FLAGS_READ_ONLY}};
        opened = call(&c, FS_CMD_FILE_OPEN, &p);
        ok = ok && opened.status == FS_STATUS_SUCCESS && transfer(&c, opened.data, false);
        p = (fs_cmd_params){.file_close = {opened.data}};
        ok = ok && call(&c, FS_CMD_FILE_CLOSE, &p).status == FS_STATUS_SUCCESS;
        p = (fs_cmd_params){.stat = {put_path(&c, "/dir/data.bin"), {4096, sizeof(fs_stat)}}};
        ok = ok && call(&c, FS_CMD_STAT, &p).status == FS_STATUS_SUCCESS;
        fs_stat st;
        memcpy(&st, c.ep->share + 4096, sizeof st);
        ok = ok && EXPECT(st.size == (uint64_t)CHUNKS * CHUNK);
        /* a second file, removed again */
        p = (fs_cmd_params){.file_open = {put_path(&c, "/dir/gone"), FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE}};
        opened = call(&c, FS_CMD_FILE_OPEN, &p);
        p = (fs_cmd_params){.file_close = {opened.data}};
        ok = ok && opened.status == FS_STATUS_SUCCESS && call(&c, FS_CMD_FILE_CLOSE, &p).status == FS_STATUS_SUCCESS;
        p = (fs_cmd_params){.file_remove = {put_path(&c, "/dir/gone")}};
        ok = ok && call(&c, FS_CMD_FILE_REMOVE, &p).status == FS_STATUS_SUCCESS;
        ok = ok && call(&c, FS_CMD_DEINITIALISE, NULL).status == FS_STATUS_SUCCESS;
        char why[160];
        bool failed = fs_system_failed(&s, why, sizeof why);
        int stopped = fs_system_stop(&s, 5000);
        CHECK_MSG(ok, "layout %s", layout_names[l]);
        CHECK_MSG(!failed, "layout %s: %s", layout_names[l], why);
        CHECK_EQ(stopped, 0);
        CHECK_MSG(fsck_clean(image), "layout %s: fsck.fat finds the volume unclean", layout_names[l]);
    }
}

TEST(a_killed_server_is_reported_by_its_process)
{
    if (!have_tools()) {
        printf("SKIP a_killed_server_is_reported_by_its_process: dosfstools not installed\n");
        return;
    }
    char image[600];
    snprintf(image, sizeof image, "%s/killed.img", test_tmpdir());
    static const char *const names[] = {"fs_server+blk_driver", "fs_server"};
    for (unsigned l = 0; l < 2; l++) { /* the layouts with a server process to kill */
        CHECK(make_image(image));
        fs_system s;
        fs_system_options o = {.image_path = image, .layout = layouts[l], .data_bytes = 24u << 20};
        CHECK(fs_system_start(&s, &o) == 0);
        client c;
        client_init(&c, &s);
        bool mounted = call(&c, FS_CMD_INITIALISE, NULL).status == FS_STATUS_SUCCESS;
        if (s.sys.pids[1] > 0)
            kill(s.sys.pids[1], SIGKILL);
        char why[160] = "";
        bool failed = false;
        for (int i = 0; i < 2000 && !failed; i++) {
            failed = fs_system_failed(&s, why, sizeof why);
            if (!failed)
                usleep(1000);
        }
        int stopped = fs_system_stop(&s, 2000);
        CHECK(mounted);
        CHECK_MSG(failed, "layout %s", layout_names[l]);
        CHECK_MSG(strncmp(why, names[l], strlen(names[l])) == 0 && strstr(why, "signal 9"), "layout %s: %s",
                  layout_names[l], why);
        CHECK_EQ(stopped, -1);
    }
}

/* The VmFlags of the mapping that holds addr (/proc/self/smaps) into flags; false if none. */
static bool mapping_flags(const void *addr, char *flags, size_t size)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return false;
    char line[512];
    bool inside = false, found = false;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, size, "%s", line + 8);
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* small_pages: the one-process system's regions (here the client's share region and the
 * block data region) without MADV_HUGEPAGE ("hg" in VmFlags), which they have otherwise;
 * the system serves either way. */
TEST(small_pages_maps_the_regions_without_huge_page_advice)
{
    if (!have_tools()) {
        printf("SKIP small_pages_maps_the_regions_without_huge_page_advice: dosfstools not installed\n");
        return;
    }
    char image[600];
    snprintf(image, sizeof image, "%s/small.img", test_tmpdir());
    CHECK(make_image(image));
    for (int small = 0; small < 2; small++) {
        fs_system s;
        fs_system_options o = {.image_path = image, .layout = FS_SYSTEM_INLINE, .read_only = true, .small_pages = small};
        CHECK(fs_system_start(&s, &o) == 0);
        client c;
        client_init(&c, &s);
        bool served = call(&c, FS_CMD_INITIALISE, NULL).status == FS_STATUS_SUCCESS &&
                      call(&c, FS_CMD_DEINITIALISE, NULL).status == FS_STATUS_SUCCESS;
        char share_flags[256] = "", data_flags[256] = "";
        size_t data_size;
        void *data = lx_system_region(&s.sys, BLK_REGION_DATA, &data_size);
        bool mapped = mapping_flags(c.ep->share, share_flags, sizeof share_flags) && data &&
                      mapping_flags(data, data_flags, sizeof data_flags);
        CHECK_EQ(fs_system_stop(&s, 5000), 0);
        CHECK_MSG(served, "small_pages %d", small);
        CHECK_MSG(mapped, "small_pages %d: no mapping found", small);
        CHECK_MSG((strstr(share_flags, " hg") == NULL) == (bool)small, "small_pages %d: share region %s", small,
                  share_flags);
        CHECK_MSG((strstr(data_flags, " hg") == NULL) == (bool)small, "small_pages %d: data region %s", small,
                  data_flags);
    }
}

TEST(a_process_hosts_one_system_at_a_time)
{
    if (!have_tools()) {
        printf("SKIP a_process_hosts_one_system_at_a_time: dosfstools not installed\n");
        return;
    }
    char image[2][600];
    fs_system s[3];
    for (int i = 0; i < 2; i++) {
        snprintf(image[i], sizeof image[i], "%s/two%d.img", test_tmpdir(), i);
        CHECK(make_image(image[i]));
    }
    bool ok = true;
    fs_system_layout placed[3];
    for (int i = 0; i < 2; i++) {
        fs_system_options o = {.image_path = image[i], .layout = FS_SYSTEM_HOSTED, .data_bytes = 24u << 20};
        CHECK(fs_system_start(&s[i], &o) == 0);
        placed[i] = s[i].layout;
    }
    for (int i = 0; i < 2; i++) {
        client c;
        client_init(&c, &s[i]);
        ok = ok && call(&c, FS_CMD_INITIALISE, NULL).status == FS_STATUS_SUCCESS &&
             call(&c, FS_CMD_DEINITIALISE, NULL).status == FS_STATUS_SUCCESS;
    }
    int stopped = fs_system_stop(&s[0], 5000) | fs_system_stop(&s[1], 5000);
    fs_system_options o = {.image_path = image[0], .layout = FS_SYSTEM_HOSTED, .data_bytes = 24u << 20};
    CHECK(fs_system_start(&s[2], &o) == 0);
    placed[2] = s[2].layout;
    CHECK_EQ(fs_system_stop(&s[2], 5000), 0);
    CHECK(ok);
    CHECK_EQ(stopped, 0);
    CHECK_EQ(placed[0], FS_SYSTEM_HOSTED);
    CHECK_EQ(placed[1], FS_SYSTEM_SHARED);
    CHECK_EQ(placed[2], FS_SYSTEM_HOSTED);
}

/* ---- a client that is a component of the system ---- */

static struct {
    fs_queue_end commands, completions;
    unsigned channel;
    int step;
} comp;

static void comp_send(uint64_t type)
{
    fs_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.cmd.id = (uint64_t)comp.step;
    msg.cmd.type = type;
    fs_queue_produce(&comp.commands, &msg, 1);
    component_notify(comp.channel);
}

static void comp_init(void)
{
    char name[32];
    fs_component_client_name(name, "fs_client_", 0);
    comp.channel = component_channel(name);
    fs_queue *commands = component_region(FS_COMPONENT_REGION_COMMANDS, NULL);
    fs_queue *completions = component_region(FS_COMPONENT_REGION_COMPLETIONS, NULL);
    if (!commands || !completions || comp.channel == COMPONENT_NO_CHANNEL) {
        lx_runtime_stop(40);
        return;
    }
    fs_queue_end_init(&comp.commands, commands, true);
    fs_queue_end_init(&comp.completions, completions, false);
    comp.step = 0;
    comp_send(FS_CMD_INITIALISE);
}

/* INITIALISE, then DEINITIALISE, then stop with 0; any failure stops with 41 + step. */
static void comp_notified(unsigned channel)
{
    fs_msg msg;
    if (channel != comp.channel || fs_queue_consume(&comp.completions, &msg, 1) != 1)
        return;
    if (msg.cmpl.status != FS_STATUS_SUCCESS || msg.cmpl.id != (uint64_t)comp.step) {
        lx_runtime_stop(41 + comp.step);
        return;
    }
    if (++comp.step == 1)
        comp_send(FS_CMD_DEINITIALISE);
    else
        lx_runtime_stop(0);
}

TEST(a_client_component_shares_the_servers_thread)
{
    if (!have_tools()) {
        printf("SKIP a_client_component_shares_the_servers_thread: dosfstools not installed\n");
        return;
    }
    char image[600];
    snprintf(image, sizeof image, "%s/component.img", test_tmpdir());
    CHECK(make_image(image));
    fs_system s;
    fs_system_options o = {.image_path = image, .data_bytes = 24u << 20,
                           .client_component = {comp_init, comp_notified, NULL, NULL}};
    CHECK(fs_system_start(&s, &o) == 0);
    lx_exit_report report;
    bool ended = lx_system_wait(&s.sys, 30000, &report);
    fs_system_layout layout = s.layout;
    fs_system_stop(&s, 2000);
    CHECK(ended);
    CHECK_EQ(layout, FS_SYSTEM_HOSTED);
    CHECK_MSG(!report.signaled && report.code == 0, "code %d", report.code);
    CHECK(fsck_clean(image));
}

/* The client library's side of a dead server: a call pending when the server's process (or
 * the driver's, which leaves the server waiting for the device) is killed completes with
 * IO_ERROR within a few seconds, and so does every later one: nothing hangs. */
static bool system_alive(void *ctx)
{
    char why[160];
    return !fs_system_failed(ctx, why, sizeof why);
}

TEST(a_client_whose_server_died_gets_errors_not_a_hang)
{
    if (!have_tools()) {
        printf("SKIP a_client_whose_server_died_gets_errors_not_a_hang: dosfstools not installed\n");
        return;
    }
    char image[600];
    snprintf(image, sizeof image, "%s/dead.img", test_tmpdir());
    static const char *const victims[] = {"fs_server", "blk_driver"};
    for (unsigned v = 0; v < 2; v++) {
        CHECK(make_image(image));
        fs_system s;
        fs_system_options o = {.image_path = image, .layout = FS_SYSTEM_PROCESSES, .data_bytes = 24u << 20};
        CHECK(fs_system_start(&s, &o) == 0);
        fs_system_client *ep = &s.clients[0];
        fs_conn_endpoint cep = {.commands = ep->commands,
                                .completions = ep->completions,
                                .share = ep->share,
                                .share_size = ep->share_size,
                                .notify_fd = ep->notify_fd,
                                .wait_fd = ep->wait_fd,
                                .healthy = system_alive,
                                .healthy_ctx = &s};
        fs_conn conn;
        CHECK(fs_conn_open(&conn, &cep) == 0);
        fs_status mounted = fs_conn_initialise(&conn);
        uint64_t fd = 0;
        fs_status opened = fs_conn_open_file(&conn, "/f", FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE, &fd);
        kill(s.sys.pids[v == 0 ? 1 : 0], SIGKILL);
        uint64_t start = component_time_ns();
        /* Past the cache: the write must reach the device, which is gone or unreachable. */
        static uint8_t big[4u << 20];
        size_t done = 0;
        fs_status wrote = fs_conn_write(&conn, fd, 0, big, sizeof big, &done);
        fs_status synced = fs_conn_sync(&conn, fd);
        fs_status later = fs_conn_mkdir(&conn, "/after");
        uint64_t took_ms = (component_time_ns() - start) / 1000000u;
        fs_conn_close(&conn);
        fs_system_stop(&s, 2000);
        CHECK_EQ(mounted, FS_STATUS_SUCCESS);
        CHECK_EQ(opened, FS_STATUS_SUCCESS);
        CHECK_MSG(wrote == FS_STATUS_IO_ERROR || synced == FS_STATUS_IO_ERROR, "%s killed: write %d, sync %d",
                  victims[v], (int)wrote, (int)synced);
        CHECK_EQ(later, FS_STATUS_IO_ERROR);
        CHECK_MSG(took_ms < 10000, "%s killed: the calls took %llu ms", victims[v], (unsigned long long)took_ms);
    }
}
