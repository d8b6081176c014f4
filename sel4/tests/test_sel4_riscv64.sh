#!/usr/bin/env bash
# The seL4 systems on QEMU's riscv64 virt machine (sel4/test_sel4.sh).
exec "$(dirname "$0")/../test_sel4.sh" qemu_virt_riscv64
