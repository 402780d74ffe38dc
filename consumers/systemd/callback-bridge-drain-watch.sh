#!/bin/sh
# Poll the Auto Scaling target lifecycle state through IMDSv2; when the
# instance is being terminated, stop the worker gracefully (SIGTERM, then the
# unit's TimeoutStopSec) and exit. Installed as
# /usr/local/libexec/callback-bridge-drain-watch by infra/modules/consumers.
set -u

IMDS=http://169.254.169.254/latest
INTERVAL="${DRAIN_POLL_SECONDS:-5}"

state() {
  token=$(curl -sf -X PUT "$IMDS/api/token" \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 300") || return 1
  curl -sf -H "X-aws-ec2-metadata-token: $token" \
    "$IMDS/meta-data/autoscaling/target-lifecycle-state"
}

while :; do
  if [ "$(state 2>/dev/null || true)" = "Terminated" ]; then
    echo "instance is terminating: draining callback-bridge-worker.service"
    systemctl stop callback-bridge-worker.service
    echo "callback-bridge-worker.service stopped"
    exit 0
  fi
  sleep "$INTERVAL"
done
