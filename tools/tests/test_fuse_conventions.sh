#!/usr/bin/env bash
# The FUSE mount as a user of kernel vfat expects it, through a real mount: lookups of
# names FAT cannot hold, FAT attributes (chmod a-w, vfat's attribute ioctls, the xattr),
# time zones (local by default, tz=UTC, time_offset=), mounting a partition, and what
# Ctrl-C says. Checked afterwards with fsck.fat and mtools. Prints PASS/FAIL lines, or
# SKIP lines when FUSE cannot be used here.
set -u
FUSE_TESTS="lookup_of_unrepresentable_names_is_enoent chmod_and_fat_attributes time_zone_local_utc_and_offset
    mount_of_a_partition ctrl_c_says_unmounted_volume_clean thousands_of_open_files max_open_option
    busy_poll_option_saves_wake_ups_at_one_request_in_flight
    reopen_of_an_unlinked_open_file deep_trees_past_4095_bytes deep_tree_anchors_are_closed_when_trees_go"
. "$(dirname "$0")/fuse_lib.sh"

"$A" mkfs vol.img --size 64M >/dev/null || { echo "FAIL mkfs"; exit 1; }
fuse_first_mount vol.img
unmount_wait

# ---- item: lookups of names FAT cannot hold ----
t_lookup_enoent() {
    mount_fg vol.img || return 1
    python3 - "$M" <<'PY' || return 1
import errno, os, sys
m = sys.argv[1]
def err(f, *a):
    try:
        f(*a)
    except OSError as e:
        return e.errno
    return 0
bad = ["a*b", "q?", "x:y", 'say"hi"', "lt<", "pipe|", "back\\slash", "ctl\x01"]
for n in bad:
    for f in (os.stat, os.lstat):
        got = err(f, os.path.join(m, n))
        assert got == errno.ENOENT, (n, f.__name__, got)
    assert not os.path.exists(os.path.join(m, n)), n
    # where a name is created it is EINVAL
    got = err(lambda p: open(p, "w"), os.path.join(m, n))
    assert got == errno.EINVAL, ("create", n, got)
    got = err(os.mkdir, os.path.join(m, n))
    assert got == errno.EINVAL, ("mkdir", n, got)
    # and the negative entry the lookup left does not hide the refusal a second time
    got = err(lambda p: open(p, "w"), os.path.join(m, n))
    assert got == errno.EINVAL, ("create again", n, got)
os.mkdir(os.path.join(m, "dir"))
assert err(os.stat, os.path.join(m, "dir", "no*such", "deeper")) == errno.ENOENT
# too long stays ENAMETOOLONG
assert err(os.stat, os.path.join(m, "n" * 300)) == errno.ENAMETOOLONG
os.rmdir(os.path.join(m, "dir"))
PY
    # an unmatched glob: ls says "No such file or directory", not "Invalid argument"
    ls "$M"/*.nomatch 2>ls.err && return 1
    grep -q "No such file or directory" ls.err || { cat ls.err; return 1; }
    unmount_wait && clean vol.img
}
run lookup_of_unrepresentable_names_is_enoent t_lookup_enoent

# ---- item: FAT attributes ----
# mattrib's letters for a file in the image, e.g. "A R".
mattr() { mattrib -i vol.img "::$1" | cut -c1-10 | tr -s ' ' | sed 's/^ //; s/ $//'; }
t_attributes() {
    mount_fg vol.img || return 1
    echo text >"$M/f.txt" && mkdir "$M/d" || return 1
    chmod a-w "$M/f.txt" || return 1
    [ "$(stat -c %A "$M/f.txt")" = "-r--r--r--" ] || { stat -c %A "$M/f.txt"; return 1; }
    # refused for writing (as vfat); the kernel does not cache the old mode
    python3 - "$M" <<'PY' || return 1
import errno, fcntl, os, struct, sys
m = sys.argv[1]
GET, SET = 0x80047210, 0x40047211  # FAT_IOCTL_GET_ATTRIBUTES, FAT_IOCTL_SET_ATTRIBUTES
try:
    open(os.path.join(m, "f.txt"), "w")
    raise SystemExit("opened a read-only file for writing")
except OSError as e:
    assert e.errno in (errno.EACCES, errno.EPERM), e
def get(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return struct.unpack("I", fcntl.ioctl(fd, GET, b"\0" * 4))[0]
    finally:
        os.close(fd)
def put(path, value):
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, SET, struct.pack("I", value))
    finally:
        os.close(fd)
f, d = os.path.join(m, "f.txt"), os.path.join(m, "d")
assert get(f) == 0x21, hex(get(f))            # archive, read-only
assert get(d) == 0x10, hex(get(d))            # directory
put(f, 0x02 | 0x04)                           # hidden + system; read-only and archive cleared
assert get(f) == 0x06, hex(get(f))
assert os.stat(f).st_mode & 0o222, oct(os.stat(f).st_mode)   # writable again: the mode followed
put(f, 0x01 | 0x10 | 0x08 | 0x100)            # directory, volume and high bits ignored, as vfat
assert get(f) == 0x01, hex(get(f))
assert not os.stat(f).st_mode & 0o222
put(d, 0x02)
assert get(d) == 0x12, hex(get(d))
try:
    fd = os.open(f, os.O_RDONLY)
    fcntl.ioctl(fd, 0x80047299, b"\0" * 4)
    raise SystemExit("an unknown ioctl succeeded")
except OSError as e:
    assert e.errno in (errno.ENOTTY, errno.ENOSYS, errno.EINVAL), e
finally:
    os.close(fd)
PY
    chmod u+w "$M/f.txt" && [ "$(stat -c %A "$M/f.txt")" = "-rw-r--r--" ] && echo more >>"$M/f.txt" || return 1
    chmod a-w "$M/d" && [ -w "$M/d" ] || { echo "chmod of a directory changed its mode"; return 1; }
    unmount_wait || return 1
    [ "$(mattr /f.txt)" = "A" ] && [ "$(mattr /d)" = "H" ] || { mattrib -i vol.img ::/f.txt ::/d; return 1; }
    "$A" attrib vol.img:/d >attrib.out && grep -q "H" attrib.out || return 1
    clean vol.img
}
run chmod_and_fat_attributes t_attributes

# ---- item: time zones ----
# The entry's raw write time as mtools prints it ("HH:MM"), whatever the zone.
raw_time() { mdir -i "$1" "::$2" | awk 'toupper($0) ~ /^'"$3"' / { print $(NF)} ' | head -1; }
t_time_zone() {
    local t=2021-03-04T05:06:08Z want_utc want_east
    # default: local time (TZ of the mounting process), as vfat and mtools
    TZ=Asia/Kolkata mount_fg vol.img || return 1
    touch -d "$t" "$M/local.txt" || return 1
    [ "$(date -u -r "$M/local.txt" +%FT%TZ)" = "$t" ] || { date -u -r "$M/local.txt"; return 1; }
    unmount_wait || return 1
    # tz=UTC
    mount_fg vol.img -o tz=UTC || return 1
    touch -d "$t" "$M/utc.txt" || return 1
    [ "$(date -u -r "$M/utc.txt" +%FT%TZ)" = "$t" ] || return 1
    unmount_wait || return 1
    # time_offset=-300 (vfat's: minutes east of UTC)
    mount_fg vol.img -o time_offset=-300 || return 1
    touch -d "$t" "$M/west.txt" || return 1
    unmount_wait || return 1
    # the stored fields: UTC+5:30, UTC, UTC-5
    want_utc=$(raw_time vol.img /utc.txt UTC)
    [ "$(raw_time vol.img /local.txt LOCAL)" = "10:36" ] && [ "$want_utc" = "5:06" ] &&
        [ "$(raw_time vol.img /west.txt WEST)" = "0:06" ] ||
        { mdir -i vol.img ::/; return 1; }
    # the command's --tz agrees with the mount's tz=
    "$A" stat --tz UTC vol.img:/utc.txt >stat.out && grep -q "2021-03-04" stat.out || return 1
    "$A" mount vol.img "$M" -o tz=Mars/Olympus -f 2>bad.err && return 1
    grep -q "asyncfat: mount: -o tz=Mars/Olympus: not a time zone" bad.err || { cat bad.err; return 1; }
    clean vol.img
}
run time_zone_local_utc_and_offset t_time_zone

# ---- item: a partition mounted by IMAGE@N ----
t_partition() {
    command -v sfdisk >/dev/null || { echo "no sfdisk"; return 1; }
    truncate -s 48M disk.img
    printf 'start=2048, size=16384, type=83\nstart=18432, size=77824, type=c\n' | sfdisk -q disk.img >/dev/null || return 1
    "$A" mkfs disk.img@2 >/dev/null || return 1
    mount_fg disk.img@2 || return 1
    echo "in partition two" >"$M/p2.txt" || return 1
    unmount_wait || return 1
    [ "$(mtype -i "disk.img@@$((18432 * 512))" ::/p2.txt)" = "in partition two" ] || return 1
    "$A" mount disk.img@3 "$M" -f 2>p3.err && return 1
    grep -q "no partition 3" p3.err || { cat p3.err; return 1; }
}
run mount_of_a_partition t_partition

# ---- item: open files limited by memory, and configurable ----
t_many_open() {
    mount_fg vol.img || return 1
    ( ulimit -n 8192 && python3 - "$M" <<'PY' ) || return 1
import os, sys
m = sys.argv[1]
os.mkdir(os.path.join(m, "many"))
# 3000 files open for writing at once (the server gives the mount 128 fds), then 1000
# more for reading, all used in an order that makes the mount reopen evicted ones
w = [open(os.path.join(m, "many", "f%d" % i), "w") for i in range(3000)]
for i, f in enumerate(w):
    f.write("file %d\n" % i)
    f.flush()
for i, f in reversed(list(enumerate(w))):
    f.write("again %d\n" % i)
    f.flush()
r = [open(os.path.join(m, "many", "f%d" % i)) for i in range(0, 3000, 3)]
for f in w:
    f.close()
for j, f in enumerate(r):
    assert f.read() == "file %d\nagain %d\n" % (3 * j, 3 * j), j
    f.close()
PY
    unmount_wait || return 1
    [ "$(mtype -i vol.img ::/many/f2999)" = "$(printf 'file 2999\nagain 2999')" ] || return 1
    clean vol.img
}
run thousands_of_open_files t_many_open

t_max_open() {
    mount_fg vol.img -o max_open=50 || return 1
    python3 - "$M" <<'PY' || return 1
import errno, os, sys
m = sys.argv[1]
fs = [open(os.path.join(m, "many", "f%d" % i)) for i in range(50)]
try:
    open(os.path.join(m, "many", "f50"))
    raise SystemExit("opened a 51st file with max_open=50")
except OSError as e:
    assert e.errno == errno.EMFILE, e
fs.pop().close()
open(os.path.join(m, "many", "f50")).close()
PY
    unmount_wait || return 1
    "$A" mount vol.img "$M" -o max_open=lots -f 2>bad.err && return 1
    grep -q "asyncfat: mount: -o max_open=lots: not a number of files" bad.err || { cat bad.err; return 1; }
}
run max_open_option t_max_open

# -o busy_poll: at one request in flight the mount's thread catches the next request awake
# instead of sleeping between requests. Counted, not timed: the mount process's voluntary
# context switches (sleeps) over 2,000 O_DIRECT reads by a reader that works 50 us
# between them, with a 2 ms budget (wide enough for a loaded machine) against busy_poll=0.
# Halfway the reader pauses 50 ms, past the budget: the loop sleeps, and must take up
# polling again once requests come close together (however its sleep ended: through the
# FUSE ring, by work the kernel queued for the thread).
mount_sleeps() { # busy_poll
    mount_fg vol.img -o "busy_poll=$1" || return 1
    dd if=/dev/urandom of="$M/spin.bin" bs=1M count=8 status=none || return 1
    local before after
    before=$(cat /proc/"$PID"/task/*/status | awk '/^voluntary_ctxt/ {n += $2} END {print n}')
    python3 - "$M/spin.bin" <<'PY' || return 1
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
for i in range(2000):
    if i == 1000:
        time.sleep(0.05)
    os.preadv(fd, [buf], (i * 7919 % 2048) * 4096)
    t = time.perf_counter()  # a reader's own work between requests: 50 us
    while time.perf_counter() - t < 50e-6:
        pass
PY
    after=$(cat /proc/"$PID"/task/*/status | awk '/^voluntary_ctxt/ {n += $2} END {print n}')
    unmount_wait || return 1
    echo $((after - before))
}
t_busy_poll() {
    local sleeping spinning
    sleeping=$(mount_sleeps 0) || return 1
    spinning=$(mount_sleeps 2000) || return 1
    echo "sleeps over 2,000 reads: busy_poll=0 $sleeping, busy_poll=2000 $spinning"
    [ "$sleeping" -ge 1000 ] && [ $((spinning * 2)) -lt "$sleeping" ] || return 1
    "$A" mount vol.img "$M" -o busy_poll=fast -f 2>bad.err && return 1
    grep -q "asyncfat: mount: -o busy_poll=fast: busy_poll= takes microseconds, 0 to 1000000" bad.err || { cat bad.err; return 1; }
    clean vol.img
}
run busy_poll_option_saves_wake_ups_at_one_request_in_flight t_busy_poll

# ---- item: an unlinked open file opened again through /proc/self/fd ----
t_reopen_unlinked() {
    mount_fg vol.img || return 1
    python3 - "$M" <<'PY' || return 1
import os, sys
m = sys.argv[1]
p = os.path.join(m, "gone.txt")
with open(p, "w") as f:
    f.write("before unlink\n")
fd = os.open(p, os.O_RDWR)
ro = os.open(p, os.O_RDONLY)
os.unlink(p)
assert not os.path.exists(p)
again = open("/proc/self/fd/%d" % fd, "r+")
assert again.read() == "before unlink\n"
again.write("written again\n")
again.flush()
assert os.pread(fd, 100, 0) == b"before unlink\nwritten again\n"
viaro = open("/proc/self/fd/%d" % ro)
assert viaro.read() == "before unlink\nwritten again\n"
for x in (again, viaro):
    x.close()
os.close(fd)
os.close(ro)
# a file opened only for reading can be opened again for reading through its fd
with open(os.path.join(m, "r.txt"), "w") as f:
    f.write("r")
ro = os.open(os.path.join(m, "r.txt"), os.O_RDONLY)
os.unlink(os.path.join(m, "r.txt"))
assert open("/proc/self/fd/%d" % ro).read() == "r"
os.close(ro)
PY
    unmount_wait && clean vol.img
}
run reopen_of_an_unlinked_open_file t_reopen_unlinked

# ---- item: deep trees (paths past the protocol's 4,095 bytes, sent from anchors) ----
t_deep() {
    mount_fg vol.img || return 1
    python3 - "$M" <<'PY' || return 1
import errno, os, stat, subprocess, sys
def err(f, *a):
    try:
        f(*a)
    except OSError as e:
        return e.errno
    return 0
os.chdir(sys.argv[1])
names = [("d%02d" % i * 70)[:200] for i in range(21)]
os.mkdir("deep")
os.chdir("deep")
for n in names:
    os.mkdir(n)
    os.chdir(n)
# from the mount's root the bottom is past the protocol's 4,095 bytes
assert sum(len(n) + 1 for n in names) + len("/deep") > 4095
leaf = ("f" * 200)[:200]
data = bytes(range(256)) * 300
with open(leaf, "wb") as f:
    f.write(data)
assert open(leaf, "rb").read() == data
st = os.stat(leaf)
assert st.st_size == len(data) and stat.S_ISREG(st.st_mode), st
os.utime(leaf, (1_000_000_000, 1_200_000_000))
assert int(os.stat(leaf).st_mtime) == 1_200_000_000, os.stat(leaf).st_mtime
os.chmod(leaf, 0o444)
assert not os.stat(leaf).st_mode & 0o222
assert err(lambda: open(leaf, "r+b")) == errno.EACCES
os.chmod(leaf, 0o644)
os.truncate(leaf, 1000)
assert os.stat(leaf).st_size == 1000
os.rename(leaf, "renamed.bin")
assert sorted(os.listdir(".")) == ["renamed.bin"], os.listdir(".")
os.mkdir("sub")
os.rmdir("sub")
# a name over 255 bytes is still ENAMETOOLONG, never EINVAL
assert err(os.mkdir, "x" * 256) == errno.ENAMETOOLONG
assert err(os.stat, "x" * 256) == errno.ENAMETOOLONG
# two deep directories, a file and a directory moved between them with mv
a, b = ("a" * 200), ("b" * 200)
os.mkdir(a)
os.mkdir(b)
os.mkdir(os.path.join(a, "inner"))
open(os.path.join(a, "inner", "x.txt"), "w").write("inner")
subprocess.run(["mv", "renamed.bin", a + "/moved.bin"], check=True)
subprocess.run(["mv", a + "/moved.bin", b + "/moved.bin"], check=True)
subprocess.run(["mv", a + "/inner", b + "/"], check=True)
assert os.listdir(a) == [], os.listdir(a)
assert sorted(os.listdir(b)) == ["inner", "moved.bin"], os.listdir(b)
assert open(b + "/inner/x.txt").read() == "inner"
# a directory into itself, and a non-empty one removed: refused as near the root
assert err(os.rename, b, b + "/inner/self") == errno.EINVAL
assert err(os.rmdir, b) == errno.ENOTEMPTY
count = subprocess.run(["find", "."], check=True, capture_output=True, text=True).stdout.count("\n")
assert count == 6, count
PY
    unmount_wait && clean vol.img || return 1
    # again after a remount (nothing cached), then the whole tree removed with rm -rf
    mount_fg vol.img || return 1
    python3 - "$M" <<'PY' || return 1
import os, subprocess, sys
os.chdir(sys.argv[1])
os.chdir("deep")
for i in range(21):
    os.chdir(("d%02d" % i * 70)[:200])
b = "b" * 200
data = open(b + "/moved.bin", "rb").read()
assert data == (bytes(range(256)) * 4)[:1000], len(data)
assert open(b + "/inner/x.txt").read() == "inner"
os.chdir(sys.argv[1])
subprocess.run(["rm", "-rf", "deep"], check=True)
assert not os.path.exists("deep")
PY
    unmount_wait && clean vol.img
}
run deep_trees_past_4095_bytes t_deep

# Anchors are closed when their directories go: more deep trees made and removed one after
# another than the server gives a client fds (128).
t_deep_anchors_closed() {
    mount_fg vol.img || return 1
    python3 - "$M" <<'PY' || { unmount_wait; return 1; }
import os, shutil, sys
root = sys.argv[1]
names = [("e%02d" % i * 70)[:200] for i in range(21)]
for round in range(150):
    os.chdir(root)
    os.mkdir("t")
    os.chdir("t")
    for n in names:
        os.mkdir(n)
        os.chdir(n)
    with open("leaf", "w") as f:
        f.write("round %d" % round)
    os.chdir(root)
    shutil.rmtree("t")
PY
    unmount_wait && clean vol.img
}
run deep_tree_anchors_are_closed_when_trees_go t_deep_anchors_closed

# ---- item: Ctrl-C ----
t_ctrl_c() {
    mount_fg vol.img || return 1
    echo data >"$M/c.txt" || return 1
    kill -INT "$PID"
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    wait "$PID"
    local rc=$?
    PID=
    [ "$rc" -eq 0 ] || { echo "exit $rc"; cat mount.err; return 1; }
    grep -qx "asyncfat: $M: unmounted, volume clean" mount.err || { cat mount.err; return 1; }
    clean vol.img
}
run ctrl_c_says_unmounted_volume_clean t_ctrl_c

exit $failed
