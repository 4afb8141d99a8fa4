#!/usr/bin/env bash
# Two builds of the server on NATS in one run (BENCHMARKS.md, "2026-12-02 (morning)"):
# each run gets a fresh one-node JetStream server and servers of the build; this tree's
# chat-bench measures them. Alternates A, B, A, B so drift hits both alike. Loopback only;
# every run is bounded.
#
#   bench/nats-compare.sh A_BIN_DIR B_BIN_DIR [ROUNDS] [TARGET]
#
# Per round: a ramp to TARGET clients on one server (its RSS over the clients it holds),
# then fanout 100 x 10 for 10 s over two servers (deliveries/s, CPU per delivery).
# Writes JSON lines to bench/results/nats-compare-<date>.jsonl and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
a_dir=${1:?first build\'s bin dir}; b_dir=${2:?second build\'s bin dir}
rounds=${3:-2}; target=${4:-5000}
cargo build --release -p bench >&2
out="bench/results/nats-compare-$(date +%Y-%m-%d).jsonl"
mkdir -p bench/results
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
. bench/lib.sh

fresh_node() {
  kill "${pids[@]}" 2>/dev/null || true
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  rm -rf "$tmp/n"; mkdir -p "$tmp/n"
  "$nats_bin" -js -a 127.0.0.1 -p 14310 -sd "$tmp/n" >"$tmp/n.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/14310) 2>/dev/null && break; sleep 0.05; done
}

start_server() { # BIN_DIR N: appends to addrs and server_pids
  "$1/server" --nats nats://127.0.0.1:14310 --listen 127.0.0.1:0 --text-listen off \
    --flood-rate off --max-conns-per-ip 0 >"$tmp/s$2.out" 2>"$tmp/s$2.err" &
  pids+=($!)
  server_pids+=(--server-pid $!)
  addrs+=("$(wait_addr "$tmp/s$2.out" "listening on ")")
}

run() { # LABEL BIN_DIR
  local label=$1 dir=$2
  fresh_node; addrs=(); server_pids=()
  start_server "$dir" 1
  bench "$label ramp" ramp --addr "${addrs[0]}" --target "$target" --sources 50 \
    "${server_pids[@]}" --broker-pid "${pids[0]}" --prefix "m$RANDOM"
  fresh_node; addrs=(); server_pids=()
  start_server "$dir" 1; start_server "$dir" 2
  bench "$label fanout 100x10" fanout --addr "${addrs[0]}" --also-addr "${addrs[1]}" \
    "${server_pids[@]}" --broker-pid "${pids[0]}" --listeners 100 --senders 10 --duration 10 \
    --prefix "f$RANDOM"
}

for r in $(seq "$rounds"); do
  run "A round $r" "$a_dir"
  run "B round $r" "$b_dir"
done

python3 - "$out" <<'EOF'
import json, sys
keep = ("server_rss_kib_per_conn", "deliveries_per_s", "server_us_per_delivery",
        "tool_cpu_share")
for line in open(sys.argv[1]):
    row = json.loads(line)
    res = row.get("result") or {}
    fig = res.get("figures", res)
    print(row["label"], {k: fig[k] for k in keep if k in fig} or row.get("error"))
EOF
