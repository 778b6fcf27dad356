#!/usr/bin/env bash
# Stops the background dev cluster started by `make demo`.
set -euo pipefail
dir=${1:?data dir}
pidfile="$dir/dev.pid"
if [ ! -f "$pidfile" ] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "no dev cluster running"; rm -f "$pidfile"; exit 0
fi
pid=$(cat "$pidfile")
kill -TERM "$pid"
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
rm -f "$pidfile"
echo "dev cluster stopped (data kept in $dir)"
