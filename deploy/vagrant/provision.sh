#!/usr/bin/env bash
# provision.sh: set up the Vagrant VM (Debian 12, run as root by `vagrant up` and
# `vagrant provision`). The checkout is in /vagrant.
#
#  1. ffmpeg, build tools and Rust (rustup, for the vagrant user)
#  2. build Dispatch from /vagrant (release, target dir ~vagrant/target)
#  3. install it with scripts/install.sh (/usr/local, /etc/dispatch, the systemd unit)
#     plus /etc/dispatch/conf.d/10-vagrant.hcl: listen on every interface of the VM, so the
#     forwarded port 4646 reaches it
#  4. with DISPATCH_VAGRANT_MESOS=1: Mesos built from Apache's source
#     (deploy/mesos/build-mesos.sh, about an hour), a master and an agent as systemd
#     units, and /etc/dispatch/conf.d/20-mesos.hcl pointing Dispatch at them
#  5. start (or restart) dispatch.service; register jobs/transcode.hcl and jobs/gif.hcl
#  6. make the sample clips samples/*.txt name (/tmp/dispatch-samples)
#  7. Prometheus and Grafana with the shipped configs (deploy/monitoring/setup.sh)
set -euo pipefail

src=/vagrant
mesos=${DISPATCH_VAGRANT_MESOS:-0}
user=vagrant
home=$(getent passwd "$user" | cut -d: -f6)
share=/usr/local/share/dispatch
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n==> %s\n' "$*"; }

step "packages: ffmpeg, build tools"
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    build-essential pkg-config curl ca-certificates git ffmpeg gnupg jq

step "Rust toolchain (rustup) for $user"
if [ ! -x "$home/.cargo/bin/cargo" ]; then
    sudo -u "$user" -H sh -c \
        'curl -fsSL https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain stable'
fi

step "build Dispatch from $src"
sudo -u "$user" -H env CARGO_TARGET_DIR="$home/target" \
    "$home/.cargo/bin/cargo" build --release --locked --manifest-path "$src/Cargo.toml"

step "install (scripts/install.sh)"
"$src/scripts/install.sh" --binary "$home/target/release/dispatch"
cat >/etc/dispatch/conf.d/10-vagrant.hcl <<'HCL'
# Vagrant: the API listens on every interface of the VM so that the forwarded port
# (127.0.0.1:4646 on the host) reaches it. The VM's network is private to the host.
bind_addr = "0.0.0.0"
HCL

if [ "$mesos" = "1" ]; then
    step "Mesos master and agent (built from Apache's source; this takes a while)"
    "$src/deploy/mesos/build-mesos.sh"
    ip=$(hostname -I | awk '{print $1}')
    install -d -m 0755 /var/lib/mesos/master /var/lib/mesos/agent
    cat >/etc/default/mesos-master <<ENV
MESOS_IP=$ip
MESOS_HOSTNAME=$ip
MESOS_WORK_DIR=/var/lib/mesos/master
MESOS_CLUSTER=vagrant
ENV
    # cgroups v1 isolators do not work on Debian 12's cgroup v2: plain process
    # isolation here (pipelines sharing alloc/ need filesystem/linux, see README).
    cat >/etc/default/mesos-agent <<ENV
MESOS_MASTER=$ip:5050
MESOS_IP=$ip
MESOS_HOSTNAME=$ip
MESOS_WORK_DIR=/var/lib/mesos/agent
MESOS_LAUNCHER=posix
MESOS_ISOLATION=posix/cpu,posix/mem
MESOS_CONTAINERIZERS=mesos
MESOS_SYSTEMD_ENABLE_SUPPORT=false
ENV
    install -m 0644 "$src/deploy/mesos/mesos-master.service" /etc/systemd/system/
    install -m 0644 "$src/deploy/mesos/mesos-agent.service" /etc/systemd/system/
    systemctl daemon-reload
    systemctl enable --now mesos-master mesos-agent
    cat >/etc/dispatch/conf.d/20-mesos.hcl <<HCL
# Vagrant with DISPATCH_VAGRANT_MESOS=1: tasks run on the Mesos agent in this VM.
mesos {
  master = "$ip:5050"
}
# Where the agent fetches rendered templates and payloads from.
advertise {
  http = "$ip:4646"
}
HCL
else
    rm -f /etc/dispatch/conf.d/20-mesos.hcl
fi

step "start dispatch.service"
systemctl daemon-reload
systemctl enable dispatch
# Type=notify: restart returns once the API answers (or fails with the reason).
systemctl restart dispatch
systemctl --no-pager --lines=5 status dispatch

step "register the jobs"
for job in transcode gif; do
    /usr/local/bin/dispatch job run "$share/jobs/$job.hcl"
done

step "sample clips for samples/one.txt and samples/many.txt"
"$share/make-samples.sh"

step "Prometheus and Grafana"
"$src/deploy/monitoring/setup.sh" "$share"

cat <<'DONE'

Dispatch is running (systemctl status dispatch). From the host:
  vagrant ssh -c 'cd /vagrant && scripts/dispatch.sh samples/one.txt'
  vagrant ssh -c 'dispatch job status transcode'
  curl localhost:4646/v1/jobs            # the API
  http://localhost:9090                  # Prometheus
  http://localhost:3000                  # Grafana (admin/admin), dashboard "Dispatch"
DONE
