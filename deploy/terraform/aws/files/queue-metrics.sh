#!/usr/bin/env bash
# queue-metrics.sh [--print]
#
# Publishes the queue's demand as CloudWatch metrics for the agents' autoscaling
# (scaling.tf). Run every minute on the Dispatch server (dispatch-queue-metrics.timer).
#   PendingCpus      sum of dispatch_pending_cpus from Dispatch's /metrics
#   PendingMemoryMB  sum of dispatch_pending_memory_bytes, in MB
#   AgentsWanted     agents that would hold the pending work:
#                    ceil(max(PendingCpus / AGENT_CPUS, PendingMemoryMB / AGENT_MEMORY_MB))
#   AgentsIdle       when nothing is pending: whole agents' worth of unused CPUs on the
#                    leading Mesos master (cpus_total - cpus_used); else 0
# --print writes them to stdout instead (no AWS call).
#
# Environment (from /etc/dispatch-cluster.env): AGENT_CPUS, AGENT_MEMORY_MB,
# MASTER_IPS (comma-separated host[:port], port 5050 by default; empty: AgentsIdle is 0), CLUSTER_NAME, AWS_REGION,
# METRIC_NAMESPACE (default Dispatch), DISPATCH_ADDR (default http://127.0.0.1:4646),
# DISPATCH_TOKEN_FILE (default /etc/dispatch/metrics.token: an ACL token with agent read,
# sent when the file is not empty), DISPATCH_CACERT (the CA of an https:// DISPATCH_ADDR).
# Needs curl, awk, jq, and the aws CLI to publish.
set -euo pipefail

prog=${0##*/}
print=0
case "${1:-}" in
    --print) print=1 ;;
    "") ;;
    *)
        echo "usage: $prog [--print]" >&2
        exit 1
        ;;
esac

addr=${DISPATCH_ADDR:-http://127.0.0.1:4646}
agent_cpus=${AGENT_CPUS:?AGENT_CPUS: vCPUs of one agent}
agent_mem=${AGENT_MEMORY_MB:?AGENT_MEMORY_MB: memory of one agent in MB}

curl_opts=(-fsS --max-time 10)
token_file=${DISPATCH_TOKEN_FILE:-/etc/dispatch/metrics.token}
if [ -s "$token_file" ]; then
    curl_opts+=(-H "X-Nomad-Token: $(cat "$token_file")")
fi
if [ -n "${DISPATCH_CACERT:-}" ]; then
    curl_opts+=(--cacert "$DISPATCH_CACERT")
fi
metrics=$(curl "${curl_opts[@]}" "$addr/metrics")
# Prometheus text: `name{labels} value`; the value is the last field.
read -r pending_cpus pending_mem_mb < <(awk '
    $1 ~ /^dispatch_pending_cpus(\{|$)/ { cpus += $NF }
    $1 ~ /^dispatch_pending_memory_bytes(\{|$)/ { mem += $NF }
    END { printf "%.3f %.0f\n", cpus, mem / 1048576 }
' <<<"$metrics")

wanted=$(awk -v c="$pending_cpus" -v m="$pending_mem_mb" -v ac="$agent_cpus" -v am="$agent_mem" '
    function ceil(x) { return (x == int(x)) ? x : int(x) + 1 }
    BEGIN { a = ceil(c / ac); b = ceil(m / am); print (a > b ? a : b) }')

idle_cpus=0
IFS=, read -r -a masters <<<"${MASTER_IPS:-}"
for master in "${masters[@]}"; do
    case "$master" in
        *:*) ;;
        *) master=$master:5050 ;;
    esac
    snapshot=$(curl -fsS --max-time 5 "http://$master/metrics/snapshot" 2>/dev/null) || continue
    if [ "$(jq -r '."master/elected" // 0' <<<"$snapshot")" = "1" ]; then
        idle_cpus=$(jq -r '(."master/cpus_total" // 0) - (."master/cpus_used" // 0)' <<<"$snapshot")
        break
    fi
done
idle=$(awk -v c="$pending_cpus" -v m="$pending_mem_mb" -v i="$idle_cpus" -v ac="$agent_cpus" '
    BEGIN { print (c > 0 || m > 0) ? 0 : int(i / ac) }')

if [ "$print" -eq 1 ]; then
    printf 'PendingCpus=%s\nPendingMemoryMB=%s\nAgentsWanted=%s\nAgentsIdle=%s\n' \
        "$pending_cpus" "$pending_mem_mb" "$wanted" "$idle"
    exit 0
fi

dimension="Name=Cluster,Value=${CLUSTER_NAME:?}"
aws cloudwatch put-metric-data --region "${AWS_REGION:?}" \
    --namespace "${METRIC_NAMESPACE:-Dispatch}" --metric-data \
    "MetricName=PendingCpus,Value=$pending_cpus,Unit=Count,Dimensions=[{$dimension}]" \
    "MetricName=PendingMemoryMB,Value=$pending_mem_mb,Unit=Megabytes,Dimensions=[{$dimension}]" \
    "MetricName=AgentsWanted,Value=$wanted,Unit=Count,Dimensions=[{$dimension}]" \
    "MetricName=AgentsIdle,Value=$idle,Unit=Count,Dimensions=[{$dimension}]"
