#!/usr/bin/env bash
# Issue 12's cost of the history, in one sitting: the same build with the broker's history
# on (a fresh data directory for every run) and off (`CHAT_HISTORY=off`), alternating in
# every round, on fanout 100 x 10, fanout 1,000 x 1 (both at full speed) and rtt 1,000 x 20;
# then `/history latest 500` answered with 1,000,000 events in the log, and the log's size
# per event. Loopback only; every run bounded in time.
#
#   bench/history.sh [ROUNDS]        # ROUNDS=0: only the queries and the size
#
# Writes JSON lines to bench/results/history-<date>[-$SUFFIX].jsonl and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
cargo build --release -p broker -p server -p bench >&2
tool=target/release/chat-bench
out="bench/results/history-$(date +%Y-%m-%d)${SUFFIX:+-$SUFFIX}.jsonl"
mkdir -p bench/results
[ "$rounds" -gt 0 ] && : >"$out"  # ROUNDS=0 adds to the day's file
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export CHAT_TOKEN=history-token
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
. bench/lib.sh

run() { # SIDE ROW ARGS...
  local side=$1 row=$2; shift 2
  if [ "$side" = off ]; then export CHAT_HISTORY=off; else unset CHAT_HISTORY; fi
  start_chat target/release "$tmp" --flood-rate off --max-conns-per-ip 0
  echo "--- history $side, $row: chat-bench $*" >&2
  local line
  if line=$("$tool" "$@" --addr "$addr" --server-pid "$server_pid" --broker-pid "$broker_pid" --json 2>"$tmp/err" | tail -1); then
    echo "{\"side\":\"$side\",\"row\":\"$row\",\"result\":$line}" >>"$out"
  else
    echo "    failed: $(tail -3 "$tmp/err")" >&2
  fi
}

for r in $(seq "$rounds"); do
  for side in on off; do
    run "$side" fan100x10 fanout --listeners 100 --senders 10 --duration 10 --prefix "f$r$side"
    run "$side" fan1000x1 fanout --listeners 1000 --senders 1 --duration 10 --sources 8 --prefix "g$r$side"
    run "$side" rtt1000x20 rtt --users 1000 --messages 20 --sources 8 --prefix "r$r$side"
  done
done
# The queries, with a million events (history on only): right after the fill, while the
# checkpoint thread may still be copying the fill's WAL into the database, and again after
# a restart of both processes on the same log (a million events stored, nothing else
# running); then the log's size.
unset CHAT_HISTORY
start_chat target/release "$tmp" --flood-rate off --max-conns-per-ip 0
data=$data_dir
query() { # ROW FILL
  echo "--- history latest 500 with 1,000,000 events ($1)" >&2
  local line
  line=$("$tool" history --fill "$2" --queries 500 --query "latest 500" --addr "$addr" \
    --server-pid "$server_pid" --broker-pid "$broker_pid" --json 2>"$tmp/err" | tail -1)
  echo "{\"side\":\"on\",\"row\":\"$1\",\"db_bytes\":$(du -cb "$data"/history.sqlite3* | tail -1 | cut -f1),\"result\":$line}" >>"$out"
}
query latest500 1000000
DATA=$data start_chat target/release "$tmp" --flood-rate off --max-conns-per-ip 0
query latest500-restarted 0
kill "${pids[@]}" 2>/dev/null || true; pids=()
python3 - "$out" <<'PY'
import json, statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for raw in open(sys.argv[1]):
    r = json.loads(raw)
    runs[(r["row"], r["side"])].append(r)
key = {"fan100x10": "deliveries_per_s", "fan1000x1": "deliveries_per_s", "rtt1000x20": "round_trips_per_s"}
print("| workload | history on | history off | on / off | CPU per delivery on / off | tool CPU share |")
print("|---|---|---|---|---|---|")
for row, k in key.items():
    on = [x["result"]["figures"] for x in runs[(row, "on")]]
    off = [x["result"]["figures"] for x in runs[(row, "off")]]
    if not on or not off:
        continue
    m = lambda fs, kk: statistics.median(f[kk] for f in fs if f.get(kk) is not None)
    print(f"| {row} | {m(on, k):,.0f} | {m(off, k):,.0f} | {m(on, k) / m(off, k):.2f} | "
          f"{m(on, 'system_us_per_delivery'):.3g} / {m(off, 'system_us_per_delivery'):.3g} µs | "
          f"{m(on, 'tool_cpu_share'):.2f} / {m(off, 'tool_cpu_share'):.2f} |")
for r in runs[("latest500", "on")] + runs[("latest500-restarted", "on")]:
    f = r["result"]["figures"]
    lat = r["result"]["latency"]["query"]
    events = 1_000_000
    when = "after a restart" if r["row"].endswith("restarted") else "right after the fill"
    print(f"\nlatest 500 with {events:,} events ({when}): {f['queries_per_s']:,.0f} answers/s, p50 {lat['p50_ms']} ms, "
          f"p99 {lat['p99_ms']} ms, {f['system_us_per_delivery']:.0f} µs CPU per answer (tool {f['tool_cpu_share']}); "
          f"fill {f['fill_s']} s; log {r['db_bytes']:,} bytes = {r['db_bytes'] / events:.0f} bytes per event")
PY
