#!/usr/bin/env bash
# Starts a dev cluster in the background (make demo), applies manifests/examples/, shows them.
set -euo pipefail
dir=${1:?data dir}; api_port=${2:-7070}; etcd_port=${3:-23790}
cd "$(dirname "$0")/.."
shoal() { node dist/cmd/shoal/main.js --config "$dir/config.yaml" "$@"; }

mkdir -p "$dir"
if [ -f "$dir/dev.pid" ] && kill -0 "$(cat "$dir/dev.pid")" 2>/dev/null; then
  echo "dev cluster already running (pid $(cat "$dir/dev.pid")); 'make down' stops it"
else
  rm -f "$dir/config.yaml"
  nohup node dist/cmd/shoal/main.js dev --data-dir "$dir" --api-port "$api_port" --etcd-port "$etcd_port" \
    >"$dir/dev.log" 2>&1 &
  echo $! >"$dir/dev.pid"
  for _ in $(seq 1 100); do
    [ -f "$dir/config.yaml" ] && curl -fsS "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && break
    kill -0 "$(cat "$dir/dev.pid")" 2>/dev/null || { echo "shoal dev exited; its log:"; tail -20 "$dir/dev.log"; exit 1; }
    sleep 0.2
  done
  echo "dev cluster up: API http://127.0.0.1:$api_port, log $dir/dev.log"
fi

shoal get nodes
echo
shoal apply -f manifests/examples/
echo
shoal get apps
echo
shoal get jobs
cat <<MSG

Try:
  export SHOAL_CONFIG=$dir/config.yaml
  node dist/cmd/shoal/main.js get app web -o yaml   # every Marathon default filled in
  node dist/cmd/shoal/main.js get apps -w            # watch changes as they happen
  tail -f $dir/dev.log   # the control plane's log
  make down              # stop the cluster
MSG
