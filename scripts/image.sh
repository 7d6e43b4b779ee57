#!/usr/bin/env bash
# Builds egret's container image FROM scratch with buildah, offline: no base image is
# pulled. The image holds the release binary and the shared libraries it links (at the
# paths its loader looks in), the system CA roots, /etc/passwd with the non-root user
# `egret` (uid 10001), the container policy (config/container.yaml) and an empty
# /var/lib/egret for its state; HEALTHCHECK runs `egret health` (which asks /readyz).
#
#   scripts/image.sh                     # cargo build --profile dist, then the image
#   scripts/image.sh --binary PATH       # package this binary instead (tests use it)
#   scripts/image.sh --tag NAME          # default localhost/egret:latest
#
# Storage is buildah's own (root: /var/lib/containers); CONTAINERS_STORAGE_CONF points it
# elsewhere. Prints the image's name and size last.
set -euo pipefail
# Docker's format throughout: OCI image configs have no HEALTHCHECK.
export BUILDAH_FORMAT=docker
cd "$(dirname "$0")/.."

tag=localhost/egret:latest
binary=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --tag) tag=${2:?--tag needs a name}; shift 2 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument \`$1\`; see scripts/image.sh --help" >&2; exit 2 ;;
  esac
done
if ! command -v buildah >/dev/null; then
  echo "error: buildah is not installed; on Debian: apt-get install buildah" >&2
  exit 1
fi
if [[ -z $binary ]]; then
  cargo build --profile dist --locked --bin egret
  binary=target/dist/egret
fi
[[ -x $binary ]] || { echo "error: $binary is not an executable; build it first" >&2; exit 1; }

ctr=$(buildah from scratch)
cleanup() {
  buildah umount "$ctr" >/dev/null 2>&1 || true
  buildah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
root=$(buildah mount "$ctr")

install -D -m 0755 "$binary" "$root/usr/local/bin/egret"
# The libraries the binary links, each at the path the loader asks for (the file itself,
# not a symlink to it). A static binary has none.
if ldd "$binary" >/dev/null 2>&1; then
  ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
    while read -r lib; do
      install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
    done
fi
# The system's CA roots: egret trusts its built-in web PKI roots for upstreams, but
# `upstream.extra_ca` and `vault.ca_file` may name this bundle, and so may tools.
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
install -d -m 0755 "$root/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\negret:x:10001:10001:egret:/var/lib/egret:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\negret:x:10001:\n' >"$root/etc/group"
# Names resolve from /etc/hosts, then DNS (/etc/resolv.conf comes from the runtime).
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
install -D -m 0644 config/container.yaml "$root/etc/egret/egret.yaml"
install -d -m 0700 -o 10001 -g 10001 "$root/var/lib/egret"
install -d -m 1777 "$root/tmp"
buildah umount "$ctr" >/dev/null

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
buildah config \
  --user 10001:10001 \
  --workingdir /var/lib/egret \
  --env EGRET_CONFIG=/etc/egret/egret.yaml \
  --entrypoint '["/usr/local/bin/egret"]' \
  --cmd serve \
  --port 3128 \
  --volume /var/lib/egret \
  --healthcheck 'CMD /usr/local/bin/egret health' \
  --healthcheck-interval 30s --healthcheck-timeout 5s \
  --healthcheck-start-period 10s --healthcheck-retries 3 \
  --label org.opencontainers.image.title=egret \
  --label "org.opencontainers.image.version=${version:-unknown}" \
  --label org.opencontainers.image.description="egress credential-injecting proxy for AI-agent sandboxes" \
  "$ctr"
# Docker's format: OCI image configs have no HEALTHCHECK.
buildah commit --quiet --format docker --rm "$ctr" "$tag" >/dev/null
trap - EXIT
size=$(buildah images --format '{{.Size}}' "$tag" | head -1)
echo "built $tag ($size)"
