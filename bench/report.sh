#!/usr/bin/env bash
# Benchmark group `report` (make bench-report; BENCHMARKS.md explains every figure).
#  1. bench/report_proto: the server against the raw driver on modelled devices.
#  2. FUSE: `asyncfat mount` against fusefat on the same FAT32 image, exfat-fuse on an
#     exFAT image and fuse2fs on an ext4 image of the same size (page cache only): file
#     and tree workloads, then fio's (random 4 KiB reads at 1 and 32 in flight, sequential
#     1 MiB writes and reads). Where this run may set the fuse module's enable_uring (as
#     root), it does for the FUSE part (and puts it back): asyncfat then takes FUSE over
#     io_uring, and asyncfat_devfuse (-o io_uring=0) is measured beside it.
#  3. `asyncfat cp` against mtools' mcopy.
# Prints `bench <name> <value> <unit>` lines, writes $BUILD/bench/report.txt (those lines),
# $BUILD/bench/report.csv and PNG plots, and (full-size runs only) copies the plots and
# the CSV to docs/bench/, the data BENCHMARKS.md quotes.
# REPORT_QUICK=1: smaller sizes; REPORT_SKIP=proto,fuse,cp: leave parts out;
# REPORT_DIR: where images go (default /dev/shm); REPORT_FUSE_PEERS: which file systems the
# FUSE part mounts (default "asyncfat fusefat exfat fuse2fs"); REPORT_FUSE_FIO_ONLY=1: of the
# FUSE workloads only fio's.
set -u
BUILD=${BUILD:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$BUILD/bench
mkdir -p "$out"
lines=$out/report.txt
: >"$lines"
asyncfat=$BUILD/rel/asyncfat
quick=${REPORT_QUICK:-0}
[ "$quick" = 0 ] && quick=
skip=",${REPORT_SKIP:-},"
base=${REPORT_DIR:-}
if [ -z "$base" ]; then
    base=/tmp
    [ -w /dev/shm ] && base=/dev/shm
fi
work=$(mktemp -d "$base/asyncfat-report-XXXXXX")
mnt=$work/mnt
mkdir -p "$mnt"

if [ -n "$quick" ]; then
    image_mb=160 seq_mb=64 tree_files=400 meta_files=300 cap=8 cp_mb=32 fio_mb=64 fio_s=2
else
    image_mb=512 seq_mb=256 tree_files=2000 meta_files=1000 cap=20 cp_mb=128 fio_mb=256 fio_s=4
fi

emit() { # name value unit
    echo "bench $1 $2 $3" | tee -a "$lines"
}
note() { echo "report: $*" >&2; }
export LC_NUMERIC=C # $EPOCHREALTIME's decimal point
# Steps are timed by bash's own clock (t0=$EPOCHREALTIME, then stop): `date` and the fork of
# a command substitution took 3-5 ms here, as long as listing a root, so the end is read
# before anything forks and the subtraction (since) comes after it.
stop() { t_end=$EPOCHREALTIME; }
since() { awk -v a="$1" -v b="$t_end" 'BEGIN { printf "%.4f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }'; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { if (t > 0) printf "%.1f", n / t; else print "nan" }'; }

# ---- mounts ------------------------------------------------------------------------------------
# Every peer runs in the foreground of a background job (pid in $fs_pid) except exfat-fuse,
# which always daemonizes: its pid is found from its exact command line.
fs_pid=
loopdev=
mount_fs() { # peer image
    local peer=$1 image=$2
    case $peer in
    asyncfat) "$asyncfat" mount "$image" "$mnt" -f >"$work/$peer.log" 2>&1 & fs_pid=$! ;;
    asyncfat_devfuse) "$asyncfat" mount "$image" "$mnt" -f -o io_uring=0 >"$work/$peer.log" 2>&1 & fs_pid=$! ;;
    fusefat) fusefat -f -o rw+ "$image" "$mnt" >"$work/$peer.log" 2>&1 & fs_pid=$! ;;
    fuse2fs) fuse2fs -f "$image" "$mnt" >"$work/$peer.log" 2>&1 & fs_pid=$! ;;
    exfat)
        # exfat-fuse insists on a block device when run as root: give it a loop device.
        loopdev=$(losetup -f --show "$image" 2>>"$work/$peer.log") || return 1
        mount.exfat-fuse "$loopdev" "$mnt" >>"$work/$peer.log" 2>&1 || return 1
        fs_pid=$(pgrep -n -x -f "mount.exfat-fuse $loopdev $mnt")
        ;;
    esac
    for _ in $(seq 100); do
        mountpoint -q "$mnt" && return 0
        sleep 0.05
    done
    return 1
}

# Unmount and wait until the file system's process has finished (its data is written).
umount_fs() {
    mountpoint -q "$mnt" && { fusermount -u "$mnt" 2>/dev/null || fusermount3 -u "$mnt" 2>/dev/null; }
    if [ -n "$fs_pid" ]; then
        # Poll finely: the write steps are timed to here, and a 50 ms step was most of a
        # small step's time for every peer.
        for _ in $(seq 6000); do
            kill -0 "$fs_pid" 2>/dev/null || break
            sleep 0.005
        done
        wait "$fs_pid" 2>/dev/null
    fi
    fs_pid=
    if [ -n "$loopdev" ]; then
        losetup -d "$loopdev"
        loopdev=
    fi
}

make_image() { # peer image
    rm -f "$2"
    case $1 in
    asyncfat | asyncfat_devfuse | fusefat) mkfs.fat -F 32 -C "$2" $((image_mb * 1024)) >/dev/null ;;
    exfat) truncate -s ${image_mb}M "$2" && mkfs.exfat "$2" >/dev/null ;;
    fuse2fs) truncate -s ${image_mb}M "$2" && mkfs.ext4 -q -F "$2" ;;
    esac
}

peer_available() {
    case $1 in
    asyncfat | asyncfat_devfuse) [ -x "$asyncfat" ] || { note "asyncfat not built ($asyncfat): no $1 rows"; return 1; } ;;
    fusefat) command -v fusefat >/dev/null || { note "fusefat not installed: no fusefat rows"; return 1; } ;;
    exfat) command -v mount.exfat-fuse >/dev/null && command -v mkfs.exfat >/dev/null ||
        { note "exfat-fuse or exfatprogs not installed: no exfat rows"; return 1; } ;;
    fuse2fs) command -v fuse2fs >/dev/null || { note "fuse2fs not installed: no fuse2fs rows"; return 1; } ;;
    esac
    [ -e /dev/fuse ] || { note "no /dev/fuse: no FUSE rows"; return 1; }
}

# ---- inputs ------------------------------------------------------------------------------------
# A source tree of small files (sizes 100 B .. 16 KiB, 40 directories), made by one awk.
make_tree() { # dir files
    mkdir -p "$1/src"
    (cd "$1/src" && mkdir -p $(seq -f 'd%02g' 0 39) && awk -v n="$2" 'BEGIN {
        srand(42)
        line = "static int step(int value) { return value * 31 + 17; } /* ok */\n"
        for (i = 0; i < n; i++) {
            f = sprintf("d%02d/file%04d.c", i % 40, i)
            size = 100 + int(rand() * 16284)
            s = ""
            while (length(s) < size) s = s line
            printf "%s", substr(s, 1, size) > f
            close(f)
        }
    }')
}

# Run a step with a time cap. Sets step_s (seconds). The step's own progress probe tells
# how much was done when the cap cut it short.
# A step cut short by the cap: its rate comes from what was done by then.
partial() { # peer workload
    [ "$step_rc" = 124 ] || return 0
    note "$1: $2 cut at the ${cap} s cap; its rate counts what was done by then"
    emit "report_fuse_${1}_${2}_capped" 1 flag
}

capped() { # command...
    local t0
    t0=$EPOCHREALTIME
    timeout "$cap" bash -c "$*" >/dev/null 2>&1
    step_rc=$?
    stop
    step_s=$(since "$t0")
}

# ---- the FUSE comparison ----------------------------------------------------------------------
declare -A fuse_rate
fio_workloads="fio_seqwrite fio_seqread fio_randread_qd1_direct fio_randread_qd1_buffered fio_randread_qd32 \
fio_randread_8x4"
fuse_workloads="seqwrite seqread tarx treeread create stat remove $fio_workloads"
fuse_units() {
    case $1 in
    seqwrite | seqread | fio_seq*) echo MB/s ;;
    fio_*) echo iops ;;
    *) echo files/s ;;
    esac
}

# One fio job on $mnt/fio.bin; prints MB/s (sequential) or IOPS (random). fio's terse
# format: field 7/8 read bandwidth (KiB/s) and IOPS, 48/49 the same for writes.
fio_run() { # kind args...
    local kind=$1
    shift
    timeout $((cap + 30)) fio --name=report --filename="$mnt/fio.bin" --size=${fio_mb}M --output-format=terse \
        --terse-version=3 "$@" 2>>"$work/fio.log" |
        awk -F';' -v kind="$kind" 'NF > 50 {
            if (kind == "write") printf "%.1f", $48 / 1024 * 1.048576
            else if (kind == "read") printf "%.1f", $7 / 1024 * 1.048576
            else printf "%.1f", $8 }'
}

# fio's workloads: a new user's first look at a file system's latency and streaming.
# Random reads: 4 KiB at 1 in flight (O_DIRECT and buffered; a buffered job starts with
# the file's pages dropped, so reads reach the file system until they are cached), at 32
# (io_uring, O_DIRECT), and 8 jobs of 4; each for fio_s seconds on a fio_mb file.
fio_peer() { # peer image
    local peer=$1 image=$2 v
    command -v fio >/dev/null || { note "fio not installed: no fio rows"; return 0; }
    mount_fs "$peer" "$image" || { note "$peer: remount for fio failed"; umount_fs; return 0; }
    rm -f "$mnt/big"
    v=$(fio_run write --rw=write --bs=1M --ioengine=psync --end_fsync=1)
    [ -n "$v" ] && fuse_rate[$peer,fio_seqwrite]=$v || note "$peer: fio sequential write failed"
    umount_fs
    mount_fs "$peer" "$image" || { note "$peer: remount for fio failed"; umount_fs; return 0; }
    v=$(fio_run read --rw=read --bs=1M --ioengine=psync)
    [ -n "$v" ] && fuse_rate[$peer,fio_seqread]=$v || note "$peer: fio sequential read failed"
    local rand="--rw=randread --bs=4k --runtime=$fio_s --time_based --randrepeat=0"
    v=$(fio_run iops $rand --direct=1 --ioengine=psync)
    [ -n "$v" ] && fuse_rate[$peer,fio_randread_qd1_direct]=$v || note "$peer: fio O_DIRECT reads failed"
    v=$(fio_run iops $rand --direct=0 --ioengine=psync --invalidate=1)
    [ -n "$v" ] && fuse_rate[$peer,fio_randread_qd1_buffered]=$v || note "$peer: fio buffered reads failed"
    v=$(fio_run iops $rand --direct=1 --ioengine=io_uring --iodepth=32)
    [ -n "$v" ] && fuse_rate[$peer,fio_randread_qd32]=$v || note "$peer: fio reads at 32 in flight failed"
    v=$(fio_run iops $rand --direct=1 --ioengine=io_uring --iodepth=4 --numjobs=8 --group_reporting)
    [ -n "$v" ] && fuse_rate[$peer,fio_randread_8x4]=$v || note "$peer: fio 8 jobs of 4 failed"
    umount_fs
}

fuse_peer() { # peer
    local peer=$1 image=$work/$1.img t0 n done_files
    peer_available "$peer" || return 0
    make_image "$peer" "$image" || { note "$peer: cannot make its image"; return 0; }
    if ! mount_fs "$peer" "$image"; then
        note "$peer: cannot mount (see below); no $peer rows"
        tail -3 "$work/$peer.log" >&2
        umount_fs
        return 0
    fi
    if [ -n "${REPORT_FUSE_FIO_ONLY:-}" ]; then
        umount_fs
        fio_peer "$peer" "$image"
        for w in $fio_workloads; do
            [ -n "${fuse_rate[$peer,$w]:-}" ] && emit "report_fuse_${peer}_$w" "${fuse_rate[$peer,$w]}" "$(fuse_units $w)"
        done
        rm -f "$image"
        return 0
    fi
    # Sequential write (to the end of the unmount: data a file system holds is counted).
    capped "dd if='$work/seq.bin' of='$mnt/big' bs=1M conv=fsync"
    partial "$peer" seqwrite
    t0=$EPOCHREALTIME
    n=$(stat -c %s "$mnt/big" 2>/dev/null || echo 0)
    umount_fs
    stop
    fuse_rate[$peer,seqwrite]=$(rate "$n" "$(awk -v a="$step_s" -v b="$(since "$t0")" 'BEGIN { print (a + b) * 1e6 }')")
    # Sequential read, from a fresh mount (an empty page cache for this file system).
    mount_fs "$peer" "$image" || { note "$peer: remount failed"; umount_fs; return 0; }
    capped "dd if='$mnt/big' of=/dev/null bs=1M"
    if [ $step_rc = 0 ]; then
        n=$(stat -c %s "$mnt/big")
        fuse_rate[$peer,seqread]=$(rate "$n" "$(awk -v a="$step_s" 'BEGIN { print a * 1e6 }')")
    else
        note "$peer: sequential read over the ${cap} s cap"
    fi
    # Extract the tree (to the end of the unmount).
    mkdir -p "$mnt/tree"
    capped "tar xf '$work/tree.tar' -C '$mnt/tree'"
    partial "$peer" tarx
    t0=$EPOCHREALTIME
    done_files=$(find "$mnt/tree" -type f 2>/dev/null | wc -l)
    umount_fs
    stop
    fuse_rate[$peer,tarx]=$(rate "$done_files" "$(awk -v a="$step_s" -v b="$(since "$t0")" 'BEGIN { print a + b }')")
    # Read the tree back (tar to a pipe: tar skips reading when writing to /dev/null).
    mount_fs "$peer" "$image" || { note "$peer: remount failed"; umount_fs; return 0; }
    capped "tar cf - -C '$mnt' tree | cat >/dev/null"
    if [ $step_rc = 0 ]; then fuse_rate[$peer,treeread]=$(rate "$done_files" "$step_s"); else note "$peer: tree read over the cap"; fi
    # Metadata: create files in one directory, stat them from a fresh mount, remove them.
    mkdir -p "$mnt/many"
    capped "cd '$mnt/many' && seq -f 'f%05g' $meta_files | xargs touch"
    partial "$peer" create
    t0=$EPOCHREALTIME
    done_files=$(ls "$mnt/many" | wc -l)
    umount_fs
    stop
    fuse_rate[$peer,create]=$(rate "$done_files" "$(awk -v a="$step_s" -v b="$(since "$t0")" 'BEGIN { print a + b }')")
    mount_fs "$peer" "$image" || { note "$peer: remount failed"; umount_fs; return 0; }
    capped "ls -l '$mnt/many'"
    if [ $step_rc = 0 ]; then fuse_rate[$peer,stat]=$(rate "$done_files" "$step_s"); else note "$peer: stat over the cap"; fi
    capped "rm -rf '$mnt/many'"
    partial "$peer" remove
    t0=$EPOCHREALTIME
    n=$(ls "$mnt/many" 2>/dev/null | wc -l)
    umount_fs
    stop
    fuse_rate[$peer,remove]=$(rate $((done_files - n)) "$(awk -v a="$step_s" -v b="$(since "$t0")" 'BEGIN { print a + b }')")
    fio_peer "$peer" "$image"
    for w in $fuse_workloads; do
        [ -n "${fuse_rate[$peer,$w]:-}" ] && emit "report_fuse_${peer}_$w" "${fuse_rate[$peer,$w]}" "$(fuse_units $w)"
    done
    rm -f "$image"
}

# FUSE over io_uring is the kernel's to offer, off unless the administrator sets the fuse
# module's enable_uring: turned on for the FUSE part where this run may, put back after.
ring_knob=/sys/module/fuse/parameters/enable_uring
ring_old=
fuse_ring_on() {
    if [ -e "$ring_knob" ] && ring_old=$(cat "$ring_knob") && { echo Y >"$ring_knob"; } 2>/dev/null; then
        emit report_fuse_io_uring 1 flag
        return 0
    fi
    ring_old=
    note "cannot turn on FUSE over io_uring here ($ring_knob): asyncfat reads /dev/fuse, no asyncfat_devfuse rows"
    emit report_fuse_io_uring 0 flag
    return 1
}
fuse_ring_restore() { [ -z "$ring_old" ] || echo "$ring_old" >"$ring_knob"; }

fuse_compare() {
    local peers=${REPORT_FUSE_PEERS:-asyncfat fusefat exfat fuse2fs}
    if fuse_ring_on; then
        [[ " $peers " == *" asyncfat "* ]] && [[ " $peers " != *" asyncfat_devfuse "* ]] &&
            peers="asyncfat asyncfat_devfuse ${peers/asyncfat/}"
    else
        peers=${peers/asyncfat_devfuse/}
    fi
    head -c $((seq_mb << 20)) /dev/urandom >"$work/seq.bin"
    make_tree "$work/treesrc" "$tree_files"
    tar cf "$work/tree.tar" -C "$work/treesrc/src" .
    emit report_fuse_tree_mb "$(du -sm "$work/treesrc/src" | cut -f1)" MiB
    emit report_fuse_seq_file_mb "$seq_mb" MiB
    emit report_fuse_tree_files "$tree_files" files
    emit report_fuse_meta_files "$meta_files" files
    emit report_fuse_step_cap_s "$cap" s
    emit report_fuse_fio_file_mb "$fio_mb" MiB
    emit report_fuse_fio_random_s "$fio_s" s
    for peer in $peers; do
        fuse_peer "$peer"
    done
    fuse_ring_restore
    for w in $fuse_workloads; do
        local a=${fuse_rate[asyncfat,$w]:-} d=${fuse_rate[asyncfat_devfuse,$w]:-}
        [ -n "$a" ] && [ -n "$d" ] && emit "report_fuse_io_uring_vs_devfuse_$w" "$(ratio "$a" "$d")" x
    done
    [ -n "${fuse_rate[asyncfat,seqwrite]:-}${fuse_rate[asyncfat,fio_seqwrite]:-}" ] ||
        { note "no asyncfat FUSE figures: no FUSE ratios"; return; }
    for peer in fusefat exfat fuse2fs; do
        for w in $fuse_workloads; do
            local a=${fuse_rate[asyncfat,$w]:-} p=${fuse_rate[$peer,$w]:-}
            [ -n "$a" ] && [ -n "$p" ] && emit "report_fuse_vs_${peer}_$w" "$(ratio "$a" "$p")" x
        done
    done
}

# ---- asyncfat cp against mcopy ------------------------------------------------------------------
# One round of the four copy-tool steps with `tool` on a fresh image; the times go to
# cp_t[tool,step,round]. False if a step failed.
cp_round() { # tool round
    local tool=$1 r=$2 image=$work/cp.img t0
    make_image fusefat "$image"
    t0=$EPOCHREALTIME
    if [ "$tool" = asyncfat ]; then
        "$asyncfat" cp "$work/cp.bin" "$image:/big.bin"
    else
        mcopy -i "$image" "$work/cp.bin" ::/big.bin
    fi || { note "$tool: copying a file in failed"; return 1; }
    stop
    cp_t[$tool,file_in,$r]=$(since "$t0")
    rm -f "$work/cp.out"
    t0=$EPOCHREALTIME
    if [ "$tool" = asyncfat ]; then
        "$asyncfat" cp "$image:/big.bin" "$work/cp.out"
    else
        mcopy -i "$image" ::/big.bin "$work/cp.out"
    fi || { note "$tool: copying a file out failed"; return 1; }
    stop
    cp_t[$tool,file_out,$r]=$(since "$t0")
    cmp -s "$work/cp.bin" "$work/cp.out" || note "$tool: the file copied out differs"
    t0=$EPOCHREALTIME
    if [ "$tool" = asyncfat ]; then
        "$asyncfat" cp -r "$work/treesrc/src" "$image:/tree"
    else
        mcopy -s -i "$image" "$work/treesrc/src" ::/tree
    fi || { note "$tool: copying the tree in failed"; return 1; }
    stop
    cp_t[$tool,tree_in,$r]=$(since "$t0")
    # The fixed cost of one command on a small volume: listing its root.
    t0=$EPOCHREALTIME
    if [ "$tool" = asyncfat ]; then
        "$asyncfat" ls "$image:/" >/dev/null
    else
        mdir -i "$image" ::/ >/dev/null
    fi
    stop
    cp_t[$tool,list_root,$r]=$(since "$t0")
    rm -f "$image" "$work/cp.out"
}

median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

# Each step is one short timed command: three rounds, the tools taking turns, and the
# median of each step, so one slow run on the shared machine does not decide a ratio.
cp_compare() {
    if ! command -v mcopy >/dev/null; then
        note "mtools not installed: no copy rows"
        return
    fi
    [ -x "$asyncfat" ] || note "asyncfat not built: mcopy rows only"
    head -c $((cp_mb << 20)) /dev/urandom >"$work/cp.bin"
    [ -d "$work/treesrc" ] || make_tree "$work/treesrc" "$tree_files"
    emit report_cp_file_mb "$cp_mb" MiB
    declare -A cp_t cp_s
    local tool r w
    for r in 1 2 3; do
        for tool in asyncfat mcopy; do
            [ $tool = asyncfat ] && [ ! -x "$asyncfat" ] && continue
            cp_round $tool $r || true
        done
    done
    for tool in asyncfat mcopy; do
        for w in file_in file_out tree_in list_root; do
            [ -n "${cp_t[$tool,$w,1]:-}" ] && [ -n "${cp_t[$tool,$w,2]:-}" ] && [ -n "${cp_t[$tool,$w,3]:-}" ] ||
                continue
            cp_s[$tool,$w]=$(median3 "${cp_t[$tool,$w,1]}" "${cp_t[$tool,$w,2]}" "${cp_t[$tool,$w,3]}")
            emit "report_cp_${tool}_${w}_time" "${cp_s[$tool,$w]}" s
        done
    done
    for w in file_in file_out tree_in list_root; do
        [ -n "${cp_s[asyncfat,$w]:-}" ] && [ -n "${cp_s[mcopy,$w]:-}" ] &&
            emit "report_cp_vs_mcopy_$w" "$(ratio "${cp_s[mcopy,$w]}" "${cp_s[asyncfat,$w]}")" x
    done
}

cleanup() {
    umount_fs 2>/dev/null
    fuse_ring_restore
    rm -rf "$work"
}
trap cleanup EXIT

if [[ $skip != *,proto,* ]]; then
    REPORT_DIR=$base "$BUILD/rel/bench/report_proto" | tee -a "$lines"
    [ "${PIPESTATUS[0]}" = 0 ] || note "report_proto failed: the protocol rows are incomplete"
fi
[[ $skip == *,fuse,* ]] || fuse_compare
[[ $skip == *,cp,* ]] || cp_compare

awk 'BEGIN { print "name,value,unit" } $1 == "bench" { print $2 "," $3 "," $4 }' "$lines" >"$out/report.csv"
# Every ratio as a Markdown table, for BENCHMARKS.md.
awk 'BEGIN { print "| figure | value |"; print "|---|---|" }
     $1 == "bench" && ($4 == "ratio" || $4 == "x") { print "| `" $2 "` | " $3 " |" }' "$lines" >"$out/report_ratios.md"
note "wrote $out/report.csv and $out/report_ratios.md"
# Only a full-size run of every part replaces the plots BENCHMARKS.md shows.
if [ -n "$quick" ] || [ "$skip" != ",," ]; then
    "$root/bench/report_plots.sh" "$out"
else
    "$root/bench/report_plots.sh" "$out" "$root/docs/bench"
    cp "$out/report.csv" "$root/docs/bench/report.csv"
fi
