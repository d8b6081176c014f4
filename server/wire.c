/* The engine's vocabulary (vfs/vfs.h) on the wire (protocol/fs_protocol.h). */
#include "server/server_internal.h"

/* Open flags and mode bits pass to the engine as they are: the same values. */
_Static_assert(FS_OPEN_FLAGS_READ_ONLY == VFS_OPEN_READ_ONLY && FS_OPEN_FLAGS_WRITE_ONLY == VFS_OPEN_WRITE_ONLY &&
                   FS_OPEN_FLAGS_READ_WRITE == VFS_OPEN_READ_WRITE && FS_OPEN_FLAGS_ACCESS_MASK == VFS_OPEN_ACCESS_MASK &&
                   FS_OPEN_FLAGS_CREATE == VFS_OPEN_CREATE && FS_OPEN_FLAGS_TRUNCATE == VFS_OPEN_TRUNCATE &&
                   FS_OPEN_FLAGS_EXCLUSIVE == VFS_OPEN_EXCLUSIVE && FS_OPEN_FLAGS_APPEND == VFS_OPEN_APPEND,
               "open flags");
_Static_assert(FS_MODE_DIRECTORY == VFS_MODE_DIRECTORY && FS_MODE_REGULAR == VFS_MODE_REGULAR, "mode bits");
_Static_assert(FS_ATTRIBUTE_READ_ONLY == VFS_ATTR_READ_ONLY && FS_ATTRIBUTE_HIDDEN == VFS_ATTR_HIDDEN &&
                   FS_ATTRIBUTE_SYSTEM == VFS_ATTR_SYSTEM && FS_ATTRIBUTE_DIRECTORY == VFS_ATTR_DIRECTORY &&
                   FS_ATTRIBUTE_ARCHIVE == VFS_ATTR_ARCHIVE && FS_ATTRIBUTE_CHANGEABLE == VFS_ATTR_CHANGEABLE,
               "attribute bits");
_Static_assert(FS_MAX_PATH_LENGTH == VFS_PATH_MAX && FS_MAX_NAME_LENGTH == VFS_NAME_MAX, "limits");

fs_status fs_wire_status(vfs_status status)
{
    switch (status) {
    case VFS_OK: return FS_STATUS_SUCCESS;
    case VFS_ERROR: return FS_STATUS_ERROR;
    case VFS_INVALID_PATH: return FS_STATUS_INVALID_PATH;
    case VFS_INVALID_NAME: return FS_STATUS_INVALID_NAME;
    case VFS_NAME_TOO_LONG: return FS_STATUS_NAME_TOO_LONG;
    case VFS_NO_FILE: return FS_STATUS_NO_FILE;
    case VFS_NOT_DIRECTORY: return FS_STATUS_NOT_DIRECTORY;
    case VFS_IS_DIRECTORY: return FS_STATUS_IS_DIRECTORY;
    case VFS_ALREADY_EXISTS: return FS_STATUS_ALREADY_EXISTS;
    case VFS_NOT_EMPTY: return FS_STATUS_NOT_EMPTY;
    case VFS_END_OF_DIRECTORY: return FS_STATUS_END_OF_DIRECTORY;
    case VFS_DIRECTORY_IS_FULL: return FS_STATUS_DIRECTORY_IS_FULL;
    case VFS_NO_SPACE: return FS_STATUS_NO_SPACE;
    case VFS_FILE_TOO_LARGE: return FS_STATUS_FILE_TOO_LARGE;
    case VFS_TOO_MANY_OPEN_FILES: return FS_STATUS_TOO_MANY_OPEN_FILES;
    case VFS_READ_ONLY_FS: return FS_STATUS_READ_ONLY_FS;
    case VFS_ACCESS_DENIED: return FS_STATUS_ACCESS_DENIED;
    case VFS_INVALID_ARGUMENT: return FS_STATUS_INVALID_ARGUMENT;
    case VFS_BUSY: return FS_STATUS_BUSY;
    case VFS_OUTSTANDING_OPERATIONS: return FS_STATUS_OUTSTANDING_OPERATIONS;
    case VFS_NOT_MOUNTED: return FS_STATUS_NOT_MOUNTED;
    case VFS_ALLOCATION_ERROR: return FS_STATUS_ALLOCATION_ERROR;
    case VFS_IO_ERROR: return FS_STATUS_IO_ERROR;
    case VFS_CORRUPT: return FS_STATUS_CORRUPT;
    }
    return FS_STATUS_ERROR;
}

fs_status fs_wire_lionsos_status(uint64_t type, fs_status status)
{
    if (status < FS_STATUS_LIONSOS_COUNT)
        return status;
    switch (status) {
    case FS_STATUS_NAME_TOO_LONG: return FS_STATUS_INVALID_NAME;
    /* LionsOS's FILE_OPEN does not open directories: to it there is no such file. */
    case FS_STATUS_IS_DIRECTORY: return type == FS_CMD_FILE_OPEN ? FS_STATUS_NO_FILE : FS_STATUS_ERROR;
    /* Opening (with CREATE) and renaming allocate nothing but a directory entry: no room
     * for that is a full directory. Elsewhere the volume is full, which LionsOS has no
     * word for. */
    case FS_STATUS_NO_SPACE:
        return type == FS_CMD_FILE_OPEN || type == FS_CMD_RENAME ? FS_STATUS_DIRECTORY_IS_FULL : FS_STATUS_ERROR;
    case FS_STATUS_READ_ONLY_FS: return FS_STATUS_SERVER_WAS_DENIED;
    case FS_STATUS_BUSY: return FS_STATUS_OUTSTANDING_OPERATIONS;
    default: return FS_STATUS_ERROR;
    }
}

void fs_wire_stat(const vfs_stat *in, fs_stat *out)
{
    *out = (fs_stat){
        .dev = in->dev,
        .ino = in->ino,
        .mode = in->mode,
        .nlink = in->nlink,
        .size = in->size,
        .blksize = in->blksize,
        .blocks = in->blocks,
        .atime = in->atime,
        .mtime = in->mtime,
        .ctime = in->ctime,
        .used = in->blocks * 512u,
    };
}
