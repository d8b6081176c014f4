# Sourced by the benchmarks that compare this engine with an earlier one in one run.
# engine_before COMMIT WORK SOURCE OUT: extract COMMIT's tree into WORK/base with git
# archive and build its library there (once: WORK/base/.built marks it), then build the
# benchmark program SOURCE (bench/<name>.c of this tree) against that library as OUT.
engine_before() {
    local commit=$1 work=$2 source=$3 out=$4
    if [ ! -f "$work/base/.built" ]; then
        rm -rf "$work/base"
        mkdir -p "$work/base"
        git archive "$commit" | tar -x -C "$work/base"
        make -C "$work/base" --no-print-directory BUILD=build build/rel/libasyncfat.a >/dev/null
        touch "$work/base/.built"
    fi
    ${CC:-cc} -std=c11 -O2 -D_GNU_SOURCE -I"$work/base" "$source" "$work/base/tests/support/blk_fixture.c" \
        "$work/base/build/rel/libasyncfat.a" -luring -lpthread -o "$out"
}
