#!/usr/bin/env bash
# Plot for the `wear` benchmark group, from the `bench` lines in OUT/wear.txt: wear.png,
# the most-written block of each region (reserved sectors, FAT 1, FAT 2, directories, file
# data) per workload, before and after the wear work, on a log scale.
# Usage: bench/wear_plot.sh OUT [DOCS]: writes OUT/wear.png and copies it to DOCS.
set -u
out=$1
docs=${2:-}
lines=$out/wear.txt
if ! command -v gnuplot >/dev/null; then
    echo "wear: gnuplot not installed (scripts/deps.sh --bench): no plot" >&2
    exit 0
fi
value() { awk -v n="$1" '$1 == "bench" && $2 == n { print $3; exit }' "$lines"; }
dat=$out/wear.dat
{
    echo "# case before after"
    for wl in logger config camera tree; do
        for region in boot fat1 dir data; do
            b=$(value "wear_${wl}_${region}_max_before")
            a=$(value "wear_${wl}_${region}_max_after")
            [ -n "$b" ] && [ -n "$a" ] && echo "$wl/$region $b $a"
        done
    done
} >"$dat"
[ "$(wc -l <"$dat")" -gt 1 ] || exit 0
gnuplot <<PLOT
set terminal pngcairo size 1200,480 font ",10"
set output "$out/wear.png"
set title "most-written device block per region (288 MiB FAT32 card; FAT 2 as FAT 1)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y 10
set yrange [0.8:*]
set ylabel "writes to that block"
set xtics rotate by -40
set grid ytics
set key top right
plot "$dat" using 2:xtic(1) title "before", "" using 3 title "after"
PLOT
[ -n "$docs" ] && cp "$out/wear.png" "$docs/"
exit 0
