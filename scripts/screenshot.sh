#!/usr/bin/env bash
# Takes the README's screenshots: the real desktop client in a real window under Xvfb,
# logged in to a real broker and server, with scripted users chatting on a second server:
# assets/screenshot.png (the room: history, wrapped messages, a link, an unread private
# conversation), assets/screenshot-private.png (that conversation, the room unread) and
# assets/screenshot-reconnect.png (her server killed and back: what she missed, marked).
# Run from anywhere:
#   scripts/screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/xvfb-deps.sh

cargo build --release -p broker -p server -p gui-client
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# Waits for the line "PREFIX ADDR" in FILE and prints ADDR.
wait_addr() {
  local file=$1 prefix=$2
  for _ in $(seq 100); do
    if grep -q "^$prefix" "$file" 2>/dev/null; then
      sed -n "s/^$prefix//p" "$file" | head -1
      return
    fi
    sleep 0.1
  done
  echo "timed out waiting for '$prefix' in $file" >&2
  exit 1
}

CHAT_DATA_DIR="$tmp/data" target/release/broker --listen 127.0.0.1:0 >"$tmp/broker.out" &
pids+=($!)
broker=$(wait_addr "$tmp/broker.out" "listening on ")
# Alice's server, and the bots' own, so they go on talking while hers is down.
start_server() { # OUT [FLAGS...]
  local out=$1; shift
  target/release/server --broker "$broker" --text-listen off "$@" >"$out" &
  server_pid=$!
  pids+=($!)
}
start_server "$tmp/server.out" --listen 127.0.0.1:0
alice_server=$server_pid
addr=$(wait_addr "$tmp/server.out" "listening on ")
port=${addr##*:}
start_server "$tmp/bots-server.out" --listen 127.0.0.1:0
bots_addr=$(wait_addr "$tmp/bots-server.out" "listening on ")

display=:97
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp &
pids+=($!)
for _ in $(seq 100); do
  DISPLAY="$display" xdotool getdisplaygeometry >/dev/null 2>&1 && break
  sleep 0.1
done
mkfifo "$tmp/bots.in"
python3 scripts/screenshot_bots.py --port "${bots_addr##*:}" <"$tmp/bots.in" >"$tmp/bots.out" &
pids+=($!)
exec 3>"$tmp/bots.in"   # held open: the bots read orders from it
wait_addr "$tmp/bots.out" "ready" >/dev/null   # the bots are in before alice arrives
# A private HOME so the remembered form and settings of the person running this are left
# alone.
HOME="$tmp" DISPLAY="$display" target/release/gui-client \
  --server "127.0.0.1:$port" --name alice --connect &
pids+=($!)

window=$(DISPLAY="$display" xdotool search --sync --name 'Chat$' | head -1)
wait_addr "$tmp/bots.out" "chatted" >/dev/null
sleep 1
# 1. The room: history, wrapped messages, a link, bob's unread conversation on the left.
# Focus is in the message box right after connecting: just type and press Enter.
DISPLAY="$display" xdotool windowfocus --sync "$window"
DISPLAY="$display" xdotool type --delay 20 "thanks carol, that would help!"
DISPLAY="$display" xdotool key Return
sleep 1
DISPLAY="$display" import -window "$window" assets/screenshot.png
echo "wrote assets/screenshot.png"

# 2. The private conversation with bob (Ctrl+PageDown: the next conversation), while the
# room gets a message she has not read.
DISPLAY="$display" xdotool key ctrl+Next
sleep 0.5
DISPLAY="$display" xdotool type --delay 20 "sure, see you at 12"
DISPLAY="$display" xdotool key Return
echo room >&3
wait_addr "$tmp/bots.out" "said" >/dev/null
sleep 1
DISPLAY="$display" import -window "$window" assets/screenshot-private.png
echo "wrote assets/screenshot-private.png"

# 3. Alice's server dies; the others go on; it comes back and she catches up.
DISPLAY="$display" xdotool key ctrl+Prior
kill -9 "$alice_server"
sleep 1
echo away >&3
for _ in $(seq 100); do [ "$(grep -c '^said' "$tmp/bots.out")" -ge 2 ] && break; sleep 0.1; done
start_server "$tmp/server2.out" --listen "$addr"
wait_addr "$tmp/server2.out" "listening on " >/dev/null
sleep 6   # the client's backoff, the resume and the catching up
DISPLAY="$display" import -window "$window" assets/screenshot-reconnect.png
echo "wrote assets/screenshot-reconnect.png"
