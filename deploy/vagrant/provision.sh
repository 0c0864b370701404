#!/usr/bin/env bash
# provision.sh: set up the Vagrant VM (Debian 12, run as root by `vagrant up` and
# `vagrant provision`). The checkout is in /vagrant.
#
#  1. ffmpeg, build tools and Rust (rustup, for the vagrant user)
#  2. build Dispatch from /vagrant (release, target dir ~vagrant/target)
#  3. install it with scripts/install.sh (/usr/local, /etc/dispatch, the systemd unit)
#     plus /etc/dispatch/conf.d/10-vagrant.hcl: listen on every interface of the VM, so the
#     forwarded port 4646 reaches it, with ACLs on (the management token made once into
#     /etc/dispatch/bootstrap.token, exported for the vagrant user as DISPATCH_TOKEN) and
#     raw_exec allowed (the GIF pipeline's steps are shell commands)
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
# The management token: made once, kept across provisioning runs.
if [ ! -s /etc/dispatch/bootstrap.token ]; then
    (umask 077 && cat /proc/sys/kernel/random/uuid >/etc/dispatch/bootstrap.token)
fi
chgrp "$user" /etc/dispatch/bootstrap.token
chmod 0640 /etc/dispatch/bootstrap.token
cat >/etc/profile.d/dispatch-token.sh <<'SH'
# The VM's management token, for the dispatch CLI (vagrant user only: the file is 0640).
if [ -r /etc/dispatch/bootstrap.token ]; then
    DISPATCH_TOKEN=$(cat /etc/dispatch/bootstrap.token)
    export DISPATCH_TOKEN
fi
SH
cat >/etc/dispatch/conf.d/10-vagrant.hcl <<'HCL'
# Vagrant: the API listens on every interface of the VM so that the forwarded port
# (127.0.0.1:4646 on the host) reaches it, so ACLs are on: every call needs a token
# (the vagrant user's shell has DISPATCH_TOKEN). The GIF pipeline's steps run shell
# commands: raw_exec is allowed here.
bind_addr = "0.0.0.0"
acl {
  enabled              = true
  bootstrap_token_file = "/etc/dispatch/bootstrap.token"
}
driver_allowlist = ["exec", "raw_exec", "docker"]
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
DISPATCH_TOKEN=$(cat /etc/dispatch/bootstrap.token)
export DISPATCH_TOKEN
for job in transcode gif; do
    /usr/local/bin/dispatch job run "$share/jobs/$job.hcl"
done

step "a token for Prometheus (agent read: /metrics)"
/usr/local/bin/dispatch acl policy apply -description "metrics scrapers" metrics "$share/deploy/acl/metrics.hcl"
if [ ! -s /etc/prometheus/dispatch-metrics.token ]; then
    install -d -m 0755 /etc/prometheus
    /usr/local/bin/dispatch acl token create -name prometheus -policy metrics |
        sed -n 's/^Secret ID *= *//p' >/etc/prometheus/dispatch-metrics.token
fi

step "sample clips for samples/one.txt and samples/many.txt"
"$share/make-samples.sh"

step "Prometheus and Grafana"
"$src/deploy/monitoring/setup.sh" "$share"

cat <<'DONE'

Dispatch is running (systemctl status dispatch). From the host:
  vagrant ssh -c 'cd /vagrant && scripts/dispatch.sh samples/one.txt'
  vagrant ssh -c 'dispatch job status transcode'
  vagrant ssh -c 'dispatch acl token create -name app -policy ...'   # see README "Security"
  curl -H "X-Nomad-Token: $(vagrant ssh -c 'cat /etc/dispatch/bootstrap.token')" localhost:4646/v1/jobs
  http://localhost:9090                  # Prometheus
  http://localhost:3000                  # Grafana (admin/admin), dashboard "Dispatch"
DONE
