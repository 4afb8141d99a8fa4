#!/usr/bin/env bash
# Issue 11's table in one sitting: CPU per delivery, round trips, latency and memory per
# connection of one or more builds of ours and of ngircd, with the same load tool, at a
# fixed offered load below saturation, alternating the sides in every round so drift on
# the machine hits all of them alike. Loopback only; every run is bounded in time.
#
#   bench/efficiency.sh ROUNDS SIDE...
#
# A SIDE is `ngircd` (started by bench/peers/start.sh) or `NAME=BIN_DIR[,FLAG...]`: a
# broker and server from BIN_DIR, the server with `--flood-rate off --max-conns-per-ip 0`
# and the FLAGs, e.g.
#
#   bench/efficiency.sh 2 old=/work/old/target/release new=target/release \
#       new-no-coalescing=target/release,--coalesce-ms,0 ngircd
#
# Writes JSON lines to bench/results/efficiency-<date>.jsonl and prints the table
# (bench/efficiency_summary.py). ROWS=a,b limits the rows (fan100x10, fan1000x1,
# rtt1000x20, p99, ramp); TOOL_ARGS adds chat-bench flags to every run (e.g.
# TOOL_ARGS="--threads 2"); OUT names the results file instead.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:?rounds}; shift
[ $# -gt 0 ] || { echo "no sides" >&2; exit 2; }
rows=${ROWS:-fan100x10,fan1000x1,rtt1000x20,p99,ramp}
cargo build --release -p bench >&2
tool=target/release/chat-bench
out=${OUT:-"bench/results/efficiency-$(date +%Y-%m-%d).jsonl"}
read -r -a tool_args <<<"${TOOL_ARGS:-}"
mkdir -p bench/results
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export CHAT_TOKEN=efficiency-token
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
. bench/lib.sh

# start_side SIDE: a fresh system; sets addr, pid_args (the --*-pid flags), proto_args.
start_side() {
  local side=$1
  if [ "$side" = ngircd ]; then
    kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=()
    local port=$((16667 + RANDOM % 1000))
    PEER_LOG=/dev/null bench/peers/start.sh ngircd "$port" >"$tmp/ngircd.out" 2>&1 &
    pids+=($!)
    wait_addr "$tmp/ngircd.out" "listening on " >/dev/null
    pid_args=(--server-pid "$(wait_addr "$tmp/ngircd.out" "pid ")")
    addr="127.0.0.1:$port"
    proto_args=(--proto irc --login-parallel 8)
    return
  fi
  local spec=${side#*=}
  local dir=${spec%%,*} flags=()
  [ "$spec" != "$dir" ] && IFS=, read -r -a flags <<<"${spec#*,}"
  start_chat "$dir" "$tmp" --flood-rate off --max-conns-per-ip 0 "${flags[@]}"
  pid_args=(--server-pid "$server_pid" --broker-pid "$broker_pid")
  proto_args=()
}

run() { # SIDE ROW CHAT-BENCH-ARGS...
  local side=$1 row=$2; shift 2
  [[ ",$rows," == *",$row,"* ]] || return 0
  start_side "$side"
  local name=${side%%=*}
  echo "--- $name $row: chat-bench $*" >&2
  local line
  if line=$("$tool" "$@" "${tool_args[@]}" "${proto_args[@]}" --addr "$addr" "${pid_args[@]}" --json 2>"$tmp/err" | tail -1); then
    echo "{\"side\":\"$name\",\"row\":\"$row\",\"result\":$line}" >>"$out"
  else
    echo "    failed: $(tail -3 "$tmp/err")" >&2
  fi
}

for r in $(seq "$rounds"); do
  for side in "$@"; do
    p="e$r${RANDOM}"
    run "$side" fan100x10 fanout --listeners 100 --senders 10 --rate 200 --duration 10 --prefix "${p}a"
    run "$side" fan1000x1 fanout --listeners 1000 --senders 1 --rate 200 --duration 10 --sources 8 --prefix "${p}b"
    run "$side" rtt1000x20 rtt --users 1000 --messages 20 --sources 8 --prefix "${p}c"
    run "$side" p99 fanout --listeners 1000 --senders 1 --rate 100 --duration 10 --sources 8 --prefix "${p}d"
    if [ "$side" = ngircd ]; then
      # ngircd's listen backlog is 10: its ramp goes in steps of 10 every 10 ms.
      run "$side" ramp ramp --no-join --target 19000 --batch 10 --interval-ms 10 --sources 50 --prefix "${p}e"
    else
      run "$side" ramp ramp --target 19000 --sources 50 --prefix "${p}e"
    fi
  done
done
kill "${pids[@]}" 2>/dev/null || true; pids=()
python3 bench/efficiency_summary.py "$out"
