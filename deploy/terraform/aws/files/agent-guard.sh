#!/usr/bin/env bash
# agent-guard.sh: the scale-in guard of a Mesos agent in the autoscaling group, so that
# scaling in never kills running tasks. Runs for the life of the agent
# (dispatch-agent-guard.service):
#  * while the agent runs tasks, the instance is protected from scale-in (the group
#    removes idle agents first);
#  * if the group terminates it anyway (all busy, or a race with a new launch), the
#    termination lifecycle hook holds it in Terminating:Wait; this script then
#    deactivates the agent on the Mesos master (no new offers from it; running tasks go
#    on), waits for its tasks to end while sending lifecycle heartbeats, and lets the
#    termination continue.
# Environment (from /etc/dispatch-cluster.env): AGENTS_GROUP, LIFECYCLE_HOOK, AWS_REGION,
# DRAIN_HEARTBEAT_SECONDS. Needs curl, jq, the aws CLI and IMDSv2.
set -euo pipefail

imds() {
    local token
    token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
    curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/$1"
}

asg() {
    aws autoscaling --region "$AWS_REGION" "$@"
}

instance=$(imds meta-data/instance-id)
ip=$(imds meta-data/local-ipv4)
heartbeat=${DRAIN_HEARTBEAT_SECONDS:-300}

# Tasks the agent has not finished (queued or live), or "unknown".
active_tasks() {
    curl -fsS --max-time 5 "http://$ip:5051/state" 2>/dev/null |
        jq '[.frameworks[]? | (.executors[]?.tasks[]?, .executors[]?.queued_tasks[]?)] | length' ||
        echo unknown
}

drain() {
    local state agent_id master last_beat
    state=$(curl -fsS --max-time 5 "http://$ip:5051/state")
    agent_id=$(jq -r '.id' <<<"$state")
    master=$(jq -r '.master_hostname' <<<"$state")
    echo "terminating: deactivating agent $agent_id on master $master"
    curl -fsS --max-time 10 -X POST "http://$master:5050/api/v1" \
        -H 'Content-Type: application/json' \
        -d "{\"type\":\"DEACTIVATE_AGENT\",\"deactivate_agent\":{\"agent_id\":{\"value\":\"$agent_id\"}}}" ||
        echo "could not deactivate the agent; waiting for its tasks anyway"
    last_beat=$(date +%s)
    while true; do
        local n
        n=$(active_tasks)
        if [ "$n" = "0" ]; then
            break
        fi
        echo "waiting for $n task(s) to end"
        if [ $(($(date +%s) - last_beat)) -ge "$heartbeat" ]; then
            asg record-lifecycle-action-heartbeat --auto-scaling-group-name "$AGENTS_GROUP" \
                --lifecycle-hook-name "$LIFECYCLE_HOOK" --instance-id "$instance" || true
            last_beat=$(date +%s)
        fi
        sleep 15
    done
    echo "no tasks left: termination continues"
    asg complete-lifecycle-action --auto-scaling-group-name "$AGENTS_GROUP" \
        --lifecycle-hook-name "$LIFECYCLE_HOOK" --instance-id "$instance" \
        --lifecycle-action-result CONTINUE
}

protected=none
while true; do
    lifecycle=$(imds meta-data/autoscaling/target-lifecycle-state 2>/dev/null || echo unknown)
    if [ "$lifecycle" = "Terminated" ]; then
        drain
        exit 0
    fi
    n=$(active_tasks)
    if [ "$n" != "unknown" ]; then
        want=no
        [ "$n" -gt 0 ] && want=yes
        if [ "$want" != "$protected" ]; then
            flag=--no-protected-from-scale-in
            [ "$want" = yes ] && flag=--protected-from-scale-in
            if asg set-instance-protection --auto-scaling-group-name "$AGENTS_GROUP" \
                --instance-ids "$instance" "$flag"; then
                protected=$want
                echo "scale-in protection: $want ($n active task(s))"
            fi
        fi
    fi
    sleep 15
done
