#!/usr/bin/env bash
# make run: mount ./asyncfat.img (created as a 256 MiB FAT32 volume if missing) at ./mnt in
# the foreground until Ctrl-C, which unmounts and leaves the volume clean.
set -eu
build=${BUILD:-build}
asyncfat=$build/rel/asyncfat
image=${IMAGE:-asyncfat.img}
mountpoint=${MOUNTPOINT:-mnt}

if [ ! -x "$asyncfat" ]; then
    echo "run: $asyncfat is missing (run make first)" >&2
    exit 1
fi
if [ ! -e "$image" ]; then
    "$asyncfat" mkfs "$image" --size 256M --fat 32 --label ASYNCFAT
fi
mkdir -p "$mountpoint"
if mountpoint -q "$mountpoint" 2>/dev/null; then
    echo "run: $mountpoint is already a mount point (fusermount3 -u $mountpoint)" >&2
    exit 1
fi
echo "asyncfat: $image mounted at ./$mountpoint; press Ctrl-C to unmount"
exec "$asyncfat" mount "$image" "$mountpoint" -f
