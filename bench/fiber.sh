#!/usr/bin/env bash
# Benchmark group `fiber`: switch timings from bench/fiber, then instructions per switch
# under callgrind. The instruction figure is the self cost (Ir) of the switch routine
# itself (ff_switch; glibc's swapcontext) divided by the number of switches: the loop
# around it is not counted, nor, for swapcontext, the kernel side of its sigprocmask call.
set -eu
prog=${BUILD:-build}/rel/bench/fiber
switches=1000000
"$prog"

if ! command -v valgrind >/dev/null; then
    echo "bench: valgrind not found, no instruction counts" >&2
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Self Ir of one routine, from callgrind_annotate's "Ir  file:function [object]" lines.
# Switching stacks confuses callgrind's call tracking, so the routine shows up several
# times (function, function'2, ...); the file name keeps out code merely labelled with it.
routine_ir() {
    valgrind --tool=callgrind --callgrind-out-file="$tmp/$3.out" "$prog" callgrind "$3" "$switches" \
        >/dev/null 2>&1
    callgrind_annotate --auto=no --threshold=100 "$tmp/$3.out" |
        awk -v pat="$1:$2('[0-9]+)?\$" '
            { for (i = 2; i <= NF; i++) if ($i ~ pat) { gsub(",", "", $1); sum += $1 } }
            END { print sum + 0 }'
}

fiber_ir=$(routine_ir 'switch_[a-z0-9_]+[.]S' ff_switch fiber)
swap_ir=$(routine_ir 'swapcontext[.]S' swapcontext swapcontext)
awk -v ir="$fiber_ir" -v n="$switches" 'BEGIN { printf "bench fiber_switch_instructions %.1f instructions\n", ir / n }'
awk -v ir="$swap_ir" -v n="$switches" 'BEGIN { printf "bench swapcontext_switch_instructions %.1f instructions\n", ir / n }'
