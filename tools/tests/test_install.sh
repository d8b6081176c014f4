#!/usr/bin/env bash
# make install (PREFIX, DESTDIR) of the command and its manual page, and the manual page
# checked against --help: every subcommand, usage line and option the command describes
# is in docs/asyncfat.1, and the page names no subcommand the command lacks. Prints
# PASS/FAIL/SKIP lines.
set -u
BUILD_DIR=$(realpath -m "${BUILD:-build}")
. "$(dirname "$0")/cli_lib.sh"
MAN=$ROOT/docs/asyncfat.1

t_install() {
    local build=$BUILD_DIR
    make -s -C "$ROOT" BUILD="$build" install DESTDIR="$T/stage" PREFIX=/opt/af >make.out 2>&1 || { cat make.out; return 1; }
    [ -x "$T/stage/opt/af/bin/asyncfat" ] && [ -f "$T/stage/opt/af/share/man/man1/asyncfat.1" ] ||
        { find "$T/stage"; return 1; }
    rc 0 "$T/stage/opt/af/bin/asyncfat" --version && has "^asyncfat [0-9]" out || return 1
    cmp "$T/stage/opt/af/share/man/man1/asyncfat.1" "$MAN" || return 1
    make -s -C "$ROOT" BUILD="$build" uninstall DESTDIR="$T/stage" PREFIX=/opt/af >make.out 2>&1 || { cat make.out; return 1; }
    [ -z "$(find "$T/stage" -type f)" ] || { echo "left after uninstall:"; find "$T/stage" -type f; return 1; }
}

# The page as text on one long line per paragraph, blanks squeezed.
render() { groff -man -Tascii -rLL=2000n -P-cbou "$MAN" 2>/dev/null | tr -s ' '; }

# The text of subcommand $1's section of the rendered page.
section() { awk -v s="$1" '/^ [a-z]+$/ { on = ($1 == s); next } /^[A-Z]/ { on = 0 } on' page.txt; }

t_man_page_matches_help() {
    command -v groff >/dev/null || { echo "groff missing"; return 1; }
    groff -man -Tascii -ww -z "$MAN" 2>warn.txt && [ ! -s warn.txt ] || { cat warn.txt; return 1; }
    render >page.txt
    rc 0 "$A" --help || return 1
    local subs bad=0 sub
    subs=$(sed -n '/^Subcommands:/,/^$/s/^  \([a-z]*\) .*/\1/p' out)
    [ -n "$subs" ] || { echo "no subcommands in --help"; return 1; }
    # the options of every subcommand, from the top-level help
    for opt in $(sed -n '/^Options of every subcommand:/,/^$/p' out | grep -o -- '--\?[a-z][a-z-]*' | sort -u); do
        grep -q -- "$opt" page.txt || { echo "man page lacks global option $opt"; bad=1; }
    done
    for sub in $subs; do
        "$A" "$sub" --help >help.txt 2>&1 || { echo "$sub --help failed"; bad=1; continue; }
        section "$sub" >sec.txt
        [ -s sec.txt ] || { echo "man page has no section for $sub"; bad=1; continue; }
        local usage
        usage=$(sed -n 's/^usage: //p' help.txt | tr -s ' ')
        grep -qF -- "$usage" sec.txt || { echo "$sub: man page lacks the usage line '$usage'"; bad=1; }
        # option names at the start of help's option lines (-x, --long, +x)
        for opt in $(grep -E '^ {2,4}[-+]' help.txt | sed 's/   .*//' | grep -oE -- '(--?|\+)[A-Za-z/][A-Za-z-]*' | sort -u); do
            grep -qF -- "$opt" sec.txt || { echo "$sub: man page lacks option $opt"; bad=1; }
        done
    done
    # no section for a subcommand the command does not have
    for sub in $(awk '/^SUBCOMMANDS/ { on = 1; next } /^[A-Z]/ { on = 0 } on && /^ [a-z]+$/ { print $1 }' page.txt); do
        echo "$subs" | grep -qx "$sub" || { echo "man page describes '$sub', which --help does not list"; bad=1; }
    done
    return $bad
}

if command -v groff >/dev/null; then
    run man_page_matches_help t_man_page_matches_help
else
    echo "SKIP man_page_matches_help: groff is not installed"
fi
if [ -x "$BUILD_DIR/rel/asyncfat" ]; then
    run make_install_with_prefix_and_destdir t_install
else
    echo "SKIP make_install_with_prefix_and_destdir: $BUILD_DIR/rel/asyncfat is not built"
fi
exit $failed
