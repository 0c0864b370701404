#!/usr/bin/env bash
# transcode.sh INPUT [PROFILE]
#
# Transcodes one video to H.264/AAC MP4. Run by the `transcode` job
# (jobs/transcode.hcl) once per dispatch, but works by hand too.
#
#   INPUT    a local file or an http(s):// URL (downloaded into a temp dir)
#   PROFILE  large: width 1280, CRF 25, AAC 192k
#            small: width 640,  CRF 30, AAC 128k (default; also used for an
#                   empty or unknown profile, and then named "small")
#
# The output is named out-<md5 of the input>-<profile>.mp4 and written to
# $OUTPUT_DIR (default ${NOMAD_ALLOC_DIR:-.}/output, created if missing).
# If that file already exists the conversion is skipped (ffmpeg -n never
# overwrites), so re-running a dispatch is cheap.
#
# Upload: when S3_BUCKET is set AND credentials exist, the file is uploaded
# with `s3cmd -c <cfg> put` to s3://$S3_BUCKET/videos/<name>. Credentials are
# a non-empty access_key in <cfg> = ${S3CFG:-${NOMAD_TASK_DIR:-local}/s3cfg.ini}
# (rendered by the job's template), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
# in the environment. Otherwise the file stays in OUTPUT_DIR.
#
# Needs: ffmpeg (libx264), md5sum, curl or wget for URLs, s3cmd to upload.
set -euo pipefail

prog=${0##*/}

usage() {
    cat <<USAGE
usage: $prog INPUT [PROFILE]

  INPUT    local video file or http(s):// URL
  PROFILE  small (default: 640 wide, CRF 30, AAC 128k) or
           large (1280 wide, CRF 25, AAC 192k); anything else means small

Environment: OUTPUT_DIR, S3_BUCKET, S3CFG, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, NOMAD_ALLOC_DIR, NOMAD_TASK_DIR.
USAGE
}

die() {
    echo "$prog: error: $*" >&2
    exit 1
}

case "${1:-}" in
    -h | --help)
        usage
        exit 0
        ;;
esac
if [ $# -lt 1 ] || [ $# -gt 2 ] || [ -z "$1" ]; then
    usage >&2
    exit 1
fi

input=$1
profile=${2:-small}

case "$profile" in
    large)
        width=1280 crf=25 abitrate=192k
        ;;
    *)
        if [ "$profile" != small ]; then
            echo "Unknown profile '$profile', using small"
        fi
        profile=small
        width=640 crf=30 abitrate=128k
        ;;
esac

command -v ffmpeg >/dev/null 2>&1 || die "ffmpeg not found on PATH"

workdir=$(mktemp -d "${TMPDIR:-/tmp}/transcode.XXXXXX")
partial=""
cleanup() {
    if [ -n "$partial" ]; then rm -f -- "$partial"; fi
    rm -rf -- "$workdir"
}
trap cleanup EXIT

# --- input -----------------------------------------------------------------
case "$input" in
    http://* | https://*)
        src="$workdir/input"
        echo "Downloading $input"
        if command -v curl >/dev/null 2>&1; then
            curl -fsSL --retry 3 -o "$src" -- "$input" ||
                die "download failed: $input"
        elif command -v wget >/dev/null 2>&1; then
            wget -q -O "$src" -- "$input" || die "download failed: $input"
        else
            die "need curl or wget to download $input"
        fi
        [ -s "$src" ] || die "download failed: $input (empty response)"
        ;;
    *)
        src=$input
        [ -e "$src" ] || die "input not found: $input"
        [ -f "$src" ] || die "input is not a regular file: $input"
        [ -r "$src" ] || die "input is not readable: $input"
        ;;
esac

if command -v md5sum >/dev/null 2>&1; then
    md5=$(md5sum <"$src" | cut -d' ' -f1)
elif command -v md5 >/dev/null 2>&1; then
    md5=$(md5 -q <"$src")
else
    die "need md5sum (or md5) to name the output"
fi

# --- transcode -------------------------------------------------------------
output_dir=${OUTPUT_DIR:-${NOMAD_ALLOC_DIR:-.}/output}
mkdir -p -- "$output_dir" || die "cannot create output dir: $output_dir"
name="out-$md5-$profile.mp4"
out="$output_dir/$name"

if [ -e "$out" ]; then
    echo "Skipping: $out exists"
else
    echo "Transcoding $input with profile $profile -> $out"
    # Encode to a hidden temp name next to the target and rename at the end,
    # so a failed or killed run never leaves a truncated file that a later
    # run would mistake for a finished one.
    partial="$output_dir/.$name.$$.partial.mp4"
    if ! ffmpeg -hide_banner -nostdin -loglevel error -n \
        -i "$src" \
        -vf "scale=$width:-2" \
        -c:v libx264 -preset medium -profile:v high -level:v 4.0 \
        -pix_fmt yuv420p -crf "$crf" \
        -c:a aac -b:a "$abitrate" \
        -movflags +faststart \
        "$partial"; then
        die "ffmpeg failed to transcode $input"
    fi
    mv -f -- "$partial" "$out"
    partial=""
fi

# --- upload ----------------------------------------------------------------
bucket=${S3_BUCKET:-}
bucket=${bucket#s3://}
bucket=${bucket%/}
if [ -z "$bucket" ]; then
    echo "Output: $out"
    exit 0
fi

cfg=${S3CFG:-${NOMAD_TASK_DIR:-local}/s3cfg.ini}
if [ -r "$cfg" ] && grep -Eq '^[[:space:]]*access_key[[:space:]]*=[[:space:]]*[^[:space:]]' "$cfg"; then
    :
elif [ -n "${AWS_ACCESS_KEY_ID:-}" ]; then
    # No usable config file: build one from the environment.
    cfg="$workdir/s3cfg.ini"
    (
        umask 077
        printf '[default]\naccess_key = %s\nsecret_key = %s\n' \
            "$AWS_ACCESS_KEY_ID" "${AWS_SECRET_ACCESS_KEY:-}" >"$cfg"
    )
else
    echo "S3_BUCKET is set but no credentials ($cfg has no access_key, AWS_ACCESS_KEY_ID unset); not uploading"
    echo "Output: $out"
    exit 0
fi

command -v s3cmd >/dev/null 2>&1 ||
    die "s3cmd not found on PATH, cannot upload $out to s3://$bucket/videos/$name"
dest="s3://$bucket/videos/$name"
echo "Uploading $out -> $dest"
s3cmd -c "$cfg" put -- "$out" "$dest" || die "upload to $dest failed"
echo "Uploaded: $dest"
