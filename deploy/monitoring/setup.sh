#!/usr/bin/env bash
# setup.sh [--no-start] [SHARE_DIR]
#
# Prometheus and Grafana on this machine (Debian 12, as root), set up with Dispatch's
# shipped configuration from SHARE_DIR (default /usr/local/share/dispatch, where
# scripts/install.sh puts deploy/):
#   Prometheus  Debian's package; scrapes 127.0.0.1:4646/metrics with
#               deploy/prometheus/prometheus.yml and rules.yml (agents_to_add, alerts)
#   Grafana     Grafana's apt repository; the local Prometheus as data source and
#               deploy/grafana/dispatch.json as the "Dispatch" dashboard (admin/admin)
# Packages already installed are not installed again; configuration is rewritten every
# run. --no-start installs and configures without starting (for machine images).
set -euo pipefail

prog=${0##*/}
start=1
if [ "${1:-}" = "--no-start" ]; then
    start=0
    shift
fi
share=${1:-/usr/local/share/dispatch}
[ -d "$share/deploy/prometheus" ] || {
    echo "$prog: error: $share/deploy/prometheus not found (run scripts/install.sh first)" >&2
    exit 1
}
export DEBIAN_FRONTEND=noninteractive

if ! command -v prometheus >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus
fi
if [ ! -x /usr/sbin/grafana-server ] && [ ! -x /usr/share/grafana/bin/grafana ]; then
    apt-get install -y -qq --no-install-recommends ca-certificates curl gnupg
    install -d -m 0755 /etc/apt/keyrings
    curl -fsSL https://apt.grafana.com/gpg.key | gpg --dearmor --yes -o /etc/apt/keyrings/grafana.gpg
    echo "deb [signed-by=/etc/apt/keyrings/grafana.gpg] https://apt.grafana.com stable main" \
        >/etc/apt/sources.list.d/grafana.list
    apt-get update -qq
    apt-get install -y -qq grafana
fi

install -m 0644 "$share/deploy/prometheus/prometheus.yml" /etc/prometheus/prometheus.yml
install -m 0644 "$share/deploy/prometheus/rules.yml" /etc/prometheus/rules.yml
# The scrape's bearer token (an ACL token with agent read; empty while ACLs are off): kept
# when it exists, else taken from DISPATCH_METRICS_TOKEN.
if [ ! -e /etc/prometheus/dispatch-metrics.token ]; then
    printf '%s' "${DISPATCH_METRICS_TOKEN:-}" >/etc/prometheus/dispatch-metrics.token
fi
chmod 0640 /etc/prometheus/dispatch-metrics.token
chgrp prometheus /etc/prometheus/dispatch-metrics.token 2>/dev/null || true
promtool check config /etc/prometheus/prometheus.yml

install -D -m 0644 "$share/deploy/grafana/provisioning/datasources/dispatch.yml" \
    /etc/grafana/provisioning/datasources/dispatch.yml
install -D -m 0644 "$share/deploy/grafana/provisioning/dashboards/dispatch.yml" \
    /etc/grafana/provisioning/dashboards/dispatch.yml
install -d -m 0755 /var/lib/grafana/dashboards/dispatch
# The dashboard is written for Grafana's import dialog (a DS_PROMETHEUS input); a
# provisioned dashboard names the provisioned data source instead.
# shellcheck disable=SC2016 # the literal text ${DS_PROMETHEUS} is replaced
sed 's/\${DS_PROMETHEUS}/prometheus/g' "$share/deploy/grafana/dispatch.json" \
    >/var/lib/grafana/dashboards/dispatch/dispatch.json

if [ "$start" -eq 1 ]; then
    systemctl enable prometheus grafana-server
    systemctl restart prometheus grafana-server
    echo "Prometheus on :9090, Grafana on :3000 (dashboard Dispatch)"
fi
