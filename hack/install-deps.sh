#!/usr/bin/env bash
# Installs the system packages Shoal needs, from Debian's archive, when missing:
# etcd (server and etcdctl), Docker's engine, busybox-static (for local images), openssl
# (the certificates of `shoal dev` and the tests).
# Idempotent and quiet; run as root (or with sudo available) on a fresh machine.
set -euo pipefail

declare -A want=(
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [dockerd]=docker.io
  [busybox]=busybox-static
  [openssl]=openssl
)

missing=()
for bin in "${!want[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${want[$bin]}")
done
# busybox must be the static build: it is copied into images FROM scratch.
if command -v busybox >/dev/null 2>&1 && ldd "$(command -v busybox)" >/dev/null 2>&1; then
  missing+=(busybox-static)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's etcd-server package starts a system etcd where systemd runs; Shoal starts its own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  $sudo systemctl disable --now etcd >/dev/null 2>&1 || true
fi
