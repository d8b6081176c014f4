#!/usr/bin/env bash
# Benchmark group `server`: request rates through the real multi-process system on a
# latency-modelled device (bench/server), then server instructions per request counted by
# callgrind inside the server's event-loop pass (bench/server_cpu).
set -eu
build=${BUILD:-build}
"$build/rel/bench/server"
if ! command -v valgrind >/dev/null; then
    echo "bench: valgrind not found, no instruction count" >&2
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$tmp/cpu.out" \
    "$build/rel/bench/server_cpu" >"$tmp/cpu.txt" 2>/dev/null
requests=$(awk '/^requests/ {print $2}' "$tmp/cpu.txt")
total=$(awk '/^summary:/ {print $2}' "$tmp/cpu.out")
awk -v ir="$total" -v n="$requests" 'BEGIN { printf "bench server_instructions_per_request %.0f instructions\n", ir / n }'
