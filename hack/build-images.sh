#!/usr/bin/env bash
# Builds the local images the examples and tests run (no registry is reachable):
#   shoal/busybox:latest — FROM scratch: Debian's static busybox as /bin/busybox, a symlink per
#   applet (/bin/sh, /bin/sleep, /usr/sbin/httpd…), /etc/passwd and /etc/group (root, nobody
#   65534, shoal 1000), /www/index.html for manifests/examples/web.yaml, /tmp (1777), and
#   USER 65534:65534 so the image is unprivileged even when run outside Shoal.
# A scratch image has no shell at build time, so the root filesystem is prepared here on the
# host and copied in with `COPY rootfs/ /`. Idempotent and quick: the image carries a hash of
# busybox and this script (label shoal.build-hash) and is rebuilt only when that changes.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${SHOAL_BUSYBOX_IMAGE:-shoal/busybox:latest}

fail() { echo "build-images: $*" >&2; exit 1; }

busybox=$(command -v busybox) || fail "busybox not found (install busybox-static: hack/install-deps.sh)"
busybox=$(readlink -f "$busybox")
# FROM scratch has no libc: only the static build runs there.
if ldd "$busybox" >/dev/null 2>&1; then fail "$busybox is dynamically linked; install busybox-static"; fi
docker info >/dev/null 2>&1 || fail "no Docker daemon answers (hack/start-dockerd.sh starts one)"

# Everything in the image is made by this script from busybox, so their bytes identify the build.
hash=$(cat "$busybox" "$0" | sha256sum | cut -c1-16)
have=$(docker image inspect --format '{{index .Config.Labels "shoal.build-hash"}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$hash" ]; then
  echo "build-images: $IMAGE is up to date" >&2
  exit 0
fi

ctx=$(mktemp -d /tmp/shoal-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,www,tmp} "$ctx/home-shoal"
chmod 1777 "$root/tmp"
install -m 0755 "$busybox" "$root/bin/busybox"
# One absolute symlink per applet, where busybox itself would install it (bin/sh, usr/sbin/httpd…).
while read -r applet; do
  case $applet in bin/busybox | linuxrc) continue ;; esac # linuxrc: an initrd's init, not a tool
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
shoal:x:1000:1000:shoal:/home/shoal:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
shoal:x:1000:
nogroup:x:65534:
EOF
cat >"$root/www/index.html" <<'EOF'
<!doctype html>
<title>Shoal</title>
<h1>Hello from Shoal</h1>
<p>Served by busybox httpd in a shoal/busybox container.</p>
EOF
chmod -R a+rX "$root"

cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
COPY --chown=1000:1000 home-shoal/ /home/shoal/
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER 65534:65534
CMD ["/bin/sh"]
EOF

echo "build-images: building $IMAGE" >&2
old=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# The legacy builder: Debian's docker.io ships no buildx, and this build needs nothing more.
DOCKER_BUILDKIT=0 docker build -q \
  --label "shoal.build-hash=$hash" \
  --label "org.opencontainers.image.title=shoal/busybox" \
  --label "org.opencontainers.image.description=busybox-static FROM scratch, built by hack/build-images.sh" \
  -t "$IMAGE" "$ctx" >/dev/null 2>"$ctx/build.log" || { cat "$ctx/build.log" >&2; fail "docker build of $IMAGE failed"; }
# The previous build is now untagged: drop it (refused, and kept, while a container uses it).
[ -z "$old" ] || docker image rm "$old" >/dev/null 2>&1 || true
echo "build-images: built $IMAGE ($hash)" >&2
