#!/usr/bin/env bash
# install.sh: install Dispatch as a systemd service.
#
#   scripts/install.sh [--prefix DIR] [--destdir DIR] [--sysconfdir DIR]
#                      [--localstatedir DIR] [--binary FILE] [--force]
#
# Installs (defaults in brackets):
#   PREFIX/bin/dispatch                       the binary [target/release/dispatch]
#   PREFIX/libexec/dispatch/transcode.sh      commands the shipped jobs run (task_path)
#   PREFIX/share/dispatch/                    jobs/, samples/, deploy/ (Prometheus, Grafana,
#                                             Datadog, ACL policies), scripts/dispatch.sh, make-samples.sh,
#                                             and the pristine config and env file
#   PREFIX/share/doc/dispatch/README.md
#   SYSCONFDIR/systemd/system/dispatch.service   [SYSCONFDIR = /etc]
#   SYSCONFDIR/dispatch/dispatch.hcl          the config (deploy/dispatch.hcl)
#   SYSCONFDIR/dispatch/conf.d/               drop-ins read after it, in name order
#   SYSCONFDIR/default/dispatch               the unit's environment file
#   LOCALSTATEDIR/lib/dispatch                the data dir, mode 0750 [LOCALSTATEDIR = /var]
# Paths inside the unit and the config follow PREFIX, SYSCONFDIR and LOCALSTATEDIR.
#
# --destdir DIR stages everything under DIR (for packaging): the installed files still
# name the final paths.
#
# Config files you changed are kept: the new version is written next to them as
# <file>.new and a note says so. --force replaces them (your version is saved as
# <file>.old). Unchanged ones (identical to what the previous install put there) are
# updated. The binary, the unit and everything under PREFIX are always replaced.
#
# Nothing is started: the last lines print the systemctl commands to run.
set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "$prog: error: $*" >&2
    exit 1
}

prefix=/usr/local
destdir=
sysconfdir=/etc
localstatedir=/var
binary=$repo/target/release/dispatch
force=0

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
        --destdir=*) destdir=${1#*=}; shift ;;
        --sysconfdir) sysconfdir=${2:?--sysconfdir needs a directory}; shift 2 ;;
        --sysconfdir=*) sysconfdir=${1#*=}; shift ;;
        --localstatedir) localstatedir=${2:?--localstatedir needs a directory}; shift 2 ;;
        --localstatedir=*) localstatedir=${1#*=}; shift ;;
        --binary) binary=${2:?--binary needs a file}; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --force) force=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

for dir in "$prefix" "$sysconfdir" "$localstatedir"; do
    case "$dir" in
        /*) ;;
        *) die "$dir: --prefix, --sysconfdir and --localstatedir must be absolute paths" ;;
    esac
done
case "$destdir" in
    "" | /*) ;;
    *) die "$destdir: --destdir must be an absolute path" ;;
esac
[ -x "$binary" ] || die "$binary: no such executable; build it first (cargo build --release) or pass --binary FILE"

bindir=$prefix/bin
libexecdir=$prefix/libexec/dispatch
sharedir=$prefix/share/dispatch
docdir=$prefix/share/doc/dispatch
confdir=$sysconfdir/dispatch
unitdir=$sysconfdir/systemd/system
datadir=$localstatedir/lib/dispatch

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The shipped files name the default paths; rewrite them for this install.
render() {
    sed -e "s|/usr/local/bin/dispatch|$bindir/dispatch|g" \
        -e "s|/usr/local/libexec/dispatch|$libexecdir|g" \
        -e "s|/usr/local/share/doc/dispatch|$docdir|g" \
        -e "s|/etc/default/dispatch|$sysconfdir/default/dispatch|g" \
        -e "s|/etc/dispatch|$confdir|g" \
        -e "s|/var/lib/dispatch|$datadir|g" \
        "$1" >"$2"
}

put() { # put MODE SRC DEST: copy, replacing DEST
    install -D -m "$1" "$2" "$destdir$3"
}

# A config file: installed if missing; updated if unchanged since the last install
# (pristine copy in sharedir); kept if changed (new version as .new) unless --force.
put_config() { # put_config SRC DEST PRISTINE
    local src=$1 dest=$destdir$2 pristine=$destdir$3
    if [ ! -e "$dest" ]; then
        install -D -m 0640 "$src" "$dest"
        echo "installed $2"
    elif cmp -s "$src" "$dest"; then
        echo "unchanged $2"
    elif [ -e "$pristine" ] && cmp -s "$pristine" "$dest"; then
        install -m 0640 "$src" "$dest"
        echo "updated   $2 (you had not changed it)"
    elif [ "$force" -eq 1 ]; then
        cp -p "$dest" "$dest.old"
        install -m 0640 "$src" "$dest"
        echo "replaced  $2 (--force; your version is $2.old)"
    else
        install -m 0640 "$src" "$dest.new"
        echo "kept      $2: it has local changes; the new version is $2.new (compare, merge, or rerun with --force)" >&2
    fi
}

render "$repo/deploy/systemd/dispatch.service" "$tmp/dispatch.service"
render "$repo/deploy/dispatch.hcl" "$tmp/dispatch.hcl"
render "$repo/deploy/systemd/dispatch.env" "$tmp/dispatch.env"

# Config files first: their pristine copies from the last install are still in place.
put_config "$tmp/dispatch.hcl" "$confdir/dispatch.hcl" "$sharedir/dispatch.hcl"
put_config "$tmp/dispatch.env" "$sysconfdir/default/dispatch" "$sharedir/dispatch.env"

put 0755 "$binary" "$bindir/dispatch"
put 0755 "$repo/scripts/transcode.sh" "$libexecdir/transcode.sh"
put 0644 "$tmp/dispatch.service" "$unitdir/dispatch.service"
put 0644 "$tmp/dispatch.hcl" "$sharedir/dispatch.hcl"
put 0644 "$tmp/dispatch.env" "$sharedir/dispatch.env"
put 0755 "$repo/scripts/dispatch.sh" "$sharedir/dispatch.sh"
put 0755 "$repo/scripts/make-samples.sh" "$sharedir/make-samples.sh"
put 0644 "$repo/README.md" "$docdir/README.md"
for f in "$repo"/jobs/* "$repo"/samples/*; do
    put 0644 "$f" "$sharedir/${f#"$repo"/}"
done
while IFS= read -r f; do
    put 0644 "$f" "$sharedir/${f#"$repo"/}"
done < <(find "$repo/deploy/prometheus" "$repo/deploy/grafana" "$repo/deploy/datadog" "$repo/deploy/acl" -type f | sort)
install -d -m 0750 "$destdir$datadir"
install -d -m 0755 "$destdir$confdir/conf.d"

echo "installed Dispatch into ${destdir:-/} (prefix $prefix)"
if [ -z "$destdir" ]; then
    echo "next: systemctl daemon-reload && systemctl enable --now dispatch"
fi
