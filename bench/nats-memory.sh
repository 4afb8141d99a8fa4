#!/usr/bin/env bash
# Memory per connection on NATS, two builds of the server in one run (BENCHMARKS.md,
# "Memory per connection on NATS"): each run gets a fresh one-node JetStream server and one
# server of the build, ramps to TARGET clients with this tree's chat-bench, and reports the
# server's RSS over the clients it holds. Alternates A, B, A, B so drift hits both alike.
# Loopback only; every run is bounded.
#
#   bench/nats-memory.sh A_BIN_DIR B_BIN_DIR [ROUNDS] [TARGET]
#
# Writes JSON lines to bench/results/nats-memory-<date>.jsonl and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
a_dir=${1:?first build\'s bin dir}; b_dir=${2:?second build\'s bin dir}
rounds=${3:-2}; target=${4:-5000}
cargo build --release -p bench >&2
out="bench/results/nats-memory-$(date +%Y-%m-%d).jsonl"
mkdir -p bench/results
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
. bench/lib.sh

run() { # LABEL BIN_DIR
  local label=$1 dir=$2
  kill "${pids[@]}" 2>/dev/null || true
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  rm -rf "$tmp/n"; mkdir -p "$tmp/n"
  "$nats_bin" -js -a 127.0.0.1 -p 14310 -sd "$tmp/n" >"$tmp/n.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/14310) 2>/dev/null && break; sleep 0.05; done
  "$dir/server" --nats nats://127.0.0.1:14310 --listen 127.0.0.1:0 --text-listen off \
    --flood-rate off --max-conns-per-ip 0 >"$tmp/s.out" 2>"$tmp/s.err" &
  pids+=($!)
  local server_pid=$!
  local addr
  addr=$(wait_addr "$tmp/s.out" "listening on ")
  bench "$label" ramp --addr "$addr" --target "$target" --sources 50 --server-pid "$server_pid" \
    --broker-pid "${pids[0]}" --prefix "m$RANDOM"
}

for r in $(seq "$rounds"); do
  run "A round $r" "$a_dir"
  run "B round $r" "$b_dir"
done

python3 - "$out" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    row = json.loads(line)
    res = row.get("result") or {}
    fig = res.get("figures", res)
    keys = [k for k in fig if "kib" in k.lower() or "rss" in k.lower()]
    print(row["label"], {k: fig[k] for k in keys} or row.get("error"))
EOF
