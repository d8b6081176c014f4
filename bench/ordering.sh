#!/usr/bin/env bash
# make bench-ordering: the cost of power-cut safety (docs/ORDERING.md). bench/ordering.c is
# built twice, against this tree and against the engine before the ordering work (commit
# 82001c6, extracted with git archive and built in $BUILD/ordering/base), and both run
# here: device writes and flushes per metadata operation, and read-write mounts of a dirty
# and a clean 32 GiB FAT32 volume (a sparse file served by the io_uring driver; the engine
# before did not recover, so its dirty mount is a plain mount). Mount times are the median
# of three, each on a fresh copy where the mount changes the volume.
set -eu
BUILD=${BUILD:-build}
BASE=82001c6be9263d29942b6d1fb397dd8772ea7b40
work=$BUILD/ordering
mkdir -p "$work"
before=$work/ordering_before
after=$BUILD/rel/bench/ordering
. bench/engine_before.sh
engine_before "$BASE" "$work" bench/ordering.c "$before"

"$before" ops before
"$after" ops after

img=$work/dirty32g.img
copy=$work/copy32g.img
trap 'rm -f "$img" "$copy"' EXIT
"$after" prepare "$img"

# median of three runs of: <program> mount <image> <label> <tag>, on a fresh copy of the
# dirty image each time when `fresh` is set
median3() {
    local fresh=$1 prog=$2 label=$3 tag=$4 i target runs
    runs=$(mktemp)
    for i in 1 2 3; do
        if [ "$fresh" = 1 ]; then cp --sparse=always "$img" "$copy"; target=$copy; else target=$img; fi
        "$prog" mount "$target" "$label" "$tag" 2>/dev/null >>"$runs"
    done
    for name in $(awk '{ print $2 }' "$runs" | sort -u); do
        awk -v n="$name" '$2 == n { print $3, $4 }' "$runs" | sort -n | sed -n 2p | sed "s/^/bench $name /"
    done
    rm -f "$runs"
}
median3 1 "$before" before dirty
median3 1 "$after" after dirty
"$after" mount "$img" after dirty >/dev/null 2>&1 # recovered: clean from here on
median3 0 "$before" before clean
median3 0 "$after" after clean
