#!/usr/bin/env bash
# The FUSE ring's own checks, run by test_fuse_ring.sh with the fuse module's enable_uring
# set: requests from every CPU (each has its own queue in the kernel) answered, with the
# bytes right; -o io_uring=0; and the ends of a connection with requests in flight (a
# SIGINT, a SIGKILL), after which no reader is left waiting.
set -u
FUSE_TESTS="requests_from_every_cpu_go_through_the_ring ring_buffers_outside_the_share_region
    io_uring_0_keeps_to_dev_fuse
    sigint_while_reading_through_the_ring a_killed_mount_leaves_no_reader_waiting"
. "$(dirname "$0")/fuse_lib.sh"

mount_fg() {
    ASYNCFAT_STATS=1 "$A" mount "$@" "$M" -f 2>"$T/mount.err" &
    PID=$!
    wait_mounted || { cat "$T/mount.err"; return 1; }
}
ring_requests() { sed -n 's/.*; \([0-9]*\) FUSE requests through io_uring$/\1/p' "$T/mount.err"; }

"$A" mkfs vol.img --size 64M --fat 32 >/dev/null || { echo "FAIL mkfs"; exit 1; }
fuse_first_mount vol.img
unmount_wait

# Threads pinned to each CPU read and write 4 KiB blocks with O_DIRECT, 8 at a time per
# CPU, each block checked against what was written; mtools then reads the same bytes.
t_every_cpu() {
    rm -f "$T/expected.bin"
    mount_fg vol.img || return 1
    python3 - "$M/data.bin" "$T/expected.bin" <<'PY' || return 1
import mmap, os, random, sys, threading
path, expected_path = sys.argv[1], sys.argv[2]
blocks = 2048
data = bytearray(os.urandom(blocks * 4096))
with open(path, "wb") as f:
    f.write(data)
cpus = sorted(os.sched_getaffinity(0))[:8]
errors = []
def worker(cpu, index):
    os.sched_setaffinity(0, {cpu})
    rng = random.Random(cpu * 100 + index)
    buf = mmap.mmap(-1, 4096)
    fd = os.open(path, os.O_RDWR | os.O_DIRECT)
    try:
        for i in range(300):
            # each worker writes only its own blocks; any worker reads any block
            if i % 4 == 0:
                b = (rng.randrange(blocks // 64) * 64 + cpu * 8 + index) % blocks
                block = os.urandom(4096)
                buf[:] = block
                os.pwritev(fd, [buf], b * 4096)
                data[b * 4096:(b + 1) * 4096] = block
            b = rng.randrange(blocks)
            want = bytes(data[b * 4096:(b + 1) * 4096])
            owner = b % 64  # only its owner writes a block; unowned ones stay as written first
            if os.preadv(fd, [buf], b * 4096) != 4096:
                errors.append(("short read", b))
            elif (owner >= len(cpus) * 8 or owner == cpu * 8 + index) and bytes(buf) != want:
                errors.append(("wrong bytes", cpu, b))
    except OSError as e:
        errors.append((cpu, index, e))
    finally:
        os.close(fd)
threads = [threading.Thread(target=worker, args=(c, i)) for c in cpus for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors[:5]
with open(expected_path, "wb") as f:
    f.write(data)
PY
    unmount_wait || return 1
    local n
    n=$(ring_requests)
    echo "requests through the ring: ${n:-none}"
    [ "${n:-0}" -ge 4000 ] || { cat "$T/mount.err"; return 1; }
    clean vol.img || return 1
    mcopy -n -i vol.img ::/data.bin "$T/out.bin" && cmp "$T/out.bin" "$T/expected.bin"
}
run requests_from_every_cpu_go_through_the_ring t_every_cpu
# The same where the share region has room for only some of the ring's buffers: the rest
# live outside it, and their requests' data is copied on the way.
t_unshared() { ASYNCFAT_RING_UNSHARED=1 t_every_cpu; }
run ring_buffers_outside_the_share_region t_unshared

t_io_uring_0() {
    mount_fg vol.img -o io_uring=0 || return 1
    echo hello >"$M/plain.txt" && [ "$(cat "$M/plain.txt")" = hello ] || return 1
    unmount_wait || return 1
    [ "$(ring_requests)" = 0 ] || { cat "$T/mount.err"; return 1; }
    "$A" mount vol.img "$M" -o io_uring=2 -f 2>bad.err && return 1
    grep -q "asyncfat: mount: -o io_uring=2: io_uring= takes 0 or 1" bad.err || { cat bad.err; return 1; }
    clean vol.img
}
run io_uring_0_keeps_to_dev_fuse t_io_uring_0

# A reader with O_DIRECT reads in flight until the connection ends; prints the errno that
# ended it. Started in the background; $READER is its process.
start_reader() {
    python3 - "$M/data.bin" >"$T/reader.out" 2>&1 <<'PY' &
import errno, mmap, os, sys, time
buf = mmap.mmap(-1, 4096)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
end = time.monotonic() + 30
i = 0
try:
    while time.monotonic() < end:
        os.preadv(fd, [buf], (i * 7919 % 2048) * 4096)
        i += 1
except OSError as e:
    print("ended", errno.errorcode.get(e.errno, e.errno), "after", i)
    sys.exit(0)
print("never ended after", i)
sys.exit(1)
PY
    READER=$!
}
# The reader ends within 10 s (its reads answered with an error), or the test fails.
reader_ended() {
    if ! ends_in_10s "$READER"; then
        echo "the reader still waits"
        kill -9 "$READER"
        return 1
    fi
    wait "$READER" || { cat "$T/reader.out"; return 1; }
    cat "$T/reader.out"
}

t_sigint_reading() {
    mount_fg vol.img || return 1
    start_reader
    sleep 1
    kill -INT "$PID"
    wait_signalled
    local rc=$?
    reader_ended || return 1
    fusermount3 -u -z "$M" 2>/dev/null
    [ "$rc" -eq 0 ] || { echo "exit status $rc"; cat "$T/mount.err"; return 1; }
    clean vol.img
}
run sigint_while_reading_through_the_ring t_sigint_reading

t_killed() {
    mount_fg vol.img || return 1
    start_reader
    sleep 1
    kill -9 "$PID"
    wait "$PID" 2>/dev/null
    PID=
    reader_ended || return 1
    fusermount3 -u -z "$M" 2>/dev/null
    "$A" fsck vol.img >/dev/null 2>&1 || true
    mountpoint -q "$M" && { echo "still mounted"; return 1; }
    return 0
}
run a_killed_mount_leaves_no_reader_waiting t_killed

exit $failed
