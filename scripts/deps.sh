#!/usr/bin/env bash
# Installs the Debian packages asyncfat needs to build, test and benchmark.
# As root: apt-get install what is missing. Otherwise: print the exact command and fail.
# Quiet and fast (one dpkg-query) when everything is present.
# --bench: also what the benchmarks need (plots, and the file systems `make bench-report`
# compares asyncfat with).
set -eu
packages=(
    gcc clang make binutils pkg-config
    libclang-rt-14-dev
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    gcc-riscv64-linux-gnu libc6-dev-riscv64-cross
    qemu-user
    liburing-dev libfuse3-dev fuse3
    dosfstools mtools
    valgrind
    qemu-system-arm qemu-system-misc opensbi fdisk gdisk python3 procps
)
bench_packages=(
    gnuplot-nox
    fusefat exfat-fuse exfatprogs fuse2fs
    fio
)
[ "${1:-}" = --bench ] && packages+=("${bench_packages[@]}")
missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [ "${status:0:2}" = "ii" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "asyncfat needs these Debian packages; install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
