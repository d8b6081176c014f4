#!/usr/bin/env bash
# make bench-sel4: asyncfat on seL4, in the QEMU systems of make test, on both boards.
#
#   - requests per second through the whole system with 1 and with 32 requests in flight
#     (the release "bench" system: file creates, and 4 KiB reads at random places in 64
#     files), and their ratio; QEMU emulates the CPU, so the ratios are what carries over
#   - each fiber's stack high-water mark (painted stacks, debug builds) under the test
#     workload and the benchmark, beside the static bound of sel4/stack_depth.py
#   - the PD's memory: `size asyncfat.elf` (the arena is in its bss) and its fiber stacks,
#     beside LionsOS's FAT PD (four worker stacks of 256 KiB: 1 MiB for 4 requests in flight)
# Prints "bench <name> <value> <unit>" lines, and the per-fiber marks as asyncfat logs them.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/qemu.sh"
BUILD=${BUILD:-build}
if [ -z "${MICROKIT_SDK:-}" ] || [ -z "${SDDF:-}" ]; then
    echo "bench-sel4: skipped, no Microkit SDK and sDDF (set MICROKIT_SDK=<microkit-sdk-2.0.1> SDDF=<sddf>)"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/disk.py" make "$work/template.img"

boot_log() { # board config system -> log path; every client must finish
    local board=$1 config=$2 system=$3 log=$work/$1-$2-$3.log
    cp --sparse=always "$work/template.img" "$work/disk.img"
    local clients
    clients=$(wc -l <"$BUILD/microkit/$board/$config/sys_$system/$system.clients")
    if ! qemu_boot "$board" "$BUILD/microkit/$board/$config/$system.img" "$work/disk.img" "$log" 600 "$clients"; then
        echo "bench-sel4: $board $config $system did not finish; its serial log:" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
    echo "$log"
}

for board in qemu_virt_aarch64 qemu_virt_riscv64; do
    arch=${board#qemu_virt_}
    case $arch in aarch64) cc=aarch64-linux-gnu-gcc flags="-mcpu=cortex-a53 -mstrict-align" ;;
    riscv64) cc=riscv64-linux-gnu-gcc flags="-march=rv64imafdc_zicsr_zifencei -mabi=lp64d -mcmodel=medany" ;; esac

    # Throughput, release build.
    log=$(boot_log "$board" release bench) || exit 1
    sed -n 's/^.*client0| \(bench .*\)$/\1/p' "$log" | tr -d '\r'

    # Stack use, debug builds (painted): the test workload, two clients at once, the benchmark.
    for system in basic multi bench; do
        log=$(boot_log "$board" debug "$system") || exit 1
        grep -a 'asyncfat|stack high water' "$log" | tr -d '\r' | sed "s/^/# $arch $system: /"
        used=$(sed -n 's/^.*asyncfat|stack high water: \([0-9]*\) of \([0-9]*\) bytes.*$/\1/p' "$log" | tail -n 1)
        size=$(sed -n 's/^.*asyncfat|stack high water: \([0-9]*\) of \([0-9]*\) bytes.*$/\2/p' "$log" | tail -n 1)
        echo "bench sel4_${arch}_stack_high_water_${system} ${used:-0} bytes"
    done
    echo "bench sel4_${arch}_stack_size ${size:-0} bytes"

    # The static bounds (sel4/stack_bound.sh): a fiber, and the PD's own stack.
    "$here/stack_bound.sh" "$board" "$work/ci-$arch" >"$work/bound-$arch.txt" || exit 1
    sed -n 's/^# \(.*\)$/# '"$arch"' static: \1/p' "$work/bound-$arch.txt"
    echo "bench sel4_${arch}_stack_static_bound $(sed -n 's/^fiber //p' "$work/bound-$arch.txt") bytes"
    echo "bench sel4_${arch}_root_stack_static_bound $(sed -n 's/^root //p' "$work/bound-$arch.txt") bytes"

    # Memory: the release PD's sections, and its stacks (LionsOS's four worker stacks).
    elf=$BUILD/microkit/$board/release/asyncfat.elf
    read -r text data bss _ < <(${cc%gcc}size "$elf" | tail -n 1)
    stacks=$((4 * 256 * 1024))
    echo "bench sel4_${arch}_pd_text $text bytes"
    echo "bench sel4_${arch}_pd_data $data bytes"
    echo "bench sel4_${arch}_pd_bss $bss bytes"
    echo "bench sel4_${arch}_pd_total_with_stacks $((text + data + bss + stacks)) bytes"
    fibers=$(( (256 * 1024 / ${size:-24576}) * 4 ))
    echo "bench sel4_${arch}_requests_in_flight_per_mib_of_stacks $fibers requests"
    echo "# $arch size asyncfat.elf (release):"
    ${cc%gcc}size "$elf" | sed "s/^/#   /"
done
echo "# LionsOS's FAT PD: 4 worker stacks of 256 KiB (1 MiB) for 4 requests in flight"
