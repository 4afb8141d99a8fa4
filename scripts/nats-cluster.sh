#!/usr/bin/env bash
# A local 3-node NATS cluster with JetStream, for running the chat server on its NATS
# backend by hand (tests start their own: testkit::nats).
#
#   scripts/nats-cluster.sh start  [DIR]   install nats-server if missing, start, wait until ready
#   scripts/nats-cluster.sh status [DIR]   each node's state; exit 0 only if JetStream is ready
#   scripts/nats-cluster.sh stop   [DIR]   kill the nodes and remove their storage
#
# Fixed loopback ports: clients 4222-4224, cluster routes 6222-6224, monitoring 8222-8224.
# DIR (default ${TMPDIR:-/tmp}/chat-nats) holds, per node nN: nats.conf, nats.pid,
# nats.log and store/.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|status [DIR]" >&2
  exit 2
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  usage
fi
cmd=$1
dir=${2:-${TMPDIR:-/tmp}/chat-nats}
nodes=(0 1 2)
# How long the cluster may take to elect its JetStream meta leader (seconds).
ready_timeout=30

client_port() { echo $((4222 + $1)); }
route_port() { echo $((6222 + $1)); }
http_port() { echo $((8222 + $1)); }

# Installs the Debian package if the binary is missing (Debian puts it in /usr/sbin, which
# is not on every user's PATH), as scripts/xvfb-deps.sh does for its packages.
install_nats() {
  if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
    return
  fi
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update
  "${sudo[@]}" apt-get install -y --no-install-recommends nats-server
}

nats_binary() {
  command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server
}

# The body of GET $2 on monitoring port $1, or nothing; bash's /dev/tcp, so neither curl
# nor python is needed. `timeout`: a stopped node accepts but never answers.
http_get() {
  # shellcheck disable=SC2016 # the inner script expands its own $1 and $2
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$2" >&3
    sed "1,/^\r$/d" <&3
  ' http_get "$1" "$2" 2>/dev/null || true
}

pid_of() {
  local f=$dir/n$1/nats.pid
  [ -f "$f" ] && cat "$f"
}

# running, stopped (SIGSTOP), or down (no process, or a zombie: exited, not yet reaped).
node_state() {
  local pid st
  pid=$(pid_of "$1") || { echo down; return; }
  # "PID (COMM) STATE ...": the state follows the last ')'.
  st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1) || st=
  case $st in
    '' | Z | X) echo down ;;
    T) echo stopped ;;
    *) echo running ;;
  esac
}

# The meta leader node $1 names ("" if none yet). Bodies are captured, then parsed: a
# reader that quits early (grep -q, head) would fail the pipeline under pipefail.
leader_of() {
  local body
  body=$(http_get "$(http_port "$1")" /jsz)
  sed -n 's/.*"leader": *"\([^"]*\)".*/\1/p' <<<"$body" | sed -n 1p
}

# Ready: every node's /healthz is ok, all name the same meta leader, and that leader
# counts both other peers current (its /jsz lists them under meta_cluster.replicas).
ready() {
  local i leader="" l
  for i in "${nodes[@]}"; do
    grep -q '"status": *"ok"' <<<"$(http_get "$(http_port "$i")" /healthz)" || return 1
    l=$(leader_of "$i")
    [ -n "$l" ] || return 1
    [ -z "$leader" ] || [ "$l" = "$leader" ] || return 1
    leader=$l
  done
  local body current
  body=$(http_get "$(http_port "${leader#n}")" /jsz)
  current=$(grep -c '"current": *true' <<<"$body" || true)
  [ "$current" -eq $((${#nodes[@]} - 1)) ]
}

write_config() {
  local i=$1 j routes=()
  for j in "${nodes[@]}"; do
    [ "$j" = "$i" ] || routes+=("nats-route://127.0.0.1:$(route_port "$j")")
  done
  local IFS=,
  cat >"$dir/n$i/nats.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:$(client_port "$i")
http: 127.0.0.1:$(http_port "$i")
jetstream {
  store_dir: "$dir/n$i/store"
  max_memory_store: 256MB
  max_file_store: 1GB
}
cluster {
  name: chat
  listen: 127.0.0.1:$(route_port "$i")
  routes: [${routes[*]}]
}
EOF
}

print_urls() {
  local i urls=()
  for i in "${nodes[@]}"; do urls+=("nats://127.0.0.1:$(client_port "$i")"); done
  local IFS=,
  echo "JetStream ready; run the server with:"
  echo "  server --nats ${urls[*]}"
}

start() {
  install_nats
  local bin i
  bin=$(nats_binary)
  for i in "${nodes[@]}"; do
    mkdir -p "$dir/n$i/store"
    if [ "$(node_state "$i")" != down ]; then
      echo "n$i already running (pid $(pid_of "$i"))"
      continue
    fi
    write_config "$i"
    # setsid: the node outlives this shell and its terminal. Not a process group leader
    # (no job control here), setsid execs in place, so $! is the server's own pid.
    setsid "$bin" -c "$dir/n$i/nats.conf" </dev/null >>"$dir/n$i/nats.log" 2>&1 &
    echo $! >"$dir/n$i/nats.pid"
  done
  local deadline=$((SECONDS + ready_timeout))
  until ready; do
    for i in "${nodes[@]}"; do
      # A node gone before it is ready: a port taken, a bad config. Its log says which.
      if [ -f "$dir/n$i/nats.pid" ] && [ "$(node_state "$i")" = down ]; then
        echo "n$i exited; the end of $dir/n$i/nats.log:" >&2
        tail -n 20 "$dir/n$i/nats.log" >&2
        exit 1
      fi
    done
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "JetStream not ready after ${ready_timeout}s:" >&2
      status >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  status
  print_urls
}

status() {
  local i state health leader
  for i in "${nodes[@]}"; do
    state=$(node_state "$i")
    health=- leader=-
    if [ "$state" = running ]; then
      health=$(http_get "$(http_port "$i")" /healthz | tr -d '\n')
      leader=$(leader_of "$i")
    fi
    printf 'n%s %-8s pid %-8s client %s route %s http %s leader %-3s healthz %s\n' \
      "$i" "$state" "$(pid_of "$i" || echo -)" "$(client_port "$i")" "$(route_port "$i")" \
      "$(http_port "$i")" "${leader:-?}" "${health:-?}"
  done
  ready
}

stop() {
  local i pid
  for i in "${nodes[@]}"; do
    pid=$(pid_of "$i") || continue
    # SIGKILL also ends a SIGSTOPped node, and no state needs saving: the store goes too.
    kill -KILL "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "n$i (pid $pid) did not die" >&2
        exit 1
      fi
      sleep 0.1
    done
    rm -f "$dir/n$i/nats.pid"
    echo "n$i killed"
  done
  # Only what this script made: never DIR itself, which the user may have named.
  for i in "${nodes[@]}"; do
    rm -rf "${dir:?}/n$i/store"
  done
  echo "storage removed from $dir (logs kept in $dir/n*/nats.log)"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
