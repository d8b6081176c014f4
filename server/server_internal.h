/* Private to server/: the pieces the event loop, the fd table and the command handlers
 * share. */
#ifndef ASYNCFAT_SERVER_INTERNAL_H
#define ASYNCFAT_SERVER_INTERNAL_H

#include "server/server.h"

/* Runs in the request's task: carries out req->cmd and fills req->cmpl. Blocks. */
void fs_server_execute(fs_request *req);

/* writeback.c: a command that may have changed the volume has run; a pass's check, which
 * spawns the write-back task when it is due (true if it did). */
void fs_writeback_note_change(fs_server *server);
/* A sync of the whole volume begins: it covers every change made so far. */
void fs_writeback_note_sync(fs_server *server);
/* Sync the volume as a write-back does: the dirty interval ends first, and a failed sync
 * starts a new one (the write-back tries again). */
vfs_status fs_writeback_sync(fs_server *server);
bool fs_writeback_poll(fs_server *server);

/* Does this command (its copy) possibly change the volume? */
bool fs_command_changes(const fs_cmd *cmd);

/* fd table (fds.c): numbers below 2^31, a closed one dead until 2^31 more opens. */
#define FD_NONE 0xFFFFu
void fs_fd_table_init(fs_connection *client);
fs_status fs_fd_alloc(fs_connection *client, vfs_node *node, uint64_t flags, uint64_t *fd_out);
/* Look up a live fd of the wanted kind and borrow it for the request (fs_fd_return). */
typedef enum fs_fd_kind { FS_FD_FILE, FS_FD_DIR, FS_FD_ANY } fs_fd_kind;
fs_status fs_fd_borrow(fs_connection *client, uint64_t fd, fs_fd_kind kind, fs_fd **out);
/* Blocks (the node's close, whose status it returns, when the last borrow of a closed fd
 * ends). */
fs_status fs_fd_return(fs_connection *client, fs_fd *entry);
/* Mark a borrowed fd closed: its number stops working now, and the node is closed when
 * the last borrow (this one, unless other requests use it) is returned. */
void fs_fd_close(fs_connection *client, fs_fd *entry);
/* Blocks: close every fd of the client (DEINITIALISE; nothing is borrowed then). */
void fs_fd_close_all(fs_connection *client);

/* wire.c: the engine's statuses and records as the protocol has them. */
fs_status fs_wire_status(vfs_status status);
/* What a client that did not opt in to the extensions gets for `status` from command
 * `type`: the status itself up to NOT_EMPTY (18), else the nearest LionsOS one. */
fs_status fs_wire_lionsos_status(uint64_t type, fs_status status);
void fs_wire_stat(const vfs_stat *in, fs_stat *out);

/* Check a buffer against the client's share region: returns a pointer to its first byte,
 * or NULL (offset past the region, offset + size overflowing or past the end). */
uint8_t *fs_share_buffer(const fs_connection *client, fs_buffer buf);

#endif
