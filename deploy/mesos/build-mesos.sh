#!/usr/bin/env bash
# build-mesos.sh: build Apache Mesos from Apache's source release and install it in
# /opt/mesos (mesos-master, mesos-agent, libmesos). Debian 12, as root.
#
# Why a build: no Linux distribution ships Mesos packages any more (the Mesosphere
# repositories are gone) and Apache publishes source only. Building takes about an hour
# on 2 cores and needs 4+ GB of memory, so do it once: in a machine image
# (deploy/terraform/aws/image) or once per VM (DISPATCH_VAGRANT_MESOS=1).
#
# Environment:
#   MESOS_VERSION   release to build (default 1.11.0, the last Apache release); the
#                   tarball's SHA-512 from Apache is checked
#   MESOS_GIT_REF   build this ref of https://github.com/apache/mesos instead (e.g.
#                   master, which carries the fixes for newer compilers after 1.11.0)
#   MESOS_PREFIX    install prefix (default /opt/mesos)
#   MAKE_JOBS       parallel make jobs (default: the number of cpus)
# Idempotent: does nothing when MESOS_PREFIX/sbin/mesos-master already runs.
set -euo pipefail

version=${MESOS_VERSION:-1.11.0}
git_ref=${MESOS_GIT_REF:-}
prefix=${MESOS_PREFIX:-/opt/mesos}
jobs=${MAKE_JOBS:-$(nproc)}
export DEBIAN_FRONTEND=noninteractive

if "$prefix/sbin/mesos-master" --version >/dev/null 2>&1; then
    echo "Mesos already built: $("$prefix/sbin/mesos-master" --version)"
    exit 0
fi

# Build dependencies (Apache's list for Debian/Ubuntu, without Java and Python, which
# only the bindings need).
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    build-essential autoconf automake libtool pkg-config git curl ca-certificates \
    zlib1g-dev libcurl4-nss-dev libsasl2-dev libsasl2-modules libapr1-dev libsvn-dev \
    libssl-dev libevent-dev iputils-ping patch

work=$(mktemp -d /var/tmp/mesos-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
if [ -n "$git_ref" ]; then
    git clone --quiet https://github.com/apache/mesos.git src
    git -C src checkout --quiet "$git_ref"
    (cd src && ./bootstrap)
else
    base=https://archive.apache.org/dist/mesos/$version
    curl -fsSLO "$base/mesos-$version.tar.gz"
    curl -fsSLO "$base/mesos-$version.tar.gz.sha512"
    # Apache's .sha512 files hold "<hash>  <name>" or a wrapped hash: compare the digits.
    want=$(tr -d ' \n' <"mesos-$version.tar.gz.sha512" | sed 's/.*://; s/mesos-.*//' | tr 'A-F' 'a-f')
    have=$(sha512sum "mesos-$version.tar.gz" | cut -d' ' -f1)
    if [ "${#want}" -ne 128 ] || [ "$want" != "$have" ]; then
        echo "build-mesos.sh: SHA-512 of mesos-$version.tar.gz is $have; Apache says ${want:-nothing}" >&2
        exit 1
    fi
    tar xzf "mesos-$version.tar.gz"
    mv "mesos-$version" src
fi

mkdir src/build
cd src/build
../configure --prefix="$prefix" --disable-java --disable-python --disable-werror \
    --enable-optimize --enable-libevent --enable-ssl
make -j"$jobs"
make install
ldconfig "$prefix/lib"
echo "$prefix/lib" >/etc/ld.so.conf.d/mesos.conf
ldconfig
"$prefix/sbin/mesos-master" --version
