/* image_lock: one writer per disk image or block device.
 *
 * The block driver (blk_driver_open) holds an open file description lock (F_OFD_SETLK)
 * on the whole image for as long as it has it open: a write lock when it may write, a read
 * lock when it is read-only, so read-only users share an image and a writer excludes
 * everyone else. OFD locks belong to the open file description, not the process: they
 * conflict between two opens in one process too, survive a fork with the descriptor, and
 * go away with the last descriptor, so a killed process never leaves an image locked. A
 * block device opened for writing is also opened O_EXCL (the kernel's exclusive claim,
 * which a mounted file system holds too).
 *
 * The holder's pid: F_OFD_GETLK reports -1 for OFD locks, so image_lock_holder looks for
 * it in /proc: a process with a descriptor on the same file whose fdinfo lists an OFD
 * lock (for a block device, any process with it open). 0 when none is found (another
 * user namespace, /proc not mounted).
 */
#ifndef ASYNCFAT_PLATFORM_LINUX_IMAGE_LOCK_H
#define ASYNCFAT_PLATFORM_LINUX_IMAGE_LOCK_H

#include <stdbool.h>
#include <stddef.h>

/* Lock the image open on fd (write: exclusively, else shared). 0, EBUSY when another
 * open holds a conflicting lock, or another errno. */
int image_lock_take(int fd, bool write);

/* Would a user of `path` (writing or not) conflict with one that holds it now? 0 when
 * free, EBUSY (and *pid: the holder, 0 if unknown) when not, another errno when the path
 * cannot be opened. Takes no lock: for a clear message before starting. */
int image_lock_probe(const char *path, bool write, int *pid);

/* A process (not this one) holding a lock on the file, or a block device, open on fd; 0:
 * none found. */
int image_lock_holder(int fd);

/* "PATH is in use by another asyncfat process (pid N)" (without the pid when 0). */
void image_lock_busy_message(const char *path, int pid, char *out, size_t size);

#endif
