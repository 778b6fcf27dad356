#!/usr/bin/env bash
# Starts a dev cluster in the background (make demo) with three agents, applies
# manifests/examples/, waits until the services are healthy and shows how to reach them.
# Args: DIR [API_PORT] [ETCD_PORT] [DEFAULT_DIR]; a DIR other than DEFAULT_DIR (make's default
# DEMO_DIR) is recorded in DEFAULT_DIR/last-demo-dir, so a plain `make down` finds it.
set -euo pipefail
dir=${1:?data dir}; api_port=${2:-7070}; etcd_port=${3:-23790}; default_dir=${4:-}
cd "$(dirname "$0")/.."
shoal() { node dist/cmd/shoal/main.js --config "$dir/config.yaml" "$@"; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
down="make down"
if [ -n "$default_dir" ] && [ "$dir" != "$(mkdir -p "$default_dir" && cd "$default_dir" && pwd)" ]; then
  echo "$dir" >"$default_dir/last-demo-dir"
  down="make down DEMO_DIR=$dir"
fi
if [ -f "$dir/dev.pid" ] && kill -0 "$(cat "$dir/dev.pid")" 2>/dev/null; then
  echo "dev cluster already running (pid $(cat "$dir/dev.pid")); '$down' stops it and its tasks"
else
  rm -f "$dir/config.yaml"
  # Two Docker agents and one process agent where a Docker daemon answers; else three process agents.
  if docker info >/dev/null 2>&1; then runtimes=docker,process,docker; else runtimes=process; fi
  nohup node dist/cmd/shoal/main.js dev --data-dir "$dir" --api-port "$api_port" --etcd-port "$etcd_port" \
    --agents 3 --runtime "$runtimes" --scheduler-api-port "${SCHEDULER_API_PORT:-5050}" \
    >"$dir/dev.log" 2>&1 &
  echo $! >"$dir/dev.pid"
  for _ in $(seq 1 100); do
    [ -f "$dir/config.yaml" ] && [ -f "$dir/pki/ca.crt" ] && curl -fsS --cacert "$dir/pki/ca.crt" "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && break
    kill -0 "$(cat "$dir/dev.pid")" 2>/dev/null || { echo "shoal dev exited; its log:"; tail -20 "$dir/dev.log"; exit 1; }
    sleep 0.2
  done
  echo "dev cluster up: API http://127.0.0.1:$api_port, log $dir/dev.log"
fi

shoal get nodes
echo
shoal apply -f manifests/examples/
echo
for app in hello web; do
  echo "waiting for app/$app to roll out..."
  if ! shoal rollout status app "$app" --timeout 120s; then
    echo
    shoal describe app "$app"
    echo "app/$app did not become available; the control plane's log: $dir/dev.log" >&2
    exit 1
  fi
done
echo
shoal get apps
echo
shoal get tasks -o wide

# job/report runs at its creation, then every minute ("R//PT1M"): wait (60 s at most) for a
# Succeeded run, then show the job, its runs and the newest run's output.
echo
echo "waiting for a run of job/report to succeed..."
succeeded=
for _ in $(seq 1 60); do
  succeeded=$(shoal get jobruns -l shoal.dev/job=report -o json | node -e '
    const items = JSON.parse(require("fs").readFileSync(0, "utf8")).items;
    const ok = items.filter((r) => r.status && r.status.phase === "Succeeded").map((r) => r.metadata.name);
    if (ok.length) console.log(ok[ok.length - 1]);') || true
  [ -n "$succeeded" ] && break
  sleep 1
done
echo
shoal get jobs
echo
shoal get jobruns
echo
if [ -n "$succeeded" ]; then
  echo "\$ shoal logs job/report"
  shoal logs job/report || shoal logs "jobrun/$succeeded" || true
else
  echo "no run of job/report succeeded within 60 s:" >&2
  shoal describe job report >&2 || true
fi

# Every web instance answers on its host port (the port an agent assigned from its range).
ports=$(shoal get tasks -l shoal.dev/app=web -o json | node -e '
  const items = JSON.parse(require("fs").readFileSync(0, "utf8")).items;
  for (const t of items) if (t.status.state === "RUNNING") console.log(t.status.hostPorts[0]);')
echo
for p in $ports; do
  printf 'curl http://127.0.0.1:%s/  →  %s\n' "$p" "$(curl -fsS "http://127.0.0.1:$p/" | head -c 80 | tr -d '\n')"
done

cat <<MSG

The web service (busybox httpd in containers) and hello (a bare cmd, no image: a process on the
process agent, or a shell in the default image on a Docker agent) are running; job report runs
every minute the same way (docs/jobs.md).
Try:
  export SHOAL_CONFIG=$dir/config.yaml
  alias shoal='node dist/cmd/shoal/main.js'
  shoal describe app web                    # tasks, health, deployment, events
  shoal scale app web --instances 4         # and watch: shoal get tasks -w
  shoal logs $(shoal get tasks -l shoal.dev/app=hello -o name | head -1 | cut -d/ -f2)   # hello's output
  shoal rollout restart app web && shoal rollout status app web
  shoal get jobruns -l shoal.dev/job=report # a run of job/report every minute
  shoal describe job report                 # next fire times, recent runs, events
  shoal job run report                      # a run now (trigger Manual); shoal logs job/report
  tail -f $dir/dev.log                      # the control plane's decisions, one line each
  $down$(printf '%*s' $(( ${#down} < 41 ? 41 - ${#down} : 0 )) '') # stop the cluster and its tasks (docs/operations.md)
MSG
