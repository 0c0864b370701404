#!/usr/bin/env bash
# node-setup.sh: sets a cluster node up for its role at first boot, from
# /etc/dispatch-cluster.env (written by the user data, see main.tf). The machine image
# (image/) already holds Mesos, ZooKeeper, Docker, ffmpeg, Dispatch, Prometheus and
# Grafana, all disabled; this enables what the role needs.
#   master  ZooKeeper (with several masters) and mesos-master
#   agent   Docker and mesos-agent, plus the scale-in guard (agent-guard.sh)
#   server  Dispatch (with /etc/dispatch/conf.d/50-cluster.hcl), the transcode and GIF jobs,
#           Prometheus + Grafana, the Datadog Agent (with a key), and the queue
#           metrics every minute (queue-metrics.sh)
set -euo pipefail

# shellcheck source=/dev/null
. /etc/dispatch-cluster.env
dir=/usr/local/libexec/dispatch-cluster
share=/usr/local/share/dispatch

imds() {
    local token
    token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
    curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/$1"
}

# A secret of this cluster from SSM Parameter Store (/<name>/<key>).
secret() {
    aws ssm get-parameter --region "$AWS_REGION" --with-decryption \
        --name "$SECRETS_PREFIX/$1" --query Parameter.Value --output text
}

# A systemd unit running one of the scripts above with the cluster's settings.
script_unit() { # script_unit NAME DESCRIPTION SCRIPT [TYPE]
    cat >"/etc/systemd/system/$1.service" <<UNIT
[Unit]
Description=$2
Wants=network-online.target
After=network-online.target

[Service]
Type=${4:-simple}
EnvironmentFile=/etc/dispatch-cluster.env
ExecStart=$dir/$3
Restart=${5:-on-failure}
RestartSec=10s
UNIT
}

ip=$(imds meta-data/local-ipv4)
echo "node-setup: role $NODE_ROLE at $ip"

setup_master() {
    local quorum=1 n=0 id=0 masters=()
    IFS=, read -r -a masters <<<"$MASTER_IPS"
    install -d -m 0755 /var/lib/mesos/master
    if [ -n "$ZOOKEEPER" ]; then
        sed -i '/^server\./d' /etc/zookeeper/conf/zoo.cfg
        for m in "${masters[@]}"; do
            n=$((n + 1))
            [ "$m" = "$ip" ] && id=$n
            echo "server.$n=$m:2888:3888" >>/etc/zookeeper/conf/zoo.cfg
        done
        [ "$id" -gt 0 ] || {
            echo "node-setup: $ip is not in MASTER_IPS ($MASTER_IPS)" >&2
            exit 1
        }
        echo "$id" >/etc/zookeeper/conf/myid
        systemctl enable --now zookeeper
        quorum=$((${#masters[@]} / 2 + 1))
    fi
    {
        echo "MESOS_IP=$ip"
        echo "MESOS_HOSTNAME=$ip"
        echo "MESOS_WORK_DIR=/var/lib/mesos/master"
        echo "MESOS_CLUSTER=$CLUSTER_NAME"
        if [ -n "$ZOOKEEPER" ]; then
            echo "MESOS_ZK=zk://$ZOOKEEPER/mesos"
            echo "MESOS_QUORUM=$quorum"
        fi
    } >/etc/default/mesos-master
    systemctl enable --now mesos-master
}

setup_agent() {
    local isolation launcher=linux
    install -d -m 0755 /var/lib/mesos/agent
    # The image boots with cgroup v1 (the cgroups isolators need it); if it does not,
    # fall back to plain process isolation rather than not starting.
    if [ -d /sys/fs/cgroup/cpu ] && [ -d /sys/fs/cgroup/freezer ]; then
        isolation=cgroups/cpu,cgroups/mem,filesystem/linux,volume/host_path,docker/runtime
    else
        echo "node-setup: no cgroup v1 hierarchy; posix isolation (pipelines sharing alloc/ will not run)" >&2
        isolation=posix/cpu,posix/mem
        launcher=posix
    fi
    cat >/etc/default/mesos-agent <<ENV
MESOS_MASTER=$AGENTS_MASTER
MESOS_IP=$ip
MESOS_HOSTNAME=$ip
MESOS_WORK_DIR=/var/lib/mesos/agent
MESOS_CONTAINERIZERS=mesos,docker
MESOS_LAUNCHER=$launcher
MESOS_ISOLATION=$isolation
MESOS_IMAGE_PROVIDERS=docker
MESOS_EXECUTOR_REGISTRATION_TIMEOUT=5mins
ENV
    systemctl enable --now docker mesos-agent
    script_unit dispatch-agent-guard "Dispatch scale-in guard (instance protection, drain on termination)" \
        agent-guard.sh simple on-failure
    cat >>/etc/systemd/system/dispatch-agent-guard.service <<'UNIT'

[Install]
WantedBy=multi-user.target
UNIT
    systemctl daemon-reload
    systemctl enable --now dispatch-agent-guard
}

setup_server() {
    base64 -d <<<"$DISPATCH_CONFIG_B64" >/etc/dispatch/conf.d/50-cluster.hcl
    chmod 0640 /etc/dispatch/conf.d/50-cluster.hcl
    if [ "$DISPATCH_ACL" = "1" ] && [ ! -s /etc/dispatch/bootstrap.token ]; then
        (umask 077 && cat /proc/sys/kernel/random/uuid >/etc/dispatch/bootstrap.token)
    fi
    if [ "$DISPATCH_TLS" = "1" ]; then
        install -d -m 0750 /etc/dispatch/tls
        secret tls_cert >/etc/dispatch/tls/server.pem
        (umask 077 && secret tls_key >/etc/dispatch/tls/server-key.pem)
        if [ "$DISPATCH_TLS_CA" = "1" ]; then
            secret tls_ca >/etc/dispatch/tls/ca.pem
        fi
    fi
    systemctl enable dispatch
    # Type=notify: returns once the API answers, or fails with the reason in the journal.
    systemctl restart dispatch
    if [ "$DISPATCH_TLS" = "1" ]; then
        export DISPATCH_ADDR=https://127.0.0.1:4646
        if [ "$DISPATCH_TLS_CA" = "1" ]; then
            export DISPATCH_CACERT=/etc/dispatch/tls/ca.pem
        fi
    fi
    if [ "$DISPATCH_ACL" = "1" ]; then
        DISPATCH_TOKEN=$(cat /etc/dispatch/bootstrap.token)
        export DISPATCH_TOKEN
    fi
    for job in transcode gif; do
        dispatch job run "$share/jobs/$job.hcl"
    done
    # /metrics readers (Prometheus, the Datadog check, queue-metrics.sh): an agent-read token
    install -d -m 0755 /etc/prometheus /etc/datadog-agent
    if [ "$DISPATCH_ACL" = "1" ] && [ ! -s /etc/dispatch/metrics.token ]; then
        dispatch acl policy apply -description "metrics scrapers" metrics "$share/deploy/acl/metrics.hcl"
        (umask 077 && dispatch acl token create -name metrics -policy metrics |
            sed -n 's/^Secret ID *= *//p' >/etc/dispatch/metrics.token)
    fi
    touch /etc/dispatch/metrics.token
    install -m 0640 /etc/dispatch/metrics.token /etc/prometheus/dispatch-metrics.token
    chgrp prometheus /etc/prometheus/dispatch-metrics.token 2>/dev/null || true

    systemctl enable --now prometheus grafana-server
    if [ "$GRAFANA_PASSWORD" = "1" ]; then
        grafana cli --homepath /usr/share/grafana admin reset-admin-password "$(secret grafana_admin_password)"
    fi

    if [ "$DATADOG" = "1" ]; then
        # Datadog's installer (apt repository + agent 7), then the openmetrics check that
        # scrapes Dispatch's /metrics (deploy/datadog).
        local installer
        installer=$(mktemp)
        curl -fsSL https://install.datadoghq.com/scripts/install_script_agent7.sh -o "$installer"
        DD_API_KEY=$(secret datadog_api_key) DD_SITE=$DATADOG_SITE bash "$installer"
        rm -f "$installer"
        install -D -m 0644 "$share/deploy/datadog/conf.d/openmetrics.d/conf.yaml" \
            /etc/datadog-agent/conf.d/openmetrics.d/conf.yaml
        install -m 0640 /etc/dispatch/metrics.token /etc/datadog-agent/dispatch-metrics.token
        chgrp dd-agent /etc/datadog-agent/dispatch-metrics.token 2>/dev/null || true
        systemctl restart datadog-agent
    fi

    script_unit dispatch-queue-metrics "Publish Dispatch's queue demand to CloudWatch" \
        queue-metrics.sh oneshot no
    cat >/etc/systemd/system/dispatch-queue-metrics.timer <<'UNIT'
[Unit]
Description=Publish Dispatch's queue demand to CloudWatch every minute

[Timer]
OnBootSec=1min
OnUnitActiveSec=1min
AccuracySec=5s

[Install]
WantedBy=timers.target
UNIT
    systemctl daemon-reload
    systemctl enable --now dispatch-queue-metrics.timer
}

case "$NODE_ROLE" in
    master) setup_master ;;
    agent) setup_agent ;;
    server) setup_server ;;
    *)
        echo "node-setup: unknown NODE_ROLE $NODE_ROLE" >&2
        exit 1
        ;;
esac
echo "node-setup: $NODE_ROLE ready"
