#!/bin/bash
# callback-bridge worker install step, run by the user data of infra/modules/consumers as
# /usr/local/sbin/callback-bridge-install (embedded with file(), not a template: no ${...}
# rendering happens here). Kept apart from the user data so tests/infra/test_artifacts.py can
# run exactly this logic against local wheels.
#
#   callback-bridge-install install         sync the wheels, install, check the handler imports
#   callback-bridge-install mark-unhealthy  tell the Auto Scaling group to replace this instance
#                                           and, with BRIDGE_ASG_NAME and
#                                           BRIDGE_LIFECYCLE_HOOK_NAME set, end its termination
#                                           hook with ABANDON once the group terminates it (in the
#                                           background: a worker that never ran has nothing to
#                                           drain, so the instance does not wait out the hook)
#
# install: copies the wheels the deployment controls (BRIDGE_WHEELS_S3_URI, uploaded with
# `make wheels` + `aws s3 sync dist/wheels s3://...`) to BRIDGE_WHEELS_DIR, creates the venv
# BRIDGE_VENV and installs callback-bridge plus BRIDGE_HANDLER_PACKAGES from those wheels only
# (pip --no-index: nothing comes from a public index, whose names anyone could register), then
# imports callback-bridge and BRIDGE_IMPORT_CHECK (the worker's module:function) with the venv's
# interpreter. Any failure marks the instance Unhealthy (SetInstanceHealth, ignoring the health
# check grace period, which covers this bootstrap) and exits non-zero, so the group replaces
# the instance instead of counting a worker that cannot run as capacity.
#
# Environment (the user data sets the first four from the module's variables):
#   BRIDGE_WHEELS_S3_URI     s3://bucket/prefix/ holding the wheels (required)
#   BRIDGE_HANDLER_PACKAGES  space-separated requirements installed beside callback-bridge
#   BRIDGE_IMPORT_CHECK      module:function that must import ("" with a worker command)
#   BRIDGE_PYTHON            interpreter creating the venv (default python3)
#   BRIDGE_VENV              venv directory (default /opt/callback-bridge)
#   BRIDGE_WHEELS_DIR        local copy of the wheels (default /var/cache/callback-bridge/wheels)
#   BRIDGE_IMDS_URL          instance metadata endpoint (default http://169.254.169.254)
#   BRIDGE_UNHEALTHY_MARKER  file recording that the instance was marked (one call only)
set -euo pipefail

WHEELS_S3_URI="${BRIDGE_WHEELS_S3_URI:-}"
HANDLER_PACKAGES="${BRIDGE_HANDLER_PACKAGES:-}"
IMPORT_CHECK="${BRIDGE_IMPORT_CHECK:-}"
PYTHON="${BRIDGE_PYTHON:-python3}"
VENV="${BRIDGE_VENV:-/opt/callback-bridge}"
WHEELS_DIR="${BRIDGE_WHEELS_DIR:-/var/cache/callback-bridge/wheels}"
IMDS_URL="${BRIDGE_IMDS_URL:-http://169.254.169.254}"
UNHEALTHY_MARKER="${BRIDGE_UNHEALTHY_MARKER:-/run/callback-bridge-marked-unhealthy}"

log() { echo "callback-bridge-install: $*" >&2; }

# IMDSv2: a session token first (the launch template requires tokens), then the path.
metadata() {
  local token
  token="$(curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \
    "$IMDS_URL/latest/api/token")"
  curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $token" "$IMDS_URL/latest/meta-data/$1"
}

instance_id() {
  metadata instance-id
}

# Once the group has started terminating this instance (target lifecycle state Terminated:
# the termination hook holds it), complete the hook's action with ABANDON; gives up after
# BRIDGE_ABANDON_WAIT seconds (default 900), polling every 5 s.
abandon_when_terminating() {
  local id="$1" waited=0 state
  while [ "$waited" -lt "${BRIDGE_ABANDON_WAIT:-900}" ]; do
    state="$(metadata autoscaling/target-lifecycle-state 2>/dev/null || true)"
    if [ "$state" = "Terminated" ]; then
      log "ending the termination hook of $id (ABANDON): there is nothing to drain"
      aws autoscaling complete-lifecycle-action --lifecycle-action-result ABANDON \
        --instance-id "$id" --auto-scaling-group-name "$BRIDGE_ASG_NAME" \
        --lifecycle-hook-name "$BRIDGE_LIFECYCLE_HOOK_NAME"
      return
    fi
    sleep 5
    waited=$((waited + 5))
  done
  log "the group did not terminate $id within ${BRIDGE_ABANDON_WAIT:-900} s"
}

mark_unhealthy() {
  local id
  if [ -e "$UNHEALTHY_MARKER" ]; then
    log "already marked Unhealthy"
    return 0
  fi
  if ! id="$(instance_id)" || [ -z "$id" ]; then
    log "cannot read the instance id from instance metadata ($IMDS_URL)"
    return 1
  fi
  log "marking $id Unhealthy so its Auto Scaling group replaces it"
  # The grace period covers this bootstrap: without --no-should-respect-grace-period the call
  # would be ignored until it ends.
  aws autoscaling set-instance-health --instance-id "$id" --health-status Unhealthy \
    --no-should-respect-grace-period
  : >"$UNHEALTHY_MARKER"
  if [ -z "${BRIDGE_ASG_NAME:-}" ] || [ -z "${BRIDGE_LIFECYCLE_HOOK_NAME:-}" ]; then
    return 0
  fi
  # Counted, so that repeated replacements alarm (the alarms module's workers-replaced).
  aws cloudwatch put-metric-data --namespace CallbackBridge --metric-name WorkersReplaced \
    --dimensions "service=callback-bridge-worker,AutoScalingGroupName=$BRIDGE_ASG_NAME" \
    --value 1 --unit Count || log "could not count the replacement (PutMetricData)"
  if [ "${BRIDGE_ABANDON_FOREGROUND:-}" = 1 ]; then  # a systemd oneshot: its cgroup ends with it
    abandon_when_terminating "$id"
  else
    abandon_when_terminating "$id" </dev/null >>/var/log/callback-bridge-abandon.log 2>&1 &
  fi
}

check_import() {
  # -I: only the venv counts (not the working directory, PYTHONPATH or user site-packages).
  "$VENV/bin/python" -I - "$IMPORT_CHECK" <<'PY'
import importlib
import sys

import bridge  # noqa: F401  (the worker itself)

spec = sys.argv[1]
if spec:
    module_name, _, attribute = spec.partition(":")
    target = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        target = getattr(target, part)
    if attribute and not callable(target):
        sys.exit(f"{spec} is not callable")
    print(f"callback-bridge-install: {spec} imports")
PY
}

install_worker() {
  if [ -z "$WHEELS_S3_URI" ]; then
    log "BRIDGE_WHEELS_S3_URI is empty: set the consumers module's worker_wheels_s3_uri"
    return 1
  fi
  mkdir -p "$WHEELS_DIR"
  log "copying the wheels from $WHEELS_S3_URI to $WHEELS_DIR"
  aws s3 sync --only-show-errors "$WHEELS_S3_URI" "$WHEELS_DIR"
  if ! compgen -G "$WHEELS_DIR/*.whl" >/dev/null; then
    log "no wheels under $WHEELS_S3_URI: build them with 'make wheels' and upload dist/wheels there"
    return 1
  fi
  # A fresh instance has no venv; keep one that exists (a re-run after a manual fix).
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local -a packages=(callback-bridge)
  if [ -n "$HANDLER_PACKAGES" ]; then
    read -r -a extra <<<"$HANDLER_PACKAGES"
    packages+=("${extra[@]}")
  fi
  log "installing ${packages[*]} from $WHEELS_DIR only"
  "$VENV/bin/python" -m pip install --quiet --no-index --no-cache-dir --disable-pip-version-check \
    --find-links "$WHEELS_DIR" "${packages[@]}"
  check_import
}

on_exit() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    log "install failed (exit $status)"
    mark_unhealthy || log "could not mark the instance Unhealthy"
  fi
  exit "$status"
}

case "${1:-}" in
  install)
    trap on_exit EXIT
    install_worker
    ;;
  mark-unhealthy)
    mark_unhealthy
    ;;
  *)
    log "usage: $0 install|mark-unhealthy"
    exit 2
    ;;
esac
