# Boot a Microkit image under QEMU (sourced by sel4/test_sel4.sh and sel4/bench_sel4.sh).
#
# qemu_boot BOARD IMAGE DISK LOG SECONDS DONE_LINES
#   Starts QEMU (under timeout) with DISK as the virtio block device in slot 1, its serial
#   output in LOG, and stops it by its process id once LOG has DONE_LINES lines matching
#   "| <n> passed, <m> failed" (every client has finished), once a PD faults or stops
#   (MON|ERROR, FATAL), or after SECONDS. Returns 0 if every client finished, 1 if not.
# qemu_boot_until BOARD IMAGE DISK LOG SECONDS PATTERN COUNT [CUT_AFTER]
#   The same, stopping once COUNT lines match PATTERN (grep -E). With CUT_AFTER (seconds,
#   fractions allowed), QEMU is killed (SIGKILL: the disk is cut off mid-write) that long
#   after the COUNT-th line instead of being stopped.

qemu_command() {
    local board=$1 image=$2 disk=$3
    local blk=(-global virtio-mmio.force-legacy=false -drive "file=$disk,if=none,format=raw,id=hd"
        -device virtio-blk-device,drive=hd,bus=virtio-mmio-bus.1)
    case $board in
    qemu_virt_aarch64)
        echo qemu-system-aarch64 -machine virt,virtualization=on -cpu cortex-a53 -m size=2G -nographic \
            -serial mon:stdio -nic none -device "loader,file=$image,addr=0x70000000,cpu-num=0" "${blk[@]}" ;;
    qemu_virt_riscv64)
        echo qemu-system-riscv64 -machine virt -m size=2G -nographic -serial mon:stdio -nic none \
            -kernel "$image" "${blk[@]}" ;;
    esac
}

qemu_boot_until() {
    local board=$1 image=$2 disk=$3 log=$4 seconds=$5 pattern=$6 count=$7 cut=${8:-}
    : >"$log"
    # shellcheck disable=SC2046
    timeout --kill-after=5 "$seconds" $(qemu_command "$board" "$image" "$disk") </dev/null >"$log" 2>&1 &
    local pid=$! status=1 signal=TERM
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(grep -aEc "$pattern" "$log")" -ge "$count" ]; then
            status=0
            if [ -n "$cut" ]; then
                sleep "$cut"
                signal=KILL
            fi
            break
        fi
        if grep -aqE 'MON\|ERROR|FATAL|asyncfat\|ERROR' "$log"; then
            sleep 1 # the rest of the fault report
            break
        fi
        sleep 0.2
    done
    # QEMU itself, by the process id its timeout started it with.
    local qemu
    qemu=$(pgrep -P "$pid" | head -n 1)
    kill -s "$signal" "${qemu:-$pid}" 2>/dev/null
    wait "$pid" 2>/dev/null
    return $status
}

qemu_boot() {
    qemu_boot_until "$1" "$2" "$3" "$4" "$5" '\| [0-9]+ passed, [0-9]+ failed' "$6"
}
