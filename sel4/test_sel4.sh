#!/usr/bin/env bash
# asyncfat on seL4: whole Microkit systems (sDDF serial and virtio block driver, block
# virtualiser, asyncfat, test clients) booted under QEMU for one board, checked from both
# sides: every client check must pass, then Linux's fsck.fat -n and mtools check the disk.
#
#   sel4/test_sel4.sh BOARD     (make test runs it for qemu_virt_aarch64 and qemu_virt_riscv64;
#                               SEL4_KEEP_LOGS=<dir> keeps the serial logs)
#
# Boots: debug "basic" (FAT32, one client, LionsOS's configuration: Linux's files, the
# workload, bad inputs), debug "multi" (FAT16, two clients at once, guarded fiber stacks),
# release "basic" (the result comes through sDDF's serial subsystem), debug "idle" (files
# written and never synced reach the disk through the PD's timer). On aarch64 also the
# power cut: "crash" killed while its client writes and syncs, the disk checked, then
# "crash_check" booted on it. On riscv64 also PDs whose configuration is missing or names
# the PD's own code, which must say so and serve nothing. Images come from make microkit (sel4/module.mk); without
# a Microkit SDK every check is reported as skipped.
set -u
board=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/qemu.sh"
build=${BUILD:-build}/microkit/$board
name=sel4_${board#qemu_virt_}

if [ -z "${MICROKIT_SDK:-}" ] || [ ! -d "${MICROKIT_SDK:-/nonexistent}" ] || [ -z "${SDDF:-}" ] || [ ! -d "${SDDF:-/nonexistent}" ]; then
    echo "SKIP $name: no Microkit SDK and sDDF (make test MICROKIT_SDK=<microkit-sdk-2.0.1> SDDF=<sddf>)"
    exit 0
fi
for tool in qemu-system-${board#qemu_virt_} sfdisk mkfs.fat mcopy fsck.fat python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP $name: $tool is not installed (scripts/deps.sh)"
        exit 0
    fi
done

work=$(mktemp -d)
# SEL4_KEEP_LOGS=<dir>: keep the serial logs there (sel4/bench_sel4.sh reads the stack marks).
trap '[ -n "${SEL4_KEEP_LOGS:-}" ] && mkdir -p "$SEL4_KEEP_LOGS" && cp "$work"/*.log "$SEL4_KEEP_LOGS"/ 2>/dev/null; rm -rf "$work"' EXIT
python3 "$here/disk.py" make "$work/template.img" || { echo "FAIL $name: could not make the test disk"; exit 1; }

# Relay a boot's client lines as this test's own (prefixed with the boot's name), and
# check that every client finished with no failure.
report_boot() {
    local tag=$1 log=$2 clients=$3 finished=$4
    local c summary
    sed -n 's#^.*\(client[0-9]*\)| \(PASS\|FAIL\) \(.*\)$#\2 '"$tag"'/\1/\3#p' "$log" | tr -d '\r'
    for c in $(cat "$clients"); do
        summary=$(grep -a "$c| [0-9]* passed, [0-9]* failed" "$log" | tr -d '\r' | tail -n 1)
        if [ -z "$summary" ]; then
            echo "FAIL $tag/$c: never finished (a hang or a fault); the serial log:"
            tail -n 80 "$log"
        elif ! echo "$summary" | grep -q ' 0 failed$'; then
            echo "FAIL $tag/$c: $summary"
        else
            echo "PASS $tag/$c: ${summary#*| }"
        fi
    done
    [ "$finished" -eq 0 ]
}

# boot CONFIG SYSTEM DISK PARTITION [--after-recovery]: boot, report, check the disk.
boot() {
    local config=$1 system=$2 disk=$3 partition=$4 after=${5:-}
    local tag=$board/$config/$system image=$build/$config/$system.img
    local clients=$build/$config/sys_$system/$system.clients log=$work/$config-$system.log
    if [ ! -f "$image" ]; then
        echo "FAIL $tag: $image was not built (make microkit)"
        return
    fi
    qemu_boot "$board" "$image" "$disk" "$log" 240 "$(wc -l <"$clients")"
    report_boot "$tag" "$log" "$clients" $?
    python3 "$here/disk.py" check "$disk" "$partition" "$log" $after | sed "s#^\(PASS\|FAIL\) #\1 $tag/disk/#"
}

cp --sparse=always "$work/template.img" "$work/disk1.img"
boot debug basic "$work/disk1.img" 0
boot debug multi "$work/disk1.img" 1
cp --sparse=always "$work/template.img" "$work/disk2.img"
boot release basic "$work/disk2.img" 0

# Write-back while idle: the client writes files with no sync and goes quiet with the
# volume mounted; the power is cut IDLE_CUT seconds after it finished (the PD's write-back
# interval is FS_COMPONENT_WRITEBACK_MS, 5 s, counted from its first change): only the
# PD's timer can have woken it to write them.
idle_cut=12
cp --sparse=always "$work/template.img" "$work/disk4.img"
tag=$board/debug/idle
if qemu_boot_until "$board" "$build/debug/idle.img" "$work/disk4.img" "$work/idle.log" 240 \
    '\| [0-9]+ passed, [0-9]+ failed' 1 "$idle_cut"; then
    report_boot "$tag" "$work/idle.log" "$build/debug/sys_idle/idle.clients" 0
else
    echo "FAIL $tag: the client never finished; the serial log:"
    tail -n 60 "$work/idle.log"
fi
python3 "$here/disk.py" check "$work/disk4.img" 0 "$work/idle.log" --after-cut |
    sed "s#^\(PASS\|FAIL\) #\1 $tag/written_back_while_idle/#"

if [ "$board" = qemu_virt_aarch64 ]; then
    # The cut: QEMU killed at a random moment after the writer's 12th synced file, then the
    # disk as Linux sees it, then asyncfat's next boot on it.
    cp --sparse=always "$work/template.img" "$work/disk3.img"
    tag=$board/debug/crash
    cut_after=$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", r / 32768 * 1.5 }')
    if qemu_boot_until "$board" "$build/debug/crash.img" "$work/disk3.img" "$work/crash.log" 240 \
        '\| SYNCED ' 12 "$cut_after"; then
        echo "PASS $tag/cut: killed ${cut_after}s after the 12th sync, $(grep -ac '| SYNCED ' "$work/crash.log") files synced"
    else
        echo "FAIL $tag/cut: the writer never synced 12 files; the serial log:"
        tail -n 60 "$work/crash.log"
    fi
    python3 "$here/disk.py" check "$work/disk3.img" 0 "$work/crash.log" --after-cut | sed "s#^\(PASS\|FAIL\) #\1 $tag/disk/#"
    boot debug crash_check "$work/disk3.img" 0 --after-recovery
    # The clean volume must be asyncfat's doing: its mount found the cut volume dirty and
    # recovered it; and what the writer saw synced survived the recovery.
    mounted=$(grep -a 'asyncfat|mounted: ' "$work/debug-crash_check.log" | tr -d '\r' | head -n 1)
    if echo "$mounted" | grep -q 'mounted: was dirty, recovered'; then
        echo "PASS $tag/recovered_by_asyncfat: ${mounted#*mounted: }"
    else
        echo "FAIL $tag/recovered_by_asyncfat: the PD said '${mounted:-nothing}' at mount"
    fi
    python3 "$here/disk.py" check "$work/disk3.img" 0 "$work/crash.log" --after-recovery |
        sed "s#^\(PASS\|FAIL\) #\1 $tag/synced_survive_recovery/#"
else
    # Configurations the PD must refuse, saying so on the debug console, serving nothing and
    # touching nothing they name: one never written, one whose data region is the PD's code.
    refused() {
        local system=$1 expect=$2 tag=$board/debug/$1
        qemu_boot_until "$board" "$build/debug/$system.img" "$work/disk1.img" "$work/$system.log" 60 \
            'asyncfat\|not serving' 1
        sleep 1
        if grep -aqF "$expect" "$work/$system.log" && grep -aq 'asyncfat|not serving' "$work/$system.log" &&
            ! grep -aq 'PASS initialise' "$work/$system.log" && ! grep -aq 'MON|ERROR' "$work/$system.log"; then
            echo "PASS $tag: reported on the debug console, nothing served, nothing faulted"
        else
            echo "FAIL $tag: expected the PD to report its configuration and serve nothing; the serial log:"
            tail -n 40 "$work/$system.log"
        fi
    }
    refused no_config 'asyncfat|ERROR: .blk_client_config: no sDDF magic'
    refused wild_config "asyncfat|ERROR: .blk_client_config: data region overlaps the PD's own image"
fi
