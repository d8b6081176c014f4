#!/usr/bin/env bash
# Fuzzing in `make test`: every reproduction in fuzz/recipes (PASS, FAIL, or SKIP for a
# known failure whose fix is on another branch), then a short run of each libFuzzer target
# (FUZZ_TEST_RUNS inputs after its seed corpus, fixed seed) and of the image mutator's
# campaign (FUZZ_TEST_ROUNDS rounds, fixed seed). A failure of a short run that
# fuzz/known-failures lists is a SKIP naming the branch that fixes it.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
RUNS=${FUZZ_TEST_RUNS:-100}
ROUNDS=${FUZZ_TEST_ROUNDS:-3}
M=$BUILD/san/fuzz/imgmut
F=$BUILD/fuzz
for tool in mkfs.fat fsck.fat mcopy mdir; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP fuzz: $tool is not installed (scripts/deps.sh)"
        exit 0
    fi
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export ASYNCFAT_FUZZ_TEMPLATES=$(realpath -m "$F/templates")
export TMPDIR=$T

# The branch that fixes a failure (its text on stdin), or nothing.
known_branch() {
    local text
    text=$(cat)
    while read -r branch pattern; do
        case "$branch" in '#'* | '') continue ;; esac
        if [[ "$text" == *"$pattern"* ]]; then
            echo "$branch"
            return
        fi
    done <fuzz/known-failures
}

"$M" --asyncfat "$BUILD/san/asyncfat" --fuzz-dir "$F" replay fuzz/recipes/*.recipe

if ! "$M" corpus "$T/corpus" >"$T/corpus.log" 2>&1; then
    echo "FAIL fuzz_corpus: $(tail -n 3 "$T/corpus.log")"
    exit 1
fi
for t in bpb dir check server; do
    log=$T/fuzz-$t.log
    "$F/fuzz_$t" -runs="$RUNS" -seed=1 -timeout=120 -rss_limit_mb=4096 -artifact_prefix="$T/" \
        -print_final_stats=1 "$T/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    if [ "$rc" -eq 0 ]; then
        echo "PASS fuzz_${t}_short_run (${execs:-?} inputs)"
        continue
    fi
    why=$(grep -m 1 -E '^ORACLE|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error|^SUMMARY' "$log")
    branch=$(echo "$why" | known_branch)
    if [ -n "$branch" ]; then
        echo "SKIP fuzz_${t}_short_run: known failure, fixed on branch $branch ($why)"
    else
        echo "FAIL fuzz_${t}_short_run: ${why:-exit $rc} (input saved in the log's directory)"
        tail -n 30 "$log"
    fi
done

"$M" --asyncfat "$BUILD/san/asyncfat" --fuzz-dir "$F" campaign --rounds "$ROUNDS" --seed 1 --out "$T/found" \
    >"$T/campaign.log" 2>&1
summary=$(grep -m 1 '^imgmut campaign:' "$T/campaign.log")
if [ -z "$summary" ]; then
    echo "FAIL imgmut_short_campaign: $(tail -n 3 "$T/campaign.log")"
    exit 1
fi
unknown=0 known=""
while read -r line; do
    branch=$(echo "$line" | known_branch)
    if [ -n "$branch" ]; then
        known="$known $branch"
    else
        echo "FAIL imgmut_short_campaign: $line"
        cat "$T"/found/*.recipe 2>/dev/null | head -n 40
        unknown=1
    fi
done < <(sed -n 's/^imgmut: new failure [0-9]* ([^)]*): //p' "$T/campaign.log")
if [ "$unknown" -eq 0 ] && [ -n "$known" ]; then
    echo "SKIP imgmut_short_campaign: known failure, fixed on branch$known ($summary)"
elif [ "$unknown" -eq 0 ]; then
    echo "PASS imgmut_short_campaign ($summary)"
fi
