#!/usr/bin/env bash
# Connects an OAuth service through egret on your machine, end to end, in one command:
# the test authorization server (oidc-provider) plays the vendor, egret runs on
# 127.0.0.1:3228/3229 with a throwaway CA and vault, and curl plays both the user's
# browser and the sandbox. Needs: cargo, node >= 20.19, npm, openssl, curl.
#
#   tests/oauth-server/demo.sh          # sign in with curl, non-interactive
#   DEMO_BROWSER=1 tests/oauth-server/demo.sh   # open the sign-in URL yourself
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "== building egret and installing the test server's npm packages"
(cd "$repo" && cargo build --quiet)
egret="$repo/target/debug/egret"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

echo "== a demo CA and a certificate for auth.localhost / api.localhost"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$work/demo-ca.key" -out "$work/demo-ca.pem" -subj "/CN=egret demo CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$work/server.key" -out "$work/server.csr" -subj "/CN=auth.localhost" 2>/dev/null
printf 'subjectAltName=DNS:auth.localhost,DNS:api.localhost\n' > "$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/demo-ca.pem" -CAkey "$work/demo-ca.key" \
  -CAcreateserial -days 1 -extfile "$work/san.ext" -out "$work/server.pem" 2>/dev/null

echo "== starting the authorization server"
clients='[{"client_id":"egret-demo","client_secret":"demo-secret","grant_types":["authorization_code","refresh_token"],"redirect_uris":["http://127.0.0.1:3229/oauth/callback"],"response_types":["code"]}]'
mkfifo "$work/auth.in"
ISSUER_HOST=auth.localhost CERT="$work/server.pem" KEY="$work/server.key" CLIENTS="$clients" \
  ACCESS_TTL=120 node "$here/server.mjs" < "$work/auth.in" > "$work/auth.out" 2> "$work/auth.log" &
pids+=($!)
exec 3> "$work/auth.in"   # the server exits when this script does (its stdin closes)
for _ in $(seq 100); do [[ -s "$work/auth.out" ]] && break; sleep 0.1; done
port="$(head -1 "$work/auth.out" | sed 's/[^0-9]//g')"
echo "   issuer https://auth.localhost:$port"

printf 'demo-secret\n' > "$work/client.secret"
cat > "$work/egret.yaml" <<EOF
version: 1
proxy: { listen: "127.0.0.1:3228" }
control: { listen: "127.0.0.1:3229" }
upstream:
  extra_ca: [demo-ca.pem]
  resolve: { auth.localhost: 127.0.0.1, api.localhost: 127.0.0.1 }
connectors:
  - id: demo
    template: generic
    settings: { issuer: "https://auth.localhost:$port" }
    oauth:
      client_id: egret-demo
      client_secret: \${file:client.secret}
      scopes: [openid, offline_access, read]
      extra_params: { prompt: consent }
    egress: ["api.localhost:$port"]
EOF

echo "== egret serve"
"$egret" serve --config "$work/egret.yaml" 2> "$work/egret.log" &
pids+=($!)
for _ in $(seq 50); do curl -sf http://127.0.0.1:3229/readyz >/dev/null && break; sleep 0.2; done
"$egret" ca export --config "$work/egret.yaml" > "$work/egret-ca.pem"

echo "== egret connection connect demo --owner user:you"
url="$("$egret" connection connect demo --owner user:you --config "$work/egret.yaml")"
echo "   $url"
resolve=(--resolve "auth.localhost:$port:127.0.0.1" --cacert "$work/demo-ca.pem")
if [[ "${DEMO_BROWSER:-}" == 1 ]]; then
  echo "   open it in a browser (trust $work/demo-ca.pem or accept the warning), sign in, then press Enter"
  read -r
else
  # What the browser does: follow redirects, submit the sign-in form, then the consent form.
  jar="$work/cookies"
  page="$url"
  for _ in 1 2 3; do
    page="$(curl -s "${resolve[@]}" -c "$jar" -b "$jar" -L -o "$work/page.html" -w '%{url_effective}' "$page")"
    action="$(grep -o 'action="[^"]*"' "$work/page.html" | grep -v /deny | head -1 | cut -d'"' -f2)"
    [[ -z "$action" ]] && break
    next="$(curl -s "${resolve[@]}" -c "$jar" -b "$jar" -d login=you -o /dev/null -w '%{redirect_url}' "https://auth.localhost:$port$action")"
    final="$(curl -s "${resolve[@]}" -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$next")"
    if [[ "$final" == http://127.0.0.1:3229/* ]]; then
      curl -s -b "$jar" "$final" | sed -n 's/.*<p>\(.*\)<\/p>.*/   callback page: \1/p'
      echo
      break
    fi
    page="$final"
  done
fi
"$egret" connection list --config "$work/egret.yaml"

echo "== the sandbox holds only a placeholder"
placeholder="$("$egret" placeholder mint demo --owner user:you --config "$work/egret.yaml")"
echo "   $placeholder"
echo "== curl through egret to the vendor's API"
curl -s -x http://127.0.0.1:3228 --cacert "$work/egret-ca.pem" \
  -H "authorization: Bearer $placeholder" "https://api.localhost:$port/resource"
echo
