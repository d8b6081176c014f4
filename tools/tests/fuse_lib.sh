# Shared by the FUSE mount's test scripts (sourced, not run). Before sourcing, set
# FUSE_TESTS to the script's test names (each is reported SKIP where FUSE cannot be used).
# Gives the command under test ($A, the release build: the mount runs as users run it;
# FUSE_COMMAND names another, FUSE_PREFIX goes before every test's name, FUSE_SKIP skips
# them all with its reason: test_fuse_ring.sh runs the suites again that way), a
# scratch directory ($T, the working directory), the mount point ($M) and the mount's
# process ($PID, unmounted at exit), and the helpers below.
BUILD=${BUILD:-build}
A=$(realpath "${FUSE_COMMAND:-$BUILD/rel/asyncfat}")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T=$(mktemp -d)
M=$T/mnt
PID=
fuse_cleanup() {
    if [ -n "$PID" ]; then
        fusermount3 -u "$M" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    rm -rf "$T"
}
trap fuse_cleanup EXIT
cd "$T" || exit 1
mkdir -p "$M"
export MTOOLS_SKIP_CHECK=1 LC_ALL=C

skip_all() {
    for t in $FUSE_TESTS; do echo "SKIP ${FUSE_PREFIX:-}$t: $1"; done
    exit 0
}
[ -z "${FUSE_SKIP:-}" ] || skip_all "$FUSE_SKIP"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
command -v fusermount3 >/dev/null || skip_all "no fusermount3"
command -v python3 >/dev/null || skip_all "no python3"

failed=0
# run NAME COMMAND...: PASS if the command succeeds, with the seconds it took.
run() {
    local name=${FUSE_PREFIX:-}$1 start=$SECONDS
    shift
    if "$@" >"$T/log" 2>&1; then
        echo "PASS $name ($((SECONDS - start))s)"
    else
        echo "FAIL $name ($((SECONDS - start))s)"
        sed 's/^/    /' "$T/log" | tail -n 25
        failed=1
        # a mount the failed test left behind would fail the next ones too
        if [ -n "$PID" ]; then
            fusermount3 -u "$M" 2>/dev/null || fusermount3 -u -z "$M" 2>/dev/null
            wait "$PID" 2>/dev/null
            PID=
        fi
    fi
}
wait_mounted() {
    for _ in $(seq 100); do
        mountpoint -q "$M" && return 0
        kill -0 "$PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# mount_fg IMAGE [OPTIONS...]: mount in the foreground, in the background of this shell
# (the mount's stderr in $T/mount.err, shown if it fails).
mount_fg() {
    "$A" mount "$@" "$M" -f 2>"$T/mount.err" &
    PID=$!
    wait_mounted || { cat "$T/mount.err"; return 1; }
}
unmount_wait() {
    fusermount3 -u "$M" || return 1
    wait "$PID"
    local rc=$?
    PID=
    return $rc
}
# After a signal: wait up to 10 s for the mount process to end by itself, and return its
# exit status; if it does not, unmount it (so that nothing hangs) and fail.
# ends_in_10s PROCESS: true once it has ended, false if it still runs after 10 s.
ends_in_10s() {
    for _ in $(seq 100); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$1" 2>/dev/null
}
wait_signalled() {
    if ! ends_in_10s "$PID"; then
        echo "the mount ignored the signal"
        fusermount3 -u "$M"
        wait "$PID"
        PID=
        return 99
    fi
    wait "$PID"
    local rc=$?
    PID=
    return $rc
}
clean() { fsck.fat -n "$1" >"$T/fsck" 2>&1 || { cat "$T/fsck"; return 1; }; }

# fuse_first_mount IMAGE: the first mount, which tells whether FUSE can be used here
# (else every test is skipped); the image stays mounted.
fuse_first_mount() {
    mount_fg "$1" && return 0
    if grep -q "^fuse: \|/dev/fuse\|fusermount" "$T/mount.err"; then
        skip_all "cannot mount FUSE here: $(head -c 200 "$T/mount.err")"
    fi
    echo "FAIL mount: $(cat "$T/mount.err")"
    exit 1
}
