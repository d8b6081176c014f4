#!/usr/bin/env bash
# Issue 19, finding 7: one make target builds the sanitizer build of the asyncfat command
# (build/san/asyncfat, which the image mutator and the CLI tests run): `make san`.
# Checked with make's dry run into a scratch build tree.
set -u
cd "$(dirname "$0")/../.." || exit 1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
check() {
    local name=$1 goal=$2
    if make -n --no-print-directory "$goal" BUILD="$T/b" V=1 2>&1 | grep -q -- "-o $T/b/san/asyncfat "; then
        echo "PASS $name"
    else
        echo "FAIL $name: 'make $goal' does not link $T/b/san/asyncfat"
    fi
}
check make_san_builds_the_sanitizer_command san
