# Shared by the asyncfat command's test scripts (sourced, not run): the command under test
# ($A, the sanitizer build where there is one), a scratch directory ($T, the working
# directory), loop devices made here and removed at exit, and the PASS/FAIL helpers.
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
A=$(realpath -e "$BUILD/san/asyncfat" 2>/dev/null || realpath "$BUILD/rel/asyncfat")
T=$(mktemp -d)
cli_cleanup() {
    if [ -f "$T/.loops" ]; then
        while read -r dev; do losetup -d "$dev" 2>/dev/null; done <"$T/.loops"
    fi
    rm -rf "$T"
}
trap cli_cleanup EXIT
cd "$T" || exit 1
export MTOOLS_SKIP_CHECK=1 LC_ALL=C

failed=0
# run NAME COMMAND...: PASS if the command (a function or program) succeeds.
run() {
    local name=$1
    shift
    if "$@" >"$T/log" 2>&1; then
        echo "PASS $name"
    else
        echo "FAIL $name"
        sed 's/^/    /' "$T/log" | tail -n 20
        failed=1
    fi
}
# rc WANT COMMAND...: run it, keep stdout in out and stderr in err, check the exit code.
rc() {
    local want=$1
    shift
    "$@" >"$T/out" 2>"$T/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        echo "exit $got, wanted $want: $*"
        echo "stdout: $(head -c 600 "$T/out")"
        echo "stderr: $(head -c 600 "$T/err")"
        return 1
    fi
}
has() { grep -q -- "$1" "$2" || { echo "no '$1' in $2: $(head -c 600 "$2")"; return 1; }; }
lacks() { ! grep -q -- "$1" "$2" || { echo "'$1' in $2: $(head -c 600 "$2")"; return 1; }; }
clean() { fsck.fat -n "$1" >"$T/fsck" 2>&1 || { cat "$T/fsck"; return 1; }; }

# loop_device FILE [losetup options]: attach FILE to a free loop device (removed at exit)
# and print its name; fails (printing why on stderr) where loop devices cannot be used.
loop_device() {
    local file=$1 dev
    shift
    dev=$(losetup -f --show "$@" "$file" 2>&1) || { echo "losetup: $dev" >&2; return 1; }
    echo "$dev" >>"$T/.loops"
    echo "$dev"
}
# Why loop devices cannot be used here, or nothing.
loop_unavailable() {
    [ "$(id -u)" -eq 0 ] || { echo "not root (losetup needs it)"; return; }
    command -v losetup >/dev/null || { echo "no losetup"; return; }
    [ -e /dev/loop-control ] || { echo "no /dev/loop-control"; return; }
    losetup -f >/dev/null 2>&1 || echo "no free loop device"
}
