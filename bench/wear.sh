#!/usr/bin/env bash
# make bench-wear: writes per device block (bench/wear.c) for this engine ("after") and for
# the engine before the wear work ("before": commit cb76ba8, extracted with git archive and
# built in $BUILD/wear/base), both in one run. Prints `bench` lines, keeps them in
# $BUILD/bench/wear.txt and plots them (bench/wear_plot.sh). WEAR_ONLY=logger,config,camera,tree
# picks workloads.
set -eu
BUILD=${BUILD:-build}
BASE=cb76ba8c665996322a82ddc8af4d99273051fd89
work=$BUILD/wear
mkdir -p "$work" "$BUILD/bench"
if [ ! -f "$work/base/.built" ]; then
    rm -rf "$work/base"
    mkdir -p "$work/base"
    git archive "$BASE" | tar -x -C "$work/base"
    make -C "$work/base" --no-print-directory BUILD=build build/rel/libasyncfat.a >/dev/null
    touch "$work/base/.built"
fi
before=$work/wear_before
after=$BUILD/rel/bench/wear
${CC:-cc} -std=c11 -O2 -D_GNU_SOURCE -I"$work/base" bench/wear.c "$work/base/tests/support/blk_fixture.c" \
    "$work/base/build/rel/libasyncfat.a" -luring -lpthread -o "$before"

lines=$BUILD/bench/wear.txt
{
    "$before" before
    "$after" after
} | tee "$lines"
bench/wear_plot.sh "$BUILD/bench" docs/bench
