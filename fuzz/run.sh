#!/usr/bin/env bash
# make fuzz: run each named libFuzzer target (bpb, dir, check, server) for FUZZ_SECONDS on a
# corpus made at run time, and `imgmut` for the image mutator's campaign (`imgmut-walkers`:
# cycles and deep trees for the command's tree walkers). One at a time, niced: the
# machine's cores are shared. A target that finds a crash or an oracle failure is started
# again until its time is up; what it found lands in $BUILD/fuzz/artifacts/<target>/
# (libFuzzer inputs: group them with fuzz/triage.sh, turn one into a recipe with
# `imgmut from-input`) and $BUILD/fuzz/found/ (campaign recipes). ASYNCFAT_FUZZ_SKIP
# ('|'-separated pieces of oracle messages) looks past known failures.
set -u
BUILD=${BUILD:-build}
SECONDS_EACH=${FUZZ_SECONDS:-60}
F=$BUILD/fuzz
export ASYNCFAT_FUZZ_TEMPLATES=$(realpath -m "$F/templates")
[ -d "$F/corpus/server" ] || "$BUILD/san/fuzz/imgmut" corpus "$F/corpus" || exit 1
status=0
for t in "$@"; do
    case "$t" in
    imgmut | imgmut-walkers)
        mkdir -p "$F/found"
        walkers=$([ "$t" = imgmut-walkers ] && echo --walkers)
        # Reads through the FUSE mount too, where FUSE can be used.
        mount=$([ -c /dev/fuse ] && command -v fusermount3 >/dev/null && echo --mount)
        nice "$BUILD/san/fuzz/imgmut" --asyncfat "$BUILD/san/asyncfat" --fuzz-dir "$F" campaign $walkers $mount \
            --seconds "$SECONDS_EACH" --seed "${FUZZ_SEED:-$RANDOM}" --out "$F/found" || status=1
        continue
        ;;
    esac
    mkdir -p "$F/artifacts/$t" "$F/corpus/$t"
    start=$(date +%s) execs=0 crashes=0 cov="?"
    while :; do
        left=$((SECONDS_EACH - ($(date +%s) - start)))
        [ "$left" -gt 0 ] || break
        log=$F/fuzz-$t.log
        nice "$F/fuzz_$t" -max_total_time="$left" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 \
            -artifact_prefix="$F/artifacts/$t/" "$F/corpus/$t" >"$log" 2>&1
        rc=$?
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        [ -z "$n" ] && n=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed 's/^#\([0-9]*\).*/\1/')
        execs=$((execs + ${n:-0}))
        c=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -n 1 | sed 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/\1 edges, \2 features/')
        [ -n "$c" ] && cov=$c
        [ "$rc" -eq 0 ] && break
        crashes=$((crashes + 1))
        grep -m 1 -E '^ORACLE|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error|^SUMMARY' "$log"
        status=1
    done
    echo "fuzz_$t: $execs executions in ${SECONDS_EACH}s, coverage $cov, $crashes failures" \
        "($(ls "$F/artifacts/$t" | wc -l) inputs in $F/artifacts/$t)"
done
exit $status
