/* vfs: status texts and the block-layer mapping every engine shares. */
#include "vfs/vfs.h"

const char *vfs_status_text(vfs_status s)
{
    switch (s) {
    case VFS_OK: return "success";
    case VFS_ERROR: return "error";
    case VFS_INVALID_PATH: return "invalid path";
    case VFS_INVALID_NAME: return "invalid name";
    case VFS_NAME_TOO_LONG: return "name too long";
    case VFS_NO_FILE: return "no such file or directory";
    case VFS_NOT_DIRECTORY: return "not a directory";
    case VFS_IS_DIRECTORY: return "is a directory";
    case VFS_ALREADY_EXISTS: return "already exists";
    case VFS_NOT_EMPTY: return "directory not empty";
    case VFS_END_OF_DIRECTORY: return "end of directory";
    case VFS_DIRECTORY_IS_FULL: return "directory full";
    case VFS_NO_SPACE: return "no space left on the volume";
    case VFS_FILE_TOO_LARGE: return "file too large";
    case VFS_TOO_MANY_OPEN_FILES: return "too many open files";
    case VFS_READ_ONLY_FS: return "read-only file system";
    case VFS_ACCESS_DENIED: return "access denied";
    case VFS_INVALID_ARGUMENT: return "invalid argument";
    case VFS_BUSY: return "busy";
    case VFS_OUTSTANDING_OPERATIONS: return "files still open";
    case VFS_NOT_MOUNTED: return "not mounted";
    case VFS_ALLOCATION_ERROR: return "not enough memory for the volume";
    case VFS_IO_ERROR: return "I/O error";
    case VFS_CORRUPT: return "corrupt file system";
    }
    return "unknown status";
}

vfs_status vfs_status_from_blk(blk_status s)
{
    switch (s) {
    case BLK_OK: return VFS_OK;
    case BLK_ERR_READ_ONLY: return VFS_READ_ONLY_FS;
    case BLK_ERR_RANGE: return VFS_CORRUPT;
    default: return VFS_IO_ERROR;
    }
}
