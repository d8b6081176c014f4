#!/usr/bin/env bash
# The asyncfat command as users of coreutils and mtools expect it: several sources,
# wildcards, - for standard input and output, modification times kept both ways, cp -n -i
# -v, ls of several paths sorted as ls sorts, -h sizes, --version, mtools' -i IMAGE ::PATH,
# time zones (local by default, --tz, --time-offset), messages that say what is wrong in
# one style, --discard, and trees deeper than a protocol path (ls -R, mkdir -p, mv, rm -r).
# Prints PASS/FAIL lines.
set -u
. "$(dirname "$0")/cli_lib.sh"

"$A" mkfs vol.img --size 64M >/dev/null 2>&1
echo "one" >one.txt && echo "two" >two.txt && echo "three" >three.log
head -c 3000000 /dev/urandom >big.bin

# ---- cp ----
t_cp_several_sources() {
    rc 0 "$A" mkdir vol.img:/many || return 1
    rc 0 "$A" cp one.txt two.txt three.log vol.img:/many || return 1
    rc 0 "$A" ls vol.img:/many && [ "$(cat out)" = "$(printf 'one.txt\nthree.log\ntwo.txt')" ] || { cat out; return 1; }
    rc 1 "$A" cp one.txt two.txt vol.img:/many/one.txt &&
        has "asyncfat: cp: target 'vol.img:/many/one.txt' is not a directory" err || return 1
    mkdir -p outdir && rc 0 "$A" cp vol.img:/many/one.txt vol.img:/many/two.txt outdir && cmp outdir/one.txt one.txt &&
        cmp outdir/two.txt two.txt || return 1
    rc 2 "$A" cp one.txt vol.img:/many/one.txt outdir && has "the sources must all be in one image" err
}
run cp_takes_several_sources t_cp_several_sources

t_cp_wildcards() {
    rc 0 "$A" mkdir vol.img:/wild || return 1
    rc 0 "$A" cp one.txt two.txt three.log vol.img:/wild || return 1
    rm -rf wout && mkdir wout && rc 0 "$A" cp 'vol.img:/wild/*.txt' wout && [ "$(ls wout | tr '\n' ' ')" = "one.txt two.txt " ] ||
        { ls wout; return 1; }
    rm -rf wout && mkdir wout && rc 0 "$A" cp 'vol.img:/wild/T*' wout && [ "$(ls wout | tr '\n' ' ')" = "three.log two.txt " ] ||
        { echo "case-insensitive match"; ls wout; return 1; }
    rc 0 "$A" ls 'vol.img:/w*/o?e.txt' && [ "$(cat out)" = "/wild/one.txt" ] || { cat out; return 1; }
    rc 1 "$A" cp 'vol.img:/wild/*.none' wout && has "asyncfat: vol.img:/wild/\*.none: no match" err || return 1
    rc 0 "$A" rm 'vol.img:/wild/*.txt' && rc 0 "$A" ls vol.img:/wild && [ "$(cat out)" = "three.log" ] || return 1
    rc 0 "$A" rm -f 'vol.img:/wild/*.none' && clean vol.img
}
run wildcards_in_image_paths t_cp_wildcards

t_cp_standard_streams() {
    rc 0 "$A" cp - vol.img:/from-stdin.bin <big.bin && rc 0 "$A" cat vol.img:/from-stdin.bin && cmp out big.bin || return 1
    "$A" cp vol.img:/from-stdin.bin - >streamed.bin && cmp streamed.bin big.bin || return 1
    head -c 100000 /dev/urandom | tee piped.bin | "$A" cp - vol.img:/piped.bin && "$A" cat vol.img:/piped.bin | cmp - piped.bin
}
run cp_dash_is_stdin_and_stdout t_cp_standard_streams

t_cp_times_both_ways() {
    touch -d "2019-04-05 06:07:08" one.txt
    rc 0 "$A" cp one.txt vol.img:/timed.txt && rc 0 "$A" cp vol.img:/timed.txt timed-out.txt || return 1
    [ "$(stat -c %Y timed-out.txt)" -eq "$(date -d '2019-04-05 06:07:08' +%s)" ] ||
        { echo "out: $(stat -c %y timed-out.txt)"; return 1; }
    rm -rf tree tree-out && mkdir -p tree/sub && cp -p one.txt tree/sub/one.txt && rc 0 "$A" cp -r tree vol.img:/ &&
        rc 0 "$A" cp -r vol.img:/tree tree-out && [ "$(stat -c %Y tree-out/sub/one.txt)" -eq \
        "$(date -d '2019-04-05 06:07:08' +%s)" ] || { echo "tree: $(stat -c %y tree-out/sub/one.txt)"; return 1; }
}
run cp_keeps_modification_times_in_and_out t_cp_times_both_ways

t_cp_no_clobber_interactive_verbose() {
    echo original >orig.txt && rc 0 "$A" cp orig.txt vol.img:/keep.txt || return 1
    rc 0 "$A" cp -n one.txt vol.img:/keep.txt && rc 0 "$A" cat vol.img:/keep.txt && cmp out orig.txt || return 1
    cp orig.txt local-keep.txt && rc 0 "$A" cp -n vol.img:/many/one.txt local-keep.txt && cmp local-keep.txt orig.txt ||
        return 1
    echo n | "$A" cp -i one.txt vol.img:/keep.txt 2>err && "$A" cat vol.img:/keep.txt | cmp - orig.txt &&
        has "asyncfat: cp: overwrite 'vol.img:/keep.txt'?" err || return 1
    echo y | "$A" cp --interactive one.txt vol.img:/keep.txt 2>/dev/null && "$A" cat vol.img:/keep.txt | cmp - one.txt ||
        return 1
    rc 0 "$A" cp -v two.txt vol.img:/v.txt && has "^'two.txt' -> 'vol.img:/v.txt'$" out || return 1
    rc 0 "$A" cp --verbose vol.img:/v.txt v-out.txt && has "^'vol.img:/v.txt' -> 'v-out.txt'$" out
}
run cp_no_clobber_interactive_and_verbose t_cp_no_clobber_interactive_verbose

# A source larger than FAT can hold is refused before anything is written (it used to write
# 4 GiB and then report "no space").
t_cp_too_large() {
    truncate -s 5G five.bin
    local before
    before=$(md5sum <vol.img)
    rc 1 timeout 60 "$A" cp five.bin vol.img:/five.bin &&
        has "asyncfat: five.bin: 5368709120 bytes is too large for FAT, whose files hold at most 4 GiB - 1" err || return 1
    [ "$(md5sum <vol.img)" = "$before" ] && rc 1 "$A" stat vol.img:/five.bin
}
run cp_of_a_file_over_4_gib_is_refused_up_front t_cp_too_large

# ---- ls, df ----
t_ls_several_sorted() {
    "$A" mkdir vol.img:/sorted vol.img:/sorted/Bdir vol.img:/sorted/adir >/dev/null || return 1
    for f in b.txt A.txt _x.txt 10.txt 9.txt; do "$A" cp one.txt "vol.img:/sorted/$f" >/dev/null || return 1; done
    rc 0 "$A" ls vol.img:/sorted && [ "$(cat out | tr '\n' ' ')" = "10.txt 9.txt A.txt Bdir _x.txt adir b.txt " ] ||
        { cat out; return 1; }
    # as ls orders several operands: files first, then each directory under its heading
    rc 0 "$A" ls vol.img:/sorted/adir vol.img:/sorted/b.txt vol.img:/sorted/Bdir vol.img:/sorted/A.txt &&
        [ "$(cat out)" = "$(printf '/sorted/A.txt\n/sorted/b.txt\n\n/sorted/Bdir:\n\n/sorted/adir:')" ] ||
        { cat out; return 1; }
    rc 0 "$A" ls -d vol.img:/sorted/adir && [ "$(cat out)" = "/sorted/adir" ] || return 1
    # in a locale that sorts as people do, as ls does there
    if locale -a 2>/dev/null | grep -qi '^en_US.utf8$'; then
        LC_ALL=en_US.UTF-8 "$A" ls vol.img:/sorted >out && [ "$(head -1 out)" = "_x.txt" ] ||
            { echo "en_US: $(tr '\n' ' ' <out) vs ls: $(LC_ALL=en_US.UTF-8 ls -1 -- | head -3 | tr '\n' ' ')"; return 1; }
    fi
    rc 0 "$A" ls vol.img:/sorted vol.img && has "^vol.img:/sorted:$\|^/sorted:$" out && has "^/:$" out
}
run ls_of_several_paths_sorted_as_ls_sorts t_ls_several_sorted

t_human_sizes() {
    rc 0 "$A" cp big.bin vol.img:/human.bin || return 1
    rc 0 "$A" ls -lh vol.img:/human.bin && has " 2.9M " out || { cat out; return 1; }
    rc 0 "$A" ls -l vol.img:/human.bin && has " 3000000 " out || return 1
    rc 0 "$A" df -h vol.img && has "Size" out && has " 64M \| 63M " out || { cat out; return 1; }
    rc 0 "$A" df vol.img vol.img && [ "$(grep -c '^vol.img' out)" -eq 2 ]
}
run ls_h_and_df_h_print_human_sizes t_human_sizes

t_version_and_help() {
    rc 0 "$A" --version && has "^asyncfat [0-9]" out || return 1
    rc 0 "$A" ls --version && has "^asyncfat [0-9]" out || return 1
    rc 0 "$A" --help && has "\-\-partition N" out && has "\-\-tz ZONE" out
}
run version_and_common_options t_version_and_help

# mtools' way of naming files: -i IMAGE, then ::PATH.
t_mtools_form() {
    rc 0 "$A" cp -i vol.img one.txt ::/mt.txt && rc 0 "$A" cat -i vol.img ::/mt.txt && cmp out one.txt || return 1
    rc 0 "$A" ls -i vol.img ::/ && has "mt.txt" out || return 1
    rc 0 "$A" ls -i vol.img && has "mt.txt" out || return 1
    rc 0 "$A" mkdir -i vol.img ::/mtdir && rc 0 "$A" mv -i vol.img ::/mt.txt ::/mtdir && rc 0 "$A" ls --image vol.img ::/mtdir &&
        has "mt.txt" out || return 1
    rc 0 "$A" cp -i vol.img ::/mtdir/mt.txt mt-out.txt && cmp mt-out.txt one.txt || return 1
    rc 0 "$A" df -i vol.img && has FAT16 out || return 1
    rc 0 "$A" rm -i vol.img ::/mtdir/mt.txt && rc 1 "$A" stat -i vol.img ::/mtdir/mt.txt
}
run mtools_i_image_and_double_colon_paths t_mtools_form

# ---- FAT attributes ----
t_attributes() {
    "$A" mkfs attr.img --size 16M >/dev/null && "$A" mkdir attr.img:/d attr.img:/d/e >/dev/null || return 1
    "$A" cp one.txt attr.img:/f.txt && "$A" cp two.txt attr.img:/d/e/g.txt || return 1
    rc 0 "$A" attrib attr.img:/f.txt attr.img:/d && [ "$(cat out)" = "$(printf '  A          attr.img:/f.txt\n             attr.img:/d')" ] ||
        { cat out; return 1; }
    rc 0 "$A" attrib +r +h attr.img:/f.txt && rc 0 "$A" attrib -a +s attr.img:/d || return 1
    mattrib -i attr.img ::/f.txt ::/d >m.out && grep -qx '  A   HR     ::/f.txt' m.out && grep -qx '     S       ::/d' m.out ||
        { cat m.out; return 1; }
    rc 0 "$A" ls -l attr.img && has "^-r--r--r-- A-HR  *4 .* f.txt$" out && has "^drwxr-xr-x -S--  *0 .* d$" out ||
        { cat out; return 1; }
    rc 0 "$A" stat attr.img:/f.txt && has "Attributes: A-HR" out || return 1
    # read-only: a copy over it is refused, and the file keeps its bytes
    rc 1 "$A" cp two.txt attr.img:/f.txt && has "asyncfat: attr.img:/f.txt: " err && rc 0 "$A" cat attr.img:/f.txt &&
        cmp out one.txt || return 1
    rc 0 "$A" attrib -r attr.img:/f.txt && rc 0 "$A" cp two.txt attr.img:/f.txt || return 1
    # recursively, with mattrib's -/ or -R; set by mattrib, seen by asyncfat
    rc 0 "$A" attrib -R +s attr.img:/d && mattrib -i attr.img ::/d/e/g.txt | grep -q '  A  S       ::/d/e/g.txt' || return 1
    mattrib -i attr.img +r -a ::/d/e/g.txt && rc 0 "$A" attrib -/ attr.img:/d &&
        has "^     S R     attr.img:/d/e/g.txt$" out && has "^     S       attr.img:/d/e$" out || { cat out; return 1; }
    rc 0 "$A" attrib -i attr.img ::/d/e/g.txt && has "S R" out || return 1
    rc 1 "$A" attrib +h attr.img:/ && has "asyncfat: attr.img:/: the root directory has no attributes to change" err ||
        return 1
    rc 2 "$A" attrib +q attr.img:/f.txt && has "asyncfat: attrib: unknown option '+q'" err || return 1
    rc 1 "$A" attrib +h attr.img:/none && has "attr.img:/none: no such file or directory" err || return 1
    clean attr.img
}
run attrib_and_ls_l_show_and_change_fat_attributes t_attributes

# ---- info and label (offline, as minfo / fsck.fat -v and fatlabel) ----
# The number after KEY in fsck.fat -v's output line that holds TEXT.
fsck_field() { grep -- "$2" "$1" | head -1 | awk '{ print $1 }'; }

t_info() {
    for args in "-F 12" "-F 16 -s 8" "-F 32 -s 1"; do
        rm -f info.img && mkfs.fat -C $args -n INFOTEST info.img 70000 >/dev/null || return 1
        rc 0 "$A" info info.img || return 1
        fsck.fat -vn info.img >fsck.out 2>&1
        local type spc reserved fats total clusters
        type=$(sed -n 's/ *FAT type: *FAT\([0-9]*\)/\1/p' out)
        spc=$(sed -n 's/ *sectors per cluster: *\([0-9]*\) .*/\1/p' out)
        reserved=$(sed -n 's/ *reserved sectors: *\([0-9]*\)/\1/p' out)
        fats=$(sed -n 's/ *FATs: *\([0-9]*\) of.*/\1/p' out)
        total=$(sed -n 's/ *total sectors: *\([0-9]*\) .*/\1/p' out)
        clusters=$(sed -n 's/ *data clusters: *\([0-9]*\)/\1/p' out)
        [ "$type" = "${args:3:2}" ] && [ "$reserved" = "$(fsck_field fsck.out 'reserved sectors')" ] &&
            [ "$total" = "$(fsck_field fsck.out 'sectors total')" ] &&
            [ "$clusters" = "$(fsck_field fsck.out 'data clusters')" ] &&
            [ $((spc * 512)) = "$(fsck_field fsck.out 'bytes per cluster')" ] && [ "$fats" = 2 ] &&
            has 'label: *"INFOTEST"' out && has "state: *clean" out ||
            { echo "$args"; cat out fsck.out; return 1; }
        minfo -i info.img :: >minfo.out && has "serial number: $(sed -n 's/ *serial number: *\([0-9A-F]*\)-\([0-9A-F]*\)/\1\2/p' out)" minfo.out ||
            { cat out minfo.out; return 1; }
    done
    has "FSInfo: *sector 1, [0-9]* free clusters" out && has "backup boot sector: *6" out || return 1
    head -c 1000000 /dev/zero >notfat.img
    rc 1 "$A" info notfat.img && has "asyncfat: notfat.img: not a FAT volume" err
}
run info_shows_what_minfo_and_fsck_fat_show t_info

t_label() {
    "$A" mkfs lab.img --size 16M --label first >/dev/null && "$A" mkfs lab32.img --size 64M --fat 32 --cluster 512 >/dev/null ||
        return 1
    rc 0 "$A" label lab.img && [ "$(cat out)" = "FIRST" ] || return 1
    rc 0 "$A" label lab.img "New Label" && rc 0 "$A" label lab.img && [ "$(cat out)" = "NEW LABEL" ] || return 1
    mlabel -i lab.img -s :: | grep -q "Volume label is NEW LABEL" && [ "$(fatlabel lab.img)" = "NEW LABEL" ] && clean lab.img ||
        return 1
    rc 0 "$A" label lab32.img ThirtyTwo && [ "$(fatlabel lab32.img)" = "THIRTYTWO" ] && clean lab32.img || return 1
    minfo -i lab32.img :: | grep -q 'disk label="THIRTYTWO' || return 1
    # set by mtools, read by asyncfat; removed
    mlabel -i lab32.img ::MTOOLSLBL && rc 0 "$A" label lab32.img && [ "$(cat out)" = "MTOOLSLBL" ] || return 1
    rc 0 "$A" label -r lab32.img && rc 0 "$A" label lab32.img && [ ! -s out ] && [ -z "$(fatlabel lab32.img)" ] &&
        clean lab32.img || return 1
    rc 0 "$A" label -i lab.img && [ "$(cat out)" = "NEW LABEL" ] || return 1
    rc 1 "$A" label lab.img "bad*label" && has "asyncfat: lab.img: 'bad\*label' cannot be a FAT label" err || return 1
    rc 1 "$A" label lab.img TWELVECHARSX && has "cannot be a FAT label" err || return 1
    rc 2 "$A" label -r lab.img X && has usage err
}
run label_reads_and_changes_like_fatlabel t_label

# ---- time zones ----
# The entry's raw write time, as mtools prints it (the fields, whatever the zone): "HH:MM".
raw_time() { TZ=UTC mdir -i "$1" "::$2" | awk -v n="$(basename "$2" | cut -d. -f1 | tr a-z A-Z)" 'toupper($0) ~ n { print $(NF-1) " " $NF; exit }'; }

t_time_zones() {
    "$A" mkfs tz.img --size 16M >/dev/null || return 1
    echo x >t.txt && touch -d "2021-03-14 15:09:26 UTC" t.txt
    local t
    t=$(stat -c %Y t.txt)
    rc 0 "$A" cp --tz UTC t.txt tz.img:/utc.txt && [ "$(raw_time tz.img /utc.txt)" = "2021-03-14 15:09" ] ||
        { echo "utc: $(raw_time tz.img /utc.txt)"; return 1; }
    rc 0 "$A" cp --tz +05:30 t.txt tz.img:/ist.txt && [ "$(raw_time tz.img /ist.txt)" = "2021-03-14 20:39" ] ||
        { echo "ist: $(raw_time tz.img /ist.txt)"; return 1; }
    rc 0 "$A" cp --time-offset -600 t.txt tz.img:/hst.txt && [ "$(raw_time tz.img /hst.txt)" = "2021-03-14 5:09" ] ||
        { echo "hst: $(raw_time tz.img /hst.txt)"; return 1; }
    # the default is the local zone (here IST, five and a half hours east)
    TZ=IST-5:30 "$A" cp t.txt tz.img:/local.txt >/dev/null && [ "$(raw_time tz.img /local.txt)" = "2021-03-14 20:39" ] ||
        { echo "local: $(raw_time tz.img /local.txt)"; return 1; }
    # read back in the same zone: the same instant
    TZ=IST-5:30 "$A" cp tz.img:/local.txt local-back.txt && [ "$(stat -c %Y local-back.txt)" -eq "$t" ] || return 1
    "$A" cp --tz +05:30 tz.img:/ist.txt ist-back.txt && [ "$(stat -c %Y ist-back.txt)" -eq "$t" ] || return 1
    # mtools, in the same zone, agrees with what asyncfat wrote in local time
    rm -f m.txt && TZ=IST-5:30 mcopy -m -i tz.img ::/local.txt m.txt && [ "$(stat -c %Y m.txt)" -eq "$t" ] ||
        { echo "mtools: $(stat -c %y m.txt)"; return 1; }
    rc 2 "$A" ls --tz Mars/Olympus tz.img && has "asyncfat: ls: --tz 'Mars/Olympus' is not a time zone" err || return 1
    rc 2 "$A" ls --time-offset 5000 tz.img && has "is not a number of minutes from -1440 to 1440" err
}
run time_zones_local_by_default t_time_zones

# ---- messages ----
t_messages() {
    rc 1 "$A" ls nope.img && has "^asyncfat: nope.img: no such image$" err || return 1
    rc 1 "$A" cp one.txt nope.img:/x && has "^asyncfat: nope.img: no such image$" err || return 1
    rc 1 "$A" cat nope.img:/x && has "^asyncfat: nope.img: no such image$" err || return 1
    mkdir -p adir && rc 1 "$A" ls adir:/x && has "^asyncfat: adir: not an image: a directory$" err || return 1
    head -c 1000000 /dev/zero >zero.img && rc 1 "$A" ls zero.img &&
        has "^asyncfat: zero.img: not a FAT volume: " err || return 1
    rc 1 "$A" cp one.txt zero.img:/x && has "not a FAT volume" err || return 1
    head -c 100 /dev/zero >tiny.img && rc 1 "$A" ls tiny.img && has "not a FAT volume: smaller than 4096 bytes" err ||
        return 1
    rc 1 "$A" mv vol.img:/many/one.txt ./here.txt && has "asyncfat: mv: './here.txt' is a local path" err || return 1
    rc 1 "$A" mv vol.img:/many/one.txt "$T" && has "is a local path" err || return 1
    "$A" mkdir -p vol.img:/outer/inner >/dev/null || return 1
    rc 1 "$A" mv vol.img:/outer vol.img:/outer/inner &&
        has "asyncfat: mv: cannot move a directory, 'vol.img:/outer', into itself, 'vol.img:/outer/inner/outer'" err ||
        return 1
    rc 1 "$A" rm -r vol.img:/ && has "asyncfat: rm: refusing to remove the root directory of vol.img" err || return 1
    rc 1 "$A" rm -r 'vol.img:/' && rc 0 "$A" ls vol.img:/many && has one.txt out || return 1
    rc 1 "$A" rm vol.img:/outer && has "asyncfat: vol.img:/outer: is a directory (rm -r removes it" err || return 1
    rc 2 "$A" mkfs x.img --size 12Q && has "asyncfat: mkfs: --size '12Q' is not a size" err || return 1
    rc 1 "$A" mkfs small32.img --size 8M --fat 32 && has "asyncfat: small32.img: 8.0M is too small for a FAT32 volume" err ||
        return 1
    rc 2 "$A" ls -Z vol.img && has "^asyncfat: ls: unknown option '-Z'$" err || return 1
    rc 2 "$A" cp --frobnicate a b && has "^asyncfat: cp: unknown option '--frobnicate'$" err || return 1
    rc 2 "$A" mkfs x.img --size && has "^asyncfat: mkfs: option '--size' needs a value$" err || return 1
    rc 2 "$A" frobnicate && has "^asyncfat: frobnicate: unknown subcommand" err || return 1
    rc 1 "$A" ls vol.img:/nothing-here && has "^asyncfat: vol.img:/nothing-here: no such file or directory$" err ||
        return 1
    rc 1 "$A" cp nosuch.txt vol.img:/ && has "^asyncfat: nosuch.txt: no such file or directory$" err || return 1
    # every line of stderr in one style: "asyncfat: ...", lower case after the name
    for cmd in "ls nope.img" "cp one.txt nope.img:/x" "ls zero.img" "rm -r vol.img:/" "ls -Z vol.img" \
        "mv vol.img:/outer vol.img:/outer/inner" "mkfs x.img --size 12Q" "cat vol.img:/many"; do
        "$A" $cmd >/dev/null 2>err
        grep -v '^usage: asyncfat \|^(asyncfat .* --help for more)$' err | grep -qv '^asyncfat: [^ ]*: [a-z0-9'"'"'-]' &&
            { echo "style: $cmd: $(cat err)"; return 1; }
    done
    return 0
}
run messages_say_what_is_wrong_in_one_style t_messages

# --discard: what rm frees becomes holes in the image; without it the blocks stay allocated.
# Skipped where the host file system cannot punch holes.
removed_kib() {
    "$A" mkfs disc.img --size 64M --fat 32 >/dev/null && "$A" cp big16.bin disc.img:/ || return 1
    local full
    full=$(du -k disc.img | cut -f1)
    "$A" rm "$@" disc.img:/big16.bin || return 1
    echo $((full - $(du -k disc.img | cut -f1)))
}
t_discard() {
    head -c 16M /dev/urandom >big16.bin
    local kept freed
    kept=$(removed_kib) && freed=$(removed_kib --discard) || return 1
    echo "image shrank by $kept KiB after rm, $freed KiB after rm --discard"
    [ "$kept" -lt 1024 ] && [ "$freed" -ge 15000 ] || return 1
    PATH=$PATH:/usr/sbin:/sbin fsck.fat -n disc.img >/dev/null
}
if fallocate -p -o 0 -l 4096 "$(mktemp -p "$T")" 2>/dev/null; then
    run discard_punches_what_rm_frees_out_of_the_image t_discard
else
    echo "SKIP discard_punches_what_rm_frees_out_of_the_image: this file system cannot punch holes"
fi

# ---- deep trees: image paths past the protocol's 4,095 bytes (sent from directory fds) ----
t_deep_trees() {
    "$A" mkfs deep.img --size 32M >/dev/null || return 1
    local p=/deep i n
    for i in $(seq 0 20); do
        n=$(printf "d%02d" "$i")
        n=$(printf "$n%.0s" $(seq 70))
        p="$p/${n:0:200}"
    done
    [ ${#p} -gt 4095 ] || { echo "path of ${#p} bytes"; return 1; }
    rc 0 "$A" mkdir -p "deep.img:$p/a/inner" "deep.img:$p/b" || return 1
    rc 0 "$A" ls "deep.img:$p" && [ "$(cat out)" = "$(printf 'a\nb')" ] || { cat out; return 1; }
    rc 0 "$A" mv "deep.img:$p/a" "deep.img:$p/b/" || return 1
    rc 0 "$A" attrib +h "deep.img:$p/b/a" || return 1
    rc 0 "$A" ls -l "deep.img:$p/b" && has ' --H- .* a$' out || return 1
    rc 0 "$A" stat "deep.img:$p/b/a/inner" && has 'directory' out || return 1
    rc 0 "$A" ls -R deep.img:/deep && [ "$(grep -c '^/deep' out)" -eq 25 ] && has '^inner$' out || { cat out; return 1; }
    rc 1 "$A" mv "deep.img:$p/b" "deep.img:$p/b/a/inner/x" && has "cannot move a directory, .* into itself" err || return 1
    # an operand too long for the command is refused whole, never cut short and acted on
    rc 1 "$A" mkdir "deep.img:$(printf '/x%.0s' $(seq 17000))" && has "path too long" err || return 1
    rc 0 "$A" ls deep.img:/ && [ "$(cat out)" = "deep" ] || { cat out; return 1; }
    rc 0 "$A" rmdir "deep.img:$p/b/a/inner" || return 1
    rc 0 "$A" rm -r deep.img:/deep && rc 0 "$A" ls deep.img:/ && [ ! -s out ] || return 1
    clean deep.img
}
run deep_trees_past_4095_bytes t_deep_trees

exit $failed
