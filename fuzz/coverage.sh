#!/usr/bin/env bash
# make fuzz-coverage: replay each target's corpus ($BUILD/fuzz/corpus/<target>, grown by
# make fuzz) through its coverage build ($BUILD/fuzzcov) and report the line coverage of
# the engine, the checker and the server (fat/*.c, server/*.c): per target, then all
# targets together. Oracles are off here (ASYNCFAT_FUZZ_SKIP='*'): this measures, it does
# not judge.
set -u
BUILD=${BUILD:-build}
C=$BUILD/fuzzcov
P=$C/profiles
rm -rf "$P"
mkdir -p "$P"
export ASYNCFAT_FUZZ_TEMPLATES=$(realpath -m "$BUILD/fuzz/templates") ASYNCFAT_FUZZ_SKIP='*'
profdata=$(command -v llvm-profdata-14 || command -v llvm-profdata)
cov=$(command -v llvm-cov-14 || command -v llvm-cov)
sources=$(ls fat/*.c server/*.c)
objects=()
for t in "$@"; do
    [ -d "$BUILD/fuzz/corpus/$t" ] || { echo "no corpus for $t (run make fuzz first)"; continue; }
    LLVM_PROFILE_FILE="$P/$t-%p.profraw" "$C/fuzz_$t" -runs=0 "$BUILD/fuzz/corpus/$t" >"$P/$t.log" 2>&1
    "$profdata" merge -sparse -o "$P/$t.profdata" "$P/$t"-*.profraw
    echo "== fuzz_$t ($(ls "$BUILD/fuzz/corpus/$t" | wc -l) corpus inputs)"
    "$cov" report "$C/fuzz_$t" -instr-profile="$P/$t.profdata" $sources | awk 'NR <= 2 || /^TOTAL/ || /fat_check|commands|fat_dir|fat_bpb/'
    objects+=(-object "$C/fuzz_$t")
done
[ ${#objects[@]} -gt 0 ] || exit 1
"$profdata" merge -sparse -o "$P/all.profdata" "$P"/*.profraw
echo "== all targets together"
"$cov" report "${objects[@]:1}" -instr-profile="$P/all.profdata" $sources
