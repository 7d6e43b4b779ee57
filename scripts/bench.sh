#!/usr/bin/env bash
# The published benchmark (docs/benchmark.md) in one command:
#
#   scripts/bench.sh [HARNESS_DIR]
#
# HARNESS_DIR is the shared proxy harness (default ../shared/bench). It is copied to
# target/bench-harness (the harness installs its tools and state into its own folder),
# set up once (root: Debian packages, oha, the hudsucker peer), and run with egret as one
# more column: egret built in release mode, on its own vault in the harness's state,
# with the harness's placeholder header swapped by an egret placeholder.
#
# Settings passed through to the harness: BENCH_ROUNDS (default 5 here), BENCH_SECS,
# BENCH_TARGETS (default: direct, a plain relay, every intercepting peer and egret),
# BENCH_SCENARIOS. The table lands in target/bench-harness/.state/bench/<time>/table.md.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source_dir=$(cd "${1:-$here/../shared/bench}" && pwd)
work=$here/target/bench-harness
port=${EGRET_BENCH_PORT:-3128}

if [[ ! -f $work/.setup-done ]]; then
  rm -rf "$work" && mkdir -p "$work"
  cp -r "$source_dir/." "$work/" && chmod -R u+w "$work"
  bash "$work/setup.sh"
  touch "$work/.setup-done"
fi

(cd "$here" && cargo build --release --locked)
egret=$here/target/release/egret

state=$work/.state/egret
rm -rf "$state" && mkdir -p "$state/data"
cat > "$state/egret.yaml" <<YAML
version: 1
proxy: { listen: "127.0.0.1:$port", auth: none }
control:
  listen: 127.0.0.1:$((port + 1))
  admin_token: "\${env:EGRET_ADMIN_TOKEN}"
ca: { dir: $state/certs }
vault: { path: $state/data/egret.redb, master_key: "\${file:$state/data/master.key}" }
upstream: { extra_ca: [$work/.state/certs/upstream-ca.pem] }
network: { allow: [], deny_private_ranges: false }
connectors:
  - { id: bench, auth: api_key, egress: [api.test.local] }
YAML

cd "$work"
./start-all.sh
export EGRET_ADMIN_TOKEN
EGRET_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$egret" serve --config "$state/egret.yaml" > "$state/egret.log" 2>&1 &
egret_pid=$!
trap 'kill $egret_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "egret is ready" "$state/egret.log" && break; sleep 0.1; done
grep -q "egret is ready" "$state/egret.log" || { cat "$state/egret.log" >&2; exit 1; }
echo -n real-secret-abc | "$egret" connection set-key bench --owner org --config "$state/egret.yaml"
placeholder=$("$egret" placeholder mint bench --owner org --config "$state/egret.yaml" | head -1)

# Every peer forwards the egret placeholder unchanged (they swap only their own), so all
# of them carry the same header; only egret's upstream sees the real key.
PLACEHOLDER_AUTH="Bearer $placeholder" \
  CANDIDATE_PROXY=127.0.0.1:$port CANDIDATE_CA=$state/certs/ca.pem CANDIDATE_NAME=egret \
  BENCH_ROUNDS=${BENCH_ROUNDS:-5} BENCH_START=0 \
  BENCH_TARGETS=${BENCH_TARGETS:-direct squid-tunnel squid-bump mitmproxy hudsucker egret} \
  ./bench.sh
