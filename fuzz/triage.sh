#!/usr/bin/env bash
# Group libFuzzer artifacts by what went wrong: triage.sh TARGET ARTIFACT...
# Prints one line per kind (numbers blurred): count, an example file, the message.
set -u
BUILD=${BUILD:-build}
t=$1
shift
export ASYNCFAT_FUZZ_TEMPLATES=${ASYNCFAT_FUZZ_TEMPLATES:-$(realpath -m "$BUILD/fuzz/templates")}
for a in "$@"; do
    why=$("$BUILD/fuzz/fuzz_$t" "$a" 2>&1 | grep -m 1 -E '^ORACLE|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error|^SUMMARY|deadly signal')
    [ -z "$why" ] && why="(does not fail any more)"
    printf '%s\t%s\t%s\n' "$(echo "$why" | sed -E 's/[0-9]+/#/g; s/0x#[0-9a-f]*/#/g')" "$a" "$why"
done | sort | awk -F '\t' '{n[$1]++; if (!($1 in ex)) {ex[$1]=$2; msg[$1]=$3}} END {for (k in n) printf "%5d  %s\n       %s\n", n[k], ex[k], msg[k]}'
