# vfs: the engine-side vocabulary (statuses, stat records, flags) and the engine interface.
CORE_SRCS += vfs/vfs.c
