#!/usr/bin/env bash
# The three deployments side by side, in one run on one machine (issue 14, BENCHMARKS.md
# "Scaling out"): the embedded broker, one NATS node with JetStream, and a three-node R3
# cluster (scripts/nats-cluster.sh), two servers each, with clients spread over both (so
# every message crosses the backend). Loopback only; every run is bounded.
#
#   bench/nats.sh            # fanout 100x10 and 1000x1 (max and 100/s), rtt 1000x20, ramp 19000
#   QUICK=1 bench/nats.sh    # shorter runs, a smaller ramp
#   OUT=f.jsonl ROUNDS=3 ROWS="fanout 100x10" bench/nats.sh  # only rows matching ROWS, the
#                            # three deployments alternated ROUNDS times (noisy rows)
#   TOOL="--threads 2" bench/nats.sh  # extra chat-bench flags for every row (a row's label
#                            # then says them)
#
# Writes one JSON line per run to bench/results/nats-<date>.jsonl (label = deployment and
# scenario) and prints the summary table. The CPU of the backend (broker, or every NATS
# node) is measured as the "broker" of each row.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p broker -p server -p bench
out=${OUT:-"bench/results/nats-$(date +%Y-%m-%d).jsonl"}
mkdir -p bench/results
: >"$out"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
dur=10; ramp_target=19000
if [ -n "${QUICK:-}" ]; then dur=3; ramp_target=3000; fi

tmp=$(mktemp -d)
pids=()
backend_pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  scripts/nats-cluster.sh stop "$tmp/r3" >/dev/null 2>&1 || true
  kill "${backend_pids[@]}" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
. bench/lib.sh

nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)

# stop_all PID...: kills these and waits for them (only these: a bare `wait` would wait
# for the backend too).
stop_all() {
  [ $# -gt 0 ] || return 0
  kill "$@" 2>/dev/null || true
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# start_backend KIND: starts the backend of a deployment afresh; sets server_flags (what
# puts a server on it) and backend_pids.
start_backend() {
  stop_all "${pids[@]}" "${backend_pids[@]}"; pids=()
  scripts/nats-cluster.sh stop "$tmp/r3" >/dev/null 2>&1 || true
  backend_pids=()
  case $1 in
    broker)
      CHAT_DATA_DIR="$tmp/data-$RANDOM" target/release/broker --listen 127.0.0.1:0 \
        >"$tmp/broker.out" 2>"$tmp/broker.err" &
      backend_pids=($!)
      server_flags=(--broker "$(wait_addr "$tmp/broker.out" "listening on ")")
      ;;
    nats1)
      rm -rf "$tmp/n1"; mkdir -p "$tmp/n1"
      "$nats_bin" -js -a 127.0.0.1 -p 14300 -sd "$tmp/n1" >"$tmp/n1.log" 2>&1 &
      backend_pids=($!)
      for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/14300) 2>/dev/null && break; sleep 0.05; done
      server_flags=(--nats nats://127.0.0.1:14300)
      ;;
    r3)
      scripts/nats-cluster.sh start "$tmp/r3" >/dev/null
      for i in 0 1 2; do backend_pids+=("$(cat "$tmp/r3/n$i/nats.pid")"); done
      # Each server is told one node; the cluster gives it the others.
      server_flags=(--nats nats://127.0.0.1:4222)
      ;;
  esac
}

# start_servers: two servers on the backend, without the rate limit; sets addr, also and
# measure.
start_servers() {
  stop_all "${pids[@]}"; pids=()
  local addrs=()
  for i in 1 2; do
    local flags=("${server_flags[@]}")
    # The second server of the R3 cluster on another node.
    if [ "$kind" = r3 ] && [ "$i" = 2 ]; then flags=(--nats nats://127.0.0.1:4223); fi
    target/release/server "${flags[@]}" --listen 127.0.0.1:0 --text-listen off \
      --flood-rate off --max-conns-per-ip 0 >"$tmp/s$i.out" 2>"$tmp/s$i.err" &
    pids+=($!)
    addrs+=("$(wait_addr "$tmp/s$i.out" "listening on ")")
  done
  addr=${addrs[0]}; also=(--also-addr "${addrs[1]}")
  measure=(--server-pid "${pids[0]}" --server-pid "${pids[1]}")
  for bp in "${backend_pids[@]}"; do measure+=(--broker-pid "$bp"); done
}

# One row, labelled with the deployment (and the round, if several); only rows matching
# ROWS (a grep pattern) when it is set.
row() {
  local label="$kind $1"; shift
  [ -n "${TOOL:-}" ] && label="$label [$TOOL]"
  [ "${ROUNDS:-1}" -gt 1 ] && label="$label (round $round)"
  # shellcheck disable=SC2086 # TOOL is a list of flags
  bench "$label" "$@" ${TOOL:-}
}
want() { [ -z "${ROWS:-}" ] || grep -qE -- "$ROWS" <<<"$1"; }

for round in $(seq "${ROUNDS:-1}"); do
for kind in broker nats1 r3; do
  start_backend "$kind"
  p=${kind:0:1}${kind: -1}
  want "fanout 100x10 max" && start_servers && row "fanout 100x10 max" fanout --addr "$addr" "${also[@]}" "${measure[@]}" --listeners 100 --senders 10 --duration "$dur" --prefix "${p}a"
  want "fanout 1000x1 max" && start_servers && row "fanout 1000x1 max" fanout --addr "$addr" "${also[@]}" "${measure[@]}" --listeners 1000 --senders 1 --duration "$dur" --sources 8 --prefix "${p}b"
  want "fanout 1000x1 100/s" && start_servers && row "fanout 1000x1 100/s" fanout --addr "$addr" "${also[@]}" "${measure[@]}" --listeners 1000 --senders 1 --rate 100 --duration "$dur" --sources 8 --prefix "${p}c"
  # The backend's own latency: the same rate, a tenth of the recipients, so no burst of
  # 1,000 sends and 1,000 receipts shares the two cores with it.
  want "fanout 100x1 100/s" && start_servers && row "fanout 100x1 100/s" fanout --addr "$addr" "${also[@]}" "${measure[@]}" --listeners 100 --senders 1 --rate 100 --duration "$dur" --sources 8 --prefix "${p}f"
  want "rtt 1000x20" && start_servers && row "rtt 1000x20" rtt --addr "$addr" "${also[@]}" "${measure[@]}" --users 1000 --messages 20 --sources 8 --prefix "${p}d"
  want "ramp" && start_servers && row "ramp" ramp --addr "$addr" "${also[@]}" --target "$ramp_target" --sources 50 "${measure[@]}" --prefix "${p}e"
done
done
kill "${pids[@]}" 2>/dev/null || true

python3 bench/summary.py "$out"
