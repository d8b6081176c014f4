#!/usr/bin/env bash
# One writer per image, and commands that always end: while one asyncfat process writes an
# image, a second writer (cp, mkfs, check --repair) or reader (ls, check) fails at once
# with "IMAGE is in use by another asyncfat process (pid N)" and changes nothing; readers
# share an image; a lock dies with its process; SIGINT and SIGTERM end a command that
# holds an image. (The FUSE mount's part is in test_fuse.sh.) Prints PASS/FAIL lines.
set -u
BUILD=${BUILD:-build}
A=$(realpath -e "$BUILD/san/asyncfat" 2>/dev/null || realpath "$BUILD/rel/asyncfat")
T=$(mktemp -d)
HOLDER=
cleanup() {
    [ -n "$HOLDER" ] && kill -KILL "$HOLDER" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 1
export MTOOLS_SKIP_CHECK=1 LC_ALL=C

failed=0
run() {
    local name=$1 start=$SECONDS
    shift
    if "$@" >"$T/log" 2>&1; then
        echo "PASS $name ($((SECONDS - start))s)"
    else
        echo "FAIL $name ($((SECONDS - start))s)"
        sed 's/^/    /' "$T/log" | tail -n 20
        failed=1
    fi
    if [ -n "$HOLDER" ]; then
        kill -KILL "$HOLDER" 2>/dev/null
        wait "$HOLDER" 2>/dev/null
        HOLDER=
    fi
}
clean() { fsck.fat -n "$1" >"$T/fsck" 2>&1 || { cat "$T/fsck"; return 1; }; }

# The pid of a process with IMAGE open, if any.
opened_by() {
    local p img
    img=$(realpath "$1")
    for p in /proc/[0-9]*; do
        ls -l "$p/fd" 2>/dev/null | grep -q -- "-> $img\$" && { echo "${p#/proc/}"; return 0; }
    done
    return 0
}
# hold_writing IMAGE: an `asyncfat cp` from a FIFO keeps IMAGE open for writing until
# release; HOLDER is its pid.
hold_writing() {
    rm -f "$T/fifo" && mkfifo "$T/fifo" || return 1
    "$A" cp "$T/fifo" "$1:/held.txt" 2>"$T/holder.err" &
    HOLDER=$!
    # Held once it has the image open (its driver's descriptor) and has finished mounting
    # it: it then waits for the FIFO's writer (or data), and writes nothing more until then.
    local wchan
    for _ in $(seq 200); do
        wchan=$(cat "/proc/$HOLDER/wchan" 2>/dev/null)
        ls -l "/proc/$HOLDER/fd" 2>/dev/null | grep -q "$(realpath "$1")" &&
            case $wchan in wait_for_partner | pipe_read | pipe_wait) return 0 ;; esac
        sleep 0.05
    done
    echo "the holder never opened $1 and waited for its input (last wait: ${wchan:-none})"
    return 1
}
release() {
    echo "held while the others were refused" >"$T/fifo"
    wait "$HOLDER"
    local rc=$?
    HOLDER=
    return $rc
}
# refused WANT_RC COMMAND...: fails at once (within 3 s) with exit WANT_RC and the message
# naming the holder.
refused() {
    local want=$1 start
    shift
    start=$(date +%s%N)
    timeout 10 "$@" >"$T/out" 2>"$T/err"
    local got=$? ms=$((($(date +%s%N) - start) / 1000000))
    [ "$got" -eq "$want" ] || { echo "exit $got, wanted $want: $*"; cat "$T/err"; return 1; }
    [ "$ms" -lt 3000 ] || { echo "took $ms ms: $*"; return 1; }
    grep -q "asyncfat: img.img is in use by another asyncfat process (pid $HOLDER)" "$T/err" ||
        { echo "no clear message from: $*"; cat "$T/err"; return 1; }
}

"$A" mkfs img.img --size 64M --fat 32 >/dev/null || { echo "FAIL mkfs"; exit 1; }
echo "a file that was there before" >before.txt
"$A" cp before.txt img.img:/before.txt || { echo "FAIL cp"; exit 1; }
head -c 3000000 /dev/urandom >big.bin
"$A" cp big.bin img.img:/big.bin || { echo "FAIL cp"; exit 1; }

t_second_writer() {
    hold_writing img.img || return 1
    local sum
    sum=$(md5sum <img.img)
    refused 1 "$A" cp before.txt img.img:/second.txt || return 1
    refused 1 "$A" mkdir img.img:/dir || return 1
    refused 1 "$A" mkfs img.img --fat 16 || return 1
    refused 1 "$A" mkfs img.img --size 32M || return 1
    [ "$(stat -c %s img.img)" -eq $((64 << 20)) ] || { echo "mkfs changed the size"; return 1; }
    refused 8 "$A" check --repair img.img || return 1
    # A reader is refused too while a writer has it: it would see a volume in flux.
    refused 1 "$A" ls img.img || return 1
    refused 8 "$A" check img.img || return 1
    [ "$sum" = "$(md5sum <img.img)" ] || { echo "the image changed while refusing"; return 1; }
    release || { cat "$T/holder.err"; return 1; }
    clean img.img && [ "$(mtype -i img.img ::/held.txt)" = "held while the others were refused" ] &&
        [ "$(mtype -i img.img ::/before.txt)" = "a file that was there before" ] &&
        ! mtype -i img.img ::/second.txt >/dev/null 2>&1
}
run a_second_writer_or_reader_of_an_image_in_use_fails_at_once t_second_writer

# Readers share: an `asyncfat cat` writing into a FIFO nobody reads yet keeps the image
# open read-only until the test drains it.
t_readers_share() {
    rm -f "$T/out" && mkfifo "$T/out" || return 1
    "$A" cat img.img:/big.bin >"$T/out" &
    local reader=$!
    exec 4<"$T/out"
    for _ in $(seq 100); do
        [ "$(opened_by img.img)" = "$reader" ] && break
        sleep 0.05
    done
    local ok=0
    if [ "$(opened_by img.img)" != "$reader" ]; then
        echo "the reader never opened the image"
    elif ! "$A" ls img.img >"$T/ls.out" 2>"$T/ls.err" || ! grep -q big.bin "$T/ls.out"; then
        echo "a second reader was refused"
        cat "$T/ls.err"
    elif ! "$A" cat img.img:/before.txt | grep -q "there before"; then
        echo "a third reader was refused"
    elif "$A" mkdir img.img:/while-read 2>"$T/w.err"; then
        echo "a writer got in beside a reader"
    elif ! grep -q "img.img is in use by another asyncfat process (pid $reader)" "$T/w.err"; then
        cat "$T/w.err"
    else
        ok=1
    fi
    cmp - big.bin <&4 || ok=0
    exec 4<&-
    wait "$reader" || ok=0
    [ "$ok" = 1 ] && clean img.img
}
run readers_share_an_image_and_exclude_writers t_readers_share

# A lock goes with its process: after a SIGKILL the image is usable at once.
t_killed_holder() {
    hold_writing img.img || return 1
    kill -KILL "$HOLDER"
    wait "$HOLDER" 2>/dev/null
    HOLDER=
    "$A" mkdir img.img:/after-kill || return 1
    clean img.img
}
run a_killed_holder_leaves_no_lock t_killed_holder

# SIGINT and SIGTERM end a command that holds an image, even while it waits for its input
# (at once when the signal interrupts the wait; within the command's 10 s grace when it
# came just before the wait began, where the command could not see it).
t_signals() {
    local sig
    for sig in INT TERM; do
        hold_writing img.img || return 1
        kill -"$sig" "$HOLDER"
        for _ in $(seq 150); do kill -0 "$HOLDER" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$HOLDER" 2>/dev/null; then
            echo "SIG$sig did not end the command"
            kill -KILL "$HOLDER"
            wait "$HOLDER" 2>/dev/null
            HOLDER=
            return 1
        fi
        wait "$HOLDER" 2>/dev/null
        HOLDER=
        "$A" mkdir "img.img:/after-$sig" || return 1
    done
}
run sigint_and_sigterm_end_a_command_holding_an_image t_signals

exit $failed
