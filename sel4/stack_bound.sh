#!/usr/bin/env bash
# The static stack bounds of the asyncfat PD for one board, from GCC's call graphs of its
# sources as its debug build compiles them (sel4/stack_depth.py):
#
#   sel4/stack_bound.sh BOARD WORKDIR
#
# prints "fiber <bytes>" (the deepest path from request_main: every request's fiber) and
# "root <bytes>" (from notified: the PD's own stack), each followed by its path as
# "# ..." lines. Needs the board's debug asyncfat.elf (make microkit): calls through
# pointers may reach only the functions it links.
set -eu
board=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD=${BUILD:-build}
case $board in
qemu_virt_aarch64) cc=aarch64-linux-gnu-gcc flags="-mcpu=cortex-a53 -mstrict-align" ;;
qemu_virt_riscv64) cc=riscv64-linux-gnu-gcc flags="-march=rv64imafdc_zicsr_zifencei -mabi=lp64d -mcmodel=medany" ;;
*) echo "stack_bound.sh: unknown board $board" >&2; exit 2 ;;
esac
mkdir -p "$work"
board_include=$MICROKIT_SDK/board/$board/debug/include
for src in "$root"/server/*.c "$root"/fat/*.c "$root"/blk/*.c "$root"/vfs/*.c "$root"/fiberpool/*.c \
    "$root"/fiberflow/fiberflow.c "$root"/platform/microkit/*.c; do
    (cd "$work" && $cc -std=gnu11 -O2 $flags -ffreestanding -fno-tree-loop-distribute-patterns \
        -fno-stack-protector -I"$root" -I"$board_include" -DAF_DEBUG=1 -DASYNCFAT_DEBUG=1 \
        -DASYNCFAT_BUILD_EPOCH=0LL -DFS_COMPONENT_PAINT_STACKS=1 -DFS_SERVER_MAX_CLIENTS=8u \
        -fcallgraph-info=su -c "$src" -o "$(basename "$src").o")
done
${cc%gcc}nm --defined-only "$BUILD/microkit/$board/debug/asyncfat.elf" | awk '$2 ~ /[tT]/ { print $3 }' \
    >"$work/linked.txt"
for entry in request_main:fiber notified:root; do
    python3 "$here/stack_depth.py" "${entry%%:*}" "$work/linked.txt" "$work"/*.ci >"$work/${entry#*:}.txt"
    echo "${entry#*:} $(sed -n 's/^deepest \([0-9]*\) bytes$/\1/p' "$work/${entry#*:}.txt")"
    sed 's/^/# /' "$work/${entry#*:}.txt"
done
