#!/usr/bin/env bash
# Plots for the `report` benchmark group, from the `bench` lines in OUT/report.txt:
#   randio_<model>.png  4 KiB random reads and writes against requests in flight: the raw
#                       driver (the measured device limit), the device model's theoretical
#                       limit min(in flight, device queue) / latency, asyncfat, and the
#                       synchronous line (asyncfat with one request in flight)
#   seq.png             sequential MB/s per device model: raw driver, asyncfat at 1 and 8
#   fuse.png            asyncfat's FUSE mount against each peer, per workload (ratio)
# Usage: bench/report_plots.sh OUT [DOCS]: writes the PNGs to OUT, and copies them to DOCS.
set -u
out=$1
docs=${2:-}
lines=$out/report.txt
if ! command -v gnuplot >/dev/null; then
    echo "report: gnuplot not installed (scripts/deps.sh --bench): no plots" >&2
    exit 0
fi
value() { awk -v n="$1" '$1 == "bench" && $2 == n { print $3; exit }' "$lines"; }

# The device models' theoretical limits (latency in us, device queue depth), as in
# bench/report/report_proto.c.
declare -A latency_us=([nvme]=20 [sd]=1000 [lat200]=200)
declare -A device_qd=([nvme]=64 [sd]=2 [lat200]=32)
declare -A titles=([off]="no device model (page cache)" [nvme]="NVMe-like: 20 us, 64 at once, 2 GB/s"
    [sd]="SD-card-like: 1 ms, 2 at once, 20 MB/s" [lat200]="200 us, 32 at once")
made=()

for model in off nvme sd lat200; do
    [ -n "$(value "report_${model}_randread_fs_qd1")" ] || continue
    dat=$out/randio_$model.dat
    {
        echo "# inflight raw_read fs_read sync_read raw_write fs_write sync_write theory"
        for qd in 1 2 4 8 16 32 64; do
            theory=nan
            if [ -n "${latency_us[$model]:-}" ]; then
                theory=$(awk -v q="$qd" -v d="${device_qd[$model]}" -v l="${latency_us[$model]}" \
                    'BEGIN { print (q < d ? q : d) / (l * 1e-6) }')
            fi
            echo "$qd $(value report_${model}_randread_raw_qd$qd) $(value report_${model}_randread_fs_qd$qd)" \
                "$(value report_${model}_randread_fs_qd1) $(value report_${model}_randwrite_raw_qd$qd)" \
                "$(value report_${model}_randwrite_fs_qd$qd) $(value report_${model}_randwrite_fs_qd1) $theory"
        done
    } >"$dat"
    png=$out/randio_$model.png
    gnuplot <<EOF
set terminal pngcairo size 1200,480 font ",10"
set output "$png"
set multiplot layout 1,2 title "4 KiB random I/O, ${titles[$model]}"
set logscale x 2
set logscale y 10
set xlabel "requests in flight"
set ylabel "requests/s"
set key bottom right
set grid
set xrange [0.8:80]
set title "random reads"
plot "$dat" using 1:2 with linespoints lw 2 title "raw driver (device limit)", \
     "" using 1:8 with lines dt 2 lw 1 title "model limit min(N,Q)/latency", \
     "" using 1:3 with linespoints lw 2 title "asyncfat", \
     "" using 1:4 with lines dt 3 lw 2 title "synchronous (1 in flight)"
set title "random writes"
plot "$dat" using 1:5 with linespoints lw 2 title "raw driver (device limit)", \
     "" using 1:8 with lines dt 2 lw 1 title "model limit min(N,Q)/latency", \
     "" using 1:6 with linespoints lw 2 title "asyncfat", \
     "" using 1:7 with lines dt 3 lw 2 title "synchronous (1 in flight)"
unset multiplot
EOF
    made+=("$png")
done

# Sequential throughput per model.
dat=$out/seq.dat
: >"$dat"
for model in off nvme sd; do
    r=$(value "report_${model}_seqread_raw_qd8")
    [ -n "$r" ] || continue
    echo "$model-write $(value report_${model}_seqwrite_raw_qd8) $(value report_${model}_seqwrite_fs_qd1) $(value report_${model}_seqwrite_fs_qd8)" >>"$dat"
    echo "$model-read $r $(value report_${model}_seqread_fs_qd1) $(value report_${model}_seqread_fs_qd8)" >>"$dat"
done
if [ -s "$dat" ]; then
    gnuplot <<EOF
set terminal pngcairo size 900,420 font ",10"
set output "$out/seq.png"
set title "Sequential 256 KiB requests (MB/s, log scale)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y 10
set ylabel "MB/s"
set grid ytics
set key top right
plot "$dat" using 2:xtic(1) title "raw driver, 8 in flight", "" using 3 title "asyncfat, 1 in flight", \
     "" using 4 title "asyncfat, 8 in flight"
EOF
    made+=("$out/seq.png")
fi

# FUSE: asyncfat's speed over each peer's, per workload.
dat=$out/fuse.dat
: >"$dat"
for w in seqwrite seqread tarx treeread create stat remove fio_seqwrite fio_seqread fio_randread_qd1_direct \
    fio_randread_qd1_buffered fio_randread_qd32 fio_randread_8x4; do
    f=$(value report_fuse_vs_fusefat_$w)
    e=$(value report_fuse_vs_exfat_$w)
    x=$(value report_fuse_vs_fuse2fs_$w)
    [ -n "$f$e$x" ] && echo "${w//_/-} ${f:-nan} ${e:-nan} ${x:-nan}" >>"$dat"
done
if [ -s "$dat" ]; then
    gnuplot <<EOF
set terminal pngcairo size 1300,420 font ",10"
set output "$out/fuse.png"
set title "asyncfat's FUSE mount: its speed over each peer's (above 1: asyncfat is faster)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y 10
set ylabel "asyncfat / peer"
set xtics rotate by -25
set grid ytics
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 dt 2
set key top right
plot "$dat" using 2:xtic(1) title "vs fusefat (FAT32)", "" using 3 title "vs exfat-fuse (exFAT)", \
     "" using 4 title "vs fuse2fs (ext4)"
EOF
    made+=("$out/fuse.png")
fi

echo "report: plots: ${made[*]:-none}" >&2
if [ -n "$docs" ] && [ ${#made[@]} -gt 0 ]; then
    mkdir -p "$docs"
    cp "${made[@]}" "$docs/"
fi
