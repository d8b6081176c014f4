/* Background write-back: the dirty interval, its deadline, and the task that syncs. */
#include "server/server_internal.h"

static uint64_t now(const fs_server *server) { return server->clock_ns(server->clock_ctx); }

static bool enabled(const fs_server *server) { return server->writeback_ns && server->clock_ns && server->engine.ops; }

void fs_writeback_note_change(fs_server *server)
{
    if (!enabled(server) || server->dirty)
        return;
    server->dirty = true;
    server->dirty_since = now(server);
}

void fs_writeback_note_sync(fs_server *server) { server->dirty = false; }

vfs_status fs_writeback_sync(fs_server *server)
{
    fs_writeback_note_sync(server);
    vfs_status st = server->engine.ops->sync(server->engine.volume);
    if (st != VFS_OK)
        fs_writeback_note_change(server);
    return st;
}

uint64_t fs_server_deadline(const fs_server *server)
{
    if (!enabled(server) || !server->dirty || server->writeback_running)
        return FS_SERVER_NO_DEADLINE;
    uint64_t at = server->dirty_since + server->writeback_ns;
    return at < server->dirty_since ? FS_SERVER_NO_DEADLINE - 1 : at;
}

/* Under the mount lock, so it never runs beside a mount or an unmount; changes made while
 * it runs start a new interval (dirty is cleared before the sync begins). */
static void *writeback_main(void *arg)
{
    fs_server *server = arg;
    const vfs_ops *ops = server->engine.ops;
    fp_mutex_lock(server->pool, &server->mount_lock);
    if (ops->mounted(server->engine.volume)) {
        server->stats.writebacks++;
        if (fs_writeback_sync(server) != VFS_OK)
            server->stats.writeback_errors++;
    } else {
        fs_writeback_note_sync(server); /* the unmount wrote everything */
    }
    fp_mutex_unlock(server->pool, &server->mount_lock);
    server->writeback_running = false;
    return NULL;
}

bool fs_writeback_poll(fs_server *server)
{
    uint64_t due = fs_server_deadline(server);
    if (due == FS_SERVER_NO_DEADLINE || fp_free_slots(server->pool) == 0 || now(server) < due)
        return false;
    server->writeback_running = true;
    fp_task *task = fp_spawn(server->pool, writeback_main, server);
    AF_ASSERT(task != NULL); /* a slot was free */
    return true;
}
