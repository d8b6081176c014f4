#!/usr/bin/env bash
# The asyncfat PD's stacks hold the deepest call path its code can take (sel4/stack_bound.sh):
# a fiber's within the stack size asyncfat.mk builds with (ASYNCFAT_STACK_BYTES), the PD's
# own within the 4 KiB page Microkit gives a PD that names no stack_size. In LionsOS's
# layout a fiber's overflow runs into its neighbour's stack, silently in a release build:
# a change that deepens a path must change the stack size with it.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
if [ -z "${MICROKIT_SDK:-}" ] || [ ! -d "${MICROKIT_SDK:-/nonexistent}" ]; then
    echo "SKIP sel4_stack_bounds: no Microkit SDK (make test MICROKIT_SDK=<microkit-sdk-2.0.1> SDDF=<sddf>)"
    exit 0
fi
stack=$(sed -n 's/^ASYNCFAT_STACK_BYTES ?= \([0-9]*\)$/\1/p' "$root/asyncfat.mk")
pd_stack=4096
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for board in qemu_virt_aarch64 qemu_virt_riscv64; do
    arch=${board#qemu_virt_}
    if ! command -v "${arch}-linux-gnu-gcc" >/dev/null; then
        echo "SKIP sel4_stack_bounds_$arch: ${arch}-linux-gnu-gcc is not installed (scripts/deps.sh)"
        continue
    fi
    if ! "$here/stack_bound.sh" "$board" "$work/$arch" >"$work/$arch.txt" 2>&1; then
        echo "FAIL sel4_stack_bounds_$arch: sel4/stack_bound.sh failed:"
        tail -n 20 "$work/$arch.txt"
        continue
    fi
    fiber=$(sed -n 's/^fiber //p' "$work/$arch.txt")
    pd=$(sed -n 's/^root //p' "$work/$arch.txt")
    if [ -n "$fiber" ] && [ "$fiber" -le "$stack" ]; then
        echo "PASS sel4_stack_bounds_${arch}_fiber: deepest path $fiber of $stack bytes"
    else
        echo "FAIL sel4_stack_bounds_${arch}_fiber: deepest path ${fiber:-?} bytes, stacks of $stack (asyncfat.mk); the path:"
        awk '/^root /{exit} /^# /' "$work/$arch.txt" | head -n 40
    fi
    if [ -n "$pd" ] && [ "$pd" -le "$pd_stack" ]; then
        echo "PASS sel4_stack_bounds_${arch}_pd: deepest path $pd of $pd_stack bytes"
    else
        echo "FAIL sel4_stack_bounds_${arch}_pd: deepest path ${pd:-?} bytes, the PD's stack is $pd_stack; the path:"
        sed -n '/^root/,$p' "$work/$arch.txt" | head -n 40
    fi
done
