#!/usr/bin/env bash
# Benchmark group `hops`: bench/hops (rates; wake-ups, system calls and CPU per request),
# then instructions per request under callgrind, for each layout and depth: callgrind
# follows the forked driver and server, and the instructions of all processes of two runs
# of HOPS_REQUESTS and twice as many requests are subtracted, so set-up and teardown cancel.
set -eu
build=${BUILD:-build}
prog=$build/rel/bench/hops
"$prog"
if ! command -v valgrind >/dev/null; then
    echo "bench: valgrind not found, no instruction counts" >&2
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=${HOPS_REQUESTS:-2000}
layouts=$("$prog" --layouts)
total_ir() { # layout depth requests
    rm -f "$tmp"/cg.*
    HOPS_LAYOUTS=$1 HOPS_DEPTHS=$2 HOPS_REQUESTS=$3 valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file="$tmp/cg.%p" "$prog" >/dev/null 2>&1
    awk '/^summary:/ { sum += $2 } END { print sum + 0 }' "$tmp"/cg.*
}
for layout in $layouts; do
    for depth in 1 8; do
        a=$(total_ir "$layout" "$depth" "$n")
        b=$(total_ir "$layout" "$depth" $((2 * n)))
        awk -v a="$a" -v b="$b" -v n="$n" -v name="hops_${layout}_qd${depth}_instructions" \
            'BEGIN { printf "bench %s %.0f per_request\n", name, (b - a) / n }'
    done
done
