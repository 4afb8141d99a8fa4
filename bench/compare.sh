#!/usr/bin/env bash
# Before/after in one run: two builds of broker + server, measured with the same load tool
# (this tree's chat-bench), alternating A, B, A, B so drift on the machine hits both alike.
# Each run gets a fresh broker and server (no flood control, like run-all.sh) and the pids
# of both, so every line also has the CPU per delivery of server and broker and the tool's
# own CPU share. Loopback only; every run is bounded in time.
#
#   bench/compare.sh A_BIN_DIR B_BIN_DIR [ROUNDS]     # e.g. /work/old/target/release target/release
#
# Writes JSON lines to bench/results/compare-<date>.jsonl and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
a_dir=${1:?first build\'s bin dir}; b_dir=${2:?second build\'s bin dir}; rounds=${3:-3}
cargo build --release -p bench >&2
tool=target/release/chat-bench
out="bench/results/compare-$(date +%Y-%m-%d).jsonl"
mkdir -p bench/results
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export CHAT_TOKEN=compare-token
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

. bench/lib.sh

start() { # BIN_DIR: fresh broker + server; sets addr, server_pid, broker_pid
  start_chat "$1" "$tmp" --flood-rate off --max-conns-per-ip 0
}

run() { # LABEL BIN_DIR ARGS...
  local label=$1 dir=$2; shift 2
  start "$dir"
  echo "--- $label: chat-bench $*" >&2
  local line
  if line=$("$tool" "$@" --addr "$addr" --server-pid "$server_pid" --broker-pid "$broker_pid" --json 2>"$tmp/err" | tail -1); then
    echo "{\"label\":\"$label\",\"build\":\"$dir\",\"result\":$line}" >>"$out"
  else
    echo "    failed: $(tail -3 "$tmp/err")" >&2
  fi
}

for r in $(seq "$rounds"); do
  for side in A B; do
    dir=$a_dir; [ $side = B ] && dir=$b_dir
    run "$side fanout 100x10" "$dir" fanout --listeners 100 --senders 10 --duration 10 --prefix "f$r$side"
    run "$side rtt 1000x20" "$dir" rtt --users 1000 --messages 20 --sources 8 --prefix "r$r$side"
    run "$side ramp 19000" "$dir" ramp --target 19000 --sources 50 --prefix "m$r$side"
  done
done
kill "${pids[@]}" 2>/dev/null || true; pids=()
python3 bench/summary.py "$out"
