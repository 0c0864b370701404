#!/usr/bin/env bash
# build-image.sh: run by Packer (dispatch-mesos.pkr.hcl) on the builder instance, as
# root, with the checkout in /tmp/dispatch-src.tar.gz. Installs everything a node of any
# role needs and leaves every service disabled: files/node-setup.sh enables the node's
# role at first boot.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

src=/usr/local/src/dispatch
rm -rf "$src"
install -d "$src"
tar xzf /tmp/dispatch-src.tar.gz -C "$src"

apt-get update -qq
apt-get upgrade -y -qq
apt-get install -y -qq --no-install-recommends \
    ffmpeg docker.io zookeeperd awscli jq curl ca-certificates gnupg \
    build-essential pkg-config git
systemctl disable --now zookeeper docker

# Mesos's cgroups isolators need the cgroup v1 hierarchy (Debian 12 boots with v2).
# shellcheck disable=SC2016 # grub expands $GRUB_CMDLINE_LINUX, not this shell
echo 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX systemd.unified_cgroup_hierarchy=0"' \
    >/etc/default/grub.d/90-mesos-cgroup-v1.cfg
update-grub

# Mesos from Apache's source, and its units (deploy/mesos), disabled.
"$src/deploy/mesos/build-mesos.sh"
install -m 0644 "$src/deploy/mesos/mesos-master.service" /etc/systemd/system/
install -m 0644 "$src/deploy/mesos/mesos-agent.service" /etc/systemd/system/

# Dispatch: built with rustup's stable toolchain, installed like on any machine.
if [ ! -x /root/.cargo/bin/cargo ]; then
    curl -fsSL https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain stable
fi
CARGO_TARGET_DIR=/var/tmp/dispatch-target /root/.cargo/bin/cargo build --release --locked \
    --manifest-path "$src/Cargo.toml"
"$src/scripts/install.sh" --binary /var/tmp/dispatch-target/release/dispatch
rm -rf /var/tmp/dispatch-target /root/.cargo/registry

# Prometheus and Grafana, configured for Dispatch, started on the server only.
"$src/deploy/monitoring/setup.sh" --no-start /usr/local/share/dispatch

systemctl daemon-reload
systemctl disable dispatch mesos-master mesos-agent prometheus grafana-server 2>/dev/null || true
apt-get clean
rm -f /tmp/dispatch-src.tar.gz
echo "image ready: $(/opt/mesos/sbin/mesos-master --version), $(dispatch --version)"
