/* fat_label: a volume's label, read and changed on an unmounted volume (as fatlabel and
 * mlabel do): the boot sector's label field (and the FAT32 backup boot sector's, while it
 * is a copy) and the root directory's volume-label entry, kept equal (fsck.fat compares
 * them).
 *
 * Contract: fat_label_make is pure; the others block (a task of the cache's fiber pool),
 * work through the cache on the layout fat_bpb_parse gave, and walk only the root
 * directory: the fixed FAT12/16 root, or the FAT32 root's chain for at most cluster_count
 * clusters, so a damaged chain cannot loop. Nobody else may have the volume mounted.
 */
#ifndef ASYNCFAT_FAT_LABEL_H
#define ASYNCFAT_FAT_LABEL_H

#include "blk/blk.h"
#include "fat/fat_bpb.h"
#include "fat/fat_time.h"

/* The label as stored: upper case, space padded; false if it cannot be a label (over 11
 * bytes, a leading space, a character a short name cannot hold). NULL or empty: no label,
 * stored as "NO NAME    " with *has_label false. */
bool fat_label_make(const char *label, uint8_t out[11], bool *has_label);

/* The root directory's volume-label entry if there is one, else the boot sector's field;
 * *has_label false when neither names one. */
vfs_status fat_label_read(blk_cache *cache, const fat_geometry *g, uint8_t label[11], bool *has_label);

/* Set the label (removed when label is NULL or empty): the boot sector's field (where the
 * extended boot signature says it has one), the backup boot sector's if it held the same,
 * and the volume-label entry, written in place or in the root's first free entry with
 * write time `when`. VFS_INVALID_ARGUMENT: not a label; VFS_DIRECTORY_IS_FULL: no free
 * root entry for it (nothing changed). Ends with a flush. */
vfs_status fat_label_write(blk_cache *cache, const fat_geometry *g, const char *label, fat_datetime when);

#endif
