#!/usr/bin/env bash
# The asyncfat command: every subcommand's success and failure paths and exit codes, and
# interoperability with dosfstools (fsck.fat) and mtools. Prints PASS/FAIL lines.
set -u
REL=$(realpath -m "${BUILD:-build}/rel/asyncfat") # before cli_lib.sh moves to the scratch directory
. "$(dirname "$0")/cli_lib.sh"

# ---- help and usage ----
t_help() {
    rc 0 "$A" --help && has mkfs out && has mount out || return 1
    for c in mkfs ls cat stat df cp mkdir rm rmdir mv attrib check mount; do
        rc 0 "$A" "$c" --help && has "usage: asyncfat $c" out || return 1
    done
    rc 2 "$A" || return 1
    rc 2 "$A" frobnicate && has "unknown subcommand" err || return 1
    rc 2 "$A" ls && has usage err || return 1
    rc 2 "$A" ls -Z x.img && has usage err || return 1
    rc 2 "$A" cp onlyone && has usage err
}
run help_and_usage t_help

# ---- mkfs ----
t_mkfs_default() {
    rc 0 "$A" mkfs v16.img --size 64M && has FAT16 out && clean v16.img &&
        [ "$(stat -c %s v16.img)" -eq $((64 << 20)) ]
}
run mkfs_creates_a_clean_fat16_image t_mkfs_default

t_mkfs_types() {
    rc 0 "$A" mkfs v32.img --size 300M --fat 32 --label MYDISK && has FAT32 out && clean v32.img &&
        minfo -i v32.img :: >"$T/minfo" 2>&1 && has "MYDISK" "$T/minfo" || return 1
    rc 0 "$A" mkfs v12.img --size 4M --fat 12 && has FAT12 out && clean v12.img || return 1
    rc 0 "$A" mkfs vc.img --size 64M --cluster 8192 && has "of 8192 bytes" out && clean vc.img || return 1
    rc 0 "$A" mkfs vs.img --size 64M --sector 4096 && clean vs.img
}
run mkfs_fat_types_labels_cluster_and_sector_sizes t_mkfs_types

t_mkfs_errors() {
    rc 1 "$A" mkfs missing.img && has "missing.img" err && has "give --size" err || return 1
    rc 2 "$A" mkfs x.img --size 8M --fat 13 && has "asyncfat: mkfs: --fat '13' is not a FAT type" err || return 1
    rc 2 "$A" mkfs x.img --size lots && has "asyncfat: mkfs: --size 'lots' is not a size" err || return 1
    rc 2 "$A" mkfs x.img --size 8M --cluster 3000 && has "--cluster '3000' is not a cluster size" err || return 1
    rc 2 "$A" mkfs x.img --size 8M --label WAYTOOLONGLABEL && has "longer than 11" err || return 1
    rc 1 "$A" mkfs tiny.img --size 8M --fat 32 && has "tiny.img" err || return 1
    mkdir -p adir && rc 1 "$A" mkfs adir --size 8M && has "is a directory" err
}
run mkfs_failures t_mkfs_errors

# ---- a volume with files ----
"$A" mkfs vol.img --size 64M >/dev/null 2>&1
head -c 3000000 /dev/urandom >big.bin
echo "hello asyncfat" >small.txt

t_cp_in_out() {
    rc 0 "$A" cp big.bin vol.img:/big.bin && rc 0 "$A" cp small.txt vol.img:small.txt || return 1
    rc 0 "$A" cp vol.img:/big.bin out.bin && cmp big.bin out.bin || return 1
    rm -f m.bin && mcopy -i vol.img ::/big.bin m.bin && cmp big.bin m.bin || return 1
    mcopy -i vol.img ::/small.txt - | cmp - small.txt || return 1
    clean vol.img
}
run cp_in_and_out_matches_mtools t_cp_in_out

t_cp_errors() {
    rc 2 "$A" cp a b && has "IMAGE:PATH" err || return 1
    rc 1 "$A" cp nosuch.bin vol.img:/x && has "nosuch.bin" err || return 1
    rc 1 "$A" cp vol.img:/nosuch out2 && has "vol.img:/nosuch: no such file" err || return 1
    rc 1 "$A" cp vol.img:/big.bin /nonexistent-dir/x && has "/nonexistent-dir/x" err || return 1
    rc 1 "$A" cp big.bin vol.img:/nodir/x && has "no such file" err
}
run cp_failures_name_the_file_and_reason t_cp_errors

t_ls() {
    rc 0 "$A" ls vol.img && has big.bin out && has small.txt out || return 1
    rc 0 "$A" ls -l vol.img:/ && grep -q -- "-rw-r--r-- A--- *3000000 .* big.bin" out || { cat out; return 1; }
    rc 0 "$A" ls -l vol.img:/small.txt && has "small.txt" out || return 1
    rc 1 "$A" ls vol.img:/nope && has "vol.img:/nope: no such file or directory" err || return 1
    rc 1 "$A" ls nope.img && has "^asyncfat: nope.img: no such image$" err
}
run ls_lists_and_fails_clearly t_ls

# Without the sanitizers, ls leaves the driver and the server of its last image for the
# kernel to take down at exit (cli_session_finish_last), and maps a listing's regions in
# small pages: the same listings as the sanitizer build, which stops them as every other
# command does, the image untouched and free for the next command.
t_ls_release() {
    local before listing
    before=$(md5sum <vol.img)
    cp vol.img vol2.img
    for listing in "vol.img" "-l vol.img:/ vol.img:/small.txt" "-R vol.img" "vol.img vol2.img:/small.txt"; do
        # shellcheck disable=SC2086 # the options and operands, split
        rc 0 "$REL" ls $listing && mv out rel.out && rc 0 "$A" ls $listing && cmp out rel.out ||
            { echo "ls $listing differs"; return 1; }
    done
    rc 1 "$REL" ls vol.img:/nope && has "vol.img:/nope: no such file or directory" err || return 1
    [ "$(md5sum <vol.img)" = "$before" ] || { echo "ls changed the image"; return 1; }
    rc 0 "$REL" mkdir vol.img:/after && rc 0 "$REL" ls vol.img && has after out && clean vol.img &&
        rc 0 "$A" rmdir vol.img:/after && rm -f vol2.img
}
if [ -x "$REL" ]; then
    run ls_in_the_release_build_matches_and_leaves_the_image_free t_ls_release
else
    echo "SKIP ls_in_the_release_build_matches_and_leaves_the_image_free: $REL is not built"
fi

t_read_only_tools_do_not_write() {
    local before after
    before=$(md5sum <vol.img)
    "$A" ls -l vol.img >/dev/null && "$A" cat vol.img:/small.txt >/dev/null && "$A" stat vol.img:/big.bin >/dev/null &&
        "$A" df vol.img >/dev/null || return 1
    after=$(md5sum <vol.img)
    [ "$before" = "$after" ]
}
run ls_cat_stat_df_leave_the_image_untouched t_read_only_tools_do_not_write

t_cat_stat_df() {
    rc 0 "$A" cat vol.img:/small.txt && cmp out small.txt || return 1
    rc 0 "$A" cat vol.img:/small.txt vol.img:/small.txt && [ "$(wc -l <out)" -eq 2 ] || return 1
    rc 1 "$A" cat vol.img:/missing && has "vol.img:/missing: no such file" err || return 1
    rc 1 "$A" cat vol.img:/ && has "is a directory" err || return 1
    rc 0 "$A" stat vol.img:/big.bin && has "Size: 3000000" out && has "regular file" out || return 1
    rc 0 "$A" stat vol.img:/ && has "directory" out || return 1
    rc 1 "$A" stat vol.img:/missing && has "no such file" err || return 1
    rc 0 "$A" df vol.img && has "FAT16" out && has "Available" out || return 1
    rc 2 "$A" df && has usage err || return 1
    rc 1 "$A" df nope.img
}
run cat_stat_df t_cat_stat_df

t_mkdir_rmdir() {
    rc 0 "$A" mkdir vol.img:/d1 vol.img:/d2 || return 1
    rc 1 "$A" mkdir vol.img:/d1 && has "vol.img:/d1: file exists" err || return 1
    rc 1 "$A" mkdir vol.img:/x/y/z && has "no such file" err || return 1
    rc 0 "$A" mkdir -p vol.img:/x/y/z && rc 0 "$A" mkdir -p vol.img:/x/y || return 1
    rc 1 "$A" mkdir -p vol.img:/small.txt/q && has "not a directory" err || return 1
    mdir -i vol.img ::/x/y >"$T/mdir" 2>&1 && grep -q "^z " "$T/mdir" || { cat "$T/mdir"; return 1; }
    rc 1 "$A" rmdir vol.img:/x && has "vol.img:/x: directory not empty" err || return 1
    rc 0 "$A" rmdir vol.img:/d2 || return 1
    rc 1 "$A" rmdir vol.img:/d2 && has "no such file" err || return 1
    rc 1 "$A" rmdir vol.img:/small.txt && has "not a directory" err || return 1
    rc 1 "$A" mkdir vol.img:/a vol.img2:/b && has "asyncfat: vol.img2: no such image" err || return 1
    clean vol.img
}
run mkdir_and_rmdir t_mkdir_rmdir

t_rm() {
    rc 0 "$A" cp small.txt vol.img:/x/y/z/f1 && rc 0 "$A" cp small.txt vol.img:/x/f2 || return 1
    rc 1 "$A" rm vol.img:/x && has "vol.img:/x: is a directory" err || return 1
    rc 1 "$A" rm vol.img:/nope && has "no such file" err || return 1
    rc 0 "$A" rm -f vol.img:/nope || return 1
    rc 0 "$A" rm -r vol.img:/x || return 1
    rc 1 "$A" stat vol.img:/x || return 1
    rc 0 "$A" cp small.txt vol.img:/gone.txt && rc 0 "$A" rm vol.img:/gone.txt && rc 1 "$A" stat vol.img:/gone.txt ||
        return 1
    clean vol.img
}
run rm_files_and_trees t_rm

t_mv() {
    rc 0 "$A" mv vol.img:/small.txt vol.img:/renamed.txt && rc 0 "$A" cat vol.img:/renamed.txt && cmp out small.txt ||
        return 1
    rc 0 "$A" mv vol.img:/renamed.txt /d1 && rc 0 "$A" cat vol.img:/d1/renamed.txt && cmp out small.txt || return 1
    rc 0 "$A" mv vol.img:/d1 vol.img:/d3 && rc 0 "$A" stat vol.img:/d3/renamed.txt || return 1
    rc 1 "$A" mv vol.img:/nope vol.img:/x && has "vol.img:/nope: no such file" err || return 1
    rc 2 "$A" mv vol.img:/d3 && has usage err || return 1
    rc 1 "$A" mv notanimage:/a b && has "asyncfat: notanimage: no such image" err || return 1
    mcopy -i vol.img ::/d3/renamed.txt - | cmp - small.txt && clean vol.img
}
run mv_renames_and_moves t_mv

make_tree() {
    mkdir -p "$1/sub/deeper" "$1/empty"
    head -c 100000 /dev/urandom >"$1/sub/a.bin"
    echo one >"$1/one.txt"
    echo "Long File Name with spaces.txt" >"$1/Long File Name with spaces.txt"
    head -c 700000 /dev/urandom >"$1/sub/deeper/b.bin"
    : >"$1/zero-length"
}
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum; find . -type d | sort); }

t_cp_tree() {
    make_tree src
    rc 1 "$A" cp src vol.img:/ && has "asyncfat: src: is a directory (cp -r copies it" err || return 1
    rc 0 "$A" cp -r src vol.img:/ || return 1
    rc 0 "$A" cp -r vol.img:/src back || return 1
    [ "$(sums src)" = "$(sums back)" ] || { diff <(sums src) <(sums back); return 1; }
    rm -rf mt && mkdir mt && mcopy -s -i vol.img ::/src mt/ && [ "$(sums src)" = "$(sums mt/src)" ] || return 1
    rc 0 "$A" cp -r vol.img:/src vol.img:/copy && rc 0 "$A" cp -r vol.img:/copy back2 || return 1
    [ "$(sums src)" = "$(sums back2)" ] || return 1
    rc 0 "$A" cp vol.img:/src/one.txt vol.img:/one-copy.txt && rc 0 "$A" cat vol.img:/one-copy.txt && has one out ||
        return 1
    rc 0 "$A" ls -R vol.img:/src && has "/src/sub/deeper:" out && has "b.bin" out || return 1
    clean vol.img
}
run cp_r_round_trip_in_out_and_within t_cp_tree

# An image in memory (tmpfs): the driver copies small reads from a mapping of it once a
# part of it is read again, while writes go by system call. Many small files go in, are
# copied within the image (reading back what was just written) and come out intact, read
# over and over, and mtools reads the same.
t_image_in_memory() {
    local img=/dev/shm/asyncfat-cli-$$.img i
    mkdir -p small/d
    for i in $(seq 60); do head -c $((i * 997)) /dev/urandom >"small/d/f$i.bin"; done
    "$A" mkfs "$img" --size 16M >/dev/null && rc 0 "$A" cp -r small "$img:/" || { rm -f "$img"; return 1; }
    for i in 1 2 3; do
        rc 0 "$A" cp -r "$img:/small" "$img:/copy$i" && rm -rf back && rc 0 "$A" cp -r "$img:/copy$i" back &&
            [ "$(sums small)" = "$(sums back)" ] || { diff <(sums small) <(sums back); rm -f "$img"; return 1; }
    done
    rm -rf mt && mkdir mt && mcopy -s -i "$img" ::/copy3 mt/ && [ "$(sums small)" = "$(sums mt/copy3)" ] &&
        clean "$img"
    local ok=$?
    rm -f "$img"
    return $ok
}
if [ -w /dev/shm ]; then
    run small_files_through_an_image_in_memory t_image_in_memory
else
    echo "SKIP small_files_through_an_image_in_memory: no writable /dev/shm"
fi

t_between_images() {
    "$A" mkfs other.img --size 8M >/dev/null || return 1
    rc 0 "$A" cp vol.img:/big.bin other.img:/big.bin && rc 0 "$A" cp other.img:/big.bin again.bin &&
        cmp big.bin again.bin && clean other.img
}
run cp_between_two_images t_between_images

t_mtools_written() {
    mkfs.fat -C -F 32 mt32.img 70000 >/dev/null 2>&1 || return 1
    mmd -i mt32.img ::/from_mtools && mcopy -s -i mt32.img src ::/from_mtools/ || return 1
    rc 0 "$A" cp -r mt32.img:/from_mtools/src fromm && [ "$(sums src)" = "$(sums fromm)" ] || return 1
    rc 0 "$A" check mt32.img && has clean out
}
run reads_images_written_by_mkfs_fat_and_mtools t_mtools_written

t_full() {
    "$A" mkfs small.img --size 2M --fat 12 >/dev/null || return 1
    head -c 3000000 /dev/zero >three.bin
    rc 1 "$A" cp three.bin small.img:/three.bin && has "no space left" err || return 1
    clean small.img
}
run cp_to_a_full_volume_fails_with_enospc t_full

# Many files copied at once (cp keeps several in flight): every one arrives whole, with its
# modification time, in a volume fsck.fat and mtools agree with.
t_cp_many() {
    mkdir -p many && for d in 0 1 2 3 4 5 6 7; do mkdir -p many/d$d; done
    for i in $(seq 0 299); do head -c $((i * 37 % 9000)) /dev/urandom >"many/d$((i % 8))/f$i.txt"; done
    head -c 1500000 /dev/urandom >many/d3/large.bin && head -c 700001 /dev/urandom >many/d5/odd.bin
    touch -d "2020-01-02 03:04:06" many/d1/f1.txt
    "$A" mkfs many.img --size 64M --fat 32 >/dev/null || return 1
    rc 0 "$A" cp -r many many.img:/ || return 1
    clean many.img || return 1
    rm -rf mt && mkdir mt && mcopy -s -i many.img ::/many mt/ && [ "$(sums many)" = "$(sums mt/many)" ] || return 1
    rc 0 "$A" cp -r many.img:/many back-many && [ "$(sums many)" = "$(sums back-many)" ] || return 1
    rc 0 "$A" stat many.img:/many/d1/f1.txt && has "Modify: 2020-01-02 03:04" out || return 1
    # and within the image, several at once too
    rc 0 "$A" cp -r many.img:/many many.img:/again && rc 0 "$A" cp -r many.img:/again back-again &&
        [ "$(sums many)" = "$(sums back-again)" ] && clean many.img
}
run cp_r_copies_many_files_at_once_exactly t_cp_many

# A file that fails in the middle of a tree copy is reported by name; the others are copied.
t_cp_error_mid_tree() {
    mkdir -p mixed/sub && for i in $(seq 1 40); do echo "file $i" >"mixed/sub/f$i"; done
    echo bad >"mixed/sub/bad|name" && head -c 600000 /dev/urandom >mixed/big.bin
    "$A" mkfs mixed.img --size 16M >/dev/null || return 1
    rc 1 "$A" cp -r mixed mixed.img:/ && has "mixed.img:/mixed/sub/bad|name: invalid name" err || return 1
    [ "$(grep -c . err)" -eq 1 ] || { cat err; return 1; }
    rm "mixed/sub/bad|name"
    rc 0 "$A" cp -r mixed.img:/mixed mixed-back && [ "$(sums mixed)" = "$(sums mixed-back)" ] && clean mixed.img
}
run cp_r_reports_a_failing_file_and_copies_the_rest t_cp_error_mid_tree

# Subdirectories are created a batch at a time (more than one batch here, two levels): one
# that already exists as a directory is merged into, one that exists as a file is reported
# and its contents skipped, and the rest arrive whole with their modification times.
t_cp_dirs_batched() {
    mkdir -p wide && for d in $(seq 0 44); do mkdir -p "wide/d$d/e$((d % 3))"; done
    for d in $(seq 0 44); do echo "top $d" >"wide/d$d/f.txt" && echo "deep $d" >"wide/d$d/e$((d % 3))/g.txt"; done
    touch -d "2019-05-06 07:08:10" wide/d40/e1/g.txt
    "$A" mkfs wide.img --size 32M >/dev/null || return 1
    rc 0 "$A" cp -r wide wide.img:/ || return 1
    clean wide.img && rm -rf back-wide && rc 0 "$A" cp -r wide.img:/wide back-wide &&
        [ "$(sums wide)" = "$(sums back-wide)" ] || return 1
    rc 0 "$A" stat wide.img:/wide/d40/e1/g.txt && has "Modify: 2019-05-06 07:08" out || return 1
    "$A" mkfs wide2.img --size 32M >/dev/null && "$A" mkdir wide2.img:/wide >/dev/null || return 1
    "$A" mkdir wide2.img:/wide/d7 >/dev/null && echo in-the-way >notdir && "$A" cp notdir wide2.img:/wide/d9 || return 1
    rc 1 "$A" cp -r wide wide2.img:/ && has "wide2.img:/wide/d9" err || return 1
    rm -rf back2-wide && rc 0 "$A" cp -r wide2.img:/wide back2-wide || return 1
    rm -rf expect-wide && cp -r wide expect-wide && rm -rf expect-wide/d9 && echo in-the-way >expect-wide/d9 &&
        [ "$(sums expect-wide)" = "$(sums back2-wide)" ] && clean wide2.img
}
run cp_r_creates_directories_in_batches t_cp_dirs_batched

# A file copied onto itself, under any spelling of its name, is refused as GNU cp refuses
# it, and keeps its bytes (it used to be emptied).
t_cp_onto_itself() {
    "$A" mkfs self.img --size 16M >/dev/null || return 1
    echo "keep me" >keep.txt && "$A" cp keep.txt self.img:/keep.txt || return 1
    rc 1 "$A" cp self.img:/keep.txt self.img:/keep.txt &&
        has "asyncfat: cp: 'self.img:/keep.txt' and 'self.img:/keep.txt' are the same file" err || return 1
    rc 1 "$A" cp self.img:/keep.txt self.img:/KEEP.TXT && has "are the same file" err || return 1
    rc 1 "$A" cp self.img:/keep.txt self.img:/ && has "are the same file" err || return 1
    rc 1 "$A" cp self.img:/keep.txt ./self.img:/Keep.txt && has "are the same file" err || return 1
    rc 0 "$A" cat self.img:/keep.txt && cmp out keep.txt || return 1
    # another file over it replaces it whole, a larger one by a smaller one too
    rc 0 "$A" cp big.bin self.img:/keep.txt && rc 0 "$A" cp keep.txt self.img:/KEEP.txt &&
        rc 0 "$A" cat self.img:/keep.txt && cmp out keep.txt && clean self.img
}
run cp_refuses_a_file_onto_itself t_cp_onto_itself

# A directory copied into itself is refused before anything is written (it used to recurse
# until the command crashed).
t_cp_r_into_itself() {
    "$A" mkfs into.img --size 16M >/dev/null && "$A" mkdir -p into.img:/d/sub >/dev/null &&
        "$A" cp keep.txt into.img:/d/f.txt || return 1
    local before
    before=$("$A" ls -lR into.img) || return 1
    rc 1 timeout 60 "$A" cp -r into.img:/d into.img:/d/sub &&
        has "asyncfat: cp: cannot copy a directory, 'into.img:/d', into itself, 'into.img:/d/sub/d'" err || return 1
    rc 1 timeout 60 "$A" cp -r into.img:/d into.img:/d && has "into itself, 'into.img:/d/d'" err || return 1
    rc 1 timeout 60 "$A" cp -r into.img:/d into.img:/D/SUB/new && has "into itself, 'into.img:/D/SUB/new'" err ||
        return 1
    rc 1 timeout 60 "$A" cp -r into.img:/ into.img:/d && has "into itself" err || return 1
    rc 1 timeout 60 "$A" cp -r into.img:/d into.img:/ && has "are the same file" err || return 1
    [ "$("$A" ls -lR into.img)" = "$before" ] && clean into.img
}
run cp_r_refuses_a_directory_into_itself t_cp_r_into_itself

# Local names that differ only in case (or by trailing dots) name one file on FAT: the
# first copied is kept whole, each later one is reported and not copied, and the exit
# status says not everything was copied (it used to keep one file with the other's bytes).
t_cp_name_clash() {
    rm -rf clash && mkdir -p clash/sub clash/Sub
    echo lower >clash/a.txt && echo UPPER >clash/A.txt && echo plain >clash/dot && echo dotted >clash/dot.
    echo one >clash/sub/x && echo two >clash/Sub/y && echo unique >clash/u.txt
    head -c 2000000 /dev/urandom >clash/big.bin && head -c 1500000 /dev/urandom >clash/BIG.bin
    "$A" mkfs clash.img --size 16M >/dev/null || return 1
    rc 1 "$A" cp -r clash clash.img:/ || return 1
    [ "$(grep -c "will not overwrite just-created 'clash.img:/clash/.*' with 'clash/.*' (the same name on FAT)" err)" -eq 3 ] &&
        [ "$(grep -c "will not merge 'clash/[sS]ub' into just-copied 'clash.img:/clash/[sS]ub' (the same name on FAT)" err)" -eq 1 ] &&
        [ "$(grep -c . err)" -eq 4 ] || { cat err; return 1; }
    rc 0 "$A" cat clash.img:/clash/a.txt && { cmp -s out clash/a.txt || cmp -s out clash/A.txt; } || return 1
    rc 0 "$A" cat clash.img:/clash/dot && { cmp -s out clash/dot || cmp -s out clash/dot.; } || return 1
    rc 0 "$A" cat clash.img:/clash/big.bin && { cmp -s out clash/big.bin || cmp -s out clash/BIG.bin; } || return 1
    rc 0 "$A" ls clash.img:/clash/sub && { [ "$(cat out)" = x ] || [ "$(cat out)" = y ]; } || { cat out; return 1; }
    rc 0 "$A" cat clash.img:/clash/u.txt && has unique out && clean clash.img
}
run cp_r_reports_names_that_clash_on_fat t_cp_name_clash

# ---- directory cycles (damaged volumes) ----
# The directory entry with 8.3 name NAME (11 characters, space-padded; it must appear once
# in the image) gets first cluster CLUSTER: a damaged volume made by hand.
entry_offset() {
    local at
    at=$(grep -obUaP "$2\x10" "$1" | cut -d: -f1)
    [ -n "$at" ] && [ "$(wc -l <<<"$at")" -eq 1 ] || { echo "no single entry '$2' in $1" >&2; return 1; }
    echo "$at"
}
entry_cluster() {
    local at
    at=$(entry_offset "$1" "$2") || return 1
    echo $(($(od -An -tu2 -j $((at + 20)) -N2 "$1") * 65536 + $(od -An -tu2 -j $((at + 26)) -N2 "$1")))
}
set_entry_cluster() {
    local at hex
    at=$(entry_offset "$1" "$2") || return 1
    hex=$(printf '%08x' "$(($3))")
    printf "\x${hex:2:2}\x${hex:0:2}" | dd of="$1" bs=1 seek=$((at + 20)) conv=notrunc status=none &&
        printf "\x${hex:6:2}\x${hex:4:2}" | dd of="$1" bs=1 seek=$((at + 26)) conv=notrunc status=none
}
# loop32.img: FAT32 whose /CYC has the root's first cluster; loop16.img: FAT16 whose /A/B
# has its parent's. Around them, files that must stay as they are.
make_loops() {
    echo top >top.txt && echo deep >deep.txt && echo beside >beside.txt
    rm -f loop32.img loop16.img
    mkfs.fat -C -F 32 loop32.img 70000 >/dev/null && mmd -i loop32.img ::/CYC ::/A ::/A/B &&
        mcopy -i loop32.img top.txt ::/TOP.TXT && mcopy -i loop32.img deep.txt ::/A/B/DEEP.TXT || return 1
    set_entry_cluster loop32.img "CYC        " "$(od -An -tu4 -j44 -N4 loop32.img)" || return 1
    mkfs.fat -C -F 16 loop16.img 20000 >/dev/null && mmd -i loop16.img ::/A ::/A/B ::/C &&
        mcopy -i loop16.img top.txt ::/TOP.TXT && mcopy -i loop16.img beside.txt ::/A/BESIDE.TXT &&
        mcopy -i loop16.img deep.txt ::/C/DEEP.TXT || return 1
    set_entry_cluster loop16.img "B          " "$(entry_cluster loop16.img "A          ")"
}

# ls -R meets each cycle once, says so, lists everything else, and changes nothing.
t_ls_cycle() {
    make_loops || return 1
    local before
    before=$(md5sum loop32.img loop16.img)
    rc 1 timeout 60 "$A" ls -R loop32.img &&
        has "loop32.img:/CYC: directory cycle: it leads back into loop32.img:/; not entered" err &&
        [ "$(grep -c . err)" -eq 1 ] && has "^/A/B:" out && has DEEP.TXT out && has TOP.TXT out || return 1
    rc 1 timeout 60 "$A" ls -R loop16.img &&
        has "loop16.img:/A/B: directory cycle: it leads back into loop16.img:/A; not entered" err &&
        has "^/C:" out && has DEEP.TXT out && has BESIDE.TXT out || return 1
    rc 1 timeout 60 "$A" ls -R loop32.img:/CYC && has "loop32.img:/CYC: directory cycle" err || return 1
    [ "$(md5sum loop32.img loop16.img)" = "$before" ]
}
run ls_R_reports_a_directory_cycle t_ls_cycle

# cp -r out of a volume with a cycle copies all the rest and reports the cycle; a local
# tree with a link back into itself likewise.
t_cp_cycle() {
    make_loops || return 1
    local before
    before=$(md5sum loop32.img loop16.img)
    rm -rf out32 out16
    rc 1 timeout 60 "$A" cp -r loop32.img:/ out32 && has "loop32.img:/CYC: directory cycle" err &&
        [ "$(grep -c . err)" -eq 1 ] || return 1
    cmp out32/TOP.TXT top.txt && cmp out32/A/B/DEEP.TXT deep.txt && [ "$(du -sk out32 | cut -f1)" -lt 100 ] || return 1
    rc 1 timeout 60 "$A" cp -r loop16.img:/A out16 && has "loop16.img:/A/B: directory cycle" err &&
        cmp out16/BESIDE.TXT beside.txt || return 1
    [ "$(md5sum loop32.img loop16.img)" = "$before" ] || return 1
    rm -rf linked && mkdir -p linked/sub && echo in >linked/sub/f && ln -s .. linked/sub/up
    "$A" mkfs linked.img --size 16M >/dev/null || return 1
    rc 1 timeout 60 "$A" cp -r linked linked.img:/ && has "linked/sub/up: directory cycle: it leads back into" err ||
        return 1
    rc 0 "$A" cat linked.img:/linked/sub/f && has in out && clean linked.img
}
run cp_r_reports_a_directory_cycle t_cp_cycle

# rm -r does not follow a cycle: inside one it removes nothing; above one it removes the
# rest and leaves the directories that still hold the cycle.
t_rm_cycle() {
    make_loops || return 1
    rc 1 timeout 60 "$A" rm -r loop32.img:/CYC && has "loop32.img:/CYC: directory cycle" err || return 1
    rc 0 "$A" ls -R loop32.img:/A && has DEEP.TXT out && rc 0 "$A" cat loop32.img:/TOP.TXT && has top out || return 1
    rc 1 timeout 60 "$A" rm -r loop16.img:/A && has "loop16.img:/A/B: directory cycle" err || return 1
    rc 1 "$A" stat loop16.img:/A/BESIDE.TXT && rc 0 "$A" stat loop16.img:/A/B && rc 0 "$A" cat loop16.img:/C/DEEP.TXT &&
        has deep out && rc 0 "$A" cat loop16.img:/TOP.TXT && has top out
}
run rm_r_does_not_follow_a_directory_cycle t_rm_cycle

# ---- check ----
# Mark an unused cluster as end-of-chain in both FATs of a FAT16 image: a lost cluster.
lose_cluster() {
    local reserved fat_sectors
    reserved=$(od -An -tu2 -j14 -N2 "$1" | tr -d ' ')
    fat_sectors=$(od -An -tu2 -j22 -N2 "$1" | tr -d ' ')
    for copy in 0 1; do
        printf '\xff\xff' | dd of="$1" bs=1 seek=$(((reserved + copy * fat_sectors) * 512 + 2 * 3000)) conv=notrunc \
            status=none
    done
}
t_check() {
    rc 0 "$A" check vol.img && has "clean" out || return 1
    cp vol.img broken.img && lose_cluster broken.img
    rc 4 "$A" check broken.img && has "problem" out && has "--repair" out || return 1
    if fsck.fat -n broken.img >/dev/null 2>&1; then echo "fsck.fat missed the lost cluster"; return 1; fi
    rc 1 "$A" check --repair broken.img && has "repair" out || return 1
    rc 0 "$A" check broken.img && clean broken.img || return 1
    head -c 1000000 /dev/zero >notfat.img
    rc 8 "$A" check notfat.img && has "not a FAT volume" err || return 1
    rc 8 "$A" check nope.img && has "nope.img" err || return 1
    rc 8 "$A" check
}
run check_finds_and_repairs_a_lost_cluster t_check

t_not_fat() {
    rc 1 "$A" ls notfat.img && has "asyncfat: notfat.img: not a FAT volume: " err
}
run session_on_a_non_fat_image_fails t_not_fat

# ---- progress and Ctrl-C ----
t_progress() {
    head -c 8000000 /dev/urandom >eight.bin
    script -qec "$A cp eight.bin vol.img:/eight.bin" /dev/null >"$T/tty" 2>&1 || { cat "$T/tty"; return 1; }
    has "MiB" "$T/tty" && has "100%" "$T/tty" || return 1
    rc 0 "$A" cp eight.bin vol.img:/eight2.bin && ! grep -q MiB err
}
run progress_on_a_terminal_only t_progress

t_interrupt() {
    # The source is a FIFO fed 3 MB and then held open: the copy is mid-way, deterministically.
    "$A" mkfs large.img --size 300M --fat 32 >/dev/null || return 1
    mkfifo feed
    head -c 3000000 /dev/urandom >fed.bin
    (cat fed.bin; exec sleep 30) >feed &
    local feeder=$!
    "$A" cp feed large.img:/partial.bin >"$T/out" 2>"$T/err" &
    local pid=$!
    sleep 1
    kill -INT "$pid"
    wait "$pid"
    local got=$?
    kill "$feeder" 2>/dev/null
    wait "$feeder" 2>/dev/null
    [ "$got" -eq 130 ] || { echo "exit $got, wanted 130"; cat "$T/err"; return 1; }
    has interrupted err && clean large.img && rc 0 "$A" check large.img || return 1
    # The whole chunks (512 KiB each) read before the signal were copied; the partial one
    # that was still coming was dropped.
    rc 0 "$A" cp large.img:/partial.bin partial.bin || return 1
    local size
    size=$(stat -c %s partial.bin)
    [ "$size" -gt 0 ] && [ $((size % 524288)) -eq 0 ] && [ "$size" -lt 3000000 ] || { echo "size $size"; return 1; }
    cmp -n "$size" partial.bin fed.bin
}
run ctrl_c_stops_cleanly_with_130 t_interrupt

# ---- mount argument errors (the mount itself is tested in test_fuse.sh) ----
t_mount_errors() {
    rc 2 "$A" mount vol.img && has usage err || return 1
    rc 1 "$A" mount nope.img "$T" && has "nope.img" err || return 1
    rc 1 "$A" mount vol.img small.txt && has "not a directory" err || return 1
    rc 1 "$A" mount vol.img /nonexistent-mountpoint && has "/nonexistent-mountpoint" err
}
run mount_argument_failures t_mount_errors

exit $failed
