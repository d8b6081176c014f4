#!/usr/bin/env bash
# FUSE over io_uring (tools/mount/fuse_ring.c). With the fuse module's enable_uring set, the
# ring's own checks (fuse_ring_checks.sh), then the whole FUSE suite again through the ring
# (its tests named ring_*), all on the command built with ASan and UBSan. The suite's
# images live in /dev/shm where it can be written and has 512 MiB free: the first run of the suite has them on
# disk, so this one covers the driver's reads from a mapping of an image in memory. The
# parameter is put back as it was at the end. Every test is skipped, saying why, where the
# kernel has no FUSE over io_uring or the parameter cannot be set (not root, /sys read-only).
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
KNOB=/sys/module/fuse/parameters/enable_uring
export FUSE_COMMAND=$BUILD/san/asyncfat BUILD

old=
if [ ! -e "$KNOB" ]; then
    export FUSE_SKIP="this kernel has no FUSE over io_uring (no $KNOB)"
elif ! old=$(cat "$KNOB") || ! { echo Y >"$KNOB"; } 2>/dev/null; then
    export FUSE_SKIP="cannot set $KNOB (not root?)"
    old=
fi
[ -n "$old" ] && trap 'echo "$old" >"$KNOB"' EXIT

shm_free_kib=$(df -k --output=avail /dev/shm 2>/dev/null | tail -n 1)
[ -w /dev/shm ] && [ "${shm_free_kib:-0}" -gt 524288 ] 2>/dev/null && export TMPDIR=/dev/shm

failed=0
for script in fuse_ring_checks.sh test_fuse.sh test_fuse_conventions.sh; do
    prefix=ring_
    [ "$script" = fuse_ring_checks.sh ] && prefix=
    FUSE_PREFIX=$prefix bash "$HERE/$script" || failed=1
done
exit $failed
