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

# ---- partitions ----
# part_clean IMAGE START_SECTOR SECTORS: fsck.fat -n on that stretch of the image.
part_clean() {
    dd if="$1" of=part.img bs=512 skip="$2" count="$3" status=none && clean part.img
}

# An MBR disk made by sfdisk: a Linux partition, then one of type 0x0c; mkfs into the
# second by IMAGE@2, files in and out by IMAGE@2:PATH, --partition, --offset and mtools'
# -i IMAGE@@OFFSET ::PATH; fsck.fat and mtools read what asyncfat wrote.
t_mbr_partitions() {
    truncate -s 48M mbr.img
    printf 'start=2048, size=16384, type=83\nstart=18432, size=77824, type=c\n' | sfdisk -q mbr.img >/dev/null ||
        return 1
    local off=$((18432 * 512))
    rc 0 "$A" mkfs mbr.img@2 --label PART2 && has FAT16 out || return 1
    part_clean mbr.img 18432 77824 || return 1
    [ "$(od -An -tu4 -j$((off + 28)) -N4 mbr.img | tr -d ' ')" -eq 18432 ] || { echo "hidden sectors"; return 1; }
    rc 0 "$A" cp big.bin mbr.img@2:/big.bin && rc 0 "$A" mkdir --partition 2 mbr.img:/d || return 1
    rc 0 "$A" cp small.txt "mbr.img@@$off:/d/small.txt" || return 1
    rc 0 "$A" cp --offset "$off" mbr.img:/d/small.txt small.back && cmp small.back small.txt || return 1
    rc 0 "$A" ls -l mbr.img@2:/ && has big.bin out && has "^d.* d$" out || return 1
    mcopy -i "mbr.img@@$off" ::/big.bin - | cmp - big.bin && mcopy -i "mbr.img@@$off" ::/d/small.txt - | cmp - small.txt ||
        return 1
    minfo -i "mbr.img@@$off" :: | grep -q 'disk label="PART2' || { echo "mtools sees no label"; return 1; }
    mcopy -i "mbr.img@@$off" small.txt ::/from_mtools.txt && rc 0 "$A" cat -i "mbr.img@@$off" ::/from_mtools.txt &&
        cmp out small.txt || return 1
    rc 0 "$A" check mbr.img@2 && has clean out && part_clean mbr.img 18432 77824 || return 1
    # automatic: the first partition with a FAT type id
    rc 0 "$A" ls mbr.img && has big.bin out || return 1
    # the Linux partition holds no FAT volume; entry 3 is unused; there is no entry 5
    rc 1 "$A" ls mbr.img@1 && has "asyncfat: mbr.img@1: partition 1 is not a FAT volume" err || return 1
    rc 1 "$A" ls mbr.img@3 && has "asyncfat: mbr.img@3: no partition 3 in its partition table" err || return 1
    rc 1 "$A" ls --partition 5 mbr.img && has "no partition 5 in its partition table" err || return 1
    rc 1 "$A" mkfs mbr.img@4 && has "no partition 4 in its partition table" err || return 1
    rc 2 "$A" ls --partition 0 mbr.img && has "asyncfat: ls: --partition '0' is not a partition number" err || return 1
    rc 2 "$A" ls --partition 2 --offset 1M mbr.img && has "give one" err
}

# A GPT disk made by sgdisk: an EFI system partition and a basic data partition (made by
# mkfs.fat), and a Linux one asyncfat formats; the automatic choice is the first FAT one.
t_gpt_partitions() {
    truncate -s 96M gpt.img
    sgdisk -n 1:2048:+16M -t 1:ef00 -n 2:0:+16M -t 2:0700 -n 3:0:0 -t 3:8300 gpt.img >/dev/null 2>&1 || return 1
    local p1=2048 p2=$((2048 + 32768)) p3=$((2048 + 65536)) p3_sectors
    p3_sectors=$(sgdisk -i 3 gpt.img | sed -n 's/^Partition size: \([0-9]*\) sectors.*/\1/p')
    mkfs.fat -F 16 --offset $p1 gpt.img 16384 >/dev/null 2>&1 && mkfs.fat -F 16 --offset $p2 gpt.img 16384 >/dev/null 2>&1 ||
        return 1
    mcopy -i "gpt.img@@$((p1 * 512))" small.txt ::/esp.txt && mcopy -i "gpt.img@@$((p2 * 512))" small.txt ::/data.txt ||
        return 1
    rc 0 "$A" ls gpt.img && has esp.txt out || return 1
    rc 0 "$A" cat gpt.img@2:/data.txt && cmp out small.txt || return 1
    rc 0 "$A" cp big.bin gpt.img@1:/big.bin && rc 0 "$A" cat --partition 1 gpt.img:/big.bin && cmp out big.bin || return 1
    mcopy -i "gpt.img@@$((p1 * 512))" ::/big.bin - | cmp - big.bin || return 1
    rc 0 "$A" mkfs gpt.img@3 --fat 32 --cluster 512 && has FAT32 out || return 1
    rc 0 "$A" cp big.bin gpt.img@3:/in-p3.bin && rc 0 "$A" check gpt.img@3 && has clean out || return 1
    part_clean gpt.img $p3 "$p3_sectors" && mcopy -i "gpt.img@@$((p3 * 512))" ::/in-p3.bin - | cmp - big.bin || return 1
    part_clean gpt.img $p1 32768 && part_clean gpt.img $p2 32768 || return 1
    sgdisk -v gpt.img | grep -q "No problems found" || { sgdisk -v gpt.img; return 1; }
    rc 1 "$A" ls gpt.img@4 && has "no partition 4 in its partition table" err || return 1
    # both headers damaged: the table's damage, not "volume is corrupt"
    cp gpt.img broken-gpt.img && printf 'XXXXXXXX' | dd of=broken-gpt.img bs=1 seek=512 conv=notrunc status=none &&
        printf 'XXXXXXXX' | dd of=broken-gpt.img bs=1 seek=$(($(stat -c %s broken-gpt.img) - 512)) conv=notrunc status=none
    rc 1 "$A" ls broken-gpt.img && has "asyncfat: broken-gpt.img: GPT partition table damaged" err
}

# A volume at an offset with no partition table (mtools' @@offset).
t_offset_volume() {
    truncate -s 40M off.img
    rc 0 "$A" mkfs --offset 1M off.img && rc 0 "$A" cp small.txt off.img@@1M:/s.txt || return 1
    mcopy -i off.img@@1048576 ::/s.txt - | cmp - small.txt && part_clean off.img 2048 $(((40 - 1) * 2048)) || return 1
    rc 1 "$A" ls --offset 100M off.img && has "offset 104857600 is past the end of the image" err || return 1
    rc 1 "$A" ls --offset 2M off.img && has "no FAT volume at offset 2097152" err || return 1
    rc 2 "$A" ls --offset 1000 off.img && has "is not a byte offset that is a multiple of 512" err
}

run mbr_partitions_by_number_offset_and_mtools_form t_mbr_partitions
if command -v sgdisk >/dev/null; then
    run gpt_partitions t_gpt_partitions
else
    echo "SKIP gpt_partitions: sgdisk (gdisk) not installed"
fi
run volume_at_an_offset t_offset_volume

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
