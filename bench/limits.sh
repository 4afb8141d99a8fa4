#!/usr/bin/env bash
# The seeds' workloads and the flood case against one build, with the server's defaults
# and with flood control off (`--flood-rate off`, every other default kept), alternating
# defaults / off each round so drift on the machine hits both alike. Each run gets a fresh
# broker and server and their pids (CPU per delivery, the tool's own CPU share). Loopback
# only; every run is bounded in time.
#
#   bench/limits.sh [ROUNDS]
#
# Writes JSON lines to bench/results/limits-<date>.jsonl and prints a summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
cargo build --release -p broker -p server -p bench >&2
tool=target/release/chat-bench
out="bench/results/limits-$(date +%Y-%m-%d).jsonl"
mkdir -p bench/results
: >"$out"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export CHAT_TOKEN=limits-token
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

. bench/lib.sh

start() { # MODE (defaults|off): fresh broker + server; sets addr, server_pid, broker_pid
  local flags=()
  [ "$1" = off ] && flags=(--flood-rate off)
  start_chat target/release "$tmp" "${flags[@]}"
}

run() { # LABEL MODE ARGS...
  local label=$1 mode=$2; shift 2
  start "$mode"
  echo "--- $label ($mode): chat-bench $*" >&2
  local line
  if line=$("$tool" "$@" --addr "$addr" --server-pid "$server_pid" --broker-pid "$broker_pid" --json 2>"$tmp/err" | tail -1); then
    echo "{\"label\":\"$label\",\"mode\":\"$mode\",\"result\":$line}" >>"$out"
  else
    echo "{\"label\":\"$label\",\"mode\":\"$mode\",\"error\":$(tail -c 300 "$tmp/err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" >>"$out"
    echo "    failed: $(tail -3 "$tmp/err")" >&2
  fi
}

for r in $(seq "$rounds"); do
  for mode in defaults off; do
    run "payload 5x200 10-20KB (seed 003)" $mode payload --clients 5 --messages 200 --min 10000 --max 20000 --bare-name --prefix "p$r$mode"
    run "payload 5x300 30-50KB (seed 003)" $mode payload --clients 5 --messages 300 --min 30000 --max 50000 --bare-name --prefix "q$r$mode"
    run "rtt 60x25 (seed 004)" $mode rtt --users 60 --messages 25 --bare-name --prefix "r$r$mode"
    run "ramp 50 per step from one address to 1500 (seed 000)" $mode ramp --batch 50 --interval-ms 250 --target 1500 --sources 1 --bare-name --prefix "m$r$mode"
  done
  # The flood case, with the defaults: the bots alone, then with one and two flooders.
  for flooders in 0 1 2; do
    run "stress 50 bots, $flooders flooders" defaults stress --bots 50 --duration 10 --flooders $flooders --prefix "s$r$flooders"
  done
done
kill "${pids[@]}" 2>/dev/null || true; pids=()
python3 bench/limits_summary.py "$out"
