#!/usr/bin/env bash
# Runs every benchmark scenario against our system (a fresh broker and server per run) and,
# where they are installed or installable, against the IRC peers in bench/peers/. Writes one
# JSON line per run to bench/results/<date>.jsonl and the plots to assets/bench-*.png, and
# prints a summary table. Loopback only; every run is bounded in time. Every run is given
# the pids of the system under test (server and broker, the echo responder, the IRC
# daemon), so each row also has the system's CPU per delivery, which does not depend on how
# much CPU the load generator takes from the same cores.
#
#   bench/run-all.sh            # everything
#   QUICK=1 bench/run-all.sh    # shorter runs, smaller ramps
#   PEERS_ONLY=1 bench/run-all.sh  # only the IRC peers, appended to today's results
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p broker -p server -p bench
out="bench/results/$(date +%Y-%m-%d).jsonl"
mkdir -p bench/results assets
[ -n "${PEERS_ONLY:-}" ] || : >"$out"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

quick=${QUICK:-}
dur=10; ramp_target=19000
if [ -n "$quick" ]; then dur=3; ramp_target=3000; fi

tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

. bench/lib.sh

# Servers run without the per-client rate limit (like IRC servers benchmarked without fake
# lag), except for the stress run, which shows that the defaults let the bots through.
start_system() { # [defaults]: starts broker + server; sets $addr, $server_pid, $broker_pid
  # and $measure (the chat-bench flags naming both for the CPU figures)
  local limits=(--flood-rate off --max-conns-per-ip 0)
  if [ "${1:-}" = defaults ]; then limits=(); fi
  start_chat target/release "$tmp" "${limits[@]}"
  measure=(--server-pid "$server_pid" --broker-pid "$broker_pid")
}

# --- our system ---
if [ -z "${PEERS_ONLY:-}" ]; then
start_system defaults; bench "chat stress 50 bots" stress --addr "$addr" "${measure[@]}" --duration "$dur" --plot assets/bench-stress.png
start_system; bench "chat rtt 10x5" rtt --addr "$addr" "${measure[@]}" --users 10 --messages 5
start_system; bench "chat rtt 50x10" rtt --addr "$addr" "${measure[@]}" --users 50 --messages 10
start_system; bench "chat rtt 60x25" rtt --addr "$addr" "${measure[@]}" --users 60 --messages 25
start_system; bench "chat rtt 1000x20" rtt --addr "$addr" "${measure[@]}" --users 1000 --messages 20 --sources 8
start_system; bench "chat payload 5x200 10-20KB" payload --addr "$addr" "${measure[@]}"
start_system; bench "chat payload 5x300 30-50KB" payload --addr "$addr" "${measure[@]}" --messages 300 --min 30000 --max 50000
start_system; bench "chat fanout 100x10 max" fanout --addr "$addr" "${measure[@]}" --listeners 100 --senders 10 --duration "$dur" --plot assets/bench-fanout-100x10.png
start_system; bench "chat fanout 1000x1 max" fanout --addr "$addr" "${measure[@]}" --listeners 1000 --senders 1 --duration "$dur" --sources 8
start_system; bench "chat fanout 1000x1 100/s" fanout --addr "$addr" "${measure[@]}" --listeners 1000 --senders 1 --rate 100 --duration "$dur" --sources 8 --plot assets/bench-fanout-1000x1-100.png
start_system; bench "chat ramp" ramp --addr "$addr" --target "$ramp_target" --sources 50 "${measure[@]}" --plot assets/bench-ramp.png
# The ceiling: rtt against a responder that echoes every frame and does nothing else.
kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=()
target/release/chat-bench echo --listen 127.0.0.1:0 >"$tmp/echo.out" 2>/dev/null &
echo_pid=$!; pids+=($!)
echo_addr=$(wait_addr "$tmp/echo.out" "listening on ")
# The responder is the whole system here: its CPU per round trip is the floor.
bench "echo ceiling rtt 60x25" rtt --addr "$echo_addr" --server-pid "$echo_pid" --users 60 --messages 25 --prefix ea
bench "echo ceiling rtt 1000x20" rtt --addr "$echo_addr" --server-pid "$echo_pid" --users 1000 --messages 20 --sources 8 --prefix eb
# Three servers on one broker, the ramp spread over three load-generator processes.
kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=()
CHAT_DATA_DIR="$tmp/data" target/release/broker --listen 127.0.0.1:0 >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!; pids+=($!)
broker=$(wait_addr "$tmp/broker.out" "listening on ")
addrs=(); spids=(--broker-pid "$broker_pid")
for i in 1 2 3; do
  target/release/server --broker "$broker" --listen 127.0.0.1:0 --text-listen off --flood-rate off --max-conns-per-ip 0 \
    >"$tmp/s$i.out" 2>"$tmp/s$i.err" &
  pids+=($!); spids+=(--server-pid $!)
  addrs+=("$(wait_addr "$tmp/s$i.out" "listening on ")")
done
three=$((ramp_target * 3 - 1500))
bench "chat ramp, 3 servers" ramp --addr "${addrs[0]}" --also-addr "${addrs[1]}" --also-addr "${addrs[2]}" \
  --target "$three" --batch 150 --shards 3 --sources 100 "${spids[@]}"
kill "${pids[@]}" 2>/dev/null || true; pids=()
fi

# --- IRC peers (bench/peers/start.sh NAME PORT) ---
for peer in ngircd inspircd; do
  [ -x bench/peers/start.sh ] || break
  port=$((16667 + RANDOM % 1000))
  # ngircd's listen backlog is 10: its ramp goes in steps of 10 every 10 ms (same rate).
  # inspircd answers registrations on a one-second timer: its logins take ~1 s each.
  case $peer in
    ngircd) par=8; step="--batch 10 --interval-ms 10" ;;
    *) par=500; step="--max-p99-ms 5000" ;;
  esac
  PEER_LOG=/dev/null bench/peers/start.sh "$peer" "$port" >"$tmp/$peer.out" 2>&1 &
  pids+=($!)
  if ! wait_addr "$tmp/$peer.out" "listening on " >/dev/null 2>&1; then
    echo "--- $peer did not start; skipped" >&2; continue
  fi
  # The daemon itself (start.sh runs it in the foreground as its child): the whole system.
  if ! peer_pid=$(wait_addr "$tmp/$peer.out" "pid " 2>/dev/null); then
    echo "--- $peer printed no pid; skipped" >&2
    kill "${pids[@]}" 2>/dev/null || true; pids=(); continue
  fi
  a="127.0.0.1:$port"
  bench "$peer fanout 100x10 max" fanout --login-parallel "$par" --proto irc --addr "$a" --server-pid "$peer_pid" --listeners 100 --senders 10 --duration "$dur" --prefix "${peer:0:2}a"
  bench "$peer fanout 1000x1 max" fanout --login-parallel "$par" --proto irc --addr "$a" --server-pid "$peer_pid" --listeners 1000 --senders 1 --duration "$dur" --sources 8 --prefix "${peer:0:2}b"
  bench "$peer fanout 1000x1 100/s" fanout --login-parallel "$par" --proto irc --addr "$a" --server-pid "$peer_pid" --listeners 1000 --senders 1 --rate 100 --duration "$dur" --sources 8 --prefix "${peer:0:2}c"
  bench "$peer rtt 60x25" rtt --login-parallel "$par" --proto irc --addr "$a" --server-pid "$peer_pid" --users 60 --messages 25 --prefix "${peer:0:2}d"
  bench "$peer rtt 1000x20" rtt --login-parallel "$par" --proto irc --addr "$a" --server-pid "$peer_pid" --users 1000 --messages 20 --sources 8 --prefix "${peer:0:2}e"
  # shellcheck disable=SC2086 # $step is two flags
  bench "$peer ramp" ramp --proto irc --no-join --addr "$a" --target "$ramp_target" $step --sources 50 --server-pid "$peer_pid" --prefix "${peer:0:2}f" --plot "assets/bench-ramp-$peer.png"
  kill "${pids[@]}" 2>/dev/null || true; pids=()
done

python3 bench/summary.py "$out"
