#!/usr/bin/env bash
# make-samples.sh [DIR]
#
# Makes the short test clips that samples/one.txt and samples/many.txt name
# (/tmp/dispatch-samples/sample-01.mp4 ... sample-09.mp4, the default DIR), with
# ffmpeg's built-in test sources: no download, so the samples work offline.
#
#   scripts/make-samples.sh && scripts/dispatch.sh samples/one.txt
#
# Each clip is 3 s of a different test pattern (320x240, 25 fps, H.264) with a tone
# (AAC). Existing clips are kept; a clip is written to a temporary name and renamed, so
# several runs at once never leave a half-written file. Needs ffmpeg with libx264.
set -euo pipefail

prog=${0##*/}
dir=${1:-/tmp/dispatch-samples}

case "$dir" in
    -h | --help)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac
command -v ffmpeg >/dev/null 2>&1 || {
    echo "$prog: error: ffmpeg is not installed (apt-get install ffmpeg)" >&2
    exit 1
}
mkdir -p "$dir"

patterns=(testsrc smptebars rgbtestsrc testsrc2 smptehdbars mandelbrot yuvtestsrc cellauto life)
n=0
for pattern in "${patterns[@]}"; do
    n=$((n + 1))
    out=$(printf '%s/sample-%02d.mp4' "$dir" "$n")
    if [ -s "$out" ]; then
        continue
    fi
    tmp=$(mktemp "$dir/.sample-XXXXXX")
    ffmpeg -nostdin -y -loglevel error \
        -f lavfi -i "$pattern=size=320x240:rate=25" \
        -f lavfi -i "sine=frequency=$((220 * n)):sample_rate=44100" \
        -t 3 -c:v libx264 -pix_fmt yuv420p -c:a aac -f mp4 "$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$out"
    echo "made $out ($pattern)"
done
echo "samples ready in $dir"
