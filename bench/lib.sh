# Shell helpers shared by bench/run-all.sh, bench/compare.sh and bench/limits.sh (sourced,
# not run).

# wait_addr FILE PREFIX: prints the address after PREFIX on the first line of FILE that
# starts with it, waiting up to 20 s for a process to print it; fails otherwise.
wait_addr() {
  for _ in $(seq 400); do
    if grep -q "^$2" "$1" 2>/dev/null; then sed -n "s/^$2//p" "$1" | head -1; return; fi
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1" >&2; exit 1
}

# start_chat BIN_DIR TMP [SERVER_FLAG...]: stops what `pids` holds, then starts a fresh
# broker and server from BIN_DIR on ephemeral loopback ports (the server without its line
# port, with SERVER_FLAGs); sets addr, server_pid and broker_pid and puts both in pids.
# Their output goes to TMP/{broker,server}.{out,err}. The broker gets a fresh data directory
# under TMP, or the one named by DATA (to query a log an earlier run filled); data_dir says
# which.
start_chat() {
  local dir=$1 tmp=$2; shift 2
  kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=()
  # A fresh history for every run (PROTOCOL.md §10; older builds ignore the variable).
  data_dir=${DATA:-$tmp/data-$RANDOM$RANDOM}
  CHAT_DATA_DIR="$data_dir" "$dir/broker" --listen 127.0.0.1:0 >"$tmp/broker.out" 2>"$tmp/broker.err" &
  broker_pid=$!; pids+=($!)
  local broker; broker=$(wait_addr "$tmp/broker.out" "listening on ")
  "$dir/server" --broker "$broker" --listen 127.0.0.1:0 --text-listen off "$@" \
    >"$tmp/server.out" 2>"$tmp/server.err" &
  server_pid=$!; pids+=($!)
  addr=$(wait_addr "$tmp/server.out" "listening on ")
}

# bench LABEL ARGS...: runs `target/release/chat-bench ARGS --json` and appends its JSON
# line to $out labelled LABEL (or the error's tail), the tool's stderr in $tmp/bench.err.
bench() { # LABEL ARGS... : runs chat-bench, keeps its JSON line, labelled
  local label=$1; shift
  echo "--- $label: chat-bench $*" >&2
  local line
  if line=$(target/release/chat-bench "$@" --json 2>"$tmp/bench.err" | tail -1); then
    echo "{\"label\":\"$label\",\"result\":$line}" >>"$out"
  else
    echo "{\"label\":\"$label\",\"error\":$(tail -c 300 "$tmp/bench.err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" >>"$out"
    echo "    failed: $(tail -3 "$tmp/bench.err")" >&2
  fi
}
