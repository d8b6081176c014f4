#include "tests/support/server_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int make_image(const char *path, uint64_t bytes, const char *args)
{
    char cmd[512];
    remove(path);
    snprintf(cmd, sizeof cmd, "mkfs.fat -C %s %s '%s' %llu >/dev/null 2>&1", args ? args : "-F 16",
             "-n ASYNCFAT", path, (unsigned long long)(bytes / 1024));
    return system(cmd) == 0 ? 0 : -1;
}

int sf_init(server_fixture *f, const sf_options *opts)
{
    memset(f, 0, sizeof(*f));
    if (!opts->workdir)
        return -1;
    snprintf(f->workdir, sizeof f->workdir, "%s", opts->workdir);
    char image[300];
    static int serial;
    snprintf(image, sizeof image, "%s/server-%d.img", f->workdir, serial++);
    uint64_t bytes = opts->image_bytes ? opts->image_bytes : 64ull << 20;
    if (make_image(image, bytes, opts->mkfs_args) != 0) {
        fprintf(stderr, "sf_init: mkfs.fat failed\n");
        return -1;
    }
    blk_fixture_options bo = blk_fixture_defaults();
    bo.image_path = image;
    bo.random_order = opts->random_order;
    bo.seed = opts->seed;
    if (opts->fibers)
        bo.fibers = opts->fibers;
    bo.stack_size = 64 * 1024;
    bo.read_only = opts->read_only;
    if (blk_fixture_init(&f->blk, &bo) != 0)
        return -1;

    fat_config cfg = fat_config_defaults();
    size_t arena = fat_memory_total(&cfg, bytes);
    f->arena = malloc(arena);
    if (!fat_config_place_memory(&cfg, bytes, f->arena, arena))
        return -1;

    fs_server_config sc = {
        .pool = &f->blk.stack.pool,
        .blk = &f->blk.stack.client,
        .engine = fat_vfs_engine(&f->fat, &f->blk.stack.cache, &cfg),
        .writeback_ns = opts->writeback_ns,
        .clock_ns = opts->clock_ns,
        .clock_ctx = opts->clock_ctx,
    };
    if (opts->no_engine)
        sc.engine = (vfs_engine){0};
    fs_server_init(&f->server, &sc);

    int clients = opts->clients ? opts->clients : 1;
    for (int i = 0; i < clients && i < SF_MAX_CLIENTS; i++) {
        sf_client *c = &f->clients[i];
        c->commands = aligned_alloc(64, sizeof(fs_queue));
        c->completions = aligned_alloc(64, sizeof(fs_queue));
        c->share = aligned_alloc(4096, SF_SHARE_SIZE);
        if (!c->commands || !c->completions || !c->share)
            return -1;
        memset(c->commands, 0, sizeof(fs_queue));
        memset(c->completions, 0, sizeof(fs_queue));
        fs_queue_end_init(&c->command_end, c->commands, true);
        fs_queue_end_init(&c->completion_end, c->completions, false);
        c->next_id = 1;
        fs_connection_config cc = {
            .commands = c->commands,
            .completions = c->completions,
            .share = c->share,
            .share_size = SF_SHARE_SIZE,
            .notify = NULL,
        };
        if (fs_server_add_connection(&f->server, &cc) != i)
            return -1;
        f->client_count++;
    }
    return 0;
}

void sf_fini(server_fixture *f)
{
    for (int i = 0; i < f->client_count; i++) {
        free(f->clients[i].commands);
        free(f->clients[i].completions);
        free(f->clients[i].share);
    }
    free(f->arena);
    blk_fixture_fini(&f->blk);
}

uint64_t sf_submit(server_fixture *f, int client, uint64_t type, const void *params, size_t params_size)
{
    sf_client *c = &f->clients[client];
    fs_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.cmd.id = c->next_id;
    msg.cmd.type = type;
    if (params)
        memcpy(&msg.cmd.params, params, params_size < 48 ? params_size : 48);
    if (fs_queue_produce(&c->command_end, &msg, 1) != 1)
        return 0;
    return c->next_id++;
}

bool sf_take(server_fixture *f, int client, fs_cmpl *out)
{
    fs_msg msg;
    if (fs_queue_consume(&f->clients[client].completion_end, &msg, 1) != 1)
        return false;
    *out = msg.cmpl;
    return true;
}

bool sf_step(server_fixture *f)
{
    bool device = ram_device_process(&f->blk.dev) != 0;
    bool server = fs_server_notified(&f->server);
    return device || server || ram_device_pending(&f->blk.dev) != 0;
}

fs_cmpl sf_call(server_fixture *f, int client, uint64_t type, const void *params, size_t params_size)
{
    fs_cmpl cmpl;
    memset(&cmpl, 0, sizeof cmpl);
    uint64_t id = sf_submit(f, client, type, params, params_size);
    if (id == 0) {
        cmpl.status = UINT64_MAX;
        return cmpl;
    }
    for (int idle = 0; idle < 1000;) {
        if (sf_take(f, client, &cmpl)) {
            if (cmpl.id == id)
                return cmpl;
            continue;
        }
        idle = sf_step(f) ? 0 : idle + 1;
    }
    cmpl.status = UINT64_MAX; /* no completion: a hang */
    return cmpl;
}

fs_buffer sf_buf(server_fixture *f, int client, const void *data, size_t len)
{
    sf_client *c = &f->clients[client];
    if (c->share_used + len > SF_SHARE_SIZE)
        c->share_used = 0;
    fs_buffer buf = {c->share_used, len};
    if (data)
        memcpy(c->share + buf.offset, data, len);
    c->share_used = (c->share_used + len + 63) & ~63ull;
    return buf;
}

fs_buffer sf_path(server_fixture *f, int client, const char *path)
{
    return sf_buf(f, client, path, strlen(path));
}

void sf_share_reset(server_fixture *f, int client) { f->clients[client].share_used = 0; }

uint64_t sf_initialise(server_fixture *f, int client, bool extensions)
{
    fs_cmd_params p = {.initialise = {FS_INITIALISE_MAGIC, FS_INITIALISE_EXTENSIONS}};
    return sf_call(f, client, FS_CMD_INITIALISE, extensions ? &p : NULL, extensions ? sizeof p : 0).status;
}

uint64_t sf_open(server_fixture *f, int client, const char *path, uint64_t flags, uint64_t *fd)
{
    fs_cmd_params p = {.file_open = {.path = sf_path(f, client, path), .flags = flags}};
    fs_cmpl c = sf_call(f, client, FS_CMD_FILE_OPEN, &p, sizeof p);
    if (fd)
        *fd = c.data;
    return c.status;
}

uint64_t sf_write(server_fixture *f, int client, uint64_t fd, uint64_t offset, const void *data, size_t len,
                  uint64_t *done)
{
    fs_cmd_params p = {.file_write = {.fd = fd, .offset = offset, .buf = sf_buf(f, client, data, len)}};
    fs_cmpl c = sf_call(f, client, FS_CMD_FILE_WRITE, &p, sizeof p);
    if (done)
        *done = c.data;
    return c.status;
}

uint64_t sf_read(server_fixture *f, int client, uint64_t fd, uint64_t offset, void *out, size_t len,
                 uint64_t *done)
{
    fs_buffer buf = sf_buf(f, client, NULL, len);
    fs_cmd_params p = {.file_read = {.fd = fd, .offset = offset, .buf = buf}};
    fs_cmpl c = sf_call(f, client, FS_CMD_FILE_READ, &p, sizeof p);
    if (done)
        *done = c.data;
    if (c.status == FS_STATUS_SUCCESS && out)
        memcpy(out, sf_share(f, client, buf), c.data <= len ? c.data : len);
    return c.status;
}

uint64_t sf_close(server_fixture *f, int client, uint64_t fd)
{
    fs_cmd_params p = {.file_close = {.fd = fd}};
    return sf_call(f, client, FS_CMD_FILE_CLOSE, &p, sizeof p).status;
}

uint64_t sf_simple_path(server_fixture *f, int client, uint64_t type, const char *path)
{
    fs_cmd_params p = {.file_remove = {.path = sf_path(f, client, path)}};
    return sf_call(f, client, type, &p, sizeof p).status;
}

int sf_fsck(server_fixture *f, const char *name)
{
    char path[400], cmd[1024];
    snprintf(path, sizeof path, "%s/%s", f->workdir, name);
    if (blk_fixture_save(&f->blk, path) != 0)
        return -1;
    snprintf(cmd, sizeof cmd, "fsck.fat -n '%s' > '%s.fsck' 2>&1", path, path);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s.fsck' >&2", path);
        if (system(cmd) != 0)
            fprintf(stderr, "sf_fsck: could not show the fsck output\n");
    }
    return rc;
}
