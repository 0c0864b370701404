#!/usr/bin/env bash
# dispatch.sh FILE
#
# For every line of FILE (the last one too, even without a trailing newline)
# print "Input file: <line>" and dispatch the `transcode` job twice, detached:
# once with profile=small and once with profile=large.
#
# Blank (empty or whitespace-only) lines are skipped: the seed script
# dispatched them too, but a dispatch with an empty `input` is rejected by
# the server (input is meta_required), so it could only produce errors.
# Lines are otherwise passed through verbatim (no trimming, no comments).
#
# The dispatch client is ${DISPATCH_BIN:-dispatch}; its usual environment
# (e.g. the server address) applies. Stops at the first failed dispatch.
set -euo pipefail

prog=${0##*/}

usage() {
    cat <<USAGE
usage: $prog FILE

For each line of FILE (an input path or URL), print "Input file: <line>" and run
  \${DISPATCH_BIN:-dispatch} job dispatch -detach -meta input=<line> -meta profile=small transcode
  \${DISPATCH_BIN:-dispatch} job dispatch -detach -meta input=<line> -meta profile=large transcode
Blank lines are skipped (the server rejects an empty input).
USAGE
}

if [ $# -ne 1 ]; then
    usage >&2
    exit 1
fi
case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
esac

file=$1
[ -r "$file" ] || {
    echo "$prog: error: cannot read $file" >&2
    exit 1
}

bin=${DISPATCH_BIN:-dispatch}

# `|| [ -n "$line" ]` handles a last line without a trailing newline.
# stdin of the dispatch client is /dev/null so it cannot eat the file's lines.
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
        *[![:space:]]*) ;;
        *) continue ;;
    esac
    echo "Input file: $line"
    for profile in small large; do
        "$bin" job dispatch -detach -meta "input=$line" -meta "profile=$profile" transcode </dev/null
    done
done <"$file"
