#!/usr/bin/env bash
# Benchmark group `fuse_hops` (make bench-fuse_hops): what one FUSE request costs the file
# system's process, asyncfat's mount against exfat-fuse, during fio 4 KiB random reads on a
# 64 MiB file of a fresh 512 MiB image in /dev/shm (page cache; 4 KiB clusters for FAT32),
# at 1 in flight (psync, O_DIRECT) and at 32 (io_uring, O_DIRECT).
# Per request, from /proc of the file system's process (all its threads): wake-ups
# (voluntary context switches), preemptions, read-type and write-type system calls
# (/proc/pid/io syscr, syscw) and CPU microseconds (the threads' schedstat run time).
# Counters do not depend on the machine's load; the rates printed beside them do.
# FUSE_HOPS_SECONDS per job (default 3), FUSE_HOPS_PEERS (default "asyncfat exfat").
set -u
BUILD=${BUILD:-build}
asyncfat=$BUILD/rel/asyncfat
seconds=${FUSE_HOPS_SECONDS:-3}
base=/tmp
[ -w /dev/shm ] && base=/dev/shm
work=$(mktemp -d "$base/asyncfat-fuse-hops-XXXXXX")
mnt=$work/mnt
mkdir -p "$mnt"
pid=
loopdev=

mount_peer() { # peer
    local image=$work/$1.img
    case $1 in
    asyncfat)
        mkfs.fat -F 32 -C "$image" $((512 * 1024)) >/dev/null || return 1
        "$asyncfat" mount "$image" "$mnt" -f >"$work/log" 2>&1 &
        pid=$!
        ;;
    exfat)
        truncate -s 512M "$image" && mkfs.exfat "$image" >/dev/null || return 1
        loopdev=$(losetup -f --show "$image") || return 1
        mount.exfat-fuse "$loopdev" "$mnt" >"$work/log" 2>&1 || return 1
        pid=$(pgrep -n -x -f "mount.exfat-fuse $loopdev $mnt")
        ;;
    esac
    for _ in $(seq 100); do
        mountpoint -q "$mnt" && return 0
        sleep 0.05
    done
    return 1
}

umount_peer() {
    mountpoint -q "$mnt" && { fusermount3 -u "$mnt" 2>/dev/null || fusermount -u "$mnt"; }
    for _ in $(seq 400); do
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    pid=
    [ -n "$loopdev" ] && losetup -d "$loopdev"
    loopdev=
    rm -f "$work"/*.img
}
trap 'umount_peer 2>/dev/null; rm -rf "$work"' EXIT

# voluntary, involuntary switches, syscr, syscw, CPU nanoseconds (schedstat; 10 ms ticks
# where the kernel keeps no schedstat) of every thread of $pid
snapshot() {
    local vol=0 invol=0 ns=0 t
    for t in /proc/"$pid"/task/*; do
        vol=$((vol + $(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status")))
        invol=$((invol + $(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' "$t/status")))
        if [ -r "$t/schedstat" ]; then
            ns=$((ns + $(awk '{ print $1 }' "$t/schedstat")))
        else
            ns=$((ns + $(awk '{ print ($14 + $15) * 10000000 }' "$t/stat")))
        fi
    done
    echo "$vol $invol $(awk '/^syscr/ { r = $2 } /^syscw/ { w = $2 } END { print r, w }' /proc/"$pid"/io) $ns"
}

measure() { # peer name fio-args...
    local peer=$1 name=$2 before after kib
    shift 2
    before=$(snapshot)
    kib=$(fio --name=hops --filename="$mnt/f" --size=64M --runtime="$seconds" --time_based --bs=4k \
        --rw=randread --randrepeat=0 "$@" --output-format=terse --terse-version=3 2>>"$work/fio.log" |
        awk -F';' 'NF > 50 { print $6 }')
    after=$(snapshot)
    [ -n "$kib" ] && [ "$kib" -gt 0 ] || { echo "fuse_hops: $peer: fio $name failed" >&2; return; }
    echo "$before $after" | awk -v n=$((kib / 4)) -v s="$seconds" -v p="fuse_hops_${peer}_$name" '{
        printf "bench %s_rate %.0f requests/s\n", p, n / s
        printf "bench %s_wakeups %.2f per_request\n", p, ($6 - $1) / n
        printf "bench %s_preemptions %.2f per_request\n", p, ($7 - $2) / n
        printf "bench %s_read_syscalls %.2f per_request\n", p, ($8 - $3) / n
        printf "bench %s_write_syscalls %.2f per_request\n", p, ($9 - $4) / n
        printf "bench %s_cpu %.2f us_per_request\n", p, ($10 - $5) / 1000 / n }'
}

for peer in ${FUSE_HOPS_PEERS:-asyncfat exfat}; do
    case $peer in
    asyncfat) [ -x "$asyncfat" ] || { echo "fuse_hops: $asyncfat not built" >&2; continue; } ;;
    exfat) command -v mount.exfat-fuse >/dev/null || { echo "fuse_hops: no exfat-fuse" >&2; continue; } ;;
    *) echo "fuse_hops: unknown peer $peer" >&2; continue ;;
    esac
    if ! mount_peer "$peer"; then
        echo "fuse_hops: $peer: cannot mount" >&2
        umount_peer
        continue
    fi
    fio --name=fill --filename="$mnt/f" --size=64M --rw=write --bs=1M --end_fsync=1 --output=/dev/null 2>>"$work/fio.log"
    measure "$peer" qd1 --direct=1 --ioengine=psync
    measure "$peer" qd32 --direct=1 --ioengine=io_uring --iodepth=32
    umount_peer
done
