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
#
# EGRET_VARIANTS="rules postgres" adds, side by side in the same run, egret with five
# request rules on the connector (the matching one last) as `egret-rules`, and egret on
# PostgreSQL as `egret-pg` (the database EGRET_BENCH_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/egret_bench, is dropped and created). Every variant
# holds a copy of the same vault, so the one placeholder works through all of them.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source_dir=$(cd "${1:-$here/../shared/bench}" && pwd)
work=$here/target/bench-harness
port=${EGRET_BENCH_PORT:-3128}
variants=${EGRET_VARIANTS:-}
database=${EGRET_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/egret_bench}

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
export EGRET_ADMIN_TOKEN
EGRET_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

# policy NAME PORT VAULT-YAML [RULES]: one egret's policy file.
policy() {
  cat > "$state/$1.yaml" <<YAML
version: 1
proxy: { listen: "127.0.0.1:$2", auth: none }
control:
  listen: 127.0.0.1:$(($2 + 1))
  admin_token: "\${env:EGRET_ADMIN_TOKEN}"
ca: { dir: $state/$1-certs }
vault: $3
upstream: { extra_ca: [$work/.state/certs/upstream-ca.pem] }
network: { allow: [], deny_private_ranges: false }
connectors:
  - id: bench
    auth: api_key
    egress: [api.test.local]
YAML
  if [[ ${4:-} == rules ]]; then
    cat >> "$state/$1.yaml" <<'YAML'
    rules:
      - { methods: [DELETE], path: "/v1/files/**", action: deny }
      - { methods: [POST], path: "/v1/fine_tuning/**", action: deny }
      - { methods: [GET], path: "/v1/models/*", action: allow }
      - { methods: [POST], path: "/v1/assistants", query: { beta: "true" }, action: deny }
      - { methods: [GET, HEAD], path: "/*", action: allow }
    default: deny
YAML
  fi
}
redb() { echo "{ path: $state/$1/egret.redb, master_key: \"\${file:$state/data/master.key}\" }"; }

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
# start NAME: serves NAME's policy until this script ends.
start() {
  "$egret" serve --config "$state/$1.yaml" > "$state/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q "egret is ready" "$state/$1.log" && break; sleep 0.1; done
  grep -q "egret is ready" "$state/$1.log" || { cat "$state/$1.log" >&2; exit 1; }
}

cd "$work"
./start-all.sh

# The vault every egret starts from: one key, one placeholder.
policy egret "$port" "$(redb data)"
start egret
echo -n real-secret-abc | "$egret" connection set-key bench --owner org --config "$state/egret.yaml"
placeholder=$("$egret" placeholder mint bench --owner org --config "$state/egret.yaml" | head -1)

extra=""
if [[ -n $variants ]]; then
  # Copies of the vault are taken with egret stopped (its file is locked while it runs).
  kill "${pids[@]}" && wait "${pids[@]}" 2>/dev/null || true
  pids=()
  at=$port
  for v in $variants; do
    at=$((at + 10))
    case $v in
      rules)
        mkdir -p "$state/rules" && cp "$state/data/egret.redb" "$state/rules/"
        policy egret-rules "$at" "$(redb rules)" rules ;;
      postgres)
        base=${database%/*} name=${database##*/}
        psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name"
        "$egret" vault migrate --to "$database" --config "$state/egret.yaml"
        printf '%s' "$database" > "$state/database-url" && chmod 600 "$state/database-url"
        policy egret-pg "$at" "{ backend: postgres, url: \"\${file:$state/database-url}\", master_key: \"\${file:$state/data/master.key}\" }" ;;
      *) echo "EGRET_VARIANTS: unknown variant $v (rules, postgres)" >&2; exit 2 ;;
    esac
    name=egret-${v/postgres/pg}
    start "$name"
    extra+=" $name"
  done
  start egret
fi

# Each egret's CA certificate, for the harness's clients.
for name in egret $extra; do
  "$egret" ca export --config "$state/$name.yaml" > "$state/$name-ca.pem"
done
# The harness takes one candidate; further egret columns are added to its copy here.
if [[ -n $extra ]] && ! grep -q EXTRA_CANDIDATES lib/peers.sh; then
  cat >> lib/peers.sh <<'SH'

# Added by egret's scripts/bench.sh: EXTRA_CANDIDATES="name=ADDR=CA ..." adds columns.
for _extra in ${EXTRA_CANDIDATES:-}; do
  IFS='=' read -r _n _a _c <<<"$_extra"
  PEERS+=("$_n"); BENCH_PEERS+=("$_n"); PEER_ADDR[$_n]=$_a; PEER_CA[$_n]=$_c; PEER_INTERCEPTS[$_n]=1
done
SH
fi
candidates=""
at=$port
for name in $extra; do
  at=$((at + 10))
  candidates+=" $name=127.0.0.1:$at=$state/$name-ca.pem"
done

# Every peer forwards the egret placeholder unchanged (they swap only their own), so all
# of them carry the same header; only egret's upstream sees the real key.
PLACEHOLDER_AUTH="Bearer $placeholder" EXTRA_CANDIDATES="$candidates" \
  CANDIDATE_PROXY=127.0.0.1:$port CANDIDATE_CA=$state/egret-ca.pem CANDIDATE_NAME=egret \
  BENCH_ROUNDS=${BENCH_ROUNDS:-5} BENCH_START=0 \
  BENCH_TARGETS=${BENCH_TARGETS:-direct squid-tunnel squid-bump mitmproxy hudsucker egret$extra} \
  ./bench.sh
