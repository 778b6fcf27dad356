#!/usr/bin/env bash
# Makes sure a Docker daemon answers: if `docker info` fails, starts Debian's dockerd in the
# background (log /tmp/shoal-dockerd.log, pidfile /tmp/shoal-dockerd.pid) and waits up to
# 30 s for it. Idempotent: exits 0 at once when a daemon already answers. Exits non-zero with
# the reason (not root, no dockerd, no cgroups, daemon died) when none can be started; callers
# such as .ci/run tolerate that, and the Docker tests then skip saying why.
set -euo pipefail

LOG=${SHOAL_DOCKERD_LOG:-/tmp/shoal-dockerd.log}
PIDFILE=${SHOAL_DOCKERD_PIDFILE:-/tmp/shoal-dockerd.pid}
WAIT_SECONDS=${SHOAL_DOCKERD_WAIT:-30}

fail() { echo "start-dockerd: $*" >&2; exit 1; }
answers() { docker info >/dev/null 2>&1; }

command -v docker >/dev/null 2>&1 || fail "no docker client (install docker.io: hack/install-deps.sh)"
answers && exit 0

command -v dockerd >/dev/null 2>&1 || fail "no daemon answers and dockerd is not installed (hack/install-deps.sh)"
[ "$(id -u)" -eq 0 ] || fail "no daemon answers and starting dockerd needs root (uid $(id -u))"
[ -d /sys/fs/cgroup ] && [ -n "$(ls -A /sys/fs/cgroup 2>/dev/null)" ] ||
  fail "no cgroup filesystem at /sys/fs/cgroup: containers cannot run here"

# A dockerd we started earlier may still be coming up: wait for it rather than start a second.
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "start-dockerd: dockerd (pid $(cat "$PIDFILE")) is starting; waiting" >&2
else
  echo "start-dockerd: starting dockerd (log $LOG)" >&2
  # setsid: the daemon must outlive this script and the CI step that ran it.
  setsid dockerd --iptables=true >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
fi

pid=$(cat "$PIDFILE")
for _ in $(seq 1 $((WAIT_SECONDS * 5))); do
  answers && { echo "start-dockerd: dockerd answers (pid $pid)" >&2; exit 0; }
  kill -0 "$pid" 2>/dev/null || { tail -15 "$LOG" >&2; fail "dockerd exited; its log is above (and in $LOG)"; }
  sleep 0.2
done
tail -15 "$LOG" >&2
fail "dockerd (pid $pid) did not answer within ${WAIT_SECONDS}s; log in $LOG"
