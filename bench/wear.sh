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
before=$work/wear_before
after=$BUILD/rel/bench/wear
. bench/engine_before.sh
engine_before "$BASE" "$work" bench/wear.c "$before"

# The counts are deterministic; the times are the median of three runs, the two engines
# taking turns (the machine is shared: a single run moves by tens of percent).
runs=$work/runs
rm -rf "$runs"
mkdir -p "$runs"
for i in 1 2 3; do
    "$before" before >"$runs/before.$i"
    "$after" after >"$runs/after.$i"
done
lines=$BUILD/bench/wear.txt
{
    for label in before after; do
        grep -v '_time_' "$runs/$label.1"
        for name in $(awk '$2 ~ /_time_/ { print $2 }' "$runs/$label.1"); do
            cat "$runs/$label".[123] | awk -v n="$name" '$2 == n { print $3 }' | sort -n | sed -n 2p |
                sed "s/^/bench $name /; s/$/ ms/"
        done
    done
} | tee "$lines"
bench/wear_plot.sh "$BUILD/bench" docs/bench
