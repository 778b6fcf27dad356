#!/usr/bin/env bash
# Stops the background dev cluster started by `make demo`, and its tasks (containers and
# processes: shoal dev stops them on SIGTERM). Usage: down.sh DIR [default]; with "default"
# (DEMO_DIR not given to make) and no cluster in DIR, the last demo started in another
# DEMO_DIR (recorded by demo.sh in DIR/last-demo-dir) is stopped instead.
set -euo pipefail
dir=${1:?data dir}; origin=${2:-}
running() { [ -f "$1/dev.pid" ] && kill -0 "$(cat "$1/dev.pid")" 2>/dev/null; }
if ! running "$dir" && [ "$origin" = default ] && [ -f "$dir/last-demo-dir" ]; then
  last=$(cat "$dir/last-demo-dir")
  if running "$last"; then echo "stopping the demo in $last (started with DEMO_DIR=$last)"; dir=$last; fi
fi
pidfile="$dir/dev.pid"
if ! running "$dir"; then
  echo "no dev cluster running in $dir"; rm -f "$pidfile"; exit 0
fi
pid=$(cat "$pidfile")
kill -TERM "$pid"
# Stopping takes a few seconds: each task gets its kill grace (3 s) before SIGKILL.
for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$pid" 2>/dev/null; then
  kill -KILL "$pid"
  echo "shoal dev did not stop within 30 s and was killed: its tasks may still run (see $dir/dev.log)" >&2
fi
rm -f "$pidfile"
echo "dev cluster and its tasks stopped (data kept in $dir)"
