#!/usr/bin/env bash
# The FUSE mount, through a real mount: coreutils, errno values, unlink while open, large
# listings and seekdir, attribute caching against changes, a tar round trip, concurrent
# writers, unmount by fusermount3 and by signal, and afterwards fsck.fat -n and mtools on
# the image. Prints PASS/FAIL lines, or SKIP lines when FUSE cannot be used here (no
# /dev/fuse, no fusermount3, no permission to mount).
set -u
FUSE_TESTS="coreutils errno_values unlink_while_open_and_ftruncate directory_times directory_listing
    changes_are_seen_through_every_path known_names_are_found_and_absent_ones_answered
    round_trips_per_operation read_handles tar_round_trip
    concurrent_writers no_fuse_hidden_files a_mounted_image_is_refused_to_a_second_user
    unmount_leaves_a_clean_volume mtools_reads_the_same_bytes
    read_only_mount sigint_unmounts_cleanly background_mount enospc_when_full
    fsync_of_a_directory_makes_the_volume_durable background_writeback_makes_files_durable
    a_dirty_volume_is_recovered_and_reported discard_punches_removed_files_out_of_the_image
    unknown_mount_option_fails make_run_mounts_the_default_image_until_ctrl_c"
. "$(dirname "$0")/fuse_lib.sh"

# mount_fg IMAGE [OPTIONS...]: as fuse_lib.sh's, the mount counting its requests
# (ASYNCFAT_STATS: the round-trip tests read the count from $T/mount.err).
mount_fg() {
    ASYNCFAT_STATS=1 "$A" mount "$@" "$M" -f 2>"$T/mount.err" &
    PID=$!
    wait_mounted
}
"$A" mkfs vol.img --size 256M --fat 32 >/dev/null || { echo "FAIL mkfs"; exit 1; }
fuse_first_mount vol.img

t_coreutils() {
    head -c 5000000 /dev/urandom >"$T/data.bin"
    cp "$T/data.bin" "$M/data.bin" && cmp "$T/data.bin" "$M/data.bin" || return 1
    mkdir "$M/dir" && mkdir -p "$M/dir/a/b/c" || return 1
    touch "$M/dir/touched" && [ -f "$M/dir/touched" ] && [ ! -s "$M/dir/touched" ] || return 1
    touch -d "2020-05-06 07:08:10" "$M/dir/touched" && [ "$(date -r "$M/dir/touched" +%Y-%m-%d)" = 2020-05-06 ] ||
        return 1
    mv "$M/data.bin" "$M/dir/a/moved.bin" && cmp "$T/data.bin" "$M/dir/a/moved.bin" && [ ! -e "$M/data.bin" ] ||
        return 1
    truncate -s 12345 "$M/dir/touched" && [ "$(stat -c %s "$M/dir/touched")" -eq 12345 ] || return 1
    [ "$(head -c 12345 /dev/zero | md5sum)" = "$(md5sum <"$M/dir/touched")" ] || return 1
    truncate -s 100 "$M/dir/touched" && [ "$(stat -c %s "$M/dir/touched")" -eq 100 ] || return 1
    dd if=/dev/urandom of="$M/dd.bin" bs=64k count=40 status=none && [ "$(stat -c %s "$M/dd.bin")" -eq 2621440 ] ||
        return 1
    dd if="$T/data.bin" of="$M/dd.bin" bs=4096 seek=10 count=3 conv=notrunc status=none || return 1
    cmp -n 12288 -i 0:40960 "$T/data.bin" "$M/dd.bin" || return 1
    ls -l "$M/dir" | grep -q "touched" || return 1
    ls -la "$M" | grep -q " dd.bin" || return 1
    df "$M" | grep -q "asyncfat" || return 1
    [ "$(stat -f -c %b "$M")" -gt 0 ] || return 1
    echo "overwrite" >"$M/dir/touched" && [ "$(cat "$M/dir/touched")" = overwrite ] || return 1
    rm "$M/dir/touched" && [ ! -e "$M/dir/touched" ] || return 1
    rm -r "$M/dir" && [ ! -e "$M/dir" ] || return 1
    mv "$M/dd.bin" "$M/renamed.bin" && echo x >"$M/other" && mv "$M/other" "$M/renamed.bin" &&
        [ "$(cat "$M/renamed.bin")" = x ] || return 1
    rm "$M/renamed.bin"
}
run coreutils t_coreutils

t_errno() {
    python3 - "$M" <<'PY'
import errno, os, sys
m = sys.argv[1]
def expect(err, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        if e.errno != err:
            sys.exit(f"{fn.__name__}{args}: {errno.errorcode.get(e.errno)}, wanted {errno.errorcode[err]}")
        return
    sys.exit(f"{fn.__name__}{args}: succeeded, wanted {errno.errorcode[err]}")
os.mkdir(f"{m}/e")
open(f"{m}/e/file", "w").write("x")
os.mkdir(f"{m}/e/sub")
open(f"{m}/e/sub/f", "w").write("y")
expect(errno.ENOENT, os.stat, f"{m}/e/missing")
expect(errno.ENOENT, os.open, f"{m}/e/missing", os.O_RDONLY)
expect(errno.ENOENT, os.mkdir, f"{m}/e/missing/x")
expect(errno.EEXIST, os.mkdir, f"{m}/e/sub")
expect(errno.EEXIST, os.open, f"{m}/e/file", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
expect(errno.ENOTDIR, os.stat, f"{m}/e/file/x")
expect(errno.ENOTDIR, os.listdir, f"{m}/e/file")
expect(errno.ENOTDIR, os.rmdir, f"{m}/e/file")
expect(errno.EISDIR, os.open, f"{m}/e/sub", os.O_WRONLY)
expect(errno.EISDIR, os.unlink, f"{m}/e/sub")
expect(errno.ENOTEMPTY, os.rmdir, f"{m}/e/sub")
long = "n" * 256
expect(errno.ENAMETOOLONG, os.open, f"{m}/e/{long}", os.O_CREAT | os.O_WRONLY)
expect(errno.ENAMETOOLONG, os.mkdir, f"{m}/e/{long}")
expect(errno.ENAMETOOLONG, os.stat, f"{m}/e/{long}")
expect(errno.ENAMETOOLONG, os.rename, f"{m}/e/file", f"{m}/e/{long}")
ok = "n" * 255
open(f"{m}/e/{ok}", "w").write("255")
assert open(f"{m}/e/{ok}").read() == "255"
fd = os.open(f"{m}/e/big", os.O_CREAT | os.O_WRONLY)
expect(errno.EFBIG, os.ftruncate, fd, 5 << 30)
expect(errno.EFBIG, os.pwrite, fd, b"z", (4 << 30))
os.close(fd)
expect(errno.EINVAL, os.open, f"{m}/e/bad*name", os.O_CREAT | os.O_WRONLY)
expect(errno.EINVAL, os.rename, f"{m}/e/sub", f"{m}/e/sub/inside")
PY
}
run errno_values t_errno

t_unlink_open() {
    python3 - "$M" <<'PY'
import os, sys
m = sys.argv[1]
path = f"{m}/open-unlinked"
fd = os.open(path, os.O_CREAT | os.O_RDWR)
os.write(fd, b"a" * 10000)
os.unlink(path)
assert not os.path.exists(path)
os.pwrite(fd, b"b" * 5000, 10000)
assert os.fstat(fd).st_size == 15000
os.ftruncate(fd, 100000)          # growing with ftruncate
assert os.fstat(fd).st_size == 100000
data = os.pread(fd, 100000, 0)
assert data[:10000] == b"a" * 10000 and data[10000:15000] == b"b" * 5000 and data[15000:] == bytes(85000), "contents"
names = os.listdir(m)
assert not any(n.startswith(".fuse_hidden") for n in names), names
os.close(fd)
p2 = f"{m}/grow"
fd = os.open(p2, os.O_CREAT | os.O_RDWR)
os.write(fd, b"x")
os.ftruncate(fd, 300000)
os.close(fd)
d = open(p2, "rb").read()
assert len(d) == 300000 and d[0:1] == b"x" and d[1:] == bytes(299999)
os.unlink(p2)
PY
}
run unlink_while_open_and_ftruncate t_unlink_open

t_dir_times() {
    mkdir "$M/times" || return 1
    local before after
    before=$(stat -c %Y "$M/times")
    sleep 2.2
    touch "$M/times/new" || return 1
    after=$(stat -c %Y "$M/times")
    [ "$after" -gt "$before" ] || { echo "create: mtime $before -> $after"; return 1; }
    sleep 2.2
    rm "$M/times/new" || return 1
    before=$after
    after=$(stat -c %Y "$M/times")
    [ "$after" -gt "$before" ] || { echo "unlink: mtime $before -> $after"; return 1; }
}
run directory_times t_dir_times

# A directory too big for one kernel readdir buffer: `ls -l` (readdirplus, no lookups) shows
# every name once with the size and time it was given; telldir/seekdir/rewinddir resume
# where they should; the listing is the same after a remount (t_ro compares it).
t_listing() {
    mkdir "$M/list" || return 1
    python3 - "$M/list" <<'PY' || return 1
import os, sys
d = sys.argv[1]
for i in range(600):
    p = os.path.join(d, "entry_with_a_rather_long_name_%04d.txt" % i)
    with open(p, "wb") as f:
        f.write(b"x" * (i * 7))
    t = 1600000000 + i * 86400
    os.utime(p, (t, t))
PY
    ls -l --time-style=+%s "$M/list" >"$T/listing.before" || return 1
    [ "$(grep -c entry_with "$T/listing.before")" -eq 600 ] || return 1
    awk '/entry_with/ { i = substr($7, 31, 4) + 0; if ($5 != i * 7 || $6 != 1600000000 + i * 86400) { print; bad = 1 } }
         END { exit bad }' "$T/listing.before" || return 1
    perl -e '
        opendir(my $d, $ARGV[0]) or die "opendir: $!";
        my @first; push @first, scalar readdir($d) for 1 .. 250;
        my $pos = telldir($d);
        my @rest = readdir($d);
        seekdir($d, $pos);
        my @again = readdir($d);
        die "seekdir: @rest[0..2] vs @again[0..2]\n" unless "@rest" eq "@again";
        rewinddir($d);
        my @all = readdir($d);
        my %seen; $seen{$_}++ for @all;
        die "rewind: " . scalar(@all) . " entries\n" unless @all == 602 && keys(%seen) == 602;
        die "split: " . (@first + @rest) . "\n" unless @first + @rest == 602;
    ' "$M/list"
}
run directory_listing t_listing

# What one path changes, every other path sees at once (the mount caches attributes):
# writes and truncates through a descriptor, times set by name, a renamed directory.
t_coherence() {
    python3 - "$M" <<'PY'
import os, sys
m = sys.argv[1]
os.mkdir(m + "/co")
p = m + "/co/f"
fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
os.listdir(m + "/co")                    # fills the cache from the listing
assert os.stat(p).st_size == 0
for n in range(1, 6):
    os.write(fd, b"y" * 1000)
    assert os.stat(p).st_size == n * 1000, os.stat(p).st_size
os.ftruncate(fd, 123)
assert os.stat(p).st_size == 123
os.close(fd)
os.utime(p, (1500000000, 1500000000))
assert os.stat(p).st_mtime == 1500000000
with open(p, "ab") as f:
    f.write(b"z")
assert os.stat(p).st_size == 124 and os.stat(p).st_mtime > 1500000000
os.mkdir(m + "/co/d")
with open(m + "/co/d/inner", "wb") as f:
    f.write(b"a" * 10)
assert os.stat(m + "/co/d/inner").st_size == 10
os.rename(m + "/co/d", m + "/co/e")
assert not os.path.exists(m + "/co/d/inner")
assert os.stat(m + "/co/e/inner").st_size == 10
os.mkdir(m + "/co/d")
with open(m + "/co/d/inner", "wb") as f:
    f.write(b"b" * 20)
assert os.stat(m + "/co/d/inner").st_size == 20
assert os.stat(m + "/co/e/inner").st_size == 10
assert sorted(os.listdir(m + "/co")) == ["d", "e", "f"]
os.unlink(m + "/co/e/inner")
assert not os.path.exists(m + "/co/e/inner") and os.listdir(m + "/co/e") == []
PY
}
run changes_are_seen_through_every_path t_coherence

# The mount answers lookups of names it knows are absent (in a directory it made or listed
# whole) by itself: every name that exists must still be found, whatever its case, a
# trailing dot, its 8.3 alias, through a differently cased directory path, after a rename.
t_known_names() {
    python3 - "$M" <<'PY'
import os, sys
m = sys.argv[1]
os.mkdir(m + "/nm")                               # made here: all its names are known
assert not os.path.exists(m + "/nm/missing")
open(m + "/nm/Foo.TXT", "w").close()
assert os.path.exists(m + "/nm/foo.txt") and os.path.exists(m + "/nm/FOO.TXT")
open(m + "/nm/bar.", "w").close()                 # the server drops the trailing dot
assert os.path.exists(m + "/nm/bar")
with open(m + "/nm/a long name with spaces.text", "w") as f:
    f.write("x")
assert os.stat(m + "/nm/ALONGN~1.TEX").st_size == 1  # the alias is the same file
os.mkdir(m + "/nm/Sub")
open(m + "/nm/sub/x", "w").close()                # through another case of the directory
assert os.path.exists(m + "/nm/Sub/x") and os.path.exists(m + "/nm/SUB/X")
# (Removing through one case leaves the kernel's entries for the other cases until they
# time out: FUSE names are case-sensitive. So each name is removed and checked as made.)
os.unlink(m + "/nm/sub/x")
assert not os.path.exists(m + "/nm/sub/x")
os.mkdir(m + "/nm/sub2")
os.rmdir(m + "/nm/sub2")
assert not os.path.exists(m + "/nm/sub2")
os.mkdir(m + "/nm/sub2")
assert os.listdir(m + "/nm/sub2") == [] and not os.path.exists(m + "/nm/sub2/x")
os.rename(m + "/nm", m + "/nm2")                  # forgets what it knew
assert sorted(os.listdir(m + "/nm2")) == ["Foo.TXT", "Sub", "a long name with spaces.text", "bar", "sub2"]
assert os.path.exists(m + "/nm2/FOO.txt") and not os.path.exists(m + "/nm2/nothing")
open(m + "/nm2/new", "w").close()
assert os.path.exists(m + "/nm2/NEW")
os.rename(m + "/nm2/new", m + "/nm2/renamed")
assert not os.path.exists(m + "/nm2/new") and os.path.exists(m + "/nm2/RENAMED")
PY
    [ $? = 0 ] || return 1
    # A rewinddir shows what was created since the directory was read.
    perl -e '
        opendir(my $d, $ARGV[0]) or die "opendir: $!";
        my @before = readdir($d);
        open(my $f, ">", "$ARGV[0]/late") or die "create: $!";
        close $f;
        rewinddir($d);
        my @after = readdir($d);
        die "rewind: " . scalar(@before) . " then " . scalar(@after) . " entries\n" unless @after == @before + 1;
    ' "$M/nm2"
}
run known_names_are_found_and_absent_ones_answered t_known_names

# Round trips: a create with touch is OPEN_STAT, SET_TIMES_STAT and CLOSE (the lookup
# before it is answered by the mount); `ls -l` and `rm -rf` read the directory a batch at
# a time and look nothing up. Counted by ASYNCFAT_STATS on a mount of its own.
t_round_trips() {
    local m2=$T/mnt2 pid n
    "$A" mkfs rt.img --size 64M --fat 32 >/dev/null && mkdir -p "$m2" || return 1
    for step in create list_remove; do
        ASYNCFAT_STATS=1 "$A" mount rt.img "$m2" -f 2>"$T/rt.err" &
        pid=$!
        for _ in $(seq 100); do mountpoint -q "$m2" && break; sleep 0.05; done
        if [ $step = create ]; then
            mkdir "$m2/d" && (cd "$m2/d" && seq -f 'f%03g' 100 | xargs touch -d @1700000001) || return 1
            [ "$(stat -c %Y "$m2/d/f050")" = 1700000000 ] || { echo "mtime not rounded"; return 1; }
        else
            [ "$(ls -l "$m2/d" | grep -c ' f[0-9]')" = 100 ] && rm -rf "$m2/d" && [ ! -e "$m2/d" ] || return 1
        fi
        fusermount3 -u "$m2" && wait $pid || return 1
        n=$(sed -n 's/^asyncfat: \([0-9]*\) requests.*/\1/p' "$T/rt.err")
        echo "$step: $n requests"
        case $step in
        create) [ "$n" -le 330 ] || return 1 ;;       # was 6 per file
        list_remove) [ "$n" -le 130 ] || return 1 ;;  # was about 3 per file
        esac
    done
    clean rt.img
}
run round_trips_per_operation t_round_trips

# Files opened for reading come with their first bytes (OPEN_READ, or READ_PATH without a
# server fd): a read after a change, a rename or an unlink must still see the file as an fd
# opened at open time would. O_DIRECT sends every read to the mount (no page cache).
t_read_handles() {
    python3 - "$M" <<'PY' || return 1
import os, sys
m = sys.argv[1]
os.mkdir(f"{m}/rh")
small, big = f"{m}/rh/small", f"{m}/rh/big"
def put(path, data):
    with open(path, "wb") as f:
        f.write(data)
a, b = bytes(range(256)) * 20, b"B" * 5120
put(small, a)
put(big, bytes(i % 251 for i in range(200000)))
D = os.O_RDONLY | os.O_DIRECT
# Changed through another fd after the open: the new bytes.
fd = os.open(small, D)
put(small, b)
assert os.pread(fd, 8192, 0) == b, "read after a change"
os.close(fd)
put(small, a)
# First read partial, later reads elsewhere (the server fd is opened then), then renamed.
fd = os.open(small, D)
assert os.pread(fd, 100, 0) == a[:100]
assert os.pread(fd, 100, 1000) == a[1000:1100]
os.rename(small, f"{m}/rh/moved")
assert os.pread(fd, 100, 2000) == a[2000:2100]
os.close(fd)
# Renamed before the first read: read through the new name.
fd = os.open(f"{m}/rh/moved", D)
os.rename(f"{m}/rh/moved", small)
assert os.pread(fd, 8192, 0) == a, "read after a rename"
assert os.fstat(fd).st_size == len(a)
os.close(fd)
# Unlinked while open: still readable, as is a big file past its first bytes.
fd = os.open(small, D)
fb = os.open(big, D)
os.unlink(small)
os.unlink(big)
assert os.pread(fd, 8192, 0) == a, "read after unlink"
assert os.pread(fd, 10, 5000) == a[5000:5010]
assert os.fstat(fd).st_size == len(a)
assert os.pread(fb, 1000, 150000) == bytes(i % 251 for i in range(150000, 151000))
assert os.pread(fb, 100, 0) == bytes(i % 251 for i in range(100))
os.close(fd)
os.close(fb)
assert os.listdir(f"{m}/rh") == [], os.listdir(f"{m}/rh")
os.rmdir(f"{m}/rh")
PY
    # Reading small files from a fresh mount: one request each (READ_PATH), was three.
    local m2=$T/mnt2 pid n
    "$A" mkfs rh.img --size 64M --fat 32 >/dev/null && mkdir -p "$m2" || return 1
    "$A" mount rh.img "$m2" -f 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do mountpoint -q "$m2" && break; sleep 0.05; done
    mkdir -p "$T/rhsrc" && for i in $(seq 50); do seq $((i * 100)) >"$T/rhsrc/f$i"; done
    mkdir "$m2/d" && cp "$T"/rhsrc/f* "$m2/d/" || return 1
    fusermount3 -u "$m2" && wait $pid || return 1
    ASYNCFAT_STATS=1 "$A" mount rh.img "$m2" -f 2>"$T/rh.err" &
    pid=$!
    for _ in $(seq 100); do mountpoint -q "$m2" && break; sleep 0.05; done
    local sum
    sum=$(cat "$m2"/d/f* | md5sum)
    fusermount3 -u "$m2" && wait $pid || return 1
    [ "$sum" = "$(cat "$T"/rhsrc/f* | md5sum)" ] || { echo "contents differ"; return 1; }
    n=$(sed -n 's/^asyncfat: \([0-9]*\) requests.*/\1/p' "$T/rh.err")
    echo "cat of 50 files: $n requests"
    [ "$n" -le 65 ] || return 1
    clean rh.img
}
run read_handles t_read_handles

sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum; find . -type d | sort); }

t_tar() {
    mkdir -p "$T/src"
    # A source tree: this project's sources, and some generated files of awkward sizes.
    tar -C "$ROOT" -cf - base fiberflow fiberpool protocol blk fat server platform tools tests | tar -C "$T/src" -xf - ||
        return 1
    [ "$(find "$T/src" -type f | wc -l)" -gt 100 ] || return 1
    for n in 0 1 511 512 513 4095 4096 4097 65536 1000000; do head -c $n /dev/urandom >"$T/src/size_$n"; done
    tar -C "$T" -cf "$T/src.tar" src || return 1
    tar -C "$M" -xf "$T/src.tar" || return 1
    [ "$(sums "$T/src")" = "$(sums "$M/src")" ] || { diff <(sums "$T/src") <(sums "$M/src") | head; return 1; }
    tar -C "$M" -cf "$T/again.tar" src || return 1
    mkdir -p "$T/again" && tar -C "$T/again" -xf "$T/again.tar" || return 1
    [ "$(sums "$T/src")" = "$(sums "$T/again/src")" ]
}
run tar_round_trip t_tar

t_concurrent() {
    mkdir "$M/par" || return 1
    local pids=()
    for i in 1 2 3 4 5 6; do
        head -c 3000000 /dev/urandom >"$T/w$i"
        (dd if="$T/w$i" of="$M/par/w$i" bs=16k status=none) &
        pids+=($!)
    done
    for i in 1 2 3 4; do
        (for n in $(seq 300); do echo "writer $i line $n"; done >>"$M/par/appended") &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || return 1; done
    for i in 1 2 3 4 5 6; do cmp "$T/w$i" "$M/par/w$i" || return 1; done
    [ "$(wc -l <"$M/par/appended")" -eq 1200 ] || { wc -l "$M/par/appended"; return 1; }
    for i in 1 2 3 4; do [ "$(grep -c "^writer $i line" "$M/par/appended")" -eq 300 ] || return 1; done
    # Parallel readers: requests overlap at the server.
    pids=()
    for i in 1 2 3 4 5 6; do
        cat "$M/par/w$i" >/dev/null &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || return 1; done
}
run concurrent_writers t_concurrent

t_hidden() {
    ! find "$M" -name '.fuse_hidden*' | grep -q .
}
run no_fuse_hidden_files t_hidden

# One writer per image: while mounted, a second mount, a writer or a reader of the image
# fails at once, naming the mount's process, and the image is untouched.
t_in_use() {
    local m2=$T/mnt2 start sum
    mkdir -p "$m2" || return 1
    sync "$M" || return 1
    sum=$(md5sum <vol.img)
    start=$SECONDS
    if timeout 10 "$A" mount vol.img "$m2" -f 2>"$T/second.err"; then echo "mounted twice"; return 1; fi
    mountpoint -q "$m2" && { fusermount3 -u "$m2"; echo "mounted twice"; return 1; }
    grep -q "asyncfat: vol.img is in use by another asyncfat process (pid $PID)" "$T/second.err" ||
        { cat "$T/second.err"; return 1; }
    if timeout 10 "$A" mkfs vol.img --fat 16 2>"$T/second.err"; then echo "formatted a mounted image"; return 1; fi
    grep -q "in use by another asyncfat process (pid $PID)" "$T/second.err" || { cat "$T/second.err"; return 1; }
    if timeout 10 "$A" ls vol.img 2>"$T/second.err"; then echo "listed a mounted image"; return 1; fi
    grep -q "in use by another asyncfat process (pid $PID)" "$T/second.err" || { cat "$T/second.err"; return 1; }
    [ $((SECONDS - start)) -le 5 ] || { echo "refusing took $((SECONDS - start)) s"; return 1; }
    [ "$sum" = "$(md5sum <vol.img)" ] || { echo "the image changed"; return 1; }
}
cp "$T/data.bin" "$M/final.bin"
run a_mounted_image_is_refused_to_a_second_user t_in_use

t_unmount() {
    unmount_wait || { cat "$T/mount.err"; return 1; }
    grep "in flight" "$T/mount.err" >&2
    local most
    most=$(sed -n 's/.*at most \([0-9]*\) in flight.*/\1/p' "$T/mount.err")
    [ "${most:-0}" -gt 1 ] || { echo "requests never overlapped at the server"; return 1; }
    clean vol.img
}
run unmount_leaves_a_clean_volume t_unmount

t_mtools() {
    rm -rf "$T/mt" && mkdir "$T/mt" || return 1
    mcopy -i vol.img ::/final.bin "$T/mt/final.bin" && cmp "$T/data.bin" "$T/mt/final.bin" || return 1
    for i in 1 2 3 4 5 6; do mcopy -i vol.img "::/par/w$i" "$T/mt/w$i" && cmp "$T/w$i" "$T/mt/w$i" || return 1; done
    mcopy -s -i vol.img ::/src "$T/mt/" && [ "$(sums "$T/src")" = "$(sums "$T/mt/src")" ] || return 1
    mdir -a -i vol.img ::/ | grep -qi fuse_hidden && return 1
    return 0
}
run mtools_reads_the_same_bytes t_mtools

t_ro() {
    mount_fg vol.img -o ro || { cat "$T/mount.err"; return 1; }
    cmp "$T/data.bin" "$M/final.bin" || return 1
    ls -l --time-style=+%s "$M/list" >"$T/listing.after" && cmp "$T/listing.before" "$T/listing.after" || return 1
    if touch "$M/nope" 2>"$T/ro.err"; then echo "wrote to a read-only mount"; return 1; fi
    grep -q "Read-only file system" "$T/ro.err" || { cat "$T/ro.err"; return 1; }
    local before
    before=$(md5sum <vol.img)
    unmount_wait && [ "$before" = "$(md5sum <vol.img)" ] && clean vol.img
}
run read_only_mount t_ro

t_sigint() {
    mount_fg vol.img -o allow_other || return 1
    echo "before the signal" >"$M/sig.txt" || return 1
    kill -INT "$PID"
    wait_signalled
    local rc=$?
    [ "$rc" -eq 0 ] || { echo "exit $rc"; cat "$T/mount.err"; return 1; }
    mountpoint -q "$M" && return 1
    clean vol.img && [ "$(mtype -i vol.img ::/sig.txt)" = "before the signal" ]
}
run sigint_unmounts_cleanly t_sigint

t_background() {
    "$A" mount vol.img "$M" || return 1
    mountpoint -q "$M" || return 1
    echo background >"$M/bg.txt" && [ "$(cat "$M/bg.txt")" = background ] || return 1
    fusermount3 -u "$M" || return 1
    # The daemon syncs and stops after the unmount.
    for _ in $(seq 100); do
        pgrep -f "asyncfat mount vol.img $M" >/dev/null || break
        sleep 0.1
    done
    pgrep -f "asyncfat mount vol.img $M" >/dev/null && { echo "daemon still running"; return 1; }
    clean vol.img && [ "$(mtype -i vol.img ::/bg.txt)" = background ] || return 1
    # SIGTERM to the daemon (the oldest process of the mount; the others are its
    # components) unmounts too.
    "$A" mount vol.img "$M" && mountpoint -q "$M" || return 1
    local daemon
    daemon=$(pgrep -o -f "asyncfat mount vol.img $M")
    [ -n "$daemon" ] && kill -TERM "$daemon" || return 1
    for _ in $(seq 100); do
        pgrep -f "asyncfat mount vol.img $M" >/dev/null || break
        sleep 0.1
    done
    mountpoint -q "$M" && { echo "still mounted after SIGTERM"; return 1; }
    clean vol.img || return 1
    # A failing background mount reports its error and status to the caller.
    head -c 100000 /dev/zero >notfat.img
    if "$A" mount notfat.img "$M" 2>"$T/bg.err"; then echo "mounted a non-FAT image"; return 1; fi
    grep -q "notfat.img" "$T/bg.err"
}
run background_mount t_background

t_enospc() {
    "$A" mkfs small.img --size 2M --fat 12 >/dev/null || return 1
    mount_fg small.img || return 1
    local out
    out=$(dd if=/dev/zero of="$M/fill" bs=64k count=100 2>&1)
    echo "$out" | grep -q "No space left on device" || { echo "$out"; return 1; }
    rm "$M/fill" && echo ok >"$M/after" || return 1
    unmount_wait && clean small.img
}
run enospc_when_full t_enospc

# A crash: SIGKILL the mount (driver, server and FUSE share its process, so nothing is
# synced on the way out) and detach the dead FUSE mount.
kill_mount() {
    kill -KILL "$PID"
    wait "$PID" 2>/dev/null
    PID=
    fusermount3 -u "$M" 2>/dev/null || umount -l "$M"
}
# fsck.fat -n finds nothing but the dirty marks a crash leaves and lost clusters: the
# clusters a sync frees (a file's unused preallocation, removed files) are freed after its
# FLUSH, and their FAT entries go out with the next one (docs/ORDERING.md §2, §4 sync).
only_crash_marks() {
    fsck.fat -n "$1" 2>&1 | grep -v -e '^fsck.fat ' -e 'Dirty bit is set' -e 'removing dirty bit' \
        -e '^Reclaimed [0-9]* unused clusters\? ' \
        -e 'Free cluster summary uninitialized' -e 'Leaving filesystem unchanged' -e '^$' \
        -e ' files, [0-9]*/[0-9]* clusters$' >"$T/fsck.extra"
    [ ! -s "$T/fsck.extra" ] || { cat "$T/fsck.extra"; return 1; }
}
# The files made by make_files are on the image (mtools reads them).
make_files() {
    mkdir "$M/d" && echo one >"$M/d/one" && echo top >"$M/top" && cp "$T/r.bin" "$M/d/r.bin"
}
files_on_image() {
    [ "$(mtype -i "$1" ::/d/one)" = one ] && [ "$(mtype -i "$1" ::/top)" = top ] || return 1
    rm -f "$T/r.out" && mcopy -n -i "$1" ::/d/r.bin "$T/r.out" && cmp "$T/r.bin" "$T/r.out"
}

# sync(2) never reaches FUSE; `sync DIR` (fsync of a directory) syncs the whole volume.
t_sync_dir() {
    head -c 300000 /dev/urandom >"$T/r.bin"
    "$A" mkfs dur.img --size 64M --fat 16 >/dev/null || return 1
    mount_fg dur.img -o writeback=0 || return 1
    make_files || return 1
    sync "$M" || return 1
    kill_mount
    files_on_image dur.img && only_crash_marks dur.img
}
run fsync_of_a_directory_makes_the_volume_durable t_sync_dir

# With no fsync at all, the server writes changes back once they are writeback=S old.
t_writeback() {
    "$A" mkfs dur.img --size 64M --fat 32 >/dev/null || return 1
    mount_fg dur.img -o writeback=1 || return 1
    make_files || return 1
    sleep 2.5
    kill_mount
    files_on_image dur.img && only_crash_marks dur.img
}
run background_writeback_makes_files_durable t_writeback

# The next mount recovers the crashed volume and says so; read-only users are told too.
t_dirty_report() {
    "$A" ls dur.img >/dev/null 2>"$T/ls.err" || return 1
    grep -q "asyncfat: dur.img was not cleanly unmounted; not recovered (mounted read-only)" "$T/ls.err" ||
        { cat "$T/ls.err"; return 1; }
    mount_fg dur.img || return 1
    grep -q "asyncfat: dur.img was not cleanly unmounted; recovered: " "$T/mount.err" ||
        { cat "$T/mount.err"; return 1; }
    cmp "$T/r.bin" "$M/d/r.bin" || return 1
    unmount_wait && clean dur.img || return 1
    mount_fg dur.img || return 1
    unmount_wait || return 1
    if grep "not cleanly" "$T/mount.err"; then echo "a clean volume reported as dirty"; return 1; fi
}
run a_dirty_volume_is_recovered_and_reported t_dirty_report

# -o discard: a removed file's clusters become holes in the image once the removal is
# durable; without it they stay allocated on the host. Skipped where the host file system
# cannot punch holes.
image_kib() { du -k "$1" | cut -f1; }
removed_file_kib() {
    "$A" mkfs disc.img --size 64M --fat 32 >/dev/null || return 1
    mount_fg disc.img "$@" || return 1
    head -c 16M /dev/urandom >"$M/big.bin" && sync "$M" || return 1
    local full
    full=$(image_kib disc.img)
    rm "$M/big.bin" && sync "$M" && sync "$M" && unmount_wait || return 1
    echo $((full - $(image_kib disc.img)))
}
t_discard() {
    local kept freed
    kept=$(removed_file_kib) || return 1
    freed=$(removed_file_kib -o discard) || return 1
    echo "image shrank by $kept KiB without discard, $freed KiB with it"
    [ "$kept" -lt 1024 ] || return 1
    [ "$freed" -ge 15000 ] || return 1
    PATH=$PATH:/usr/sbin:/sbin fsck.fat -n disc.img >/dev/null
}
if fallocate -p -o 0 -l 4096 "$(mktemp -p "$T")" 2>/dev/null; then
    run discard_punches_removed_files_out_of_the_image t_discard
else
    echo "SKIP ${FUSE_PREFIX:-}discard_punches_removed_files_out_of_the_image: this file system cannot punch holes"
fi

t_bad_option() {
    if "$A" mount vol.img "$M" -f -o no_such_option 2>"$T/opt.err"; then echo "mounted"; return 1; fi
    mountpoint -q "$M" && return 1
    clean vol.img
}
run unknown_mount_option_fails t_bad_option

# make run: scripts/run.sh creates the default image and mounts it until Ctrl-C.
t_make_run() {
    mkdir -p "$T/job" || return 1
    (cd "$T/job" && BUILD=$(realpath "$ROOT/$BUILD" 2>/dev/null || realpath "$BUILD") exec "$ROOT/scripts/run.sh") \
        >"$T/run.out" 2>&1 &
    PID=$!
    local m=$M
    M=$T/job/mnt
    wait_mounted || { cat "$T/run.out"; M=$m; return 1; }
    echo "made by make run" >"$M/hello.txt"
    kill -INT "$PID"
    wait_signalled
    local rc=$?
    M=$m
    [ "$rc" -eq 0 ] || { echo "exit $rc"; cat "$T/run.out"; return 1; }
    [ "$(stat -c %s "$T/job/asyncfat.img")" -eq $((256 << 20)) ] || return 1
    fsck.fat -n "$T/job/asyncfat.img" | grep -q "FAT32\|files" || return 1
    minfo -i "$T/job/asyncfat.img" :: | grep -q "FAT32" || return 1
    clean "$T/job/asyncfat.img" && [ "$(mtype -i "$T/job/asyncfat.img" ::/hello.txt)" = "made by make run" ]
}
run make_run_mounts_the_default_image_until_ctrl_c t_make_run

exit $failed
