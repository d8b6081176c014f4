/* Per-client fd tables. An fd is generation << FD_SLOT_BITS | slot, below 2^31 so that it
 * fits the int a POSIX layer keeps it in (LionsOS's does). A client can only name slots of
 * its own table, and a number kept after close stays dead: each reuse of a slot bumps its
 * generation (FD_GENERATION_BITS, 24 with 128 fds, wrapping), so a stale number comes back
 * only after its slot was reused 2^24 times, and freed slots are reused oldest first, which
 * spreads the opens over every free slot (with all 128 free, 2^31 opens). */
#include "server/server_internal.h"

#define FD_SLOT_BITS (FS_SERVER_MAX_FDS <= 128u ? 7u : FS_SERVER_MAX_FDS <= 1024u ? 10u : 16u)
#define FD_GENERATION_BITS (31u - FD_SLOT_BITS)

_Static_assert(FS_SERVER_MAX_FDS <= (1u << 16) && FS_SERVER_MAX_FDS < FD_NONE, "fd slots fit their fields");

static uint64_t fd_number(const fs_connection *client, const fs_fd *entry)
{
    return ((uint64_t)entry->generation << FD_SLOT_BITS) | (uint64_t)(entry - client->fds);
}

void fs_fd_table_init(fs_connection *client)
{
    client->fd_free_head = 0;
    client->fd_free_tail = FS_SERVER_MAX_FDS - 1;
    for (uint32_t i = 0; i < FS_SERVER_MAX_FDS; i++) {
        client->fds[i].free_next = i + 1 < FS_SERVER_MAX_FDS ? (uint16_t)(i + 1) : FD_NONE;
        fp_mutex_init(&client->fds[i].dir_lock);
    }
}

static void fd_free_push(fs_connection *client, fs_fd *entry)
{
    uint16_t i = (uint16_t)(entry - client->fds);
    entry->free_next = FD_NONE;
    if (client->fd_free_head == FD_NONE)
        client->fd_free_head = i;
    else
        client->fds[client->fd_free_tail].free_next = i;
    client->fd_free_tail = i;
}

fs_status fs_fd_alloc(fs_connection *client, vfs_node *node, uint64_t flags, uint64_t *fd_out)
{
    if (client->fd_free_head == FD_NONE)
        return FS_STATUS_TOO_MANY_OPEN_FILES;
    fs_fd *entry = &client->fds[client->fd_free_head];
    client->fd_free_head = entry->free_next;
    bool is_dir = client->server->engine.ops->is_dir(node);
    uint64_t access = flags & FS_OPEN_FLAGS_ACCESS_MASK;
    entry->node = node;
    entry->dir_pos = 0;
    /* Never 0, so that no fd is 0 .. FS_SERVER_MAX_FDS - 1 (a never-opened number). */
    entry->generation = entry->generation + 1 < (1u << FD_GENERATION_BITS) ? entry->generation + 1 : 1;
    entry->borrows = 0;
    entry->in_use = true;
    entry->closing = false;
    entry->can_read = is_dir || access != FS_OPEN_FLAGS_WRITE_ONLY;
    entry->can_write = !is_dir && access != FS_OPEN_FLAGS_READ_ONLY;
    entry->append = !is_dir && (flags & FS_OPEN_FLAGS_APPEND);
    *fd_out = fd_number(client, entry);
    return FS_STATUS_SUCCESS;
}

static fs_fd *fd_lookup(fs_connection *client, uint64_t fd)
{
    uint64_t slot = fd & ((1u << FD_SLOT_BITS) - 1);
    uint64_t generation = fd >> FD_SLOT_BITS;
    if (slot >= FS_SERVER_MAX_FDS || generation >= (1u << FD_GENERATION_BITS))
        return NULL;
    fs_fd *entry = &client->fds[slot];
    if (!entry->in_use || entry->closing || entry->generation != generation)
        return NULL;
    return entry;
}

/* The fd's node is a directory (the engine's answer: the fd keeps no copy). */
static bool fd_is_dir(const fs_connection *client, const fs_fd *entry)
{
    return client->server->engine.ops->is_dir(entry->node);
}

fs_status fs_fd_borrow(fs_connection *client, uint64_t fd, fs_fd_kind kind, fs_fd **out)
{
    fs_fd *entry = fd_lookup(client, fd);
    if (!entry || (kind != FS_FD_ANY && fd_is_dir(client, entry) != (kind == FS_FD_DIR)))
        return FS_STATUS_INVALID_FD;
    entry->borrows++;
    *out = entry;
    return FS_STATUS_SUCCESS;
}

static fs_status fd_release_slot(fs_connection *client, fs_fd *entry)
{
    vfs_node *node = entry->node;
    entry->node = NULL;
    entry->in_use = false;
    entry->closing = false;
    fd_free_push(client, entry);
    return fs_wire_status(client->server->engine.ops->close(node));
}

fs_status fs_fd_return(fs_connection *client, fs_fd *entry)
{
    AF_ASSERT(entry->borrows > 0);
    if (--entry->borrows == 0 && entry->closing)
        return fd_release_slot(client, entry);
    return FS_STATUS_SUCCESS;
}

void fs_fd_close(fs_connection *client, fs_fd *entry)
{
    AF_ASSERT(entry->borrows > 0);
    entry->closing = true;
}

void fs_fd_close_all(fs_connection *client)
{
    for (uint32_t i = 0; i < FS_SERVER_MAX_FDS; i++) {
        fs_fd *entry = &client->fds[i];
        if (entry->in_use && !entry->closing) {
            entry->closing = true;
            if (entry->borrows == 0)
                fd_release_slot(client, entry);
        }
    }
}

uint8_t *fs_share_buffer(const fs_connection *client, fs_buffer buf)
{
    if (buf.offset > client->share_size || buf.size > client->share_size - buf.offset)
        return NULL;
    return client->share + buf.offset;
}
