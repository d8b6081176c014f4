#!/usr/bin/env bash
# Runs test programs and shell tests, and counts their PASS/FAIL/SKIP lines.
# Programs under */cross/<arch>/ run under qemu-user for that architecture.
# A program that exits non-zero without printing a FAIL line counts as one failure.
# TEST_JOBS (default: number of cores) programs run at once; TEST_TIMEOUT seconds each.
# A program that fails runs once more, alone, after all the others (several of them check
# timing or boot QEMU, and a loaded 2-core machine can starve them); its result is the
# second run's, and every such program is listed at the end with its first run's failures,
# so an intermittent failure is reported, never hidden. TEST_RETRY=0 turns that off.
set -u
jobs=${TEST_JOBS:-$(nproc)}
limit=${TEST_TIMEOUT:-600}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

runner_for() {
    case "$1" in
        */cross/aarch64/*) echo "qemu-aarch64" ;;
        */cross/riscv64*/*) echo "qemu-riscv64" ;;
        *.sh) echo "bash" ;;
        *) echo "" ;;
    esac
}

run_one() {
    local i=$1 t=$2 runner
    runner=$(runner_for "$t")
    local start=$SECONDS
    timeout --kill-after=10 "$limit" $runner "$t" >"$out/$i.log" 2>&1
    echo $? >"$out/$i.rc"
    echo $((SECONDS - start)) >"$out/$i.time"
}

failed_in() { [ "$(cat "$out/$1.rc")" -ne 0 ] || grep -q '^FAIL ' "$out/$1.log"; }

i=0
for t in "$@"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    run_one $i "$t" &
    i=$((i + 1))
done
wait

retried=""
if [ "${TEST_RETRY:-1}" != 0 ]; then
    i=0
    for t in "$@"; do
        if failed_in $i; then
            mv "$out/$i.log" "$out/$i.first.log"
            first_rc=$(cat "$out/$i.rc")
            run_one $i "$t"
            echo "---- ${t#"${BUILD:-build}/"}: first run (exit $first_rc), before it ran again ----"
            tail -n 40 "$out/$i.first.log"
            echo "----"
            retried="$retried${t#"${BUILD:-build}/"}: first run (exit $first_rc): $(grep -m 3 '^FAIL ' "$out/$i.first.log" | cut -c1-200 | tr '\n' ' '); second run: $(failed_in $i && echo failed || echo passed)
"
        fi
        i=$((i + 1))
    done
fi

passed=0 failed=0 skipped=0 failures=""
i=0
for t in "$@"; do
    log=$out/$i.log rc=$(cat "$out/$i.rc")
    p=$(grep -c '^PASS ' "$log") f=$(grep -c '^FAIL ' "$log") s=$(grep -c '^SKIP ' "$log")
    name=${t#"${BUILD:-build}/"}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        [ "$rc" -eq 124 ] && echo "FAIL $name: timed out after ${limit}s" || echo "FAIL $name: exit status $rc"
    fi
    if [ "$f" -gt 0 ]; then
        echo "---- $name (exit $rc) ----"
        tail -n 60 "$log"
        echo "----"
        failures="$failures$name: $(grep -m 3 '^FAIL ' "$log" | cut -c1-200 | tr '\n' ' ')(exit $rc)
"
    fi
    printf '%-48s %4d passed %3d failed %3d skipped  %4ss\n' "$name" "$p" "$f" "$s" "$(cat "$out/$i.time")"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    i=$((i + 1))
done
# The failures again at the end, where a log cut to its tail still shows them.
[ -n "$retried" ] && printf 'programs that failed and ran again:\n%s' "$retried"
[ -n "$failures" ] && printf 'failed programs:\n%s' "$failures"
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
